/*
 * The wire ceiling for bench/run.mjs (a measuring instrument of the bench, never part of the package):
 * physical replication over libpq into nothing. No files, no fsync; keepalives that ask for a reply get
 * a standby status update with write = flush = apply = 0 (nothing is durable), so the server never
 * times us out.
 *
 *   c-receiver 'host=… replication=true' SLOT START_LSN TIMELINE END_LSN [DIR SEGMENT_BYTES]
 *
 * With DIR and SEGMENT_BYTES it is the durable ceiling instead: the same stream written the way
 * `walstream receive` writes it, with nothing else: each segment to DIR/NAME.partial with O_DIRECT in
 * 1 MiB aligned chunks, up to four in flight (POSIX AIO), then fdatasync, rename to NAME and an fsync
 * of DIR, in a thread of its own while the next segment is received (at most one such completion at a
 * time). START_LSN must begin a segment and END_LSN end one. Status updates still say 0: the
 * bench measures the disk side's cost, not the slot.
 *
 * Prints one JSON line: { bytes, startLsn, endLsn } (bytes of WAL received up to END_LSN or a little past).
 */
#define _GNU_SOURCE
#include <aio.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <libpq-fe.h>

static uint64_t get64(const char *p) { uint64_t v = 0; for (int i = 0; i < 8; i++) v = v << 8 | (unsigned char)p[i]; return v; }
static void put64(char *p, uint64_t v) { for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (char)(v & 0xff); }
static int lsn(const char *s, uint64_t *out) { unsigned hi, lo; char end; if (sscanf(s, "%X/%X%c", &hi, &lo, &end) != 2) return 0; *out = (uint64_t)hi << 32 | lo; return 1; }
static void die(PGconn *conn, const char *what) { fprintf(stderr, "c-receiver: %s: %s", what, PQerrorMessage(conn)); PQfinish(conn); exit(1); }
static void fail(const char *what, const char *name) { fprintf(stderr, "c-receiver: %s %s: %s\n", what, name, strerror(errno)); exit(1); }

/* Durable mode. */
#define CHUNK (1 << 20)
#define IN_FLIGHT 4
static const char *dir;
static int dirFd = -1;
static uint64_t segmentBytes, timeline;
static char *chunks[IN_FLIGHT];
static struct aiocb writes[IN_FLIGHT];
static int busy[IN_FLIGHT], turn, fd = -1;
static size_t filled;       /* bytes in chunks[turn] */
static uint64_t fileOffset; /* where chunks[turn] goes in the current segment */
static char partialName[4200], finalName[4096];
static struct completion { int fd; char partial[4200], final[4096]; } completion;
static pthread_t completer;
static int completing;

static void awaitWrite(int i) {
  if (!busy[i]) return;
  const struct aiocb *list[1] = { &writes[i] };
  while (aio_error(&writes[i]) == EINPROGRESS) aio_suspend(list, 1, NULL);
  if (aio_return(&writes[i]) != CHUNK) fail("write", partialName);
  busy[i] = 0;
}
static void *complete(void *arg) {
  struct completion *c = arg;
  if (fdatasync(c->fd) != 0) fail("fdatasync", c->partial);
  close(c->fd);
  if (rename(c->partial, c->final) != 0) fail("rename", c->partial);
  if (fsync(dirFd) != 0) fail("fsync", dir);
  return NULL;
}
static void openSegment(uint64_t at) {
  uint64_t segno = at / segmentBytes, perId = 0x100000000ULL / segmentBytes;
  snprintf(finalName, sizeof finalName, "%s/%08X%08X%08X", dir, (unsigned)timeline, (unsigned)(segno / perId), (unsigned)(segno % perId));
  snprintf(partialName, sizeof partialName, "%s.partial", finalName);
  fd = open(partialName, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0600);
  if (fd < 0) fail("open", partialName);
  fileOffset = 0;
}
/* Appends WAL at `at` (contiguous); a full chunk goes to the disk, a full segment to the completer. */
static void store(uint64_t at, const char *data, size_t length) {
  while (length > 0) {
    if (fd < 0) openSegment(at);
    size_t n = CHUNK - filled;
    if (n > length) n = length;
    memcpy(chunks[turn] + filled, data, n);
    filled += n, at += n, data += n, length -= n;
    if (filled < CHUNK) continue;
    writes[turn] = (struct aiocb){ .aio_fildes = fd, .aio_buf = chunks[turn], .aio_nbytes = CHUNK, .aio_offset = (off_t)fileOffset };
    if (aio_write(&writes[turn]) != 0) fail("aio_write", partialName);
    busy[turn] = 1;
    fileOffset += CHUNK;
    turn = (turn + 1) % IN_FLIGHT;
    awaitWrite(turn);
    filled = 0;
    if (at % segmentBytes == 0) {
      for (int i = 0; i < IN_FLIGHT; i++) awaitWrite(i);
      if (completing) pthread_join(completer, NULL);
      completion.fd = fd;
      strcpy(completion.partial, partialName);
      strcpy(completion.final, finalName);
      if (pthread_create(&completer, NULL, complete, &completion) != 0) fail("pthread_create", partialName);
      completing = 1;
      fd = -1;
    }
  }
}

