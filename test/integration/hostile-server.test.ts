/**
 * Issue "hostile bytes always get a clear error": a scripted server (test/harness/fake-server.ts) that
 * misbehaves in one way per test, and the built CLI (`walstream receive -n`, build first with
 * `npx tsc -p tsconfig.json`) must answer with exactly one stderr line `walstream: error: …` naming
 * what went wrong (no stack trace), exit 1, keep its memory bounded, and rename nothing complete in
 * the archive. The one exception is (a), a server slow to end the copy after our CopyDone: walstream
 * ends by itself (exit 0) and must send nothing after its CopyDone.
 *
 * No PostgreSQL is needed. HOSTILE_SERVER_VERBOSE=1 prints what each run printed and measured.
 */
import { readFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { destroyAll } from '../harness/cleanup.js';
import { delay, tempDir, waitFor } from '../harness/tools.js';
import { spawnWalstream } from '../harness/walstream.js';
import {
  FAKE_XLOGPOS, TEXT_OID, type ClientFrame, type FakeServer, type FakeServerOptions, type FakeSession,
  authenticationRequest, commandComplete, copyData, copyDone, errorFrame, identifySystemAnswer, queryText,
  readyForQuery, rowsAnswer, startFakeServer, statusUpdate, timelineEndResult, walPages, xlogFrames,
} from '../harness/fake-server.js';
import { frame, frameHeader, keepalive, xlogData } from '../unit/protocol-bytes.js';

const MB = 1024 * 1024;
/** Each run of walstream is killed (SIGKILL) after this long: a hang is a failure, not a slow pass. */
const RUN_LIMIT_MS = 20_000;
const TEST_TIMEOUT_MS = 30_000;
const verbose = Boolean(process.env.HOSTILE_SERVER_VERBOSE);

/** No ~/.pgpass, no inherited password: the fake server never asks for one anyway. */
const ENV = { PGPASSFILE: '/nonexistent/walstream-test-pgpass', PGPASSWORD: '' };

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  ms: number;
  /** Peak resident set (VmHWM, kB) last read from /proc while it ran; 0 when not measured. */
  peakKb: number;
  /** Archive entries after the run. */
  files: string[];
  /** Complete segment names (renamed from .partial) in the archive. */
  complete: string[];
}

let fake: FakeServer | undefined;

async function serve(options: FakeServerOptions): Promise<FakeServer> {
  fake = await startFakeServer(options);
  return fake;
}

afterEach(async () => {
  await fake?.close();
  fake = undefined;
});
afterAll(destroyAll);

/** `walstream receive -D <new dir> -d "<fake>" -n ARGS`, killed after RUN_LIMIT_MS; VmHWM polled every 50 ms when asked. */
async function receive(server: FakeServer, args: string[] = [], opts: { measureMemory?: boolean } = {}): Promise<Run> {
  const dir = await tempDir('walstream-hostile-');
  const started = performance.now();
  const child = spawnWalstream(['receive', '-D', dir, '-d', server.connectionString(), '-n', ...args], { env: ENV });
  let peakKb = 0;
  const readPeak = () => {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakKb = Math.max(peakKb, Number(m[1]));
    } catch {
      // Exited between polls.
    }
  };
  const poll = opts.measureMemory ? setInterval(readPeak, 50) : undefined;
  let timedOut = false;
  const killer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, RUN_LIMIT_MS);
  const { code, signal } = await child.exited;
  clearTimeout(killer);
  if (poll) clearInterval(poll);
  const files = (await readdir(dir)).sort();
  const run: Run = {
    code, signal, timedOut, peakKb, files,
    stdout: child.output.stdout,
    stderr: child.output.stderr,
    ms: Math.round(performance.now() - started),
    complete: files.filter((n) => /^[0-9A-F]{24}$/.test(n)),
  };
  if (verbose) console.log(`[hostile] exit ${code} signal ${signal} ${run.ms} ms${peakKb ? ` VmHWM ${Math.round(peakKb / 1024)} MB` : ''} files ${JSON.stringify(files)}\n  stderr: ${JSON.stringify(run.stderr)}`);
  return run;
}

