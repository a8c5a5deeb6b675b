/**
 * LZ4 compression with the reference liblz4 compiled to WebAssembly, on a worker thread that shares
 * its memory with the writer.
 *
 * lz4-napi (Rust lz4_flex) compressed pgbench WAL at ~550-650 MiB/s a core here, liblz4's
 * LZ4_compress_fast at acceleration 1 (what pg_receivewal's LZ4F uses) ~1,200 MiB/s as WebAssembly
 * in V8 on the same 1 MiB frames, with the same output size (0.18-0.19 bytes per WAL byte).
 *
 * The memory is a shared WebAssembly.Memory cut into slots (Lz4Slot): a frame's WAL is copied into a
 * slot's input, the worker compresses it into the slot's output, and the writer writes the frame to
 * the file from there, so the worker only compresses (with memory of its own it also copied every
 * frame in and out, and each hand-off moved an ArrayBuffer: ~10% more CPU for a catch-up in all).
 * The module's own stack and state sit below SLOTS_BASE and belong to the one worker that runs it.
 *
 * The module is lib/lz4.c of lz4 v1.10.0 (BSD-2-Clause, Copyright (c) Yann Collet; lz4/lz4
 * commit d9c01a3d), with one change: reg_t is 64-bit on wasm as on x86-64 (the line
 * `#if defined(__x86_64__)` before `typedef U64 reg_t;` reads `#if defined(__x86_64__) ||
 * defined(__wasm__)`; 8-byte match compares, ~10% faster), built with clang 14:
 *
 *   clang --target=wasm32 -O3 -matomics -mbulk-memory -msign-ext -mnontrapping-fptoint -nostdlib \
 *     -ffreestanding -Wl,--no-entry -Wl,--export=__heap_base -Wl,--import-memory -Wl,--shared-memory \
 *     -Wl,--max-memory=1073741824 -o lz4.wasm wrap.c
 *
 * from this wrap.c:
 *
 *   #define LZ4_FREESTANDING 1
 *   #define LZ4_memcpy(d,s,n) __builtin_memcpy((d),(s),(n))
 *   #define LZ4_memset(p,v,n) __builtin_memset((p),(v),(n))
 *   #define LZ4_memmove(d,s,n) __builtin_memmove((d),(s),(n))
 *   #include "lz4.c"
 *   #define BLOCK (4 << 20)
 *   static LZ4_stream_t state;
 *   static void put32(char* p, unsigned v) { p[0] = (char)v; p[1] = (char)(v >> 8); p[2] = (char)(v >> 16); p[3] = (char)(v >> 24); }
 *   __attribute__((export_name("init")))
 *   void init(void) { LZ4_initStream(&state, sizeof(state)); }
 *   __attribute__((export_name("frameBound")))
 *   int frameBound(int n) {
 *     int b = 11;
 *     for (int at = 0; at < n; at += BLOCK) b += 4 + LZ4_compressBound(n - at < BLOCK ? n - at : BLOCK);
 *     return b;
 *   }
 *   __attribute__((export_name("frame")))
 *   int frame(const char* src, char* dst, int n) {
 *     static const char header[7] = { 0x04, 0x22, 0x4d, 0x18, 0x60, 0x70, 0x73 };
 *     char* p = dst;
 *     __builtin_memcpy(p, header, 7);
 *     p += 7;
 *     for (int at = 0; at < n; at += BLOCK) {
 *       int len = n - at < BLOCK ? n - at : BLOCK;
 *       int size = LZ4_compress_fast_extState_fastReset(&state, src + at, p + 4, len, LZ4_compressBound(len), 1);
 *       if (size > 0 && size < len) {
 *         put32(p, (unsigned)size);
 *       } else {
 *         put32(p, (unsigned)len | 0x80000000u);
 *         __builtin_memcpy(p + 4, src + at, len);
 *         size = len;
 *       }
 *       p += 4 + size;
 *     }
 *     put32(p, 0);
 *     return (int)(p + 4 - dst);
 *   }
 *
 * frame() writes one LZ4 frame (lz4_Frame_format.md): magic, FLG 0x60 (version 01, independent
 * blocks, no checksums, no content size), BD 0x70 (blocks up to 4 MiB), header checksum, the blocks
 * (each stored as it is when it would not shrink, as the format allows), the end mark.
 * (sha256 of the module: 00c85e4fa27fdd90cb880b14580a4a4f4270567b982d63fe97015e684ce9bd4a).
 */
import { Worker } from 'node:worker_threads';

/** Input bytes of a slot: the writer's frame size. */
export const LZ4_SLOT_INPUT = 1 << 20;
/** The module's stack and state end below this address (checked when the worker starts). */
const SLOTS_BASE = 1 << 20;
/** Output room of a slot: frameBound(LZ4_SLOT_INPUT) (1,052,719) rounded up to 64 KiB pages. */
const SLOT_OUTPUT = LZ4_SLOT_INPUT + (64 << 10);
const SLOT_STRIDE = LZ4_SLOT_INPUT + SLOT_OUTPUT;
const PAGE = 64 << 10;
/** Slots the memory starts with (a writer's frame being filled, codec.ts's framesInFlight('lz4') being compressed, the next segment's first) and may grow to. */
const INITIAL_SLOTS = 10;
const MAX_SLOTS = 32;

type Exports = { init(): void; frameBound(n: number): number; frame(src: number, dst: number, n: number): number; __heap_base: WebAssembly.Global };

let moduleCache: WebAssembly.Module | undefined;
const wasmModule = () => (moduleCache ??= new WebAssembly.Module(Buffer.from(LZ4_WASM, 'base64')));

