/**
 * Decoding an archived segment for the prefetch spool at the least CPU: the helper shares the machine
 * with the startup process's replay (on two cores, one each), so each millisecond it spends decoding
 * is one replay may lose. Measured on a 16 MiB pgbench segment (19 LZ4 frames of one block each,
 * CPU time of the whole process, best of 10): lz4-napi's frame decoder on the thread pool, frames in
 * parallel (codec.ts decodeFrames) 25 ms; the same one frame after another 18 ms; its block decoder
 * block by block, as here, 9 ms (lz4_flex's frame reader copies through io::Read). zstd: one call for
 * the whole file (zstd decodes concatenated frames) 18 ms against 23 ms frame by frame.
 *
 * Only LZ4 frames in the form walstream writes (FLG 0x60: version 01, independent blocks, no block or
 * content checksum, no content size, no dictionary; BD 0x70: blocks up to 4 MiB; header checksum 0x73)
 * are taken apart here; any other frame, and anything that fails here, goes through codec.ts, whose
 * error is the one reported. The result is the decoded parts in order, not concatenated (the spool
 * writes them with one writev).
 */
import { isValidSegmentSize } from '../lsn.js';
import { LZ4_MAGIC, type Lz4Module, compressionOfName, decompressFile, lz4, lz4FrameEnd, zstd } from '../archive/codec.js';

/** FLG, BD and header checksum of the frames walstream writes (codec.ts, lz4-wasm.ts). */
const FLG = 0x60;
const BD = 0x70;
const HC = 0x73;
const MAX_BLOCK = 4 << 20;

/** The decoded content of archived file `fileName` (its bytes `data`), as parts in order. */
export async function decodeArchivedFile(fileName: string, data: Buffer): Promise<Buffer[]> {
  const { method } = compressionOfName(fileName);
  if (method === 'none') return [data];
  if (method === 'lz4') {
    const module = await lz4().catch(() => null);
    const parts = module ? lz4Parts(module, data) : null;
    if (parts) return parts;
  }
  if (method === 'zstd') {
    const whole = await zstdWhole(data);
    if (whole) return [whole];
  }
  return [await decompressFile(fileName, data)];
}

/** Every frame of `data` decoded, block by block where the frame allows; null when anything is off. */
function lz4Parts(module: Lz4Module, data: Buffer): Buffer[] | null {
  const parts: Buffer[] = [];
  let offset = 0;
  try {
    while (offset < data.length) {
      const ours = offset + 7 <= data.length && data.readUInt32LE(offset) === LZ4_MAGIC && data[offset + 4] === FLG && data[offset + 5] === BD && data[offset + 6] === HC;
      if (!ours) {
        const end = lz4FrameEnd(data, offset); // a cut or foreign header: a reason string
        if (typeof end === 'string') return null;
        parts.push(module.decompressFrameSync(data.subarray(offset, end)));
        offset = end;
        continue;
      }
      let pos = offset + 7;
      for (;;) {
        if (pos + 4 > data.length) return null;
        const word = data.readUInt32LE(pos);
        if (word === 0) break; // end mark
        const size = word & 0x7fffffff;
        const start = pos + 4;
        if (size > MAX_BLOCK || start + size > data.length) return null;
        if (word & 0x80000000) {
          parts.push(data.subarray(start, start + size)); // stored as it is
        } else {
          // The block decoder wants its decoded size in the 4 bytes before it: lend it the size word's
          // place, and put the word back (the fallback reads these bytes again).
          data.writeUInt32LE(MAX_BLOCK, pos);
          try {
            const block = module.uncompressSync(data.subarray(pos, start + size));
            if (block.length > MAX_BLOCK) return null;
            parts.push(block);
          } finally {
            data.writeUInt32LE(word >>> 0, pos);
          }
        }
        pos = start + size;
      }
      offset = pos + 4;
    }
  } catch {
    return null;
  }
  return parts;
}

/** A whole .zst file in one call (its frames one after another); null to leave it to codec.ts. */
async function zstdWhole(data: Buffer): Promise<Buffer | null> {
  const module = await zstd().catch(() => null);
  if (!module) return null;
  try {
    const whole = await module.decompress(data);
    // Node 22's zlib returns what a cut last frame held instead of failing (24's and the package fail):
    // anything but a whole segment is left to codec.ts, which reports it.
    return isValidSegmentSize(whole.length) ? whole : null;
  } catch {
    return null;
  }
}
