/**
 * One replication connection: connect and authenticate through `pg` (SCRAM, MD5, TLS), run
 * replication commands over the simple query protocol, and carry the copy-both stream.
 * The connection knows nothing of files; the receiver decides what the bytes mean.
 */
import { endPgLoad } from './pg-load.js'; // before pg: see pg-load.ts
import pg from 'pg';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import { PgError, WalstreamError, joinLines } from './errors.js';
import { type ConnectionTarget, describeTarget, sslFallbackOrder, toPgClientConfig } from './conninfo.js';
import { isSslRefusal } from './conninfo/tls.js';
import {
  type SlotPosition, type SystemIdentity, type TimelineEnd, type TimelineHistoryFile,
  createSlotCommand, decodeIdentifySystem, decodeReadReplicationSlot, decodeTimelineEnd,
  decodeTimelineHistory, dropSlotCommand, readSlotCommand, timelineHistoryCommand,
} from './protocol/commands.js';
import { parseSizeSetting } from './lsn.js';
import { FrameReader } from './protocol/framing.js';
import { type ByteTransport, socketTransport } from './transport.js';
import {
  Backend, type FieldDescription, columnValue, encodeCopyData, encodeCopyDone, encodeQuery, writeCopyData,
  parseDataRow, parseErrorFields, parseRowDescription,
} from './protocol/backend.js';

endPgLoad();

type Row = Record<string, unknown>;

/** Handlers for the copy-both phase of START_REPLICATION. Buffers are views valid only during the call. */
export interface StreamHandlers {
  /** WAL bytes (a piece of an XLogData message) starting at walStart. */
  onWal(walStart: bigint, data: Buffer, serverWalEnd: bigint): void;
  /** Any other CopyData payload (keepalives), complete. */
  onCopyData(payload: Buffer): void;
  /** The server ended the copy (end of timeline): answer with endCopy() to get the next-timeline result. */
  onCopyDone(): void;
  /** Optional: everything in one socket read has been handed on (a synchronous standby flushes here). */
  onReadEnd?(): void;
}

/** The operation the connection is answering: one command or one streaming session at a time. */
interface ActiveOperation {
  /** A START_REPLICATION session (it ends itself on a stop request; a command does not). */
  streaming?: boolean;
  onMessage(type: number, body: Buffer): void;
  /** An ErrorResponse already received: the reason to report if the server then closes the connection. */
  serverError?(): Error | null;
  onWal(walStart: bigint, data: Buffer, serverWalEnd: bigint): void;
  onReadEnd?(): void;
  fail(err: Error): void;
}

/** Collects a simple-query response: the last result set's rows (as objects), the first error. */
class ResultCollector {
  fields: FieldDescription[] = [];
  rows: Row[] = [];
  error: Error | null = null;

  /** Returns true at ReadyForQuery. */
  take(type: number, body: Buffer): boolean {
    switch (type) {
      case Backend.RowDescription:
        this.fields = parseRowDescription(body);
        this.rows = [];
        return false;
      case Backend.DataRow: {
        const values = parseDataRow(body);
        const row: Row = {};
        this.fields.forEach((f, i) => { row[f.name] = columnValue(values[i] ?? null, f.typeOid); });
        this.rows.push(row);
        return false;
      }
      case Backend.ErrorResponse:
        this.error ??= new PgError(parseErrorFields(body));
        return false;
      case Backend.ReadyForQuery:
        return true;
      default:
        return false; // CommandComplete, NoticeResponse, ParameterStatus, EmptyQueryResponse
    }
  }
}

/** Turn what `pg` throws into a PgError (server said it) or a WalstreamError (client side), one line each. */
export function toWalstreamError(err: unknown, context: string): Error {
  if (err instanceof PgError || err instanceof WalstreamError) return err;
  const e = err as { code?: string; message?: string; detail?: string; hint?: string; severity?: string; routine?: string };
  if (e && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && e.severity) {
    return new PgError({ message: e.message ?? 'server error', code: e.code, severity: e.severity, detail: e.detail, hint: e.hint });
  }
  const message = e?.message ?? String(err);
  return new WalstreamError('CONNECT_FAILED', `${context}: ${message}`, { cause: err });
}

