/**
 * One START_REPLICATION session as a pull-based async iterator: each batch is what one socket read
 * brought (the XLogData in it, whether the server asked for a reply). While the consumer holds a batch
 * one more read may arrive (it becomes the next batch); then the socket rests until the consumer pulls
 * again, so backpressure is simply not reading. A consumer that is done before the next read (a
 * synchronous standby's write, fsync and reply) never pauses the socket at all. The session checks
 * WAL is contiguous, ends at endLsn, follows the server's end of a timeline, detects a dead peer, and is
 * the one place status updates are sent from, never after our CopyDone.
 * The loop of pg_receivewal's HandleCopyStream (src/bin/pg_basebackup/receivelog.c), without files.
 */
import type { ReplicationConnection } from './connection.js';
import { WalstreamError } from './errors.js';
import { formatLsn, segmentStart } from './lsn.js';
import { startReplicationCommand, type TimelineEnd } from './protocol/commands.js';
import { STATUS_UPDATE_LENGTH, decodeServerCopyMessage, encodeStatusUpdate, pgNow } from './protocol/messages.js';

/** A run of WAL bytes at `walStart`. `data` is a view, valid only until the next batch is pulled. */
export interface WalPiece {
  walStart: bigint;
  data: Buffer;
}

/** What one socket read brought. The session reads nothing more until the next one is pulled. */
export interface WalBatch {
  /** Contiguous WAL, in order (empty when the read held only a keepalive). */
  readonly pieces: readonly WalPiece[];
  /** The server's end of WAL in the latest message (walsender.c: its flush position when it sent). */
  readonly serverWalEnd: bigint;
  /** The server asked for a status update now (a keepalive with replyRequested). */
  readonly replyRequested: boolean;
}

export interface StreamSessionOptions {
  slot?: string;
  startLsn: bigint;
  timeline: number;
  /** End once WAL up to here is received (the segment boundary at or after it ends the last piece). */
  endLsn?: bigint;
  segmentSize: number;
  /** The positions to report: what the consumer has written and made durable (flush 0 when not reported). */
  positions: () => { writeLsn: bigint; flushLsn: bigint };
  /** Milliseconds between status updates; 0 sends them only when asked. */
  statusIntervalMs: number;
  /** Ends the iteration at the next pull (a stop request); then call finish(). */
  signal?: AbortSignal;
  /**
   * After handing over a batch that brought everything the server had (its WAL end), leave the socket
   * unread this many milliseconds once the consumer pulls again, so a trickle arrives in one read
   * (0, the default: read at once). Catching up never waits.
   */
  readCoalesceMs?: number;
  /**
   * Dead-peer detection, like walreceiver.c with wal_receiver_timeout: with nothing from the server
   * for half of this (milliseconds), ask for a reply; with nothing for all of it, fail with
   * WalstreamError('TIMEOUT'). Time the consumer holds a batch does not count. 0 or absent: never.
   */
  timeoutMs?: number;
}

/** How a session ended. */
export type StreamOutcome =
  | { kind: 'timeline-end'; end: TimelineEnd; receivedLsn: bigint }
  | { kind: 'endpos'; receivedLsn: bigint }
  | { kind: 'stopped'; receivedLsn: bigint };

/**
 * After our CopyDone, how long the server may take to end the copy before the connection is dropped:
 * what was archived is durable already, and a stalled network must not hold a stop request.
 */
const STOP_GRACE_MS = 1000;

type Waiter = { resolve: (r: IteratorResult<WalBatch>) => void; reject: (err: Error) => void };

/**
 * Streams from `options.startLsn`: iterate it with `for await`, then call finish(), which sends the
 * final status update and CopyDone and resolves with how the session ended. Iterate once.
 */
