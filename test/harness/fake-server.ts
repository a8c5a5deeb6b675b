/**
 * A scripted PostgreSQL server for the integration-test harness: it listens on 127.0.0.1 (a free port),
 * speaks just enough of the protocol for walstream's start-up over plain TCP (SSLRequest refused with
 * 'N', StartupMessage, then a start-up answer and one answer per Query), and lets a test replace any
 * answer with its own bytes, however hostile. Everything each client sends is decoded and recorded
 * (type + body), so a test can check, for example, that no CopyData follows the client's CopyDone.
 * Tracked like the fault proxy: destroyAll() closes it.
 *
 * Defaults (a PostgreSQL 15 primary with 1 MB segments, system 7300000000000000001, timeline 1, WAL at
 * 0/3000000): AuthenticationOk, ParameterStatus × 5, BackendKeyData, ReadyForQuery; then
 *   SHOW server_version_num → 150004, SHOW wal_segment_size → 1MB, SHOW data_directory_mode → 0700,
 *   IDENTIFY_SYSTEM → 7300000000000000001 / 1 / 0/3000000 / null,
 *   READ_REPLICATION_SLOT → physical / 0/3000000 / 1,
 *   START_REPLICATION → CopyBothResponse, then the test's `stream` script (if any);
 * any other query gets an ErrorResponse (42601) and ReadyForQuery.
 */
import net from 'node:net';
import { type Resource, type ServerLifecycle, serverLifecycle } from './cleanup.js';
import { dataRow, errorResponse, frame, rowDescription, xlogData } from '../unit/protocol-bytes.js';

// ---------------------------------------------------------------------------------------------------
// The defaults' facts

export const FAKE_SYSTEM_ID = '7300000000000000001';
export const FAKE_SEGMENT_SIZE = 1024 * 1024;
export const FAKE_BLOCK_SIZE = 8192;
/** Where the default IDENTIFY_SYSTEM says WAL is (0/3000000, a segment start). */
export const FAKE_XLOGPOS = 0x3000000n;

export const TEXT_OID = 25;
export const INT4_OID = 23;
export const INT8_OID = 20;

// ---------------------------------------------------------------------------------------------------
// Backend message builders (whole frames), on top of test/unit/protocol-bytes.ts

/** AuthenticationRequest ('R'): int32 code (0 = Ok, 3 = cleartext, 5 = MD5, 10 = SASL…), then `extra`. */
export function authenticationRequest(code: number, extra: Uint8Array = Buffer.alloc(0)): Buffer {
  const body = Buffer.alloc(4 + extra.length);
  body.writeInt32BE(code | 0, 0);
  body.set(extra, 4);
  return frame('R', body);
}

export function authenticationOk(): Buffer {
  return authenticationRequest(0);
}

/** ParameterStatus ('S'): name\0 value\0. */
export function parameterStatus(name: string, value: string): Buffer {
  return frame('S', Buffer.from(`${name}\0${value}\0`, 'utf8'));
}

/** BackendKeyData ('K'): process ID, secret key. */
export function backendKeyData(pid = 4242, secret = 0x5eed): Buffer {
  const body = Buffer.alloc(8);
  body.writeInt32BE(pid, 0);
  body.writeInt32BE(secret, 4);
  return frame('K', body);
}

/** ReadyForQuery ('Z'): transaction status 'I' (idle), 'T' or 'E'. */
export function readyForQuery(status: 'I' | 'T' | 'E' = 'I'): Buffer {
  return frame('Z', Buffer.from(status, 'latin1'));
}

/** CommandComplete ('C'): the command tag\0. */
export function commandComplete(tag: string): Buffer {
  return frame('C', Buffer.from(`${tag}\0`, 'utf8'));
}

/** CopyBothResponse ('W'): int8 overall format 0 (text), int16 column count 0, as walsender sends it. */
export function copyBothResponse(): Buffer {
  return frame('W', Buffer.from([0, 0, 0]));
}

/** CopyData ('d') wrapping `payload` (xlogData() or keepalive() from protocol-bytes). */
export function copyData(payload: Uint8Array): Buffer {
  return frame('d', payload);
}

/** CopyDone ('c'). */
export function copyDone(): Buffer {
  return frame('c', Buffer.alloc(0));
}

