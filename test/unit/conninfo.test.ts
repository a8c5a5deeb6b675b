import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  type ConnectionTarget, DEFAULT_APPLICATION_NAME, DEFAULT_SOCKET_DIR, describeTarget, lookupPgpass,
  noPasswordError, parseConnectionString, redactConnectionString, resolveTargets, sslFallbackOrder,
} from '../../src/conninfo.js';
import { WalstreamError } from '../../src/errors.js';

let dir: string;
/** An environment with nothing from the real one: HOME points at an empty temporary directory. */
let env: NodeJS.ProcessEnv;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'conninfo-'));
  env = { HOME: dir };
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
  vi.restoreAllMocks();
});

function writePrivate(name: string, content: string, mode = 0o600): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  chmodSync(file, mode);
  return file;
}

function conninfoError(fn: () => unknown): WalstreamError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WalstreamError);
    expect((err as WalstreamError).code).toBe('BAD_CONNINFO');
    expect((err as WalstreamError).message).not.toContain('\n');
    return err as WalstreamError;
  }
  throw new Error('expected a BAD_CONNINFO error');
}

function defaultHost(): string {
  try {
    return statSync(DEFAULT_SOCKET_DIR).isDirectory() ? DEFAULT_SOCKET_DIR : 'localhost';
  } catch {
    return 'localhost';
  }
}

describe('parseConnectionString: keyword/value', () => {
  it('parses plain pairs, whitespace around "=", and repeated keywords (last wins)', () => {
    expect(parseConnectionString('host=a port=5432 user=x')).toEqual({ host: 'a', port: '5432', user: 'x' });
    expect(parseConnectionString('  host =  a\tport= 5433 \n host=b ')).toEqual({ host: 'b', port: '5433' });
    expect(parseConnectionString('')).toEqual({});
    expect(parseConnectionString('   ')).toEqual({});
  });

  it('handles single quotes and backslash escapes', () => {
    expect(parseConnectionString("password='a b c' user=x")).toEqual({ password: 'a b c', user: 'x' });
    expect(parseConnectionString("password='it\\'s' dbname=d")).toEqual({ password: "it's", dbname: 'd' });
    expect(parseConnectionString("password='back\\\\slash'")).toEqual({ password: 'back\\slash' });
    expect(parseConnectionString('password=a\\ b')).toEqual({ password: 'a b' });
    expect(parseConnectionString("application_name=o'k")).toEqual({ application_name: "o'k" });
    expect(parseConnectionString("host=''")).toEqual({ host: '' });
    expect(parseConnectionString('host=')).toEqual({ host: '' });
  });

  it('takes the next word as the value after "=" (libpq quirk) ', () => {
    expect(parseConnectionString('host= port=5432')).toEqual({ host: 'port=5432' });
  });

  it('maps requiressl to sslmode', () => {
    expect(parseConnectionString('requiressl=1')).toEqual({ sslmode: 'require' });
    expect(parseConnectionString('requiressl=0')).toEqual({ sslmode: 'prefer' });
  });

  it('rejects unknown keywords like libpq', () => {
    const err = conninfoError(() => parseConnectionString('host=a bogus=1'));
    expect(err.message).toContain('invalid connection option "bogus"');
    // PostgreSQL 16+ keywords are not PostgreSQL 15 keywords.
    expect(conninfoError(() => parseConnectionString('require_auth=password')).message).toContain('invalid connection option "require_auth"');
  });

  it('rejects a missing "=" and an unterminated quote', () => {
    expect(conninfoError(() => parseConnectionString('mydb')).message).toContain('missing "=" after "mydb"');
    expect(conninfoError(() => parseConnectionString("host='abc")).message).toContain('unterminated quoted string');
  });

  it('does not echo what follows an unquoted password in errors', () => {
    const a = conninfoError(() => parseConnectionString('password=sec ret user=x'));
    expect(a.message).not.toContain('ret');
    const b = conninfoError(() => parseConnectionString('password=sec ret=x'));
    expect(b.message).not.toContain('ret');
    expect(b.message).not.toContain('sec');
  });

  it('accepts every PostgreSQL 15 keyword', () => {
    const all = 'service=s user=u password=p passfile=f channel_binding=prefer connect_timeout=3 dbname=d host=h hostaddr=127.0.0.1 '
      + 'port=1 client_encoding=UTF8 options=o application_name=a fallback_application_name=f keepalives=1 keepalives_idle=1 '
      + 'keepalives_interval=1 keepalives_count=1 tcp_user_timeout=1 sslmode=require sslcompression=0 sslcert=c sslkey=k '
      + 'sslpassword=x sslrootcert=r sslcrl=c sslcrldir=d sslsni=1 requirepeer=p ssl_min_protocol_version=TLSv1.2 '
      + 'ssl_max_protocol_version=TLSv1.3 gssencmode=disable krbsrvname=k gsslib=gssapi replication=true target_session_attrs=any';
    expect(Object.keys(parseConnectionString(all))).toHaveLength(36);
  });
});