/**
 * A plain TCP socket that reads into two reused buffers in turn (net.Socket's `onread`, whose buffer
 * function Node calls once per read), so streaming makes no garbage per read and memory stays flat,
 * and a read's bytes stay valid while the next read arrives (see ByteTransport.start). Until `deliver` is replaced, reads are copied and emitted as
 * 'data' for pg's startup and authentication; afterwards they go straight to the frame reader.
 * TLS sockets are left to pg: the TLS layer reads the socket itself.
 */
interface ReusingSocket {
  socket: net.Socket;
  deliver: (view: Buffer) => boolean | void;
}

const READ_BUFFER_SIZE = 256 * 1024;

function reusingSocket(): ReusingSocket {
  const holder = {} as ReusingSocket;
  // `onread` is accepted by the constructor since Node 15 (docs: net.Socket options); @types/node 20 lacks it.
  const buffers = [Buffer.allocUnsafe(READ_BUFFER_SIZE), Buffer.allocUnsafe(READ_BUFFER_SIZE)];
  let turn = 0;
  const options = {
    onread: {
      buffer: () => buffers[turn++ & 1],
      callback: (bytes: number, buffer: Uint8Array) => holder.deliver(Buffer.from(buffer.buffer, buffer.byteOffset, bytes)),
    },
  } as net.SocketConstructorOpts;
  holder.socket = new net.Socket(options);
  holder.deliver = (view) => {
    try {
      holder.socket.emit('data', Buffer.from(view));
    } catch (err) {
      // pg's start-up parser throws on what it cannot read (an unknown authentication request, a
      // truncated message): a clear one-line failure of this connection, not an uncaught exception.
      holder.socket.destroy(new WalstreamError('PROTOCOL', `the server sent a start-up message walstream cannot read (${joinLines((err as Error)?.message ?? String(err))})`));
    }
  };
  return holder;
}

/** A physical replication connection (startup parameter replication=true). */
export class ReplicationConnection {
  /** Who the connection is to, for messages ("host=… port=… user=…"; never a password). */
  readonly description: string;
  private readonly transport: ByteTransport;
  private readonly reader: FrameReader;
  private active: ActiveOperation | null = null;
  private closed = false;
  /** Set when the connection is lost or errors; later calls fail with it. */
  private failure: Error | undefined;
  /** Where small outgoing frames (status updates) are built, reused. */
  private readonly smallFrame = Buffer.allocUnsafe(64);
  /** How long a command may go unanswered before the server is taken for dead (0: forever). */
  private readonly commandTimeoutMs: number;

  /**
   * A connection over an authenticated byte transport (the server idle at ReadyForQuery): from here
   * on this class reads it itself, so WAL goes from the socket's buffers to the consumer uncopied.
   * `open()` makes one over a real socket; tests make one over a recorded transcript.
   */
  constructor(transport: ByteTransport, description: string, options: { commandTimeoutMs?: number } = {}) {
    this.transport = transport;
    this.description = description;
    this.commandTimeoutMs = options.commandTimeoutMs ?? 0;
    const lost = (err?: unknown) => {
      this.failure ??= err ? toWalstreamError(err, `connection to ${description} lost`)
        : new WalstreamError('CONNECT_FAILED', `connection to ${description} lost: the server closed it`);
      const active = this.active;
      this.active = null;
      // A FATAL ErrorResponse followed by the close: the server's words are the reason, not the close.
      active?.fail(active.serverError?.() ?? this.failure);
    };
    this.reader = new FrameReader({
      onMessage: (type, body) => this.active?.onMessage(type, body),
      onWal: (walStart, data, serverWalEnd) => this.active?.onWal(walStart, data, serverWalEnd),
    });
    transport.start((chunk) => {
      try {
        this.reader.push(chunk);
        this.active?.onReadEnd?.();
      } catch (err) {
        lost(err);
        this.destroy();
      }
    }, (err) => { if (!this.closed) lost(err); });
  }

