/**
 * What connection.ts needs of a resolved target to connect: the TLS options libpq would use (reading
 * the root certificate, client certificate and key files) in sslFallbackOrder(), noPasswordError(), and
 * isSslRefusal() to tell when the next sslmode attempt may succeed.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { PgError, WalstreamError } from '../errors.js';
import { badConninfo, isUnixSocketHost } from './common.js';
import { type ConnectionTarget, type SslMode, SSL_MODES, checkChoice, describeTarget, fileExists } from './resolve.js';

// ---------------------------------------------------------------------------------------------
// TLS options
// ---------------------------------------------------------------------------------------------

function readSslFile(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : 'could not be read';
    throw badConninfo(`${what} "${file}" ${reason}; fix the path or the file's permissions`);
  }
}

/** The TLS options libpq's initialize_SSL() would use for this target (for any mode but disable). */
function tlsOptionsFor(t: ConnectionTarget): TlsConnectionOptions {
  const verify = t.sslmode === 'verify-ca' || t.sslmode === 'verify-full';
  const options: TlsConnectionOptions = {};
  // A root certificate is loaded whenever the file exists; then even require/prefer/allow verify the chain.
  let ca: Buffer | undefined;
  if (t.sslrootcert !== undefined && (verify || fileExists(t.sslrootcert))) ca = readSslFile(t.sslrootcert, 'root certificate file');
  if (verify && ca === undefined) {
    throw badConninfo(`sslmode=${t.sslmode} needs a root certificate file; set sslrootcert (or PGSSLROOTCERT), or change sslmode to disable server certificate verification`);
  }
  if (ca !== undefined) {
    options.ca = ca;
    options.rejectUnauthorized = true;
    if (t.sslmode !== 'verify-full') options.checkServerIdentity = () => undefined;
  } else {
    options.rejectUnauthorized = false;
  }
  if (t.sslmode === 'verify-full' && net.isIP(t.host) === 0) options.servername = t.host;

  // Client certificate: used when the file exists; then its key must exist and be private.
  if (t.sslcert !== undefined) {
    let cert: Buffer | undefined;
    try {
      cert = fs.readFileSync(t.sslcert);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') {
        throw badConninfo(`could not open certificate file "${t.sslcert}": ${(err as Error).message}; fix the path or its permissions`);
      }
    }
    if (cert !== undefined) {
      if (t.sslkey === undefined) throw badConninfo(`certificate present, but no private key file; set sslkey (or PGSSLKEY)`);
      let stat: fs.Stats;
      try {
        stat = fs.statSync(t.sslkey);
      } catch {
        throw badConninfo(`certificate present, but not private key file "${t.sslkey}"; set sslkey (or PGSSLKEY) to the key of "${t.sslcert}"`);
      }
      if (!stat.isFile()) throw badConninfo(`private key file "${t.sslkey}" is not a regular file; point sslkey at the key file`);
      if (process.platform !== 'win32') {
        const tooOpen = stat.uid === 0 ? (stat.mode & 0o037) !== 0 : (stat.mode & 0o077) !== 0;
        if (tooOpen) {
          throw badConninfo(`private key file "${t.sslkey}" has group or world access; chmod 0600 it (0640 is allowed if owned by root)`);
        }
      }
      options.cert = cert;
      options.key = readSslFile(t.sslkey, 'private key file');
    }
  }
  return options;
}

/**
 * The order of `ssl` settings to try for one connection, as libpq negotiates sslmode:
 * prefer → [ssl, no-ssl]; allow → [no-ssl, ssl]; require, verify-ca, verify-full → [ssl]; disable → [false].
 * Pass the target (preferred): the ssl object then carries the root CA (chain verification whenever a
 * root certificate file exists, as libpq), the client certificate and key, and for verify-full the
 * server name; a Unix-socket target gives [false] because libpq never uses SSL over a Unix socket.
 * Given only a mode, the ssl object is generic: { rejectUnauthorized: false }, or for verify-ca /
 * verify-full { rejectUnauthorized: true } against Node's default CAs (sslrootcert cannot be known).
 * Throws WalstreamError('BAD_CONNINFO') when a certificate or key file is missing or unsafe.
 */
