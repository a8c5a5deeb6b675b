/**
 * Archiver: the whole of `walstream receive` as a library class. Connects (trying each host in turn),
 * checks the archive belongs to the server's cluster, picks the start position, streams into the sink
 * through a SegmentConsumer, follows timeline switches, and reconnects with backoff.
 */
import { EventEmitter } from 'node:events';
import { type ConnectionOptions, type ConnectionTarget, describeTarget, targetsFor } from './conninfo.js';
import { ReplicationConnection } from './connection.js';
import { PgError, WalstreamError } from './errors.js';
import { formatLsn, historyFileName, segmentStart } from './lsn.js';
import { DirectorySink } from './archive/directory.js';
import type { WalSink } from './archive/sink.js';
import type { Compression } from './archive/codec.js';
import { LONG_HEADER_LENGTH, type ResumePoint, parseArchivedName, archiveSystemId, decodeLongPageHeader, findResumePoint, newestCompleteSegment, readSegmentHead, segmentFileProblem } from './archive/scan.js';
import { type CompletedSegment, SegmentConsumer } from './segments.js';
import { StreamSession } from './stream.js';
import { archiveSession } from './archive-session.js';
import { isWalPageMagic } from './page-check.js';
import { explainServerError } from './server-errors.js';
import { defaultStart } from './start-position.js';
import { checkServer } from './server-check.js';
import { type ArchiverState, type ArchiverStatus, StatusTracker } from './archiver-status.js';
import { SlotMonitor } from './slot-monitor.js';
import type { SlotReport } from './slot-probe.js';
import { gapMarkerName } from './archive/gaps.js';
import type { LiveVerifier, SegmentVerdict } from './walfile/live.js';
import { COMPRESSION_SUFFIX } from './archive/codec.js';
import { BucketSink, type BucketSinkOptions } from './archive/bucket-sink.js';
import { S3Store, type S3StoreOptions } from './archive/s3-store.js';

/** Where and how to upload: the bucket's URL, how to reach it, and the upload behaviour. */
export interface BucketArchiveOptions extends S3StoreOptions, Omit<BucketSinkOptions, 'log'> {
  /** s3://bucket/prefix */
  url: string;
}

export interface ArchiverOptions {
  /** Where to connect: libpq-style fields, or a libpq connection string / URI. */
  connection: ConnectionOptions | string;
  /** The archive directory (ignored when `sink` is given). */
  directory?: string;
  /** A custom storage; defaults to a DirectorySink on `directory`. */
  sink?: WalSink;
  /** Physical replication slot to stream from (it must exist; see createSlot). */
  slot?: string;
  /** Stop once WAL up to this LSN is archived. */
  endLsn?: bigint;
  /** Flush and report after every batch of WAL, to serve as a synchronous standby. */
  synchronous?: boolean;
  /** Skip fsync (tests only: not crash-safe). */
  noSync?: boolean;
  /** Write segment files with O_DIRECT where the filesystem allows it (default true; see DirectorySinkOptions). */
  directIo?: boolean;
  /** Compression of archived segments (default none; see DirectorySinkOptions.compression). */
  compression?: Compression;
  /**
   * Also archive into an S3 bucket (`url`: s3://bucket/prefix): `directory` becomes the local spool,
   * fsynced first as always, and each finished file is uploaded (see BucketSink).
   */
  bucket?: BucketArchiveOptions;
  /** Seconds between status updates (default 10; 0 = only when the server asks). */
  statusIntervalSeconds?: number;
  /** Reconnect after a lost connection (default true); false gives up at the first failure. */
  loop?: boolean;
  /**
   * Ignore the archive's resume point and start at the slot's or server's position: for an archive whose
   * next WAL the server has already removed. Leaves a gap in the archive (logged as a warning).
   */
  startAtServerPosition?: boolean;
  /** application_name when none is given (default 'walstream'). */
  applicationName?: string;
  /** Environment for libpq variables (default process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * Seconds without any message from the server before the connection is taken for dead and
   * reconnected (default 60, like wal_receiver_timeout; a reply is asked for at half of it). Also
   * bounds start-up and each command. 0 waits forever.
   */
  timeoutSeconds?: number;
  /**
   * What to do when the archive cannot be written (a full disk, permissions): 'retry' (default) keeps
   * trying with backoff, logging once a minute, and resumes from the first WAL not archived; 'exit'
   * rejects run() at once. Either way nothing not on disk is reported to the server.
   */
  onArchiveError?: 'retry' | 'exit';
  /**
   * Seconds between checks of what the slot holds back on the server (a short SQL connection each
   * time; see slot-probe.ts). Default 0 (no checks), or 10 when maxSlotRetained is given.
   */
  slotCheckIntervalSeconds?: number;
  /** Bytes the slot may hold back on the server before walstream warns (once a minute) or releases it. */
  maxSlotRetained?: bigint;
  /**
   * Over maxSlotRetained: 'warn' (default) only warns; 'release' advances the slot to the server's
   * position (the server may then remove WAL the archive lacks) and records the gap in the archive.
   */
  onSlotLimit?: 'warn' | 'release';
  /**
   * Check each segment once it is archived (receive --verify): read back and walked like `walstream
   * verify` does, one at a time, off the streaming path; a 'verify' event and, on a fault, a warning.
   */
  verify?: boolean;
}