function describeRun(run: Run): string {
  return `exit ${run.code}, signal ${run.signal}${run.timedOut ? ' (killed after 20 s)' : ''}, archive ${JSON.stringify(run.files)}, stderr: ${JSON.stringify(run.stderr)}`;
}

/**
 * The contract for a misbehaving server: exit 1 (not 0, not a signal, not a hang), stderr exactly one
 * line `walstream: error: …` matching every one of `words`, no stack trace, no complete segment.
 */
function expectOneErrorLine(run: Run, words: RegExp[]): void {
  const context = describeRun(run);
  expect(run.timedOut, context).toBe(false);
  expect(run.signal, context).toBeNull();
  expect(run.code, context).toBe(1);
  expect(run.stderr, context).not.toMatch(/^\s+at /m);
  expect(run.stderr.endsWith('\n'), context).toBe(true);
  const lines = run.stderr.slice(0, -1).split(/\r?\n/);
  expect(lines, context).toHaveLength(1);
  expect(lines[0], context).toMatch(/^walstream: error: \S/);
  for (const word of words) expect(lines[0], context).toMatch(word);
  expect(run.complete, context).toEqual([]);
  expect(fake?.scriptErrors ?? [], 'the fake server\'s own scripts failed').toEqual([]);
}

/** Frames the client sent after its first CopyDone (and that CopyDone's index, -1 if none). */
function afterCopyDone(frames: ClientFrame[]): { index: number; after: ClientFrame[] } {
  const index = frames.findIndex((f) => f.type === 'c');
  return { index, after: index < 0 ? [] : frames.slice(index + 1) };
}

/**
 * CopyData the client sent after its CopyDone and before its next Query: the copy is over on its side
 * there (PostgreSQL ends the walsender with FATAL on such a message).
 */
function copyDataAfterCopyDone(frames: ClientFrame[]): ClientFrame[] {
  const late: ClientFrame[] = [];
  let ended = false;
  for (const f of frames) {
    if (f.type === 'Q') ended = false;
    else if (f.type === 'c') ended = true;
    else if (f.type === 'd' && ended) late.push(f);
  }
  return late;
}

/** A client frame for a failure message: a status update decoded, else its type and size. */
function describeFrame(f: ClientFrame): string {
  const status = statusUpdate(f);
  if (status) return `status update write 0x${status.writeLsn.toString(16)} flush 0x${status.flushLsn.toString(16)}${status.replyRequested ? ' (reply requested)' : ''}`;
  return f.type === 'Q' ? `Query ${JSON.stringify(queryText(f))}` : `'${f.type}' (${f.body.length} bytes)`;
}

/** Wait for the client's CopyDone (what a walsender does after its own CopyDone), at most `ms`. */
async function clientCopyDone(session: FakeSession, ms = 3000): Promise<void> {
  await session.waitForFrame((f) => f.type === 'c', { from: 0, timeoutMs: ms });
}

/** Deterministic pseudo-random bytes (xorshift32; with the default seed the first "page magic" is 0xab3a, not WAL's 0xD1xx). */
function randomBytes(length: number, seed = 0x2545f491): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

