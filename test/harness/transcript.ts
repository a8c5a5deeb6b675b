/**
 * Recorded byte transcripts of replication sessions, so the session's logic runs in tests with no
 * PostgreSQL installed (fixtures/transcripts/*.bin, made by scripts/record-transcripts.mjs).
 *
 * - recordingTransport(): wraps a real ByteTransport (ReplicationConnection.open's `wrapTransport`) and
 *   logs every chunk read from the server and every write to it.
 * - saveTranscript()/loadTranscript(): the file format. A file is a sequence of records
 *   [1 byte direction: 0 = server, 1 = client][uint32 BE length][bytes]. A server record of length 0
 *   is the server closing the connection (end of file, as read(2) returns 0); nothing follows it.
 * - TranscriptTransport: replays a transcript to a ReplicationConnection (see its comment).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { FrameReader } from '../../src/protocol/framing.js';
import type { ByteTransport } from '../../src/transport.js';

/** One read from the server (a zero-length one: the server closed) or one write to it. */
export interface TranscriptStep {
  from: 'server' | 'client';
  bytes: Buffer;
}

const SERVER = 0;
const CLIENT = 1;

/** A transport that logs into `log` what `inner` reads and writes (copies: read buffers are reused). */
export function recordingTransport(inner: ByteTransport, log: TranscriptStep[]): ByteTransport {
  let closedByUs = false;
  return {
    start(onData, onClose) {
      inner.start((chunk) => {
        log.push({ from: 'server', bytes: Buffer.from(chunk) });
        onData(chunk);
      }, (err) => {
        if (!closedByUs) log.push({ from: 'server', bytes: Buffer.alloc(0) });
        onClose(err);
      });
    },
    write(bytes) {
      log.push({ from: 'client', bytes: Buffer.from(bytes) });
      inner.write(bytes);
    },
    pause: () => inner.pause(),
    resume: () => inner.resume(),
    end() {
      closedByUs = true;
      return inner.end();
    },
    destroy() {
      closedByUs = true;
      inner.destroy();
    },
  };
}

/** The bytes of a transcript file. */
export function encodeTranscript(steps: readonly TranscriptStep[]): Buffer {
  const parts: Buffer[] = [];
  for (const step of steps) {
    const header = Buffer.alloc(5);
    header[0] = step.from === 'server' ? SERVER : CLIENT;
    header.writeUInt32BE(step.bytes.length, 1);
    parts.push(header, step.bytes);
  }
  return Buffer.concat(parts);
}

/** Parse a transcript file's bytes; throws on a truncated record or an unknown direction. */
export function decodeTranscript(file: Uint8Array): TranscriptStep[] {
  const buf = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  const steps: TranscriptStep[] = [];
  let offset = 0;
  while (offset < buf.length) {
    if (buf.length - offset < 5) throw new Error(`transcript truncated: ${buf.length - offset} bytes left at ${offset}, a record header is 5`);
    const direction = buf[offset];
    const length = buf.readUInt32BE(offset + 1);
    if (direction !== SERVER && direction !== CLIENT) throw new Error(`transcript: unknown direction ${direction} at ${offset}`);
    if (buf.length - offset - 5 < length) throw new Error(`transcript truncated: a record of ${length} bytes at ${offset} runs past the end`);
    steps.push({ from: direction === SERVER ? 'server' : 'client', bytes: Buffer.from(buf.subarray(offset + 5, offset + 5 + length)) });
    offset += 5 + length;
  }
  return steps;
}

export function saveTranscript(file: string, steps: readonly TranscriptStep[]): void {
  writeFileSync(file, encodeTranscript(steps));
}

export function loadTranscript(file: string): TranscriptStep[] {
  return decodeTranscript(readFileSync(file));
}

// ---------------------------------------------------------------------------------------------------
// The server's side, decoded

/** A server message of a transcript: XLogData with its WAL, or any other message with its body. */
export type ServerMessage =
  | { type: 'w'; walStart: bigint; serverWalEnd: bigint; data: Buffer }
  | { type: string; body: Buffer };

/**
 * Every message the server sent, in order (FrameReader: XLogData recognised between CopyBothResponse
 * and the copy's end, as ReplicationConnection does), each XLogData with its whole WAL.
 */
export function serverMessages(steps: readonly TranscriptStep[]): ServerMessage[] {
  const out: ServerMessage[] = [];
  const reader: FrameReader = new FrameReader({
    onMessage: (type, body) => {
      const name = String.fromCharCode(type);
      if (name === 'W') reader.copyMode = true;
      else if (name === 'c' || name === 'Z' || name === 'E') reader.copyMode = false;
      out.push({ type: name, body: Buffer.from(body) });
    },
    // The whole stream is pushed at once: each message's WAL comes in one call.
    onWal: (walStart, data, serverWalEnd) => out.push({ type: 'w', walStart, serverWalEnd, data: Buffer.from(data) }),
  });
  reader.push(Buffer.concat(steps.filter((s) => s.from === 'server').map((s) => s.bytes)));
  return out;
}

