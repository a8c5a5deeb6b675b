/**
 * Writing a small frame straight to a socket's descriptor. A synchronous standby sends a status update
 * per commit batch; going through the stream costs a write request object and a callback tick each
 * time, which shows on a machine where the database and the archiver share two cores.
 */
import * as fs from 'node:fs';
import type { Duplex } from 'node:stream';

/** The parts of Node's internal socket handle used here (`net.Socket#_handle`, not a public API). */
type SocketWithHandle = Duplex & { _handle?: { fd?: number; writeQueueSize?: number } | null };

/**
 * Write the first `length` bytes of `frame` to a plain (not TLS) socket now, with one write(2), when
 * the stream has nothing queued, so order is kept. Returns false when that cannot be done (no
 * descriptor, something queued, EAGAIN, an error): the caller then writes through the stream, which
 * queues the bytes or reports the error. A short write hands the rest (copied) to the stream. `frame`
 * may be reused once this returns.
 */
export function writeToSocketNow(socket: Duplex, frame: Uint8Array, length: number): boolean {
  const handle = (socket as SocketWithHandle)._handle;
  const fd = handle?.fd;
  if (typeof fd !== 'number' || fd < 0 || socket.writableLength > 0 || handle!.writeQueueSize) return false;
  let written: number;
  try {
    written = fs.writeSync(fd, frame, 0, length);
  } catch {
    return false;
  }
  if (written < length) socket.write(Buffer.from(frame.subarray(written, length)));
  return true;
}