describe('walstream receive against a hostile server: one clear error line, exit 1, nothing archived as complete', () => {
  it('(a) our CopyDone (-E reached), the server slow to end the copy: nothing but Terminate after CopyDone, exit 0', async () => {
    const wal = walPages(FAKE_XLOGPOS, 4); // 0/3000000 … 0/3008000
    let copyDoneAt = 0;
    let closedAt = 0;
    let answered = false;
    const server = await serve({
      stream: async (_q, send, session) => {
        for (const f of xlogFrames(FAKE_XLOGPOS, wal)) send(f);
        const done = await session.waitForFrame((f) => f.type === 'c', { from: 0, timeoutMs: 15_000 });
        if (!done) return;
        copyDoneAt = done.at;
        void session.whenClosed.then(() => (closedAt = performance.now()));
        // Crossing the client's CopyDone in flight, as from a walsender that has not read it yet: a
        // keepalive asking for a reply, and more WAL. Neither may be answered now.
        send(copyData(keepalive(FAKE_XLOGPOS + 0xa000n, 0n, true)));
        send(copyData(xlogData(FAKE_XLOGPOS + 0x8000n, FAKE_XLOGPOS + 0xa000n, walPages(FAKE_XLOGPOS + 0x8000n, 1))));
        await Promise.race([delay(3000), session.whenClosed]);
        if (session.closed) return;
        answered = true;
        send(Buffer.concat([copyDone(), commandComplete('START_STREAMING'), readyForQuery()]));
      },
    });
    // -E inside the data, so walstream ends the copy itself; -s 1 so a status timer would fire in the grace.
    const run = await receive(server, ['-E', '0/3002000', '-s', '1']);
    const context = describeRun(run);
    const frames = server.sessions[0]?.frames ?? [];
    const { index, after } = afterCopyDone(frames);
    if (verbose) {
      console.log(`[hostile] (a) client frames: ${frames.map((f) => f.type).join(' ')}; after CopyDone: ${JSON.stringify(after.map((f) => f.type))}; connection closed ${closedAt ? Math.round(closedAt - copyDoneAt) : '?'} ms after CopyDone; server answered: ${answered}`);
    }
    expect(run.timedOut, context).toBe(false);
    expect(run.signal, context).toBeNull();
    expect(run.code, context).toBe(0);
    expect(run.stderr, context).not.toMatch(/error|^\s+at /im);
    expect(index, `walstream never sent CopyDone; client frames: ${frames.map((f) => f.type).join(' ')}; ${context}`).toBeGreaterThanOrEqual(0);
    // The bug: CopyData (a standby status update) after CopyDone, which PostgreSQL answers with FATAL.
    expect(after.filter((f) => f.type !== 'X').map(describeFrame), `messages sent after CopyDone; ${context}`).toEqual([]);
    expect(run.complete, context).toEqual([]);
    expect(server.scriptErrors).toEqual([]);
  }, TEST_TIMEOUT_MS);

  it('(a) the server\'s CopyDone (end of timeline), its next-timeline result held back 3 s: no CopyData after our CopyDone, then timeline 2 to -E, exit 0', async () => {
    const switchAt = FAKE_XLOGPOS + 0x2000n; // timeline 1 ends after its first page
    let resultSentAfter = -1; // client frames received when the held result went out
    const server = await serve({
      answers: {
        TIMELINE_HISTORY: rowsAnswer([{ name: 'filename', typeOid: TEXT_OID }, { name: 'content', typeOid: TEXT_OID }],
          [['00000002.history', `1\t0/${switchAt.toString(16).toUpperCase()}\tno recovery target specified\n`]], 'TIMELINE_HISTORY'),
      },
      stream: async (query, send, session) => {
        if (/TIMELINE 2\b/.test(query)) {
          // Timeline 2 from its segment start: the page before the switch is timeline 1's, then timeline 2's.
          const wal = Buffer.concat([walPages(FAKE_XLOGPOS, 1), walPages(switchAt, 3, { timeline: 2 })]);
          for (const f of xlogFrames(FAKE_XLOGPOS, wal)) send(f);
          const from = session.frames.length;
          if (!(await session.waitForFrame((f) => f.type === 'c', { from, timeoutMs: 15_000 }))) return;
          send(Buffer.concat([copyDone(), commandComplete('START_STREAMING'), readyForQuery()]));
          return;
        }
        for (const f of xlogFrames(FAKE_XLOGPOS, walPages(FAKE_XLOGPOS, 1))) send(f);
        send(copyDone());
        const from = session.frames.length;
        if (!(await session.waitForFrame((f) => f.type === 'c', { from, timeoutMs: 15_000 }))) return;
        // Hold the end-of-timeline result: a status timer (-s 1) fires meanwhile.
        await Promise.race([delay(3000), session.whenClosed]);
        resultSentAfter = session.frames.length;
        send(Buffer.concat([timelineEndResult('2', `0/${switchAt.toString(16).toUpperCase()}`), commandComplete('START_STREAMING'), readyForQuery()]));
      },
    });
    const run = await receive(server, ['-E', '0/3003000', '-s', '1']);
    const context = describeRun(run);
    const frames = server.sessions[0]?.frames ?? [];
    if (verbose) console.log(`[hostile] (a, server's CopyDone) client frames: ${frames.map((f) => (f.type === 'Q' ? `Q(${queryText(f)})` : f.type)).join(' ')}; result held until frame ${resultSentAfter}`);
    expect(frames.filter((f) => f.type === 'c').length, `client frames: ${frames.map((f) => f.type).join(' ')}; ${context}`).toBeGreaterThanOrEqual(1);
    expect(copyDataAfterCopyDone(frames).map(describeFrame), `CopyData sent after our CopyDone, before the next command; ${context}`).toEqual([]);
    expect(run.timedOut, context).toBe(false);
    expect(run.signal, context).toBeNull();
    expect(run.code, context).toBe(0);
    expect(run.stderr, context).not.toMatch(/error|^\s+at /im);
    expect(run.complete, context).toEqual([]);
    expect(run.files, context).toContain('00000002.history');
    expect(server.scriptErrors).toEqual([]);
  }, TEST_TIMEOUT_MS);

  it('(b) an authentication request of unknown type 99', async () => {
    const server = await serve({ startup: (send) => void send(authenticationRequest(99)) });
    expectOneErrorLine(await receive(server), [/authentication/i]);
  }, TEST_TIMEOUT_MS);

  it('(c) a 1-byte authentication message (length 5)', async () => {
    const server = await serve({ startup: (send) => void send(frame('R', Buffer.from([0]))) });
    expectOneErrorLine(await receive(server), [/start-up|startup|authentication/i]);
  }, TEST_TIMEOUT_MS);

  it('(d) ReadyForQuery during COPY, without CopyDone', async () => {
    const server = await serve({
      stream: (_q, send) => {
        for (const f of xlogFrames(FAKE_XLOGPOS, walPages(FAKE_XLOGPOS, 2))) send(f);
        send(readyForQuery());
      },
    });
    expectOneErrorLine(await receive(server), [/ReadyForQuery/]);
  }, TEST_TIMEOUT_MS);

  it('(e) CopyDone from the server, then CommandComplete and ReadyForQuery with no next-timeline row', async () => {
    const server = await serve({
      stream: async (_q, send, session) => {
        for (const f of xlogFrames(FAKE_XLOGPOS, walPages(FAKE_XLOGPOS, 2))) send(f);
        send(copyDone());
        await clientCopyDone(session);
        send(Buffer.concat([commandComplete('START_STREAMING'), readyForQuery()]));
      },
    });
    expectOneErrorLine(await receive(server), [/timeline/i]);
  }, TEST_TIMEOUT_MS);

  it('(f) a CopyData whose length word is 0x7FFFFFFF, followed by 400 MB: refused, peak RSS under 150 MB', async () => {
    let sent = 0;
    const server = await serve({
      stream: async (_q, send, session) => {
        send(frameHeader('d', 0x7fffffff));
        const chunk = Buffer.alloc(MB); // zeros; one buffer written again and again
        while (sent < 400 * MB && !session.closed) {
          if (!(await session.sendAndDrain(chunk))) break;
          sent += chunk.length;
        }
      },
    });
    const run = await receive(server, [], { measureMemory: true });
    if (verbose) console.log(`[hostile] (f) the server got ${Math.round(sent / MB)} MB of the body out before the socket closed`);
    expectOneErrorLine(run, [/CopyData|message|length|large/i]);
    expect(run.peakKb, 'VmHWM was never read').toBeGreaterThan(0);
    expect(run.peakKb, `peak RSS ${Math.round(run.peakKb / 1024)} MB; ${describeRun(run)}`).toBeLessThan(150 * 1024);
  }, TEST_TIMEOUT_MS);

  for (const [name, wal] of [['random bytes', randomBytes(2 * MB)], ['zeros', Buffer.alloc(2 * MB)]] as const) {
    it(`(g) XLogData of ${name} at 0/3000000, 2 MB contiguous: bad WAL refused, no segment renamed complete`, async () => {
      const server = await serve({
        stream: async (_q, send, session) => {
          for (const f of xlogFrames(FAKE_XLOGPOS, wal, { walEnd: FAKE_XLOGPOS + BigInt(4 * MB) })) {
            if (!(await session.sendAndDrain(f))) return;
          }
          // Then hang up, so a walstream that took it all ends (and shows what it archived) rather than waits.
          await Promise.race([delay(1500), session.whenClosed]);
          session.end();
        },
      });
      const run = await receive(server);
      expectOneErrorLine(run, [/WAL/, /page|magic|header/i]);
      expect(run.files.filter((n) => !/^[0-9A-F]{24}\.partial$/.test(n) && n !== 'walstream.lock'), describeRun(run)).toEqual([]);
    }, TEST_TIMEOUT_MS);
  }

  for (const timeline of ['-1', '0']) {
    it(`(h) IDENTIFY_SYSTEM timeline '${timeline}'`, async () => {
      const server = await serve({ answers: { IDENTIFY_SYSTEM: identifySystemAnswer({ timeline }) } });
      const run = await receive(server);
      expectOneErrorLine(run, [/timeline/i]);
      expect(run.files.filter((n) => n.includes('-')), describeRun(run)).toEqual([]);
      expect(server.sessions[0]?.frames.some((f) => f.type === 'Q' && f.body.toString().startsWith('START_REPLICATION')), 'it started streaming anyway').toBe(false);
    }, TEST_TIMEOUT_MS);
  }

  it('(i) an ErrorResponse whose message holds a newline, in answer to IDENTIFY_SYSTEM: one line with both parts', async () => {
    const server = await serve({
      answers: { IDENTIFY_SYSTEM: (_q, send) => void send(Buffer.concat([errorFrame({ C: 'XX000', M: 'first line\nsecond line' }), readyForQuery()])) },
    });
    expectOneErrorLine(await receive(server), [/first line/, /second line/]);
  }, TEST_TIMEOUT_MS);

  it('(i) the same error while reconnecting (no -n): each retry warning is one line', async () => {
    const server = await serve({
      answers: { IDENTIFY_SYSTEM: (_q, send) => void send(Buffer.concat([errorFrame({ C: 'XX000', M: 'first line\nsecond line' }), readyForQuery()])) },
    });
    const dir = await tempDir('walstream-hostile-');
    const child = spawnWalstream(['receive', '-D', dir, '-d', server.connectionString()], { env: ENV });
    await waitFor(async () => /retrying in/.test(child.output.stderr), { timeoutMs: 10_000, what: 'a retry warning' });
    child.kill('SIGTERM');
    expect((await child.exited).code, child.output.stderr).toBe(0);
    const warning = child.output.stderr.split('\n').find((l) => l.includes('retrying in'))!;
    expect(warning, child.output.stderr).toMatch(/^walstream: .*first line second line.*; retrying in 1 s$/);
    expect(child.output.stderr.split('\n').filter((l) => l.startsWith('second line')), child.output.stderr).toEqual([]);
  }, TEST_TIMEOUT_MS);

  it('(j) next_tli \'abc\' in the end-of-timeline result', async () => {
    const server = await serve({
      stream: async (_q, send, session) => {
        for (const f of xlogFrames(FAKE_XLOGPOS, walPages(FAKE_XLOGPOS, 2))) send(f);
        send(copyDone());
        await clientCopyDone(session);
        send(Buffer.concat([timelineEndResult('abc', '0/4000000'), commandComplete('START_STREAMING'), readyForQuery()]));
      },
    });
    const run = await receive(server);
    expectOneErrorLine(run, [/next_tli|next timeline/i]);
    // Nothing is done with the garbage: no command after START_REPLICATION (TIMELINE_HISTORY NaN, say).
    const queries = (server.sessions[0]?.frames ?? []).map(queryText).filter((q): q is string => q !== null);
    expect(queries.slice(queries.findIndex((q) => q.startsWith('START_REPLICATION')) + 1), describeRun(run)).toEqual([]);
  }, TEST_TIMEOUT_MS);
});
