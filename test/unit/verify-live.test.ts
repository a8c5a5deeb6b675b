/**
 * receive --verify's LiveVerifier on the fixtures (no server): segments offered as the Archiver's
 * 'segment' event would, read back from a sink. Sound segments pass with the chain carried across;
 * a damaged one fails naming the record; one arriving while another waits replaces it (skipped).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LiveVerifier, type SegmentVerdict } from '../../src/walfile/live.js';
import type { WalSink } from '../../src/archive/sink.js';

const fixtures = fileURLToPath(new URL('../../fixtures/wal/', import.meta.url));
const MB = 1n << 20n;

/** A read-only sink over the fixtures, with some bytes optionally flipped, and a count of reads. */
function sink(flip?: { name: string; at: number }): WalSink & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    list: async () => [],
    readHead: async () => null,
    readFile: async (name: string) => {
      reads.push(name);
      const bytes = readFileSync(path.join(fixtures, name));
      if (flip?.name === name) bytes[flip.at] ^= 0x04;
      return bytes;
    },
    openSegment: () => { throw new Error('read-only'); },
    writeFile: async () => {},
  };
}

const segment = (segno: bigint, timeline = 1) => ({ name: `0000000${timeline}00000000000000${segno.toString(16).toUpperCase().padStart(2, '0')}`, timeline, startLsn: segno * MB, endLsn: (segno + 1n) * MB });

describe('LiveVerifier', () => {
  it('checks each segment offered, one at a time, carrying the record chain across', async () => {
    const verdicts: SegmentVerdict[] = [];
    const s = sink();
    const v = new LiveVerifier(s, '', (r) => verdicts.push(r));
    for (const n of [7n, 8n, 9n]) {
      v.offer(segment(n));
      await v.whenIdle();
    }
    v.offer(segment(10n, 2));
    await v.whenIdle();
    expect(verdicts).toEqual(['000000010000000000000007', '000000010000000000000008', '000000010000000000000009', '00000002000000000000000A']
      .map((name) => ({ name, ok: true, problems: [], skipped: false })));
  });

  it('fails a flipped byte naming the record, and reports a waiting segment replaced by a newer one as skipped', async () => {
    const verdicts: SegmentVerdict[] = [];
    const s = sink({ name: '000000010000000000000009', at: 700_000 });
    const v = new LiveVerifier(s, '', (r) => verdicts.push(r));
    v.offer(segment(7n)); // checked at once
    v.offer(segment(8n)); // waits
    v.offer(segment(9n)); // replaces 8
    await v.whenIdle();
    expect(verdicts.map((r) => [r.name, r.ok, r.skipped])).toEqual([
      ['000000010000000000000008', true, true],
      ['000000010000000000000007', true, false],
      ['000000010000000000000009', false, false],
    ]);
    expect(verdicts[2]!.problems[0]).toMatch(/^record at 0\/9A[0-9A-F]{4} .*CRC-32C/);
    expect(s.reads).toEqual(['000000010000000000000007', '000000010000000000000009']);
  });
});
