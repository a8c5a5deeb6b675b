/**
 * verify's inner loops as WebAssembly: CRC-32C and the run of whole records on a page (wal-check.c,
 * beside this file), over segment buffers that live in the module's memory. Why: walking an archive
 * is a run from a cold start (one command), where the JavaScript loops spend a good part of the walk
 * unoptimized or deoptimized, and each native CRC call costs a view and a crossing; WebAssembly is
 * compiled before the first call and reads the segment in place. Built with clang 14:
 *
 *   clang --target=wasm32 -O3 -nostdlib -ffreestanding -Wl,--no-entry -Wl,--export=__heap_base \
 *     -o wal-check.wasm src/walfile/wal-check.c
 *
 * (sha256 of the module: 3b24664819783bead6f22f87d350720bf28f33624016c9ebf279d7dc24a63ca3). Without WebAssembly
 * (or for segments over MAX_SEGMENT) the same loops run in TypeScript.
 */

const WASM = 'AGFzbQEAAAABHARgAABgA39/fwF/YAl/f39/f39/f38Bf2AAAX8DBwYAAQECAwMEBQFwAQEBBQMBAAIGDwJ/AUGQyAQLfwBBkMgECwdOBwZtZW1vcnkCAARpbml0AAADY3JjAAENd2hvbGVfcmVjb3JkcwADC3J1bl9yZWNvcmRzAAQIcnVuX2xhc3QABQtfX2hlYXBfYmFzZQMBCroMBosEAQR/QQAhAEGAiICAACEBA0AgASAAQQF2IgJB+PbYl3hzIAIgAEEBcRsiAkEBdiIDQfj22Jd4cyADIAJBAXEbIgJBAXYiA0H49tiXeHMgAyACQQFxGyICQQF2IgNB+PbYl3hzIAMgAkEBcRsiAkEBdiIDQfj22Jd4cyADIAJBAXEbIgJBAXYiA0H49tiXeHMgAyACQQFxGyICQQF2IgNB+PbYl3hzIAMgAkEBcRsiAkEBdiIDQfj22Jd4cyADIAJBAXEbNgIAIAFBBGohASAAQQFqIgBBgAJHDQALQQAhAANAIABBgJCAgABqIABBgIiAgABqKAIAIgFBCHYgAUH/AXFBAnRBgIiAgABqKAIAcyIBNgIAIABBgJiAgABqIAFBCHYgAUH/AXFBAnRBgIiAgABqKAIAcyIBNgIAIABBgKCAgABqIAFBCHYgAUH/AXFBAnRBgIiAgABqKAIAcyIBNgIAIABBgKiAgABqIAFBCHYgAUH/AXFBAnRBgIiAgABqKAIAcyIBNgIAIABBgLCAgABqIAFBCHYgAUH/AXFBAnRBgIiAgABqKAIAcyIBNgIAIABBgLiAgABqIAFBCHYgAUH/AXFBAnRBgIiAgABqKAIAcyIBNgIAIABBgMCAgABqIAFBCHYgAUH/AXFBAnRBgIiAgABqKAIAczYCACAAQQRqIgBBgAhHDQALCxQAIAJBf3MgACABEIKAgIAAQX9zC5IFAQJ/AkAgAkUNACABQQNxRQ0AIABB/wFxIAEtAABzQQJ0QYCIgIAAaigCACAAQQh2cyEAIAFBAWohAwJAIAJBf2oiBEUNACADQQNxRQ0AIABB/wFxIAEtAAFzQQJ0QYCIgIAAaigCACAAQQh2cyEAIAFBAmohAwJAIAJBfmoiBEUNACADQQNxRQ0AIABB/wFxIAEtAAJzQQJ0QYCIgIAAaigCACAAQQh2cyEAIAFBA2ohAwJAIAJBfWoiBEUNACADQQNxRQ0AIABB/wFxIAEtAANzQQJ0QYCIgIAAaigCACAAQQh2cyEAIAJBfGohAiABQQRqIQEMAwsgBCECIAMhAQwCCyAEIQIgAyEBDAELIAQhAiADIQELAkAgAkEISQ0AA0AgASgAACAAcyIAQQZ2QfwHcUGAuICAAGooAgAgAEH/AXFBAnRBgMCAgABqKAIAcyAAQQ52QfwHcUGAsICAAGooAgBzIABBFnZB/AdxQYCogIAAaigCAHMgAUEEaigAACIAQf8BcUECdEGAoICAAGooAgBzIABBBnZB/AdxQYCYgIAAaigCAHMgAEEOdkH8B3FBgJCAgABqKAIAcyAAQRZ2QfwHcUGAiICAAGooAgBzIQAgAUEIaiEBIAJBeGoiAkEHSw0ACwsCQCACRQ0AAkACQCACQQFxDQAgAiEDDAELIABB/wFxIAEtAABzQQJ0QYCIgIAAaigCACAAQQh2cyEAIAFBAWohASACQX9qIQMLIAJBAUYNAANAIABB/wFxIAEtAABzQQJ0QYCIgIAAaigCACAAQQh2cyIAQf8BcSABQQFqLQAAc0ECdEGAiICAAGooAgAgAEEIdnMhACABQQJqIQEgA0F+aiIDDQALCyAAC+kCAgJ+BH8CQAJAIAGtIglCBHwgAq0iClYNACAAIAFqIgIoAAAiC0EYSQ0AIAEgB04NACAJIAutfCAKVg0AQQAhDEEAIQ0CQANAIAEhDgJAIAIoAAggA0YNACAOIQEMBAsCQCACKAAMIARGDQAgDiEBDAQLAkAgAigAFEF/IAJBGGogC0FoahCCgICAACACQRQQgoCAgABBf3NGDQAgDiEBDAQLAkAgDiALakEHakF4cSIBIAdMDQAgDiEBDAQLAkAgASAIRw0AIA4hAQwECwJAIAItABENACACLQAQQfABcUHAAEcNACAOIQEMBAsCQCABrSIJQgSEIApWDQAgDUEBaiENIAAgAWoiAigAACILQRhJDQIgASAHTg0CIA4gBWohAyAOIQwgBiEEIAkgC618IApWDQQMAQsLIA1BAWohDQsgDiEMDAELQQAhDEEAIQ0LQQAgDDYChMiAgABBACANNgKAyICAACABCwsAQQAoAoDIgIAACwsAQQAoAoTIgIAACwBeBG5hbWUBQwYABGluaXQBA2NyYwIHY3JjX3JhdwMNd2hvbGVfcmVjb3JkcwQPZ2V0X3J1bl9yZWNvcmRzBQxnZXRfcnVuX2xhc3QHEgEAD19fc3RhY2tfcG9pbnRlcgAtCXByb2R1Y2VycwEMcHJvY2Vzc2VkLWJ5AQxEZWJpYW4gY2xhbmcGMTQuMC42';