/** ErrorResponse ('E') with these fields (S/V severity, C SQLSTATE, M message, …; S, V, C default to ERROR/XX000). */
export function errorFrame(fields: Record<string, string>): Buffer {
  return frame('E', errorResponse({ S: 'ERROR', V: 'ERROR', C: 'XX000', ...fields }));
}

export interface Column {
  name: string;
  typeOid: number;
}

/** A result set without ReadyForQuery: RowDescription, one DataRow per row, CommandComplete `tag`. */
export function resultSet(columns: Column[], rows: (string | null)[][], tag: string): Buffer {
  return Buffer.concat([frame('T', rowDescription(columns)), ...rows.map((r) => frame('D', dataRow(r))), commandComplete(tag)]);
}

/** XLogData CopyData frames carrying `wal` from `start`, `chunk` bytes of WAL per message (walsender sends ≤ 128 kB). */
export function xlogFrames(start: bigint, wal: Uint8Array, opts: { chunk?: number; walEnd?: bigint } = {}): Buffer[] {
  const chunk = opts.chunk ?? 128 * 1024;
  const walEnd = opts.walEnd ?? start + BigInt(wal.length);
  const frames: Buffer[] = [];
  for (let at = 0; at < wal.length; at += chunk) {
    frames.push(copyData(xlogData(start + BigInt(at), walEnd, wal.subarray(at, Math.min(wal.length, at + chunk)))));
  }
  return frames;
}

/**
 * `pages` WAL pages from page-aligned `start` that pass a page-header check: magic 0xD110, the page's
 * own address, timeline 1 (or `timeline`), and at each segment start a long header carrying the system
 * identifier, segment size and block size; the rest of each page is filler (not valid records).
 */
export function walPages(start: bigint, pages: number, opts: { timeline?: number; systemId?: string; segmentSize?: number } = {}): Buffer {
  const segmentSize = opts.segmentSize ?? FAKE_SEGMENT_SIZE;
  const buf = Buffer.alloc(pages * FAKE_BLOCK_SIZE, 0x5a);
  for (let i = 0; i < pages; i++) {
    const lsn = start + BigInt(i * FAKE_BLOCK_SIZE);
    const page = buf.subarray(i * FAKE_BLOCK_SIZE);
    const long = lsn % BigInt(segmentSize) === 0n;
    page.writeUInt16LE(0xd110, 0); // xlp_magic
    page.writeUInt16LE(long ? 0x0002 : 0, 2); // xlp_info: XLP_LONG_HEADER
    page.writeUInt32LE(opts.timeline ?? 1, 4); // xlp_tli
    page.writeBigUInt64LE(lsn, 8); // xlp_pageaddr
    page.writeUInt32LE(0, 16); // xlp_rem_len
    if (long) {
      page.writeBigUInt64LE(BigInt(opts.systemId ?? FAKE_SYSTEM_ID), 24); // xlp_sysid
      page.writeUInt32LE(segmentSize, 32); // xlp_seg_size
      page.writeUInt32LE(FAKE_BLOCK_SIZE, 36); // xlp_xlog_blcksz
    }
  }
  return buf;
}

// ---------------------------------------------------------------------------------------------------
// What the client sent

/**
 * One message from the client. `type` is its type byte as a character ('Q', 'd', 'c', 'X', …), or for
 * the untyped start-up packets 'startup', 'ssl-request', 'gssenc-request', 'cancel-request'.
 */
export interface ClientFrame {
  type: string;
  body: Buffer;
  /** performance.now() when it arrived. */
  at: number;
}

/** A standby status update ('d' + 'r') decoded, or null when `f` is not one. */
export function statusUpdate(f: ClientFrame): { writeLsn: bigint; flushLsn: bigint; applyLsn: bigint; replyRequested: boolean } | null {
  if (f.type !== 'd' || f.body[0] !== 0x72 || f.body.length < 34) return null;
  return { writeLsn: f.body.readBigUInt64BE(1), flushLsn: f.body.readBigUInt64BE(9), applyLsn: f.body.readBigUInt64BE(17), replyRequested: f.body[33] !== 0 };
}

/** A Query's text (without its terminator), or null when `f` is not a Query. */
export function queryText(f: ClientFrame): string | null {
  if (f.type !== 'Q') return null;
  const nul = f.body.indexOf(0);
  return f.body.toString('utf8', 0, nul < 0 ? f.body.length : nul);
}

