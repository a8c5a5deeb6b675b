/**
 * The password file (~/.pgpass, PGPASSFILE, passfile=): lookupPgpass(), matching lines the way libpq's
 * passwordFromFile() does, and its file-permission rules.
 */
import fs from 'node:fs';
import { DEFAULT_PORT, DEFAULT_SOCKET_DIR, isUnixSocketHost } from './common.js';

// ---------------------------------------------------------------------------------------------
// Password file
// ---------------------------------------------------------------------------------------------

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
