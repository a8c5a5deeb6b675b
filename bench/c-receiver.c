/*
 * The wire ceiling for bench/run.mjs (a measuring instrument of the bench, never part of the package):
 * physical replication over libpq into nothing. No files, no fsync; keepalives that ask for a reply get
 * a standby status update with write = flush = apply = 0 (nothing is durable), so the server never
 * times us out.
 *
 *   c-receiver 'host=… replication=true' SLOT START_LSN TIMELINE END_LSN
 *
 * Prints one JSON line: { bytes, startLsn, endLsn } (bytes of WAL received up to END_LSN or a little past).
 */
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

int main(int argc, char **argv) {
  uint64_t start, end, pos, bytes = 0;
  if (argc != 6 || !strstr(argv[1], "replication=") || !lsn(argv[3], &start) || !lsn(argv[5], &end) || atoi(argv[4]) <= 0) {
    fprintf(stderr, "usage: c-receiver 'CONNINFO replication=true' SLOT START_LSN TIMELINE END_LSN\n");
    return 2;
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
      bytes += (uint64_t)(n - 25);
      pos = get64(buf + 1) + (uint64_t)(n - 25);
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
  printf("{\"bytes\":%llu,\"startLsn\":\"%X/%X\",\"endLsn\":\"%X/%X\"}\n", (unsigned long long)bytes,
         (unsigned)(start >> 32), (unsigned)start, (unsigned)(pos >> 32), (unsigned)pos);
  return 0;
}