/** Largest segment whose buffers go into the module's memory (two of them). */
const MAX_SEGMENT = 64 << 20;
const WASM_PAGE = 65536;

interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  init(): void;
  crc(pointer: number, length: number, previous: number): number;
  whole_records(d: number, pos: number, pageEnd: number, prevLo: number, prevHi: number, segLo: number, segHi: number, endsAt: number, boundaryAt: number): number;
  run_records(): number;
  run_last(): number;
}

let instance: Exports | null | undefined;
/** The module's memory buffer while segment buffers are handed out (a view into it takes the fast path). */
let owned: ArrayBufferLike | null = null;
let buffers: [Buffer, Buffer] | null = null;

function load(): Exports | null {
  if (instance !== undefined) return instance;
  try {
    const exports = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(WASM, 'base64')), {}).exports as unknown as Exports;
    exports.init();
    instance = exports;
  } catch {
    instance = null;
  }
  return instance;
}

/**
 * Two reusable buffers of at least `size` bytes in the module's memory, for reading segments into;
 * null when WebAssembly is not at hand or `size` is over MAX_SEGMENT (read into ordinary Buffers then).
 * The same two are returned on later calls for sizes that fit.
 */
export function segmentBuffers(size: number): [Buffer, Buffer] | null {
  if (buffers !== null && buffers[0].length >= size) return buffers;
  if (buffers !== null || size > MAX_SEGMENT) return null; // growing would detach the views handed out
  const x = load();
  if (x === null) return null;
  const capacity = Math.max(size, 16 << 20);
  const base = Math.ceil(((x.__heap_base.value as number) + 7) / 8) * 8;
  const need = base + 2 * capacity;
  const have = x.memory.buffer.byteLength;
  if (need > have) x.memory.grow(Math.ceil((need - have) / WASM_PAGE));
  owned = x.memory.buffer;
  buffers = [Buffer.from(owned, base, capacity), Buffer.from(owned, base + capacity, capacity)];
  return buffers;
}

/** Whether `data` is a view into the module's memory (then crc/wholeRecords below apply). */
export function inModule(data: Uint8Array): boolean {
  return owned !== null && data.buffer === owned;
}

/** CRC-32C of data[start, end) continuing from `previous`, as crc32cRange(); `data` must be inModule(). */
export function moduleCrc(data: Uint8Array, start: number, end: number, previous: number): number {
  return instance!.crc(data.byteOffset + start, end - start, previous) >>> 0;
}

/** What moduleWholeRecords() passed: how many records, and the offset of the last. */
export const moduleRun = { records: 0, last: 0 };

/** walker.ts wholeRecords() in the module; `d` must be inModule(). Sets moduleRun. */
export function moduleWholeRecords(d: Uint8Array, pos: number, pageEnd: number, prevLo: number, prevHi: number, segLo: number, segHi: number, endsAt: number, boundaryAt: number): number {
  const x = instance!;
  const base = d.byteOffset;
  const ends = endsAt >= 0x7fffffff ? 0x7fffffff : endsAt < 0 ? -1 : endsAt;
  const next = x.whole_records(base, pos, pageEnd, prevLo, prevHi, segLo, segHi, ends, boundaryAt);
  moduleRun.records = x.run_records();
  moduleRun.last = x.run_last();
  return next;
}
