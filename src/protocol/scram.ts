/**
 * The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL's libpq does it
 * (src/interfaces/libpq/fe-auth-scram.c), pure: messages in and out as strings, no sockets. Channel
 * binding (SCRAM-SHA-256-PLUS) is not offered: walstream refuses channel_binding=require (conninfo), and
 * the gs2 header says "n" (the client does not support it), as node-postgres did.
 *
 * The exchange: clientFirst() → the server's server-first-message → clientFinal() (the proof) → the
 * server's server-final-message → verifyServerFinal(). Errors are one-line WalstreamError('PROTOCOL')
 * naming what was wrong with the server's message; they never include the password or derived keys.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { WalstreamError } from '../errors.js';

export const SCRAM_SHA_256 = 'SCRAM-SHA-256';

/** libpq's SCRAM_RAW_NONCE_LEN: 18 random bytes, base64 (24 characters). */
const RAW_NONCE_LENGTH = 18;
/** SCRAM_SHA_256_KEY_LEN. */
const KEY_LENGTH = 32;
/** gs2 header "n,," (no channel binding, no authzid) and its base64, the c= attribute. */
const GS2_HEADER = 'n,,';
const CHANNEL_BINDING = Buffer.from(GS2_HEADER).toString('base64'); // "biws"

function scramError(message: string): WalstreamError {
  return new WalstreamError('PROTOCOL', `SCRAM authentication: ${message}`);
}

/** A fresh client nonce (printable, no ','), as libpq makes it. */
export function scramNonce(): string {
  return randomBytes(RAW_NONCE_LENGTH).toString('base64');
}

// ---------------------------------------------------------------------------------------------
// SASLprep (RFC 4013), as PostgreSQL's pg_saslprep() uses it
// ---------------------------------------------------------------------------------------------

/** RFC 3454 C.1.2: non-ASCII space characters, mapped to U+0020. */
const NON_ASCII_SPACE = /[\u00a0\u1680\u2000-\u200b\u202f\u205f\u3000]/gu;
/** RFC 3454 B.1: commonly mapped to nothing. */
const MAPPED_TO_NOTHING = /[\u00ad\u034f\u1806\u180b-\u180d\u200b-\u200d\u2060\ufe00-\ufe0f\ufeff]/gu;
/**
 * RFC 3454 prohibited output used by SASLprep: C.2.1/C.2.2 control characters, C.3 private use, C.4
 * non-character code points, C.5 surrogates, C.6/C.7 inappropriate for plain text or canonical
 * representation, C.8 change display properties, C.9 tagging characters.
 */
const PROHIBITED = /[\u0000-\u001f\u007f-\u009f\u06dd\u070f\u180e\u200c\u200d\u2028\u2029\u2060-\u2063\u206a-\u206f\ufeff\ufff9-\ufffc\ufffd\ue000-\uf8ff\ufdd0-\ufdef\ufffe\uffff\u2ff0-\u2ffb\u0340\u0341\u200e\u200f\u202a-\u202e\u{1d173}-\u{1d17a}\u{f0000}-\u{ffffd}\u{100000}-\u{10fffd}\u{e0001}\u{e0020}-\u{e007f}\u{1fffe}\u{1ffff}\u{2fffe}\u{2ffff}\u{3fffe}\u{3ffff}\u{4fffe}\u{4ffff}\u{5fffe}\u{5ffff}\u{6fffe}\u{6ffff}\u{7fffe}\u{7ffff}\u{8fffe}\u{8ffff}\u{9fffe}\u{9ffff}\u{afffe}\u{affff}\u{bfffe}\u{bffff}\u{cfffe}\u{cffff}\u{dfffe}\u{dffff}\u{efffe}\u{effff}]|[\ud800-\udfff]/u;

/**
 * The password as SCRAM uses it: pg_saslprep() of it, or the password itself where that fails, as
 * libpq does (pg_fe_scram_build_secret / calculate_client_proof: "if SASLprep fails, use the raw
 * password"). Pure ASCII is returned unchanged (pg_saslprep's fast path, control characters included).
 * Otherwise: RFC 3454 B.1 mapped to nothing, C.1.2 to a space, NFKC; prohibited output (C.2–C.9) or
 * a string that is not valid UTF-16 falls back to the raw password. Not checked, unlike libpq:
 * unassigned code points (A.1) and the bidirectional rule (RFC 3454 section 6), where libpq would
 * also fall back to the raw password; a server-computed verifier of such a password may then differ.
 */
export function saslprep(password: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\u0000-\u007f]*$/.test(password)) return password;
  const mapped = password.replace(MAPPED_TO_NOTHING, '').replace(NON_ASCII_SPACE, ' ').normalize('NFKC');
  if (mapped === '' || PROHIBITED.test(mapped)) return password;
  return mapped;
}

// ---------------------------------------------------------------------------------------------
// The exchange
// ---------------------------------------------------------------------------------------------

/** What the client remembers between its messages. */
export interface ScramState {
  clientNonce: string;
  /** client-first-message-bare ("n=…,r=…"). */
  clientFirstBare: string;
  /** Set by clientFinal(): the ServerSignature the server-final-message must carry. */
  expectedServerSignature?: Buffer;
}