/** Events: 'segment' (CompletedSegment), 'history' ({ name, timeline }), 'log' ({ level, message }), 'timeline' ({ timeline, startLsn }). */
export interface ArchiverEvents {
  segment: [CompletedSegment];
  history: [{ name: string; timeline: number }];
  timeline: [{ timeline: number; startLsn: bigint }];
  log: [{ level: 'info' | 'warn' | 'debug'; message: string }];
  /** The archiver's state changed (see status()). */
  state: [{ state: ArchiverState; previous: ArchiverState }];
  /** A slot check (slotCheckIntervalSeconds) read the slot. */
  slot: [SlotReport];
  /** A gap was recorded in the archive: WAL [fromLsn, toLsn) on `timeline` is missing (marker: its file name). */
  gap: [{ timeline: number; fromLsn: bigint; toLsn: bigint; marker: string }];
  /** With `verify`: a segment checked after archiving (skipped: not checked, a newer one came while one waited). */
  verify: [SegmentVerdict];
}

const MAX_BACKOFF_MS = 10_000;
/** Damaged newest segments set aside per connection before walstream stops and asks for a look. */
const MAX_SET_ASIDE = 3;
/** While the archive keeps failing, the same warning is logged at most this often. */
const ARCHIVE_WARN_INTERVAL_MS = 60_000;

/** Errors that more attempts cannot fix. */
function isPermanent(err: unknown): boolean {
  if (err instanceof WalstreamError) return ['ARCHIVE_MISMATCH', 'ARCHIVE_MISSING', 'ARCHIVE_LOCKED', 'ARCHIVE_DAMAGED', 'BAD_OPTION', 'BAD_CONNINFO', 'SERVER_VERSION', 'BAD_SEGMENT_SIZE', 'PROTOCOL'].includes(err.code);
  return false;
}

/** Authentication and permission refusals: fatal before the first successful stream (a configuration mistake). */
function isAuthError(err: unknown): boolean {
  if (err instanceof WalstreamError) return err.code === 'NO_PASSWORD';
  return err instanceof PgError && (err.code.startsWith('28') || err.code === '42501' || err.code === '3D000' || err.code === '42704');
}

/**
 * Streams WAL from a server into an archive until endLsn, stop(), or a fatal error: what
 * `walstream receive` runs. Resumes from what the archive holds; follows timeline switches; reconnects
 * (trying each host in turn) unless `loop: false`.
 *
 * @example
 * ```ts
 * import { Archiver } from 'pg-walstream';
 *
 * const archiver = new Archiver({
 *   connection: 'host=primary user=replicator',
 *   directory: '/var/lib/walstream/archive',
 *   slot: 'walstream',
 * });
 * archiver.on('segment', (e) => console.log(`archived ${e.name} on timeline ${e.timeline}`));
 * process.once('SIGTERM', () => archiver.stop());
 * await archiver.run();
 * ```
 */
