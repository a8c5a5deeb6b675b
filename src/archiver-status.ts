/**
 * The figures an Archiver keeps about itself for monitoring (`archiver.status()`, /metrics, /status):
 * what it is doing, how far it has got, what went wrong last. Plain counters and timestamps, updated
 * by the Archiver at each step; nothing here touches the stream.
 */
import { formatLsn } from './lsn.js';
import type { SlotReport } from './slot-probe.js';

/** What the archiver is doing. */
export type ArchiverState =
  /** run() not called yet. */
  | 'idle'
  /** Connecting and setting up (server checks, start position). */
  | 'connecting'
  /** A replication stream is open and WAL is being archived. */
  | 'streaming'
  /** The connection (or the archive) failed; waiting to try again. */
  | 'disconnected'
  /** run() has ended. */
  | 'stopped';

/** A snapshot of the archiver's figures. LSNs are bigints (format them with formatLsn). */
export interface ArchiverStatus {
  state: ArchiverState;
  /** When the state last changed (ms since the epoch). */
  stateSince: number;
  /** Since when no stream has been open (ms since the epoch); null while streaming. */
  disconnectedSince: number | null;
  /** When run() was called (ms since the epoch), null before. */
  startedAt: number | null;
  /** "host:port" of the server of the current (or last) connection; never a password. */
  connectedTo: string | null;
  slot: string | null;
  timeline: number | null;
  /** End of the WAL received so far. */
  receivedLsn: bigint | null;
  /** End of the WAL durably archived (what is reported to the server as flushed). */
  flushedLsn: bigint | null;
  /** The server's end of WAL, from the stream (or the latest slot check, whichever is newer). */
  serverWalEnd: bigint | null;
  /** serverWalEnd - flushedLsn (0 when ahead). */
  lagBytes: bigint | null;
  /** WAL bytes received since run() began (all sessions). */
  bytesReceived: number;
  segmentsArchived: number;
  /** When the last segment was archived (ms since the epoch). */
  lastSegmentAt: number | null;
  lastSegment: string | null;
  /** New connections made after one was lost or failed. */
  reconnects: number;
  /** The last error's one-line message (no secrets: errors never carry passwords). */
  lastError: string | null;
  lastErrorAt: number | null;
  /** The latest slot check (null without a slot or before the first check). */
  slotCheck: (SlotReport & { at: number }) | null;
  /** Bytes the slot holds back on the server, from the latest slot check. */
  slotRetainedBytes: bigint | null;
  /** Segments that failed `receive --verify`'s checks (null when the archiver has no verifier). */
  verifyFailures: number | null;
  /** Gaps recorded in the archive by this run (slot released). */
  gapsRecorded: number;
  /** Uploads into a bucket (receive --target); null for a directory archive. */
  upload?: UploadStatus | null;
}

/** What the bucket side of an archive has done (see BucketSink.uploadStatus). */
export interface UploadStatus {
  /** Files waiting for, or in, an upload. */
  pendingFiles: number;
  /** Files confirmed in the bucket by this run, and their bytes. */
  uploadedFiles: number;
  uploadedBytes: number;
  /** Upload attempts that failed (each is retried). */
  failedAttempts: number;
  /** When the last upload was confirmed (ms since the epoch). */
  lastUploadAt: number | null;
}

/** Keeps an ArchiverStatus up to date; the Archiver calls one method per event. */
export class StatusTracker {
  private readonly figures: ArchiverStatus = {
    state: 'idle', stateSince: Date.now(), disconnectedSince: null, startedAt: null, connectedTo: null, slot: null, timeline: null,
    receivedLsn: null, flushedLsn: null, serverWalEnd: null, lagBytes: null, bytesReceived: 0,
    segmentsArchived: 0, lastSegmentAt: null, lastSegment: null, reconnects: 0, lastError: null, lastErrorAt: null,
    slotCheck: null, slotRetainedBytes: null, verifyFailures: null, gapsRecorded: 0,
  };

  constructor(slot: string | undefined, private readonly onState: (state: ArchiverState, previous: ArchiverState) => void) {
    this.figures.slot = slot ?? null;
  }

  /** Move to `state` (reported once per change). */
  setState(state: ArchiverState): void {
    const previous = this.figures.state;
    if (previous === state) return;
    this.figures.state = state;
    this.figures.stateSince = Date.now();
    if (state === 'streaming') this.figures.disconnectedSince = null;
    else if (previous === 'streaming' || previous === 'idle') this.figures.disconnectedSince = Date.now();
    if (state === 'connecting' && this.figures.startedAt === null) this.figures.startedAt = Date.now();
    this.onState(state, previous);
  }