describe('parseConnectionString: URI', () => {
  it('parses user, password, host, port, dbname and query parameters', () => {
    expect(parseConnectionString('postgresql://user:pw@h1:5432/db?sslmode=require&application_name=x')).toEqual({
      user: 'user', password: 'pw', host: 'h1', port: '5432', dbname: 'db', sslmode: 'require', application_name: 'x',
    });
    expect(parseConnectionString('postgres://h')).toEqual({ host: 'h' });
    expect(parseConnectionString('postgresql://')).toEqual({});
    expect(parseConnectionString('postgresql:///db')).toEqual({ dbname: 'db' });
    expect(parseConnectionString('postgresql://u@')).toEqual({ user: 'u' });
    expect(parseConnectionString('postgresql://h?port=6000')).toEqual({ host: 'h', port: '6000' });
    expect(parseConnectionString('postgresql://h/')).toEqual({ host: 'h' });
  });

  it('parses multiple hosts with and without ports', () => {
    expect(parseConnectionString('postgresql://h1:5432,h2:5433/db')).toEqual({ host: 'h1,h2', port: '5432,5433', dbname: 'db' });
    expect(parseConnectionString('postgresql://h1:5432,h2/db')).toEqual({ host: 'h1,h2', port: '5432,', dbname: 'db' });
    expect(parseConnectionString('postgresql://h1,h2')).toEqual({ host: 'h1,h2', port: ',' });
  });

  it('parses IPv6 addresses in brackets', () => {
    expect(parseConnectionString('postgresql://[::1]:5433/db')).toEqual({ host: '::1', port: '5433', dbname: 'db' });
    expect(parseConnectionString('postgresql://[2001:db8::1],[::1]:6000')).toEqual({ host: '2001:db8::1,::1', port: ',6000' });
    expect(conninfoError(() => parseConnectionString('postgresql://[::1')).message).toContain('matching "]"');
    expect(conninfoError(() => parseConnectionString('postgresql://[]')).message).toContain('may not be empty');
    expect(conninfoError(() => parseConnectionString('postgresql://[::1]x')).message).toContain('unexpected character "x"');
  });

  it('percent-decodes every part; %2F hosts are socket directories; + is not a space', () => {
    expect(parseConnectionString('postgresql://us%40er:p%3Aw%2F%25@%2Fvar%2Frun%2Fpostgresql/my%20db?application_name=a+b%26c')).toEqual({
      user: 'us@er', password: 'p:w/%', host: '/var/run/postgresql', dbname: 'my db', application_name: 'a+b&c',
    });
    expect(parseConnectionString('postgresql://h?host=%2Ftmp')).toEqual({ host: '/tmp' });
    expect(parseConnectionString('postgresql://h/db?options=%C3%A9')).toEqual({ host: 'h', dbname: 'db', options: 'é' });
  });

  it('rejects bad percent-encoding, without echoing a password', () => {
    expect(conninfoError(() => parseConnectionString('postgresql://h/d%zz')).message).toContain('invalid percent-encoded token');
    expect(conninfoError(() => parseConnectionString('postgresql://h/d%00')).message).toContain('%00');
    const err = conninfoError(() => parseConnectionString('postgresql://u:secret%zz@h/db'));
    expect(err.message).not.toContain('secret');
  });

  it('maps ssl=true to sslmode=require and rejects unknown or malformed query parameters', () => {
    expect(parseConnectionString('postgresql://h?ssl=true')).toEqual({ host: 'h', sslmode: 'require' });
    expect(conninfoError(() => parseConnectionString('postgresql://h?ssl=false')).message).toContain('invalid URI query parameter: "ssl"');
    expect(conninfoError(() => parseConnectionString('postgresql://h?nope=1')).message).toContain('invalid URI query parameter: "nope"');
    expect(conninfoError(() => parseConnectionString('postgresql://h?sslmode')).message).toContain('missing key/value separator');
    expect(conninfoError(() => parseConnectionString('postgresql://h?a=b=c')).message).toContain('extra key/value separator');
  });

  it('only lower-case schemes are URIs (libpq compares case-sensitively)', () => {
    expect(conninfoError(() => parseConnectionString('POSTGRESQL://h')).message).toContain('missing "="');
  });
});

