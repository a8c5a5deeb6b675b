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
import { runStreamSession, type WalConsumer } from './stream.js';

/** A run of WAL bytes. `data` is the caller's own copy: it stays valid after the next chunk arrives. */
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
  /** Chunks buffered ahead of the consumer before the socket is paused (default 16). */
  highWaterMark?: number;
  /**
   * Once caught up with the server, leave the socket unread this many milliseconds so that trickling
   * WAL arrives in fewer, larger chunks (fewer wake-ups; the Archiver uses 10). Default 0: at once.
   */
  readCoalesceMs?: number;
  applicationName?: string;
  env?: NodeJS.ProcessEnv;
}

/** Events: 'timeline' when the server switches timeline ({ timeline, startLsn, previousTimeline }); 'connected' with the server's identity. */
export interface WalReceiverEvents {
  timeline: [{ timeline: number; startLsn: bigint; previousTimeline: number }];
  connected: [{ systemId: string; timeline: number; segmentSize: number; startLsn: bigint }];
}

type Waiter = { resolve: (r: IteratorResult<WalChunk>) => void; reject: (e: unknown) => void };

/**
 * Streams WAL from a server; iterate it with `for await`. One iteration per receiver. Iteration pulls:
 * while the loop body awaits, the socket is paused. `break` ends the stream cleanly.
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
  private readonly queue: WalChunk[] = [];
  private waiter: Waiter | null = null;
  private drained: (() => void) | null = null;
  private started = false;
  private finished = false;
  private failure: unknown = null;
  private task: Promise<void> | null = null;
  private written = 0n;
  private acknowledged = 0n;
  private sendStatus: (() => void) | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private readonly idleWaiters: (() => void)[] = [];

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
        this.sendStatus?.();
      }, 100);
    }
  }

  /** End the stream: iteration completes after the chunks already queued; resolves when the connection is closed. */
  async close(): Promise<void> {
    this.abort.abort();
    this.releaseProducer();
    this.notifyIdle();
    if (this.task) await this.task.catch(() => {});
    if (this.statusTimer) clearTimeout(this.statusTimer);
  }

  [Symbol.asyncIterator](): AsyncIterator<WalChunk> {
    if (this.started) throw new WalstreamError('BAD_OPTION', 'a WalReceiver can be iterated once; create a new one to stream again');
    this.started = true;
    this.task = this.produce().then(
      () => { this.finished = true; this.wake(); },
      (err) => { this.failure = explainServerError(err); this.finished = true; this.wake(); },
    );
    return {
      next: () => this.next(),
      return: async () => {
        await this.close();
        return { done: true, value: undefined };
      },
    };
  }

  private next(): Promise<IteratorResult<WalChunk>> {
    const chunk = this.queue.shift();
    if (chunk) {
      if (this.queue.length < (this.options.highWaterMark ?? 16)) this.releaseProducer();
      return Promise.resolve({ done: false, value: chunk });
    }
    if (this.failure) {
      const err = this.failure;
      this.failure = null;
      return Promise.reject(err);
    }
    if (this.finished) return Promise.resolve({ done: true, value: undefined });
    this.releaseProducer();
    const waiting = new Promise<IteratorResult<WalChunk>>((resolve, reject) => { this.waiter = { resolve, reject }; });
    this.notifyIdle();
    return waiting;
  }

  private wake(): void {
    const waiter = this.waiter;
    if (!waiter) return;
    this.waiter = null;
    this.next().then(waiter.resolve, waiter.reject);
  }

  /** Resolves when the caller has taken every queued chunk and asked for the next (or closed). */
  private idle(): Promise<void> {
    if ((this.queue.length === 0 && this.waiter) || this.abort.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters.splice(0);
    for (const resolve of waiters) resolve();
  }

  private releaseProducer(): void {
    const drained = this.drained;
    this.drained = null;
    drained?.();
  }

  private consumer(timeline: number): WalConsumer {
    return {
      onData: (walStart, data, serverWalEnd) => {
        this.queue.push({ startLsn: walStart, data: Buffer.from(data), timeline, serverWalEnd });
        this.written = walStart + BigInt(data.length);
        this.wake();
        if (this.queue.length >= (this.options.highWaterMark ?? 16) && !this.abort.signal.aborted) {
          // Backpressure: the stream session pauses the socket until the consumer has caught up.
          return new Promise<void>((resolve) => { this.drained = resolve; });
        }
      },
      writeLsn: () => this.written,
      flushLsn: () => this.acknowledged,
      flush: async () => {},
      settle: () => this.idle(),
    };
  }

  private async produce(): Promise<void> {
    const conn = await ReplicationConnection.openFirst(this.targets);
    try {
      const identity = await conn.identifySystem();
      const segmentSize = await conn.segmentSize();
      const start = this.options.startLsn === undefined ? await defaultStart(conn, identity, this.options.slot, segmentSize) : null;
      let timeline = this.options.timeline ?? start?.timeline ?? identity.timeline;
      let startLsn = this.options.startLsn ?? start!.startLsn;
      this.written = startLsn;
      this.emit('connected', { systemId: identity.systemId, timeline, segmentSize, startLsn });
      for (;;) {
        const outcome = await runStreamSession(conn, this.consumer(timeline), {
          slot: this.options.slot, startLsn, timeline, endLsn: this.options.endLsn, segmentSize,
          statusIntervalMs: (this.options.statusIntervalSeconds ?? 10) * 1000,
          reportFlush: Boolean(this.options.slot) || Boolean(this.options.reportFlush),
          synchronous: false,
          readCoalesceMs: this.options.readCoalesceMs ?? 0,
          signal: this.abort.signal,
          onStatusSender: (send) => { this.sendStatus = send; },
        });
        this.sendStatus = null;
        if (outcome.kind !== 'timeline-end') return;
        const previousTimeline = timeline;
        timeline = outcome.end.nextTimeline;
        startLsn = outcome.end.nextTimelineStart;
        this.emit('timeline', { timeline, startLsn, previousTimeline });
        if (this.abort.signal.aborted) return;
      }
    } finally {
      await conn.close();
    }
  }
}
