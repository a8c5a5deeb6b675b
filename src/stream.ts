/**
 * One START_REPLICATION session: feed XLogData to a consumer in order, answer keepalives, send
 * standby status updates with the consumer's honest positions, stop at endLsn or on request.
 * The loop of pg_receivewal's HandleCopyStream (src/bin/pg_basebackup/receivelog.c), without files.
 */
import type { ReplicationConnection } from './connection.js';
import { WalstreamError } from './errors.js';
import { formatLsn, segmentStart } from './lsn.js';
import { startReplicationCommand, type TimelineEnd } from './protocol/commands.js';
import { STATUS_UPDATE_LENGTH, decodeServerCopyMessage, encodeStatusUpdate, pgNow } from './protocol/messages.js';
import { isPromise } from './archive/sink.js';

/** What a stream session hands WAL to. */
export interface WalConsumer {
  /**
   * WAL bytes at `walStart` (contiguous with the previous call). `data` is valid only during the call
   * (or until a returned promise settles, while the socket is paused): copy what you keep.
   */
  onData(walStart: bigint, data: Uint8Array, serverWalEnd: bigint): void | Promise<void>;
  /** End of WAL written so far (reported as the write position). */
  writeLsn(): bigint;
  /** End of WAL durably stored (reported as flush; only what fsync confirmed). */
  flushLsn(): bigint;
  /** Make everything written durable; resolves when flushLsn() has caught up with what was written. */
  flush(): Promise<void>;
  /** Optional: flush at once, blocking; returns false when that is not possible now (then use flush()). */
  flushNow?(): boolean;
  /**
   * Before the final status update: resolve once the positions to report are final (default: flush()).
   * The raw receiver waits here until its caller has taken, and acknowledged, every queued chunk.
   */
  settle?(): Promise<void>;
}

export interface StreamSessionOptions {
  slot?: string;
  startLsn: bigint;
  timeline: number;
  /** Stop once WAL up to here is received (the segment boundary at or after it ends the last write). */
  endLsn?: bigint;
  segmentSize: number;
  /** Milliseconds between status updates; 0 sends them only when the server asks. */
  statusIntervalMs: number;
  /** Report the flush position (with a slot or in synchronous mode); otherwise flush is sent as 0. */
  reportFlush: boolean;
  /** Flush and report after every batch of received WAL (a synchronous standby). */
  synchronous: boolean;
  signal?: AbortSignal;
  /** Receives a function that sends a status update now (for a caller that acknowledges on its own schedule). */
  onStatusSender?: (sendStatus: () => void) => void;
  /**
   * Not synchronous: after a socket read that brought everything the server had (the end of WAL it
   * put in its last XLogData header), leave the socket unread for this many milliseconds, so that what
   * trickles in meanwhile arrives in one read (0, the default: read at once). Following a busy primary,
   * that is one wake-up per interval instead of one per commit; catching up never pauses.
   */
  readCoalesceMs?: number;
  /**
   * Dead-peer detection, like walreceiver.c with wal_receiver_timeout: with nothing from the server
   * for half of this (milliseconds), ask it for a reply; with nothing for all of it, fail with
   * WalstreamError('TIMEOUT') (the caller reconnects). Time the socket rests on our side (a busy
   * consumer, read coalescing) does not count. 0 or absent: never.
   */
  timeoutMs?: number;
}

/**
 * After our CopyDone (a stop or endpos), how long the server may take to end the copy before the
 * connection is dropped: what was archived is durable already, and a stalled network must not hold
 * a stop request.
 */
const STOP_GRACE_MS = 1000;

/** How a session ended. */
export type StreamOutcome =
  | { kind: 'timeline-end'; end: TimelineEnd; receivedLsn: bigint }
  | { kind: 'endpos'; receivedLsn: bigint }
  | { kind: 'stopped'; receivedLsn: bigint };

/**
 * Stream from `options.startLsn` until the server ends the timeline, endLsn is reached or the signal
 * aborts. On endpos and stop the consumer is flushed and a final status update is sent before CopyDone,
 * so a slot's restart_lsn reflects what was archived. Rejects on server errors and protocol violations.
 */