describe('redactConnectionString', () => {
  it('redacts keyword/value passwords, quoted or not', () => {
    expect(redactConnectionString('host=a password=secret user=x')).toBe('host=a password=******** user=x');
    expect(redactConnectionString("host=a password = 'se cr\\'et' user=x")).toBe('host=a password = ******** user=x');
    expect(redactConnectionString('password=a\\ b')).toBe('password=********');
    expect(redactConnectionString("sslpassword='k' host=h")).toBe('sslpassword=******** host=h');
    expect(redactConnectionString("application_name='password=x' host=h")).toBe("application_name='password=x' host=h");
  });

  it('redacts what probably belongs to an unquoted or unterminated password', () => {
    expect(redactConnectionString('password=sec ret')).not.toContain('ret');
    expect(redactConnectionString('password=sec ret=x host=h')).not.toMatch(/ret|sec/);
    expect(redactConnectionString("host=h password='sec ret")).toBe('host=h password=********');
  });

  it('redacts URI passwords in the userinfo and the query', () => {
    expect(redactConnectionString('postgresql://u:secret@h:5432/db')).toBe('postgresql://u:********@h:5432/db');
    expect(redactConnectionString('postgres://u:p?x@h/db?password=s3&sslmode=require')).toBe('postgres://u:********@h/db?password=********&sslmode=require');
    expect(redactConnectionString('postgresql://h/db?pass%77ord=s3')).toBe('postgresql://h/db?pass%77ord=********');
    expect(redactConnectionString('postgresql://u@h/db')).toBe('postgresql://u@h/db');
    expect(redactConnectionString('postgresql://h/db')).toBe('postgresql://h/db');
  });

  it('leaves strings without secrets alone', () => {
    expect(redactConnectionString('mydb')).toBe('mydb');
    expect(redactConnectionString('host=a port=1')).toBe('host=a port=1');
  });
});