/** The start-up packet's parameters (user, database, replication, application_name, …). */
export function startupParameters(f: ClientFrame): Record<string, string> {
  const params: Record<string, string> = {};
  if (f.type !== 'startup') return params;
  const parts = f.body.subarray(4).toString('utf8').split('\0');
  for (let i = 0; i + 1 < parts.length && parts[i] !== ''; i += 2) params[parts[i]] = parts[i + 1];
  return params;
}

// ---------------------------------------------------------------------------------------------------
// The server

/** Write bytes to the client; false when they were buffered (see FakeSession.sendAndDrain) or the socket is gone. */
export type Send = (bytes: Uint8Array) => boolean;

/** One client connection as a script sees it. */
export interface FakeSession {
  /** 1 for the first connection, 2 for the next… */
  readonly id: number;
  readonly socket: net.Socket;
  /** Everything this client sent, decoded, in order. */
  readonly frames: ClientFrame[];
  /** The socket has closed (either side). */
  readonly closed: boolean;
  /** Resolves when the socket has closed. */
  readonly whenClosed: Promise<void>;
  send: Send;
  /** Write, then wait until the kernel took it (drain) or the socket closed; false if it closed. */
  sendAndDrain(bytes: Uint8Array): Promise<boolean>;
  /**
   * The first frame at index `from` (default: the next one to arrive) or later that matches, or null
   * if the socket closes or `timeoutMs` (default 10 s) passes first.
   */
  waitForFrame(match: (f: ClientFrame) => boolean, opts?: { from?: number; timeoutMs?: number }): Promise<ClientFrame | null>;
  /** Half-close (FIN) after what was written. */
  end(): void;
  destroy(): void;
}

/** An answer to one Query: write whatever it likes with `send`; may be async (later queries wait for it). */
export type QueryAnswer = (query: string, send: Send, session: FakeSession) => void | Promise<void>;

export interface FakeServerOptions {
  /**
   * Answer to the StartupMessage (replaces the default AuthenticationOk … ReadyForQuery entirely). It may
   * send anything, end or destroy the socket; queries are answered only once it has returned (resolved).
   */
  startup?: (send: Send, session: FakeSession) => void | Promise<void>;
  /**
   * Answers by command, overriding the defaults: the key is the first words of the query
   * ('IDENTIFY_SYSTEM', 'SHOW wal_segment_size', 'START_REPLICATION'), matched case-insensitively at the
   * start of the query; the longest matching key wins.
   */
  answers?: Record<string, QueryAnswer>;
  /** What the default START_REPLICATION answer streams after its CopyBothResponse. */
  stream?: QueryAnswer;
}

export interface FakeServer extends Resource {
  readonly host: string;
  readonly port: number;
  /** Every connection so far, in order. */
  readonly sessions: FakeSession[];
  /** Errors thrown by scripts (a test should expect none). */
  readonly scriptErrors: unknown[];
  /** A libpq connection string for it: host, port, user=x, sslmode=disable. */
  connectionString(): string;
  /** Destroy every socket and close the listener; idempotent. */
  close(): Promise<void>;
}

/** A one-column SHOW result plus ReadyForQuery. */
function showAnswer(name: string, value: string): QueryAnswer {
  return (_q, send) => { send(Buffer.concat([resultSet([{ name, typeOid: TEXT_OID }], [[value]], 'SHOW'), readyForQuery()])); };
}

/** An answer of fixed rows: RowDescription, DataRows, CommandComplete `tag`, ReadyForQuery. */
export function rowsAnswer(columns: Column[], rows: (string | null)[][], tag: string): QueryAnswer {
  return (_q, send) => { send(Buffer.concat([resultSet(columns, rows, tag), readyForQuery()])); };
}

/** IDENTIFY_SYSTEM's columns as walsender.c describes them. */
export const IDENTIFY_SYSTEM_COLUMNS: Column[] = [
  { name: 'systemid', typeOid: TEXT_OID },
  { name: 'timeline', typeOid: INT4_OID },
  { name: 'xlogpos', typeOid: TEXT_OID },
  { name: 'dbname', typeOid: TEXT_OID },
];