export class StreamSession implements AsyncIterable<WalBatch>, AsyncIterator<WalBatch> {
  private readonly conn: ReplicationConnection;
  private readonly options: StreamSessionOptions;
  /** Next LSN expected from the server. */
  private expected: bigint;
  private readonly endBoundary: bigint | null;
  private latestServerWalEnd = 0n;
  /** The batch being collected from the current read (its arrays are reused between batches). */
  private pieces: WalPiece[] = [];
  private replyRequested = false;
  /** A collected batch the consumer has not pulled yet, and the number of the first read it holds views into. */
  private ready: WalBatch | null = null;
  private readyFirstRead = 0;
  /** While the consumer holds a batch (until its next pull): the number of the first read it holds views into. */
  private heldFirstRead: number | null = null;
  /** Socket reads so far. */
  private reads = 0;
  /** Whether the socket is paused by us. */
  private socketPaused = false;
  /** finish() was called: nothing more is handed over, and the socket reads on to the end of the copy. */
  private finishing = false;
  private waiter: Waiter | null = null;
  private failure: Error | null = null;
  /** Why iteration ends: the server ended the timeline, endLsn was reached, or a stop request. */
  private ending: 'endpos' | 'stopped' | null = null;
  private streaming: Promise<TimelineEnd | null> | null = null;
  private streamEnd: { end: TimelineEnd | null } | null = null;
  private serverEndedCopy = false;
  private copyDoneSent = false;
  /** finish() dropped a connection whose server did not end the copy in time. */
  private graceExpired = false;
  private readonly statusPayload = Buffer.allocUnsafe(STATUS_UPDATE_LENGTH);
  private readonly statusView = new DataView(this.statusPayload.buffer, this.statusPayload.byteOffset, STATUS_UPDATE_LENGTH);
  private statusTimer: NodeJS.Timeout | null = null;
  private watchdog: NodeJS.Timeout | null = null;
  private coalesceTimer: NodeJS.Timeout | null = null;
  private lastHeardAt = performance.now();
  private pinged = false;
  private readonly onAbort = () => this.stop();

  constructor(conn: ReplicationConnection, options: StreamSessionOptions) {
    this.conn = conn;
    this.options = options;
    this.expected = options.startLsn;
    // Like pg_receivewal, WAL ends at the first segment boundary at or past endLsn.
    this.endBoundary = options.endLsn === undefined ? null
      : segmentStart(options.endLsn + BigInt(options.segmentSize) - 1n, options.segmentSize);
  }

  [Symbol.asyncIterator](): AsyncIterator<WalBatch> {
    return this;
  }

  /** End of the WAL received so far. */
  get receivedLsn(): bigint {
    return this.expected;
  }

  /**
   * Send a standby status update with the consumer's positions, unless the copy has ended on our side
   * (PostgreSQL ends the walsender with FATAL on CopyData after CopyDone; receivelog.c: still_sending).
   */
  sendStatus(replyRequested = false): void {
    if (this.copyDoneSent || this.failure || !this.streaming) return;
    const { writeLsn, flushLsn } = this.options.positions();
    this.conn.sendCopyData(encodeStatusUpdate({
      writeLsn, flushLsn,
      applyLsn: 0n, // an archiver applies nothing: never let remote_apply wait on it
      clientTime: pgNow(),
      replyRequested,
    }, this.statusPayload, this.statusView));
  }

  /** Ask the iteration to end at the next pull (a stop request); then call finish(). */
  stop(): void {
    if (this.ending || this.streamEnd) return;
    this.ending = 'stopped';
    this.wake();
  }

