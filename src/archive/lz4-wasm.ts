/**
 * LZ4 compression with the reference liblz4 compiled to WebAssembly, on worker threads.
 *
 * lz4-napi (Rust lz4_flex) compressed pgbench WAL at ~550-650 MiB/s a core here, liblz4's
 * LZ4_compress_fast at acceleration 1 (what pg_receivewal's LZ4F uses) ~1,000-1,170 MiB/s as
 * WebAssembly in V8 on the same 1 MiB frames, with the same output size (0.188 bytes per WAL byte),
 * and a worker compresses into memory it reuses: no native output buffer per frame that is returned
 * only at a later garbage collection.
 *
 * The module below is lib/lz4.c of lz4 v1.10.0 (BSD-2-Clause, Copyright (c) Yann Collet; lz4/lz4
 * commit d9c01a3d), with one change: reg_t is 64-bit on wasm as on x86-64 (the line
 * `#if defined(__x86_64__)` before `typedef U64 reg_t;` reads `#if defined(__x86_64__) ||
 * defined(__wasm__)`; 8-byte match compares, ~10% faster), built with clang 14:
 *
 *   clang --target=wasm32 -O3 -mbulk-memory -msign-ext -mnontrapping-fptoint -nostdlib -ffreestanding \
 *     -Wl,--no-entry -Wl,--export=__heap_base -o lz4.wasm wrap.c
 *
 * from this wrap.c:
 *
 *   #define LZ4_FREESTANDING 1
 *   #define LZ4_memcpy(d,s,n) __builtin_memcpy((d),(s),(n))
 *   #define LZ4_memset(p,v,n) __builtin_memset((p),(v),(n))
 *   #define LZ4_memmove(d,s,n) __builtin_memmove((d),(s),(n))
 *   #include "lz4.c"
 *   static LZ4_stream_t state;
 *   __attribute__((export_name("compress")))
 *   int compress(const char* src, char* dst, int srcSize, int dstCapacity, int acceleration) {
 *     return LZ4_compress_fast_extState_fastReset(&state, src, dst, srcSize, dstCapacity, acceleration);
 *   }
 *   __attribute__((export_name("init")))
 *   void init(void) { LZ4_initStream(&state, sizeof(state)); }
 *   __attribute__((export_name("bound")))
 *   int bound(int n) { return LZ4_compressBound(n); }
 *
 * (sha256 of the module: 67ae4818cea365daf41f573bc65708c695a345b239e3d43cd1457857a47a841f).
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';

/** The frame around the blocks (lz4_Frame_format.md): magic, FLG 0x60 (version 01, independent blocks, no checksums, no content size), BD 0x70 (blocks up to 4 MiB), header checksum (xxh32 of FLG BD >> 8). */
export const LZ4_FRAME_HEADER = [0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x73];
/** Largest block BD 0x70 allows. */
const LZ4_BLOCK_BYTES = 4 << 20;

/**
 * A worker (CommonJS, evaluated): for each task it copies the input into its WebAssembly memory,
 * compresses it into one LZ4 frame there (blocks of up to 4 MiB, each stored as it is when it would
 * not shrink, as the format allows) and hands the frame back in the task's own buffer when it fits
 * (the input is then no longer needed), else in a new one.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { memory, compress, init, bound, __heap_base } = new WebAssembly.Instance(new WebAssembly.Module(workerData.wasm), {}).exports;
init();
const HEADER = ${JSON.stringify(LZ4_FRAME_HEADER)};
const BLOCK = ${LZ4_BLOCK_BYTES};
const base = (__heap_base.value + 15) & ~15;
parentPort.on('message', ({ id, buffer, length }) => {
  try {
    let outCap = 11;
    for (let at = 0; at < length; at += BLOCK) outCap += 4 + bound(Math.min(BLOCK, length - at));
    const inPtr = base;
    const outPtr = (base + length + 15) & ~15;
    const have = memory.buffer.byteLength;
    if (outPtr + outCap > have) memory.grow(Math.ceil((outPtr + outCap - have) / 65536));
    const heap = new Uint8Array(memory.buffer);
    const view = new DataView(memory.buffer);
    heap.set(new Uint8Array(buffer, 0, length), inPtr);
    heap.set(HEADER, outPtr);
    let pos = outPtr + HEADER.length;
    for (let at = 0; at < length; at += BLOCK) {
      const n = Math.min(BLOCK, length - at);
      const size = compress(inPtr + at, pos + 4, n, bound(n), 1);
      if (size > 0 && size < n) {
        view.setUint32(pos, size, true);
        pos += 4 + size;
      } else {
        view.setUint32(pos, (n | 0x80000000) >>> 0, true);
        heap.copyWithin(pos + 4, inPtr + at, inPtr + at + n);
        pos += 4 + n;
      }
    }
    view.setUint32(pos, 0, true);
    pos += 4;
    const frameLength = pos - outPtr;
    const out = buffer.byteLength >= frameLength ? buffer : new ArrayBuffer(frameLength);
    new Uint8Array(out, 0, frameLength).set(heap.subarray(outPtr, pos));
    parentPort.postMessage({ id, buffer: out, length: frameLength }, [out]);
  } catch (err) {
    parentPort.postMessage({ id, buffer, length: 0, error: String((err && err.message) || err) }, [buffer]);
  }
});
`;

/** A compressed frame: its bytes are buffer[0, length). */
export interface Lz4Frame {
  buffer: ArrayBuffer;
  length: number;
}