describe('resolveTargets: defaults and precedence', () => {
  it('uses libpq defaults when nothing is given', () => {
    const [t, ...rest] = resolveTargets({}, env);
    expect(rest).toHaveLength(0);
    expect(t).toEqual({
      host: defaultHost(), port: 5432, user: userInfo().username, database: userInfo().username,
      applicationName: DEFAULT_APPLICATION_NAME, sslmode: 'prefer',
    });
    expect(t!.password).toBeUndefined();
    expect(resolveTargets({}, env, 'walstream')[0]!.applicationName).toBe('walstream');
  });

  it('reads the environment', () => {
    const [t] = resolveTargets({}, {
      ...env, PGHOST: 'envhost', PGPORT: '6000', PGUSER: 'envuser', PGPASSWORD: 'envpw', PGDATABASE: 'envdb',
      PGAPPNAME: 'envapp', PGSSLMODE: 'require', PGSSLROOTCERT: '/r.crt', PGSSLCERT: '/c.crt', PGSSLKEY: '/k.key', PGCONNECT_TIMEOUT: '10',
    }, 'walstream');
    expect(t).toEqual({
      host: 'envhost', port: 6000, user: 'envuser', database: 'envdb', applicationName: 'envapp', sslmode: 'require',
      sslrootcert: '/r.crt', sslcert: '/c.crt', sslkey: '/k.key', connectTimeoutSeconds: 10,
    });
    expect(t!.password).toBe('envpw');
  });

  it('lets the connection string override the environment, and explicit fields override both', () => {
    const fullEnv = { ...env, PGHOST: 'envhost', PGPORT: '6000', PGUSER: 'envuser', PGPASSWORD: 'envpw', PGAPPNAME: 'envapp', PGSSLMODE: 'disable' };
    const cs = "host=cshost port=7000 user=csuser password=cspw dbname=csdb application_name=csapp sslmode=require connect_timeout=5";
    const [a] = resolveTargets({ connectionString: cs }, fullEnv);
    expect(a).toMatchObject({ host: 'cshost', port: 7000, user: 'csuser', database: 'csdb', applicationName: 'csapp', sslmode: 'require', connectTimeoutSeconds: 5 });
    expect(a!.password).toBe('cspw');
    const [b] = resolveTargets({
      connectionString: cs, host: 'cli', port: 8000, user: 'cliuser', password: 'clipw', database: 'clidb',
      applicationName: 'cliapp', sslmode: 'verify-full', sslrootcert: writePrivate('ca.crt', 'ca'), connectTimeoutSeconds: 9,
    }, fullEnv);
    expect(b).toMatchObject({ host: 'cli', port: 8000, user: 'cliuser', database: 'clidb', applicationName: 'cliapp', sslmode: 'verify-full', connectTimeoutSeconds: 9 });
    expect(b!.password).toBe('clipw');
  });

  it('treats empty values as not given (pg_receivewal drops them)', () => {
    const [t] = resolveTargets({ connectionString: "host='' user=''", host: '', port: '' }, { ...env, PGHOST: 'envhost', PGUSER: 'envuser' });
    expect(t).toMatchObject({ host: 'envhost', port: 5432, user: 'envuser' });
    expect(resolveTargets({}, { ...env, PGPASSWORD: '' })[0]!.password).toBeUndefined();
  });

  it('takes hosts and ports from a URI', () => {
    const targets = resolveTargets({ connectionString: 'postgresql://u:pw@h1:5432,[::1]:5433/db?sslmode=disable' }, env);
    expect(targets.map((t) => [t.host, t.port, t.user, t.database, t.sslmode, t.password])).toEqual([
      ['h1', 5432, 'u', 'db', 'disable', 'pw'],
      ['::1', 5433, 'u', 'db', 'disable', 'pw'],
    ]);
    const sockets = resolveTargets({ connectionString: 'postgresql://%2Ftmp%2Fsock/db' }, env);
    expect(sockets[0]!.host).toBe('/tmp/sock');
  });

  it('application_name: explicit > PGAPPNAME > defaultApplicationName > fallback_application_name', () => {
    expect(resolveTargets({ connectionString: 'fallback_application_name=fb' }, env)[0]!.applicationName).toBe('fb');
    expect(resolveTargets({ connectionString: 'fallback_application_name=fb' }, env, 'walstream')[0]!.applicationName).toBe('walstream');
    expect(resolveTargets({ connectionString: 'fallback_application_name=fb' }, { ...env, PGAPPNAME: 'e' }, 'walstream')[0]!.applicationName).toBe('e');
  });

  it('sslmode: PGREQUIRESSL=1 means require unless PGSSLMODE is set; invalid values are rejected', () => {
    expect(resolveTargets({}, { ...env, PGREQUIRESSL: '1' })[0]!.sslmode).toBe('require');
    expect(resolveTargets({}, { ...env, PGREQUIRESSL: '1', PGSSLMODE: 'allow' })[0]!.sslmode).toBe('allow');
    expect(conninfoError(() => resolveTargets({ connectionString: 'sslmode=maybe' }, env)).message).toContain('invalid sslmode value: "maybe"');
  });

  it('connect_timeout: 0 or negative means none, 1 becomes 2, garbage is rejected', () => {
    expect(resolveTargets({ connectTimeoutSeconds: 0 }, env)[0]!.connectTimeoutSeconds).toBeUndefined();
    expect(resolveTargets({ connectionString: 'connect_timeout=-3' }, env)[0]!.connectTimeoutSeconds).toBeUndefined();
    expect(resolveTargets({ connectTimeoutSeconds: 1 }, env)[0]!.connectTimeoutSeconds).toBe(2);
    expect(resolveTargets({ connectionString: "connect_timeout=' 7 '" }, env)[0]!.connectTimeoutSeconds).toBe(7);
    expect(conninfoError(() => resolveTargets({ connectionString: 'connect_timeout=5s' }, env)).message)
      .toContain('invalid integer value "5s" for connection option "connect_timeout"');
  });

  it('uses hostaddr as the host when no host is given, and rejects both together', () => {
    expect(resolveTargets({ connectionString: 'hostaddr=10.0.0.1,::1 port=1,2' }, env).map((t) => t.host)).toEqual(['10.0.0.1', '::1']);
    expect(conninfoError(() => resolveTargets({ connectionString: 'hostaddr=10.0.0.1', host: 'h' }, env)).message).toContain('hostaddr');
    expect(conninfoError(() => resolveTargets({ connectionString: 'hostaddr=db.example' }, env)).message).toContain('could not parse network address');
  });

  it('rejects libpq options this client cannot honor', () => {
    expect(conninfoError(() => resolveTargets({ connectionString: 'service=prod' }, env)).message).toContain('service');
    expect(conninfoError(() => resolveTargets({}, { ...env, PGSERVICE: 'prod' })).message).toContain('PGSERVICE');
    expect(conninfoError(() => resolveTargets({ connectionString: 'target_session_attrs=read-write' }, env)).message).toContain('target_session_attrs');
    expect(conninfoError(() => resolveTargets({ connectionString: 'channel_binding=require' }, env)).message).toContain('channel_binding');
    expect(conninfoError(() => resolveTargets({ connectionString: 'gssencmode=require' }, env)).message).toContain('gssencmode');
    expect(conninfoError(() => resolveTargets({ connectionString: "options='-c x=y'" }, env)).message).toContain('"options"');
    const secret = conninfoError(() => resolveTargets({ connectionString: 'sslpassword=topsecret' }, env));
    expect(secret.message).not.toContain('topsecret');
    // Harmless ones are accepted.
    expect(resolveTargets({ connectionString: 'target_session_attrs=any keepalives=1 replication=true gssencmode=prefer channel_binding=prefer' }, env)).toHaveLength(1);
  });
});

