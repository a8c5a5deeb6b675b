/**
 * The byte pipe under a replication connection: what ReplicationConnection needs from a socket once
 * authentication is done. The real one wraps the socket connection.ts connected and authenticated
 * (socketTransport); tests put a recorded server transcript behind the same interface and run the whole
 * session with no server.
 */
import type { Duplex } from 'node:stream';
import { writeToSocketNow } from './socket-write.js';

/** A connected, authenticated byte stream to the server. */
export interface ByteTransport {
  /**
   * Start delivering: `onData` gets every chunk read, in order: a view that stays valid until the
   * read after the next one is delivered (the socket reads into two buffers in turn), so a consumer
   * keeping views into a read pauses before that;
   * `onClose` once, when the peer closes it or it fails (with the error, if any).
   */
  start(onData: (chunk: Buffer) => void, onClose: (err?: Error) => void): void;
  /** Queue bytes for the server (copied or written before returning: `bytes` may be reused). */
  write(bytes: Uint8Array): void;
  /** Stop reading (backpressure: the server blocks once the TCP window fills) / read again. */
  pause(): void;
  resume(): void;
  /** Say goodbye (Terminate) and close; resolves when closed, within about a second at most. */
  end(): Promise<void>;
  /** Close at once without a goodbye. */
  destroy(): void;
}

/** A plain socket's descriptor written directly when nothing is queued (see socket-write.ts); TLS never. */
export interface SocketTransportOptions {
  directWrites: boolean;
  /** Route reads from a socket that reads into one reused buffer (net.Socket `onread`); else 'data' events. */
  setReader?: (deliver: (view: Buffer) => void) => void;
  /** Bytes read before the transport started (after ReadyForQuery), delivered first; null for none. */
  leftover?: () => Buffer | null;
  /** The graceful close (Terminate, then end the socket; bounded). */
  end: () => Promise<void>;
}

/** The transport over an authenticated socket (idle at ReadyForQuery). */
export function socketTransport(stream: Duplex, options: SocketTransportOptions): ByteTransport {
  let closed = false;
  return {
    start(onData, onClose) {
      let ended = false;
      const close = (err?: Error) => {
        if (ended) return;
        ended = true;
        onClose(err);
      };
      stream.on('error', (err) => close(err));
      for (const listener of stream.listeners('data')) stream.removeListener('data', listener as (...args: unknown[]) => void);
      const early = options.leftover?.() ?? null;
      if (options.setReader) options.setReader(onData); // the read buffer is reused: downstream copies what it keeps
      else stream.on('data', onData);
      stream.on('close', () => { if (!closed) close(); });
      if (early !== null && early.length > 0) onData(early);
    },
    write(bytes) {
      if (options.directWrites && writeToSocketNow(stream, bytes, bytes.length)) return;
      stream.write(Buffer.from(bytes)); // a copy: the caller may reuse `bytes`
    },
    pause: () => { stream.pause(); },
    resume: () => { stream.resume(); },
    async end() {
      if (closed) return;
      closed = true;
      await options.end();
    },
    destroy() {
      closed = true;
      stream.destroy();
    },
  };
}