/** The XLogData messages of a transcript, in order. */
export function transcriptWal(steps: readonly TranscriptStep[]): Extract<ServerMessage, { type: 'w' }>[] {
  return serverMessages(steps).filter((m): m is Extract<ServerMessage, { type: 'w' }> => m.type === 'w');
}

// ---------------------------------------------------------------------------------------------------
// Client messages

/** A message the client (the code under test) wrote, decoded. */
export type ClientMessage =
  | { kind: 'query'; text: string }
  | { kind: 'copy-done' }
  /** A standby status update (CopyData 'r'). */
  | { kind: 'status'; writeLsn: bigint; flushLsn: bigint; applyLsn: bigint; replyRequested: boolean }
  | { kind: 'other'; type: string; body: Buffer };

function decodeClientMessage(type: number, body: Buffer): ClientMessage {
  if (type === 0x51 /* Q */) {
    const nul = body.indexOf(0);
    return { kind: 'query', text: body.subarray(0, nul < 0 ? body.length : nul).toString('utf8') };
  }
  if (type === 0x63 /* c */) return { kind: 'copy-done' };
  if (type === 0x64 /* d */ && body[0] === 0x72 /* r */ && body.length >= 34) {
    return {
      kind: 'status',
      writeLsn: body.readBigUInt64BE(1),
      flushLsn: body.readBigUInt64BE(9),
      applyLsn: body.readBigUInt64BE(17),
      replyRequested: body[33] !== 0,
    };
  }
  return { kind: 'other', type: String.fromCharCode(type), body: Buffer.from(body) };
}

/** Splits a client byte stream (written in any pieces) into messages: type byte, int32 length, body. */
class ClientFrames {
  private pending = Buffer.alloc(0);

  push(bytes: Uint8Array): ClientMessage[] {
    this.pending = this.pending.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.pending, bytes]);
    const out: ClientMessage[] = [];
    while (this.pending.length >= 5) {
      const length = this.pending.readInt32BE(1);
      if (length < 4) throw new Error(`transcript: client message with length ${length}`);
      if (this.pending.length < 1 + length) break;
      out.push(decodeClientMessage(this.pending[0], this.pending.subarray(5, 1 + length)));
      this.pending = this.pending.subarray(1 + length);
    }
    return out;
  }
}

/** The client messages of a transcript, in order. */
export function clientMessages(steps: readonly TranscriptStep[]): ClientMessage[] {
  const frames = new ClientFrames();
  return steps.filter((s) => s.from === 'client').flatMap((s) => frames.push(s.bytes));
}

/** Messages the server answers, which the replay waits for: Query and CopyDone. */
function isGate(message: ClientMessage): message is { kind: 'query'; text: string } | { kind: 'copy-done' } {
  return message.kind === 'query' || message.kind === 'copy-done';
}

const firstWord = (text: string) => text.trim().split(/\s+/)[0]?.toUpperCase() ?? '';

function describeGate(message: ClientMessage): string {
  return message.kind === 'query' ? `Query "${message.text}"` : message.kind === 'copy-done' ? 'CopyDone' : message.kind;
}

function sameGate(recorded: ClientMessage, sent: ClientMessage): boolean {
  if (recorded.kind !== sent.kind) return false;
  if (recorded.kind === 'query' && sent.kind === 'query') return firstWord(recorded.text) === firstWord(sent.text);
  return true;
}

// ---------------------------------------------------------------------------------------------------
// Replay

export interface TranscriptTransportOptions {
  /**
   * Re-split recorded server chunk number `index` (counting server reads from 0): offsets within it
   * (0 < offset < length; others are ignored) where it is cut into separate reads.
   */
  splitAt?: (index: number, chunk: Buffer) => readonly number[];
  /**
   * Deliver every read in one reused buffer, as the real socket does (net.Socket `onread`): a view
   * of an earlier read kept past the next one then shows the wrong bytes.
   */
  reuseBuffer?: boolean;
}

interface Delivery {
  bytes: Buffer;
  /** How many Query/CopyDone messages the client had sent before this read in the recording. */
  gate: number;
  /** The server closed the connection here. */
  close: boolean;
}

/**
 * Replays a transcript's server side to a ReplicationConnection, in order, each read as recorded (or
 * re-split, see options). A read that in the recording came after the client's n-th Query or CopyDone
 * is delivered only once the client has written its n-th such message too (matched by type and, for a
 * Query, the command's first word; a mismatch closes the transport with an error naming both). Other
 * client messages (status updates) never hold anything up; every message is decoded into `sent`.
 * Nothing is delivered while paused, nor after end()/destroy(). Reads go one per event-loop turn
 * (setImmediate), so the code under test sees separate reads. After the last read the transport closes
 * (onClose) only when the recording ended with the server closing; otherwise it stays open and silent.
 */
