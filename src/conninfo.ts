/**
 * Connection parameters, interpreted the way libpq (PostgreSQL 15, fe-connect.c) and pg_receivewal
 * (streamutil.c GetConnection) interpret them: a keyword/value string or a postgres:// URI, explicit
 * fields (the CLI's -h/-p/-U), the PG* environment variables, compiled-in defaults and the password
 * file. The result is a list of fully resolved targets, one per host, tried in order by the caller.
 *
 * Passwords never appear in error messages, in describeTarget() or in an enumerable property of a
 * target (ConnectionTarget.password is non-enumerable, so JSON.stringify / console.log / spreading
 * a target do not show it).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type pg from 'pg';
import { WalstreamError } from './errors.js';

/** libpq's sslmode values. */
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

/** What a library user or the CLI passes; every field is optional. Empty strings count as "not given". */
export interface ConnectionOptions {
  /** libpq keyword/value string ("host=a port=5432 user=x") or URI (postgresql://user:pw@h1:5432,h2:5433/db?sslmode=require). */
  connectionString?: string;
  /** Host name, IP address or Unix-socket directory; may be a comma-separated list, like libpq. */
  host?: string;
  /** One port for all hosts, or a comma-separated list with one port per host. */
  port?: string | number;
  user?: string;
  password?: string;
  database?: string;
  applicationName?: string;
  sslmode?: SslMode;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  connectTimeoutSeconds?: number;
  passfile?: string;
}

/** One host to try, fully resolved. */
export interface ConnectionTarget {
  /** Host name, IP address, or (starting with '/') a Unix-socket directory. */
  host: string;
  port: number;
  user: string;
  /** Non-enumerable: present on the object but hidden from JSON.stringify, console.log and object spread. */
  password?: string;
  database?: string;
  applicationName: string;
  sslmode: SslMode;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  /** Effective libpq connect_timeout: absent for "wait forever", otherwise at least 2 (libpq's minimum). */
  connectTimeoutSeconds?: number;
}

/** The socket directory libpq uses when no host is given (Debian/Ubuntu/RHEL packages' DEFAULT_PGSOCKET_DIR). */
export const DEFAULT_SOCKET_DIR = '/var/run/postgresql';
/** libpq's DEF_PGPORT. */
export const DEFAULT_PORT = 5432;
/** application_name used by resolveTargets() when the caller gives no defaultApplicationName. */
export const DEFAULT_APPLICATION_NAME = 'pg-walstream';

const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/** The connection keywords PostgreSQL 15 libpq accepts (PQconninfoOptions); anything else is an error. */
const LIBPQ_KEYWORDS: ReadonlySet<string> = new Set([
  'service', 'user', 'password', 'passfile', 'channel_binding', 'connect_timeout', 'dbname', 'host',
  'hostaddr', 'port', 'client_encoding', 'options', 'application_name', 'fallback_application_name',
  'keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count', 'tcp_user_timeout',
  'sslmode', 'sslcompression', 'sslcert', 'sslkey', 'sslpassword', 'sslrootcert', 'sslcrl', 'sslcrldir',
  'sslsni', 'requirepeer', 'ssl_min_protocol_version', 'ssl_max_protocol_version', 'gssencmode',
  'krbsrvname', 'gsslib', 'replication', 'target_session_attrs',
]);

/** Keywords whose values are secrets: redacted, and never echoed in messages. */
const SECRET_KEYWORDS: ReadonlySet<string> = new Set(['password', 'sslpassword']);

const REDACTED = '********';
const URI_PREFIXES = ['postgresql://', 'postgres://'] as const;

function badConninfo(message: string): WalstreamError {
  return new WalstreamError('BAD_CONNINFO', message);
}

/** C isspace() in the "C" locale, which is what conninfo_parse() uses. */
function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';
}

function uriPrefixLength(text: string): number {
  for (const prefix of URI_PREFIXES) if (text.startsWith(prefix)) return prefix.length;
  return 0;
}

