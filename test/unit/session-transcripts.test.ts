/**
 * The stream session's logic, with no PostgreSQL: StreamSession (and archiveSession) over a
 * ReplicationConnection whose transport replays byte transcripts recorded from a real server
 * (fixtures/transcripts/*.bin, made by scripts/record-transcripts.mjs; see fixtures/README.md).
 * The WAL the session yields is compared with the XLogData payloads in the transcript itself.
 */
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { archiveSession } from '../../src/archive-session.js';
import { DirectorySink } from '../../src/archive/directory.js';
import { ReplicationConnection } from '../../src/connection.js';
import { PgError } from '../../src/errors.js';
import { formatLsn, parseLsn, segmentStart, walFileName } from '../../src/lsn.js';
import { SegmentConsumer } from '../../src/segments.js';
import { type ServerFacts, checkServer } from '../../src/server-check.js';
import { slotStart } from '../../src/start-position.js';
import { StreamSession, type StreamOutcome, type StreamSessionOptions, type WalBatch } from '../../src/stream.js';
import {
  type ClientMessage, type TranscriptStep, type TranscriptTransportOptions, TranscriptTransport,
  clientMessages, decodeTranscript, encodeTranscript, loadTranscript, saveTranscript, serverMessages, transcriptWal,
} from '../harness/transcript.js';
import { useTempDirs } from './temp-dirs.js';

const FIXTURES = fileURLToPath(new URL('../../fixtures/transcripts/', import.meta.url));
const NAMES = ['catchup-segment-boundary', 'keepalive-reply', 'timeline-switch', 'error-mid-stream'] as const;
type Name = typeof NAMES[number];
const transcripts = Object.fromEntries(NAMES.map((n) => [n, loadTranscript(path.join(FIXTURES, `${n}.bin`))])) as Record<Name, TranscriptStep[]>;

const tempDir = useTempDirs('walstream-transcripts-');
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const lsn = (value: bigint) => formatLsn(value);

// ---------------------------------------------------------------------------------------------------
// What the recordings say

/** The recorded START_REPLICATION command and its parameters. */
function recordedStart(steps: readonly TranscriptStep[]): { command: string; slot?: string; startLsn: bigint; timeline: number } {
  const query = clientMessages(steps).find((m): m is Extract<ClientMessage, { kind: 'query' }> => m.kind === 'query' && m.text.startsWith('START_REPLICATION'));
  const match = query && /^START_REPLICATION (?:SLOT "?([^" ]+)"? )?PHYSICAL ([0-9A-F]+\/[0-9A-F]+) TIMELINE (\d+)$/.exec(query.text);
  if (!match) throw new Error('the transcript has no START_REPLICATION');
  return { command: query.text, slot: match[1], startLsn: parseLsn(match[2]), timeline: Number(match[3]) };
}

/** The recorded WAL from `from` up to `to` (exclusive; default all), checked to be contiguous. */
function recordedWal(steps: readonly TranscriptStep[], from: bigint, to?: bigint): Buffer {
  const parts: Buffer[] = [];
  let position = from;
  for (const m of transcriptWal(steps)) {
    const end = m.walStart + BigInt(m.data.length);
    if (end <= from) continue;
    if (to !== undefined && m.walStart >= to) break;
    if (m.walStart > position) throw new Error(`the transcript's WAL has a gap at ${lsn(position)}`);
    const skip = Number(position - m.walStart);
    const take = to !== undefined && end > to ? Number(to - m.walStart) : m.data.length;
    parts.push(m.data.subarray(skip, take));
    position = m.walStart + BigInt(take);
  }
  return Buffer.concat(parts);
}

/** The recording's segment boundary inside an XLogData message (catchup-segment-boundary). */
function crossingMessage(steps: readonly TranscriptStep[], segmentSize: number) {
  const { startLsn } = recordedStart(steps);
  const boundary = segmentStart(startLsn, segmentSize) + BigInt(segmentSize);
  const message = transcriptWal(steps).find((m) => m.walStart < boundary && m.walStart + BigInt(m.data.length) > boundary);
  if (!message) throw new Error(`no XLogData crosses ${lsn(boundary)} in the transcript`);
  return { boundary, walStart: message.walStart, end: message.walStart + BigInt(message.data.length) };
}

