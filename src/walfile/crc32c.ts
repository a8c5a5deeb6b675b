/**
 * CRC-32C (Castagnoli), the checksum PostgreSQL puts on every WAL record (port/pg_crc32c.h:
 * INIT_CRC32C is 0xFFFFFFFF, FIN_CRC32C inverts, reflected polynomial 0x82F63B78). `@node-rs/crc32`
 * computes it natively (SSE4.2 / ARMv8 CRC instructions) when its prebuilt binary loads; a pure
 * TypeScript slicing-by-8 table stands in otherwise, and for short inputs, where a native call costs
 * more than the arithmetic.
 */
import { createRequire } from 'node:module';
import { inModule, moduleCrc, useNativeCrc } from './wal-wasm.js';

type Crc = (data: Uint8Array, previous?: number) => number;

/** Reflected CRC-32C polynomial. */
const POLY = 0x82f63b78;
/** Slicing-by-16 tables: TABLES[s * 256 + b] is the CRC of byte b followed by s zero bytes. Int32: the loop stays in small integers. */
const TABLES = (() => {
  const t = new Int32Array(16 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 16; s++) t[s * 256 + i] = (t[(s - 1) * 256 + i] >>> 8) ^ t[t[(s - 1) * 256 + i] & 0xff];
  }
  return t;
})();

/** CRC-32C of `data` in TypeScript; `previous` is the CRC of what came before (0 to start), as in crc32c(). */
export function crc32cTs(data: Uint8Array, previous = 0): number {
  return tableCrc(data, 0, data.length, previous);
}

/** A 32-bit view of the last buffer seen, so 4-byte-aligned stretches are read a word at a time (little-endian hosts). */
let wordsOf: Uint8Array | null = null;
let words: Int32Array | null = null;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

function wordView(data: Uint8Array): Int32Array | null {
  if (data === wordsOf) return words;
  if (data.length < 4096) return null; // a record header: bytes will do, and the segment's view stays cached
  wordsOf = data;
  words = LITTLE_ENDIAN && (data.byteOffset & 3) === 0 ? new Int32Array(data.buffer, data.byteOffset, data.length >>> 2) : null;
  return words;
}

/** The table loop over data[start, end): slicing-by-16 over whole words, bytes at the edges; no subarray (a view costs more than 20 bytes of arithmetic). */
function tableCrc(data: Uint8Array, start: number, end: number, previous: number): number {
  const t = TABLES;
  let crc = ~previous;
  let i = start;
  for (; i < end && (i & 3) !== 0; i++) crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  const w = end - i >= 16 ? wordView(data) : null;
  if (w !== null) {
    for (const end16 = end - ((end - i) & 15); i < end16; i += 16) {
      const j = i >> 2;
      const a = crc ^ w[j];
      const b = w[j + 1];
      const c = w[j + 2];
      const e = w[j + 3];
      crc = t[3840 + (a & 0xff)] ^ t[3584 + ((a >>> 8) & 0xff)] ^ t[3328 + ((a >>> 16) & 0xff)] ^ t[3072 + (a >>> 24)]
        ^ t[2816 + (b & 0xff)] ^ t[2560 + ((b >>> 8) & 0xff)] ^ t[2304 + ((b >>> 16) & 0xff)] ^ t[2048 + (b >>> 24)]
        ^ t[1792 + (c & 0xff)] ^ t[1536 + ((c >>> 8) & 0xff)] ^ t[1280 + ((c >>> 16) & 0xff)] ^ t[1024 + (c >>> 24)]
        ^ t[768 + (e & 0xff)] ^ t[512 + ((e >>> 8) & 0xff)] ^ t[256 + ((e >>> 16) & 0xff)] ^ t[e >>> 24];
    }
    for (; end - i >= 4; i += 4) {
      const a = crc ^ w[i >> 2];
      crc = t[768 + (a & 0xff)] ^ t[512 + ((a >>> 8) & 0xff)] ^ t[256 + ((a >>> 16) & 0xff)] ^ t[a >>> 24];
    }
  } else {
    for (const end8 = end - ((end - i) & 7); i < end8; i += 8) {
      const lo = crc ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24));
      crc = t[1792 + (lo & 0xff)] ^ t[1536 + ((lo >>> 8) & 0xff)] ^ t[1280 + ((lo >>> 16) & 0xff)] ^ t[1024 + (lo >>> 24)]
        ^ t[768 + data[i + 4]] ^ t[512 + data[i + 5]] ^ t[256 + data[i + 6]] ^ t[data[i + 7]];
    }
  }
  for (; i < end; i++) crc = t[(crc ^ data[i]) & 0xff] ^ (crc >>> 8);
  return ~crc >>> 0;
}

function loadNative(): Crc | null {
  if (process.env.WALSTREAM_CRC32C === 'ts') return null;
  try {
    const mod = createRequire(import.meta.url)('@node-rs/crc32') as { crc32c: (input: Uint8Array, initial?: number) => number };
    const fn = mod.crc32c;
    // The check value every CRC-32C implementation gives for "123456789".
    if (fn(Buffer.from('123456789')) !== 0xe3069283) return null;
    return (data, previous = 0) => fn(data, previous) >>> 0;
  } catch {
    return null;
  }
}

const native = loadNative();
if (native !== null) useNativeCrc(native);

/** Below this many bytes the table beats a native call (measured: a native call and its view cost ~250 ns; the table runs ~930 MiB/s at 128-256 bytes, native ~650 at 256, ~1070 at 512). */
const NATIVE_FROM = 384;

/** The same for bytes in the WebAssembly module's memory (wal-wasm.ts), whose table loop is faster than TypeScript's. */
const NATIVE_FROM_MODULE = 1024;

/** Which implementation crc32c() uses for long inputs: 'native' (@node-rs/crc32) or 'ts'. */
export const crc32cImplementation: 'native' | 'ts' = native ? 'native' : 'ts';

/**
 * CRC-32C of `data`, continuing from `previous` (the value returned for the bytes before it; 0 to
 * start), so crc32c(b, crc32c(a)) === crc32c(a ‖ b). Returns an unsigned 32-bit number.
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  return crc32cRange(data, 0, data.length, previous);
}

/** crc32c() of data[start, end), without making a view of short ranges. */
export function crc32cRange(data: Uint8Array, start: number, end: number, previous = 0): number {
  if (inModule(data)) return native !== null && end - start >= NATIVE_FROM_MODULE ? native(data.subarray(start, end), previous) : moduleCrc(data, start, end, previous);
  return native !== null && end - start >= NATIVE_FROM ? native(data.subarray(start, end), previous) : tableCrc(data, start, end, previous);
}