describe('resolveTargets: multiple hosts', () => {
  it('applies a single port to every host', () => {
    expect(resolveTargets({ host: 'a,b,c', port: 6000 }, env).map((t) => `${t.host}:${t.port}`)).toEqual(['a:6000', 'b:6000', 'c:6000']);
  });

  it('pairs ports with hosts; empty entries take defaults', () => {
    const targets = resolveTargets({ connectionString: 'host=a,,/tmp port=1,,3' }, env);
    expect(targets.map((t) => `${t.host}:${t.port}`)).toEqual(['a:1', `${defaultHost()}:5432`, '/tmp:3']);
  });

  it('rejects a port list that does not match the host list', () => {
    const err = conninfoError(() => resolveTargets({ host: 'a,b,c', port: '1,2' }, env));
    expect(err.message).toContain('could not match 2 port numbers to 3 hosts');
    // Explicit -h replaces the connection string's hosts but not its ports, as in libpq.
    expect(conninfoError(() => resolveTargets({ connectionString: 'host=a,b port=1,2', host: 'c' }, env)).message)
      .toContain('could not match 2 port numbers to 1 hosts');
  });

  it('rejects bad ports', () => {
    expect(conninfoError(() => resolveTargets({ port: '0' }, env)).message).toContain('invalid port number: "0"');
    expect(conninfoError(() => resolveTargets({ port: 70000 }, env)).message).toContain('invalid port number');
    expect(conninfoError(() => resolveTargets({ port: 'abc' }, env)).message).toContain('invalid integer value "abc" for connection option "port"');
  });
});