/** The transcript up to (not including) the client's first CopyDone: the server never answers it. */
function silentAfterCopyDone(steps: readonly TranscriptStep[]): TranscriptStep[] {
  const at = steps.findIndex((s) => s.from === 'client' && s.bytes[0] === 0x63 /* c */);
  if (at < 0) throw new Error('the transcript has no CopyDone from the client');
  return steps.slice(0, at);
}

/** What follows the client's first CopyDone in `sent`. */
function afterCopyDone(sent: readonly ClientMessage[]): ClientMessage[] {
  const at = sent.findIndex((m) => m.kind === 'copy-done');
  return at < 0 ? [] : sent.slice(at + 1);
}

// ---------------------------------------------------------------------------------------------------
// Replaying

interface Replay {
  transport: TranscriptTransport;
  conn: ReplicationConnection;
  facts: ServerFacts;
  start: ReturnType<typeof recordedStart>;
}

/** A connection over the transcript, through the session's set-up commands (as recorded). */
async function replay(steps: readonly TranscriptStep[], options: TranscriptTransportOptions = {}): Promise<Replay> {
  const transport = new TranscriptTransport(steps, options);
  const conn = new ReplicationConnection(transport, 'fixture');
  const facts = await checkServer(conn);
  const start = recordedStart(steps);
  if (start.slot) {
    const fromSlot = await slotStart(conn, start.slot, facts.segmentSize, facts.version);
    expect(fromSlot?.startLsn).toBe(start.startLsn);
  }
  return { transport, conn, facts, start };
}

function session(r: Replay, options: Partial<StreamSessionOptions> = {}): StreamSession {
  let s: StreamSession;
  s = new StreamSession(r.conn, {
    slot: r.start.slot, startLsn: r.start.startLsn, timeline: r.start.timeline, segmentSize: r.facts.segmentSize,
    statusIntervalMs: 0,
    positions: () => ({ writeLsn: s.receivedLsn, flushLsn: 0n }),
    ...options,
  });
  return s;
}

/** Pull every batch, copying its WAL (views are valid only until the next pull) and checking it is contiguous. */
async function drain(s: StreamSession, from: bigint, onBatch?: (batch: WalBatch) => void | Promise<void>): Promise<{ wal: Buffer; batches: number; error?: unknown }> {
  const parts: Buffer[] = [];
  let position = from;
  let batches = 0;
  try {
    for await (const batch of s) {
      batches++;
      for (const piece of batch.pieces) {
        expect(lsn(piece.walStart)).toBe(lsn(position));
        parts.push(Buffer.from(piece.data));
        position += BigInt(piece.data.length);
      }
      await onBatch?.(batch);
    }
  } catch (error) {
    return { wal: Buffer.concat(parts), batches, error };
  }
  return { wal: Buffer.concat(parts), batches };
}

function expectSameWal(actual: Buffer, expected: Buffer): void {
  expect(actual.length).toBe(expected.length);
  if (!actual.equals(expected)) {
    let i = 0;
    while (actual[i] === expected[i]) i++;
    expect.fail(`WAL differs from the recording at byte ${i} of ${expected.length}`);
  }
}

// ---------------------------------------------------------------------------------------------------