interface Slot {
  worker: Worker;
  load: number;
}

/**
 * Worker threads compressing LZ4 frames. Idle workers do not keep the process alive (unref'd while
 * they have no task). A worker that dies fails its tasks and is replaced at the next one.
 */
export class Lz4Workers {
  private readonly slots: Slot[] = [];
  private readonly waiting = new Map<number, { resolve: (frame: Lz4Frame) => void; reject: (err: Error) => void; slot: Slot }>();
  private nextId = 0;
  private wasm: Uint8Array | undefined;

  constructor(private readonly count: number) {}

  /** Start the first worker now (at start-up, rather than with the first frame). */
  start(): void {
    if (this.slots.length === 0) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    this.wasm ??= Buffer.from(LZ4_WASM, 'base64');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { wasm: this.wasm } });
    const slot: Slot = { worker, load: 0 };
    worker.unref();
    worker.on('message', (result: Lz4Frame & { id: number; error?: string }) => {
      const task = this.waiting.get(result.id);
      if (!task) return;
      this.waiting.delete(result.id);
      if (--slot.load === 0) worker.unref();
      if (result.error !== undefined) task.reject(new Error(`lz4 compression failed: ${result.error}`));
      else task.resolve({ buffer: result.buffer, length: result.length });
    });
    const fail = (err: Error) => {
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots.splice(index, 1);
      for (const [id, task] of this.waiting) {
        if (task.slot !== slot) continue;
        this.waiting.delete(id);
        task.reject(err);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`lz4 worker exited with code ${code}`)));
    return slot;
  }

  /**
   * One LZ4 frame of buffer[0, length). `buffer` is transferred to a worker (unusable here until the
   * frame comes back, in it when it has room: give it LZ4_FRAME_OVERHEAD bytes more than the input).
   */
  compress(buffer: ArrayBuffer, length: number): Promise<Lz4Frame> {
    this.start();
    let slot = this.slots.reduce((a, b) => (b.load < a.load ? b : a));
    // One worker keeps up with ~1 GiB/s of WAL; another starts only when frames queue behind it.
    if (slot.load >= 2 && this.slots.length < this.count) this.slots.push((slot = this.spawn()));
    if (slot.load++ === 0) slot.worker.ref();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, slot });
      slot.worker.postMessage({ id, buffer, length }, [buffer]);
    });
  }
}

let shared: Lz4Workers | undefined;

/**
 * The process's LZ4 workers: one, and a second (on two processors or more) once frames wait for the
 * first. Starting a worker costs ~30-50 ms of CPU; one compresses pgbench WAL at ~1 GiB/s.
 */
export function lz4Workers(): Lz4Workers {
  return (shared ??= new Lz4Workers(Math.min(2, os.availableParallelism())));
}