describe('password file', () => {
  it('matches host, port, database and user literally, first match wins', () => {
    const file = writePrivate('pgpass', [
      'other:5432:replication:u:no',
      'db1:5432:replication:u:first',
      'db1:5432:replication:u:second',
    ].join('\n'));
    expect(lookupPgpass(file, 'db1', 5432, 'replication', 'u')).toBe('first');
    expect(lookupPgpass(file, 'db1', 5433, 'replication', 'u')).toBeUndefined();
    expect(lookupPgpass(file, 'db1', 5432, 'postgres', 'u')).toBeUndefined();
    expect(lookupPgpass(file, 'db1', 5432, 'replication', 'v')).toBeUndefined();
    expect(lookupPgpass(file, 'DB1', 5432, 'replication', 'u')).toBeUndefined();
  });

  it('supports * wildcards for whole fields only', () => {
    const file = writePrivate('pgpass', 'db*:*:*:u:partial\n*:*:*:u:any\n');
    expect(lookupPgpass(file, 'db1', 1, 'x', 'u')).toBe('any');
    expect(lookupPgpass(file, 'db*', 1, 'x', 'u')).toBe('partial');
  });

  it('handles escaped colons and backslashes in fields and in the password', () => {
    const file = writePrivate('pgpass', 'fe80\\:\\:1:5432:*:dom\\\\user:pa\\:ss\\\\word:trailing\n');
    expect(lookupPgpass(file, 'fe80::1', 5432, 'replication', 'dom\\user')).toBe('pa:ss\\word');
  });

  it('skips comments, blank lines and CRLF line ends', () => {
    const file = writePrivate('pgpass', '# *:*:*:*:commented\r\n\r\n*:*:*:u:crlf\r\n');
    expect(lookupPgpass(file, 'h', 5432, 'd', 'u')).toBe('crlf');
    expect(lookupPgpass(file, 'h', 5432, 'd', 'x')).toBeUndefined();
  });

  it('handles UTF-8 byte for byte', () => {
    const file = writePrivate('pgpass', '*:*:*:jürgen:pässwörd\n');
    expect(lookupPgpass(file, 'h', 5432, 'd', 'jürgen')).toBe('pässwörd');
  });

  it('looks up the default socket directory and an empty host as localhost, other directories literally', () => {
    const file = writePrivate('pgpass', 'localhost:5432:*:u:local\n/tmp:5432:*:u:tmpdir\n');
    expect(lookupPgpass(file, DEFAULT_SOCKET_DIR, 5432, 'd', 'u')).toBe('local');
    expect(lookupPgpass(file, '', 5432, 'd', 'u')).toBe('local');
    expect(lookupPgpass(file, '/tmp', 5432, 'd', 'u')).toBe('tmpdir');
    expect(lookupPgpass(file, `${DEFAULT_SOCKET_DIR}/`, 5432, 'd', 'u')).toBeUndefined();
  });

  it('returns undefined for a missing file or an empty database or user', () => {
    const file = writePrivate('pgpass', '*:*:*:*:pw\n');
    expect(lookupPgpass(join(dir, 'nope'), 'h', 5432, 'd', 'u')).toBeUndefined();
    expect(lookupPgpass(file, 'h', 5432, '', 'u')).toBeUndefined();
    expect(lookupPgpass(file, 'h', 5432, 'd', '')).toBeUndefined();
  });

  it('ignores a file with group/other permissions or that is not a plain file, warning without the password', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const file = writePrivate('pgpass', '*:*:*:*:topsecret\n', 0o644);
    expect(lookupPgpass(file, 'h', 5432, 'd', 'u')).toBeUndefined();
    chmodSync(file, 0o640);
    expect(lookupPgpass(file, 'h', 5432, 'd', 'u')).toBeUndefined();
    chmodSync(file, 0o400);
    expect(lookupPgpass(file, 'h', 5432, 'd', 'u')).toBe('topsecret');
    const sub = join(dir, 'adir');
    mkdirSync(sub, { mode: 0o700 });
    expect(lookupPgpass(sub, 'h', 5432, 'd', 'u')).toBeUndefined();
    expect(warn).toHaveBeenCalledTimes(3);
    const messages = warn.mock.calls.map((c) => String(c[0]));
    expect(messages[0]).toContain('group or world access');
    expect(messages[2]).toContain('not a plain file');
    for (const m of messages) expect(m).not.toContain('topsecret');
  });

  it('is used by resolveTargets per host, with database "replication", after explicit and PGPASSWORD', () => {
    const file = writePrivate('pgpass', 'a:5432:replication:u:pa\nb:5433:replication:u:pb\nc:5432:postgres:u:wrongdb\n');
    const targets = resolveTargets({ host: 'a,b,c', port: '5432,5433,5432', user: 'u', database: 'postgres', passfile: file }, env);
    expect(targets.map((t) => t.password)).toEqual(['pa', 'pb', undefined]);
    expect(resolveTargets({ host: 'a', user: 'u', passfile: file }, { ...env, PGPASSWORD: 'envpw' })[0]!.password).toBe('envpw');
    expect(resolveTargets({ host: 'a', user: 'u', passfile: file, password: 'explicit' }, env)[0]!.password).toBe('explicit');
  });

  it('resolveTargets finds the file via passfile=, PGPASSFILE and ~/.pgpass, in that order', () => {
    const home = writePrivate('.pgpass', '*:*:*:u:home\n');
    const viaEnv = writePrivate('envpass', '*:*:*:u:env\n');
    const viaKeyword = writePrivate('kwpass', '*:*:*:u:keyword\n');
    expect(home).toBe(join(dir, '.pgpass'));
    expect(resolveTargets({ host: 'h', user: 'u' }, env)[0]!.password).toBe('home');
    expect(resolveTargets({ host: 'h', user: 'u' }, { ...env, PGPASSFILE: viaEnv })[0]!.password).toBe('env');
    expect(resolveTargets({ host: 'h', user: 'u', connectionString: `passfile=${viaKeyword}` }, { ...env, PGPASSFILE: viaEnv })[0]!.password).toBe('keyword');
  });

  it('an empty password from the file counts as none', () => {
    const file = writePrivate('pgpass', '*:*:*:u:\n*:*:*:u:later\n');
    expect(lookupPgpass(file, 'h', 5432, 'd', 'u')).toBe('');
    expect(resolveTargets({ host: 'h', user: 'u', passfile: file }, env)[0]!.password).toBeUndefined();
  });
});

