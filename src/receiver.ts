/**
 * WalReceiver: the raw WAL stream as an async iterator, for custom sinks. The caller decides what is
 * durable and says so with acknowledge(); nothing is reported as flushed before that.
 */
import { EventEmitter } from 'node:events';
import { type ConnectionOptions, type ConnectionTarget, targetsFor } from './conninfo.js';
import { ReplicationConnection } from './connection.js';
import { WalstreamError } from './errors.js';
import { explainServerError } from './server-errors.js';
import { defaultStart } from './start-position.js';
import { StreamSession } from './stream.js';
import { checkServer } from './server-check.js';

/**
 * A run of WAL bytes. `data` is the caller's own copy, valid after the next chunk arrives; with
 * `borrowChunks` it is a view of the receive buffer, valid only until the next chunk is pulled.
 */
export interface WalChunk {
  startLsn: bigint;
  data: Uint8Array;
  timeline: number;
  /** The server's end of WAL when it sent this chunk (how far behind the stream runs). */
  serverWalEnd: bigint;
}

export interface WalReceiverOptions {
  /** Where to connect: libpq-style fields or a connection string / URI. Several hosts: the first that answers. */
  connection: ConnectionOptions | string;
  /** Physical slot to stream from; acknowledge() then moves its restart_lsn. */
  slot?: string;
  /**
   * First LSN to receive, exactly. Default: the start of the segment holding the slot's restart_lsn
   * (PG ≥ 15), else of the server's current position (pg_receivewal's choice), so chunks begin a segment.
   */
  startLsn?: bigint;
  /** Timeline of startLsn; default: the slot's restart timeline or the server's current one. */
  timeline?: number;
  /** End the stream once WAL up to here has been yielded. */
  endLsn?: bigint;
  /** Seconds between status updates (default 10). */
  statusIntervalSeconds?: number;
  /** Report acknowledged positions as flush even without a slot (e.g. as a synchronous standby). */
  reportFlush?: boolean;
  /** Ignored: iteration pulls, and the socket is not read while the loop body awaits. */
  highWaterMark?: number;
  /**
   * Once caught up with the server, leave the socket unread this many milliseconds so that trickling
   * WAL arrives in fewer, larger chunks (fewer wake-ups; the Archiver uses 10). Default 0: at once.
   */
  readCoalesceMs?: number;
  /**
   * Seconds without any message from the server before the connection is taken for dead (iteration
   * then rejects with WalstreamError('TIMEOUT')); also bounds start-up and each command. Default 60,
   * like wal_receiver_timeout; 0 waits forever.
   */
  timeoutSeconds?: number;
  /**
   * Yield views of the socket's read buffers instead of a fresh copy of each chunk: `chunk.data` is
   * valid only until the loop asks for the next chunk, so copy what you keep (a queue, a later write).
   * Saves an allocation and a copy of every byte (the only per-message copy left). Default false.
   */
  borrowChunks?: boolean;
  applicationName?: string;
  env?: NodeJS.ProcessEnv;
}

/** Events: 'timeline' when the server switches timeline ({ timeline, startLsn, previousTimeline }); 'connected' with the server's identity. */
export interface WalReceiverEvents {
  timeline: [{ timeline: number; startLsn: bigint; previousTimeline: number }];
  connected: [{ systemId: string; timeline: number; segmentSize: number; startLsn: bigint }];
}

/**
 * Streams WAL from a server; iterate it with `for await`. One iteration per receiver. Iteration pulls:
 * while the loop body awaits, the socket is not read. `break` ends the stream cleanly.
 *
 * @example
 * ```ts
 * import { WalReceiver, parseLsn } from 'pg-walstream';
 *
 * const receiver = new WalReceiver({ connection: 'host=primary user=replicator', slot: 'backup' });
 * for await (const chunk of receiver) {
 *   await sink.write(chunk.startLsn, chunk.data);                        // your storage
 *   receiver.acknowledge(chunk.startLsn + BigInt(chunk.data.length));    // durable: moves the slot
 *   if (chunk.startLsn >= parseLsn('0/5000000')) break;
 * }
 * await receiver.close();
 * ```
 */
export class WalReceiver extends EventEmitter<WalReceiverEvents> implements AsyncIterable<WalChunk> {
  private readonly options: WalReceiverOptions;
  private readonly targets: ConnectionTarget[];
  private readonly abort = new AbortController();
  private iterator: AsyncGenerator<WalChunk, void, undefined> | null = null;
  private written = 0n;
  private acknowledged = 0n;
  private session: StreamSession | null = null;
  private statusTimer: NodeJS.Timeout | null = null;