/** IDENTIFY_SYSTEM answered with these values (the defaults for the rest). */
export function identifySystemAnswer(values: { systemid?: string | null; timeline?: string | null; xlogpos?: string | null; dbname?: string | null } = {}): QueryAnswer {
  const v = { systemid: FAKE_SYSTEM_ID, timeline: '1', xlogpos: '0/3000000', dbname: null, ...values };
  return rowsAnswer(IDENTIFY_SYSTEM_COLUMNS, [[v.systemid, v.timeline, v.xlogpos, v.dbname]], 'IDENTIFY_SYSTEM');
}

/** The end-of-timeline result set walsender sends after the CopyDone exchange: next_tli (int8), next_tli_startpos (text). */
export function timelineEndResult(nextTli: string | null, nextTliStartpos: string | null): Buffer {
  return resultSet([{ name: 'next_tli', typeOid: INT8_OID }, { name: 'next_tli_startpos', typeOid: TEXT_OID }], [[nextTli, nextTliStartpos]], 'SELECT 1');
}

/** What a PostgreSQL 15 server sends after authentication. */
export function defaultStartupBytes(): Buffer {
  return Buffer.concat([
    authenticationOk(),
    parameterStatus('server_version', '15.4'),
    parameterStatus('server_encoding', 'UTF8'),
    parameterStatus('client_encoding', 'UTF8'),
    parameterStatus('standard_conforming_strings', 'on'),
    parameterStatus('integer_datetimes', 'on'),
    backendKeyData(),
    readyForQuery(),
  ]);
}

function defaultAnswers(options: FakeServerOptions): Record<string, QueryAnswer> {
  return {
    'SHOW server_version_num': showAnswer('server_version_num', '150004'),
    'SHOW wal_segment_size': showAnswer('wal_segment_size', '1MB'),
    'SHOW data_directory_mode': showAnswer('data_directory_mode', '0700'),
    IDENTIFY_SYSTEM: identifySystemAnswer(),
    READ_REPLICATION_SLOT: rowsAnswer(
      [{ name: 'slot_type', typeOid: TEXT_OID }, { name: 'restart_lsn', typeOid: TEXT_OID }, { name: 'restart_tli', typeOid: INT8_OID }],
      [['physical', '0/3000000', '1']],
      'READ_REPLICATION_SLOT',
    ),
    START_REPLICATION: async (query, send, session) => {
      send(copyBothResponse());
      await options.stream?.(query, send, session);
    },
  };
}

/** The answer for `query`: the longest key that starts it (case-insensitive, blanks collapsed). */
function findAnswer(answers: Record<string, QueryAnswer>, query: string): QueryAnswer | undefined {
  const text = query.trim().replace(/\s+/g, ' ').toUpperCase();
  let best: string | undefined;
  for (const key of Object.keys(answers)) {
    const k = key.trim().replace(/\s+/g, ' ').toUpperCase();
    if ((text === k || text.startsWith(k + ' ') || text.startsWith(k + ';')) && (!best || k.length > best.length)) best = key;
  }
  return best === undefined ? undefined : answers[best];
}

const SSL_REQUEST = 80877103;
const CANCEL_REQUEST = 80877102;
const GSSENC_REQUEST = 80877104;
/** A client message larger than this is garbage to the fake server (it drops the connection). */
const MAX_CLIENT_MESSAGE = 64 * 1024 * 1024;

