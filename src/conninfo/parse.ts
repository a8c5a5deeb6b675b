/**
 * Parsing libpq connection strings (keyword/value and postgres:// URIs) like PQconninfoParse(), the
 * keyword tables, and redaction of passwords in connection strings.
 */
import type { WalstreamError } from '../errors.js';
import { badConninfo } from './common.js';

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

/** C isspace() in the "C" locale, which is what conninfo_parse() uses. */
function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';
}

function uriPrefixLength(text: string): number {
  for (const prefix of URI_PREFIXES) if (text.startsWith(prefix)) return prefix.length;
  return 0;
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

/** One `keyword = value` pair as conninfo_parse() scans it; positions index the original text. */
interface KeywordPair {
  nameStart: number;
  name: string;
  /** False when no "=" follows the keyword (the rest of the text does not parse). */
  hasEquals: boolean;
  valueStart: number;
  /** Index just past the value (or past the keyword when there is no "="). */
  end: number;
  /** The value with quotes removed and backslash escapes applied. */
  value: string;
  /** False for a quoted value that never closes. */
  terminated: boolean;
}

function skipSpaces(text: string, i: number): number {
  while (i < text.length && isSpace(text[i])) i++;
  return i;
}

/** Scan the pair starting at `i` (not a space): values optionally single-quoted, backslash escapes. */
function scanPair(text: string, i: number): KeywordPair {
  const n = text.length;
  const nameStart = i;
  while (i < n && text[i] !== '=' && !isSpace(text[i])) i++;
  const name = text.slice(nameStart, i);
  i = skipSpaces(text, i);
  if (text[i] !== '=') return { nameStart, name, hasEquals: false, valueStart: i, end: i, value: '', terminated: true };
  const valueStart = skipSpaces(text, i + 1);
  i = valueStart;
  let value = '';
  let terminated = true;
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
    terminated = false;
    while (i < n) {
      if (text[i] === '\\') {
        i++;
        if (i < n) value += text[i++];
        continue;
      }
      if (text[i] === "'") { i++; terminated = true; break; }
      value += text[i++];
    }
  }
  return { nameStart, name, hasEquals: true, valueStart, end: i, value, terminated };
}

/** conninfo_parse(): whitespace-separated keyword = value, values optionally single-quoted, backslash escapes. */
function parseKeywordValue(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let previousWasSecret = false;
  for (let i = skipSpaces(text, 0); i < text.length; ) {
    const pair = scanPair(text, i);
    if (!pair.hasEquals) {
      // After password=foo, a stray word is most likely the rest of an unquoted password: do not echo it.
      throw badConninfo(previousWasSecret
        ? 'missing "=" after the word following the password in the connection string; quote values that contain spaces, like password=\'a b\''
        : `missing "=" after "${pair.name}" in connection string; write keyword=value pairs (quote values containing spaces with single quotes)`);
    }
    if (!pair.terminated) {
      throw badConninfo(`unterminated quoted string in connection string (value of "${pair.name}"); close the value with a single quote, and escape quotes inside it as \\'`);
    }
    const wasSecret = previousWasSecret;
    storeKeyword(out, pair.name, pair.value, (kw) => badConninfo(wasSecret
      ? 'invalid connection option after the password in the connection string; quote values that contain spaces, like password=\'a b\''
      : `invalid connection option "${kw}"; remove it or fix its spelling (see libpq's list of parameter key words)`));
    previousWasSecret = SECRET_KEYWORDS.has(pair.name);
    i = skipSpaces(text, pair.end);
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
// Redaction
// ---------------------------------------------------------------------------------------------

/** Redact secrets in a keyword/value string, keeping everything else byte for byte. */
function redactKeywordValue(text: string): string {
  let result = '';
  let copiedUpTo = 0;
  let previousWasSecret = false;
  for (let i = skipSpaces(text, 0); i < text.length; ) {
    const pair = scanPair(text, i);
    if (!pair.hasEquals) {
      // Unparseable from here on; if it follows a secret it is probably the rest of that secret.
      if (previousWasSecret) return result + text.slice(copiedUpTo, pair.nameStart) + REDACTED;
      break;
    }
    // After a secret, an unknown keyword is most likely the rest of an unquoted secret value.
    if (previousWasSecret && !LIBPQ_KEYWORDS.has(pair.name) && pair.name !== 'requiressl') {
      return result + text.slice(copiedUpTo, pair.nameStart) + REDACTED;
    }
    const secret = SECRET_KEYWORDS.has(pair.name);
    if (secret) {
      result += text.slice(copiedUpTo, pair.valueStart) + REDACTED;
      copiedUpTo = pair.end;
      if (!pair.terminated) return result;
    }
    previousWasSecret = secret;
    i = skipSpaces(text, pair.end);
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