export async function runStreamSession(conn: ReplicationConnection, consumer: WalConsumer, options: StreamSessionOptions): Promise<StreamOutcome> {
  let expected = options.startLsn;
  /** The server's end of WAL in the latest XLogData header (walsender.c XLogSendPhysical: its flush position when it sent). */
  let latestServerWalEnd = 0n;
  let stopping: 'endpos' | 'stopped' | null = null;
  let failure: Error | null = null;
  let busy: Promise<void> | null = null;
  const backlog: { walStart: bigint; data: Uint8Array; serverWalEnd: bigint }[] = [];
  let syncScheduled = false;
  let copyDoneSent = false;
  const endCopy = () => {
    if (copyDoneSent) return;
    copyDoneSent = true;
    conn.endCopy();
  };
  // Like pg_receivewal, WAL ends at the first segment boundary at or past endLsn (computed once, not per message).
  const endBoundary = options.endLsn === undefined ? null
    : segmentStart(options.endLsn + BigInt(options.segmentSize) - 1n, options.segmentSize);

  // One buffer for every status update (sendCopyData copies or writes it before returning).
  const statusPayload = Buffer.allocUnsafe(STATUS_UPDATE_LENGTH);
  const statusView = new DataView(statusPayload.buffer, statusPayload.byteOffset, STATUS_UPDATE_LENGTH);
  const sendStatus = (replyRequested = false) => {
    conn.sendCopyData(encodeStatusUpdate({
      writeLsn: consumer.writeLsn(),
      flushLsn: options.reportFlush ? consumer.flushLsn() : 0n,
      applyLsn: 0n, // an archiver applies nothing: never let remote_apply wait on it
      clientTime: pgNow(),
      replyRequested,
    }, statusPayload, statusView));
  };

  const fail = (err: unknown) => {
    failure ??= err instanceof Error ? err : new Error(String(err));
    conn.destroy();
  };

  // Trickling WAL is read in batches (readCoalesceMs): the socket rests, then one read takes it all.
  // Never while the consumer holds the socket paused (busy) or in synchronous mode.
  const coalesceMs = options.synchronous ? 0 : options.readCoalesceMs ?? 0;
  let coalesceTimer: NodeJS.Timeout | null = null;
  const stopCoalescing = () => {
    if (!coalesceTimer) return;
    clearTimeout(coalesceTimer);
    coalesceTimer = null;
    if (!busy) conn.resume();
  };

  let stopGraceTimer: NodeJS.Timeout | null = null;
  let stopGraceExpired = false;
  const finish = (why: 'endpos' | 'stopped') => {
    if (stopping) return;
    stopping = why;
    const done = async () => {
      stopCoalescing(); // the server's answers to CopyDone are read at once
      if (busy) await busy;
      await (consumer.settle ? consumer.settle() : consumer.flush());
      sendStatus();
      endCopy();
      stopGraceTimer = setTimeout(() => {
        stopGraceExpired = true;
        conn.destroy();
      }, STOP_GRACE_MS);
    };
    done().catch(fail);
  };

  // Synchronous mode: one fsync at a time; WAL that arrives meanwhile is covered by one more after it.
  // The fsync runs once the whole socket read is delivered (onReadEnd), or once a backlog is drained.
  let flushing = false;
  let flushAgain = false;
  const flushAndReport = () => {
    syncScheduled = false;
    if (flushing) {
      flushAgain = true;
      return;
    }
    try {
      // Like pg_receivewal: fsync right after the batch, then report. WAL arriving meanwhile waits in
      // the socket and makes the next batch (a natural group commit).
      if (consumer.flushNow?.()) {
        sendStatus();
        return;
      }
    } catch (err) {
      fail(err);
      return;
    }
    flushing = true;
    let flushed: Promise<void>;
    try {
      flushed = consumer.flush();
    } catch (err) {
      fail(err); // a consumer whose flush throws instead of rejecting
      return;
    }
    flushed.then(() => {
      flushing = false;
      if (!stopping) sendStatus();
      if (flushAgain) {
        flushAgain = false;
        flushAndReport();
      }
    }, fail);
  };

  /** Deliver one XLogData payload; returns a promise when the consumer made us wait. */
  const deliver = (walStart: bigint, data: Uint8Array, serverWalEnd: bigint): void | Promise<void> => {
    latestServerWalEnd = serverWalEnd;
    if (walStart !== expected) {
      throw new WalstreamError('PROTOCOL', `server sent WAL at ${formatLsn(walStart)} but ${formatLsn(expected)} was expected next`);
    }
    let length = data.length;
    expected = walStart + BigInt(length);
    if (endBoundary !== null && expected > endBoundary) {
      length = Math.max(0, Number(endBoundary - walStart));
      expected = walStart + BigInt(length);
    }
    const result = length > 0 ? consumer.onData(walStart, length === data.length ? data : data.subarray(0, length), serverWalEnd) : undefined;
    if (options.endLsn !== undefined && expected >= options.endLsn) finish('endpos');
    else if (options.synchronous) syncScheduled = true;
    return result;
  };

  const drain = async () => {
    while (backlog.length > 0 && !failure) {
      const item = backlog.shift()!;
      if (stopping) continue;
      const result = deliver(item.walStart, item.data, item.serverWalEnd);
      if (isPromise(result)) await result;
    }
  };

  const onCopyData = (payload: Buffer) => {
    if (failure) return;
    try {
      const message = decodeServerCopyMessage(payload);
      if (message.kind === 'keepalive' && message.replyRequested && !stopping) {
        if (options.reportFlush) consumer.flush().then(() => sendStatus(), fail);
        else sendStatus();
      }
    } catch (err) {
      fail(err);
    }
  };

  const onWal = (walStart: bigint, data: Buffer, serverWalEnd: bigint) => {
    if (failure || stopping) return; // bytes in flight after our CopyDone are not archived
    try {
      if (busy) {
        // The consumer is still writing: keep a copy until it is done (the socket is paused meanwhile).
        backlog.push({ walStart, data: Buffer.from(data), serverWalEnd });
        return;
      }
      const result = deliver(walStart, data, serverWalEnd);
      if (isPromise(result)) {
        conn.pause();
        busy = result.then(drain).then(() => {
          busy = null;
          if (syncScheduled && !failure) flushAndReport();
          conn.resume();
        }, (err) => { busy = null; fail(err); });
      }
    } catch (err) {
      fail(err);
    }
  };

  // After each socket read: everything in it is delivered (or queued behind a busy consumer).
  // Caught up means the server had nothing more when it sent the last message: unlike the size of a
  // read, that does not depend on the transport (TLS hands decrypted data over in 16 KiB pieces, a slow
  // link in whatever arrived) and is never true while the server is still sending what it has.
  const onReadEnd = () => {
    if (watchdog) lastHeardAt = performance.now();
    if (syncScheduled && !busy && !failure) flushAndReport();
    else if (coalesceMs > 0 && expected >= latestServerWalEnd && !busy && !failure && !stopping && !coalesceTimer) {
      conn.pause();
      // Not unref'd: a paused socket alone does not keep the event loop alive.
      coalesceTimer = setTimeout(stopCoalescing, coalesceMs);
    }
  };

  options.onStatusSender?.(() => { if (!stopping && !failure) sendStatus(); });
  const onAbort = () => finish('stopped');
  options.signal?.addEventListener('abort', onAbort);
  if (options.signal?.aborted) stopping = 'stopped';
  const timer = options.statusIntervalMs > 0 ? setInterval(() => { if (!stopping) sendStatus(); }, options.statusIntervalMs) : null;
  timer?.unref();

  // Dead-peer watchdog (walreceiver.c WalReceiverMain: a ping at half of wal_receiver_timeout, then
  // "terminating walreceiver due to timeout"). Checked a few times per timeout, not per message.
  const timeoutMs = options.timeoutMs ?? 0;
  let lastHeardAt = performance.now();
  let pinged = false;
  const watchdog = timeoutMs > 0 ? setInterval(() => {
    const now = performance.now();
    if (busy || coalesceTimer) lastHeardAt = now; // our own pause, not the server's silence
    const silent = now - lastHeardAt;
    if (silent < timeoutMs / 2) {
      pinged = false;
    } else if (silent >= timeoutMs) {
      fail(new WalstreamError('TIMEOUT', `no message from the server for ${Math.round(silent / 1000)} s; taking the connection for dead and reconnecting (--timeout ${Math.round(timeoutMs / 1000)})`));
    } else if (!pinged && !stopping && !failure) {
      pinged = true;
      sendStatus(true);
    }
  }, Math.max(100, Math.min(1000, timeoutMs / 4))) : null;
  watchdog?.unref();

  try {
    const streaming = conn.startStreaming(startReplicationCommand(options), { onWal, onCopyData, onCopyDone: endCopy, onReadEnd });
    // First status update right away, as pg_receivewal does, so the server knows our positions.
    if (!stopping) setImmediate(() => { if (!stopping && !failure) sendStatus(); });
    else setImmediate(endCopy);
    let end: TimelineEnd | null;
    try {
      end = await streaming;
    } catch (err) {
      // The server did not end the copy in time after our CopyDone: the stop stands, nothing is lost.
      if (stopGraceExpired && !failure) return { kind: stopping ?? 'stopped', receivedLsn: expected };
      throw failure ?? err;
    }
    if (failure) throw failure;
    if (busy) await busy;
    if (failure) throw failure;
    if (end) return { kind: 'timeline-end', end, receivedLsn: expected };
    return { kind: stopping ?? 'stopped', receivedLsn: expected };
  } finally {
    if (timer) clearInterval(timer);
    if (watchdog) clearInterval(watchdog);
    if (stopGraceTimer) clearTimeout(stopGraceTimer);
    if (coalesceTimer) clearTimeout(coalesceTimer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}