/**
 * The client-first-message: gs2 header "n,," and the bare part "n=<user>,r=<nonce>". libpq sends an
 * empty user name (the server takes the start-up packet's); `user` exists for RFC 7677's test vector.
 */
export function clientFirst(nonce: string = scramNonce(), user = ''): { message: string; state: ScramState } {
  const clientFirstBare = `n=${user.replace(/=/g, '=3D').replace(/,/g, '=2C')},r=${nonce}`;
  return { message: GS2_HEADER + clientFirstBare, state: { clientNonce: nonce, clientFirstBare } };
}

/** One attribute "x=value" at the start of `text` (read_attr_value in fe-auth-scram.c). */
function readAttribute(text: string, name: string, what: string): { value: string; rest: string | null } {
  if (!text.startsWith(`${name}=`)) {
    throw scramError(`malformed ${what}: expected attribute "${name}" at ${JSON.stringify(text.slice(0, 20))}`);
  }
  const comma = text.indexOf(',');
  return comma < 0 ? { value: text.slice(2), rest: null } : { value: text.slice(2, comma), rest: text.slice(comma + 1) };
}

function hmac(key: Buffer, text: string | Buffer): Buffer {
  return createHmac('sha256', key).update(text).digest();
}

/** Strict base64 (as pg_b64_dec: no whitespace, padding right), or null. */
function decodeBase64(text: string): Buffer | null {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
  return Buffer.from(text, 'base64');
}

/**
 * Given the server-first-message ("r=<nonce>,s=<salt>,i=<iterations>"), the client-final-message
 * "c=biws,r=<nonce>,p=<proof>". Checks as libpq's read_server_first_message: the server's nonce must
 * extend ours, the salt be valid base64, the iteration count a positive integer, nothing after it.
 * Records in `state` the server signature verifyServerFinal() expects.
 */
export function clientFinal(state: ScramState, serverFirst: string, password: string): string {
  const what = 'server-first-message';
  const nonceAttr = readAttribute(serverFirst, 'r', what);
  const nonce = nonceAttr.value;
  if (nonce.length <= state.clientNonce.length || !nonce.startsWith(state.clientNonce)) {
    throw scramError('invalid SCRAM response (nonce mismatch)');
  }
  if (nonceAttr.rest === null) throw scramError(`malformed ${what}: no salt`);
  const saltAttr = readAttribute(nonceAttr.rest, 's', what);
  const salt = decodeBase64(saltAttr.value);
  if (salt === null || salt.length === 0) throw scramError(`malformed ${what}: the salt is not base64`);
  if (saltAttr.rest === null) throw scramError(`malformed ${what}: no iteration count`);
  const iterationsAttr = readAttribute(saltAttr.rest, 'i', what);
  if (iterationsAttr.rest !== null) throw scramError(`malformed ${what}: garbage at the end of the message`);
  const iterations = /^[0-9]{1,10}$/.test(iterationsAttr.value) ? Number(iterationsAttr.value) : NaN;
  if (!(iterations >= 1 && iterations <= 0x7fffffff)) throw scramError(`malformed ${what}: invalid iteration count ${JSON.stringify(iterationsAttr.value.slice(0, 20))}`);

  const clientFinalWithoutProof = `c=${CHANNEL_BINDING},r=${nonce}`;
  const authMessage = `${state.clientFirstBare},${serverFirst},${clientFinalWithoutProof}`;
  const saltedPassword = pbkdf2Sync(Buffer.from(saslprep(password), 'utf8'), salt, iterations, KEY_LENGTH, 'sha256');
  const clientKey = hmac(saltedPassword, 'Client Key');
  const storedKey = createHash('sha256').update(clientKey).digest();
  const clientSignature = hmac(storedKey, authMessage);
  const proof = Buffer.alloc(KEY_LENGTH);
  for (let i = 0; i < KEY_LENGTH; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!;
  state.expectedServerSignature = hmac(hmac(saltedPassword, 'Server Key'), authMessage);
  return `${clientFinalWithoutProof},p=${proof.toString('base64')}`;
}

/**
 * Check the server-final-message ("v=<ServerSignature>"): the server must prove it knows the password
 * too. "e=<error>" and a wrong signature are errors.
 */
export function verifyServerFinal(state: ScramState, serverFinal: string): void {
  if (state.expectedServerSignature === undefined) throw scramError('the server sent its final message before the client proof');
  if (serverFinal.startsWith('e=')) {
    throw scramError(`the server refused the exchange (${JSON.stringify(serverFinal.slice(2, 80))})`);
  }
  const attr = readAttribute(serverFinal, 'v', 'server-final-message');
  if (attr.rest !== null) throw scramError('malformed server-final-message: garbage at the end of the message');
  const signature = decodeBase64(attr.value);
  if (signature === null || signature.length !== KEY_LENGTH) throw scramError('malformed server-final-message: the server signature is not 32 bytes of base64');
  if (!timingSafeEqual(signature, state.expectedServerSignature)) throw scramError('incorrect server signature: the server does not know the password (a man in the middle?)');
}