/**
 * liblz4 on the calling thread, in memory of its own: frame() compresses synchronously (for inputs of
 * any size: tests, and the writer's fallback when every shared slot is taken).
 */
export class Lz4Compressor {
  private readonly memory: WebAssembly.Memory;
  private readonly exports: Exports;
  private readonly base: number;

  constructor() {
    this.memory = new WebAssembly.Memory({ initial: SLOTS_BASE / PAGE, maximum: 4096, shared: true });
    this.exports = new WebAssembly.Instance(wasmModule(), { env: { memory: this.memory } }).exports as unknown as Exports;
    this.exports.init();
    this.base = ((this.exports.__heap_base.value as number) + 15) & ~15;
  }

  /** One LZ4 frame of `data` (a new buffer). */
  frame(data: Uint8Array): Buffer {
    const outPtr = (this.base + data.length + 15) & ~15;
    const need = outPtr + this.exports.frameBound(data.length);
    const have = this.memory.buffer.byteLength;
    if (need > have) this.memory.grow(Math.ceil((need - have) / PAGE));
    new Uint8Array(this.memory.buffer).set(data, this.base);
    const length = this.exports.frame(this.base, outPtr, data.length);
    return Buffer.from(new Uint8Array(this.memory.buffer, outPtr, length));
  }
}

/**
 * The worker (CommonJS, evaluated): liblz4 on the shared memory; a task names a slot's input, its
 * length and the slot's output, and the answer is the frame's length.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { memory, module, slotsBase } = workerData;
const { init, frame, __heap_base } = new WebAssembly.Instance(module, { env: { memory } }).exports;
if (__heap_base.value > slotsBase) throw new Error('the lz4 module reaches past its slots');
init();
parentPort.on('message', ({ id, src, dst, length }) => {
  try {
    parentPort.postMessage({ id, length: frame(src, dst, length) });
  } catch (err) {
    parentPort.postMessage({ id, length: -1, error: String((err && err.message) || err) });
  }
});
`;

/** A slot of the shared memory: the writer fills `input`; compress() leaves the frame in its output. */
export interface Lz4Slot {
  readonly input: Buffer;
  /** Where input and output start in the memory. */
  readonly inPtr: number;
  readonly outPtr: number;
}

/**
 * The LZ4 worker and its shared memory. An idle worker does not keep the process alive (unref'd while
 * it has no task); one that dies fails its tasks and is replaced at the next one.
 */
export class Lz4Worker {
  private worker: Worker | undefined;
  private load = 0;
  private readonly memory = new WebAssembly.Memory({
    initial: (SLOTS_BASE + INITIAL_SLOTS * SLOT_STRIDE) / PAGE,
    maximum: (SLOTS_BASE + MAX_SLOTS * SLOT_STRIDE) / PAGE,
    shared: true,
  });
  private slotCount = 0;
  private readonly free: Lz4Slot[] = [];
  private readonly waiting = new Map<number, { resolve: (frame: Buffer) => void; reject: (err: Error) => void; slot: Lz4Slot }>();
  private nextId = 0;

  /** Start the worker now (at start-up, rather than with the first frame). */
  start(): void {
    if (this.worker) return;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { memory: this.memory, module: wasmModule(), slotsBase: SLOTS_BASE } });
    this.worker = worker;
    this.load = 0;
    worker.on('message', (result: { id: number; length: number; error?: string }) => {
      const task = this.waiting.get(result.id);
      if (!task) return;
      this.waiting.delete(result.id);
      if (--this.load === 0) worker.unref();
      if (result.error !== undefined) task.reject(new Error(`lz4 compression failed: ${result.error}`));
      else task.resolve(Buffer.from(this.memory.buffer, task.slot.outPtr, result.length));
    });
    const fail = (err: Error) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const [id, task] of this.waiting) {
        this.waiting.delete(id);
        task.reject(err);
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`lz4 worker exited with code ${code}`)));
    worker.unref(); // after the listeners: adding a 'message' listener refs the worker's port again
  }

  /** A free slot, or null when all MAX_SLOTS are taken. Give it back with release(). */
  take(): Lz4Slot | null {
    const slot = this.free.pop();
    if (slot) return slot;
    if (this.slotCount === MAX_SLOTS) return null;
    const inPtr = SLOTS_BASE + this.slotCount * SLOT_STRIDE;
    if (inPtr + SLOT_STRIDE > this.memory.buffer.byteLength) this.memory.grow(SLOT_STRIDE / PAGE);
    this.slotCount++;
    return { input: Buffer.from(this.memory.buffer, inPtr, LZ4_SLOT_INPUT), inPtr, outPtr: inPtr + LZ4_SLOT_INPUT };
  }

  release(slot: Lz4Slot): void {
    this.free.push(slot);
  }

  /**
   * One LZ4 frame of slot.input[0, length): resolves to a view of the slot's output holding it, valid
   * until the slot is released. Neither part of the slot may be touched meanwhile.
   */
  compress(slot: Lz4Slot, length: number): Promise<Buffer> {
    this.start();
    const worker = this.worker!;
    if (this.load++ === 0) worker.ref();
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, slot });
      worker.postMessage({ id, src: slot.inPtr, dst: slot.outPtr, length });
    });
  }
}

let shared: Lz4Worker | undefined;

/** The process's LZ4 worker (starting a worker costs ~30-50 ms of CPU; one compresses WAL at ~1.2 GiB/s). */
export function lz4Worker(): Lz4Worker {
  return (shared ??= new Lz4Worker());
}