describe('transcript files', () => {
  it('save and load round-trip, and a zero-length server record is the server closing', () => {
    const steps: TranscriptStep[] = [
      { from: 'client', bytes: Buffer.from('Q\0\0\0\x09abcd\0', 'latin1') },
      { from: 'server', bytes: Buffer.from([1, 2, 3]) },
      { from: 'server', bytes: Buffer.alloc(0) },
    ];
    const file = path.join(tempDir(), 'x.bin');
    saveTranscript(file, steps);
    expect([...readFileSync(file)]).toEqual([1, 0, 0, 0, 10, ...steps[0].bytes, 0, 0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0, 0]);
    expect(loadTranscript(file)).toEqual(steps);
    expect(() => decodeTranscript(encodeTranscript(steps).subarray(0, 12))).toThrow(/truncated/);
  });

  it('each fixture holds what the tests below rely on', () => {
    const catchup = transcripts['catchup-segment-boundary'];
    expect(crossingMessage(catchup, 1 << 20).boundary % BigInt(1 << 20)).toBe(0n);
    const keepalives = serverMessages(transcripts['keepalive-reply']).filter((m) => m.type === 'd' && 'body' in m && m.body[0] === 0x6b);
    expect(keepalives.some((m) => 'body' in m && m.body[17] === 1)).toBe(true);
    const timeline = serverMessages(transcripts['timeline-switch']).map((m) => m.type);
    expect(timeline.indexOf('c')).toBeGreaterThan(timeline.lastIndexOf('w'));
    expect(timeline.slice(timeline.indexOf('c'))).toEqual(expect.arrayContaining(['T', 'D', 'C', 'Z']));
    const error = transcripts['error-mid-stream'];
    expect(serverMessages(error).map((m) => m.type)).toContain('E');
    expect(error.at(-1)).toEqual({ from: 'server', bytes: Buffer.alloc(0) });
  });
});

describe('TranscriptTransport', () => {
  it('delivers nothing before the client asks, and fails a connection that sends another command than recorded', async () => {
    const transport = new TranscriptTransport(transcripts['keepalive-reply']);
    const conn = new ReplicationConnection(transport, 'fixture');
    await sleep(20);
    expect(transport.deliveredReads).toBe(0);
    await expect(conn.command('IDENTIFY_SYSTEM')).rejects.toThrow(/transcript replay: the client sent Query "IDENTIFY_SYSTEM" where the recording has Query "SHOW server_version_num"/);
    expect(transport.deliveredReads).toBe(0);
  });
});