/** The module, base64. */
const LZ4_WASM = [
  'AGFzbQEAAAABHARgBn9/f39/fwF/YAV/f39/fwF/YAAAYAF/AX8DBQQAAQIDBAUBcAEBAQUDAQACBg8CfwFBoIgFC38AQaCIBQsH',
  'MgUGbWVtb3J5AgAIY29tcHJlc3MAAQRpbml0AAIFYm91bmQAAwtfX2hlYXBfYmFzZQMBCt5JBIlJAxJ/AX4DfyAFQQEgBUEBShsi',
  'BkGBgARJIQdBACEFAkAgA0GAgIDwB0sNACADIANB/wFuakEQaiEFCyAGQYGABCAHGyEIAkACQAJAAkACQCAFIARKDQACQCADQYqA',
  'BEoNAAJAAkACQAJAIAAoAoyAAQ4EAgEBAAELIANB/x9KDQAgACgCiIABIgkgA2pB//8DSQ0CCyAAQQBBlIAB/AsADAULIAAoAoiA',
  'ASEJC0EAIQogAEEANgKQgAEgAEIANwKAgAEgCUUNAyADQYCAgPAHSw0EAkAgAw0AIAJBADoAAEEBDwsgAEEDNgKMgAEgACADNgKQ',
  'gAEgACAJIANqNgKIgAEgASADaiEKAkACQCADQQ1PDQAgAiELIAEhBAwBCyAKQXVqIQwgACABKAAAQbHz3fF5bEESdkH+/wBxaiAJ',
  'OwEAIAFBAmohAyAKQXtqIg1Bf2ohDiANQX1qIQ8gDUF5aiEQIAEgCWsiEUF+aiESIAhBBnRBAXIhEyABIQQgAiELA0AgBEEBaiEH',
  'IAQoAAEhFCAIIRUgEyEFAkADQCAAIBRBsfPd8XlsQRJ2Qf7/AHFqIgYvAQAhFiAGIAcgEWs7AQAgAyIGKAAAIRQCQCAJIBZLDQAg',
  'ESAWaiIXKAAAIAcoAABGDQILIAVBBnYhByAFQQFqIQUgBiAVaiEDIAchFSAGIQcgAyAMTQ0ADAMLCwJAIBcgAU0NACAHQX9qLQAA',
  'IBdBf2otAABHDQAgB0F+aiEDIBIgFmohBQNAIANBAWohByAFQQFqIhcgAU0NASAHIARNDQEgBS0AACEGIAMtAAAhFiADQX9qIQMg',
  'BUF/aiEFIBYgBkYNAAsLIAtBAWohAwJAAkAgByAEayIGQQ9JDQAgC0HwAToAAAJAIAZBcWoiBUH/AUkNAANAIANB/wE6AAAgA0EB',
  'aiEDIAVBgX5qIgVB/gFLDQALCyADIAU6AAAgA0EBaiEDDAELIAsgBkEEdDoAAAsgAyAGaiEGA0AgAyAEKQAANwAAIARBCGohBCAD',
  'QQhqIgMgBkkNAAsgByEEA0AgCyEHIAYgBCAXazsAACAXQQRqIQMgBkECaiELAkACQAJAAkACQCAQIARBBGoiFksNACAWIQUMAQsg',
  'FikAACADKQAAhSIYQgBSDQEgF0EMaiEDIARBDGohBQsCQAJAIAUgEE8NAANAAkAgBSkAACADKQAAhSIYUA0AIAUgGHqnQQN2aiEF',
  'DAMLIANBCGohAyAFQQhqIgUgEEkNAAsLAkAgBSAPTw0AIAMoAAAgBSgAAEcNACADQQRqIQMgBUEEaiEFCwJAIAUgDk8NACADLwAA',
  'IAUvAABHDQAgA0ECaiEDIAVBAmohBQsgBSANTw0AIAUgAy0AACAFLQAARmohBQsgBSAWayIDIARqQQRqIQQgBy0AACEFIANBD0kN',
  'ASAHIAVBD2o6AAAgC0F/NgAAAkAgA0FxaiIFQfwHSQ0AIAZBBmohAwNAIANBfzYAACADQQRqIQMgBUGEeGoiBUH7B0sNAAsgA0F8',
  'aiELCyALIAVB//8DcUH/AW4iA2oiBiAFIANqOgAAIAZBAWohCwwCCyAYeqdBA3YiAyAEakEEaiEEIActAAAhBQsgByAFIANqOgAA',
  'CyAEIAxPDQIgACAEQX5qIgMoAABBsfPd8XlsQRJ2Qf7/AHFqIAMgEWs7AQAgACAEKAAAIgZBsfPd8XlsQRJ2Qf7/AHFqIgUvAQAh',
  'AyAFIAQgEWs7AQACQCAJIANLDQAgESADaiIXKAAAIAZHDQAgC0EAOgAAIAtBAWohBgwBCwsgBEECaiIDIAxNDQALCwJAAkAgCiAE',
  'ayIFQQ9JDQAgC0HwAToAACALQQFqIQsCQCAFQXFqIgNB/wFJDQADQCALQf8BOgAAIAtBAWohCyADQYF+aiIDQf4BSw0ACwsgCyAD',
  'OgAADAELIAsgBUEEdDoAAAsgC0EBaiIDIAQgBfwKAAAgAyAFaiACaw8LIAFB//8DSyEEAkACQCAAKAKMgAFFDQBBACEFIABBAEGA',
  'gAH8CwAgAEIANwKIgAEMAQsgACgCiIABIQUgBA0AIAVFDQAgACAFQYCABGoiBTYCiIABC0EAIQogAEEANgKQgAEgAEIANwKAgAEg',
  'A0GAgIDwB0sNAyAAQQFBAiAEGzYCjIABIAAgAzYCkIABIAAgBSADajYCiIABIAEgA2oiCkF7aiEXIAEpAABCgICA2Mub741PfkI0',
  'iKchAwJAAkAgAUGAgARJDQAgACADQQJ0aiABNgIADAELIAAgA0ECdGogBTYCAAsgASAFayEVIApBdWohFCAKQXRqIQ0gF0F/aiES',
  'IBdBfWohGSAXQXlqIQYgCEEGdCIPQQFyIQ4gAUH//wNLIRMgAUGAgARJIQsgAiERIAEhBANAIARBAWohAyAEKQABQoCAgNjLm++N',
  'T35CNIinIQUCQAJAIBMNACAIIQwgDiEWIARBAmoiByAUSw0EA0AgACAFQQJ0aiIQKAIAIQUgECADIBVrIgk2AgAgByIQKQAAIRgC',
  'QCAFQf//A2ogCUkNACAVIAVqIgUoAAAgAygAAEYNAwsgGEKAgIDYy5vvjU9+QjSIpyEFIBZBBnYhAyAWQQFqIRYgECAMaiEHIAMh',
  'DCAQIQMgByAUTQ0ADAULCyADIA1LDQMgBEECaiEWIA8hBwNAIAAgBUECdGoiECgCACEFIBAgAzYCACAWIhYpAAAhGAJAIAVB//8D',
  'aiADSQ0AIAUoAAAgAygAAEYNAgsgB0EGdSEQIBhCgICA2Mub741PfkI0iKchBSAHQQFqIQcgFiEDIBYgEGoiFiAUTQ0ADAQLCwJA',
  'IAUgAU0NACADQX9qLQAAIAVBf2otAABHDQAgA0F+aiEHIAVBfmohFgNAIAdBAWohAyAWQQFqIgUgAU0NASADIARNDQEgFi0AACEQ',
  'IActAAAhCSAHQX9qIQcgFkF/aiEWIAkgEEYNAAsLIBFBAWohBwJAAkAgAyAEayIQQQ9JDQAgEUHwAToAAAJAIBBBcWoiFkH/AUkN',
  'AANAIAdB/wE6AAAgB0EBaiEHIBZBgX5qIhZB/gFLDQALCyAHIBY6AAAgB0EBaiEHDAELIBEgEEEEdDoAAAsgByAQaiEWA0AgByAE',
  'KQAANwAAIARBCGohBCAHQQhqIgcgFkkNAAsgAyEEA0AgFiAEIAVrOwAAIAVBBGohAyAWQQJqIRACQAJAAkACQAJAIAYgBEEEaiIH',
  'Sw0AIAchBQwBCyAHKQAAIAMpAACFIhhCAFINASAFQQxqIQMgBEEMaiEFCwJAAkAgBSAGTw0AA0ACQCAFKQAAIAMpAACFIhhQDQAg',
  'BSAYeqdBA3ZqIQUMAwsgA0EIaiEDIAVBCGoiBSAGSQ0ACwsCQCAFIBlPDQAgAygAACAFKAAARw0AIANBBGohAyAFQQRqIQULAkAg',
  'BSASTw0AIAMvAAAgBS8AAEcNACADQQJqIQMgBUECaiEFCyAFIBdPDQAgBSADLQAAIAUtAABGaiEFCyAFIAdrIgMgBGpBBGohBCAR',
  'LQAAIQUgA0EPSQ0BIBEgBUEPajoAACAQQX82AAACQCADQXFqIgVB/AdJDQAgFkEGaiEDA0AgA0F/NgAAIANBBGohAyAFQYR4aiIF',
  'QfsHSw0ACyADQXxqIRALIBAgBUH//wNxQf8BbiIDaiIHIAUgA2o6AAAgB0EBaiERDAILIBh6p0EDdiIDIARqQQRqIQQgES0AACEF',
  'CyARIAUgA2o6AAAgECERCyAEIBRPDQMgBEF+aiIDKQAAQoCAgNjLm++NT35CNIinIQUCQAJAIAsNACAAIAVBAnRqIAM2AgAgACAE',
  'KQAAIhhCgICA2Mub741PfkI0iKdBAnRqIgMoAgAhBSADIAQ2AgAgBUH//wNqIARJDQMgBSgAACAYp0cNAwwBCyAAIAVBAnRqIAMg',
  'FWs2AgAgACAEKQAAQoCAgNjLm++NT35CNIinQQJ0aiIFKAIAIQMgBSAEIBVrIgc2AgAgFSADaiEFIANB//8DaiAHSQ0CIAUoAAAg',
  'BCgAAEcNAgsgEUEAOgAAIBFBAWohFgwACwsLAkACQCADQYqABEoNAAJAAkACQAJAIAAoAoyAAQ4EAgEBAAELIANB/x9KDQAgACgC',
  'iIABIgwgA2pB//8DSQ0CCyAAQQBBlIAB/AsADAMLIAAoAoiAASEMC0EAIQogAEEANgKQgAEgAEIANwKAgAEgDEUNASADQYCAgPAH',
  'Sw0EAkAgAw0AIARBAUgNBSACQQA6AABBAQ8LIABBAzYCjIABIAAgAzYCkIABIAAgDCADajYCiIABIAIgBGohEyABIANqIQ0CQAJA',
  'IANBDU8NACACIQMgASEGDAELIA1BdWohCyAAIAEoAABBsfPd8XlsQRJ2Qf7/AHFqIAw7AQAgAUEBaiEWIAFBAmohBSANQXtqIg9B',
  'f2ohEiAPQX1qIRkgD0F5aiEUIAEgDGsiFUF+aiEaIAhBBnRBAXIhDiABIQYgAiEDA0AgFigAACERIAghCSAOIQQCQANAIAAgEUGx',
  '893xeWxBEnZB/v8AcWoiBy8BACEQIAcgFiAVazsBACAFIgcoAAAhEQJAIAwgEEsNACAVIBBqIhcoAAAgFigAAEYNAgsgBEEGdiEW',
  'IARBAWohBCAHIAlqIQUgFiEJIAchFiAFIAtNDQAMAwsLAkAgFyABTQ0AIBZBf2otAAAgF0F/ai0AAEcNACAWQX5qIQUgGiAQaiEE',
  'A0AgBUEBaiEWIARBAWoiFyABTQ0BIBYgBk0NASAELQAAIQcgBS0AACEQIAVBf2ohBSAEQX9qIQQgECAHRg0ACwsCQCADIBYgBmsi',
  'B2ogB0H/AW5qQQlqIBNNDQBBAA8LIANBAWohBQJAAkAgB0EPSQ0AIANB8AE6AAACQCAHQXFqIgRB/wFJDQADQCAFQf8BOgAAIAVB',
  'AWohBSAEQYF+aiIEQf4BSw0ACwsgBSAEOgAAIAVBAWohBQwBCyADIAdBBHQ6AAALIAUgB2ohBwNAIAUgBikAADcAACAGQQhqIQYg',
  'BUEIaiIFIAdJDQALIBYhBgNAIAMhFiAHIAYgF2s7AAAgF0EEaiEDAkACQAJAAkAgFCAGQQRqIhBLDQAgECEFDAELIBApAAAgAykA',
  'AIUiGEIAUg0BIBdBDGohAyAGQQxqIQULAkAgBSAUTw0AIAUgBmtBfGohBANAAkAgBSkAACADKQAAhSIYUA0AIBh6p0EDdiAEaiEE',
  'DAQLIARBCGohBCADQQhqIQMgBUEIaiIFIBRJDQALCwJAIAUgGU8NACADKAAAIAUoAABHDQAgA0EEaiEDIAVBBGohBQsCQCAFIBJP',
  'DQAgAy8AACAFLwAARw0AIANBAmohAyAFQQJqIQULAkAgBSAPTw0AIAUgAy0AACAFLQAARmohBQsgBSAQayEEDAELIBh6p0EDdiEE',
  'CwJAIAcgBEHwAWpB/wFuakEIaiATTQ0AQQAPCyAHQQJqIQMgBCAGakEEaiEGIBYtAAAhBQJAAkAgBEEPSQ0AIBYgBUEPajoAACAD',
  'QX82AAACQCAEQXFqIgVB/AdJDQACQCAEQfV3aiIWQfwHbkEBakEHcSIERQ0AIAdBBmohAwNAIANBfzYAACADQQRqIQMgBUGEeGoh',
  'BSAEQX9qIgQNAAsgA0F8aiEDCyAWQeQ3SQ0AA0AgA0EcakJ/NwAAIANBFGpCfzcAACADQQxqQn83AAAgA0EEakJ/NwAAIANBIGoh',
  'AyAFQaBAaiIFQfsHSw0ACwsgAyAFQf//A3FB/wFuIgRqIgMgBSAEajoAACADQQFqIQMMAQsgFiAFIARqOgAACyAGIAtPDQIgACAG',
  'QX5qIgUoAABBsfPd8XlsQRJ2Qf7/AHFqIAUgFWs7AQAgACAGKAAAIgdBsfPd8XlsQRJ2Qf7/AHFqIgQvAQAhBSAEIAYgFWs7AQAC',
  'QCAMIAVLDQAgFSAFaiIXKAAAIAdHDQAgA0EAOgAAIANBAWohBwwBCwsgBkEBaiEWIAZBAmoiBSALTQ0ACwsgAyANIAZrIgRqIARB',
  '8AFqQf8BbmpBAWogE0sNBAJAAkAgBEEPSQ0AIANB8AE6AAAgA0EBaiEDAkAgBEFxaiIFQf8BSQ0AA0AgA0H/AToAACADQQFqIQMg',
  'BUGBfmoiBUH+AUsNAAsLIAMgBToAAAwBCyADIARBBHQ6AAALIANBAWoiAyAGIAT8CgAAIAMgBGogAmsPCyABQf//A0shBgJAAkAg',
  'ACgCjIABRQ0AQQAhBSAAQQBBgIAB/AsAIABCADcCiIABDAELIAAoAoiAASEFIAYNACAFRQ0AIAAgBUGAgARqIgU2AoiAAQtBACEK',
  'IABBADYCkIABIABCADcCgIABIANBgICA8AdLDQMgAEEBQQIgBhs2AoyAASAAIAM2ApCAASAAIAUgA2o2AoiAASABIANqIg1Be2oh',
  'EyABKQAAQoCAgNjLm++NT35CNIinIQMCQAJAIAFBgIAESQ0AIAAgA0ECdGogATYCAAwBCyAAIANBAnRqIAU2AgALIAIgBGohCyAB',
  'IAVrIREgDUF1aiEUIA1BdGohDyATQX9qIRogE0F9aiEbIBNBeWohByAIQQZ0IhlBAXIhEiABQf//A0shDiABQYCABEkhFyACIQwg',
  'ASEGAkADQCAGQQFqIQMgBikAAUKAgIDYy5vvjU9+QjSIpyEFAkACQCAODQAgCCEJIBIhFiAGQQJqIgQgFEsNAwNAIAAgBUECdGoi',
  'ECgCACEFIBAgAyARayIVNgIAIAQiECkAACEYAkAgBUH//wNqIBVJDQAgESAFaiIFKAAAIAMoAABGDQMLIBhCgICA2Mub741PfkI0',
  'iKchBSAWQQZ2IQMgFkEBaiEWIBAgCWohBCADIQkgECEDIAQgFE0NAAwECwsgAyAPSw0CIAZBAmohFiAZIQQDQCAAIAVBAnRqIhAo',
  'AgAhBSAQIAM2AgAgFiIWKQAAIRgCQCAFQf//A2ogA0kNACAFKAAAIAMoAABGDQILIARBBnUhECAYQoCAgNjLm++NT35CNIinIQUg',
  'BEEBaiEEIBYhAyAWIBBqIhYgFE0NAAwDCwsCQCAFIAFNDQAgA0F/ai0AACAFQX9qLQAARw0AIANBfmohBCAFQX5qIRYDQCAEQQFq',
  'IQMgFkEBaiIFIAFNDQEgAyAGTQ0BIBYtAAAhECAELQAAIRUgBEF/aiEEIBZBf2ohFiAVIBBGDQALC0EAIQogDCADIAZrIhBqIBBB',
  '/wFuakEJaiALSw0FIAxBAWohBAJAAkAgEEEPSQ0AIAxB8AE6AAACQCAQQXFqIhZB/wFJDQADQCAEQf8BOgAAIARBAWohBCAWQYF+',
  'aiIWQf4BSw0ACwsgBCAWOgAAIARBAWohBAwBCyAMIBBBBHQ6AAALIAQgEGohFgNAIAQgBikAADcAACAGQQhqIQYgBEEIaiIEIBZJ',
  'DQALIAMhBgNAIBYgBiAFazsAACAFQQRqIQMCQAJAAkACQCAHIAZBBGoiEEsNACAQIQUMAQsgECkAACADKQAAhSIYQgBSDQEgBUEM',
  'aiEDIAZBDGohBQsCQCAFIAdPDQAgBSAGa0F8aiEEA0ACQCAFKQAAIAMpAACFIhhQDQAgGHqnQQN2IARqIQQMBAsgBEEIaiEEIANB',
  'CGohAyAFQQhqIgUgB0kNAAsLAkAgBSAbTw0AIAMoAAAgBSgAAEcNACADQQRqIQMgBUEEaiEFCwJAIAUgGk8NACADLwAAIAUvAABH',
  'DQAgA0ECaiEDIAVBAmohBQsCQCAFIBNPDQAgBSADLQAAIAUtAABGaiEFCyAFIBBrIQQMAQsgGHqnQQN2IQQLIBYgBEHwAWpB/wFu',
  'akEIaiALSw0GIBZBAmohAyAEIAZqQQRqIQYgDC0AACEFAkACQCAEQQ9JDQAgDCAFQQ9qOgAAIANBfzYAAAJAIARBcWoiBUH8B0kN',
  'AAJAIARB9XdqIhBB/AduQQFqQQdxIgRFDQAgFkEGaiEDA0AgA0F/NgAAIANBBGohAyAFQYR4aiEFIARBf2oiBA0ACyADQXxqIQML',
  'IBBB5DdJDQADQCADQRxqQn83AAAgA0EUakJ/NwAAIANBDGpCfzcAACADQQRqQn83AAAgA0EgaiEDIAVBoEBqIgVB+wdLDQALCyAD',
  'IAVB//8DcUH/AW4iBGoiAyAFIARqOgAAIANBAWohDAwBCyAMIAUgBGo6AAAgAyEMCyAGIBRPDQIgBkF+aiIDKQAAQoCAgNjLm++N',
  'T35CNIinIQUCQAJAIBcNACAAIAVBAnRqIAM2AgAgACAGKQAAIhhCgICA2Mub741PfkI0iKdBAnRqIgMoAgAhBSADIAY2AgAgBUH/',
  '/wNqIAZJDQMgBSgAACAYp0cNAwwBCyAAIAVBAnRqIAMgEWs2AgAgACAGKQAAQoCAgNjLm++NT35CNIinQQJ0aiIFKAIAIQMgBSAG',
  'IBFrIgQ2AgAgESADaiEFIANB//8DaiAESQ0CIAUoAAAgBigAAEcNAgsgDEEAOgAAIAxBAWohFgwACwsLQQAhCiAMIA0gBmsiBWog',
  'BUHwAWpB/wFuakEBaiALSw0DAkACQCAFQQ9JDQAgDEHwAToAACAMQQFqIQwCQCAFQXFqIgNB/wFJDQADQCAMQf8BOgAAIAxBAWoh',
  'DCADQYF+aiIDQf4BSw0ACwsgDCADOgAADAELIAwgBUEEdDoAAAsgDEEBaiIDIAYgBfwKAAAgAyAFaiACayEKDAMLQQAhCiADQYCA',
  'gPAHSw0CAkAgAw0AIARBAUgNAyACQQA6AABBAQ8LIABBAzYCjIABIAAgAzYCiIABIAAgAzYCkIABIAIgBGohCyABIANqIRcCQAJA',
  'IANBDU8NACACIRQgASEFDAELIBdBdWohDCAAIAEoAABBsfPd8XlsQRJ2Qf7/AHFqQQA7AQAgAUF+aiEPIBdBe2oiE0F/aiENIBNB',
  'fWohDiATQXlqIQYgCEEGdCEIIAIhFCABIQUDQCAFQQFqIQMgBSgAASEEQQEhESAIIRYDQCADIgcgEWoiAyAMSw0CIAAgBEGx893x',
  'eWxBEnZB/v8AcWoiEC8BACEVIBAgByABazsBACAWQQZ2IREgASAVaiIQKAAAIARHIQkgAygAACEEIBZBAWohFiAJDQALAkAgFUUN',
  'ACAHQX9qLQAAIBBBf2otAABHDQAgB0F+aiEDIA8gFWohBANAIANBAWohByAEQQFqIhAgAU0NASAHIAVNDQEgBC0AACEWIAMtAAAh',
  'ESADQX9qIQMgBEF/aiEEIBEgFkYNAAsLAkAgFCAHIAVrIhZqIBZB/wFuakEJaiALTQ0AQQAPCyAUQQFqIQMCQAJAIBZBD0kNACAU',
  'QfABOgAAAkAgFkFxaiIEQf8BSQ0AA0AgA0H/AToAACADQQFqIQMgBEGBfmoiBEH+AUsNAAsLIAMgBDoAACADQQFqIQMMAQsgFCAW',
  'QQR0OgAACyADIBZqIRYDQCADIAUpAAA3AAAgBUEIaiEFIANBCGoiAyAWSQ0ACwNAIBYgByAQazsAACAQQQRqIQMCQAJAAkACQCAG',
  'IAdBBGoiEUsNACARIQUMAQsgESkAACADKQAAhSIYQgBSDQEgEEEMaiEDIAdBDGohBQsCQCAFIAZPDQAgBSAHa0F8aiEEA0ACQCAF',
  'KQAAIAMpAACFIhhQDQAgGHqnQQN2IARqIQQMBAsgBEEIaiEEIANBCGohAyAFQQhqIgUgBkkNAAsLAkAgBSAOTw0AIAMoAAAgBSgA',
  'AEcNACADQQRqIQMgBUEEaiEFCwJAIAUgDU8NACADLwAAIAUvAABHDQAgA0ECaiEDIAVBAmohBQsCQCAFIBNPDQAgBSADLQAAIAUt',
  'AABGaiEFCyAFIBFrIQQMAQsgGHqnQQN2IQQLAkAgFiAEQfABakH/AW5qQQhqIAtNDQBBAA8LIBZBAmohAyAEIAdqQQRqIQcgFC0A',
  'ACEFAkACQCAEQQ9JDQAgFCAFQQ9qOgAAIANBfzYAAAJAIARBcWoiBUH8B0kNAAJAIARB9XdqIhBB/AduQQFqQQdxIgRFDQAgFkEG',
  'aiEDA0AgA0F/NgAAIANBBGohAyAFQYR4aiEFIARBf2oiBA0ACyADQXxqIQMLIBBB5DdJDQADQCADQRxqQn83AAAgA0EUakJ/NwAA',
  'IANBDGpCfzcAACADQQRqQn83AAAgA0EgaiEDIAVBoEBqIgVB+wdLDQALCyADIAVB//8DcUH/AW4iBGoiAyAFIARqOgAAIANBAWoh',
  'AwwBCyAUIAUgBGo6AAALAkAgByAMSQ0AIAMhFCAHIQUMAwsgACAHQX5qIgUoAABBsfPd8XlsQRJ2Qf7/AHFqIAUgAWs7AQAgACAH',
  'KAAAIgVBsfPd8XlsQRJ2Qf7/AHFqIgQvAQAhFiAEIAcgAWs7AQACQCAFIAEgFmoiECgAAEYNACADIRQgByEFDAILIANBADoAACAD',
  'QQFqIRYgAyEUDAALCwsgFCAXIAVrIgRqIARB8AFqQf8BbmpBAWogC0sNAgJAAkAgBEEPSQ0AIBRB8AE6AAAgFEEBaiEUAkAgBEFx',
  'aiIDQf8BSQ0AA0AgFEH/AToAACAUQQFqIRQgA0GBfmoiA0H+AUsNAAsLIBQgAzoAAAwBCyAUIARBBHQ6AAALIBRBAWoiAyAFIAT8',
  'CgAAIAMgBGogAmsPCwJAAkAgCiAEayIFQQ9JDQAgEUHwAToAACARQQFqIRECQCAFQXFqIgNB/wFJDQADQCARQf8BOgAAIBFBAWoh',
  'ESADQYF+aiIDQf4BSw0ACwsgESADOgAADAELIBEgBUEEdDoAAAsgEUEBaiIDIAQgBfwKAAAgAyAFaiACaw8LQQAhCiADQYCAgPAH',
  'Sw0AAkAgAw0AIAJBADoAAEEBDwsgAEEDNgKMgAEgACADNgKIgAEgACADNgKQgAEgASADaiELAkAgA0ENTw0AIAIhFCABIQUMAgsg',
  'C0F1aiEMIAAgASgAAEGx893xeWxBEnZB/v8AcWpBADsBACABQX5qIQ4gC0F7aiIXQX9qIRMgF0F9aiENIBdBeWohBCAIQQZ0IQog',
  'AiEUIAEhBQNAIAVBAWohAyAFKAABIQdBASERIAohFgNAIAMiBiARaiIDIAxLDQMgACAHQbHz3fF5bEESdkH+/wBxaiIQLwEAIRUg',
  'ECAGIAFrOwEAIBZBBnYhESABIBVqIhAoAAAgB0chCSADKAAAIQcgFkEBaiEWIAkNAAsCQCAVRQ0AIAZBf2otAAAgEEF/ai0AAEcN',
  'ACAGQX5qIQMgDiAVaiEHA0AgA0EBaiEGIAdBAWoiECABTQ0BIAYgBU0NASAHLQAAIRYgAy0AACERIANBf2ohAyAHQX9qIQcgESAW',
  'Rg0ACwsgFEEBaiEDAkACQCAGIAVrIhZBD0kNACAUQfABOgAAAkAgFkFxaiIHQf8BSQ0AA0AgA0H/AToAACADQQFqIQMgB0GBfmoi',
  'B0H+AUsNAAsLIAMgBzoAACADQQFqIQMMAQsgFCAWQQR0OgAACyADIBZqIQcDQCADIAUpAAA3AAAgBUEIaiEFIANBCGoiAyAHSQ0A',
  'CwNAIAcgBiAQazsAACAQQQRqIQMgB0ECaiEWAkACQAJAAkACQCAEIAZBBGoiEUsNACARIQUMAQsgESkAACADKQAAhSIYQgBSDQEg',
  'EEEMaiEDIAZBDGohBQsCQAJAIAUgBE8NAANAAkAgBSkAACADKQAAhSIYUA0AIAUgGHqnQQN2aiEFDAMLIANBCGohAyAFQQhqIgUg',
  'BEkNAAsLAkAgBSANTw0AIAMoAAAgBSgAAEcNACADQQRqIQMgBUEEaiEFCwJAIAUgE08NACADLwAAIAUvAABHDQAgA0ECaiEDIAVB',
  'AmohBQsgBSAXTw0AIAUgAy0AACAFLQAARmohBQsgBSARayIDIAZqQQRqIQYgFC0AACEFIANBD0kNASAUIAVBD2o6AAAgFkF/NgAA',
  'AkAgA0FxaiIFQfwHSQ0AIAdBBmohAwNAIANBfzYAACADQQRqIQMgBUGEeGoiBUH7B0sNAAsgA0F8aiEWCyAWIAVB//8DcUH/AW4i',
  'A2oiByAFIANqOgAAIAdBAWohFgwCCyAYeqdBA3YiAyAGakEEaiEGIBQtAAAhBQsgFCAFIANqOgAACwJAIAYgDEkNACAWIRQgBiEF',
  'DAQLIAAgBkF+aiIDKAAAQbHz3fF5bEESdkH+/wBxaiADIAFrOwEAIAAgBigAACIDQbHz3fF5bEESdkH+/wBxaiIFLwEAIQcgBSAG',
  'IAFrOwEAAkAgAyABIAdqIhAoAABGDQAgFiEUIAYhBQwCCyAWQQA6AAAgFkEBaiEHIBYhFAwACwsLIAoPCwJAAkAgCyAFayIEQQ9J',
  'DQAgFEHwAToAACAUQQFqIRQCQCAEQXFqIgNB/wFJDQADQCAUQf8BOgAAIBRBAWohFCADQYF+aiIDQf4BSw0ACwsgFCADOgAADAEL',
  'IBQgBEEEdDoAAAsgFEEBaiIDIAUgBPwKAAAgAyAEaiACawsYAEGAiICAACAAIAEgAiADIAQQgICAgAALEQBBgIiAgABBAEGUgAH8',
  'CwALJgEBf0EAIQECQCAAQYCAgPAHSw0AIAAgAEH/AW5qQRBqIQELIAELAFkEbmFtZQE+BAAkTFo0X2NvbXByZXNzX2Zhc3RfZXh0',
  'U3RhdGVfZmFzdFJlc2V0AQhjb21wcmVzcwIEaW5pdAMFYm91bmQHEgEAD19fc3RhY2tfcG9pbnRlcgAtCXByb2R1Y2VycwEMcHJv',
  'Y2Vzc2VkLWJ5AQxEZWJpYW4gY2xhbmcGMTQuMC42AD0PdGFyZ2V0X2ZlYXR1cmVzAysLYnVsay1tZW1vcnkrE25vbnRyYXBwaW5n',
  'LWZwdG9pbnQrCHNpZ24tZXh0',
].join('');