/** libpq's recognized_connection_string(): a URI, or anything containing '='. */
function looksLikeConnectionString(text: string): boolean {
  return uriPrefixLength(text) !== 0 || text.includes('=');
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

/**
 * Store one keyword as conninfo_storeval() does: requiressl=1/0 becomes sslmode=require/prefer,
 * unknown keywords are an error, a repeated keyword replaces the earlier value.
 */
function storeKeyword(out: Record<string, string>, keyword: string, value: string, unknown: (kw: string) => WalstreamError): void {
  if (keyword === 'requiressl') {
    keyword = 'sslmode';
    value = value.startsWith('1') ? 'require' : 'prefer';
  }
  if (!LIBPQ_KEYWORDS.has(keyword)) throw unknown(keyword);
  out[keyword] = value;
}

/** conninfo_parse(): whitespace-separated keyword = value, values optionally single-quoted, backslash escapes. */
function parseKeywordValue(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const n = text.length;
  let i = 0;
  let previousWasSecret = false;
  while (i < n) {
    if (isSpace(text[i])) { i++; continue; }
    const nameStart = i;
    while (i < n && text[i] !== '=' && !isSpace(text[i])) i++;
    const name = text.slice(nameStart, i);
    while (i < n && isSpace(text[i])) i++;
    if (text[i] !== '=') {
      // After password=foo, a stray word is most likely the rest of an unquoted password: do not echo it.
      throw badConninfo(previousWasSecret
        ? 'missing "=" after the word following the password in the connection string; quote values that contain spaces, like password=\'a b\''
        : `missing "=" after "${name}" in connection string; write keyword=value pairs (quote values containing spaces with single quotes)`);
    }
    i++;
    while (i < n && isSpace(text[i])) i++;
    let value = '';
    if (text[i] !== "'") {
      while (i < n && !isSpace(text[i])) {
        if (text[i] === '\\') {
          i++;
          if (i < n) value += text[i++];
        } else {
          value += text[i++];
        }
      }
    } else {
      i++;
      for (;;) {
        if (i >= n) {
          throw badConninfo(`unterminated quoted string in connection string (value of "${name}"); close the value with a single quote, and escape quotes inside it as \\'`);
        }
        if (text[i] === '\\') {
          i++;
          if (i < n) value += text[i++];
          continue;
        }
        if (text[i] === "'") { i++; break; }
        value += text[i++];
      }
    }
    const wasSecret = previousWasSecret;
    storeKeyword(out, name, value, (kw) => badConninfo(wasSecret
      ? 'invalid connection option after the password in the connection string; quote values that contain spaces, like password=\'a b\''
      : `invalid connection option "${kw}"; remove it or fix its spelling (see libpq's list of parameter key words)`));
    previousWasSecret = SECRET_KEYWORDS.has(name);
  }
  return out;
}

function hexValue(c: string | undefined): number {
  if (c === undefined) return -1;
  const code = c.charCodeAt(0);
  if (code >= 48 && code <= 57) return code - 48; // 0-9
  if (code >= 65 && code <= 70) return code - 55; // A-F
  if (code >= 97 && code <= 102) return code - 87; // a-f
  return -1;
}

/**
 * conninfo_uri_decode(): %XY sequences become bytes; the bytes are read as UTF-8. '+' is NOT a space.
 * %00 and malformed tokens are errors. `what` names the part for messages; secrets are never echoed.
 */
function uriDecode(raw: string, what: string, secret: boolean): string {
  if (!raw.includes('%')) return raw;
  const bytes: number[] = [];
  for (let i = 0; i < raw.length;) {
    const c = raw[i]!;
    if (c !== '%') {
      for (const b of Buffer.from(c, 'utf8')) bytes.push(b);
      i++;
      continue;
    }
    const hi = hexValue(raw[i + 1]);
    const lo = hexValue(raw[i + 2]);
    const shown = secret ? `in the ${what}` : `"${raw}"`;
    if (hi < 0 || lo < 0) {
      throw badConninfo(`invalid percent-encoded token ${shown} in connection URI; write a literal % as %25`);
    }
    const byte = (hi << 4) | lo;
    if (byte === 0) throw badConninfo(`forbidden value %00 in percent-encoded value ${shown} in connection URI; remove it`);
    bytes.push(byte);
    i += 3;
  }
  return Buffer.from(bytes).toString('utf8');
}

/** conninfo_uri_parse_options(): postgresql://[user[:password]@][netloc][:port][,...][/dbname][?param=value&...] */
function parseUri(uri: string): Record<string, string> {
  const out: Record<string, string> = {};
  const shownUri = (): string => redactConnectionString(uri);
  const n = uri.length;
  let p = uriPrefixLength(uri);
  const store = (keyword: string, raw: string, secret = false): void => {
    storeKeyword(out, keyword, uriDecode(raw, keyword, secret), (kw) => badConninfo(`invalid connection option "${kw}"`));
  };

  // Credentials: an '@' before the first '/'.
  let q = p;
  while (q < n && uri[q] !== '@' && uri[q] !== '/') q++;
  if (uri[q] === '@') {
    let e = p;
    while (uri[e] !== ':' && uri[e] !== '@') e++;
    const user = uri.slice(p, e);
    if (user) store('user', user);
    if (uri[e] === ':') {
      const pwStart = e + 1;
      e = pwStart;
      while (uri[e] !== '@') e++;
      const password = uri.slice(pwStart, e);
      if (password) store('password', password, true);
    }
    p = e + 1;
  }

  // One or more netloc[:port], separated by commas.
  let hostBuf = '';
  let portBuf = '';
  let terminator = '';
  for (;;) {
    let host: string;
    if (uri[p] === '[') {
      p++;
      const start = p;
      while (p < n && uri[p] !== ']') p++;
      if (p >= n) throw badConninfo(`end of string reached when looking for matching "]" in IPv6 host address in URI: "${shownUri()}"; close the address with "]"`);
      if (p === start) throw badConninfo(`IPv6 host address may not be empty in URI: "${shownUri()}"`);
      host = uri.slice(start, p);
      p++;
      if (p < n && !':/?,'.includes(uri[p]!)) {
        throw badConninfo(`unexpected character "${uri[p]}" at position ${p + 1} in URI (expected ":" or "/"): "${shownUri()}"`);
      }
    } else {
      const start = p;
      while (p < n && !':/?,'.includes(uri[p]!)) p++;
      host = uri.slice(start, p);
    }
    terminator = p < n ? uri[p]! : '';
    hostBuf += host;
    if (terminator === ':') {
      p++;
      const start = p;
      while (p < n && !'/?,'.includes(uri[p]!)) p++;
      portBuf += uri.slice(start, p);
      terminator = p < n ? uri[p]! : '';
    }
    if (terminator !== ',') break;
    p++;
    hostBuf += ',';
    portBuf += ',';
  }
  if (hostBuf) store('host', hostBuf);
  if (portBuf) store('port', portBuf);

  if (terminator && terminator !== '?') {
    // terminator is '/': the database name follows.
    p++;
    const start = p;
    while (p < n && uri[p] !== '?') p++;
    const dbname = uri.slice(start, p);
    terminator = p < n ? '?' : '';
    if (dbname) store('dbname', dbname);
  }

  if (terminator) {
    p++;
    parseUriParams(uri.slice(p), out);
  }
  return out;
}

/** conninfo_uri_parse_params(): key=value pairs separated by '&', both percent-decoded; ssl=true means sslmode=require. */
function parseUriParams(params: string, out: Record<string, string>): void {
  const n = params.length;
  let i = 0;
  while (i < n) {
    let eq = -1;
    let j = i;
    for (;;) {
      const c = j < n ? params[j] : '';
      if (c === '=') {
        if (eq >= 0) throw badConninfo(`extra key/value separator "=" in URI query parameter: "${params.slice(i, eq)}"; percent-encode "=" inside values as %3D`);
        eq = j;
        j++;
      } else if (c === '&' || c === '') {
        break;
      } else {
        j++;
      }
    }
    if (eq < 0) throw badConninfo(`missing key/value separator "=" in URI query parameter: "${params.slice(i, j)}"; write ?keyword=value`);
    let keyword = uriDecode(params.slice(i, eq), 'query parameter name', false);
    let value = uriDecode(params.slice(eq + 1, j), `value of ${keyword}`, SECRET_KEYWORDS.has(keyword));
    if (keyword === 'ssl' && value === 'true') {
      keyword = 'sslmode';
      value = 'require';
    }
    storeKeyword(out, keyword, value, (kw) => badConninfo(`invalid URI query parameter: "${kw}"; remove it or fix its spelling (see libpq's list of parameter key words)`));
    i = j < n ? j + 1 : j;
  }
}

/**
 * Parse a libpq connection string, keyword/value or URI (postgresql:// or postgres://), into the
 * libpq keywords it sets — exactly those given, no defaults — like PQconninfoParse(). Values are
 * unquoted/unescaped/percent-decoded; empty values are kept as ''. requiressl=1 and the URI
 * parameter ssl=true become sslmode=require. Throws WalstreamError('BAD_CONNINFO') for unknown
 * keywords ('invalid connection option "x"'), a missing '=', unterminated quotes, malformed URIs.
 * An empty string gives {}.
 */
export function parseConnectionString(text: string): Record<string, string> {
  return uriPrefixLength(text) !== 0 ? parseUri(text) : parseKeywordValue(text);
}

// ---------------------------------------------------------------------------------------------
// Redaction and description
// ---------------------------------------------------------------------------------------------

/** Redact secrets in a keyword/value string, keeping everything else byte for byte. */
function redactKeywordValue(text: string): string {
  const n = text.length;
  let i = 0;
  let result = '';
  let copiedUpTo = 0;
  let previousWasSecret = false;
  while (i < n) {
    if (isSpace(text[i])) { i++; continue; }
    const nameStart = i;
    while (i < n && text[i] !== '=' && !isSpace(text[i])) i++;
    const name = text.slice(nameStart, i);
    while (i < n && isSpace(text[i])) i++;
    if (text[i] !== '=') {
      // Unparseable from here on; if it follows a secret it is probably the rest of that secret.
      if (previousWasSecret) return result + text.slice(copiedUpTo, nameStart) + REDACTED;
      break;
    }
    i++;
    while (i < n && isSpace(text[i])) i++;
    const valueStart = i;
    let terminated = true;
    if (text[i] !== "'") {
      while (i < n && !isSpace(text[i])) i += text[i] === '\\' ? 2 : 1;
      if (i > n) i = n;
    } else {
      i++;
      terminated = false;
      while (i < n) {
        if (text[i] === '\\') { i += 2; continue; }
        if (text[i] === "'") { i++; terminated = true; break; }
        i++;
      }
      if (i > n) i = n;
    }
    // After a secret, an unknown keyword is most likely the rest of an unquoted secret value.
    if (previousWasSecret && !LIBPQ_KEYWORDS.has(name) && name !== 'requiressl') {
      return result + text.slice(copiedUpTo, nameStart) + REDACTED;
    }
    const secret = SECRET_KEYWORDS.has(name);
    if (secret) {
      result += text.slice(copiedUpTo, valueStart) + REDACTED;
      copiedUpTo = i;
      if (!terminated) return result;
    }
    previousWasSecret = secret;
  }
  return result + text.slice(copiedUpTo);
}

function safeDecode(raw: string): string {
  try {
    return uriDecode(raw, 'parameter', true);
  } catch {
    return raw;
  }
}

/** Redact the userinfo password and secret query parameters of a URI. */
function redactUri(uri: string): string {
  const n = uri.length;
  const start = uriPrefixLength(uri);
  let out = uri.slice(0, start);
  let p = start;
  let q = p;
  while (q < n && uri[q] !== '@' && uri[q] !== '/') q++;
  if (uri[q] === '@') {
    const colon = uri.indexOf(':', p);
    if (colon >= 0 && colon < q) out += uri.slice(p, colon + 1) + (colon + 1 < q ? REDACTED : '') + '@';
    else out += uri.slice(p, q + 1);
    p = q + 1;
  }
  const questionMark = uri.indexOf('?', p);
  if (questionMark < 0) return out + uri.slice(p);
  out += uri.slice(p, questionMark + 1);
  const params = uri.slice(questionMark + 1).split('&').map((pair) => {
    const eq = pair.indexOf('=');
    if (eq < 0) return pair;
    return SECRET_KEYWORDS.has(safeDecode(pair.slice(0, eq))) ? `${pair.slice(0, eq + 1)}${REDACTED}` : pair;
  });
  return out + params.join('&');
}

/**
 * The same connection string with every password (and sslpassword) value replaced by '********':
 * keyword/value form (quoted or not) and URI form (user:password@ and ?password=). Everything else
 * is kept as written. Never throws; text that is not a connection string comes back unchanged.
 */
export function redactConnectionString(text: string): string {
  if (uriPrefixLength(text) !== 0) return redactUri(text);
  if (!text.includes('=')) return text;
  return redactKeywordValue(text);
}

function quoteConninfoValue(value: string): string {
  if (value !== '' && !/[\s'\\]/.test(value)) return value;
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * A one-line description of a target for logs and messages, in libpq keyword/value form:
 * "host=127.0.0.1 port=5432 user=x". Never includes the password.
 */
export function describeTarget(t: ConnectionTarget): string {
  return `host=${quoteConninfoValue(t.host)} port=${t.port} user=${quoteConninfoValue(t.user)}`;
}

// ---------------------------------------------------------------------------------------------
// Password file
// ---------------------------------------------------------------------------------------------

/** libpq's is_unixsock_path(): an absolute path (or, on Linux, '@' for the abstract namespace). */
export function isUnixSocketHost(host: string): boolean {
  return host.startsWith('/') || host.startsWith('@');
}

/**
 * pwdfMatchesString(): does the field starting at `pos` match `token`? Returns the index after the
 * field's ':' separator, or -1. A field of exactly '*' matches anything; '\' escapes the next char.
 */
function matchPgpassField(line: string, pos: number, token: string): number {
  if (line[pos] === '*' && line[pos + 1] === ':') return pos + 2;
  let i = pos;
  let j = 0;
  let escaped = false;
  while (i < line.length) {
    if (line[i] === '\\' && !escaped) {
      i++;
      escaped = true;
    }
    if (line[i] === ':' && j === token.length && !escaped) return i + 1;
    escaped = false;
    if (j === token.length) return -1;
    if (line[i] === token[j]) {
      i++;
      j++;
    } else {
      return -1;
    }
  }
  return -1;
}

function pgpassWarning(message: string): void {
  process.emitWarning(message, { code: 'WALSTREAM_PGPASS' });
}

/**
 * libpq's passwordFromFile(): the password of the first line of `file` (host:port:database:username:password)
 * matching the four values, or undefined. '*' matches any value; '\:' and '\\' are escapes; lines
 * starting with '#' are comments. An empty host, or the default socket directory (DEFAULT_SOCKET_DIR,
 * compared as a string), is looked up as 'localhost'; other socket directories match literally.
 * Returns undefined when database or user is empty, or the file is missing. On POSIX, a file that is
 * not a plain file, or that has any group/other permission bits (e.g. 0644), is ignored with a process
 * warning naming the file (never its contents), as libpq does. A matching line with an empty password
 * returns ''.
 */
export function lookupPgpass(file: string, host: string, port: number, database: string, user: string): string | undefined {
  if (!database || !user) return undefined;
  let hostKey = host;
  if (hostKey === '' || (isUnixSocketHost(hostKey) && hostKey === DEFAULT_SOCKET_DIR)) hostKey = 'localhost';
  const portKey = String(port || DEFAULT_PORT);

  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return undefined;
  }
  if (process.platform !== 'win32') {
    if (!stat.isFile()) {
      pgpassWarning(`password file "${file}" is not a plain file; it is ignored`);
      return undefined;
    }
    if ((stat.mode & 0o077) !== 0) {
      pgpassWarning(`password file "${file}" has group or world access; it is ignored: permissions should be u=rw (0600) or less (chmod 0600 "${file}")`);
      return undefined;
    }
  }
  let content: string;
  try {
    // Compare bytes, as libpq does: read as latin1 (one char per byte) and encode the keys the same way.
    content = fs.readFileSync(file).toString('latin1');
  } catch {
    return undefined;
  }
  const asBytes = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');
  const keys = [asBytes(hostKey), portKey, asBytes(database), asBytes(user)];
  for (const rawLine of content.split('\n')) {
    if (rawLine.startsWith('#')) continue;
    const line = rawLine.replace(/[\r\n]+$/, '');
    if (line === '') continue;
    let pos = 0;
    for (const key of keys) {
      pos = matchPgpassField(line, pos, key);
      if (pos < 0) break;
    }
    if (pos < 0) continue;
    let password = '';
    for (let i = pos; i < line.length && line[i] !== ':'; i++) {
      if (line[i] === '\\' && i + 1 < line.length) i++;
      password += line[i];
    }
    return Buffer.from(password, 'latin1').toString('utf8');
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Resolution
// ---------------------------------------------------------------------------------------------

function nonEmpty(value: string | undefined | null): string | undefined {
  return value === undefined || value === null || value === '' ? undefined : value;
}

/** pqParseIntParam(): optional surrounding whitespace, optional sign, decimal digits, int range. */
function parseIntParam(value: string, keyword: string, hint: string): number {
  const m = /^[ \t\n\r\f\v]*([+-]?\d+)[ \t\n\r\f\v]*$/.exec(value);
  const n = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(n) || n > 2147483647 || n < -2147483648) {
    throw badConninfo(`invalid integer value "${value}" for connection option "${keyword}"; ${hint}`);
  }
  return n;
}

function parsePort(value: string): number {
  const port = parseIntParam(value, 'port', 'give a port number between 1 and 65535');
  if (port < 1 || port > 65535) throw badConninfo(`invalid port number: "${value}"; give a port number between 1 and 65535`);
  return port;
}

function homeDirectory(env: NodeJS.ProcessEnv): string | undefined {
  const home = nonEmpty(env.HOME);
  if (home) return home;
  try {
    return nonEmpty(os.userInfo().homedir);
  } catch {
    return undefined;
  }
}

function localUserName(): string {
  try {
    const name = os.userInfo().username;
    if (name) return name;
  } catch {
    // fall through
  }
  throw badConninfo('could not determine the local user name; give a user name with -U, user=, or PGUSER');
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function fileExists(p: string): boolean {
  try {
    fs.statSync(p);
    return true;
  } catch {
    return false;
  }
}

function checkChoice(keyword: string, value: string | undefined, allowed: readonly string[]): void {
  if (value !== undefined && !allowed.includes(value)) {
    throw badConninfo(`invalid ${keyword} value: "${value}"; use one of ${allowed.join(', ')}`);
  }
}

/**
 * Reject what libpq would honor but this client cannot: silently ignoring these would connect
 * differently (or less securely) than the operator asked.
 */
function rejectUnsupported(cs: Record<string, string>, env: NodeJS.ProcessEnv): void {
  const service = nonEmpty(cs.service) ?? nonEmpty(env.PGSERVICE);
  if (service !== undefined) {
    throw badConninfo(`connection service files are not supported (service "${service}" from ${nonEmpty(cs.service) ? 'service=' : 'PGSERVICE'}); give host, port and user directly`);
  }
  for (const keyword of ['options', 'requirepeer', 'sslcrl', 'sslcrldir', 'sslpassword']) {
    if (nonEmpty(cs[keyword]) !== undefined) {
      throw badConninfo(`connection option "${keyword}" is not supported by walstream; remove it from the connection string`);
    }
  }
  const channelBinding = nonEmpty(cs.channel_binding);
  checkChoice('channel_binding', channelBinding, ['disable', 'prefer', 'require']);
  if (channelBinding === 'require') throw badConninfo('channel_binding=require is not supported by walstream; use channel_binding=prefer or remove it');
  const gssencmode = nonEmpty(cs.gssencmode);
  checkChoice('gssencmode', gssencmode, ['disable', 'prefer', 'require']);
  if (gssencmode === 'require') throw badConninfo('gssencmode value "require" invalid: walstream has no GSSAPI support; use gssencmode=disable or remove it');
  const tsa = nonEmpty(cs.target_session_attrs);
  checkChoice('target_session_attrs', tsa, ['any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby']);
  if (tsa !== undefined && tsa !== 'any') {
    throw badConninfo(`target_session_attrs=${tsa} is not supported by walstream; list the hosts to try in order, or remove it`);
  }
}

/**
 * Resolve connection options into the hosts to try, in order, with libpq's precedence: explicit
 * fields of `opts` > keywords of opts.connectionString > environment (PGHOST, PGHOSTADDR, PGPORT,
 * PGUSER, PGPASSWORD, PGDATABASE, PGAPPNAME, PGSSLMODE/PGREQUIRESSL, PGSSLROOTCERT, PGSSLCERT,
 * PGSSLKEY, PGCONNECT_TIMEOUT, PGPASSFILE) > defaults (host: DEFAULT_SOCKET_DIR when that directory
 * exists, else 'localhost'; port 5432; user: the OS user; database: the user; sslmode 'prefer').
 * Empty values count as not given (as pg_receivewal passes them to libpq).
 * Hosts and ports are comma-separated lists: one port applies to every host, otherwise there must be
 * one port per host. hostaddr (without host) is used as the host. application_name: explicit >
 * PGAPPNAME > defaultApplicationName (pg_receivewal's fallback_application_name role) > the
 * connection string's fallback_application_name > DEFAULT_APPLICATION_NAME.
 * Password per host: explicit/connection string > PGPASSWORD > password file (passfile >
 * PGPASSFILE > ~/.pgpass) looked up with database "replication", as libpq does for pg_receivewal's
 * physical replication connections. SSL files default to ~/.postgresql/root.crt, postgresql.crt and
 * postgresql.key when they exist, like libpq. connect_timeout <= 0 means none; 1 becomes 2 (libpq).
 * `env` defaults to process.env. Throws WalstreamError('BAD_CONNINFO') with a one-line message
 * (never containing a password) for anything libpq would reject, and for libpq features this
 * client cannot honor (service, options, requirepeer, sslcrl, sslpassword, channel_binding=require,
 * gssencmode=require, target_session_attrs other than any, host and hostaddr together).
 */
export function resolveTargets(opts: ConnectionOptions, env: NodeJS.ProcessEnv = process.env, defaultApplicationName?: string): ConnectionTarget[] {
  const cs = opts.connectionString !== undefined && opts.connectionString !== '' ? parseConnectionString(opts.connectionString) : {};
  rejectUnsupported(cs, env);
  const pick = (explicit: string | undefined, keyword: string, envVar?: string): string | undefined =>
    nonEmpty(explicit) ?? nonEmpty(cs[keyword]) ?? (envVar ? nonEmpty(env[envVar]) : undefined);

  // Hosts.
  let hostSpec = pick(opts.host, 'host', 'PGHOST');
  const hostaddrSpec = pick(undefined, 'hostaddr', 'PGHOSTADDR');
  if (hostaddrSpec !== undefined) {
    if (hostSpec !== undefined) {
      throw badConninfo('hostaddr together with host is not supported by walstream; give only host (a name or an IP address)');
    }
    for (const addr of hostaddrSpec.split(',')) {
      if (addr !== '' && net.isIP(addr) === 0) {
        throw badConninfo(`could not parse network address "${addr}" in hostaddr; give a numeric IP address, or use host= for a name`);
      }
    }
    hostSpec = hostaddrSpec;
  }
  let defaultHost: string | undefined;
  const hosts = (hostSpec ?? '').split(',').map((h) => {
    if (h !== '') return h;
    defaultHost ??= isDirectory(DEFAULT_SOCKET_DIR) ? DEFAULT_SOCKET_DIR : 'localhost';
    return defaultHost;
  });
  for (const h of hosts) {
    if (h.startsWith('@')) throw badConninfo(`abstract Unix socket "${h}" is not supported; give a socket directory or a TCP host`);
  }

  // Ports.
  const explicitPort = opts.port === undefined || opts.port === null ? undefined : String(opts.port);
  const portSpec = pick(explicitPort, 'port', 'PGPORT');
  let ports: number[];
  if (portSpec === undefined) {
    ports = hosts.map(() => DEFAULT_PORT);
  } else {
    const list = portSpec.split(',').map((p) => (p === '' ? DEFAULT_PORT : parsePort(p)));
    if (list.length === 1) {
      ports = hosts.map(() => list[0]!);
    } else if (list.length === hosts.length) {
      ports = list;
    } else {
      throw badConninfo(`could not match ${list.length} port numbers to ${hosts.length} hosts; give one port for all hosts or one port per host`);
    }
  }

  // Identity.
  const user = pick(opts.user, 'user', 'PGUSER') ?? localUserName();
  const database = pick(opts.database, 'dbname', 'PGDATABASE') ?? user;
  const applicationName = pick(opts.applicationName, 'application_name', 'PGAPPNAME')
    ?? nonEmpty(defaultApplicationName) ?? nonEmpty(cs.fallback_application_name) ?? DEFAULT_APPLICATION_NAME;

  // SSL.
  let sslmodeText = pick(opts.sslmode, 'sslmode', 'PGSSLMODE');
  if (sslmodeText === undefined) sslmodeText = env.PGREQUIRESSL?.startsWith('1') ? 'require' : 'prefer';
  checkChoice('sslmode', sslmodeText, SSL_MODES);
  const sslmode = sslmodeText as SslMode;
  const home = homeDirectory(env);
  const dotPostgresql = home !== undefined ? path.join(home, '.postgresql') : undefined;
  let sslrootcert = pick(opts.sslrootcert, 'sslrootcert', 'PGSSLROOTCERT');
  if (sslrootcert === undefined && dotPostgresql !== undefined && fileExists(path.join(dotPostgresql, 'root.crt'))) {
    sslrootcert = path.join(dotPostgresql, 'root.crt');
  }
  let sslcert = pick(opts.sslcert, 'sslcert', 'PGSSLCERT');
  if (sslcert === undefined && dotPostgresql !== undefined && fileExists(path.join(dotPostgresql, 'postgresql.crt'))) {
    sslcert = path.join(dotPostgresql, 'postgresql.crt');
  }
  let sslkey = pick(opts.sslkey, 'sslkey', 'PGSSLKEY');
  if (sslkey === undefined && sslcert !== undefined && dotPostgresql !== undefined) sslkey = path.join(dotPostgresql, 'postgresql.key');
  if ((sslmode === 'verify-ca' || sslmode === 'verify-full') && hosts.some((h) => !isUnixSocketHost(h))) {
    const rootFile = sslrootcert ?? (dotPostgresql !== undefined ? path.join(dotPostgresql, 'root.crt') : undefined);
    if (rootFile === undefined) {
      throw badConninfo(`could not get home directory to locate root certificate file; set sslrootcert (or PGSSLROOTCERT), or change sslmode to disable server certificate verification`);
    }
    if (!fileExists(rootFile)) {
      throw badConninfo(`root certificate file "${rootFile}" does not exist; provide it (sslrootcert= or PGSSLROOTCERT), or change sslmode to disable server certificate verification`);
    }
  }

  // Timeout.
  const explicitTimeout = opts.connectTimeoutSeconds === undefined || opts.connectTimeoutSeconds === null ? undefined : String(opts.connectTimeoutSeconds);
  const timeoutText = pick(explicitTimeout, 'connect_timeout', 'PGCONNECT_TIMEOUT');
  let connectTimeoutSeconds: number | undefined;
  if (timeoutText !== undefined) {
    const seconds = parseIntParam(timeoutText, 'connect_timeout', 'give a whole number of seconds (0 waits forever)');
    connectTimeoutSeconds = seconds > 0 ? Math.max(seconds, 2) : undefined;
  }

  // Passwords.
  const password = pick(opts.password, 'password', 'PGPASSWORD');
  let passfile: string | undefined;
  if (password === undefined) {
    passfile = pick(opts.passfile, 'passfile', 'PGPASSFILE') ?? (home !== undefined ? path.join(home, '.pgpass') : undefined);
  }

  return hosts.map((host, i) => {
    const port = ports[i]!;
    const target: ConnectionTarget = { host, port, user, database, applicationName, sslmode };
    if (sslrootcert !== undefined) target.sslrootcert = sslrootcert;
    if (sslcert !== undefined) target.sslcert = sslcert;
    if (sslkey !== undefined) target.sslkey = sslkey;
    if (connectTimeoutSeconds !== undefined) target.connectTimeoutSeconds = connectTimeoutSeconds;
    const hostPassword = password ?? (passfile !== undefined ? nonEmpty(lookupPgpass(passfile, host, port, 'replication', user)) : undefined);
    if (hostPassword !== undefined) {
      Object.defineProperty(target, 'password', { value: hostPassword, enumerable: false, writable: true, configurable: true });
    }
    return target;
  });
}

// ---------------------------------------------------------------------------------------------
// Adapting to `pg`
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
 * A `pg` ClientConfig for one target: host (a socket directory for Unix sockets, which pg supports),
 * port, user, database, application_name, connectionTimeoutMillis, keepAlive (libpq's default), and
 * ssl = the first entry of sslFallbackOrder(t). `replication` is NOT set: the caller adds it.
 * The password is the target's; when there is none, it is a function that fails the connection with
 * WalstreamError('CONNECT_FAILED') if the server asks for one (like libpq's "no password supplied"),
 * which also keeps pg from reading PGPASSWORD or .pgpass on its own.
 */
export function toPgClientConfig(t: ConnectionTarget): pg.ClientConfig {
  const password = nonEmpty(t.password);
  return {
    host: t.host,
    port: t.port,
    user: t.user,
    database: t.database ?? t.user,
    password: password ?? (async (): Promise<string> => {
      throw new WalstreamError('CONNECT_FAILED',
        `the server at ${describeTarget(t)} asked for a password, but none was supplied; set PGPASSWORD, add a .pgpass line (database field "replication" or "*"), or give password= in the connection string`);
    }),
    application_name: t.applicationName || undefined,
    connectionTimeoutMillis: t.connectTimeoutSeconds !== undefined ? t.connectTimeoutSeconds * 1000 : 0,
    keepAlive: true,
    ssl: sslFallbackOrder(t)[0]!,
  };
}