  /**
   * Start an operation: write its message and route the replies to it until it finishes. With
   * `timeoutMs`, a server that has not finished answering by then is taken for dead: the connection
   * is destroyed and the operation fails with WalstreamError('TIMEOUT').
   */
  private run<T>(message: Buffer, make: (finish: (result: T | Error) => void) => Omit<ActiveOperation, 'fail'>, timeoutMs = 0, what = 'command'): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.active) return Promise.reject(new WalstreamError('PROTOCOL', 'a replication command is already running on this connection'));
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = (result: T | Error) => {
        if (timer) clearTimeout(timer);
        if (this.active === operation) this.active = null;
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      const operation: ActiveOperation = { ...make(finish), fail: (err) => finish(err) };
      this.active = operation;
      if (timeoutMs > 0) {
        timer = setTimeout(() => this.destroy(new WalstreamError('TIMEOUT',
          `${this.description} did not answer ${what} within ${Math.round(timeoutMs / 1000)} s; taking the connection for dead (--timeout)`)), timeoutMs);
      }
      this.transport.write(message);
    });
  }

  /**
   * Connect to one target, trying TLS and plain in the order its sslmode asks (libpq's prefer/allow).
   * Rejects with PgError for the server's refusals (authentication, pg_hba.conf, not a replication role)
   * and WalstreamError('CONNECT_FAILED') when the host cannot be reached.
   */
  static async open(target: ConnectionTarget, options: OpenOptions = {}): Promise<ReplicationConnection> {
    const attempts = sslFallbackOrder(target);
    const { signal, timeoutMs = 0 } = options;
    let lastError: unknown;
    for (const ssl of attempts) {
      if (signal?.aborted) throw stoppedError();
      const reusing = ssl === false ? reusingSocket() : null;
      const base = toPgClientConfig(target);
      // No connect_timeout given: the dead-peer timeout bounds start-up too (a server that accepts the
      // TCP connection and then says nothing would otherwise hold walstream forever).
      if (!base.connectionTimeoutMillis && timeoutMs > 0) base.connectionTimeoutMillis = timeoutMs;
      const config = { ...base, ssl, replication: 'true', ...(reusing ? { stream: () => reusing.socket } : {}) } as pg.ClientConfig & { replication: string };
      const client = new pg.Client(config);
      client.on('error', () => { /* handled through the failing call */ });
      // A stop request during start-up ends it at once: pg has no cancellation, so the socket goes.
      const onAbort = () => (client as unknown as { connection: { stream: Duplex } }).connection.stream.destroy();
      signal?.addEventListener('abort', onAbort);
      try {
        await client.connect();
        if (signal?.aborted) throw stoppedError();
        const transport = clientTransport(client, reusing);
        return new ReplicationConnection(options.wrapTransport ? options.wrapTransport(transport) : transport, describeTarget(target), { commandTimeoutMs: options.timeoutMs ?? 0 });
      } catch (err) {
        if (signal?.aborted) {
          onAbort();
          throw stoppedError();
        }
        lastError = err;
        await endWithin(client, CLOSE_GRACE_MS);
        // Only an SSL negotiation refusal moves on to the next attempt (as libpq does for prefer/allow),
        // recognised by pg's and Node's own fixed texts and codes, never the server's translated words.
        if (!isSslRefusal(err)) break;
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
    }
    const error = toWalstreamError(lastError, `could not connect to ${describeTarget(target)}`);
    const errno = (lastError as NodeJS.ErrnoException | undefined)?.code;
    if (error instanceof WalstreamError && (errno === 'ECONNREFUSED' || errno === 'ENOENT')) {
      // Nothing listens there: say what to check rather than only the socket error.
      throw new WalstreamError('CONNECT_FAILED', `${error.message}; is the server running on that host and accepting connections on that port? Check -h/-p (or host/port in -d)`, { cause: lastError });
    }
    throw error;
  }

  /** Open the first of `targets` that answers (libpq's multi-host order); rejects with the last failure. */
  static async openFirst(targets: ConnectionTarget[], options: OpenOptions = {}): Promise<ReplicationConnection> {
    let lastError: unknown;
    for (const target of targets) {
      try {
        return await ReplicationConnection.open(target, options);
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  /** Run one replication or SQL command over the simple protocol; rows as objects. */
  async command(text: string): Promise<Row[]> {
    const collector = new ResultCollector();
    return this.run<Row[]>(encodeQuery(text), (finish) => ({
      onMessage: (type, body) => {
        if (type === Backend.CopyBothResponse || type === Backend.CopyOutResponse) {
          finish(new WalstreamError('PROTOCOL', `${text.split(' ')[0]} unexpectedly started a COPY`));
          this.destroy();
        } else if (collector.take(type, body)) {
          finish(collector.error ?? collector.rows);
        }
      },
      serverError: () => collector.error,
      onWal: () => {},
    }), this.commandTimeoutMs, text.split(' ')[0]);
  }

  /** IDENTIFY_SYSTEM: system identifier, current timeline, current WAL position. */
  async identifySystem(): Promise<SystemIdentity> {
    return decodeIdentifySystem(await this.command('IDENTIFY_SYSTEM'));
  }

  /** The value of one server setting (SHOW over the replication protocol). */
  private async show(setting: string): Promise<string> {
    const rows = await this.command(`SHOW ${setting}`);
    return String(Object.values(rows[0] ?? {})[0]);
  }

  /** server_version_num, e.g. 150004. */
  async serverVersion(): Promise<number> {
    return Number(await this.show('server_version_num'));
  }

  /** data_directory_mode as a number (e.g. 0o700 or 0o750). */
  async dataDirectoryMode(): Promise<number> {
    const text = await this.show('data_directory_mode');
    const mode = parseInt(text, 8);
    if (!/^[0-7]+$/.test(text) || mode > 0o777) throw new WalstreamError('PROTOCOL', `server reported data_directory_mode "${text}", not an octal mode`);
    return mode;
  }

  /** wal_segment_size in bytes. */
  async segmentSize(): Promise<number> {
    return parseSizeSetting(await this.show('wal_segment_size'));
  }

  /** READ_REPLICATION_SLOT (PG ≥ 15). */
  async readSlot(slot: string): Promise<SlotPosition> {
    return decodeReadReplicationSlot(await this.command(readSlotCommand(slot)));
  }

  /** CREATE_REPLICATION_SLOT … PHYSICAL RESERVE_WAL; with ifNotExists a duplicate (42710) is not an error. */
  async createSlot(slot: string, ifNotExists: boolean): Promise<'created' | 'exists'> {
    try {
      await this.command(createSlotCommand(slot));
      return 'created';
    } catch (err) {
      if (ifNotExists && err instanceof PgError && err.code === '42710') return 'exists';
      throw err;
    }
  }

  /** DROP_REPLICATION_SLOT. */
  async dropSlot(slot: string): Promise<void> {
    await this.command(dropSlotCommand(slot));
  }

  /** TIMELINE_HISTORY n: the history file of timeline n (n ≥ 2). */
  async timelineHistory(timeline: number): Promise<TimelineHistoryFile> {
    return decodeTimelineHistory(await this.command(timelineHistoryCommand(timeline)));
  }

  /**
   * Send START_REPLICATION and stay in copy-both until the stream ends. Resolves with the next
   * timeline when the server ends the timeline (CopyDone, then the next_tli result set), or null when
   * the client ended the copy (endCopy). Rejects with PgError/WalstreamError when the server refuses
   * or the connection fails.
   */
  async startStreaming(commandText: string, handlers: StreamHandlers): Promise<TimelineEnd | null> {
    const collector = new ResultCollector();
    try {
      return await this.run<TimelineEnd | null>(encodeQuery(commandText), (finish) => ({
        onMessage: (type, body) => {
          if (type === Backend.CopyBothResponse) {
            this.reader.copyMode = true;
          } else if (type === Backend.CopyData) {
            handlers.onCopyData(body);
          } else if (type === Backend.CopyDone) {
            this.reader.copyMode = false;
            handlers.onCopyDone();
          } else if (collector.take(type, body)) {
            this.reader.copyMode = false;
            const row = collector.rows[0];
            finish(collector.error ?? (row && 'next_tli' in row ? decodeTimelineEnd(row) : null));
          }
        },
        streaming: true,
        serverError: () => collector.error,
        onWal: handlers.onWal,
        onReadEnd: handlers.onReadEnd,
      }));
    } catch (err) {
      throw toWalstreamError(err, `streaming from ${this.description} failed`);
    }
  }

  /**
   * From now until the returned function is called, `signal` aborting drops the connection at once
   * unless a streaming session runs (which ends itself cleanly, with a final status update): a
   * command the server never answers must not hold a stop request.
   */
  destroyOnAbort(signal: AbortSignal): () => void {
    const onAbort = () => { if (!this.active?.streaming) this.destroy(new WalstreamError('STOPPED', 'stopped')); };
    signal.addEventListener('abort', onAbort);
    return () => signal.removeEventListener('abort', onAbort);
  }

  /** Send one CopyData message (a status update) during copy-both; `payload` may be reused once this returns. */
  sendCopyData(payload: Buffer): void {
    if (this.closed || this.failure) return;
    if (5 + payload.length <= this.smallFrame.length) {
      this.transport.write(this.smallFrame.subarray(0, writeCopyData(this.smallFrame, payload)));
    } else {
      this.transport.write(encodeCopyData(payload));
    }
  }

  /** Send CopyDone: ask the server to end streaming; startStreaming then resolves. */
  endCopy(): void {
    if (this.closed || this.failure) return;
    this.transport.write(encodeCopyDone());
  }

  /** Stop reading from the socket (backpressure); the server blocks once the TCP window fills. */
  pause(): void {
    this.transport.pause();
  }

  /** Resume reading from the socket. */
  resume(): void {
    this.transport.resume();
  }

  /**
   * Close the connection (Terminate). Safe to call twice. A server that does not let go within a
   * second (a stalled network) has its socket destroyed instead: closing never hangs.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.transport.end();
  }

  /**
   * Destroy the socket at once, without a goodbye (the server stopped answering, a protocol error,
   * a stop request). The operation in progress fails with `reason` (default: connection closed).
   */
  destroy(reason?: Error): void {
    this.failure ??= reason ?? new WalstreamError('CONNECT_FAILED', `connection to ${this.description} closed`);
    this.closed = true;
    this.transport.destroy();
    const active = this.active;
    this.active = null;
    active?.fail(this.failure);
  }
}

export interface OpenOptions {
  /** Abort the attempt (a stop request): rejects with WalstreamError('STOPPED') at once. */
  signal?: AbortSignal;
  /**
   * Take the server for dead when start-up (without connect_timeout) or a command goes unanswered
   * this long (milliseconds; 0 = wait forever).
   */
  timeoutMs?: number;
  /** Wrap the authenticated transport (e.g. to record a transcript of the session for fixtures/). */
  wrapTransport?: (transport: ByteTransport) => ByteTransport;
}

/** How long a goodbye (Terminate) may take before the socket is destroyed instead. */
const CLOSE_GRACE_MS = 1000;

function stoppedError(): WalstreamError {
  return new WalstreamError('STOPPED', 'stopped while connecting');
}

/** The transport over the socket of an authenticated pg client. */
function clientTransport(client: pg.Client, reusing: ReusingSocket | null): ByteTransport {
  const stream = (client as unknown as { connection: { stream: Duplex } }).connection.stream;
  return socketTransport(stream, {
    directWrites: reusing !== null,
    setReader: reusing ? (deliver) => { reusing.deliver = deliver; } : undefined,
    end: () => endWithin(client, CLOSE_GRACE_MS),
    onClientError: (listener) => client.on('error', listener),
  });
}

/** client.end(), but a peer that does not close its side within `ms` gets its socket destroyed. */
async function endWithin(client: pg.Client, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const stream = (client as unknown as { connection?: { stream?: Duplex } }).connection?.stream;
  await Promise.race([
    client.end().catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        stream?.destroy();
        resolve();
      }, ms);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}
