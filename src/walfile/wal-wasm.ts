/**
 * verify's inner loops as WebAssembly (wal-check.c, beside this file): CRC-32C and the walk of whole
 * ordinary pages, over segment buffers that live in the module's memory. Why: walking an archive is a
 * run from a cold start (one command), where the JavaScript loops spend a good part of the walk
 * unoptimized or deoptimized, and each native CRC call costs a view and a crossing; WebAssembly is
 * compiled before the first call and reads the segment in place. Built with clang 14:
 *
 *   clang --target=wasm32 -O3 -nostdlib -ffreestanding -Wl,--no-entry -Wl,--export=__heap_base \
 *     -Wl,--allow-undefined -o wal-check.wasm src/walfile/wal-check.c
 *
 * (sha256 of the module: 8b0dd6b8c6b8a75c3bfc2a7e5757c8d8a7451a21bf2774b9ceeaa48937507fcc). Without WebAssembly
 * (or for segments over MAX_SEGMENT) the same loops run in TypeScript.
 */

const WASM = 'AGFzbQEAAAABIgVgA39/fwF/YAAAYAABf2ABfwBgC39/f39/f39/f39/AX8CEgEDZW52Cm5hdGl2ZV9jcmMAAAMHBgEAAAIDBAQFAXABAQEFAwEAAgYPAn8BQcDIBAt/AEHAyAQLB0cHBm1lbW9yeQIABGluaXQAAQNjcmMAAgVzdGF0ZQAECnNldF9uYXRpdmUABQp3YWxrX3BhZ2VzAAYLX19oZWFwX2Jhc2UDAQqAFgaLBAEEf0EAIQBBgIiAgAAhAQNAIAEgAEEBdiICQfj22Jd4cyACIABBAXEbIgJBAXYiA0H49tiXeHMgAyACQQFxGyICQQF2IgNB+PbYl3hzIAMgAkEBcRsiAkEBdiIDQfj22Jd4cyADIAJBAXEbIgJBAXYiA0H49tiXeHMgAyACQQFxGyICQQF2IgNB+PbYl3hzIAMgAkEBcRsiAkEBdiIDQfj22Jd4cyADIAJBAXEbIgJBAXYiA0H49tiXeHMgAyACQQFxGzYCACABQQRqIQEgAEEBaiIAQYACRw0AC0EAIQADQCAAQYCQgIAAaiAAQYCIgIAAaigCACIBQQh2IAFB/wFxQQJ0QYCIgIAAaigCAHMiATYCACAAQYCYgIAAaiABQQh2IAFB/wFxQQJ0QYCIgIAAaigCAHMiATYCACAAQYCggIAAaiABQQh2IAFB/wFxQQJ0QYCIgIAAaigCAHMiATYCACAAQYCogIAAaiABQQh2IAFB/wFxQQJ0QYCIgIAAaigCAHMiATYCACAAQYCwgIAAaiABQQh2IAFB/wFxQQJ0QYCIgIAAaigCAHMiATYCACAAQYC4gIAAaiABQQh2IAFB/wFxQQJ0QYCIgIAAaigCAHMiATYCACAAQYDAgIAAaiABQQh2IAFB/wFxQQJ0QYCIgIAAaigCAHM2AgAgAEEEaiIAQYAIRw0ACwsUACACQX9zIAAgARCDgICAAEF/cwuSBQECfwJAIAJFDQAgAUEDcUUNACAAQf8BcSABLQAAc0ECdEGAiICAAGooAgAgAEEIdnMhACABQQFqIQMCQCACQX9qIgRFDQAgA0EDcUUNACAAQf8BcSABLQABc0ECdEGAiICAAGooAgAgAEEIdnMhACABQQJqIQMCQCACQX5qIgRFDQAgA0EDcUUNACAAQf8BcSABLQACc0ECdEGAiICAAGooAgAgAEEIdnMhACABQQNqIQMCQCACQX1qIgRFDQAgA0EDcUUNACAAQf8BcSABLQADc0ECdEGAiICAAGooAgAgAEEIdnMhACACQXxqIQIgAUEEaiEBDAMLIAQhAiADIQEMAgsgBCECIAMhAQwBCyAEIQIgAyEBCwJAIAJBCEkNAANAIAEoAAAgAHMiAEEGdkH8B3FBgLiAgABqKAIAIABB/wFxQQJ0QYDAgIAAaigCAHMgAEEOdkH8B3FBgLCAgABqKAIAcyAAQRZ2QfwHcUGAqICAAGooAgBzIAFBBGooAAAiAEH/AXFBAnRBgKCAgABqKAIAcyAAQQZ2QfwHcUGAmICAAGooAgBzIABBDnZB/AdxQYCQgIAAaigCAHMgAEEWdkH8B3FBgIiAgABqKAIAcyEAIAFBCGohASACQXhqIgJBB0sNAAsLAkAgAkUNAAJAAkAgAkEBcQ0AIAIhAwwBCyAAQf8BcSABLQAAc0ECdEGAiICAAGooAgAgAEEIdnMhACABQQFqIQEgAkF/aiEDCyACQQFGDQADQCAAQf8BcSABLQAAc0ECdEGAiICAAGooAgAgAEEIdnMiAEH/AXEgAUEBai0AAHNBAnRBgIiAgABqKAIAIABBCHZzIQAgAUECaiEBIANBfmoiAw0ACwsgAAsIAEGAyICAAAsNAEEAIAA2ArjIgIAAC7AMBQd/An4EfwF+BX8jgICAgABBwABrIgskgICAgABBAEEANgKIyICAACALQThqIgxBACkCsMiAgAA3AwAgC0EwaiINQQApAqjIgIAANwMAIAtBCGpBIGoiDkEAKQKgyICAADcDACALQQhqQRhqIg9BACkCmMiAgAA3AwAgC0EYaiIQQQApApDIgIAANwMAIAtBCGpBCGoiEUEAKQKIyICAADcDACALQQApAoDIgIAANwMIAkACQCABrSADrSISfCACrSITWA0AIAEhFAwBCyADIAFqIRUDQAJAIAAgAWoiFi8AACAGRg0AIAEhFAwCCwJAIBZBA2otAABBCHQgFi0AAiICQfoBcXJFDQAgASEUDAILAkAgFigABCAHRg0AIAEhFAwCCwJAIAEgCE8NACABIRQMAgsCQCAWKAAIIAEgBGpGDQAgASEUDAILAkAgFigADCAFRg0AIAEhFAwCCyACQQFxIRcCQAJAIAsoAhQiAkUNAAJAIBcNACABIRQMBAsgFigAECALKAIcIAsoAiBrRg0BIAEhFAwDCyAXRQ0AIAEhFAwCCyABIANqIhStIRgCQCAUIAFBGGoiF00NAANAAkACQCACRQ0AIBQgF2siGSALKAIcIAsoAiAiFmsiAiACIBlLGyEZQQAhGgJAIBZBF0sNAAJAIBlBGCAWayIbIBsgGUsbIhpFDQAgAiAVIBdrIhwgAiAcSRsiAiAbIAIgG0kbIhtBAXEhHUEAIQICQCAbQQFGDQAgG0F+cSEbIAAgF2ohHEEAIQIDQCALQQhqIBYgAmpqQSBqIBwgAmoiFi0AADoAACALQQhqIAIgCygCIGpqQSFqIBZBAWotAAA6AAAgCygCICEWIBsgAkECaiICRw0ACwsgHUUNACALQQhqIBYgAmpqQSBqIAAgAiAXamotAAA6AAAgCygCICEWCyAWIBpqQRhHDQACQCALKAIwIAsoAghGDQAgASEUDAcLIAsoAjQgCygCDEYNACABIRQMBgsCQCAZIBpNDQAgACAXaiAaaiECIAsoAiQhGwJAAkAgGSAaayIcQYAISQ0AQQAoArjIgIAARQ0AIAIgHCAbEICAgIAAIQIgCygCICEWDAELIBtBf3MgAiAcEIOAgIAAQX9zIQILIAsgAjYCJAsgGSAXaiEXIAsgFiAZaiICNgIgIAIgCygCHEkNAQJAIAsoAjwgCygCJEF/cyAOQRQQg4CAgABBf3NGDQAgASEUDAYLAkAgCy0AOQ0AIAstADhB8AFxQcAARw0AIAEhFAwGCwJAIBdBB2pBeHEiFyAJTA0AIAEhFAwGCwJAIBcgCkcNACABIRQMBgsgC0EANgIUIAsgBTYCDCALIAsoAhBBAWo2AhAgCyALKAIYIARqNgIIDAELAkAgF0EEaiAUTQ0AIAEhFAwFCwJAIAAgF2oiAigAACIWQRhPDQAgASEUDAULAkAgFyAJSA0AIAEhFAwFCwJAIBatIBetfCAYWA0AIAtCADcDOCALQgA3AzAgC0IANwMoIAtCADcDICALIBY2AhwgCyAXNgIYIAtBATYCFAwBCwJAIAIoAAggCygCCEYNACABIRQMBQsCQCACKAAMIAsoAgxGDQAgASEUDAULIAJBGGohGQJAAkAgFkFoaiIbQYAISQ0AQQAoArjIgIAARQ0AIBkgG0EAEICAgIAAIRkMAQtBfyAZIBsQg4CAgABBf3MhGQsCQCACKAAUIBlBf3MgAkEUEIOAgIAAQX9zRg0AIAEhFAwFCwJAIAItABENACACLQAQQfABcUHAAEcNACABIRQMBQsCQCAXIBZqQQdqQXhxIgIgCUwNACABIRQMBQsCQCACIApHDQAgASEUDAULIAsgBTYCDCALIBcgBGo2AgggCyALKAIQQQFqNgIQIAIhFwsgFCAXTQ0BIAsoAhQhAgwACwtBACALKQMINwKAyICAAEEAIAwpAwA3ArDIgIAAQQAgDSkDADcCqMiAgABBACAOKQMANwKgyICAAEEAIA8pAwA3ApjIgIAAQQAgECkDADcCkMiAgABBACARKQMANwKIyICAACAVIANqIRUgFCEBIBggEnwgE1gNAAsLIAtBwABqJICAgIAAIBQLAFsEbmFtZQFABwAKbmF0aXZlX2NyYwEEaW5pdAIDY3JjAwdjcmNfcmF3BAVzdGF0ZQUKc2V0X25hdGl2ZQYKd2Fsa19wYWdlcwcSAQAPX19zdGFja19wb2ludGVyAC0JcHJvZHVjZXJzAQxwcm9jZXNzZWQtYnkBDERlYmlhbiBjbGFuZwYxNC4wLjY=';

