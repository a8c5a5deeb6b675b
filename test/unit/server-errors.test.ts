/**
 * explainServerError chooses its advice by SQLSTATE, so a server with another lc_messages (German
 * here, the texts from PostgreSQL 15's de.po) gets the same advice; isSslRefusal recognises what pg and
 * Node's TLS layer really throw (fake servers on 127.0.0.1 answering the SSLRequest).
 */
import net from 'node:net';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { isSslRefusal } from '../../src/conninfo/tls.js';
import { PgError, WalstreamError } from '../../src/errors.js';
import { explainServerError } from '../../src/server-errors.js';

const ADVICE = {
  role: 'grant it with ALTER ROLE … REPLICATION, or connect as a role that has it',
  hba: 'add a "host replication <user> <address> scram-sha-256" line to pg_hba.conf and reload the server',
  password: 'check the password (PGPASSWORD, ~/.pgpass or the connection string)',
  senders: 'raise max_wal_senders on the server or stop another replication client',
  slotMissing: 'create it with --create-slot (or CREATE_REPLICATION_SLOT), or omit --slot',
  slotActive: 'another client is streaming from this slot: stop it, or use another slot',
  ahead: 'the archive is ahead of this server (a restored or different server?): archive it into a new directory, or remove the newest segments from the archive if they are known bad',
  timeline: 'the archive followed another timeline than this server (failover or PITR): archive this server into a new directory',
  removed: 'the server recycled WAL the archive still needs: the archive has a gap. Use a replication slot (--slot) or a larger wal_keep_size so it cannot happen again, then take a new base backup and restart with --start-at-server-position (the archive keeps a gap before it)',
};

function serverError(code: string, message: string, extra: { detail?: string; routine?: string } = {}): PgError {
  const err = new PgError({ message, code, severity: 'FATAL', detail: extra.detail });
  // The ErrorResponse's R field, as a PgError that carries it would (PgError does not yet).
  if (extra.routine !== undefined) Object.assign(err, { routine: extra.routine });
  return err;
}

function adviceOf(err: PgError): string | undefined {
  const explained = explainServerError(err);
  expect(explained).toBeInstanceOf(PgError);
  const e = explained as PgError;
  expect(e.code).toBe(err.code);
  if (e === err) return undefined;
  expect(e.message.startsWith(`${err.message}: `)).toBe(true);
  return e.message.slice(err.message.length + 2);
}

