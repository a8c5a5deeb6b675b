/**
 * Connection start-up, pure (bytes in, bytes out; connection.ts does the sockets and TLS): the
 * SSLRequest, the StartupMessage, authentication (trust, cleartext password, MD5, SCRAM-SHA-256) and
 * what the server sends until ReadyForQuery. Message layouts: PostgreSQL's protocol docs ("Start-up",
 * "Message Formats"); the order of checks follows libpq (fe-connect.c, fe-auth.c, fe-auth-scram.c).
 *
 * A server error (ErrorResponse) is a PgError with its SQLSTATE, message, detail and hint; a message
 * walstream cannot read is a one-line WalstreamError('PROTOCOL'); the password appears in neither.
 */
import { createHash } from 'node:crypto';
import { PgError, WalstreamError } from '../errors.js';
import { Backend, parseErrorFields, showValue } from './backend.js';
import { typeName } from './framing.js';
import { SCRAM_SHA_256, type ScramState, clientFinal, clientFirst, verifyServerFinal } from './scram.js';

/** Protocol 3.0 (196608), the version the StartupMessage asks for. */
export const PROTOCOL_VERSION = 3 << 16;
/** The SSLRequest code (1234 << 16 | 5679). */
export const SSL_REQUEST_CODE = 80877103;

/** Start-up message types besides those of backend.ts. */
export const StartupMessage = {
  Authentication: 0x52, // 'R'
  BackendKeyData: 0x4b, // 'K'
  NegotiateProtocolVersion: 0x76, // 'v'
} as const;

/** The 8-byte SSLRequest. */
export function encodeSslRequest(): Buffer {
  const buf = Buffer.allocUnsafe(8);
  buf.writeInt32BE(8, 0);
  buf.writeInt32BE(SSL_REQUEST_CODE, 4);
  return buf;
}

/** The StartupMessage: protocol 3.0 and the parameters as NUL-terminated name/value pairs. */
export function encodeStartupMessage(parameters: Record<string, string>): Buffer {
  const pairs: Buffer[] = [];
  for (const [name, value] of Object.entries(parameters)) {
    if (name.includes('\0') || value.includes('\0')) throw new WalstreamError('BAD_CONNINFO', `start-up parameter "${name.replace(/\0/g, '')}" contains a zero byte`);
    pairs.push(Buffer.from(`${name}\0${value}\0`, 'utf8'));
  }
  const body = Buffer.concat([...pairs, Buffer.from([0])]);
  const buf = Buffer.allocUnsafe(8 + body.length);
  buf.writeInt32BE(buf.length, 0);
  buf.writeInt32BE(PROTOCOL_VERSION, 4);
  body.copy(buf, 8);
  return buf;
}

/** A typed frontend message: type byte, length, body. */
function frontend(type: number, body: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(5 + body.length);
  buf[0] = type;
  buf.writeInt32BE(4 + body.length, 1);
  body.copy(buf, 5);
  return buf;
}

/** PasswordMessage ('p'): a cleartext or MD5 password, NUL-terminated. */
export function encodePasswordMessage(text: string): Buffer {
  return frontend(0x70, Buffer.from(`${text}\0`, 'utf8'));
}

/** SASLInitialResponse ('p'): the mechanism, then the length of the first message and the message. */
export function encodeSaslInitialResponse(mechanism: string, data: Buffer): Buffer {
  const name = Buffer.from(`${mechanism}\0`, 'utf8');
  const length = Buffer.allocUnsafe(4);
  length.writeInt32BE(data.length, 0);
  return frontend(0x70, Buffer.concat([name, length, data]));
}

/** SASLResponse ('p'): the client's next message, as is. */
export function encodeSaslResponse(data: Buffer): Buffer {
  return frontend(0x70, data);
}

/** Terminate ('X'). */
export function encodeTerminate(): Buffer {
  return Buffer.from([0x58, 0, 0, 0, 4]);
}

/** "md5" + md5(md5(password + user) + salt), as hex: what an MD5 PasswordMessage carries (fe-auth.c). */
export function md5PasswordHash(user: string, password: string, salt: Uint8Array): string {
  const inner = createHash('md5').update(password, 'utf8').update(user, 'utf8').digest('hex');
  return 'md5' + createHash('md5').update(inner, 'latin1').update(salt).digest('hex');
}

/** An authentication request ('R'), decoded. */
export type AuthenticationRequest =
  | { kind: 'ok' }
  | { kind: 'cleartext' }
  | { kind: 'md5'; salt: Buffer }
  | { kind: 'sasl'; mechanisms: string[] }
  | { kind: 'sasl-continue'; data: Buffer }
  | { kind: 'sasl-final'; data: Buffer }
  | { kind: 'unsupported'; code: number; method: string };

/** Methods libpq knows and walstream does not speak (AUTH_REQ_* in PostgreSQL's pqcomm.h / protocol.h). */
const UNSUPPORTED_METHODS: Record<number, string> = {
  2: 'Kerberos V5',
  6: 'SCM credentials',
  7: 'GSSAPI',
  8: 'GSSAPI',
  9: 'SSPI',
};