// A session that hangs fails in seconds, not at the suite's two-minute default.
describe('StreamSession over recorded transcripts', { timeout: 15_000 }, () => {
  it('yields exactly the recorded WAL, in order, and ends at the message that reaches endLsn', async () => {
    const steps = transcripts['catchup-segment-boundary'];
    const r = await replay(steps, { reuseBuffer: true });
    const { boundary, end } = crossingMessage(steps, r.facts.segmentSize);
    const s = session(r, { endLsn: boundary + 1n });
    const { wal, error } = await drain(s, r.start.startLsn);
    expect(error).toBeUndefined();
    expectSameWal(wal, recordedWal(steps, r.start.startLsn, end));
    expect(await s.finish()).toEqual({ kind: 'endpos', receivedLsn: end });
    expect(r.transport.sent.find((m) => m.kind === 'query' && m.text.startsWith('START_REPLICATION'))).toEqual({ kind: 'query', text: r.start.command });
    expect(r.transport.mismatch).toBeNull();
  });

  it('yields the same WAL and ends the same way when every server read is re-split at random points', async () => {
    const cases = (['catchup-segment-boundary', 'timeline-switch', 'error-mid-stream'] as const).map((name) => {
      const steps = transcripts[name];
      const reads = steps.filter((s) => s.from === 'server').map((s) => s.bytes);
      const starts: number[] = [];
      let offset = 0;
      for (const bytes of reads) {
        starts.push(offset);
        offset += bytes.length;
      }
      // Where messages begin in the server's byte stream: cuts near them split headers.
      const frames: number[] = [];
      const stream = Buffer.concat(reads);
      for (let at = 0; at + 5 <= stream.length; at += 1 + stream.readInt32BE(at + 1)) frames.push(at);
      return { name, steps, starts, total: offset, frames };
    });
    const cut = fc.oneof(
      fc.record({ frame: fc.nat(), delta: fc.integer({ min: -2, max: 40 }) }),
      fc.record({ at: fc.nat() }),
    );
    await fc.assert(fc.asyncProperty(fc.nat({ max: cases.length - 1 }), fc.array(cut, { maxLength: 300 }), async (which, cuts) => {
      const c = cases[which];
      const global = cuts.map((x) => ('at' in x ? x.at % c.total : c.frames[x.frame % c.frames.length] + x.delta));
      const splitAt = (index: number, chunk: Buffer) => global.map((g) => g - c.starts[index]).filter((o) => o > 0 && o < chunk.length);
      const r = await replay(c.steps, { splitAt, reuseBuffer: true });
      const crossing = c.name === 'catchup-segment-boundary' ? crossingMessage(c.steps, r.facts.segmentSize) : null;
      const s = session(r, crossing ? { endLsn: crossing.boundary + 1n } : {});
      const { wal, error } = await drain(s, r.start.startLsn);
      if (crossing) {
        // endLsn falls inside the crossing message: the WAL ends once a piece reaches it, and where the
        // reads cut that message decides how much of it came (as the old session did): at least to
        // endLsn, at most the message's end, and always the recorded bytes.
        const upTo = r.start.startLsn + BigInt(wal.length);
        expect(upTo >= crossing.boundary + 1n && upTo <= crossing.end, `WAL ends at ${lsn(upTo)}`).toBe(true);
        expectSameWal(wal, recordedWal(c.steps, r.start.startLsn, upTo));
      } else {
        expectSameWal(wal, recordedWal(c.steps, r.start.startLsn));
      }
      if (c.name === 'error-mid-stream') {
        expect(error).toBeInstanceOf(Error);
        await expect(s.finish()).rejects.toBe(error);
      } else {
        expect(error).toBeUndefined();
        const outcome = await s.finish();
        expect(outcome.kind).toBe(crossing ? 'endpos' : 'timeline-end');
      }
      expect(afterCopyDone(r.transport.sent).filter((m) => m.kind === 'status')).toEqual([]);
    }), { numRuns: 40 });
  });

  it.each([
    ['inside the message that crosses the boundary', (c: ReturnType<typeof crossingMessage>) => c.walStart + 1n],
    ['one byte before the boundary', (c: ReturnType<typeof crossingMessage>) => c.boundary - 1n],
    ['at the boundary', (c: ReturnType<typeof crossingMessage>) => c.boundary],
  ])('endLsn %s: the WAL ends exactly at the segment boundary', async (_, endAt) => {
    const steps = transcripts['catchup-segment-boundary'];
    const r = await replay(steps);
    const crossing = crossingMessage(steps, r.facts.segmentSize);
    const s = session(r, { endLsn: endAt(crossing) });
    const { wal, error } = await drain(s, r.start.startLsn);
    expect(error).toBeUndefined();
    expectSameWal(wal, recordedWal(steps, r.start.startLsn, crossing.boundary));
    expect(await s.finish()).toEqual({ kind: 'endpos', receivedLsn: crossing.boundary });
  });

  it('finish() sends a final status update with the consumer\'s positions, then CopyDone, and no status update after it ever', async () => {
    // The server never answers our CopyDone: finish() waits its grace second, while the status timer
    // (every 5 ms) and the consumer (sendStatus) keep trying to send.
    const steps = silentAfterCopyDone(transcripts['catchup-segment-boundary']);
    const r = await replay(steps);
    const { boundary } = crossingMessage(transcripts['catchup-segment-boundary'], r.facts.segmentSize);
    const durable = { writeLsn: 0n, flushLsn: 0n };
    const s = session(r, { endLsn: boundary, statusIntervalMs: 5, positions: () => durable });
    let batches = 0;
    await drain(s, r.start.startLsn, (batch) => {
      batches++;
      // A consumer that writes everything and makes all but the last 100 bytes durable.
      const last = batch.pieces.at(-1);
      if (last) durable.writeLsn = last.walStart + BigInt(last.data.length);
      durable.flushLsn = durable.writeLsn - 100n;
    });
    expect(batches).toBeGreaterThan(1);
    expect(durable.writeLsn).toBe(boundary);
    const finishing = s.finish();
    const pester = setInterval(() => s.sendStatus(true), 2);
    try {
      expect(await finishing).toEqual({ kind: 'endpos', receivedLsn: boundary });
    } finally {
      clearInterval(pester);
    }
    s.sendStatus();
    await sleep(30);
    const sent = r.transport.sent;
    const copyDone = sent.findIndex((m) => m.kind === 'copy-done');
    expect(copyDone).toBeGreaterThan(0);
    expect(sent[copyDone - 1]).toEqual({ kind: 'status', writeLsn: boundary, flushLsn: boundary - 100n, applyLsn: 0n, replyRequested: false });
    expect(afterCopyDone(sent)).toEqual([]);
  });

  it('a keepalive with replyRequested yields a batch with replyRequested', async () => {
    const steps = transcripts['keepalive-reply'];
    const r = await replay(steps);
    const stop = new AbortController();
    const s = session(r, { signal: stop.signal, positions: () => ({ writeLsn: s.receivedLsn, flushLsn: s.receivedLsn }) });
    const giveUp = setTimeout(() => stop.abort(), 2000);
    const asked: WalBatch[] = [];
    await drain(s, r.start.startLsn, (batch) => {
      if (!batch.replyRequested) return;
      asked.push(batch);
      s.sendStatus(); // the reply, as archiveSession sends it
      stop.abort();
    });
    clearTimeout(giveUp);
    expect(asked).toHaveLength(1);
    expect(asked[0].pieces).toEqual([]);
    expect(lsn(asked[0].serverWalEnd)).toBe(lsn(r.start.startLsn));
    const started = performance.now();
    expect(await s.finish()).toEqual({ kind: 'stopped', receivedLsn: r.start.startLsn });
    expect(performance.now() - started).toBeLessThan(500); // the server answered our CopyDone: no grace wait
    expect(r.transport.destroyCalls).toBe(0);
    const replies = r.transport.statusUpdates;
    // The first update at the start, the reply, the final one; then CopyDone.
    expect(replies).toHaveLength(3);
    expect(r.transport.sent.at(-1)).toEqual({ kind: 'copy-done' });
  });

  it('stop() through the AbortSignal ends the iteration, and finish() resolves \'stopped\' within about a second when the server never answers CopyDone', async () => {
    const r = await replay(silentAfterCopyDone(transcripts['keepalive-reply']));
    const stop = new AbortController();
    const s = session(r, { signal: stop.signal, statusIntervalMs: 5 });
    const first = await s.next();
    expect(first.done).toBe(false);
    expect(first.value?.replyRequested).toBe(true);
    const waiting = s.next(); // nothing more is coming: only the stop ends it
    await sleep(50);
    stop.abort();
    expect(await waiting).toEqual({ done: true, value: undefined });
    const started = performance.now();
    const outcome = await s.finish();
    const took = performance.now() - started;
    expect(outcome).toEqual({ kind: 'stopped', receivedLsn: r.start.startLsn });
    expect(took).toBeGreaterThan(900); // it did wait for an answer (STOP_GRACE_MS)
    expect(took).toBeLessThan(1500);
    expect(r.transport.destroyCalls).toBeGreaterThan(0); // and then dropped the connection
    expect(r.transport.sent.filter((m) => m.kind === 'copy-done')).toHaveLength(1);
    expect(afterCopyDone(r.transport.sent)).toEqual([]);
  });

  // After a stop, a keepalive asking for a reply that arrives before the server's answer to our
  // CopyDone must not become a batch nobody pulls (which paused the socket, so finish() waited its
  // whole grace second and dropped the connection). Here the stop comes before the session starts:
  // the recorded keepalive, sent a second after START_REPLICATION, arrives after our CopyDone.
  it('a keepalive asking for a reply after our CopyDone does not hold up finish()', async () => {
    const r = await replay(transcripts['keepalive-reply']);
    const stop = new AbortController();
    stop.abort();
    const s = session(r, { signal: stop.signal });
    expect(await s.next()).toEqual({ done: true, value: undefined });
    const started = performance.now();
    expect(await s.finish()).toEqual({ kind: 'stopped', receivedLsn: r.start.startLsn });
    expect(r.transport.destroyCalls).toBe(0);
    expect(performance.now() - started).toBeLessThan(500);
  });

  it.each([0, 100])('the server ending the timeline gives timeline-end with the next timeline, and the connection goes on (readCoalesceMs %i)', async (readCoalesceMs) => {
    const steps = transcripts['timeline-switch'];
    const r = await replay(steps, { reuseBuffer: true });
    // With coalescing (the Archiver's 10 ms), the read that ended the copy once left the socket paused
    // for good, and the next command (TIMELINE_HISTORY) waited forever.
    const s = session(r, { statusIntervalMs: 5, readCoalesceMs });
    const { wal, error } = await drain(s, r.start.startLsn, () => s.sendStatus());
    expect(error).toBeUndefined();
    s.sendStatus(); // after the server's CopyDone: must not be sent
    const recorded = recordedWal(steps, r.start.startLsn);
    expectSameWal(wal, recorded);
    const switchPoint = r.start.startLsn + BigInt(recorded.length);
    const outcome: StreamOutcome = await s.finish();
    expect(outcome).toEqual({ kind: 'timeline-end', end: { nextTimeline: 2, nextTimelineStart: switchPoint }, receivedLsn: switchPoint });
    expect(r.transport.sent.filter((m) => m.kind === 'copy-done')).toHaveLength(1);
    expect(afterCopyDone(r.transport.sent)).toEqual([]);
    // The Archiver fetches the new timeline's history next, on the same connection.
    const history = await r.conn.timelineHistory(2);
    expect(history.fileName).toBe('00000002.history');
    expect(Buffer.from(history.content).toString()).toMatch(new RegExp(`^1\\t${lsn(switchPoint)}\\t`));
  });

  it('the server\'s error mid-stream: the WAL before it is yielded, then the iteration and finish() reject', async () => {
    const steps = transcripts['error-mid-stream'];
    const r = await replay(steps);
    const s = session(r);
    const { wal, error } = await drain(s, r.start.startLsn);
    expectSameWal(wal, recordedWal(steps, r.start.startLsn));
    expect(error).toBeInstanceOf(Error);
    await expect(s.finish()).rejects.toBe(error);
    expect(r.transport.sent.filter((m) => m.kind === 'copy-done')).toEqual([]);
  });

  // The server's FATAL ErrorResponse, followed by its close, is the reason reported (57P01,
  // "terminating connection due to administrator command"), not the close.
  it('the server\'s error mid-stream rejects with the server\'s PgError', async () => {
    const r = await replay(transcripts['error-mid-stream']);
    const { error } = await drain(session(r), r.start.startLsn);
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(PgError);
    expect((error as PgError).code).toBe('57P01');
  });

  it('backpressure: while the consumer holds a batch the transport delivers at most one more read, then rests', async () => {
    const steps = transcripts['catchup-segment-boundary'];
    const r = await replay(steps);
    const s = session(r, { endLsn: crossingMessage(steps, r.facts.segmentSize).boundary + 1n });
    let held = 0;
    await drain(s, r.start.startLsn, async (batch) => {
      if (batch.pieces.length === 0) return;
      const reads = r.transport.deliveredReads;
      const bytes = r.transport.deliveredBytes;
      await sleep(held < 3 ? 30 : 0); // long holds for the first few, a turn of the loop for the rest
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      expect(r.transport.deliveredReads - reads).toBeLessThanOrEqual(1);
      if (r.transport.deliveredReads > reads) {
        expect(r.transport.paused).toBe(true);
      } else {
        expect(r.transport.deliveredBytes).toBe(bytes);
      }
      held++;
    });
    expect(held).toBeGreaterThan(10);
    expect(r.transport.pauseCalls).toBeGreaterThanOrEqual(held / 2);
    expect((await s.finish()).kind).toBe('endpos');
  });

  it('a consumer done before the next read never pauses the socket once it has what the server sent (a synchronous standby\'s loop); while catching up it pauses per batch', async () => {
    const steps = transcripts['catchup-segment-boundary'];
    const r = await replay(steps);
    const s = session(r, { endLsn: crossingMessage(steps, r.facts.segmentSize).boundary + 1n });
    let pausesSeen = 0;
    let caughtUp = 0;
    let behind = 0;
    const { batches, error } = await drain(s, r.start.startLsn, (batch) => {
      const paused = r.transport.pauseCalls - pausesSeen; // pauses made when this batch was collected
      pausesSeen = r.transport.pauseCalls;
      if (batch.serverWalEnd <= s.receivedLsn) {
        caughtUp++;
        expect(paused).toBe(0);
      } else {
        behind++;
        expect(paused).toBe(1); // the next read waits: it comes in large, as the WAL piles up
      }
    });
    expect(error).toBeUndefined();
    expect(batches).toBeGreaterThan(10);
    expect(caughtUp).toBeGreaterThan(0);
    expect(behind).toBeGreaterThan(0);
    expect((await s.finish()).kind).toBe('endpos');
  });

  it('a caught-up consumer that holds a batch gets at most one more read before the socket rests', async () => {
    const steps = transcripts['catchup-segment-boundary'];
    const r = await replay(steps, { reuseBuffer: true }); // two read buffers in turn, as the socket
    const s = session(r, { endLsn: crossingMessage(steps, r.facts.segmentSize).boundary + 1n });
    // A batch with WAL that brought everything the server had sent (catching up, the socket rests at once).
    let result = await s.next();
    while (!result.done && ((result.value as WalBatch).pieces.length === 0 || (result.value as WalBatch).serverWalEnd > s.receivedLsn)) result = await s.next();
    expect(result.done).toBe(false);
    const first = result.value as WalBatch;
    const copies = first.pieces.map((p) => Buffer.from(p.data));
    const reads = r.transport.deliveredReads;
    await sleep(50); // many event-loop turns: the transcript would deliver a read on each
    expect(r.transport.deliveredReads).toBe(reads + 1);
    expect(r.transport.paused).toBe(true);
    expect(first.pieces.every((p, i) => p.data.equals(copies[i]!))).toBe(true); // not overwritten
    const second = await s.next(); // the read that came meanwhile, handed over at once
    expect(second.done).toBe(false);
    s.dispose();
  });

  it('readCoalesceMs rests the socket after a batch only when caught up with the server', async () => {
    // Catching up (the server's WAL end ahead of what arrived): the next pull reads at once.
    const catchup = await replay(transcripts['catchup-segment-boundary']);
    const behind = session(catchup, { readCoalesceMs: 10_000 });
    let pull = behind.next();
    for (let i = 0; i < 3; i++) {
      const { value } = await pull;
      expect(value!.serverWalEnd).toBeGreaterThan(behind.receivedLsn);
      pull = behind.next();
      expect(catchup.transport.paused).toBe(false); // never paused, or resumed by the pull
    }
    pull.catch(() => {});
    behind.dispose();

    // Caught up (a keepalive at the server's WAL end): the next pull waits readCoalesceMs to read.
    const idle = await replay(transcripts['keepalive-reply']);
    const stop = new AbortController();
    const caughtUp = session(idle, { readCoalesceMs: 300, signal: stop.signal });
    const { value } = await caughtUp.next();
    expect(value!.replyRequested).toBe(true);
    expect(value!.serverWalEnd).toBe(caughtUp.receivedLsn);
    const resumes = idle.transport.resumeCalls;
    const reads = idle.transport.deliveredReads;
    const pending = caughtUp.next();
    expect(idle.transport.resumeCalls).toBe(resumes);
    await sleep(150);
    expect(idle.transport.paused).toBe(true);
    expect(idle.transport.resumeCalls).toBe(resumes);
    expect(idle.transport.deliveredReads).toBe(reads);
    await sleep(300);
    expect(idle.transport.resumeCalls).toBe(resumes + 1);
    expect(idle.transport.paused).toBe(false);
    stop.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect((await caughtUp.finish()).kind).toBe('stopped');
  });
});

