/**
 * walstream's own start-up (protocol/startup.ts, protocol/scram.ts), pure: SCRAM-SHA-256 against RFC
 * 7677's test vector and a server side computed here, MD5, cleartext, trust, the server's errors as
 * PgError, and what a hostile or confused server gets back: one-line errors, never the password.
 */
import { createHash, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PgError, WalstreamError } from '../../src/errors.js';
import { clientFinal, clientFirst, saslprep, verifyServerFinal } from '../../src/protocol/scram.js';
import {
  StartupExchange, StartupFramer, encodeSslRequest, encodeStartupMessage, md5PasswordHash, parseAuthentication,
} from '../../src/protocol/startup.js';
import { errorResponse, frame } from './protocol-bytes.js';

const R = 0x52;

function auth(code: number, extra: Uint8Array = Buffer.alloc(0)): Buffer {
  const body = Buffer.alloc(4 + extra.length);
  body.writeInt32BE(code, 0);
  body.set(extra, 4);
  return body;
}

function parameterStatus(name: string, value: string): Buffer {
  return Buffer.from(`${name}\0${value}\0`);
}

function backendKey(pid: number, key: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeInt32BE(pid, 0);
  b.writeInt32BE(key, 4);
  return b;
}

/** Feed the after-authentication messages of a PostgreSQL 15 server; returns the exchange's result. */
function finishStartup(exchange: StartupExchange) {
  expect(exchange.receive(0x53, parameterStatus('server_version', '15.18'))).toBeNull();
  expect(exchange.receive(0x53, parameterStatus('standard_conforming_strings', 'on'))).toBeNull();
  expect(exchange.receive(0x4b, backendKey(4242, 7))).toBeNull();
  expect(exchange.done).toBe(false);
  expect(exchange.receive(0x5a, Buffer.from('I'))).toBeNull();
  expect(exchange.done).toBe(true);
  return exchange.result;
}

const noPassword = () => new WalstreamError('NO_PASSWORD', 'no password supplied');

/** The body of a PasswordMessage / SASL message ('p'). */
function passwordBody(message: Buffer | null): Buffer {
  expect(message).not.toBeNull();
  expect(String.fromCharCode(message![0]!)).toBe('p');
  expect(message!.readInt32BE(1)).toBe(message!.length - 1);
  return message!.subarray(5);
}