/** Start a scripted server on 127.0.0.1 (a free port), registered for destroyAll(). Resolves once it listens. */
export async function startFakeServer(options: FakeServerOptions = {}): Promise<FakeServer> {
  const host = '127.0.0.1';
  const answers = { ...defaultAnswers(options), ...options.answers };
  const sessions: FakeSession[] = [];
  const sockets = new Set<net.Socket>();
  const scriptErrors: unknown[] = [];
  let life: ServerLifecycle | undefined;

  const server = net.createServer({ allowHalfOpen: false }, (socket) => {
    if (life?.closing) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.setNoDelay(true);
    const frames: ClientFrame[] = [];
    const waiters = new Set<{ match: (f: ClientFrame) => boolean; resolve: (f: ClientFrame | null) => void }>();
    let closed = false;
    let resolveClosed!: () => void;
    const whenClosed = new Promise<void>((resolve) => (resolveClosed = resolve));
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => {
      closed = true;
      sockets.delete(socket);
      for (const w of waiters) w.resolve(null);
      waiters.clear();
      resolveClosed();
    });

    const send: Send = (bytes) => {
      if (closed || socket.destroyed || socket.writableEnded) return false;
      return socket.write(bytes);
    };
    const session: FakeSession = {
      id: sessions.length + 1,
      socket,
      frames,
      get closed() {
        return closed;
      },
      whenClosed,
      send,
      async sendAndDrain(bytes) {
        if (send(bytes)) return true;
        if (closed || socket.destroyed || socket.writableEnded) return false;
        await new Promise<void>((resolve) => {
          const done = () => {
            socket.off('drain', done);
            socket.off('close', done);
            resolve();
          };
          socket.on('drain', done);
          socket.on('close', done);
        });
        return !closed;
      },
      waitForFrame(match, opts = {}) {
        const from = opts.from ?? frames.length;
        const found = frames.slice(from).find(match);
        if (found) return Promise.resolve(found);
        if (closed) return Promise.resolve(null);
        return new Promise((resolve) => {
          const waiter = {
            match,
            resolve: (f: ClientFrame | null) => {
              clearTimeout(timer);
              waiters.delete(waiter);
              resolve(f);
            },
          };
          const timer = setTimeout(() => waiter.resolve(null), opts.timeoutMs ?? 10_000);
          waiters.add(waiter);
        });
      },
      end: () => socket.end(),
      destroy: () => socket.destroy(),
    };
    sessions.push(session);

    // Scripts run one after another (start-up, then each query in order); a throw is recorded, not fatal.
    let queue: Promise<void> = Promise.resolve();
    const enqueue = (step: () => void | Promise<void>) => {
      queue = queue.then(step).catch((err) => {
        scriptErrors.push(err);
        socket.destroy();
      });
    };

    const record = (type: string, body: Buffer) => {
      const f: ClientFrame = { type, body, at: performance.now() };
      frames.push(f);
      for (const w of [...waiters]) if (w.match(f)) w.resolve(f);
      return f;
    };

    let started = false; // the StartupMessage has arrived: typed messages from here on
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      for (;;) {
        if (!started) {
          if (pending.length < 8) return;
          const length = pending.readInt32BE(0);
          if (length < 8 || length > 10_000) {
            socket.destroy();
            return;
          }
          if (pending.length < length) return;
          const body = Buffer.from(pending.subarray(4, length));
          pending = pending.subarray(length);
          const code = body.readInt32BE(0);
          if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
            record(code === SSL_REQUEST ? 'ssl-request' : 'gssenc-request', body);
            send(Buffer.from('N'));
          } else if (code === CANCEL_REQUEST) {
            record('cancel-request', body);
            socket.end();
            return;
          } else {
            record('startup', body);
            started = true;
            enqueue(() => (options.startup ? options.startup(send, session) : void send(defaultStartupBytes())));
          }
          continue;
        }
        if (pending.length < 5) return;
        const length = pending.readInt32BE(1);
        if (length < 4 || length > MAX_CLIENT_MESSAGE) {
          socket.destroy();
          return;
        }
        if (pending.length < 1 + length) return;
        const type = String.fromCharCode(pending[0]);
        const body = Buffer.from(pending.subarray(5, 1 + length));
        pending = pending.subarray(1 + length);
        record(type, body);
        if (type === 'Q') {
          const query = body.toString('utf8', 0, Math.max(0, body.indexOf(0)));
          const answer = findAnswer(answers, query) ?? ((q: string, s: Send) => {
            s(Buffer.concat([errorFrame({ C: '42601', M: `fake server: no answer scripted for ${JSON.stringify(q)}` }), readyForQuery()]));
          });
          enqueue(() => answer(query, send, session));
        } else if (type === 'X') {
          socket.end(); // Terminate: the server closes
        }
      }
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as net.AddressInfo;

  const destroySockets = () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };

  life = serverLifecycle(server, destroySockets);
  const fake: FakeServer = {
    host,
    port,
    sessions,
    scriptErrors,
    connectionString: () => `host=${host} port=${port} user=x sslmode=disable`,
    close: () => life!.close(),
    destroy: () => life!.close(),
    destroySync: () => life!.destroySync(),
  };
  return fake;
}
