/**
 * Storage behind one small interface, like pg_receivewal's WalWriteMethod (walmethods.h): the receiver
 * decides what to write and when it must be durable; a sink decides how (local directory, object store).
 */

/** How a segment being written is finished. */
export type CloseMode =
  /** The segment is full: make it durable, then visible under its final name. */
  | 'complete'
  /** Streaming stopped mid-segment (stop, endpos, timeline end): keep it durable as NAME.partial. */
  | 'partial';

/** One segment being written, from offset 0, in order. */
export interface WalSegmentWriter {
  /**
   * Append bytes at the current end. `data` is valid during the call, and until the promise it
   * returns settles: a sink that writes later must copy it. Return a promise to make the receiver
   * wait (backpressure).
   */
  write(data: Uint8Array): void | Promise<void>;
  /**
   * Optional: how many of the appended bytes are still only in the sink's memory (not yet handed to
   * the operating system). The reported write position leaves them out.
   */
  unwritten?(): number;
  /**
   * Optional: true when written bytes go to the device without page-cache writeback (O_DIRECT). Then
   * a sync costs a device flush and gains no smoother writeback, so the receiver syncs mid-segment
   * less often (at most once a second) while WAL streams in fast.
   */
  readonly writesDirect?: boolean;
  /**
   * Make everything written so far durable; resolves only when it is. Writes may be issued while a
   * sync is still running (the receiver syncs mid-segment in the background): the sync must cover
   * what was written before it was called, and may cover more.
   */
  sync(): Promise<void>;
  /**
   * Optional: make everything written so far durable before returning (a blocking fsync). Used in
   * synchronous mode, where the fsync is the latency a committing transaction waits for.
   */
  syncNow?(): void;
  /** Finish the segment (see CloseMode). Resolves when the result is durable. */
  close(mode: CloseMode): Promise<void>;
}

/** An archive: where segments and history files go, and what it already holds. */
export interface WalSink {
  /** Names of the files the archive holds (segments, NAME.partial, .history, compressed variants). */
  list(): Promise<string[]>;
  /** The first `length` bytes of a file, or null when it does not exist (reads the long page header). */
  readHead(name: string, length: number): Promise<Uint8Array | null>;
  /**
   * Start segment `name` (24 hex digits). It must not be visible under `name` before
   * close('complete'); an existing NAME.partial is overwritten from offset 0.
   */
  openSegment(name: string, segmentSize: number): WalSegmentWriter | Promise<WalSegmentWriter>;
  /** Store a whole small file (a timeline history file) durably and atomically. */
  writeFile(name: string, content: Uint8Array): Promise<void>;
  /** Optional: verify the archive is usable before streaming starts (throws a one-line error if not). */
  check?(): Promise<void>;
  /**
   * Optional: take the archive for this writer alone until close() (one archiver per archive);
   * throws WalstreamError('ARCHIVE_LOCKED') naming the holder when another one has it.
   */
  lock?(): Promise<void>;
  /** Optional: a whole stored file, or null when absent (reads compressed segments back). */
  readFile?(name: string): Promise<Uint8Array | null>;
  /** Optional: size in bytes of a stored file, or null when absent (resume checks a segment is whole). */
  size?(name: string): Promise<number | null>;
  /**
   * Optional: move a file out of the way as NAME.REASON (e.g. 'damaged'), a name no WAL tool takes
   * for a segment; never deleted, an operator may want it. Returns the new name.
   */
  setAside?(name: string, reason: string): Promise<string>;
  /**
   * Optional: permission bits for the files created from now on: the server's data_directory_mode
   * made a file mode (0600, or 0640 with group access), as pg_receivewal creates them.
   */
  useFileMode?(mode: number): void;
  /**
   * Optional: the highest flush position the sink lets the archiver report, or null for no limit (a
   * bucket archive with flush-after-upload: only what the bucket holds). The report is the lower of
   * this and what is locally durable.
   */
  flushLimit?(): bigint | null;
  /** Optional: the server's segment size, told before streaming starts. */
  useSegmentSize?(size: number): void;
  /** Optional: `listener` runs when flushLimit() may have moved (null removes it). */
  onFlushLimit?(listener: (() => void) | null): void;
  /** Optional: what uploads to a remote store have done (a bucket archive), for status() and metrics. */
  uploadStatus?(): import('../archiver-status.js').UploadStatus;
  /** Optional: release resources when the archiver is done with the sink. */
  close?(): Promise<void>;
}

/** True when `value` is a thenable (how the receiver tells a synchronous sink from an asynchronous one). */
export function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown })?.then === 'function';
}

/** The name to set `name` aside under: NAME.REASON, or NAME.REASON.1, … when `taken` has it. */
export function asideName(name: string, reason: string, taken: ReadonlySet<string>): string {
  let aside = `${name}.${reason}`;
  for (let i = 1; taken.has(aside); i++) aside = `${name}.${reason}.${i}`;
  return aside;
}