/** Largest segment whose buffers go into the module's memory. */
const MAX_SEGMENT = 64 << 20;
const WASM_PAGE = 65536;

interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  init(): void;
  crc(pointer: number, length: number, previous: number): number;
  state(): number;
  set_native(on: number): void;
  walk_pages(d: number, page: number, length: number, blockSize: number, segLo: number, segHi: number, magic: number, timeline: number, simpleFrom: number, endsAt: number, boundaryAt: number): number;
}

type NativeCrc = (data: Uint8Array, previous: number) => number;
let nativeCrc: NativeCrc | null = null;

/** Long pieces' CRC-32C from `crc` (crc32c.ts's native one) instead of the module's table loop. */
export function useNativeCrc(crc: NativeCrc): void {
  nativeCrc = crc;
  instance?.set_native(1);
}

let instance: Exports | null | undefined;
/** The module's memory buffer while segment buffers are handed out (a view into it takes the fast path). */
let owned: ArrayBufferLike | null = null;
let buffers: Buffer[] | null = null;

function load(): Exports | null {
  if (instance !== undefined) return instance;
  try {
    let bytes: Uint8Array | null = null;
    const env = {
      native_crc: (pointer: number, length: number, previous: number): number => {
        if (bytes === null || bytes.buffer !== exports.memory.buffer) bytes = new Uint8Array(exports.memory.buffer);
        return nativeCrc!(bytes.subarray(pointer, pointer + length), previous >>> 0);
      },
    };
    const exports = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(WASM, 'base64')), { env }).exports as unknown as Exports;
    exports.init();
    exports.set_native(nativeCrc !== null ? 1 : 0);
    instance = exports;
  } catch {
    instance = null;
  }
  return instance;
}

