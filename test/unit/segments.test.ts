/**
 * The overlapped fsync never reports flush for bytes that are not durable (issue 6, acceptance 5).
 * A sink whose sync/close complete only when the test says so lets us look at flushLsn() at every step,
 * including completions that finish out of order.
 */
import { describe, expect, it } from 'vitest';
import { SegmentConsumer } from '../../src/segments.js';
import type { CloseMode, WalSegmentWriter, WalSink } from '../../src/archive/sink.js';

const SEG = 1 << 20;
// The pieces fed here are not WAL: these tests are about flush positions (page checks: page-check.test.ts).

interface Pending { resolve: () => void; kind: 'sync' | CloseMode; segment: string; coversEnd: bigint }

/** A sink whose durability the test controls: nothing is durable until the test releases it. */
class ControlledSink implements WalSink {
  readonly pending: Pending[] = [];
  /** Whether its writers say they write directly (O_DIRECT-like: mid-segment syncs rate-limited). */
  writesDirect = false;
  /** Whether its writes return a promise (settled on the next turn), like a remote sink's. */
  asyncWrites = false;
  /** Durable end per segment name (absolute LSN), as the test released it. */
  readonly durable = new Map<string, bigint>();
  readonly starts = new Map<string, bigint>();
  readonly written = new Map<string, number>();
  renamed: string[] = [];
  async list() { return []; }
  async readHead() { return null; }
  async writeFile() {}
  openSegment(name: string): WalSegmentWriter {
    const start = BigInt(parseInt(name.slice(16), 16)) * BigInt(SEG) + BigInt(parseInt(name.slice(8, 16), 16)) * 0x100000000n;
    this.starts.set(name, start);
    this.written.set(name, 0);
    const defer = (kind: Pending['kind']) => new Promise<void>((resolve) => {
      const coversEnd = start + BigInt(this.written.get(name)!);
      this.pending.push({ kind, segment: name, coversEnd, resolve: () => {
        this.durable.set(name, coversEnd);
        if (kind === 'complete') this.renamed.push(name);
        resolve();
      } });
    });
    return {
      write: (data) => {
        this.written.set(name, this.written.get(name)! + data.length);
        return this.asyncWrites ? new Promise<void>((r) => setImmediate(r)) : undefined;
      },
      sync: () => defer('sync'),
      close: (mode) => defer(mode),
      writesDirect: this.writesDirect,
    };
  }
  /** The contiguous durable prefix from `from`: what an honest flush position may be. */
  durablePrefix(from: bigint): bigint {
    let end = from;
    for (;;) {
      const name = [...this.starts.entries()].find(([, s]) => s === end - (end % BigInt(SEG)))?.[0];
      if (!name) return end;
      const durable = this.durable.get(name) ?? this.starts.get(name)!;
      if (durable <= end) return end;
      end = durable;
      if (end % BigInt(SEG) !== 0n) return end;
    }
  }
  release(index: number) {
    const [p] = this.pending.splice(index, 1);
    p.resolve();
  }
}

const tick = () => new Promise((r) => setImmediate(r));