export function sslFallbackOrder(target: ConnectionTarget | SslMode): Array<false | TlsConnectionOptions> {
  const mode = typeof target === 'string' ? target : target.sslmode;
  checkChoice('sslmode', mode, SSL_MODES);
  if (mode === 'disable') return [false];
  if (typeof target !== 'string' && isUnixSocketHost(target.host)) return [false];
  const ssl: TlsConnectionOptions = typeof target === 'string'
    ? { rejectUnauthorized: mode === 'verify-ca' || mode === 'verify-full' }
    : tlsOptionsFor(target);
  switch (mode) {
    case 'prefer': return [ssl, false];
    case 'allow': return [false, ssl];
    default: return [ssl];
  }
}

/**
 * The error when the server asks for a password and the target has none (libpq's "no password
 * supplied"), naming the ways to give one. It never reads PGPASSWORD or .pgpass itself: resolveTargets did.
 */
export function noPasswordError(t: ConnectionTarget): WalstreamError {
  return new WalstreamError('NO_PASSWORD',
    `the server at ${describeTarget(t)} asked for a password, but none was supplied; set PGPASSWORD, add a .pgpass line (database field "replication" or "*"), or give password= in the connection string`);
}

// ---------------------------------------------------------------------------------------------
// Telling an SSL refusal from other connection failures
// ---------------------------------------------------------------------------------------------

/**
 * What connection.ts's start-up fails with when the server answers the SSLRequest: 'N' gives the first
 * (when no plain attempt follows on the same socket), any other byte (an old server's 'E', garbage) the
 * second. Fixed English, the same whatever the server's lc_messages, and the same words node-postgres
 * (lib/connection.js, connect()) used.
 */
export const SSL_NOT_SUPPORTED = 'The server does not support SSL connections';
export const SSL_ERROR = 'There was an error establishing an SSL connection';
const PG_SSL_REFUSALS: ReadonlySet<string> = new Set([SSL_NOT_SUPPORTED, SSL_ERROR]);

/**
 * What Node's TLS layer (lib/_tls_wrap.js, onConnectEnd) says when the server closes the connection
 * after agreeing to TLS ('S') but before the handshake ends. Node's own constant text, code ECONNRESET;
 * a bare "read ECONNRESET" is not recognised (it may come before or after the handshake).
 */
const TLS_DISCONNECTED = 'Client network socket disconnected before secure TLS connection was established';

/**
 * True when `err` (what a start-up attempt failed with) says that this connection attempt failed
 * because of its SSL choice, so that the next attempt of sslFallbackOrder() may succeed (libpq's
 * sslmode=prefer/allow). Recognised by stable signs, never by the server's translatable text:
 * - the refusal of the SSLRequest: the server answered 'N' (or not 'S'), see PG_SSL_REFUSALS;
 * - a TLS handshake that failed in OpenSSL: code ERR_SSL_* or library "SSL routines" (e.g.
 *   ERR_SSL_NO_CIPHERS_AVAILABLE), or EPROTO (an OpenSSL alert met while writing, e.g. "wrong version
 *   number" when the server said 'S' and then spoke something else);
 * - the server hanging up in the middle of the handshake (ECONNRESET with Node's own message);
 * - the server's pg_hba.conf refusal, SQLSTATE 28000 in an ErrorResponse (libpq/auth.c,
 *   ClientAuthentication(): "no pg_hba.conf entry for replication connection from host …, SSL
 *   encryption" / "…, no encryption"): hostssl/hostnossl lines may accept the other choice, and libpq
 *   tries it too.
 * Certificate verification failures (DEPTH_ZERO_SELF_SIGNED_CERT, ERR_TLS_CERT_ALTNAME_INVALID, …) are
 * not refusals: the server offered TLS, the client refused its certificate, and falling back to plain
 * text would defeat the check. Anything else (refused TCP connection, timeout, wrong password, a
 * WalstreamError) is false.
 */
export function isSslRefusal(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; message?: unknown; library?: unknown; severity?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const message = typeof e.message === 'string' ? e.message : '';
  if (err instanceof WalstreamError) return false;
  // A server's ErrorResponse (our PgError, or any error with SQLSTATE and severity): only
  // pg_hba.conf's refusal.
  if (err instanceof PgError || (code !== undefined && /^[0-9A-Z]{5}$/.test(code) && typeof e.severity === 'string')) {
    return code === '28000';
  }
  if (PG_SSL_REFUSALS.has(message)) return true;
  if (code?.startsWith('ERR_SSL_') || e.library === 'SSL routines' || code === 'EPROTO') return true;
  return code === 'ECONNRESET' && message === TLS_DISCONNECTED;
}