  /** The next batch; done when the stream ended (server, endLsn or stop), rejected when it failed. */
  next(): Promise<IteratorResult<WalBatch>> {
    if (!this.streaming) this.start();
    this.release();
    if (this.failure) return Promise.reject(this.failure);
    const batch = this.take();
    if (batch) return Promise.resolve({ done: false, value: batch });
    if (this.ending || this.streamEnd) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => { this.waiter = { resolve, reject }; });
  }

  /** `break` out of the loop: the same as a stop request (call finish() next). */
  async return(): Promise<IteratorResult<WalBatch>> {
    this.stop();
    return { done: true, value: undefined };
  }

  /**
   * End the session: unless the server ended the timeline, send a final status update (the
   * consumer's positions, so a slot's restart_lsn reflects what is durable: call it once they are
   * final) and CopyDone, then wait for the server to end the copy (1 s at most). Rejects when the
   * stream failed or the server ended it in a way the protocol does not allow.
   */
  async finish(): Promise<StreamOutcome> {
    if (!this.streaming) this.start();
    // Whatever ended the session, the connection is read again: after a timeline end it carries the
    // next command (TIMELINE_HISTORY, the next START_REPLICATION).
    this.finishing = true;
    this.stopCoalescing();
    this.heldFirstRead = null;
    this.ready = null;
    this.socketPaused = false;
    this.conn.resume();
    try {
      if (this.failure) throw this.failure;
      if (!this.streamEnd) {
        this.ending ??= 'stopped';
        this.sendStatus();
        this.endCopy(); // the server's answer to it is read: the socket was resumed above
        const grace = setTimeout(() => {
          this.graceExpired = true;
          this.conn.destroy();
        }, STOP_GRACE_MS);
        try {
          await this.streaming!.catch(() => {});
        } finally {
          clearTimeout(grace);
        }
        if (this.graceExpired) return { kind: this.ending, receivedLsn: this.expected }; // dropped after the grace
      }
      if (this.failure) throw this.failure;
      const end = this.streamEnd!.end;
      if (end) return { kind: 'timeline-end', end, receivedLsn: this.expected };
      if (this.serverEndedCopy && !this.ending) {
        throw new WalstreamError('PROTOCOL', `the server ended the stream at ${formatLsn(this.expected)} without naming the next timeline`);
      }
      return { kind: this.ending ?? 'stopped', receivedLsn: this.expected };
    } finally {
      this.cleanUp();
    }
  }

  private start(): void {
    const options = this.options;
    options.signal?.addEventListener('abort', this.onAbort);
    if (options.signal?.aborted) this.ending = 'stopped';
    this.streaming = this.conn.startStreaming(startReplicationCommand(options), {
      onWal: (walStart, data, serverWalEnd) => this.onWal(walStart, data, serverWalEnd),
      onCopyData: (payload) => this.onCopyData(payload),
      onCopyDone: () => {
        this.serverEndedCopy = true;
        this.endCopy(); // pg_receivewal answers the server's CopyDone at once
      },
      onReadEnd: () => this.onReadEnd(),
    });
    this.streaming.then((end) => {
      this.collect(); // the read that ended the copy also ends its batch (no read-end call follows it)
      this.streamEnd = { end };
      if (!end && !this.copyDoneSent) {
        this.fail(new WalstreamError('PROTOCOL', `the server ended the copy at ${formatLsn(this.expected)} without CopyDone (ReadyForQuery during COPY)`));
      }
      this.wake();
    }, (err: Error) => { if (!this.graceExpired) this.fail(err); });
    // First status update right away, as pg_receivewal does, so the server knows our positions.
    setImmediate(() => this.sendStatus());
    if (options.statusIntervalMs > 0) {
      this.statusTimer = setInterval(() => this.sendStatus(), options.statusIntervalMs);
      this.statusTimer.unref();
    }
    const timeoutMs = options.timeoutMs ?? 0;
    if (timeoutMs > 0) {
      this.watchdog = setInterval(() => this.checkAlive(timeoutMs), Math.max(100, Math.min(1000, timeoutMs / 4)));
      this.watchdog.unref();
    }
  }

  /** walreceiver.c WalReceiverMain: a ping at half of wal_receiver_timeout, "terminating … due to timeout" at all of it. */
  private checkAlive(timeoutMs: number): void {
    const now = performance.now();
    if (this.heldFirstRead !== null || this.ready || this.coalesceTimer) this.lastHeardAt = now; // our own rest, not the server's silence
    const silent = now - this.lastHeardAt;
    if (silent < timeoutMs / 2) {
      this.pinged = false;
    } else if (silent >= timeoutMs) {
      this.fail(new WalstreamError('TIMEOUT', `no message from the server for ${Math.round(silent / 1000)} s; taking the connection for dead and reconnecting (--timeout ${Math.round(timeoutMs / 1000)})`));
    } else if (!this.pinged) {
      this.pinged = true;
      this.sendStatus(true);
    }
  }

  private onWal(walStart: bigint, data: Buffer, serverWalEnd: bigint): void {
    this.latestServerWalEnd = serverWalEnd;
    if (this.ending || this.failure) return; // after endLsn or a stop: not ours to archive
    if (walStart !== this.expected) {
      throw new WalstreamError('PROTOCOL', `server sent WAL at ${formatLsn(walStart)} but ${formatLsn(this.expected)} was expected next`);
    }
    let length = data.length;
    let end = walStart + BigInt(length);
    if (this.endBoundary !== null && end > this.endBoundary) {
      length = Math.max(0, Number(this.endBoundary - walStart));
      end = walStart + BigInt(length);
    }
    this.expected = end;
    if (length > 0) this.pieces.push({ walStart, data: length === data.length ? data : data.subarray(0, length) });
    if (this.options.endLsn !== undefined && end >= this.options.endLsn) this.ending = 'endpos';
  }

  private onCopyData(payload: Buffer): void {
    const message = decodeServerCopyMessage(payload);
    if (message.kind === 'keepalive') {
      this.latestServerWalEnd = message.serverWalEnd;
      if (message.replyRequested) this.replyRequested = true;
    }
  }

  /** A socket read is fully parsed: hand its batch over and rest the socket until the next pull. */
  private onReadEnd(): void {
    this.lastHeardAt = performance.now();
    this.reads++;
    this.collect();
    // The transport reads into two buffers in turn (see ByteTransport.start): the next read would
    // overwrite the one before this, so rest while the consumer still has views into it. Catching up
    // (the server has sent more than arrived), rest at once while a batch is out: the WAL piles up in
    // the socket meanwhile and the next read is a large one, where reading at once makes many small.
    const behind = this.expected < this.latestServerWalEnd;
    if (!this.mayRead() || (behind && (this.heldFirstRead !== null || this.ready))) this.pauseSocket();
  }

  private collect(): void {
    if (this.copyDoneSent && this.pieces.length === 0) {
      // Our CopyDone is out: a keepalive then asks for nothing we may send; keep reading for the end.
      this.replyRequested = false;
      if (this.ending) this.wake();
      return;
    }
    if (this.pieces.length === 0 && !this.replyRequested) {
      if (this.ending) this.wake();
      return;
    }
    if (this.finishing) {
      // After finish() resumed reading: what arrives then is not handed over.
      this.pieces.length = 0;
      this.replyRequested = false;
      return;
    }
    const ready = this.ready;
    if (ready) {
      // The consumer has not pulled the previous read's batch yet: this read joins it.
      (ready.pieces as WalPiece[]).push(...this.pieces);
      this.ready = { pieces: ready.pieces, serverWalEnd: this.latestServerWalEnd, replyRequested: ready.replyRequested || this.replyRequested };
      this.pieces.length = 0;
    } else {
      this.ready = { pieces: this.pieces, serverWalEnd: this.latestServerWalEnd, replyRequested: this.replyRequested };
      this.readyFirstRead = this.reads;
      this.pieces = [];
    }
    this.replyRequested = false;
    this.wake();
  }

  private take(): WalBatch | null {
    const batch = this.ready;
    if (!batch) return null;
    this.ready = null;
    this.heldFirstRead = this.readyFirstRead;
    return batch;
  }

  /** The consumer is done with the batch it held: read on (after a rest when caught up). */
  private release(): void {
    if (this.heldFirstRead === null) return;
    this.heldFirstRead = null;
    const coalesceMs = this.options.readCoalesceMs ?? 0;
    if (!this.ready && !this.coalesceTimer && coalesceMs > 0 && this.expected >= this.latestServerWalEnd && !this.ending && !this.streamEnd) {
      // Not unref'd: a paused socket alone does not keep the event loop alive.
      this.pauseSocket();
      this.coalesceTimer = setTimeout(() => this.stopCoalescing(), coalesceMs);
    } else if (!this.coalesceTimer && this.mayRead() && !this.ready) {
      this.resumeSocket();
    }
  }

  private stopCoalescing(): void {
    if (!this.coalesceTimer) return;
    clearTimeout(this.coalesceTimer);
    this.coalesceTimer = null;
    if (this.mayRead()) this.resumeSocket();
  }

  /**
   * Whether the next read overwrites no buffer the consumer has (or will get) views into: it reuses
   * the buffer of the read before the latest, so only views into the latest read may be out.
   */
  private mayRead(): boolean {
    return (this.heldFirstRead === null || this.heldFirstRead === this.reads) && (!this.ready || this.readyFirstRead === this.reads);
  }

  private pauseSocket(): void {
    if (this.socketPaused) return;
    this.socketPaused = true;
    this.conn.pause();
  }

  private resumeSocket(): void {
    if (!this.socketPaused) return;
    this.socketPaused = false;
    this.conn.resume();
  }

  private wake(): void {
    const waiter = this.waiter;
    if (!waiter) return;
    if (this.failure) {
      this.waiter = null;
      waiter.reject(this.failure);
      return;
    }
    const batch = this.take();
    if (batch) {
      this.waiter = null;
      waiter.resolve({ done: false, value: batch });
    } else if (this.ending || this.streamEnd) {
      this.waiter = null;
      waiter.resolve({ done: true, value: undefined });
    }
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.conn.destroy(err);
    this.wake();
  }

  private endCopy(): void {
    if (this.copyDoneSent) return;
    this.copyDoneSent = true;
    this.conn.endCopy();
  }

  /**
   * Abandon the session (the consumer failed): drop the connection without a final status. Safe
   * after finish() too.
   */
  dispose(): void {
    if (!this.streamEnd && !this.failure && this.streaming) this.fail(new WalstreamError('STOPPED', 'session abandoned'));
    this.cleanUp();
  }

  private cleanUp(): void {
    if (this.statusTimer) clearInterval(this.statusTimer);
    if (this.watchdog) clearInterval(this.watchdog);
    if (this.coalesceTimer) clearTimeout(this.coalesceTimer);
    this.statusTimer = this.watchdog = this.coalesceTimer = null;
    this.options.signal?.removeEventListener('abort', this.onAbort);
  }
}