describe('SCRAM-SHA-256 (RFC 7677 section 3 test vector)', () => {
  it('computes the client proof and accepts the server signature of the RFC', () => {
    const { message, state } = clientFirst('rOprNGfwEbeRWgbNEkqO', 'user');
    expect(message).toBe('n,,n=user,r=rOprNGfwEbeRWgbNEkqO');
    const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
    expect(clientFinal(state, serverFirst, 'pencil'))
      .toBe('c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=');
    expect(() => verifyServerFinal(state, 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=')).not.toThrow();
  });

  it('refuses a wrong server signature, an e= error, and malformed server messages, without the password', () => {
    const serverFirst = 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096';
    const start = () => clientFirst('rOprNGfwEbeRWgbNEkqO', 'user').state;
    const failures: Array<() => unknown> = [
      () => { const s = start(); clientFinal(s, serverFirst, 'pencil'); verifyServerFinal(s, 'v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='); },
      () => { const s = start(); clientFinal(s, serverFirst, 'pencil'); verifyServerFinal(s, 'e=invalid-proof'); },
      () => { const s = start(); clientFinal(s, serverFirst, 'pencil'); verifyServerFinal(s, 'v=short'); },
      () => clientFinal(start(), 'r=someoneElsesNonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096', 'pencil'),
      () => clientFinal(start(), 'r=rOprNGfwEbeRWgbNEkqO', 'pencil'), // the nonce must be extended
      () => clientFinal(start(), 'r=rOprNGfwEbeRWgbNEkqOxyz,s=not base64!,i=4096', 'pencil'),
      () => clientFinal(start(), 'r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0', 'pencil'),
      () => clientFinal(start(), 'r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,x=1', 'pencil'),
      () => clientFinal(start(), 'm=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096', 'pencil'),
      () => verifyServerFinal(start(), 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='), // before the proof
    ];
    for (const f of failures) {
      let caught: unknown;
      try {
        f();
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(WalstreamError);
      const message = (caught as Error).message;
      expect(message).toMatch(/^SCRAM authentication: /);
      expect(message).not.toContain('\n');
      expect(message).not.toContain('pencil');
    }
  });

  it('SASLprep: ASCII unchanged (controls too, as pg_saslprep), non-ASCII spaces mapped, NFKC, prohibited falls back to raw', () => {
    expect(saslprep('pencil')).toBe('pencil');
    expect(saslprep('a\tb')).toBe('a\tb');
    expect(saslprep('I\u00adX')).toBe('IX'); // RFC 4013's examples
    expect(saslprep('\u00aa')).toBe('a');
    expect(saslprep('\u2168')).toBe('IX');
    expect(saslprep('a\u00a0b')).toBe('a b');
    expect(saslprep('\u00e9\u0007')).toBe('\u00e9\u0007'); // prohibited (a control character): the raw password
  });
});

describe('md5PasswordHash', () => {
  it('is "md5" + md5(md5(password + user) + salt), as libpq computes it', () => {
    // md5('postgres' + 'postgres') is what the server stores for that role: md53175bce1d3201d16594cebf9d7eb3f9d.
    const salt = Buffer.from([0x01, 0x02, 0x03, 0x04]);
    const expected = 'md5' + createHash('md5').update('3175bce1d3201d16594cebf9d7eb3f9d').update(salt).digest('hex');
    expect(md5PasswordHash('postgres', 'postgres', salt)).toBe(expected);
  });
});

describe('start-up messages', () => {
  it('SSLRequest and StartupMessage bytes', () => {
    expect(encodeSslRequest().toString('hex')).toBe('0000000804d2162f');
    const m = encodeStartupMessage({ user: 'u', database: 'd', replication: 'true' });
    expect(m.readInt32BE(0)).toBe(m.length);
    expect(m.readInt32BE(4)).toBe(196608);
    expect(m.subarray(8).toString('latin1')).toBe('user\0u\0database\0d\0replication\0true\0\0');
    expect(() => encodeStartupMessage({ user: 'a\0b' })).toThrow(/zero byte/);
  });

  it('decodes authentication requests and refuses malformed ones in one line', () => {
    expect(parseAuthentication(auth(0))).toEqual({ kind: 'ok' });
    expect(parseAuthentication(auth(3))).toEqual({ kind: 'cleartext' });
    expect(parseAuthentication(auth(5, Buffer.from([1, 2, 3, 4])))).toEqual({ kind: 'md5', salt: Buffer.from([1, 2, 3, 4]) });
    expect(parseAuthentication(auth(10, Buffer.from('SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0')))).toEqual({ kind: 'sasl', mechanisms: ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-256'] });
    expect(parseAuthentication(auth(7))).toMatchObject({ kind: 'unsupported', method: 'GSSAPI' });
    expect(() => parseAuthentication(Buffer.from([0]))).toThrow(/authentication request of 1 bytes/);
    expect(() => parseAuthentication(auth(5, Buffer.from([1, 2])))).toThrow(/MD5 password authentication request with 2 bytes/);
    expect(() => parseAuthentication(auth(10, Buffer.from('SCRAM-SHA-256')))).toThrow(/not terminated/);
  });

  it('frames split anywhere, and keeps what follows the end of start-up', () => {
    const bytes = Buffer.concat([frame('R', auth(0)), frame('S', parameterStatus('a', 'b')), frame('Z', Buffer.from('I')), frame('N', Buffer.from('x'))]);
    for (let split = 0; split <= bytes.length; split++) {
      const framer = new StartupFramer();
      const seen: string[] = [];
      const take = (type: number) => { seen.push(String.fromCharCode(type)); return type === 0x5a; };
      // Once stopped, later reads go to the connection after what rest() kept (as connection.ts does).
      const early = framer.push(bytes.subarray(0, split), take);
      const stopped = early || framer.push(bytes.subarray(split), take);
      expect(stopped).toBe(true);
      expect(seen).toEqual(['R', 'S', 'Z']);
      const after = early ? Buffer.concat([framer.rest(), bytes.subarray(split)]) : framer.rest();
      expect(after).toEqual(frame('N', Buffer.from('x')));
    }
    expect(() => new StartupFramer().push(Buffer.from([0x52, 0x7f, 0xff, 0xff, 0xff]), () => false)).toThrow(/cannot read/);
  });
});

describe('StartupExchange', () => {
  it('trust: AuthenticationOk, parameters, key, ReadyForQuery; no password needed', () => {
    const exchange = new StartupExchange({ user: 'u', noPassword });
    expect(exchange.receive(R, auth(0))).toBeNull();
    const result = finishStartup(exchange);
    expect(result.authentication).toBe('trust');
    expect(result.parameters.get('server_version')).toBe('15.18');
    expect(result.backendKey).toEqual({ processId: 4242, secretKey: Buffer.from([0, 0, 0, 7]) });
  });

  it('cleartext and MD5 send the password (MD5 hashed with user and salt)', () => {
    const clear = new StartupExchange({ user: 'u', password: 'pw', noPassword });
    expect(passwordBody(clear.receive(R, auth(3))).toString()).toBe('pw\0');
    clear.receive(R, auth(0));
    expect(finishStartup(clear).authentication).toBe('cleartext');

    const md5 = new StartupExchange({ user: 'u', password: 'pw', noPassword });
    const salt = Buffer.from([9, 8, 7, 6]);
    expect(passwordBody(md5.receive(R, auth(5, salt))).toString()).toBe(`${md5PasswordHash('u', 'pw', salt)}\0`);
    md5.receive(R, auth(0));
    expect(finishStartup(md5).authentication).toBe('md5');
  });

  it('a password request without a password fails with the caller\'s error', () => {
    for (const code of [3, 5, 10]) {
      const exchange = new StartupExchange({ user: 'u', noPassword });
      const extra = code === 5 ? Buffer.alloc(4) : code === 10 ? Buffer.from('SCRAM-SHA-256\0\0') : Buffer.alloc(0);
      expect(() => exchange.receive(R, auth(code, extra))).toThrow(/no password supplied/);
    }
  });

  it('SCRAM-SHA-256 against a server side computed here (PostgreSQL\'s verifier: 4096 iterations)', () => {
    const password = 'wspass';
    const salt = Buffer.from('0123456789abcdef');
    const iterations = 4096;
    const salted = pbkdf2Sync(password, salt, iterations, 32, 'sha256');
    const storedKey = createHash('sha256').update(createHmac('sha256', salted).update('Client Key').digest()).digest();
    const serverKey = createHmac('sha256', salted).update('Server Key').digest();

    const exchange = new StartupExchange({ user: 'wsuser', password, noPassword });
    const initial = passwordBody(exchange.receive(R, auth(10, Buffer.from('SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0'))));
    const nameEnd = initial.indexOf(0);
    expect(initial.toString('utf8', 0, nameEnd)).toBe('SCRAM-SHA-256'); // no channel binding offered
    const length = initial.readInt32BE(nameEnd + 1);
    const first = initial.subarray(nameEnd + 5).toString();
    expect(first.length).toBe(length);
    const m = /^n,,n=,r=([A-Za-z0-9+/=]{24})$/.exec(first);
    expect(m, first).not.toBeNull();
    const serverFirst = `r=${m![1]}SERVERNONCE,s=${salt.toString('base64')},i=${iterations}`;

    const final = passwordBody(exchange.receive(R, auth(11, Buffer.from(serverFirst)))).toString();
    const fm = /^(c=biws,r=[^,]+),p=(.+)$/.exec(final);
    expect(fm, final).not.toBeNull();
    const authMessage = `${first.slice(3)},${serverFirst},${fm![1]}`;
    const clientSignature = createHmac('sha256', storedKey).update(authMessage).digest();
    const proof = Buffer.from(fm![2]!, 'base64');
    const clientKey = Buffer.from(proof.map((b, i) => b ^ clientSignature[i]!));
    expect(timingSafeEqual(createHash('sha256').update(clientKey).digest(), storedKey)).toBe(true);

    const serverSignature = createHmac('sha256', serverKey).update(authMessage).digest('base64');
    expect(exchange.receive(R, auth(12, Buffer.from(`v=${serverSignature}`)))).toBeNull();
    expect(exchange.receive(R, auth(0))).toBeNull();
    expect(finishStartup(exchange).authentication).toBe('scram-sha-256');
  });

  it('refuses AuthenticationOk in the middle of SCRAM (a server that never proved itself)', () => {
    const exchange = new StartupExchange({ user: 'u', password: 'pw', noPassword });
    exchange.receive(R, auth(10, Buffer.from('SCRAM-SHA-256\0\0')));
    expect(() => exchange.receive(R, auth(0))).toThrow(/without proving it knows the password/);
  });

  it('refuses SASL without SCRAM-SHA-256, GSSAPI and unknown methods, naming them', () => {
    expect(() => new StartupExchange({ user: 'u', password: 'pw', noPassword }).receive(R, auth(10, Buffer.from('OAUTHBEARER\0\0'))))
      .toThrow(/SASL authentication by "OAUTHBEARER"; walstream speaks only SCRAM-SHA-256/);
    expect(() => new StartupExchange({ user: 'u', noPassword }).receive(R, auth(7))).toThrow(/authentication by GSSAPI, which walstream does not support/);
    expect(() => new StartupExchange({ user: 'u', noPassword }).receive(R, auth(99))).toThrow(/authentication request type 99/);
  });

  it('an ErrorResponse is a PgError with SQLSTATE, message, detail and hint', () => {
    const exchange = new StartupExchange({ user: 'u', password: 'secret', noPassword });
    let caught: unknown;
    try {
      exchange.receive(0x45, errorResponse({ S: 'FATAL', V: 'FATAL', C: '28P01', M: 'password authentication failed for user "u"', D: 'd', H: 'h' }));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PgError);
    expect(caught).toMatchObject({ code: '28P01', severity: 'FATAL', message: 'password authentication failed for user "u"', detail: 'd', hint: 'h' });
  });

  it('refuses messages out of place: query results before AuthenticationOk, anything after ReadyForQuery', () => {
    const early = new StartupExchange({ user: 'u', noPassword });
    expect(() => early.receive(0x5a, Buffer.from('I'))).toThrow(/during authentication, before AuthenticationOk/);
    const late = new StartupExchange({ user: 'u', noPassword });
    late.receive(R, auth(0));
    expect(() => late.receive(0x44, Buffer.alloc(2))).toThrow(/0x44 'D' during start-up/);
    finishStartup(late);
    expect(() => late.receive(0x53, parameterStatus('a', 'b'))).toThrow(/after ReadyForQuery/);
    expect(() => new StartupExchange({ user: 'u', noPassword }).receive(R, auth(11, Buffer.from('r=x')))).toThrow(/out of order/);
  });
});