/**
 * `count` reusable buffers of at least `size` bytes in the module's memory, for reading segments into;
 * null when WebAssembly is not at hand, `size` is over MAX_SEGMENT, or other buffers were handed out
 * already that do not fit (growing the memory would detach them): read into ordinary Buffers then.
 */
export function segmentBuffers(size: number, count: number): Buffer[] | null {
  if (buffers !== null && buffers[0]!.length >= size && buffers.length >= count) return buffers;
  if (buffers !== null || size > MAX_SEGMENT) return null;
  const x = load();
  if (x === null) return null;
  const capacity = Math.max(size, 16 << 20);
  const base = Math.ceil(((x.__heap_base.value as number) + 7) / 8) * 8;
  const need = base + count * capacity;
  const have = x.memory.buffer.byteLength;
  if (need > have) x.memory.grow(Math.ceil((need - have) / WASM_PAGE));
  owned = x.memory.buffer;
  buffers = Array.from({ length: count }, (_, i) => Buffer.from(owned!, base + i * capacity, capacity));
  return buffers;
}

/** Whether `data` is a view into the module's memory (then moduleCrc and moduleWalkPages apply). */
export function inModule(data: Uint8Array): boolean {
  return owned !== null && data.buffer === owned;
}

/** CRC-32C of data[start, end) continuing from `previous`, as crc32cRange(); `data` must be inModule(). */
export function moduleCrc(data: Uint8Array, start: number, end: number, previous: number): number {
  return instance!.crc(data.byteOffset + start, end - start, previous) >>> 0;
}

