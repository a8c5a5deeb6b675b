/**
 * Resolving connection options into the hosts to try: the ConnectionOptions/ConnectionTarget types,
 * resolveTargets() (libpq's precedence of explicit fields, connection string, PG* environment variables
 * and defaults) and describeTarget().
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { badConninfo, DEFAULT_APPLICATION_NAME, DEFAULT_PORT, DEFAULT_SOCKET_DIR, isUnixSocketHost } from './common.js';
import { parseConnectionString } from './parse.js';
import { lookupPgpass } from './pgpass.js';

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

export const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

// ---------------------------------------------------------------------------------------------
// Description
// ---------------------------------------------------------------------------------------------

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
// Resolution
// ---------------------------------------------------------------------------------------------

export function nonEmpty(value: string | undefined | null): string | undefined {
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

export function fileExists(p: string): boolean {
  try {
    fs.statSync(p);
    return true;
  } catch {
    return false;
  }
}

export function checkChoice(keyword: string, value: string | undefined, allowed: readonly string[]): void {
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

/**
 * resolveTargets for a library option given as a connection string or as ConnectionOptions, with
 * application_name 'walstream' unless the caller, PGAPPNAME or the string says otherwise.
 */
export function targetsFor(connection: ConnectionOptions | string, env: NodeJS.ProcessEnv = process.env, applicationName = 'walstream'): ConnectionTarget[] {
  return resolveTargets(typeof connection === 'string' ? { connectionString: connection } : connection, env, applicationName);
}
