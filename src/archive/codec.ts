/**
 * Compression of archived segments: gzip (node:zlib), lz4 (LZ4 frame format: liblz4 as WebAssembly
 * on worker threads to compress, lz4-napi to decode) and zstd (node:zlib where the running Node has
 * it, else @mongodb-js/zstd). A compressed segment is a sequence of independent frames (gzip members,
 * LZ4 frames, zstd frames), one per flush: every standard tool (`gzip -d`, `lz4 -d`, `zstd -d`)
 * decodes such a concatenation, each frame is compressed off the event loop (libuv's thread pool, or
 * the lz4 workers), and a file cut after any frame is a decodable prefix.
 */
import * as zlib from 'node:zlib';
import { promisify } from 'node:util';
import { Transform } from 'node:stream';
import { WalstreamError } from '../errors.js';

export type CompressionMethod = 'none' | 'gzip' | 'lz4' | 'zstd';

/** A method and its level (undefined: the method's default). */
export interface Compression {
  method: CompressionMethod;
  level?: number;
}

/** File name suffix of each method (pg_receivewal's for gzip and lz4). */
export const COMPRESSION_SUFFIX: Record<CompressionMethod, string> = { none: '', gzip: '.gz', lz4: '.lz4', zstd: '.zst' };

const LEVELS: Record<Exclude<CompressionMethod, 'none'>, [number, number]> = { gzip: [1, 9], lz4: [1, 1], zstd: [1, 22] };

/**
 * Parse pg_receivewal's `--compress` syntax: METHOD, METHOD:LEVEL, METHOD:level=LEVEL, or a bare digit
 * (gzip at that level; 0 is none). Throws BAD_OPTION with a one-line message.
 */
export function parseCompression(spec: string): Compression {
  const bad = (why: string) => new WalstreamError('BAD_OPTION', `invalid compression "${spec}": ${why}`);
  const text = spec.trim().toLowerCase();
  if (/^\d+$/.test(text)) {
    const level = Number(text);
    if (level === 0) return { method: 'none' };
    if (level > 9) throw bad('a gzip level is 1-9');
    return { method: 'gzip', level };
  }
  const [name, detail] = text.split(/:(.*)/s, 2) as [string, string | undefined];
  if (!['none', 'gzip', 'lz4', 'zstd'].includes(name)) throw bad('use gzip, lz4, zstd or none, optionally with :LEVEL');
  const method = name as CompressionMethod;
  if (detail === undefined || detail === '') return { method };
  if (method === 'none') throw bad('"none" takes no level');
  const match = /^(?:level=)?(\d+)$/.exec(detail);
  if (!match) throw bad(`unknown detail "${detail}" (only a level is supported: ${method}:level=N)`);
  const level = Number(match[1]);
  const [min, max] = LEVELS[method];
  if (level < min || level > max) throw bad(`a ${method} level is ${min === max ? min : `${min}-${max}`}`);
  return { method, level };
}

/** The method a file name's suffix says, and the name without it; null suffix means uncompressed. */
export function compressionOfName(fileName: string): { method: CompressionMethod; base: string } {
  for (const method of ['gzip', 'lz4', 'zstd'] as const) {
    const suffix = COMPRESSION_SUFFIX[method];
    if (fileName.endsWith(suffix)) return { method, base: fileName.slice(0, -suffix.length) };
  }
  return { method: 'none', base: fileName };
}