int main(int argc, char **argv) {
  uint64_t start, end, pos, bytes = 0;
  if ((argc != 6 && argc != 8) || !strstr(argv[1], "replication=") || !lsn(argv[3], &start) || !lsn(argv[5], &end) || atoi(argv[4]) <= 0) {
    fprintf(stderr, "usage: c-receiver 'CONNINFO replication=true' SLOT START_LSN TIMELINE END_LSN [DIR SEGMENT_BYTES]\n");
    return 2;
  }
  if (argc == 8) {
    dir = argv[6];
    segmentBytes = strtoull(argv[7], NULL, 10);
    timeline = (uint64_t)atoi(argv[4]);
    if (segmentBytes < CHUNK || segmentBytes % CHUNK != 0 || start % segmentBytes != 0 || end % segmentBytes != 0) {
      fprintf(stderr, "c-receiver: SEGMENT_BYTES must be a multiple of 1 MiB, START_LSN and END_LSN segment boundaries\n");
      return 2;
    }
    if ((dirFd = open(dir, O_RDONLY | O_DIRECTORY)) < 0) fail("open", dir);
    for (int i = 0; i < IN_FLIGHT; i++) if (posix_memalign((void **)&chunks[i], 4096, CHUNK) != 0) fail("allocate", "chunks");
  }
  PGconn *conn = PQconnectdb(argv[1]);
  if (PQstatus(conn) != CONNECTION_OK) die(conn, "connect");
  char sql[512];
  snprintf(sql, sizeof sql, "START_REPLICATION SLOT %s PHYSICAL %s TIMELINE %s", argv[2], argv[3], argv[4]);
  PGresult *res = PQexec(conn, sql);
  if (PQresultStatus(res) != PGRES_COPY_BOTH) die(conn, "START_REPLICATION");
  PQclear(res);
  for (pos = start; pos < end;) {
    char *buf;
    int n = PQgetCopyData(conn, &buf, 0); /* blocking */
    if (n == -1) { fprintf(stderr, "c-receiver: the server ended the stream at %X/%X\n", (unsigned)(pos >> 32), (unsigned)pos); return 1; }
    if (n < 0) die(conn, "PQgetCopyData");
    if (buf[0] == 'w' && n >= 25) { /* XLogData: 'w' walStart walEnd sendTime data */
      uint64_t walStart = get64(buf + 1);
      size_t length = (size_t)(n - 25);
      if (dir) {
        if (walStart != pos) { fprintf(stderr, "c-receiver: WAL at %llx, expected %llx\n", (unsigned long long)walStart, (unsigned long long)pos); return 1; }
        if (walStart + length > end) length = (size_t)(end - walStart); /* like -E: up to the boundary */
        store(walStart, buf + 25, length);
      }
      bytes += (uint64_t)length;
      pos = walStart + (uint64_t)length;
    } else if (buf[0] == 'k' && n >= 18 && buf[17]) { /* keepalive: 'k' walEnd sendTime replyRequested */
      char reply[34] = { 'r' }; /* 'r' write flush apply sendTime(µs since 2000-01-01) replyRequested */
      struct timeval tv;
      gettimeofday(&tv, NULL);
      put64(reply + 25, (uint64_t)(tv.tv_sec - 946684800) * 1000000u + (uint64_t)tv.tv_usec);
      if (PQputCopyData(conn, reply, sizeof reply) != 1 || PQflush(conn) != 0) die(conn, "status update");
    }
    PQfreemem(buf);
  }
  /* End like pg_receivewal -E: CopyDone, drain up to the server's CopyDone, then its results. */
  if (PQputCopyEnd(conn, NULL) != 1 || PQflush(conn) != 0) die(conn, "CopyDone");
  for (char *buf; PQgetCopyData(conn, &buf, 0) >= 0;) PQfreemem(buf);
  while ((res = PQgetResult(conn)) != NULL) {
    if (PQresultStatus(res) == PGRES_FATAL_ERROR) die(conn, "end of streaming");
    PQclear(res);
  }
  PQfinish(conn);
  if (completing) pthread_join(completer, NULL);
  printf("{\"bytes\":%llu,\"startLsn\":\"%X/%X\",\"endLsn\":\"%X/%X\"}\n", (unsigned long long)bytes,
         (unsigned)(start >> 32), (unsigned)start, (unsigned)(pos >> 32), (unsigned)pos);
  return 0;
}