describe('archiveSession over a recorded transcript', { timeout: 15_000 }, () => {
  it('archives the complete segment byte for byte as the server sent it, and reports it durable', async () => {
    const steps = transcripts['catchup-segment-boundary'];
    const r = await replay(steps, { reuseBuffer: true });
    const { boundary, end } = crossingMessage(steps, r.facts.segmentSize);
    const dir = tempDir();
    const consumer = new SegmentConsumer({
      sink: new DirectorySink(dir, { noSync: true }), segmentSize: r.facts.segmentSize, timeline: r.start.timeline,
      startLsn: r.start.startLsn, systemId: r.facts.identity.systemId,
    });
    const s = session(r, {
      endLsn: boundary + 1n, statusIntervalMs: 1000,
      positions: () => ({ writeLsn: consumer.writeLsn(), flushLsn: consumer.flushLsn() }),
    });
    const outcome = await archiveSession(s, consumer, { synchronous: false, reportFlush: true });
    expect(outcome).toEqual({ kind: 'endpos', receivedLsn: end });
    await consumer.close();

    const segment = walFileName(r.start.timeline, r.start.startLsn, r.facts.segmentSize);
    const complete = readFileSync(path.join(dir, segment));
    expectSameWal(complete, recordedWal(steps, r.start.startLsn, boundary));
    const partial = readFileSync(path.join(dir, `${walFileName(r.start.timeline, boundary, r.facts.segmentSize)}.partial`));
    expectSameWal(partial.subarray(0, Number(end - boundary)), recordedWal(steps, boundary, end));

    // The final status update, just before CopyDone, reports everything durable.
    const sent = r.transport.sent;
    const copyDone = sent.findIndex((m) => m.kind === 'copy-done');
    expect(sent[copyDone - 1]).toEqual({ kind: 'status', writeLsn: end, flushLsn: end, applyLsn: 0n, replyRequested: false });
    expect(afterCopyDone(sent)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------

describe('hostile transcripts (fast-check)', () => {
  /** Index of the first server step after the client's START_REPLICATION: mutations start there. */
  const streamingFrom = (steps: readonly TranscriptStep[]) =>
    steps.findIndex((s, i) => i > 0 && s.from === 'server' && steps.slice(0, i).some((c) => c.from === 'client' && c.bytes[0] === 0x51 && c.bytes.includes(Buffer.from('START_REPLICATION'))));

  /** A server step after START_REPLICATION with a byte flipped, a run cut out, or noise put in. */
  const mutation = (steps: readonly TranscriptStep[]) => {
    const first = streamingFrom(steps);
    const servers = steps.map((s, i) => i).filter((i) => i >= first && steps[i].from === 'server' && steps[i].bytes.length > 0);
    return fc.record({
      step: fc.constantFrom(...servers),
      at: fc.nat(),
      kind: fc.constantFrom('flip', 'cut', 'insert', 'truncate'),
      noise: fc.uint8Array({ minLength: 1, maxLength: 64 }),
      length: fc.integer({ min: 1, max: 4096 }),
    }).map(({ step, at, kind, noise, length }) => steps.map((s, i) => {
      if (i !== step) return s;
      const bytes = Buffer.from(s.bytes);
      const p = at % bytes.length;
      if (kind === 'flip') bytes[p] ^= noise[0] || 0xff;
      if (kind === 'cut') return { ...s, bytes: Buffer.concat([bytes.subarray(0, p), bytes.subarray(p + length)]) };
      if (kind === 'insert') return { ...s, bytes: Buffer.concat([bytes.subarray(0, p), Buffer.from(noise), bytes.subarray(p)]) };
      if (kind === 'truncate') return { ...s, bytes: bytes.subarray(0, p) };
      return { ...s, bytes };
    }));
  };

  it('300 mutated sessions each end with an outcome or a one-line WalstreamError/PgError, never after our CopyDone', async () => {
    const sources = [transcripts['timeline-switch'], transcripts['error-mid-stream'], transcripts['keepalive-reply']];
    const failures = new Map<string, number>();
    await fc.assert(fc.asyncProperty(fc.constantFrom(0, 1, 2).chain((k) => mutation(sources[k])), async (steps) => {
      const r = await replay(steps);
      const s = session(r, { timeoutMs: 300 }); // a mutation that leaves the reader waiting is a dead peer
      let ended: unknown;
      try {
        for await (const batch of s) void batch;
        ended = await s.finish();
      } catch (err) {
        ended = err;
      } finally {
        s.dispose();
      }
      if (ended instanceof Error) {
        expect(ended.constructor.name, String(ended.stack)).toMatch(/^(WalstreamError|PgError)$/);
        expect(ended.message).not.toMatch(/\n/);
        const code = (ended as { code?: string }).code ?? '?';
        failures.set(code, (failures.get(code) ?? 0) + 1);
      } else {
        expect(['timeline-end', 'endpos', 'stopped']).toContain((ended as StreamOutcome).kind);
      }
      expect(afterCopyDone(r.transport.sent).filter((m) => m.kind !== 'query')).toEqual([]);
    }), { numRuns: 300 });
    expect(failures.size, 'mutations must make some sessions fail').toBeGreaterThan(0);
  }, 120_000);
});