/** What walstream uses of lz4-napi. */
export interface Lz4Module {
  decompressFrame(data: Uint8Array): Promise<Buffer>;
  decompressFrameSync(data: Uint8Array): Buffer;
  /** An LZ4 block after its 4-byte little-endian decoded size (an upper bound is enough). */
  uncompressSync(data: Uint8Array): Buffer;
}
interface ZstdModule {
  compress(data: Buffer, level?: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

/** Load an optional codec package, or explain how to get it. */
async function loadOptional<T>(pkg: string, method: string): Promise<T> {
  try {
    return (await import(pkg)) as T;
  } catch {
    throw new WalstreamError('BAD_OPTION', `${method} compression needs the optional package ${pkg}, which is not installed here; install it (npm install ${pkg}) or choose another method`);
  }
}

let lz4Module: Promise<Lz4Module> | undefined;
/** liblz4 as WebAssembly (lz4-wasm.ts), loaded on first use (restore and verify never need it); kept once loaded. */
let lz4WasmLoading: Promise<typeof import('./lz4-wasm.js')> | undefined;
let lz4Wasm: typeof import('./lz4-wasm.js') | undefined;
const loadLz4Wasm = async () => (lz4Wasm ??= await (lz4WasmLoading ??= import('./lz4-wasm.js')));
/** liblz4 on this thread: compressFrame() (tests), and the writer when no shared slot is free. */
let lz4Here: import('./lz4-wasm.js').Lz4Compressor | undefined;
let zstdModule: Promise<ZstdModule> | undefined;
/** lz4-napi (decoding), loaded on first use; rejects with a one-line BAD_OPTION when it is not installed. */
export const lz4 = () => (lz4Module ??= loadOptional<Lz4Module>('lz4-napi', 'lz4'));

type ZlibZstd = { zstdCompress?: (b: Buffer, o: object, cb: (e: Error | null, r: Buffer) => void) => void; zstdDecompress?: (b: Buffer, cb: (e: Error | null, r: Buffer) => void) => void; constants: Record<string, number> };

/** zstd from node:zlib (Node 22.15+, 24) when present, else @mongodb-js/zstd (rejects with a one-line BAD_OPTION when neither is here). */
export function zstd(): Promise<ZstdModule> {
  const z = zlib as unknown as ZlibZstd;
  if (z.zstdCompress && z.zstdDecompress) {
    const compress = promisify(z.zstdCompress);
    const decompress = promisify(z.zstdDecompress);
    return Promise.resolve({
      compress: (data, level) => compress(data, level === undefined ? {} : { params: { [z.constants.ZSTD_c_compressionLevel!]: level } }),
      decompress: (data) => decompress(data),
    });
  }
  return (zstdModule ??= loadOptional<ZstdModule>('@mongodb-js/zstd', 'zstd'));
}

const gzipAsync = promisify(zlib.gzip);
const gunzipAsync = promisify(zlib.gunzip);

/** Make sure the method's codec can be loaded (at start-up, so a missing package fails before streaming). */
export async function loadCodec(method: CompressionMethod): Promise<void> {
  if (method === 'lz4') {
    (await loadLz4Wasm()).lz4Worker().start(); // compression: liblz4 on a worker thread
    await lz4(); // decoding (a .partial's frames on resume): lz4-napi
  }
  if (method === 'zstd') await zstd();
}

/**
 * Compress `data` into one complete frame (gzip member, LZ4 frame, zstd frame): gzip and zstd off the
 * event loop, lz4 on this thread (~1 ms per MiB; the writer's frames go to the worker, takeFrameSpace).
 */
export async function compressFrame(compression: Compression, data: Uint8Array): Promise<Buffer> {
  const input = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  switch (compression.method) {
    case 'gzip': return gzipAsync(input, { level: compression.level ?? zlib.constants.Z_DEFAULT_COMPRESSION });
    case 'lz4': return (lz4Here ??= new (await loadLz4Wasm()).Lz4Compressor()).frame(data);
    case 'zstd': return (await zstd()).compress(input, compression.level ?? 3);
    case 'none': return Buffer.from(input);
  }
}

/**
 * Room to gather one frame's input in and the means to compress it (see CompressedSegmentWriter).
 * For lz4 the frame is compressed in a slot of the worker's shared memory (lz4-wasm.ts).
 */
export interface FrameSpace {
  /** At least the requested room for the frame's input. */
  readonly input: Buffer;
  /**
   * One frame of input[0, length), off the event loop; `input` is no longer the caller's. Call the
   * result's release() once its bytes are written (a rejection releases everything itself).
   */
  compress(length: number): Promise<{ bytes: Uint8Array; release(): void }>;
}

/**
 * Frames a writer keeps being compressed at once (CompressedSegmentWriter). gzip and zstd: as many as
 * libuv's thread pool has threads (4); they are slower than the wire, so more would only hold memory.
 * lz4: 8, queued on its one worker, so that while the worker waits for a core the receiver reads on
 * instead of leaving the server blocked on a full socket (README, "-Z lz4 and the frames in flight").
 */
export function framesInFlight(method: CompressionMethod): number {
  return method === 'lz4' ? 8 : 4;
}

/** Input buffers handed back for the next frame of any segment (a 1 MiB buffer per frame would be memory outside V8's heap that only a later garbage collection returns). */
const spareBuffers: Buffer[] = [];
const SPARE_BUFFERS = 8;

/** A FrameSpace for `compression` with room for `bytes` of input. */
export function takeFrameSpace(compression: Compression, bytes: number): FrameSpace {
  const input = spareBuffers.length > 0 && spareBuffers[spareBuffers.length - 1]!.length >= bytes ? spareBuffers.pop()! : Buffer.allocUnsafeSlow(bytes);
  const release = () => { if (spareBuffers.length < SPARE_BUFFERS) spareBuffers.push(input); };
  const here = (length: number) => compressFrame(compression, input.subarray(0, length)).then(
    (frame) => { release(); return { bytes: frame, release: () => {} }; },
    (err) => { release(); throw err; },
  );
  if (compression.method === 'lz4' && !lz4Wasm) loadLz4Wasm().catch(() => {}); // this frame on this thread, the next ones on the worker
  if (compression.method !== 'lz4' || !lz4Wasm || bytes > lz4Wasm.LZ4_SLOT_INPUT) return { input, compress: here };
  const worker = lz4Wasm.lz4Worker();
  return {
    input,
    compress: (length) => {
      const slot = worker.take();
      if (!slot) return here(length); // every slot taken (writers never closed): on this thread
      // WAL arrives at any byte offset, and V8 copies into shared memory a byte at a time unless source
      // and target are alike 8-byte aligned: the frame is gathered here and goes over aligned.
      slot.input.set(input.subarray(0, length));
      release();
      return worker.compress(slot, length).then(
        (frame) => ({ bytes: frame, release: () => worker.release(slot) }),
        (err) => { worker.release(slot); throw err; },
      );
    },
  };
}

/**
 * The whole content of an archived file, decompressed according to its name's suffix (returned as is
 * when uncompressed). Throws ARCHIVE_DAMAGED naming the file when it does not decode to the end.
 */
export async function decompressFile(fileName: string, data: Buffer): Promise<Buffer> {
  const { method } = compressionOfName(fileName.replace(/\.partial$/, ''));
  if (method === 'none') return data;
  const result = await decodeFrames(method, data);
  if (result.error) throw new WalstreamError('ARCHIVE_DAMAGED', `could not decompress "${fileName}": ${result.error}`);
  return result.data;
}

/**
 * Everything decodable from the start of a possibly cut file (a .partial left by a crash): the data of
 * its whole frames, and why decoding stopped, if it did before the end.
 */
export async function decodeFrames(method: CompressionMethod, bytes: Uint8Array): Promise<{ data: Buffer; error?: string }> {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (method === 'none') return { data };
  if (method === 'gzip') return gunzipPrefix(data);
  // Find the frames first (their headers give their lengths), then decode them all at once: the
  // thread pool decodes several in parallel (a 16 MiB segment is 16 frames).
  const frames: Buffer[] = [];
  let offset = 0;
  let error: string | undefined;
  while (offset < data.length) {
    const end = method === 'lz4' ? lz4FrameEnd(data, offset) : zstdFrameEnd(data, offset);
    if (typeof end === 'string') {
      error = `${end} at byte ${offset}`;
      break;
    }
    frames.push(data.subarray(offset, end));
    offset = end;
  }
  const decode = method === 'lz4' ? (await lz4()).decompressFrame : (await zstd()).decompress;
  const results = await Promise.allSettled(frames.map((frame) => decode(frame)));
  const parts: Buffer[] = [];
  for (const [i, result] of results.entries()) {
    if (result.status === 'rejected') {
      const at = frames.slice(0, i).reduce((sum, f) => sum + f.length, 0);
      return { data: Buffer.concat(parts), error: `bad frame at byte ${at} (${(result.reason as Error).message})` };
    }
    parts.push(result.value);
  }
  return error ? { data: Buffer.concat(parts), error } : { data: Buffer.concat(parts) };
}

/**
 * Concatenated gzip members; decoding stops at the first member that is cut or damaged. Only whole
 * members count (their CRC-32 and length trailer checked), so a torn tail never adds bytes.
 */
async function gunzipPrefix(data: Buffer): Promise<{ data: Buffer; error?: string }> {
  try {
    return { data: await gunzipAsync(data) };
  } catch (err) {
    const parts: Buffer[] = [];
    let offset = 0;
    while (offset < data.length) {
      const member = gzipMember(data, offset);
      if (typeof member === 'string') return { data: Buffer.concat(parts), error: `${member} at byte ${offset}` };
      parts.push(member.data);
      offset = member.end;
    }
    return { data: Buffer.concat(parts), error: (err as Error).message };
  }
}

/** One gzip member (RFC 1952) at `offset`: its data and where it ends, or why it is not whole. */
function gzipMember(data: Buffer, offset: number): { data: Buffer; end: number } | string {
  if (offset + 18 > data.length) return 'cut gzip member';
  if (data[offset] !== 0x1f || data[offset + 1] !== 0x8b || data[offset + 2] !== 8) return 'not a gzip member';
  const flags = data[offset + 3]!;
  let pos = offset + 10;
  if (flags & 0x04) pos += 2 + (pos + 2 <= data.length ? data.readUInt16LE(pos) : 0); // FEXTRA
  for (const bit of [0x08, 0x10]) { // FNAME, FCOMMENT: zero-terminated
    if (flags & bit) {
      const zero = data.indexOf(0, pos);
      if (zero < 0) return 'cut gzip header';
      pos = zero + 1;
    }
  }
  if (flags & 0x02) pos += 2; // FHCRC
  let inflated: { buffer: Buffer; engine: zlib.Inflate };
  try {
    inflated = zlib.inflateRawSync(data.subarray(pos), { info: true }) as unknown as { buffer: Buffer; engine: zlib.Inflate };
  } catch (err) {
    return `bad gzip member (${(err as Error).message})`;
  }
  const trailer = pos + inflated.engine.bytesWritten;
  if (trailer + 8 > data.length) return 'cut gzip member';
  const crc = (zlib as unknown as { crc32?: (b: Buffer) => number }).crc32;
  if (data.readUInt32LE(trailer + 4) !== (inflated.buffer.length >>> 0) || (crc && data.readUInt32LE(trailer) !== crc(inflated.buffer))) return 'gzip member fails its CRC or length check';
  return { data: inflated.buffer, end: trailer + 8 };
}

/** The first four bytes of every LZ4 frame, little-endian (lz4_Frame_format.md). */
export const LZ4_MAGIC = 0x184d2204;

/** End offset of the LZ4 frame starting at `offset` (lz4_Frame_format.md), or why there is none. */
export function lz4FrameEnd(data: Buffer, offset: number): number | string {
  if (offset + 7 > data.length) return 'cut LZ4 frame header';
  if (data.readUInt32LE(offset) !== LZ4_MAGIC) return 'not an LZ4 frame';
  const flags = data[offset + 4]!;
  if (flags >> 6 !== 1) return 'unknown LZ4 frame version';
  const blockChecksum = (flags & 0x10) !== 0;
  let pos = offset + 6 + ((flags & 0x08) ? 8 : 0) + ((flags & 0x01) ? 4 : 0) + 1;
  for (;;) {
    if (pos + 4 > data.length) return 'cut LZ4 frame';
    const word = data.readUInt32LE(pos);
    pos += 4;
    if (word === 0) break; // the end mark (0x80000000 is a stored block of no bytes)
    const size = word & 0x7fffffff;
    pos += size + (blockChecksum ? 4 : 0);
  }
  if (flags & 0x04) pos += 4;
  return pos > data.length ? 'cut LZ4 frame' : pos;
}

/** End offset of the zstd frame starting at `offset` (RFC 8878 section 3.1), or why there is none. */
function zstdFrameEnd(data: Buffer, offset: number): number | string {
  if (offset + 5 > data.length) return 'cut zstd frame header';
  const magic = data.readUInt32LE(offset);
  if ((magic & 0xfffffff0) === 0x184d2a50) {
    const end = offset + 8 + (offset + 8 <= data.length ? data.readUInt32LE(offset + 4) : 0);
    return end > data.length ? 'cut zstd skippable frame' : end;
  }
  if (magic !== 0xfd2fb528) return 'not a zstd frame';
  const descriptor = data[offset + 4]!;
  const singleSegment = (descriptor & 0x20) !== 0;
  const fcsFlag = descriptor >> 6;
  const dictBytes = [0, 1, 2, 4][descriptor & 0x03]!;
  const fcsBytes = [singleSegment ? 1 : 0, 2, 4, 8][fcsFlag]!;
  let pos = offset + 5 + (singleSegment ? 0 : 1) + dictBytes + fcsBytes;
  for (;;) {
    if (pos + 3 > data.length) return 'cut zstd frame';
    const header = data.readUIntLE(pos, 3);
    const type = (header >> 1) & 0x03;
    const size = header >> 3;
    if (type === 3) return 'bad zstd block';
    pos += 3 + (type === 1 ? 1 : size);
    if (header & 1) break;
  }
  if (descriptor & 0x04) pos += 4;
  return pos > data.length ? 'cut zstd frame' : pos;
}

/**
 * A Transform that decodes a whole lz4 or zstd file at its end (their packages decode whole frames,
 * not streams): memory is one compressed plus one decoded segment. Fails on a cut or damaged file.
 */
export function wholeFileDecoder(method: 'lz4' | 'zstd'): Transform {
  const chunks: Buffer[] = [];
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
    flush(callback) {
      decodeFrames(method, Buffer.concat(chunks)).then(
        ({ data, error }) => callback(error ? new Error(error) : null, error ? undefined : data),
        (err: Error) => callback(err),
      );
    },
  });
}