  constructor(options: WalReceiverOptions) {
    super();
    this.options = options;
    this.targets = targetsFor(options.connection, options.env, options.applicationName);
  }

  /**
   * Report that WAL up to `lsn` is durably stored by the caller: sent to the server as the flush
   * position (moving a slot's restart_lsn) within 100 ms. Never acknowledge what is not durable.
   */
  acknowledge(lsn: bigint): void {
    if (lsn <= this.acknowledged) return;
    this.acknowledged = lsn;
    if (!this.statusTimer) {
      this.statusTimer = setTimeout(() => {
        this.statusTimer = null;
        this.session?.sendStatus();
      }, 100);
    }
  }

  /**
   * End the stream: a final status update (what was acknowledged) and CopyDone are sent, iteration
   * completes, and this resolves when the connection is closed.
   */
  async close(): Promise<void> {
    this.abort.abort();
    await this.iterator?.return(undefined).catch(() => {});
    if (this.statusTimer) clearTimeout(this.statusTimer);
  }

  [Symbol.asyncIterator](): AsyncIterator<WalChunk> {
    if (this.iterator) throw new WalstreamError('BAD_OPTION', 'a WalReceiver can be iterated once; create a new one to stream again');
    const chunks = this.chunks();
    this.iterator = chunks;
    return {
      next: () => chunks.next().catch((err) => { throw explainServerError(err); }),
      return: () => chunks.return(undefined),
    };
  }

  /** The chunks of every session, one connection, following timeline switches. */
  private async *chunks(): AsyncGenerator<WalChunk, void, undefined> {
    const timeoutMs = (this.options.timeoutSeconds ?? 60) * 1000;
    const conn = await ReplicationConnection.openFirst(this.targets, { signal: this.abort.signal, timeoutMs });
    const keepOnAbort = conn.destroyOnAbort(this.abort.signal);
    try {
      const { version, identity, segmentSize } = await checkServer(conn);
      const start = this.options.startLsn === undefined ? await defaultStart(conn, identity, this.options.slot, segmentSize, version) : null;
      let timeline = this.options.timeline ?? start?.timeline ?? identity.timeline;
      let startLsn = this.options.startLsn ?? start!.startLsn;
      this.written = startLsn;
      this.emit('connected', { systemId: identity.systemId, timeline, segmentSize, startLsn });
      const reportFlush = Boolean(this.options.slot) || Boolean(this.options.reportFlush);
      const borrow = this.options.borrowChunks === true;
      for (;;) {
        const session = new StreamSession(conn, {
          slot: this.options.slot, startLsn, timeline, endLsn: this.options.endLsn, segmentSize,
          statusIntervalMs: (this.options.statusIntervalSeconds ?? 10) * 1000,
          positions: () => ({ writeLsn: this.written, flushLsn: reportFlush ? this.acknowledged : 0n }),
          readCoalesceMs: this.options.readCoalesceMs ?? 0,
          timeoutMs,
          signal: this.abort.signal,
        });
        this.session = session;
        let outcome;
        try {
          for await (const batch of session) {
            for (const piece of batch.pieces) {
              this.written = piece.walStart + BigInt(piece.data.length);
              // The piece is a view valid until the session's next batch is pulled, which only happens
              // after the consumer has asked for the chunk after the batch's last piece.
              const data = borrow ? piece.data : Buffer.from(piece.data);
              yield { startLsn: piece.walStart, data, timeline, serverWalEnd: batch.serverWalEnd };
            }
            if (batch.replyRequested) session.sendStatus();
          }
          outcome = await session.finish();
        } finally {
          // `break` (or close()) while a chunk was out: still end cleanly, with the final status update.
          if (!outcome) await session.finish().catch(() => {});
          this.session = null;
          session.dispose();
        }
        if (outcome.kind !== 'timeline-end') return;
        const previousTimeline = timeline;
        timeline = outcome.end.nextTimeline;
        startLsn = outcome.end.nextTimelineStart;
        this.emit('timeline', { timeline, startLsn, previousTimeline });
        if (this.abort.signal.aborted) return;
      }
    } catch (err) {
      if (this.abort.signal.aborted) return; // closed: the end of iteration, not an error
      throw err;
    } finally {
      keepOnAbort();
      await conn.close();
    }
  }
}