export class Archiver extends EventEmitter<ArchiverEvents> {
  private readonly options: ArchiverOptions;
  private readonly targets: ConnectionTarget[];
  readonly sink: WalSink;
  private readonly abort = new AbortController();
  private consumer: SegmentConsumer | null = null;
  private streamedOnce = false;
  /** Whether the latest connection made WAL durable: a healthy session, after which backoff starts over. */
  private sessionFlushed = false;
  private readonly tracker: StatusTracker;
  private target: ConnectionTarget;
  /** Where a slot release (onSlotLimit 'release') moved the slot: the next session starts there, leaving a gap. */
  private releasedTo: bigint | null = null;
  /**
   * A connection is choosing its start position or streaming: the slot guard must not advance the
   * slot then (a session started from the archive's older position would report it as flushed, and a
   * physical slot's restart_lsn follows what the standby reports, backwards too).
   */
  private connectionBusy = false;
  /** The slot guard's release in progress: a connection waits for it before choosing where to start. */
  private releasing: Promise<void> | null = null;
  /** Segments `verify` found faults in (receive --verify); 0 when not verifying. */
  verifyFailures = 0;
  /** receive --verify's checker, loaded only when asked for (the WAL reader and CRC-32C cost memory). */
  private readonly verifier: Promise<LiveVerifier> | null = null;

  constructor(options: ArchiverOptions) {
    super();
    this.options = options;
    this.targets = targetsFor(options.connection, options.env, options.applicationName);
    this.target = this.targets[0]!;
    this.tracker = new StatusTracker(options.slot, (state, previous) => this.emit('state', { state, previous }));
    if (options.sink) this.sink = options.sink;
    else if (options.directory) {
      const directory = new DirectorySink(options.directory, { noSync: options.noSync, preallocate: options.synchronous, directIo: options.directIo, compression: options.compression });
      const bucket = options.bucket;
      this.sink = bucket
        ? new BucketSink(directory, new S3Store(bucket.url, bucket), { ...bucket, log: (level, message) => this.log(level, message) })
        : directory;
    }
    else throw new WalstreamError('BAD_OPTION', 'no archive given: pass `directory` (or `sink`)');
    if (options.verify) {
      const sink = this.sink;
      const verifier = this.verifier = import('./walfile/live.js').then(({ LiveVerifier }) => new LiveVerifier(sink, COMPRESSION_SUFFIX[options.compression?.method ?? 'none'], (verdict) => {
        if (!verdict.ok) {
          this.verifyFailures++;
          for (const problem of verdict.problems) this.log('warn', `verify: ${verdict.name}: ${problem}`);
        }
        this.emit('verify', verdict);
      }));
      this.on('segment', (segment) => { void verifier.then((v) => v.offer(segment)); });
    }
  }

  /** Position written so far and durably flushed (bigints), or null before streaming starts. */
  positions(): { writeLsn: bigint; flushLsn: bigint; timeline: number } | null {
    const c = this.consumer;
    return c ? { writeLsn: c.writeLsn(), flushLsn: c.flushLsn(), timeline: c.timeline } : null;
  }

  /**
   * The figures monitoring needs (what /metrics and /status show): state, positions, counters, the
   * last error, the latest slot check. A snapshot; call again for fresh figures.
   */
  status(): ArchiverStatus {
    const failures = (this as { verifyFailures?: unknown }).verifyFailures; // set by receive --verify, when present
    const status = this.tracker.snapshot(this.positions(), typeof failures === 'number' ? failures : null);
    if (this.sink.uploadStatus) status.upload = this.sink.uploadStatus();
    return status;
  }

  /** Ask run() to finish: the segment in progress is made durable as .partial, a final status is sent. */
  stop(): void {
    this.abort.abort();
  }

  private log(level: 'info' | 'warn' | 'debug', message: string): void {
    this.emit('log', { level, message });
  }