/** A record crossing into the next page, as walkPages() takes and gives it (start: offset in the segment). */
export interface ModulePending {
  start: number;
  total: number;
  got: number;
  crc: number;
  header: Uint8Array;
}

/** The walk's state at a page boundary, for walkPages(); `records` counts what the call completed. */
export interface PageWalkState {
  prevLo: number;
  prevHi: number;
  records: number;
  pending: ModulePending | null;
}

/** Pages moduleWalkPages() has walked in this thread (for tests and profiles). */
export let modulePagesWalked = 0;

/** Byte offsets in wal-check.c's struct walk_state. */
const STATE = { prevLo: 0, prevHi: 4, records: 8, hasPending: 12, start: 16, total: 20, got: 24, crc: 28, header: 32 } as const;

/** Clamps an offset that may be infinite or negative to wal-check.c's i32 (no record starts at 2^31 - 1 or ends at -1). */
const i32Offset = (n: number): number => (n >= 0x7fffffff ? 0x7fffffff : n < 0 ? -1 : n);

/**
 * wal-check.c walk_pages(): from `page` (not 0) walks whole pages while nothing is out of the
 * ordinary, updating `w` (which needs a known prev-link); returns the first page not walked, where
 * walkSegment() goes on. `d` must be inModule(); `simpleFrom`: the first page that must carry `timeline`.
 */
export function moduleWalkPages(d: Uint8Array, page: number, blockSize: number, segLo: number, segHi: number, magic: number, timeline: number, simpleFrom: number, endsAt: number, boundaryAt: number, w: PageWalkState): number {
  const x = instance!;
  const at = x.state();
  const view = new DataView(x.memory.buffer, at, STATE.header + 24);
  view.setUint32(STATE.prevLo, w.prevLo, true);
  view.setUint32(STATE.prevHi, w.prevHi, true);
  const p = w.pending;
  view.setUint32(STATE.hasPending, p !== null ? 1 : 0, true);
  if (p !== null) {
    view.setUint32(STATE.start, p.start, true);
    view.setUint32(STATE.total, p.total, true);
    view.setUint32(STATE.got, p.got, true);
    view.setUint32(STATE.crc, p.crc, true);
    new Uint8Array(x.memory.buffer, at + STATE.header, 24).set(p.header.subarray(0, 24));
  }
  const next = x.walk_pages(d.byteOffset, page, d.length, blockSize, segLo, segHi, magic, timeline, simpleFrom <= 0 ? 0 : i32Offset(simpleFrom), i32Offset(endsAt), boundaryAt) >>> 0;
  if (next === page) return page;
  modulePagesWalked += (next - page) / blockSize;
  w.prevLo = view.getUint32(STATE.prevLo, true);
  w.prevHi = view.getUint32(STATE.prevHi, true);
  w.records = view.getUint32(STATE.records, true);
  w.pending = view.getUint32(STATE.hasPending, true) === 0 ? null : {
    start: view.getUint32(STATE.start, true),
    total: view.getUint32(STATE.total, true),
    got: view.getUint32(STATE.got, true),
    crc: view.getUint32(STATE.crc, true),
    header: new Uint8Array(x.memory.buffer.slice(at + STATE.header, at + STATE.header + 24)),
  };
  return next;
}
