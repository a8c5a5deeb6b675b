/**
 * One connection to the server: open it (TCP or Unix socket, TLS per sslmode, the start-up and
 * authentication of protocol/startup.ts: trust, password, MD5, SCRAM-SHA-256), run replication or SQL
 * commands over the simple query protocol, and carry the copy-both stream. No `pg`: its start-up cost
 * (~15 MiB and ~17 ms per process on Node 20) was all walstream used it for.
 * The connection knows nothing of files; the receiver decides what the bytes mean.
 */
import { createRequire } from 'node:module';
import * as net from 'node:net';
import type * as Tls from 'node:tls';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { Duplex } from 'node:stream';
import { PgError, WalstreamError, joinLines } from './errors.js';
import { type ConnectionTarget, describeTarget, isUnixSocketHost, sslFallbackOrder } from './conninfo.js';
import { SSL_ERROR, SSL_NOT_SUPPORTED, isSslRefusal, noPasswordError } from './conninfo/tls.js';
import {
  type SlotPosition, type SystemIdentity, type TimelineEnd, type TimelineHistoryFile,
  createSlotCommand, decodeIdentifySystem, decodeReadReplicationSlot, decodeTimelineEnd,
  decodeTimelineHistory, dropSlotCommand, readSlotCommand, timelineHistoryCommand,
} from './protocol/commands.js';
import { parseSizeSetting } from './lsn.js';
import { FrameReader } from './protocol/framing.js';
import { StartupExchange, StartupFramer, encodeSslRequest, encodeStartupMessage, encodeTerminate } from './protocol/startup.js';
import { type ByteTransport, socketTransport } from './transport.js';
import {
  Backend, type FieldDescription, columnValue, encodeCopyData, encodeCopyDone, encodeQuery, writeCopyData,
  parseDataRow, parseErrorFields, parseRowDescription,
} from './protocol/backend.js';

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

/** Turn a start-up or socket failure into a PgError (server said it) or a WalstreamError (client side), one line each. */
export function toWalstreamError(err: unknown, context: string): Error {
  if (err instanceof PgError || err instanceof WalstreamError) return err;
  const message = joinLines((err as { message?: string } | null)?.message ?? String(err));
  return new WalstreamError('CONNECT_FAILED', `${context}: ${message}`, { cause: err });
}

/**
 * A socket that reads into two reused buffers in turn (net.Socket's `onread`, whose buffer function
 * Node calls once per read), so streaming makes no garbage per read and memory stays flat, and a
 * read's bytes stay valid while the next read arrives (see ByteTransport.start). Reads go to
 * `deliver`: the SSL answer and start-up first, then the frame reader. Over TLS the TLS layer takes
 * the socket's reads itself (tls.connect over this socket) and delivers decrypted 'data' events.
 */
interface ReusingSocket {
  socket: net.Socket;
  deliver: (view: Buffer) => boolean | void;
}

const READ_BUFFER_SIZE = 256 * 1024;

/**
 * node:tls, loaded when a server first agrees to TLS: ~1.4 MiB of RSS that a process whose server
 * answers the SSLRequest with 'N' (sslmode=prefer against a server without TLS) never pays.
 */
let tlsModule: typeof Tls | undefined;
function loadTls(): typeof Tls {
  return (tlsModule ??= createRequire(import.meta.url)('node:tls') as typeof Tls);
}

