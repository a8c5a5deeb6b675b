/**
 * verify's WebAssembly loops (src/walfile/wal-wasm.ts, wal-check.c) against the TypeScript ones:
 * the same CRC-32C at every length and alignment, and the same walk of every fixture segment, intact
 * and with a byte flipped, whether the segment is in the module's memory or in an ordinary Buffer.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32cRange, crc32cTs } from '../../src/walfile/crc32c.js';
import * as walWasm from '../../src/walfile/wal-wasm.js';
import { inModule, segmentBuffers } from '../../src/walfile/wal-wasm.js';
import { type WalkContext, type WalkResult, walkSegment } from '../../src/walfile/walker.js';

const fixtures = fileURLToPath(new URL('../../fixtures/wal/', import.meta.url));
const SEGMENT = 1 << 20;

/** Walk `data` as segment `name` (timeline 1 fixtures, from a fresh start) with a context of its own. */
function walk(name: string, data: Uint8Array): { result: WalkResult; records: number } {
  let records = 0;
  const ctx: WalkContext = { credit: (_file, n) => { records += n; } };
  const result = walkSegment({ fileName: name, timeline: 1, segno: BigInt(parseInt(name.slice(16, 24), 16)), segmentSize: SEGMENT, data, partial: name.endsWith('.partial') }, ctx, null);
  return { result, records };
}

describe('verify in WebAssembly', () => {
  const buffers = segmentBuffers(SEGMENT, 2);

  it('gets its two segment buffers in the module memory', () => {
    expect(buffers).not.toBeNull();
    expect(inModule(buffers![0])).toBe(true);
    expect(inModule(buffers![1])).toBe(true);
    expect(inModule(Buffer.alloc(16))).toBe(false);
    expect(buffers![0].buffer).toBe(buffers![1].buffer);
  });

  it('computes the same CRC-32C as the TypeScript table at every length and alignment', () => {
    const target = buffers![0];
    for (let i = 0; i < 70_000; i++) target[i] = (i * 2654435761) >>> 23;
    target.set(Buffer.from('123456789'), 3);
    expect(crc32cRange(target, 3, 12)).toBe(0xe3069283); // the check value
    const plain = Buffer.from(target.subarray(0, 70_000));
    for (const start of [0, 1, 2, 3, 5, 8, 13]) {
      for (const length of [0, 1, 3, 7, 8, 9, 15, 16, 17, 20, 24, 100, 383, 384, 1023, 1024, 1025, 8192, 65_000]) {
        const expected = crc32cTs(plain.subarray(start, start + length), 0x1234567);
        expect(crc32cRange(target, start, start + length, 0x1234567)).toBe(expected);
      }
    }
  });

  it('walks every fixture segment as TypeScript does, intact and with a flipped byte', () => {
    const names = ['000000010000000000000007', '000000010000000000000008', '000000010000000000000009', '00000001000000000000000A.partial'];
    let flipsFailed = 0;
    let pagesInModule = 0;
    for (const name of names) {
      const bytes = readFileSync(path.join(fixtures, name));
      const target = buffers![1].subarray(0, bytes.length);
      target.set(bytes);
      const walkedBefore = walWasm.modulePagesWalked;
      const inWasm = walk(name, target);
      pagesInModule += walWasm.modulePagesWalked - walkedBefore;
      const inTs = walk(name, bytes);
      expect(inWasm).toEqual(inTs);
      expect(inWasm.result.problem).toBeNull();
      expect(inWasm.records).toBeGreaterThan(0);
      for (let k = 1; k <= 12; k++) {
        const at = Math.floor((bytes.length * k) / 13) + 100; // inside records, pages apart
        const flipped = Buffer.from(bytes);
        flipped[at] ^= 0x10;
        target.set(flipped);
        const a = walk(name, target);
        const b = walk(name, flipped);
        expect(a).toEqual(b);
        if (a.result.problem !== null) flipsFailed++;
      }
    }
    expect(flipsFailed).toBeGreaterThan(20); // the flips land in WAL the walk checks (most of each segment)
    // Most pages of the intact walks went through the module (segment 8 ends early, at its XLOG_SWITCH).
    expect(pagesInModule).toBeGreaterThan((3 * SEGMENT) / 8192 / 2);
  });
});