  /** The flush position to report: what is durable, held back to what the sink allows (a bucket's uploads). */
  private reportableFlush(flushLsn: bigint): bigint {
    const limit = this.sink.flushLimit?.() ?? null;
    return limit !== null && limit < flushLsn ? limit : flushLsn;
  }

  /** A listener that throws is reported (a 'log' warning), not allowed to stall the flush position. */
  private emitSegment(segment: CompletedSegment): void {
    this.tracker.segment(segment.name);
    try {
      this.emit('segment', segment);
    } catch (err) {
      this.log('warn', `a 'segment' listener threw on ${segment.name}: ${(err as Error)?.message ?? String(err)} (archiving goes on)`);
    }
  }

  /** Run until endLsn or stop(); rejects on a fatal error (or any error when loop is false). */
  async run(): Promise<void> {
    await this.sink.check?.();
    const monitor = this.slotMonitor();
    monitor?.start();
    try {
      await this.runLoop();
    } finally {
      await (await this.verifier)?.whenIdle(); // the last segments' checks (at most two) before the sink closes
      await monitor?.stop();
      this.tracker.setState('stopped');
      await this.sink.close?.();
    }
  }

  private async runLoop(): Promise<void> {
    let backoffMs = 1000;
    let targetIndex = 0;
    let archiveWarnedAt = -Infinity;
    let locked = false;
    let attempts = 0;
    for (;;) {
      if (this.abort.signal.aborted) return;
      const target = this.targets[targetIndex % this.targets.length]!;
      this.tracker.connecting(target.host, target.port, attempts++ > 0);
      this.target = target;
      this.sessionFlushed = false;
      try {
        // Locked inside the loop: a lock file that cannot be written (a full disk) is an archive
        // error like any other, retried; a live holder (ARCHIVE_LOCKED) is fatal.
        if (!locked) {
          await this.sink.lock?.();
          locked = true;
        }
        const outcome = await this.streamOnce(target);
        if (outcome === 'done') return;
        backoffMs = 1000;
      } catch (err) {
        if (this.abort.signal.aborted) return;
        const explained = explainServerError(err);
        this.tracker.failed((explained as Error)?.message ?? String(explained));
        if (this.sessionFlushed) backoffMs = 1000; // after a healthy session, a new outage starts over
        if (explained instanceof WalstreamError && explained.code === 'ARCHIVE_IO') {
          if (this.options.onArchiveError === 'exit' || this.options.loop === false) throw explained;
          // The archive failed, not the server: retry the same host until it works (space freed), from
          // the first WAL not durably archived (findResumePoint).
          if (Date.now() - archiveWarnedAt >= ARCHIVE_WARN_INTERVAL_MS) {
            archiveWarnedAt = Date.now();
            this.log('warn', `${explained.message}; retrying until it succeeds (this warning repeats once a minute)`);
          } else {
            this.log('debug', `${explained.message}; retrying in ${Math.round(backoffMs / 1000)} s`);
          }
          await sleep(backoffMs, this.abort.signal);
          backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
          continue;
        }
        if (isPermanent(explained) || (isAuthError(explained) && !this.streamedOnce) || this.options.loop === false) {
          throw explained;
        }
        targetIndex++;
        const wrapped = targetIndex % this.targets.length === 0;
        this.log('warn', `${(explained as Error).message}; ${wrapped ? `retrying in ${Math.round(backoffMs / 1000)} s` : 'trying the next host'}`);
        if (wrapped) {
          await sleep(backoffMs, this.abort.signal);
          backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
        }
      }
    }
  }