export class TranscriptTransport implements ByteTransport {
  /** What the client wrote, decoded, in order. */
  readonly sent: ClientMessage[] = [];
  pauseCalls = 0;
  resumeCalls = 0;
  endCalls = 0;
  destroyCalls = 0;
  /** Reads delivered so far (after re-splitting) and their bytes. */
  deliveredReads = 0;
  deliveredBytes = 0;
  /** Set when the client sent a Query/CopyDone other than the recording's. */
  mismatch: Error | null = null;
  private readonly deliveries: Delivery[] = [];
  private readonly recordedGates: ClientMessage[];
  private readonly frames = new ClientFrames();
  private next = 0;
  private gatesSent = 0;
  private isPaused = false;
  private stopped = false;
  private scheduled = false;
  private onData: ((chunk: Buffer) => void) | null = null;
  private onClose: ((err?: Error) => void) | null = null;
  /** With reuseBuffer: two read buffers used in turn, as the real socket transport does. */
  private readonly readBuffers: Buffer[] | null;

  constructor(steps: readonly TranscriptStep[], options: TranscriptTransportOptions = {}) {
    const frames = new ClientFrames();
    this.recordedGates = [];
    let serverIndex = 0;
    for (const step of steps) {
      if (step.from === 'client') {
        this.recordedGates.push(...frames.push(step.bytes).filter(isGate));
        continue;
      }
      const gate = this.recordedGates.length;
      if (step.bytes.length === 0) {
        this.deliveries.push({ bytes: step.bytes, gate, close: true });
        break;
      }
      const cuts = [...new Set(options.splitAt?.(serverIndex, step.bytes) ?? [])]
        .filter((o) => Number.isInteger(o) && o > 0 && o < step.bytes.length)
        .sort((a, b) => a - b);
      let from = 0;
      for (const cut of [...cuts, step.bytes.length]) {
        this.deliveries.push({ bytes: step.bytes.subarray(from, cut), gate, close: false });
        from = cut;
      }
      serverIndex++;
    }
    const longest = Math.max(0, ...this.deliveries.map((d) => d.bytes.length));
    this.readBuffers = options.reuseBuffer ? [Buffer.alloc(longest), Buffer.alloc(longest)] : null;
  }

  /** Whether reading is paused (the session holds a batch, or rests before reading). */
  get paused(): boolean {
    return this.isPaused;
  }

  /** Whether every recorded read has been delivered. */
  get exhausted(): boolean {
    return this.next >= this.deliveries.length;
  }

  /** Reads not delivered yet. */
  get remainingReads(): number {
    return this.deliveries.length - this.next;
  }

  /** The status updates the client sent, in order. */
  get statusUpdates(): Extract<ClientMessage, { kind: 'status' }>[] {
    return this.sent.filter((m): m is Extract<ClientMessage, { kind: 'status' }> => m.kind === 'status');
  }

  start(onData: (chunk: Buffer) => void, onClose: (err?: Error) => void): void {
    this.onData = onData;
    this.onClose = onClose;
    this.schedule();
  }

  write(bytes: Uint8Array): void {
    if (this.stopped) return;
    for (const message of this.frames.push(bytes)) {
      this.sent.push(message);
      if (!isGate(message)) continue;
      const recorded = this.recordedGates[this.gatesSent];
      if (recorded && !sameGate(recorded, message) && !this.mismatch) {
        this.mismatch = new Error(`transcript replay: the client sent ${describeGate(message)} where the recording has ${describeGate(recorded)}`);
        const err = this.mismatch;
        this.stopped = true;
        setImmediate(() => this.onClose?.(err));
        return;
      }
      this.gatesSent++;
    }
    this.schedule();
  }

  pause(): void {
    this.pauseCalls++;
    this.isPaused = true;
  }

  resume(): void {
    this.resumeCalls++;
    this.isPaused = false;
    this.schedule();
  }

  async end(): Promise<void> {
    this.endCalls++;
    this.stopped = true;
  }

  destroy(): void {
    this.destroyCalls++;
    this.stopped = true;
  }

  private schedule(): void {
    if (this.scheduled || this.stopped || !this.onData) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.deliver();
    });
  }

  /** One read, if one may go now; then the next one on a later turn. */
  private deliver(): void {
    if (this.stopped || this.isPaused || this.exhausted) return;
    const delivery = this.deliveries[this.next];
    if (delivery.gate > this.gatesSent) return; // the client has not asked yet: write() schedules again
    this.next++;
    if (delivery.close) {
      this.stopped = true;
      this.onClose!();
      return;
    }
    this.deliveredReads++;
    this.deliveredBytes += delivery.bytes.length;
    if (this.readBuffers) {
      const buffer = this.readBuffers[this.deliveredReads & 1]!;
      delivery.bytes.copy(buffer);
      this.onData!(buffer.subarray(0, delivery.bytes.length));
    } else {
      this.onData!(delivery.bytes);
    }
    this.schedule();
  }
}
