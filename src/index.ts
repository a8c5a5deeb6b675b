/**
 * pg-walstream: PostgreSQL physical replication in pure TypeScript.
 *
 * - `Archiver`: the whole archiver (what `walstream receive` runs) in-process.
 * - `WalReceiver`: the raw WAL stream as an async iterator, for custom sinks.
 * - `WalSink` / `WalSegmentWriter`: the storage interface `DirectorySink` and `BucketSink` implement; plug in your own.
 * - `ArchiveReader`: reading an archive back (`DirectoryReader`, `S3Store`), as restore does.
 */
export { Archiver, type ArchiverOptions, type ArchiverEvents } from './archiver.js';
export { WalReceiver, type WalReceiverOptions, type WalReceiverEvents, type WalChunk } from './receiver.js';
export { DirectorySink, type DirectorySinkOptions } from './archive/directory.js';
export { BucketSink, type BucketSinkOptions } from './archive/bucket-sink.js';
export { S3Store, parseS3Url, type S3Location, type S3StoreOptions } from './archive/s3-store.js';
export { DirectoryReader, type ArchiveReader, type ArchiveEntry } from './archive/reader.js';
export type { BucketArchiveOptions } from './archiver.js';
export type { WalSink, WalSegmentWriter, CloseMode } from './archive/sink.js';
export type { CompletedSegment } from './segments.js';
export {
  parseLsn, formatLsn, walFileName, segmentFileName, parseSegmentFileName, historyFileName,
  segmentNumber, segmentOffset, segmentStart, isValidSegmentSize,
} from './lsn.js';
export { PgError, WalstreamError, type WalstreamErrorCode } from './errors.js';
export { type ConnectionOptions, parseConnectionString, redactConnectionString } from './conninfo.js';
export { restoreWalFile } from './restore.js';
export { cleanupArchive } from './archive/cleanup.js';
export { findResumePoint, decodeLongPageHeader, type ResumePoint, type LongPageHeader } from './archive/scan.js';
export { type ArchiverStatus, type ArchiverState, statusToJson, isHealthy } from './archiver-status.js';
export { archiverRegistry, type StatusSource } from './metrics.js';
export { startMonitoringServer, type MonitoringServer, type MonitoringServerOptions } from './metrics-server.js';
export { probeSlot, type SlotReport } from './slot-probe.js';
export { checkArchive, type CheckOptions, type CheckResult, type Threshold } from './archive-check.js';
export { readArchiveReport, type ArchiveReport, type ArchiveGap } from './archive/archive-status.js';
export { listGapMarkers, parseGapMarker, gapMarkerName, type GapMarker } from './archive/gaps.js';
export { verifyArchive, type VerifyOptions, type VerifyResult, type VerifyProgress, type FileReport } from './walfile/verify-archive.js';