  /** One connection's life: returns 'done' at endLsn/stop, throws when the connection fails. */
  private async streamOnce(target: ConnectionTarget): Promise<'done'> {
    this.log('debug', `connecting to ${describeTarget(target)}`);
    const timeoutMs = (this.options.timeoutSeconds ?? 60) * 1000;
    const signal = this.abort.signal;
    const conn = await ReplicationConnection.open(target, { signal, timeoutMs });
    const keepOnAbort = conn.destroyOnAbort(signal);
    try {
      const { version, identity, segmentSize } = await checkServer(conn);
      // Files are created with the server's permissions (pg_receivewal: streamutil.c RetrieveDataDirCreatePerm).
      this.sink.useFileMode?.(fileModeFor(await conn.dataDirectoryMode()));
      this.sink.useSegmentSize?.(segmentSize);
      // One listing per connection serves every question about the archive (a remote sink lists slowly);
      // nothing is written to the archive before streaming starts, so it stays current.
      const archived = await this.sink.list();
      // Whose archive it is first: a foreign one is refused, never "repaired".
      const owner = await archiveSystemId(this.sink, segmentSize, archived);
      if (owner && owner.systemId !== identity.systemId) {
        throw new WalstreamError('ARCHIVE_MISMATCH', `archive holds WAL of database system ${owner.systemId} (${owner.fileName}) but the server is system ${identity.systemId}; use an empty directory for this cluster`);
      }
      const setAside = await this.setAsideDamaged(archived, segmentSize);

      await this.releasing;
      this.connectionBusy = true;
      let { startLsn, timeline } = await this.startPosition(conn, identity, segmentSize, version, archived, setAside);
      await this.fetchMissingHistory(conn, identity.timeline, archived);
      if (this.options.endLsn !== undefined && startLsn >= this.options.endLsn) {
        this.log('warn', `nothing to stream: the start position ${formatLsn(startLsn)} is already at or past --endpos ${formatLsn(this.options.endLsn)}`);
        return 'done';
      }
      this.log('info', `starting log streaming at ${formatLsn(startLsn)} (timeline ${timeline})`);

      for (;;) {
        const consumer = new SegmentConsumer({
          sink: this.sink, segmentSize, timeline, startLsn,
          systemId: identity.systemId,
          onSegment: (segment) => this.emitSegment(segment),
        });
        this.consumer = consumer;
        let outcome;
        try {
          const reportFlush = Boolean(this.options.slot) || Boolean(this.options.synchronous);
          let flushReported = 0n;
          const session = new StreamSession(conn, {
            slot: this.options.slot, startLsn, timeline, endLsn: this.options.endLsn, segmentSize,
            statusIntervalMs: (this.options.statusIntervalSeconds ?? 10) * 1000,
            positions: () => {
              // Never backwards: what the bucket confirmed stays there, even when the limit falls to a
              // finished segment's start while its upload replaces the NAME.partial that covered it.
              if (reportFlush) flushReported = maxLsn(flushReported, this.reportableFlush(consumer.flushLsn()));
              return { writeLsn: consumer.writeLsn(), flushLsn: reportFlush ? flushReported : 0n };
            },
            // Following a live primary: one socket read per READ_COALESCE_MS instead of one per commit.
            readCoalesceMs: this.options.synchronous ? 0 : READ_COALESCE_MS,
            timeoutMs,
            signal: this.abort.signal,
          });
          this.tracker.streaming(timeline);
          this.sink.onFlushLimit?.(() => session.sendStatus());
          outcome = await archiveSession(session, consumer, {
            synchronous: Boolean(this.options.synchronous), reportFlush,
            onBatch: (batch) => {
              // Pieces are contiguous: the batch's bytes are its end minus its start, no loop per piece.
              const first = batch.pieces[0];
              const last = batch.pieces[batch.pieces.length - 1];
              const end = last ? last.walStart + BigInt(last.data.length) : null;
              this.tracker.received(first && end !== null ? Number(end - first.walStart) : 0, end, batch.serverWalEnd);
            },
          });
          this.streamedOnce = true;
        } finally {
          // WAL arrived: the configuration works, even if this session then ends in a lost connection
          // (the usual end of a long stream), so later refusals by a host are retried, not fatal.
          if (consumer.writeLsn() > startLsn) this.streamedOnce = true;
          if (consumer.flushLsn() > startLsn) this.sessionFlushed = true;
          this.sink.onFlushLimit?.(null);
          // Whatever happened, what was received stays durable (.partial for the segment in progress).
          await consumer.close();
        }
        if (outcome.kind !== 'timeline-end') {
          if (outcome.kind === 'endpos') this.log('info', `stopped log streaming at ${formatLsn(outcome.receivedLsn)} (timeline ${timeline})`);
          return 'done';
        }
        const { nextTimeline, nextTimelineStart } = outcome.end;
        if (nextTimeline <= timeline) {
          throw new WalstreamError('PROTOCOL', `server reported next timeline ${nextTimeline}, not above current timeline ${timeline}`);
        }
        this.log('info', `switched to timeline ${nextTimeline} at ${formatLsn(nextTimelineStart)}`);
        await this.fetchHistory(conn, nextTimeline);
        timeline = nextTimeline;
        startLsn = segmentStart(nextTimelineStart, segmentSize);
        this.emit('timeline', { timeline, startLsn });
        if (this.abort.signal.aborted) return 'done';
      }
    } finally {
      this.connectionBusy = false;
      keepOnAbort();
      await conn.close();
    }
  }