/** The module, base64. */
const LZ4_WASM = [
  'AGFzbQEAAAABGgRgAABgBn9/f39/fwF/YAF/AX9gA39/fwF/AhIBA2VudgZtZW1vcnkCAwKAgAEDBgUAAQACAwQFAXABAQEGDwJ/',
  'AUGwiAULfwBBsIgFCwcrBARpbml0AAIKZnJhbWVCb3VuZAADBWZyYW1lAAQLX19oZWFwX2Jhc2UDAQgBAAwBAQqHTQVaAAJAAkAC',
  'QEGoiAFBAEEB/kgCAA4CAAECC0GACEEAQQf8CAAAQYgIQQBBoIAB/AsAQaiIAUEC/hcCAEGoiAFBf/4AAgAaDAELQaiIAUEBQn/+',
  'AQIAGgv8CQALiUkDEn8BfgN/IAVBASAFQQFKGyIGQYGABEkhB0EAIQUCQCADQYCAgPAHSw0AIAMgA0H/AW5qQRBqIQULIAZBgYAE',
  'IAcbIQgCQAJAAkACQAJAIAUgBEoNAAJAIANBioAESg0AAkACQAJAAkAgACgCjIABDgQCAQEAAQsgA0H/H0oNACAAKAKIgAEiCSAD',
  'akH//wNJDQILIABBAEGUgAH8CwAMBQsgACgCiIABIQkLQQAhCiAAQQA2ApCAASAAQgA3AoCAASAJRQ0DIANBgICA8AdLDQQCQCAD',
  'DQAgAkEAOgAAQQEPCyAAQQM2AoyAASAAIAM2ApCAASAAIAkgA2o2AoiAASABIANqIQoCQAJAIANBDU8NACACIQsgASEEDAELIApB',
  'dWohDCAAIAEoAABBsfPd8XlsQRJ2Qf7/AHFqIAk7AQAgAUECaiEDIApBe2oiDUF/aiEOIA1BfWohDyANQXlqIRAgASAJayIRQX5q',
  'IRIgCEEGdEEBciETIAEhBCACIQsDQCAEQQFqIQcgBCgAASEUIAghFSATIQUCQANAIAAgFEGx893xeWxBEnZB/v8AcWoiBi8BACEW',
  'IAYgByARazsBACADIgYoAAAhFAJAIAkgFksNACARIBZqIhcoAAAgBygAAEYNAgsgBUEGdiEHIAVBAWohBSAGIBVqIQMgByEVIAYh',
  'ByADIAxNDQAMAwsLAkAgFyABTQ0AIAdBf2otAAAgF0F/ai0AAEcNACAHQX5qIQMgEiAWaiEFA0AgA0EBaiEHIAVBAWoiFyABTQ0B',
  'IAcgBE0NASAFLQAAIQYgAy0AACEWIANBf2ohAyAFQX9qIQUgFiAGRg0ACwsgC0EBaiEDAkACQCAHIARrIgZBD0kNACALQfABOgAA',
  'AkAgBkFxaiIFQf8BSQ0AA0AgA0H/AToAACADQQFqIQMgBUGBfmoiBUH+AUsNAAsLIAMgBToAACADQQFqIQMMAQsgCyAGQQR0OgAA',
  'CyADIAZqIQYDQCADIAQpAAA3AAAgBEEIaiEEIANBCGoiAyAGSQ0ACyAHIQQDQCALIQcgBiAEIBdrOwAAIBdBBGohAyAGQQJqIQsC',
  'QAJAAkACQAJAIBAgBEEEaiIWSw0AIBYhBQwBCyAWKQAAIAMpAACFIhhCAFINASAXQQxqIQMgBEEMaiEFCwJAAkAgBSAQTw0AA0AC',
  'QCAFKQAAIAMpAACFIhhQDQAgBSAYeqdBA3ZqIQUMAwsgA0EIaiEDIAVBCGoiBSAQSQ0ACwsCQCAFIA9PDQAgAygAACAFKAAARw0A',
  'IANBBGohAyAFQQRqIQULAkAgBSAOTw0AIAMvAAAgBS8AAEcNACADQQJqIQMgBUECaiEFCyAFIA1PDQAgBSADLQAAIAUtAABGaiEF',
  'CyAFIBZrIgMgBGpBBGohBCAHLQAAIQUgA0EPSQ0BIAcgBUEPajoAACALQX82AAACQCADQXFqIgVB/AdJDQAgBkEGaiEDA0AgA0F/',
  'NgAAIANBBGohAyAFQYR4aiIFQfsHSw0ACyADQXxqIQsLIAsgBUH//wNxQf8BbiIDaiIGIAUgA2o6AAAgBkEBaiELDAILIBh6p0ED',
  'diIDIARqQQRqIQQgBy0AACEFCyAHIAUgA2o6AAALIAQgDE8NAiAAIARBfmoiAygAAEGx893xeWxBEnZB/v8AcWogAyARazsBACAA',
  'IAQoAAAiBkGx893xeWxBEnZB/v8AcWoiBS8BACEDIAUgBCARazsBAAJAIAkgA0sNACARIANqIhcoAAAgBkcNACALQQA6AAAgC0EB',
  'aiEGDAELCyAEQQJqIgMgDE0NAAsLAkACQCAKIARrIgVBD0kNACALQfABOgAAIAtBAWohCwJAIAVBcWoiA0H/AUkNAANAIAtB/wE6',
  'AAAgC0EBaiELIANBgX5qIgNB/gFLDQALCyALIAM6AAAMAQsgCyAFQQR0OgAACyALQQFqIgMgBCAF/AoAACADIAVqIAJrDwsgAUH/',
  '/wNLIQQCQAJAIAAoAoyAAUUNAEEAIQUgAEEAQYCAAfwLACAAQgA3AoiAAQwBCyAAKAKIgAEhBSAEDQAgBUUNACAAIAVBgIAEaiIF',
  'NgKIgAELQQAhCiAAQQA2ApCAASAAQgA3AoCAASADQYCAgPAHSw0DIABBAUECIAQbNgKMgAEgACADNgKQgAEgACAFIANqNgKIgAEg',
  'ASADaiIKQXtqIRcgASkAAEKAgIDYy5vvjU9+QjSIpyEDAkACQCABQYCABEkNACAAIANBAnRqIAE2AgAMAQsgACADQQJ0aiAFNgIA',
  'CyABIAVrIRUgCkF1aiEUIApBdGohDSAXQX9qIRIgF0F9aiEZIBdBeWohBiAIQQZ0Ig9BAXIhDiABQf//A0shEyABQYCABEkhCyAC',
  'IREgASEEA0AgBEEBaiEDIAQpAAFCgICA2Mub741PfkI0iKchBQJAAkAgEw0AIAghDCAOIRYgBEECaiIHIBRLDQQDQCAAIAVBAnRq',
  'IhAoAgAhBSAQIAMgFWsiCTYCACAHIhApAAAhGAJAIAVB//8DaiAJSQ0AIBUgBWoiBSgAACADKAAARg0DCyAYQoCAgNjLm++NT35C',
  'NIinIQUgFkEGdiEDIBZBAWohFiAQIAxqIQcgAyEMIBAhAyAHIBRNDQAMBQsLIAMgDUsNAyAEQQJqIRYgDyEHA0AgACAFQQJ0aiIQ',
  'KAIAIQUgECADNgIAIBYiFikAACEYAkAgBUH//wNqIANJDQAgBSgAACADKAAARg0CCyAHQQZ1IRAgGEKAgIDYy5vvjU9+QjSIpyEF',
  'IAdBAWohByAWIQMgFiAQaiIWIBRNDQAMBAsLAkAgBSABTQ0AIANBf2otAAAgBUF/ai0AAEcNACADQX5qIQcgBUF+aiEWA0AgB0EB',
  'aiEDIBZBAWoiBSABTQ0BIAMgBE0NASAWLQAAIRAgBy0AACEJIAdBf2ohByAWQX9qIRYgCSAQRg0ACwsgEUEBaiEHAkACQCADIARr',
  'IhBBD0kNACARQfABOgAAAkAgEEFxaiIWQf8BSQ0AA0AgB0H/AToAACAHQQFqIQcgFkGBfmoiFkH+AUsNAAsLIAcgFjoAACAHQQFq',
  'IQcMAQsgESAQQQR0OgAACyAHIBBqIRYDQCAHIAQpAAA3AAAgBEEIaiEEIAdBCGoiByAWSQ0ACyADIQQDQCAWIAQgBWs7AAAgBUEE',
  'aiEDIBZBAmohEAJAAkACQAJAAkAgBiAEQQRqIgdLDQAgByEFDAELIAcpAAAgAykAAIUiGEIAUg0BIAVBDGohAyAEQQxqIQULAkAC',
  'QCAFIAZPDQADQAJAIAUpAAAgAykAAIUiGFANACAFIBh6p0EDdmohBQwDCyADQQhqIQMgBUEIaiIFIAZJDQALCwJAIAUgGU8NACAD',
  'KAAAIAUoAABHDQAgA0EEaiEDIAVBBGohBQsCQCAFIBJPDQAgAy8AACAFLwAARw0AIANBAmohAyAFQQJqIQULIAUgF08NACAFIAMt',
  'AAAgBS0AAEZqIQULIAUgB2siAyAEakEEaiEEIBEtAAAhBSADQQ9JDQEgESAFQQ9qOgAAIBBBfzYAAAJAIANBcWoiBUH8B0kNACAW',
  'QQZqIQMDQCADQX82AAAgA0EEaiEDIAVBhHhqIgVB+wdLDQALIANBfGohEAsgECAFQf//A3FB/wFuIgNqIgcgBSADajoAACAHQQFq',
  'IREMAgsgGHqnQQN2IgMgBGpBBGohBCARLQAAIQULIBEgBSADajoAACAQIRELIAQgFE8NAyAEQX5qIgMpAABCgICA2Mub741PfkI0',
  'iKchBQJAAkAgCw0AIAAgBUECdGogAzYCACAAIAQpAAAiGEKAgIDYy5vvjU9+QjSIp0ECdGoiAygCACEFIAMgBDYCACAFQf//A2og',
  'BEkNAyAFKAAAIBinRw0DDAELIAAgBUECdGogAyAVazYCACAAIAQpAABCgICA2Mub741PfkI0iKdBAnRqIgUoAgAhAyAFIAQgFWsi',
  'BzYCACAVIANqIQUgA0H//wNqIAdJDQIgBSgAACAEKAAARw0CCyARQQA6AAAgEUEBaiEWDAALCwsCQAJAIANBioAESg0AAkACQAJA',
  'AkAgACgCjIABDgQCAQEAAQsgA0H/H0oNACAAKAKIgAEiDCADakH//wNJDQILIABBAEGUgAH8CwAMAwsgACgCiIABIQwLQQAhCiAA',
  'QQA2ApCAASAAQgA3AoCAASAMRQ0BIANBgICA8AdLDQQCQCADDQAgBEEBSA0FIAJBADoAAEEBDwsgAEEDNgKMgAEgACADNgKQgAEg',
  'ACAMIANqNgKIgAEgAiAEaiETIAEgA2ohDQJAAkAgA0ENTw0AIAIhAyABIQYMAQsgDUF1aiELIAAgASgAAEGx893xeWxBEnZB/v8A',
  'cWogDDsBACABQQFqIRYgAUECaiEFIA1Be2oiD0F/aiESIA9BfWohGSAPQXlqIRQgASAMayIVQX5qIRogCEEGdEEBciEOIAEhBiAC',
  'IQMDQCAWKAAAIREgCCEJIA4hBAJAA0AgACARQbHz3fF5bEESdkH+/wBxaiIHLwEAIRAgByAWIBVrOwEAIAUiBygAACERAkAgDCAQ',
  'Sw0AIBUgEGoiFygAACAWKAAARg0CCyAEQQZ2IRYgBEEBaiEEIAcgCWohBSAWIQkgByEWIAUgC00NAAwDCwsCQCAXIAFNDQAgFkF/',
  'ai0AACAXQX9qLQAARw0AIBZBfmohBSAaIBBqIQQDQCAFQQFqIRYgBEEBaiIXIAFNDQEgFiAGTQ0BIAQtAAAhByAFLQAAIRAgBUF/',
  'aiEFIARBf2ohBCAQIAdGDQALCwJAIAMgFiAGayIHaiAHQf8BbmpBCWogE00NAEEADwsgA0EBaiEFAkACQCAHQQ9JDQAgA0HwAToA',
  'AAJAIAdBcWoiBEH/AUkNAANAIAVB/wE6AAAgBUEBaiEFIARBgX5qIgRB/gFLDQALCyAFIAQ6AAAgBUEBaiEFDAELIAMgB0EEdDoA',
  'AAsgBSAHaiEHA0AgBSAGKQAANwAAIAZBCGohBiAFQQhqIgUgB0kNAAsgFiEGA0AgAyEWIAcgBiAXazsAACAXQQRqIQMCQAJAAkAC',
  'QCAUIAZBBGoiEEsNACAQIQUMAQsgECkAACADKQAAhSIYQgBSDQEgF0EMaiEDIAZBDGohBQsCQCAFIBRPDQAgBSAGa0F8aiEEA0AC',
  'QCAFKQAAIAMpAACFIhhQDQAgGHqnQQN2IARqIQQMBAsgBEEIaiEEIANBCGohAyAFQQhqIgUgFEkNAAsLAkAgBSAZTw0AIAMoAAAg',
  'BSgAAEcNACADQQRqIQMgBUEEaiEFCwJAIAUgEk8NACADLwAAIAUvAABHDQAgA0ECaiEDIAVBAmohBQsCQCAFIA9PDQAgBSADLQAA',
  'IAUtAABGaiEFCyAFIBBrIQQMAQsgGHqnQQN2IQQLAkAgByAEQfABakH/AW5qQQhqIBNNDQBBAA8LIAdBAmohAyAEIAZqQQRqIQYg',
  'Fi0AACEFAkACQCAEQQ9JDQAgFiAFQQ9qOgAAIANBfzYAAAJAIARBcWoiBUH8B0kNAAJAIARB9XdqIhZB/AduQQFqQQdxIgRFDQAg',
  'B0EGaiEDA0AgA0F/NgAAIANBBGohAyAFQYR4aiEFIARBf2oiBA0ACyADQXxqIQMLIBZB5DdJDQADQCADQRxqQn83AAAgA0EUakJ/',
  'NwAAIANBDGpCfzcAACADQQRqQn83AAAgA0EgaiEDIAVBoEBqIgVB+wdLDQALCyADIAVB//8DcUH/AW4iBGoiAyAFIARqOgAAIANB',
  'AWohAwwBCyAWIAUgBGo6AAALIAYgC08NAiAAIAZBfmoiBSgAAEGx893xeWxBEnZB/v8AcWogBSAVazsBACAAIAYoAAAiB0Gx893x',
  'eWxBEnZB/v8AcWoiBC8BACEFIAQgBiAVazsBAAJAIAwgBUsNACAVIAVqIhcoAAAgB0cNACADQQA6AAAgA0EBaiEHDAELCyAGQQFq',
  'IRYgBkECaiIFIAtNDQALCyADIA0gBmsiBGogBEHwAWpB/wFuakEBaiATSw0EAkACQCAEQQ9JDQAgA0HwAToAACADQQFqIQMCQCAE',
  'QXFqIgVB/wFJDQADQCADQf8BOgAAIANBAWohAyAFQYF+aiIFQf4BSw0ACwsgAyAFOgAADAELIAMgBEEEdDoAAAsgA0EBaiIDIAYg',
  'BPwKAAAgAyAEaiACaw8LIAFB//8DSyEGAkACQCAAKAKMgAFFDQBBACEFIABBAEGAgAH8CwAgAEIANwKIgAEMAQsgACgCiIABIQUg',
  'Bg0AIAVFDQAgACAFQYCABGoiBTYCiIABC0EAIQogAEEANgKQgAEgAEIANwKAgAEgA0GAgIDwB0sNAyAAQQFBAiAGGzYCjIABIAAg',
  'AzYCkIABIAAgBSADajYCiIABIAEgA2oiDUF7aiETIAEpAABCgICA2Mub741PfkI0iKchAwJAAkAgAUGAgARJDQAgACADQQJ0aiAB',
  'NgIADAELIAAgA0ECdGogBTYCAAsgAiAEaiELIAEgBWshESANQXVqIRQgDUF0aiEPIBNBf2ohGiATQX1qIRsgE0F5aiEHIAhBBnQi',
  'GUEBciESIAFB//8DSyEOIAFBgIAESSEXIAIhDCABIQYCQANAIAZBAWohAyAGKQABQoCAgNjLm++NT35CNIinIQUCQAJAIA4NACAI',
  'IQkgEiEWIAZBAmoiBCAUSw0DA0AgACAFQQJ0aiIQKAIAIQUgECADIBFrIhU2AgAgBCIQKQAAIRgCQCAFQf//A2ogFUkNACARIAVq',
  'IgUoAAAgAygAAEYNAwsgGEKAgIDYy5vvjU9+QjSIpyEFIBZBBnYhAyAWQQFqIRYgECAJaiEEIAMhCSAQIQMgBCAUTQ0ADAQLCyAD',
  'IA9LDQIgBkECaiEWIBkhBANAIAAgBUECdGoiECgCACEFIBAgAzYCACAWIhYpAAAhGAJAIAVB//8DaiADSQ0AIAUoAAAgAygAAEYN',
  'AgsgBEEGdSEQIBhCgICA2Mub741PfkI0iKchBSAEQQFqIQQgFiEDIBYgEGoiFiAUTQ0ADAMLCwJAIAUgAU0NACADQX9qLQAAIAVB',
  'f2otAABHDQAgA0F+aiEEIAVBfmohFgNAIARBAWohAyAWQQFqIgUgAU0NASADIAZNDQEgFi0AACEQIAQtAAAhFSAEQX9qIQQgFkF/',
  'aiEWIBUgEEYNAAsLQQAhCiAMIAMgBmsiEGogEEH/AW5qQQlqIAtLDQUgDEEBaiEEAkACQCAQQQ9JDQAgDEHwAToAAAJAIBBBcWoi',
  'FkH/AUkNAANAIARB/wE6AAAgBEEBaiEEIBZBgX5qIhZB/gFLDQALCyAEIBY6AAAgBEEBaiEEDAELIAwgEEEEdDoAAAsgBCAQaiEW',
  'A0AgBCAGKQAANwAAIAZBCGohBiAEQQhqIgQgFkkNAAsgAyEGA0AgFiAGIAVrOwAAIAVBBGohAwJAAkACQAJAIAcgBkEEaiIQSw0A',
  'IBAhBQwBCyAQKQAAIAMpAACFIhhCAFINASAFQQxqIQMgBkEMaiEFCwJAIAUgB08NACAFIAZrQXxqIQQDQAJAIAUpAAAgAykAAIUi',
  'GFANACAYeqdBA3YgBGohBAwECyAEQQhqIQQgA0EIaiEDIAVBCGoiBSAHSQ0ACwsCQCAFIBtPDQAgAygAACAFKAAARw0AIANBBGoh',
  'AyAFQQRqIQULAkAgBSAaTw0AIAMvAAAgBS8AAEcNACADQQJqIQMgBUECaiEFCwJAIAUgE08NACAFIAMtAAAgBS0AAEZqIQULIAUg',
  'EGshBAwBCyAYeqdBA3YhBAsgFiAEQfABakH/AW5qQQhqIAtLDQYgFkECaiEDIAQgBmpBBGohBiAMLQAAIQUCQAJAIARBD0kNACAM',
  'IAVBD2o6AAAgA0F/NgAAAkAgBEFxaiIFQfwHSQ0AAkAgBEH1d2oiEEH8B25BAWpBB3EiBEUNACAWQQZqIQMDQCADQX82AAAgA0EE',
  'aiEDIAVBhHhqIQUgBEF/aiIEDQALIANBfGohAwsgEEHkN0kNAANAIANBHGpCfzcAACADQRRqQn83AAAgA0EMakJ/NwAAIANBBGpC',
  'fzcAACADQSBqIQMgBUGgQGoiBUH7B0sNAAsLIAMgBUH//wNxQf8BbiIEaiIDIAUgBGo6AAAgA0EBaiEMDAELIAwgBSAEajoAACAD',
  'IQwLIAYgFE8NAiAGQX5qIgMpAABCgICA2Mub741PfkI0iKchBQJAAkAgFw0AIAAgBUECdGogAzYCACAAIAYpAAAiGEKAgIDYy5vv',
  'jU9+QjSIp0ECdGoiAygCACEFIAMgBjYCACAFQf//A2ogBkkNAyAFKAAAIBinRw0DDAELIAAgBUECdGogAyARazYCACAAIAYpAABC',
  'gICA2Mub741PfkI0iKdBAnRqIgUoAgAhAyAFIAYgEWsiBDYCACARIANqIQUgA0H//wNqIARJDQIgBSgAACAGKAAARw0CCyAMQQA6',
  'AAAgDEEBaiEWDAALCwtBACEKIAwgDSAGayIFaiAFQfABakH/AW5qQQFqIAtLDQMCQAJAIAVBD0kNACAMQfABOgAAIAxBAWohDAJA',
  'IAVBcWoiA0H/AUkNAANAIAxB/wE6AAAgDEEBaiEMIANBgX5qIgNB/gFLDQALCyAMIAM6AAAMAQsgDCAFQQR0OgAACyAMQQFqIgMg',
  'BiAF/AoAACADIAVqIAJrIQoMAwtBACEKIANBgICA8AdLDQICQCADDQAgBEEBSA0DIAJBADoAAEEBDwsgAEEDNgKMgAEgACADNgKI',
  'gAEgACADNgKQgAEgAiAEaiELIAEgA2ohFwJAAkAgA0ENTw0AIAIhFCABIQUMAQsgF0F1aiEMIAAgASgAAEGx893xeWxBEnZB/v8A',
  'cWpBADsBACABQX5qIQ8gF0F7aiITQX9qIQ0gE0F9aiEOIBNBeWohBiAIQQZ0IQggAiEUIAEhBQNAIAVBAWohAyAFKAABIQRBASER',
  'IAghFgNAIAMiByARaiIDIAxLDQIgACAEQbHz3fF5bEESdkH+/wBxaiIQLwEAIRUgECAHIAFrOwEAIBZBBnYhESABIBVqIhAoAAAg',
  'BEchCSADKAAAIQQgFkEBaiEWIAkNAAsCQCAVRQ0AIAdBf2otAAAgEEF/ai0AAEcNACAHQX5qIQMgDyAVaiEEA0AgA0EBaiEHIARB',
  'AWoiECABTQ0BIAcgBU0NASAELQAAIRYgAy0AACERIANBf2ohAyAEQX9qIQQgESAWRg0ACwsCQCAUIAcgBWsiFmogFkH/AW5qQQlq',
  'IAtNDQBBAA8LIBRBAWohAwJAAkAgFkEPSQ0AIBRB8AE6AAACQCAWQXFqIgRB/wFJDQADQCADQf8BOgAAIANBAWohAyAEQYF+aiIE',
  'Qf4BSw0ACwsgAyAEOgAAIANBAWohAwwBCyAUIBZBBHQ6AAALIAMgFmohFgNAIAMgBSkAADcAACAFQQhqIQUgA0EIaiIDIBZJDQAL',
  'A0AgFiAHIBBrOwAAIBBBBGohAwJAAkACQAJAIAYgB0EEaiIRSw0AIBEhBQwBCyARKQAAIAMpAACFIhhCAFINASAQQQxqIQMgB0EM',
  'aiEFCwJAIAUgBk8NACAFIAdrQXxqIQQDQAJAIAUpAAAgAykAAIUiGFANACAYeqdBA3YgBGohBAwECyAEQQhqIQQgA0EIaiEDIAVB',
  'CGoiBSAGSQ0ACwsCQCAFIA5PDQAgAygAACAFKAAARw0AIANBBGohAyAFQQRqIQULAkAgBSANTw0AIAMvAAAgBS8AAEcNACADQQJq',
  'IQMgBUECaiEFCwJAIAUgE08NACAFIAMtAAAgBS0AAEZqIQULIAUgEWshBAwBCyAYeqdBA3YhBAsCQCAWIARB8AFqQf8BbmpBCGog',
  'C00NAEEADwsgFkECaiEDIAQgB2pBBGohByAULQAAIQUCQAJAIARBD0kNACAUIAVBD2o6AAAgA0F/NgAAAkAgBEFxaiIFQfwHSQ0A',
  'AkAgBEH1d2oiEEH8B25BAWpBB3EiBEUNACAWQQZqIQMDQCADQX82AAAgA0EEaiEDIAVBhHhqIQUgBEF/aiIEDQALIANBfGohAwsg',
  'EEHkN0kNAANAIANBHGpCfzcAACADQRRqQn83AAAgA0EMakJ/NwAAIANBBGpCfzcAACADQSBqIQMgBUGgQGoiBUH7B0sNAAsLIAMg',
  'BUH//wNxQf8BbiIEaiIDIAUgBGo6AAAgA0EBaiEDDAELIBQgBSAEajoAAAsCQCAHIAxJDQAgAyEUIAchBQwDCyAAIAdBfmoiBSgA',
  'AEGx893xeWxBEnZB/v8AcWogBSABazsBACAAIAcoAAAiBUGx893xeWxBEnZB/v8AcWoiBC8BACEWIAQgByABazsBAAJAIAUgASAW',
  'aiIQKAAARg0AIAMhFCAHIQUMAgsgA0EAOgAAIANBAWohFiADIRQMAAsLCyAUIBcgBWsiBGogBEHwAWpB/wFuakEBaiALSw0CAkAC',
  'QCAEQQ9JDQAgFEHwAToAACAUQQFqIRQCQCAEQXFqIgNB/wFJDQADQCAUQf8BOgAAIBRBAWohFCADQYF+aiIDQf4BSw0ACwsgFCAD',
  'OgAADAELIBQgBEEEdDoAAAsgFEEBaiIDIAUgBPwKAAAgAyAEaiACaw8LAkACQCAKIARrIgVBD0kNACARQfABOgAAIBFBAWohEQJA',
  'IAVBcWoiA0H/AUkNAANAIBFB/wE6AAAgEUEBaiERIANBgX5qIgNB/gFLDQALCyARIAM6AAAMAQsgESAFQQR0OgAACyARQQFqIgMg',
  'BCAF/AoAACADIAVqIAJrDwtBACEKIANBgICA8AdLDQACQCADDQAgAkEAOgAAQQEPCyAAQQM2AoyAASAAIAM2AoiAASAAIAM2ApCA',
  'ASABIANqIQsCQCADQQ1PDQAgAiEUIAEhBQwCCyALQXVqIQwgACABKAAAQbHz3fF5bEESdkH+/wBxakEAOwEAIAFBfmohDiALQXtq',
  'IhdBf2ohEyAXQX1qIQ0gF0F5aiEEIAhBBnQhCiACIRQgASEFA0AgBUEBaiEDIAUoAAEhB0EBIREgCiEWA0AgAyIGIBFqIgMgDEsN',
  'AyAAIAdBsfPd8XlsQRJ2Qf7/AHFqIhAvAQAhFSAQIAYgAWs7AQAgFkEGdiERIAEgFWoiECgAACAHRyEJIAMoAAAhByAWQQFqIRYg',
  'CQ0ACwJAIBVFDQAgBkF/ai0AACAQQX9qLQAARw0AIAZBfmohAyAOIBVqIQcDQCADQQFqIQYgB0EBaiIQIAFNDQEgBiAFTQ0BIAct',
  'AAAhFiADLQAAIREgA0F/aiEDIAdBf2ohByARIBZGDQALCyAUQQFqIQMCQAJAIAYgBWsiFkEPSQ0AIBRB8AE6AAACQCAWQXFqIgdB',
  '/wFJDQADQCADQf8BOgAAIANBAWohAyAHQYF+aiIHQf4BSw0ACwsgAyAHOgAAIANBAWohAwwBCyAUIBZBBHQ6AAALIAMgFmohBwNA',
  'IAMgBSkAADcAACAFQQhqIQUgA0EIaiIDIAdJDQALA0AgByAGIBBrOwAAIBBBBGohAyAHQQJqIRYCQAJAAkACQAJAIAQgBkEEaiIR',
  'Sw0AIBEhBQwBCyARKQAAIAMpAACFIhhCAFINASAQQQxqIQMgBkEMaiEFCwJAAkAgBSAETw0AA0ACQCAFKQAAIAMpAACFIhhQDQAg',
  'BSAYeqdBA3ZqIQUMAwsgA0EIaiEDIAVBCGoiBSAESQ0ACwsCQCAFIA1PDQAgAygAACAFKAAARw0AIANBBGohAyAFQQRqIQULAkAg',
  'BSATTw0AIAMvAAAgBS8AAEcNACADQQJqIQMgBUECaiEFCyAFIBdPDQAgBSADLQAAIAUtAABGaiEFCyAFIBFrIgMgBmpBBGohBiAU',
  'LQAAIQUgA0EPSQ0BIBQgBUEPajoAACAWQX82AAACQCADQXFqIgVB/AdJDQAgB0EGaiEDA0AgA0F/NgAAIANBBGohAyAFQYR4aiIF',
  'QfsHSw0ACyADQXxqIRYLIBYgBUH//wNxQf8BbiIDaiIHIAUgA2o6AAAgB0EBaiEWDAILIBh6p0EDdiIDIAZqQQRqIQYgFC0AACEF',
  'CyAUIAUgA2o6AAALAkAgBiAMSQ0AIBYhFCAGIQUMBAsgACAGQX5qIgMoAABBsfPd8XlsQRJ2Qf7/AHFqIAMgAWs7AQAgACAGKAAA',
  'IgNBsfPd8XlsQRJ2Qf7/AHFqIgUvAQAhByAFIAYgAWs7AQACQCADIAEgB2oiECgAAEYNACAWIRQgBiEFDAILIBZBADoAACAWQQFq',
  'IQcgFiEUDAALCwsgCg8LAkACQCALIAVrIgRBD0kNACAUQfABOgAAIBRBAWohFAJAIARBcWoiA0H/AUkNAANAIBRB/wE6AAAgFEEB',
  'aiEUIANBgX5qIgNB/gFLDQALCyAUIAM6AAAMAQsgFCAEQQR0OgAACyAUQQFqIgMgBSAE/AoAACADIARqIAJrCxEAQYiIgIAAQQBB',
  'lIAB/AsAC3IBBX9BCyEBAkAgAEEBSA0AQQAhAiAAIQMDQEEAIQQCQCADQYCAgAIgA0GAgIACSBsiBUGAgIDwB0sNACAFIAVB/wFu',
  'akEQaiEECyADQYCAgH5qIQMgASAEakEEaiEBIAJBgICAAmoiAiAASA0ACwsgAQuZAgEHfyABQQNqQQAoAIOIgIAANgAAIAFBACgA',
  'gIiAgAA2AAAgAUEHaiEDAkAgAkEBSA0AIAIhBEEAIQUDQCADQQRqIQYgACAFaiEHQQAhCAJAIARBgICAAiAEQYCAgAJIGyIJQYCA',
  'gPAHSw0AIAkgCUH/AW5qQRBqIQgLAkACQEGIiICAACAHIAYgCSAIQQEQgYCAgAAiCEEBSA0AIAggCU4NACADIAg2AAAgCCEJDAEL',
  'IAMgCToAACADIAlBEHY6AAIgAyAJQQh2OgABIAMgCUEYdkGAAXI6AAMgBiAHIAn8CgAACyAEQYCAgH5qIQQgCSADakEEaiEDIAVB',
  'gICAAmoiBSACSA0ACwsgA0EANgAAIAMgAWtBBGoLCwoBAQcEIk0YYHBzAHsEbmFtZQFUBQASX193YXNtX2luaXRfbWVtb3J5ASRM',
  'WjRfY29tcHJlc3NfZmFzdF9leHRTdGF0ZV9mYXN0UmVzZXQCBGluaXQDCmZyYW1lQm91bmQEBWZyYW1lBxIBAA9fX3N0YWNrX3Bv',
  'aW50ZXIJCgEABy5yb2RhdGEALQlwcm9kdWNlcnMBDHByb2Nlc3NlZC1ieQEMRGViaWFuIGNsYW5nBjE0LjAuNgBGD3RhcmdldF9m',
  'ZWF0dXJlcwQrB2F0b21pY3MrC2J1bGstbWVtb3J5KxNub250cmFwcGluZy1mcHRvaW50KwhzaWduLWV4dA==',
].join('');
