/**
 * The Archiver's figures (archiver.status()) as Prometheus metrics, through prom-client: a registry of
 * its own per archiver (no global state), read at each scrape, plus Node's default process metrics.
 * LSNs and byte counts are numbers of bytes (exact up to 2^53, 8 PiB of WAL). A figure not known yet
 * (no stream so far, no slot check) is NaN.
 */
import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';
import type { ArchiverStatus } from './archiver-status.js';

/**
 * prom-client, loaded on the first registry: a library user who imports the package for WalReceiver
 * or Archiver without metrics does not pay for loading it.
 */
let promClient: typeof import('prom-client') | undefined;
function loadPromClient(): typeof import('prom-client') {
  return (promClient ??= createRequire(import.meta.url)('prom-client') as typeof import('prom-client'));
}

/** Where the figures come from: an Archiver, or anything with its status(). */
export interface StatusSource {
  status(): ArchiverStatus;
}

const num = (value: bigint | number | null): number => (value === null ? NaN : Number(value));

/** Every walstream metric: name, help, and how to read it from a status. */
const GAUGES: [string, string, (s: ArchiverStatus) => number][] = [
  ['walstream_up', '1 while a replication stream is open, else 0', (s) => (s.state === 'streaming' ? 1 : 0)],
  ['walstream_received_lsn_bytes', 'End of the WAL received, as an LSN in bytes', (s) => num(s.receivedLsn)],
  ['walstream_flushed_lsn_bytes', 'End of the WAL durably archived (reported to the server as flushed), as an LSN in bytes', (s) => num(s.flushedLsn)],
  ['walstream_server_wal_end_bytes', "The server's end of WAL (from the stream or the latest slot check), as an LSN in bytes", (s) => num(s.serverWalEnd)],
  ['walstream_lag_bytes', "Bytes between the server's end of WAL and what is durably archived", (s) => num(s.lagBytes)],
  ['walstream_slot_retained_bytes', "WAL the replication slot holds back on the server (server position minus the slot's restart_lsn), from the latest slot check", (s) => num(s.slotRetainedBytes)],
  ['walstream_timeline', 'Timeline being archived', (s) => num(s.timeline)],
  ['walstream_upload_pending_files', 'Files waiting for, or in, an upload to the bucket (receive --target; NaN without)', (s) => num(s.upload ? s.upload.pendingFiles : null)],
  ['walstream_last_upload_timestamp_seconds', 'When the bucket last confirmed an upload (Unix time)', (s) => (s.upload?.lastUploadAt ? s.upload.lastUploadAt / 1000 : NaN)],
  ['walstream_last_segment_timestamp_seconds', 'When the last segment was archived (Unix time)', (s) => (s.lastSegmentAt === null ? NaN : s.lastSegmentAt / 1000)],
];

const COUNTERS: [string, string, (s: ArchiverStatus) => number][] = [
  ['walstream_segments_archived_total', 'Segments archived (made durable under their final name)', (s) => s.segmentsArchived],
  ['walstream_bytes_received_total', 'WAL bytes received from the server', (s) => s.bytesReceived],
  ['walstream_reconnects_total', 'New connections made after one was lost or failed', (s) => s.reconnects],
  ['walstream_verify_failures_total', 'Segments that failed the checks of receive --verify', (s) => s.verifyFailures ?? 0],
  ['walstream_uploaded_files_total', 'Files confirmed in the bucket (receive --target)', (s) => s.upload?.uploadedFiles ?? 0],
  ['walstream_uploaded_bytes_total', 'Bytes confirmed in the bucket (receive --target)', (s) => s.upload?.uploadedBytes ?? 0],
  ['walstream_upload_failures_total', 'Upload attempts that failed and were retried (receive --target)', (s) => s.upload?.failedAttempts ?? 0],
  ['walstream_gaps_recorded_total', 'Gaps recorded in the archive (slot released by --on-slot-limit=release)', (s) => s.gapsRecorded],
];

/**
 * A prom-client Registry that reads `source.status()` once per scrape and exposes the metrics above
 * and Node's default process metrics. `registry.metrics()` resolves with the text exposition format.
 */
export function archiverRegistry(source: StatusSource): Registry {
  const { Counter, Gauge, Registry, collectDefaultMetrics } = loadPromClient();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const current = () => source.status(); // a cheap copy of counters, read by each metric
  for (const [name, help, read] of GAUGES) {
    new Gauge({ name, help, registers: [registry], collect() { this.set(read(current())); } });
  }
  for (const [name, help, read] of COUNTERS) {
    new Counter({ name, help, registers: [registry], collect() { this.reset(); this.inc(read(current())); } });
  }
  return registry;
}