  /**
   * The newest complete segment must be whole: full size and a first page header that matches its
   * name. A bad one (a crash of another tool, a truncated copy) is set aside, never deleted, and
   * streamed again; repeated while the next newest is bad too. Returns the names set aside.
   */
  private async setAsideDamaged(archived: string[], segmentSize: number): Promise<string[]> {
    const setAside: string[] = [];
    const sink = this.sink;
    if (!sink.size || !sink.setAside) return setAside;
    for (;;) {
      const newest = newestCompleteSegment(archived.filter((n) => !setAside.includes(n)), segmentSize);
      if (!newest) return setAside;
      const { size, head, problem: decodeProblem } = await readSegmentHead(sink, newest, LONG_HEADER_LENGTH);
      const problem = segmentFileProblem(newest, size, head, segmentSize, decodeProblem);
      if (!problem) return setAside;
      const header = head ? decodeLongPageHeader(head) : null;
      if (header && isWalPageMagic(header.magic) && header.segmentSize !== segmentSize && size === header.segmentSize) {
        // Whole segments of another size: another cluster's archive (or one resized by pg_resetwal), not damage.
        throw new WalstreamError('ARCHIVE_MISMATCH', `archive holds WAL segments of ${header.segmentSize} bytes (${newest.fileName}) but the server uses ${segmentSize}; use an empty directory for this cluster`);
      }
      if (setAside.length >= MAX_SET_ASIDE) {
        throw new WalstreamError('ARCHIVE_DAMAGED', `archived segments ${setAside.join(', ')} and ${newest.fileName} are all damaged (${problem}); check the archive (disk, another tool writing to it) before streaming into it again`);
      }
      const aside = await sink.setAside(newest.fileName, 'damaged');
      setAside.push(newest.fileName);
      this.log('warn', `archived segment ${newest.fileName} ${problem}: set aside as ${aside}, streaming it again`);
    }
  }

  /** pg_receivewal's order: the archive, then the slot's restart_lsn (PG ≥ 15), then the server's position. */
  private async startPosition(conn: ReplicationConnection, identity: { timeline: number; xlogPos: bigint }, segmentSize: number, version: number, archived: string[], setAside: string[]): Promise<{ startLsn: bigint; timeline: number }> {
    const resume = findResumePoint(archived, segmentSize, setAside);
    const released = this.releasedTo !== null && resume !== null && this.releasedTo > resume.startLsn;
    if (!released) this.releasedTo = null;
    if (resume && (this.options.startAtServerPosition || released)) {
      this.log('warn', `not resuming after ${resume.from.fileName}: starting at the server's position leaves a gap in the archive`);
    } else if (resume) {
      this.log('debug', `resuming after ${resume.from.fileName} in the archive`);
      return { startLsn: resume.startLsn, timeline: resume.timeline };
    }
    const start = await defaultStart(conn, identity, this.options.slot, segmentSize, version);
    if (resume) await this.setAsideBeforeGap(archived, segmentSize, resume, start.startLsn);
    if (resume && start.startLsn > resume.startLsn) await this.recordGap(resume.timeline, resume.startLsn, start.startLsn);
    this.releasedTo = null; // kept until the gap is recorded: a failed write tries again at the next connection
    return start;
  }