describe('explainServerError', () => {
  // German texts as PostgreSQL 15 sends them with lc_messages=de_DE (postgres-15.mo).
  const german: Array<[string, string, string]> = [
    ['42501', 'nur Superuser und Replikationsrollen können WAL-Sender starten', ADVICE.role],
    ['28000', 'kein pg_hba.conf-Eintrag für Replikationsverbindung von Host »10.0.0.5«, Benutzer »archiver«, keine Verschlüsselung', ADVICE.hba],
    ['28P01', 'Passwort-Authentifizierung für Benutzer »archiver« fehlgeschlagen', ADVICE.password],
    ['53300', 'Anzahl angeforderter Standby-Verbindungen überschreitet max_wal_senders (aktuell 2)', ADVICE.senders],
    ['53300', 'tut mir leid, schon zu viele Verbindungen', ADVICE.senders],
    ['42704', 'Replikations-Slot »walstream« existiert nicht', ADVICE.slotMissing],
    ['55006', 'Replikations-Slot »walstream« ist aktiv für PID 4242', ADVICE.slotActive],
    ['58P01', 'das angeforderte WAL-Segment 000000010000000000000010 wurde schon entfernt', ADVICE.removed],
  ];
  for (const [code, message, advice] of german) {
    it(`${code} gets its advice in German: ${message}`, () => {
      expect(adviceOf(serverError(code, message))).toBe(advice);
    });
  }

  it('gives the same advice for the English texts (PostgreSQL 15 and 16 wordings)', () => {
    const english: Array<[string, string, string]> = [
      ['42501', 'must be superuser or replication role to start walsender', ADVICE.role],
      ['42501', 'permission denied to start WAL sender', ADVICE.role],
      ['28000', 'no pg_hba.conf entry for replication connection from host "127.0.0.1", user "nobody", no encryption', ADVICE.hba],
      ['28P01', 'password authentication failed for user "pwuser"', ADVICE.password],
      ['53300', 'number of requested standby connections exceeds max_wal_senders (currently 2)', ADVICE.senders],
      ['42704', 'replication slot "nope" does not exist', ADVICE.slotMissing],
      ['55006', 'replication slot "s1" is active for PID 17014', ADVICE.slotActive],
      ['58P01', 'requested WAL segment 000000010000000000000010 has already been removed', ADVICE.removed],
      ['XX000', 'requested WAL segment 000000010000000000000010 has already been removed', ADVICE.removed],
      ['XX000', 'requested starting point 10/0 is ahead of the WAL flush position of this server 0/1300548', ADVICE.ahead],
      ['XX000', "requested starting point 0/5000000 on timeline 1 is not in this server's history", ADVICE.timeline],
      ['XX000', "requested timeline 5 is not in this server's history", ADVICE.timeline],
    ];
    for (const [code, message, advice] of english) expect(adviceOf(serverError(code, message)), message).toBe(advice);
  });

  it('needs no message at all for a SQLSTATE with one case', () => {
    for (const [code, advice] of [['42501', ADVICE.role], ['28000', ADVICE.hba], ['28P01', ADVICE.password], ['53300', ADVICE.senders],
      ['42704', ADVICE.slotMissing], ['55006', ADVICE.slotActive], ['58P01', ADVICE.removed]] as const) {
      expect(adviceOf(serverError(code, '')), code).toBe(advice);
    }
  });

  it('tells the XX000 refusals apart by the routine that raised them, in any language', () => {
    expect(adviceOf(serverError('XX000', 'angeforderter Startpunkt 10/0 ist vor der WAL-Flush-Position dieses Servers 0/1300548',
      { routine: 'StartReplication' }))).toBe(ADVICE.ahead);
    expect(adviceOf(serverError('XX000', 'angeforderter Startpunkt 0/5000000 auf Zeitleiste 1 ist nicht in der History dieses Servers',
      { routine: 'StartReplication', detail: 'Die History dieses Servers zweigte von Zeitleiste 1 bei 0/4000000 ab.' }))).toBe(ADVICE.timeline);
    expect(adviceOf(serverError('XX000', 'angeforderte Zeitleiste 5 ist nicht in der History dieses Servers', { routine: 'tliSwitchPoint' })))
      .toBe(ADVICE.timeline);
    expect(adviceOf(serverError('XX000', 'das angeforderte WAL-Segment 000000010000000000000010 wurde schon entfernt', { routine: 'CheckXLogRemoved' })))
      .toBe(ADVICE.removed);
    // Without a routine a translated XX000 cannot be told from any other internal error.
    expect(adviceOf(serverError('XX000', 'angeforderte Zeitleiste 5 ist nicht in der History dieses Servers'))).toBeUndefined();
    expect(adviceOf(serverError('XX000', 'cache lookup failed for relation 1234', { routine: 'RelationBuildDesc' }))).toBeUndefined();
  });

  it('does not give the advice to other errors that share its SQLSTATE', () => {
    const others: Array<[string, string, string?]> = [
      ['58P01', 'konnte Datei »pg_wal/00000005.history« nicht öffnen: Datei oder Verzeichnis nicht gefunden'],
      ['58P01', 'could not open file "pg_wal/00000005.history": No such file or directory', 'SendTimeLineHistory'],
      ['42704', 'unrecognized configuration parameter "nonesuch"'],
      ['42704', 'unbekannter Konfigurationsparameter »nonesuch«', 'find_option'],
      ['42501', 'could not open file "pg_wal/000000010000000000000003": Permission denied'],
      ['28000', 'role "nobody" does not exist'],
      ['28000', 'Rolle »nobody« existiert nicht', 'InitializeSessionUserId'],
      ['28000', 'Peer authentication failed for user "archiver"'],
      ['53300', 'too many connections for role "archiver"'],
      ['53300', 'zu viele Verbindungen von Rolle »archiver«', 'InitializeSessionUserId'],
    ];
    for (const [code, message, routine] of others) expect(adviceOf(serverError(code, message, { routine })), message).toBeUndefined();
  });

  it('passes unknown codes and non-server errors through unchanged', () => {
    const unknown = serverError('42P01', 'Relation »t« existiert nicht');
    expect(explainServerError(unknown)).toBe(unknown);
    const oldRegexWouldMatch = serverError('0A000', 'replication slot "x" does not exist');
    expect(explainServerError(oldRegexWouldMatch)).toBe(oldRegexWouldMatch);
    const local = new WalstreamError('TIMEOUT', 'no answer');
    expect(explainServerError(local)).toBe(local);
    expect(explainServerError('text')).toBe('text');
  });

  it('keeps the fields and adds the advice once', () => {
    const err = new PgError({ message: 'Replikations-Slot »s« existiert nicht', code: '42704', severity: 'ERROR', detail: 'd', hint: 'h' });
    const once = explainServerError(err) as PgError;
    expect(once).toMatchObject({ code: '42704', severity: 'ERROR', detail: 'd', hint: 'h' });
    expect(explainServerError(once)).toBe(once);
  });
});