  connecting(host: string, port: number, reconnect: boolean): void {
    if (reconnect) this.figures.reconnects++;
    this.figures.connectedTo = `${host}:${port}`;
    this.setState('connecting');
  }

  streaming(timeline: number): void {
    this.figures.timeline = timeline;
    this.setState('streaming');
  }

  failed(message: string): void {
    this.figures.lastError = message;
    this.figures.lastErrorAt = Date.now();
    this.setState('disconnected');
  }

  /** WAL arrived: `bytes` more, ending at `endLsn`; the server's end of WAL was `serverWalEnd`. */
  received(bytes: number, endLsn: bigint | null, serverWalEnd: bigint): void {
    this.figures.bytesReceived += bytes;
    if (endLsn !== null) this.figures.receivedLsn = endLsn;
    if (serverWalEnd > (this.figures.serverWalEnd ?? 0n)) this.figures.serverWalEnd = serverWalEnd;
  }

  segment(name: string): void {
    this.figures.segmentsArchived++;
    this.figures.lastSegment = name;
    this.figures.lastSegmentAt = Date.now();
  }

  slotChecked(report: SlotReport): void {
    this.figures.slotCheck = { ...report, at: Date.now() };
    this.figures.slotRetainedBytes = report.retainedBytes;
    if (report.serverLsn > (this.figures.serverWalEnd ?? 0n)) this.figures.serverWalEnd = report.serverLsn;
  }

  gapRecorded(): void {
    this.figures.gapsRecorded++;
  }

  /** A copy of the figures with the positions the consumer holds now. */
  snapshot(positions: { flushLsn: bigint; writeLsn: bigint; timeline: number } | null, verifyFailures: number | null): ArchiverStatus {
    const s = { ...this.figures, verifyFailures };
    if (positions) {
      s.flushedLsn = positions.flushLsn;
      s.timeline = positions.timeline;
      if (s.receivedLsn === null || positions.writeLsn > s.receivedLsn) s.receivedLsn = positions.writeLsn;
    }
    if (s.serverWalEnd !== null && s.flushedLsn !== null) s.lagBytes = s.serverWalEnd > s.flushedLsn ? s.serverWalEnd - s.flushedLsn : 0n;
    return s;
  }
}

/** True while streaming, or while not streaming for less than `graceMs` (start-up, a quick reconnect). */
export function isHealthy(status: ArchiverStatus, graceMs: number, now = Date.now()): boolean {
  if (status.state === 'streaming') return true;
  if (status.state === 'stopped') return false;
  return status.disconnectedSince !== null && now - status.disconnectedSince < graceMs;
}

const lsn = (value: bigint | null) => (value === null ? null : formatLsn(value));
const time = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const bytes = (value: bigint | null) => (value === null ? null : Number(value));

/**
 * The status as plain JSON (what /status serves): LSNs as "X/X" strings, byte counts as numbers,
 * times as ISO 8601 strings, null where not known yet.
 */
export function statusToJson(s: ArchiverStatus): Record<string, unknown> {
  const check = s.slotCheck;
  return {
    state: s.state, stateSince: time(s.stateSince), disconnectedSince: time(s.disconnectedSince), startedAt: time(s.startedAt),
    connectedTo: s.connectedTo, slot: s.slot, timeline: s.timeline,
    receivedLsn: lsn(s.receivedLsn), flushedLsn: lsn(s.flushedLsn), serverWalEnd: lsn(s.serverWalEnd), lagBytes: bytes(s.lagBytes),
    bytesReceived: s.bytesReceived, segmentsArchived: s.segmentsArchived, lastSegment: s.lastSegment, lastSegmentAt: time(s.lastSegmentAt),
    reconnects: s.reconnects, lastError: s.lastError, lastErrorAt: time(s.lastErrorAt),
    slotRetainedBytes: bytes(s.slotRetainedBytes),
    slotCheck: check && {
      at: time(check.at), exists: check.exists, active: check.active, walStatus: check.walStatus,
      restartLsn: lsn(check.restartLsn), serverLsn: lsn(check.serverLsn), retainedBytes: bytes(check.retainedBytes),
    },
    verifyFailures: s.verifyFailures, gapsRecorded: s.gapsRecorded,
    ...(s.upload ? { upload: { ...s.upload, lastUploadAt: time(s.upload.lastUploadAt) } } : {}),
  };
}