describe('describeTarget and password hiding', () => {
  it('describes host, port and user, never the password', () => {
    const [t] = resolveTargets({ host: '127.0.0.1', user: 'rep', password: 'hunter2' }, env);
    expect(describeTarget(t!)).toBe('host=127.0.0.1 port=5432 user=rep');
    expect(describeTarget(t!)).not.toContain('hunter2');
    expect(describeTarget({ ...t!, user: "o'k x" })).toBe("host=127.0.0.1 port=5432 user='o\\'k x'");
  });

  it('keeps the password out of JSON, inspection and spreads', () => {
    const [t] = resolveTargets({ host: 'h', password: 'hunter2' }, env);
    expect(t!.password).toBe('hunter2');
    expect(JSON.stringify(t)).not.toContain('hunter2');
    expect(Object.keys(t!)).not.toContain('password');
  });
});

describe('sslFallbackOrder and noPasswordError', () => {
  function target(extra: Partial<ConnectionTarget> = {}): ConnectionTarget {
    return { host: 'db.example', port: 5432, user: 'u', database: 'd', applicationName: 'walstream', sslmode: 'prefer', ...extra };
  }
  /** The TLS options of the first attempt (false: plain), as the start-up uses them. */
  const firstSsl = (t: ConnectionTarget) => sslFallbackOrder(t)[0];

  it('without a password, the error names the fix and no password', () => {
    const err = noPasswordError(target());
    expect(err).toMatchObject({ code: 'NO_PASSWORD', message: expect.stringContaining('PGPASSWORD') });
    expect(err.message).toContain('host=db.example port=5432 user=u');
  });

  it('orders SSL attempts like libpq', () => {
    expect(sslFallbackOrder('disable')).toEqual([false]);
    expect(sslFallbackOrder('allow')).toEqual([false, { rejectUnauthorized: false }]);
    expect(sslFallbackOrder('prefer')).toEqual([{ rejectUnauthorized: false }, false]);
    expect(sslFallbackOrder('require')).toEqual([{ rejectUnauthorized: false }]);
    expect(sslFallbackOrder('verify-full')).toEqual([{ rejectUnauthorized: true }]);
    expect(sslFallbackOrder(target({ sslmode: 'prefer' }))).toEqual([{ rejectUnauthorized: false }, false]);
    expect(sslFallbackOrder(target({ sslmode: 'disable' }))).toEqual([false]);
    expect(firstSsl(target({ sslmode: 'disable' }))).toBe(false);
    expect(firstSsl(target({ sslmode: 'allow' }))).toBe(false);
  });

  it('never uses SSL over a Unix socket (libpq)', () => {
    const t = target({ host: '/var/run/postgresql', sslmode: 'require' });
    expect(sslFallbackOrder(t)).toEqual([false]);
  });

  it('verify-ca loads the CA and skips the host name check; verify-full checks it', () => {
    const ca = writePrivate('root.crt', 'CA-PEM');
    const vca = firstSsl(target({ sslmode: 'verify-ca', sslrootcert: ca })) as Record<string, unknown>;
    expect(vca.ca).toEqual(Buffer.from('CA-PEM'));
    expect(vca.rejectUnauthorized).toBe(true);
    expect(typeof vca.checkServerIdentity).toBe('function');
    expect((vca.checkServerIdentity as () => unknown)()).toBeUndefined();
    const vfull = firstSsl(target({ sslmode: 'verify-full', sslrootcert: ca })) as Record<string, unknown>;
    expect(vfull).toEqual({ ca: Buffer.from('CA-PEM'), rejectUnauthorized: true, servername: 'db.example' });
    const ip = firstSsl(target({ host: '10.1.2.3', sslmode: 'verify-full', sslrootcert: ca })) as Record<string, unknown>;
    expect(ip).not.toHaveProperty('servername');
  });

  it('require verifies the chain when a root certificate file exists (libpq compatibility)', () => {
    const ca = writePrivate('root.crt', 'CA-PEM');
    const ssl = firstSsl(target({ sslmode: 'require', sslrootcert: ca })) as Record<string, unknown>;
    expect(ssl).toMatchObject({ ca: Buffer.from('CA-PEM'), rejectUnauthorized: true });
    // A named root file that does not exist is ignored below verify-ca, as in libpq.
    expect(firstSsl(target({ sslmode: 'require', sslrootcert: join(dir, 'missing.crt') }))).toEqual({ rejectUnauthorized: false });
  });

  it('verify-* without a root certificate is a configuration error', () => {
    expect(conninfoError(() => firstSsl(target({ sslmode: 'verify-ca' }))).message).toContain('root certificate');
    expect(conninfoError(() => resolveTargets({ host: 'h', sslmode: 'verify-full' }, env)).message).toContain(join(dir, '.postgresql', 'root.crt'));
    expect(conninfoError(() => resolveTargets({ host: 'h', sslmode: 'verify-ca', sslrootcert: join(dir, 'x.crt') }, env)).message).toContain('does not exist');
  });

  it('picks up ~/.postgresql/root.crt, postgresql.crt and postgresql.key like libpq', () => {
    mkdirSync(join(dir, '.postgresql'));
    writePrivate('.postgresql/root.crt', 'CA');
    writePrivate('.postgresql/postgresql.crt', 'CERT');
    writePrivate('.postgresql/postgresql.key', 'KEY');
    const [t] = resolveTargets({ host: 'h', sslmode: 'verify-full' }, env);
    expect(t).toMatchObject({
      sslrootcert: join(dir, '.postgresql', 'root.crt'),
      sslcert: join(dir, '.postgresql', 'postgresql.crt'),
      sslkey: join(dir, '.postgresql', 'postgresql.key'),
    });
    expect(firstSsl(t!)).toEqual({ ca: Buffer.from('CA'), cert: Buffer.from('CERT'), key: Buffer.from('KEY'), rejectUnauthorized: true, servername: 'h' });
  });

  it('client certificates: a missing certificate is skipped; a missing or open key is an error', () => {
    const cert = writePrivate('c.crt', 'CERT');
    expect(firstSsl(target({ sslmode: 'require', sslcert: join(dir, 'none.crt'), sslkey: join(dir, 'none.key') }))).toEqual({ rejectUnauthorized: false });
    expect(conninfoError(() => firstSsl(target({ sslmode: 'require', sslcert: cert, sslkey: join(dir, 'none.key') }))).message)
      .toContain('certificate present, but not private key file');
    const key = writePrivate('c.key', 'KEY', 0o644);
    expect(conninfoError(() => firstSsl(target({ sslmode: 'require', sslcert: cert, sslkey: key }))).message).toContain('group or world access');
    chmodSync(key, 0o600);
    expect(firstSsl(target({ sslmode: 'require', sslcert: cert, sslkey: key }))).toEqual({ rejectUnauthorized: false, cert: Buffer.from('CERT'), key: Buffer.from('KEY') });
  });
});