describe('isSslRefusal', () => {
  const servers: net.Server[] = [];
  afterAll(() => { for (const s of servers) s.close(); });

  /** A server that reads the SSLRequest and does `answer` with the socket. */
  async function fakeServer(answer: (socket: net.Socket) => void): Promise<number> {
    const server = net.createServer((socket) => {
      socket.on('error', () => {});
      socket.once('data', () => answer(socket));
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as net.AddressInfo).port;
  }

  /** What pg's connect() rejects with against that server, asking for TLS. */
  async function connectError(port: number): Promise<unknown> {
    const client = new pg.Client({ host: '127.0.0.1', port, user: 'u', database: 'd', ssl: { rejectUnauthorized: false }, connectionTimeoutMillis: 5000 });
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (err) {
      return err;
    }
    await client.end();
    throw new Error('connected');
  }

  it("recognises pg's refusal when the server answers 'N' (or anything but 'S') to the SSLRequest", async () => {
    const refused = await connectError(await fakeServer((s) => s.write('N')));
    expect((refused as Error).message).toBe('The server does not support SSL connections');
    expect(isSslRefusal(refused)).toBe(true);
    const odd = await connectError(await fakeServer((s) => s.write('E')));
    expect((odd as Error).message).toBe('There was an error establishing an SSL connection');
    expect(isSslRefusal(odd)).toBe(true);
  });

  it("recognises a TLS handshake failure: the server says 'S' and then does not speak TLS, or hangs up", async () => {
    const garbage = await connectError(await fakeServer((s) => {
      s.write('S');
      s.once('data', () => s.write('HTTP/1.1 400 Bad Request\r\n\r\n'));
    }));
    expect(isSslRefusal(garbage)).toBe(true);
    const hungUp = await connectError(await fakeServer((s) => {
      s.write('S');
      s.once('data', () => s.end());
    }));
    expect(hungUp).toMatchObject({ code: 'ECONNRESET', message: 'Client network socket disconnected before secure TLS connection was established' });
    expect(isSslRefusal(hungUp)).toBe(true);
  });

  it('does not take other start-up failures for a refusal', async () => {
    const closed = await connectError(await fakeServer((s) => s.end()));
    expect((closed as Error).message).toBe('Connection terminated unexpectedly');
    expect(isSslRefusal(closed)).toBe(false);
    const reset = await connectError(await fakeServer((s) => s.resetAndDestroy()));
    expect(reset).toMatchObject({ code: 'ECONNRESET' });
    expect(isSslRefusal(reset)).toBe(false);
  });

  it('recognises OpenSSL errors by their code or library, whatever the message', () => {
    expect(isSslRefusal(Object.assign(new Error('error:0A0000B5:SSL routines::no ciphers available'), { code: 'ERR_SSL_NO_CIPHERS_AVAILABLE', library: 'SSL routines' }))).toBe(true);
    expect(isSslRefusal(Object.assign(new Error('x'), { code: 'ERR_SSL_WRONG_VERSION_NUMBER' }))).toBe(true);
    expect(isSslRefusal(Object.assign(new Error('write EPROTO …:SSL routines:ssl3_read_bytes:tlsv1 alert protocol version'), { code: 'EPROTO' }))).toBe(true);
  });

  it("recognises pg_hba.conf's refusal (28000) by SQLSTATE, in any language", () => {
    const databaseError = Object.assign(new Error('kein pg_hba.conf-Eintrag für Replikationsverbindung von Host »127.0.0.1«, Benutzer »u«, SSL-Verschlüsselung'),
      { code: '28000', severity: 'FATAL', routine: 'ClientAuthentication' });
    expect(isSslRefusal(databaseError)).toBe(true);
    expect(isSslRefusal(new PgError({ message: 'no pg_hba.conf entry for replication connection from host "127.0.0.1", user "u", no encryption', code: '28000' }))).toBe(true);
  });

  it('is false for certificate checks, server errors, local errors and non-errors', () => {
    expect(isSslRefusal(Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }))).toBe(false);
    expect(isSslRefusal(Object.assign(new Error("Hostname/IP does not match certificate's altnames"), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }))).toBe(false);
    // A server message that merely mentions SSL is not a refusal (the old /SSL|ssl/ test took it for one).
    expect(isSslRefusal(Object.assign(new Error('password authentication failed for user "u" (SSL on)'), { code: '28P01', severity: 'FATAL' }))).toBe(false);
    expect(isSslRefusal(new PgError({ message: 'sorry, too many clients already', code: '53300', severity: 'FATAL' }))).toBe(false);
    expect(isSslRefusal(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toBe(false);
    expect(isSslRefusal(new Error('timeout expired'))).toBe(false);
    expect(isSslRefusal(new WalstreamError('NO_PASSWORD', 'the server asked for an SSL password'))).toBe(false);
    expect(isSslRefusal('The server does not support SSL connections')).toBe(false);
    expect(isSslRefusal(null)).toBe(false);
    expect(isSslRefusal(undefined)).toBe(false);
  });
});