  /**
   * Rename NAME.partial.before-gap every .partial a later restart would resume from (findResumePoint):
   * the one resume chose, and any on its timeline between it and the new start (a disk that failed
   * while two segments were open leaves two).
   */
  private async setAsideBeforeGap(archived: string[], segmentSize: number, resume: ResumePoint, startLsn: bigint): Promise<void> {
    for (const name of archived) {
      const s = parseArchivedName(name, segmentSize);
      const lsn = s ? s.segno * BigInt(segmentSize) : -1n;
      const before = s !== null && s.partial && s.timeline === resume.timeline && lsn >= resume.startLsn && lsn < startLsn;
      if ((before || (name === resume.from.fileName && resume.from.partial)) && this.sink.setAside) {
        const aside = await this.sink.setAside(name, 'before-gap');
        this.log('warn', `${name} renamed ${aside}: it ends where the gap starts`);
      }
    }
  }

  /** Mark WAL [fromLsn, toLsn) as knowingly missing from the archive (archive/gaps.ts). */
  private async recordGap(timeline: number, fromLsn: bigint, toLsn: bigint): Promise<void> {
    const marker = gapMarkerName(timeline, fromLsn, toLsn);
    await this.sink.writeFile(marker, new Uint8Array(0));
    this.tracker.gapRecorded();
    this.log('warn', `the archive has a gap: WAL from ${formatLsn(fromLsn)} to ${formatLsn(toLsn)} (timeline ${timeline}) is missing; recorded as ${marker}`);
    this.emit('gap', { timeline, fromLsn, toLsn, marker });
  }

  /** The slot guard (slotCheckIntervalSeconds, maxSlotRetained), or null when not asked for. */
  private slotMonitor(): SlotMonitor | null {
    const slot = this.options.slot;
    const seconds = this.options.slotCheckIntervalSeconds ?? (this.options.maxSlotRetained !== undefined ? 10 : 0);
    if (!slot || seconds <= 0) return null;
    return new SlotMonitor({
      slot, intervalMs: seconds * 1000, maxRetained: this.options.maxSlotRetained, onLimit: this.options.onSlotLimit,
      target: () => this.target,
      timeoutMs: (this.options.timeoutSeconds ?? 60) * 1000 || 60_000,
      log: (level, message) => this.log(level, message),
      checked: (report) => {
        this.tracker.slotChecked(report);
        this.emit('slot', report);
      },
      released: (_from, to) => { this.releasedTo = to; },
      whenIdle: (release) => {
        if (this.connectionBusy) return null; // the next check tries again
        const done = release().finally(() => { this.releasing = null; });
        this.releasing = done;
        return done;
      },
      reason: () => this.tracker.snapshot(null, null).lastError,
    });
  }

  /** Fetch the server timeline's history file (and its ancestors') when the archive lacks it. */
  private async fetchMissingHistory(conn: ReplicationConnection, serverTimeline: number, archived: string[]): Promise<void> {
    if (serverTimeline <= 1) return;
    if (!archived.includes(historyFileName(serverTimeline))) await this.fetchHistory(conn, serverTimeline);
  }

  private async fetchHistory(conn: ReplicationConnection, timeline: number): Promise<void> {
    const history = await conn.timelineHistory(timeline);
    await this.sink.writeFile(history.fileName, history.content);
    this.emit('history', { name: history.fileName, timeline });
  }
}

/**
 * How long the socket rests after the stream has caught up with the server (StreamSession's
 * readCoalesceMs). Well inside the 20 ms that direct I/O stages WAL anyway, and far inside any status
 * interval; catching up never pauses (the server's WAL end is then ahead of what has arrived).
 */
const READ_COALESCE_MS = 10;

/**
 * The mode of files pg_receivewal creates for a data_directory_mode (common/file_perm.c
 * SetDataDirectoryCreatePerm): 0640 when the data directory grants the group access (0750), else 0600.
 */
export function fileModeFor(dataDirectoryMode: number): number {
  return (dataDirectoryMode & 0o750) === 0o750 ? 0o640 : 0o600;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}

function maxLsn(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}