function protocolError(message: string): WalstreamError {
  return new WalstreamError('PROTOCOL', message);
}

/** Decode an authentication request body (int32 code, then the method's data). */
export function parseAuthentication(body: Buffer): AuthenticationRequest {
  if (body.length < 4) throw protocolError(`the server sent an authentication request of ${body.length} bytes, too short for its code (4)`);
  const code = body.readInt32BE(0);
  const rest = body.subarray(4);
  const exact = (n: number, what: string) => {
    if (rest.length !== n) throw protocolError(`the server sent a ${what} authentication request with ${rest.length} bytes of data, expected ${n}`);
  };
  switch (code) {
    case 0: exact(0, 'AuthenticationOk'); return { kind: 'ok' };
    case 3: exact(0, 'cleartext password'); return { kind: 'cleartext' };
    case 5: exact(4, 'MD5 password'); return { kind: 'md5', salt: Buffer.from(rest) };
    case 10: {
      const mechanisms: string[] = [];
      let offset = 0;
      for (;;) {
        const end = rest.indexOf(0, offset);
        if (end < 0) throw protocolError('the server sent a SASL authentication request whose mechanism list is not terminated');
        if (end === offset) break;
        mechanisms.push(rest.toString('utf8', offset, end));
        offset = end + 1;
      }
      if (offset + 1 !== rest.length) throw protocolError('the server sent a SASL authentication request with data after its mechanism list');
      return { kind: 'sasl', mechanisms };
    }
    case 11: return { kind: 'sasl-continue', data: Buffer.from(rest) };
    case 12: return { kind: 'sasl-final', data: Buffer.from(rest) };
    default:
      return { kind: 'unsupported', code, method: UNSUPPORTED_METHODS[code] ?? `an unknown method (authentication request type ${code})` };
  }
}

/** ParameterStatus ('S'): name and value. */
export function parseParameterStatus(body: Buffer): [string, string] {
  const nameEnd = body.indexOf(0);
  const valueEnd = nameEnd < 0 ? -1 : body.indexOf(0, nameEnd + 1);
  if (valueEnd !== body.length - 1) throw protocolError(`the server sent a ParameterStatus of ${body.length} bytes that is not two NUL-terminated strings`);
  return [body.toString('utf8', 0, nameEnd), body.toString('utf8', nameEnd + 1, valueEnd)];
}

/** BackendKeyData ('K'): the backend's process ID and cancel key (4 bytes in protocol 3.0). */
export function parseBackendKeyData(body: Buffer): { processId: number; secretKey: Buffer } {
  if (body.length < 8) throw protocolError(`the server sent a BackendKeyData of ${body.length} bytes, expected at least 8`);
  return { processId: body.readInt32BE(0), secretKey: Buffer.from(body.subarray(4)) };
}

/** What the exchange needs to know. */
export interface StartupCredentials {
  user: string;
  /** The password, when one was given (PGPASSWORD, .pgpass, the connection string). */
  password?: string;
  /** The error to fail with when the server asks for a password and none was given. */
  noPassword: () => Error;
  /** The SCRAM client nonce (tests); a fresh random one by default. */
  scramNonce?: string;
}

/** What start-up established. */
export interface StartupResult {
  /** Every ParameterStatus (server_version, standard_conforming_strings, …). */
  parameters: Map<string, string>;
  backendKey: { processId: number; secretKey: Buffer } | null;
  /** The authentication the server asked for: 'trust' when it said AuthenticationOk at once. */
  authentication: 'trust' | 'cleartext' | 'md5' | 'scram-sha-256';
}

/**
 * The client's side of start-up after the StartupMessage, as a state machine over backend messages:
 * `receive(type, body)` returns what to send back (or nothing), and `done` once ReadyForQuery came.
 * Throws PgError for an ErrorResponse and WalstreamError for anything out of order or unreadable.
 */
export class StartupExchange {
  private readonly credentials: StartupCredentials;
  private phase: 'auth' | 'scram-first' | 'scram-final' | 'scram-ok' | 'after-auth' | 'done' = 'auth';
  private scram: ScramState | null = null;
  readonly result: StartupResult = { parameters: new Map(), backendKey: null, authentication: 'trust' };

  constructor(credentials: StartupCredentials) {
    this.credentials = credentials;
  }

  get done(): boolean {
    return this.phase === 'done';
  }

  private password(): string {
    const password = this.credentials.password;
    if (password === undefined || password === '') throw this.credentials.noPassword();
    return password;
  }