function reusingSocket(): ReusingSocket {
  const holder = {} as ReusingSocket;
  // `onread` is accepted by the constructor since Node 15 (docs: net.Socket options); @types/node 20 lacks it.
  const buffers: Buffer[] = [];
  let turn = 0;
  const options = {
    onread: {
      buffer: () => (buffers[turn++ & 1] ??= Buffer.allocUnsafe(READ_BUFFER_SIZE)),
      callback: (bytes: number, buffer: Uint8Array) => holder.deliver(Buffer.from(buffer.buffer, buffer.byteOffset, bytes)),
    },
  } as net.SocketConstructorOpts;
  holder.socket = new net.Socket(options);
  holder.deliver = () => {};
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
   * and WalstreamError('CONNECT_FAILED') when the host cannot be reached. With `sql`, the connection is
   * a normal database connection (SQL, not replication commands).
   */
  static async open(target: ConnectionTarget, options: OpenOptions = {}): Promise<ReplicationConnection> {
    const attempts = sslFallbackOrder(target);
    const { signal } = options;
    let lastError: unknown;
    for (let i = 0; i < attempts.length; i++) {
      if (signal?.aborted) throw stoppedError();
      const ssl = attempts[i]!;
      const state = { plainOnSameSocket: false };
      try {
        // prefer: a server that answers the SSLRequest with 'N' gets the start-up in plain on the same
        // connection, as libpq does (no second connection for a server without TLS).
        const started = await startUp(target, ssl, { ...options, plainAfterRefusal: ssl !== false && attempts[i + 1] === false, state });
        if (signal?.aborted) {
          started.stream.destroy();
          throw stoppedError();
        }
        const transport = startedTransport(started);
        return new ReplicationConnection(options.wrapTransport ? options.wrapTransport(transport) : transport, describeTarget(target), { commandTimeoutMs: options.timeoutMs ?? 0 });
      } catch (err) {
        if (signal?.aborted) throw stoppedError();
        lastError = err;
        if (state.plainOnSameSocket) i++; // the plain attempt has just been made
        // Only an SSL negotiation refusal moves on to the next attempt (as libpq does for prefer/allow),
        // recognised by fixed texts and codes (see isSslRefusal), never the server's translated words.
        if (!isSslRefusal(err)) break;
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
  /**
   * A normal database connection to `database` instead of a physical replication one (slot-probe's
   * SQL), named `applicationName` in pg_stat_activity.
   */
  sql?: { database: string; applicationName: string };
}

/** How long a goodbye (Terminate) may take before the socket is destroyed instead. */
const CLOSE_GRACE_MS = 1000;

function stoppedError(): WalstreamError {
  return new WalstreamError('STOPPED', 'stopped while connecting');
}

/** A connection through start-up: the stream, its reusing socket unless TLS, what followed ReadyForQuery. */
interface Started {
  stream: net.Socket | Tls.TLSSocket;
  reusing: ReusingSocket | null;
  /** Bytes read after ReadyForQuery and before the transport took over (normally none). */
  takeLeftover: () => Buffer | null;
}

/**
 * One connection attempt: connect (TCP, or the socket file in a Unix-socket directory), negotiate TLS
 * when `ssl` is given (SSLRequest, then tls.connect over the socket with conninfo/tls.ts's options),
 * send the StartupMessage and authenticate, until ReadyForQuery. The whole attempt is bounded by
 * connect_timeout, else by `timeoutMs`; a stop request destroys the socket at once.
 */
function startUp(
  target: ConnectionTarget,
  ssl: false | TlsConnectionOptions,
  options: OpenOptions & { plainAfterRefusal: boolean; state: { plainOnSameSocket: boolean } },
): Promise<Started> {
  const limitMs = target.connectTimeoutSeconds !== undefined ? target.connectTimeoutSeconds * 1000 : (options.timeoutMs ?? 0);
  const parameters: Record<string, string> = options.sql
    ? { user: target.user, database: options.sql.database }
    : { user: target.user, database: target.database ?? target.user };
  const applicationName = options.sql ? options.sql.applicationName : target.applicationName;
  if (applicationName) parameters.application_name = applicationName;
  if (!options.sql) parameters.replication = 'true';
  const exchange = new StartupExchange({ user: target.user, password: target.password, noPassword: () => noPasswordError(target) });
  const framer = new StartupFramer();

  return new Promise<Started>((resolve, reject) => {
    const holder = reusingSocket();
    const socket = holder.socket;
    let stream: net.Socket | Tls.TLSSocket = socket;
    let secure: Tls.TLSSocket | null = null;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const leftover: Buffer[] = [];

    const cleanup = () => {
      settled = true;
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (err: unknown) => {
      if (settled) return;
      cleanup();
      secure?.destroy();
      socket.destroy();
      reject(err);
    };
    const onAbort = () => fail(stoppedError());
    const onClose = () => fail(new Error('the server closed the connection during start-up'));
    options.signal?.addEventListener('abort', onAbort);
    if (limitMs > 0) timer = setTimeout(() => fail(new Error(`timeout expired (${Math.round(limitMs / 1000)} s)`)), limitMs);

    const onData = (chunk: Buffer) => {
      if (settled) {
        leftover.push(Buffer.from(chunk)); // read before the transport took over: kept for it
        return;
      }
      try {
        const done = framer.push(chunk, (type, body) => {
          const reply = exchange.receive(type, body);
          if (reply) stream.write(reply);
          return exchange.done;
        });
        if (done) finish();
      } catch (err) {
        fail(err);
      }
    };
    const finish = () => {
      cleanup();
      const rest = framer.rest();
      if (rest.length > 0) leftover.push(Buffer.from(rest));
      stream.removeListener('close', onClose);
      stream.removeListener('error', fail);
      // Until the transport listens: an error is kept from being an uncaught exception, its close reported by the transport.
      stream.on('error', () => {});
      resolve({
        stream,
        reusing: secure ? null : holder,
        takeLeftover: () => (leftover.length === 0 ? null : Buffer.concat(leftover.splice(0))),
      });
    };
    const sendStartup = () => {
      if (secure) secure.on('data', onData);
      else holder.deliver = onData;
      stream.write(encodeStartupMessage(parameters));
    };
    const onSslAnswer = (view: Buffer) => {
      holder.deliver = () => fail(new WalstreamError('PROTOCOL', 'the server sent unencrypted data after agreeing to TLS'));
      // More than the one byte: libpq refuses unencrypted bytes after the answer (CVE-2021-23222).
      if (view.length !== 1) return void fail(new WalstreamError('PROTOCOL', `the server answered the SSLRequest with ${view.length} bytes, expected 1`));
      if (view[0] === 0x53 /* 'S' */) return void upgrade(ssl as TlsConnectionOptions);
      if (view[0] === 0x4e /* 'N' */ && options.plainAfterRefusal) {
        options.state.plainOnSameSocket = true;
        return void sendStartup();
      }
      fail(new Error(view[0] === 0x4e ? SSL_NOT_SUPPORTED : SSL_ERROR));
    };
    const upgrade = (tlsOptions: TlsConnectionOptions) => {
      socket.removeListener('close', onClose);
      const host = target.host;
      try {
        secure = loadTls().connect({
          ...tlsOptions,
          socket,
          host, // what the certificate's identity is checked against when there is no servername (an IP address)
          // SNI for a host name, never for an IP address (RFC 6066), as libpq's sslsni=1 and pg did.
          ...(net.isIP(host) === 0 && tlsOptions.servername === undefined ? { servername: host } : {}),
        });
      } catch (err) {
        return void fail(err);
      }
      stream = secure;
      secure.on('error', fail);
      secure.on('close', onClose);
      secure.once('secureConnect', sendStartup);
    };

    const unix = isUnixSocketHost(target.host);
    socket.on('error', fail);
    socket.on('close', onClose);
    socket.once('connect', () => {
      socket.setNoDelay(true);
      if (!unix) socket.setKeepAlive(true, 0); // libpq's keepalives=1 default
      if (ssl === false) return sendStartup();
      holder.deliver = onSslAnswer;
      socket.write(encodeSslRequest());
    });
    try {
      if (unix) socket.connect({ path: `${target.host}/.s.PGSQL.${target.port}` });
      else socket.connect({ port: target.port, host: target.host });
    } catch (err) {
      fail(err);
    }
  });
}

/** The transport over a started connection's socket. */
function startedTransport(started: Started): ByteTransport {
  const { stream, reusing } = started;
  return socketTransport(stream, {
    directWrites: reusing !== null,
    setReader: reusing ? (deliver) => { reusing.deliver = deliver; } : undefined,
    leftover: started.takeLeftover,
    end: () => endWithin(stream, CLOSE_GRACE_MS),
  });
}

/** Say goodbye (Terminate) and close; a peer that does not close its side within `ms` gets its socket destroyed. */
async function endWithin(stream: Duplex, ms: number): Promise<void> {
  if (stream.destroyed) return;
  let timer: NodeJS.Timeout | undefined;
  await new Promise<void>((resolve) => {
    stream.once('close', () => resolve());
    timer = setTimeout(() => {
      stream.destroy();
      resolve();
    }, ms);
    timer.unref();
    try {
      stream.end(encodeTerminate());
    } catch {
      stream.destroy();
    }
  });
  clearTimeout(timer);
}