describe('SegmentConsumer durability', () => {
  it('advances flush only over what fsync confirmed, also when completions finish out of order', async () => {
    const start = 5n * BigInt(SEG);
    const sink = new ControlledSink();
    const completed: string[] = [];
    const consumer = new SegmentConsumer({ checkPages: false, sink, segmentSize: SEG, timeline: 1, startLsn: start, onSegment: (s) => completed.push(s.name), maxPendingCompletions: 4 });
    const honest = () => expect(consumer.flushLsn()).toBeLessThanOrEqual(sink.durablePrefix(start));

    // 2.5 segments in 64 kB pieces: two completions start in the background, nothing is durable yet.
    const piece = new Uint8Array(64 * 1024);
    let position = start;
    for (let i = 0; i < 40; i++) {
      const r = consumer.onData(position, piece);
      expect(r).toBeUndefined(); // a synchronous sink and few pending completions: no waiting
      position += BigInt(piece.length);
      honest();
    }
    expect(consumer.writeLsn()).toBe(start + 40n * 65536n);
    expect(consumer.flushLsn()).toBe(start);
    expect(sink.pending.map((p) => `${p.kind}:${p.segment}`)).toEqual(['complete:000000010000000000000005', 'complete:000000010000000000000006']);

    // The second segment's fsync finishes first: flush must not move past the first, still unsynced.
    sink.release(1);
    await tick();
    honest();
    expect(consumer.flushLsn()).toBe(start);
    expect(completed).toEqual([]);

    // A flush request now has to wait for the first completion and a sync of the current segment.
    let flushed = false;
    const flushing = consumer.flush().then(() => { flushed = true; });
    await tick();
    expect(flushed).toBe(false);
    honest();

    sink.release(0); // first segment durable → flush jumps over both completed segments
    await tick();
    honest();
    expect(consumer.flushLsn()).toBe(start + 2n * BigInt(SEG));
    expect(completed).toEqual(['000000010000000000000005', '000000010000000000000006']);
    expect(flushed).toBe(false);

    // More data arrives while the current segment's fsync is in flight: it is not covered by that fsync.
    await tick();
    const syncIndex = sink.pending.findIndex((p) => p.kind === 'sync');
    expect(syncIndex).toBeGreaterThanOrEqual(0);
    consumer.onData(position, piece);
    position += BigInt(piece.length);
    sink.release(syncIndex);
    await flushing;
    honest();
    expect(consumer.flushLsn()).toBe(start + 40n * 65536n); // what was written when flush() was asked
    expect(consumer.flushLsn()).toBeLessThan(consumer.writeLsn());

    // close(): the segment in progress is kept as .partial, durable; then flush equals write.
    const closing = consumer.close();
    await tick();
    const last = sink.pending.findIndex((p) => p.kind === 'partial');
    expect(last).toBeGreaterThanOrEqual(0);
    expect(consumer.flushLsn()).toBeLessThan(consumer.writeLsn());
    sink.release(last);
    await closing;
    expect(consumer.flushLsn()).toBe(consumer.writeLsn());
    honest();
  });

  it('early background fsyncs move flush only to what they covered, and not past an unsynced segment', async () => {
    const sink = new ControlledSink();
    const consumer = new SegmentConsumer({ checkPages: false, sink, segmentSize: SEG, timeline: 1, startLsn: 0n, earlySyncBytes: 128 * 1024 });
    const honest = () => expect(consumer.flushLsn()).toBeLessThanOrEqual(sink.durablePrefix(0n));
    const piece = new Uint8Array(64 * 1024);
    consumer.onData(0n, piece);
    consumer.onData(65536n, piece); // 128 kB written: an early sync starts
    expect(sink.pending.map((p) => p.kind)).toEqual(['sync']);
    consumer.onData(131072n, piece); // written after the sync started: not covered by it
    sink.release(0);
    await tick();
    honest();
    expect(consumer.flushLsn()).toBe(131072n);

    // Fill the segment and start the next: an early sync of segment 2 that finishes while segment 1's
    // completion is still pending must not move flush.
    let position = 196608n;
    const syncOn = (seg: string) => sink.pending.findIndex((p) => p.kind === 'sync' && p.segment.endsWith(seg));
    while (syncOn('1') < 0) {
      consumer.onData(position, piece);
      position += 65536n;
      if (syncOn('0') >= 0) sink.release(syncOn('0')); // earlier syncs of segment 1 finish at once
      await tick();
      honest();
    }
    const kinds = sink.pending.map((p) => `${p.kind}:${p.segment.slice(-1)}`);
    expect(kinds).toContain('complete:0');
    expect(kinds).toContain('sync:1');
    sink.release(sink.pending.findIndex((p) => p.kind === 'sync' && p.segment.endsWith('1')));
    await tick();
    honest();
    expect(consumer.flushLsn()).toBeLessThan(BigInt(SEG));
    sink.release(sink.pending.findIndex((p) => p.kind === 'complete'));
    await tick();
    honest();
    expect(consumer.flushLsn()).toBe(BigInt(SEG));
  });

  /**
   * Nearly one segment in 32 kB pieces, early syncs every 64 kB asked for; every sync is released as it
   * starts. Returns how many ran and the consumer; checks after each piece that flush is honest.
   */
  async function streamOneSegment(sink: ControlledSink): Promise<{ synced: number; consumer: SegmentConsumer }> {
    const consumer = new SegmentConsumer({ checkPages: false, sink, segmentSize: SEG, timeline: 1, startLsn: 0n, earlySyncBytes: 64 * 1024 });
    const piece = new Uint8Array(32 * 1024);
    let synced = 0;
    for (let position = 0n; position < BigInt(SEG) - 32n * 1024n; position += 32n * 1024n) {
      await consumer.onData(position, piece);
      for (let i = sink.pending.length - 1; i >= 0; i--) if (sink.pending[i]!.kind === 'sync') { sink.release(i); synced++; }
      await tick();
      expect(consumer.flushLsn()).toBeLessThanOrEqual(sink.durablePrefix(0n));
    }
    return { synced, consumer };
  }

  it('with a sink whose writes are asynchronous, early fsyncs happen too and move flush honestly', async () => {
    const sink = new ControlledSink();
    sink.asyncWrites = true;
    const { synced, consumer } = await streamOneSegment(sink);
    expect(synced).toBeGreaterThanOrEqual(10); // every 64 kB
    expect(consumer.flushLsn()).toBeGreaterThan(BigInt(SEG) / 2n); // flush moved mid-segment
  });

  it('with a direct-writing sink, mid-segment syncs come at most once a second however fast WAL arrives', async () => {
    const syncs = async (writesDirect: boolean) => {
      const sink = new ControlledSink();
      sink.writesDirect = writesDirect;
      return (await streamOneSegment(sink)).synced;
    };
    expect(await syncs(false)).toBeGreaterThanOrEqual(10); // every 64 kB
    expect(await syncs(true)).toBe(1); // the first, then none within the second
  });

  it('makes the receiver wait when too many completions are pending (bounded memory)', async () => {
    const sink = new ControlledSink();
    const consumer = new SegmentConsumer({ checkPages: false, sink, segmentSize: SEG, timeline: 1, startLsn: 0n, maxPendingCompletions: 2 });
    const whole = new Uint8Array(SEG);
    expect(consumer.onData(0n, whole)).toBeUndefined();
    expect(consumer.onData(BigInt(SEG), whole)).toBeUndefined();
    const third = consumer.onData(2n * BigInt(SEG), whole);
    expect(third).toBeInstanceOf(Promise);
    let resolved = false;
    void (third as Promise<void>).then(() => { resolved = true; });
    await tick();
    expect(resolved).toBe(false);
    sink.release(0);
    await tick();
    expect(resolved).toBe(true);
  });

  it('flushNow (synchronous mode) syncs at once only when nothing is pending, else defers to flush()', async () => {
    const sink = new ControlledSink();
    let syncedNow = 0;
    const open = sink.openSegment.bind(sink);
    sink.openSegment = (name: string) => ({ ...open(name), syncNow: () => { syncedNow++; sink.durable.set(name, sink.starts.get(name)! + BigInt(sink.written.get(name)!)); } });
    const consumer = new SegmentConsumer({ checkPages: false, sink, segmentSize: SEG, timeline: 1, startLsn: 0n, earlySyncBytes: 0 });
    consumer.onData(0n, new Uint8Array(1000));
    expect(consumer.flushNow()).toBe(true);
    expect(syncedNow).toBe(1);
    expect(consumer.flushLsn()).toBe(1000n);
    consumer.onData(1000n, new Uint8Array(SEG)); // completes segment 0 (pending) and writes into segment 1
    expect(consumer.flushNow()).toBe(false); // a completion is still pending: not durable yet
    expect(consumer.flushLsn()).toBe(1000n);
    sink.release(0);
    await tick();
    expect(consumer.flushLsn()).toBe(BigInt(SEG));
    expect(consumer.flushNow()).toBe(true);
    expect(consumer.flushLsn()).toBe(BigInt(SEG) + 1000n);
  });

  it('refuses WAL that does not start a segment at offset 0', () => {
    const consumer = new SegmentConsumer({ checkPages: false, sink: new ControlledSink(), segmentSize: SEG, timeline: 1, startLsn: 100n });
    expect(() => consumer.onData(100n, new Uint8Array(10))).toThrow(/offset 100 of its segment/);
  });
});