  /** One backend message; returns the reply to send, if any. */
  receive(type: number, body: Buffer): Buffer | null {
    if (this.phase === 'done') throw protocolError(`the server sent message type ${typeName(type)} after ReadyForQuery, before any command`);
    switch (type) {
      case Backend.ErrorResponse:
        throw new PgError(parseErrorFields(body));
      case Backend.NoticeResponse:
        parseErrorFields(body, 'NoticeResponse');
        return null;
      case StartupMessage.NegotiateProtocolVersion:
        // Sent when the server speaks an older minor version or ignores _pq_ options; 3.0 asks for neither.
        return null;
      case StartupMessage.Authentication:
        return this.authentication(parseAuthentication(body));
      default:
        break;
    }
    if (this.phase !== 'after-auth') {
      throw protocolError(`the server sent message type ${typeName(type)} during authentication, before AuthenticationOk`);
    }
    switch (type) {
      case Backend.ParameterStatus: {
        const [name, value] = parseParameterStatus(body);
        this.result.parameters.set(name, value);
        return null;
      }
      case StartupMessage.BackendKeyData:
        this.result.backendKey = parseBackendKeyData(body);
        return null;
      case Backend.ReadyForQuery:
        if (body.length !== 1) throw protocolError(`the server sent a ReadyForQuery of ${body.length} bytes, expected 1`);
        this.phase = 'done';
        return null;
      default:
        throw protocolError(`the server sent message type ${typeName(type)} during start-up, where ParameterStatus, BackendKeyData or ReadyForQuery belong`);
    }
  }

  private authentication(request: AuthenticationRequest): Buffer | null {
    const outOfOrder = () => protocolError(`the server sent an authentication request (${request.kind}) out of order`);
    switch (request.kind) {
      case 'ok':
        // After SCRAM only once the server proved itself (SASLFinal); libpq refuses a server that skips it.
        if (this.phase === 'scram-first' || this.phase === 'scram-final') {
          throw protocolError('the server ended SCRAM authentication without proving it knows the password (no server signature)');
        }
        if (this.phase !== 'auth' && this.phase !== 'scram-ok') throw outOfOrder();
        this.phase = 'after-auth';
        return null;
      case 'cleartext':
        if (this.phase !== 'auth') throw outOfOrder();
        this.result.authentication = 'cleartext';
        return encodePasswordMessage(this.password());
      case 'md5':
        if (this.phase !== 'auth') throw outOfOrder();
        this.result.authentication = 'md5';
        return encodePasswordMessage(md5PasswordHash(this.credentials.user, this.password(), request.salt));
      case 'sasl': {
        if (this.phase !== 'auth') throw outOfOrder();
        if (!request.mechanisms.includes(SCRAM_SHA_256)) {
          throw new WalstreamError('CONNECT_FAILED', `the server offers SASL authentication by ${request.mechanisms.map((m) => showValue(m)).join(', ') || 'no mechanism'}; walstream speaks only ${SCRAM_SHA_256}`);
        }
        this.password(); // a missing password fails here, before any SCRAM message (libpq)
        const first = clientFirst(this.credentials.scramNonce);
        this.scram = first.state;
        this.phase = 'scram-first';
        this.result.authentication = 'scram-sha-256';
        return encodeSaslInitialResponse(SCRAM_SHA_256, Buffer.from(first.message, 'utf8'));
      }
      case 'sasl-continue':
        if (this.phase !== 'scram-first' || this.scram === null) throw outOfOrder();
        this.phase = 'scram-final';
        return encodeSaslResponse(Buffer.from(clientFinal(this.scram, request.data.toString('utf8'), this.password()), 'utf8'));
      case 'sasl-final':
        if (this.phase !== 'scram-final' || this.scram === null) throw outOfOrder();
        verifyServerFinal(this.scram, request.data.toString('utf8'));
        this.phase = 'scram-ok';
        return null;
      case 'unsupported':
        throw new WalstreamError('CONNECT_FAILED', `the server asks for authentication by ${request.method}, which walstream does not support; use scram-sha-256, md5, password or trust for this role in pg_hba.conf`);
    }
  }
}

/**
 * Frames start-up traffic: bytes in as they arrive, whole typed messages out (copied, so they outlive
 * the socket's reused read buffers). What arrives after the message that ends start-up is kept for
 * the connection (`rest()`). A length word outside 4..MAX is a PROTOCOL error before anything is kept.
 */
export class StartupFramer {
  private pending: Buffer = Buffer.alloc(0);
  /** Start-up messages are small; an ErrorResponse or a SASL message is well under this. */
  static readonly MAX_BODY = 64 * 1024;

  /**
   * Feed bytes; `onMessage` gets each complete message in order (the body is a copy) and returns true
   * when start-up is over: the framer then stops, keeping everything after that message for rest().
   * Returns whether it stopped.
   */
  push(chunk: Buffer, onMessage: (type: number, body: Buffer) => boolean): boolean {
    this.pending = this.pending.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.pending, chunk]);
    let offset = 0;
    let stopped = false;
    while (!stopped && this.pending.length - offset >= 5) {
      const type = this.pending[offset]!;
      const length = this.pending.readInt32BE(offset + 1);
      if (length < 4 || length - 4 > StartupFramer.MAX_BODY) {
        throw protocolError(`the server sent a start-up message walstream cannot read (type ${typeName(type)}, length ${length})`);
      }
      if (this.pending.length - offset < 1 + length) break;
      const body = this.pending.subarray(offset + 5, offset + 1 + length);
      offset += 1 + length;
      stopped = onMessage(type, body);
    }
    this.pending = this.pending.subarray(offset);
    return stopped;
  }

  /** Bytes after the last complete message (the start of what follows start-up). */
  rest(): Buffer {
    return this.pending;
  }
}
