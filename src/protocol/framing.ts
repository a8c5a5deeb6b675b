/**
 * Backend message framing for a replication connection, pure and incremental: bytes in (as the socket
 * delivers them, split anywhere), messages out. XLogData's WAL bytes are handed on as they arrive, as
 * views into the caller's buffers, without waiting for the whole message or copying it (a message is up
 * to 128 kB: walsender.c's MAX_SEND_SIZE). Message layout: PostgreSQL's protocol docs ("Message Formats").
 */
import { WalstreamError } from '../errors.js';
import { XLOGDATA_HEADER, decodeXLogDataHeader } from './messages.js';

/** What the reader reports. Views passed to these are valid only during the call. */
export interface FrameHandler {
  /** A complete message other than XLogData (type byte, body without the length word). */
  onMessage(type: number, body: Buffer): void;
  /** WAL bytes of an XLogData message, starting at `walStart` (the message's start plus the offset within it). */
  onWal(walStart: bigint, data: Buffer, serverWalEnd: bigint): void;
}

const HEADER = 5; // type byte + int32 length
/** Largest non-XLogData message accepted (a DataRow with a history file is small; 1 GB is PostgreSQL's MaxAllocSize). */
const MAX_MESSAGE = 1 << 30;

/** Incremental reader: feed it with push(); it calls the handler in order. */
export class FrameReader {
  private readonly handler: FrameHandler;
  /** Header bytes of the current frame (type + length), or of an XLogData's 25-byte header. */
  private readonly header = Buffer.alloc(XLOGDATA_HEADER);
  /** A view over `header` for decoding it, made once for the reader's life rather than per message. */
  private readonly headerView = new DataView(this.header.buffer, this.header.byteOffset, XLOGDATA_HEADER);
  private headerFill = 0;
  private state: 'frame-header' | 'body' | 'xlog-header' | 'xlog-data' = 'frame-header';
  private type = 0;
  /** Bytes of the current frame's body still to come. */
  private remaining = 0;
  /** Body of a non-XLogData message being collected across pushes. */
  private body: Buffer | null = null;
  private bodyFill = 0;
  private walPosition = 0n;
  private serverWalEnd = 0n;
  /** Whether CopyData frames are XLogData-aware (only during copy-both). */
  copyMode = false;

  constructor(handler: FrameHandler) {
    this.handler = handler;
  }

  /** Feed bytes; the handler is called for everything complete (and every WAL byte) in them. */
  push(chunk: Buffer): void {
    let offset = 0;
    const end = chunk.length;
    while (offset < end) {
      switch (this.state) {
        case 'frame-header': {
          if (this.headerFill === 0 && end - offset >= HEADER) {
            this.type = chunk[offset];
            this.startBody(chunk.readInt32BE(offset + 1));
            offset += HEADER;
          } else {
            const take = Math.min(HEADER - this.headerFill, end - offset);
            chunk.copy(this.header, this.headerFill, offset, offset + take);
            this.headerFill += take;
            offset += take;
            if (this.headerFill === HEADER) {
              this.headerFill = 0;
              this.type = this.header[0];
              this.startBody(this.header.readInt32BE(1));
            }
          }
          break;
        }
        case 'body': {
          if (this.body === null && this.copyMode && this.type === 0x64 /* 'd' */ && chunk[offset] === 0x77 /* 'w' */) {
            if (this.remaining < XLOGDATA_HEADER) {
              throw new WalstreamError('PROTOCOL', `XLogData message too short: ${this.remaining} bytes, need at least ${XLOGDATA_HEADER}`);
            }
            this.state = 'xlog-header';
            break;
          }
          if (this.body === null && end - offset >= this.remaining) {
            // The whole body is here: hand on a view, no copy.
            const body = chunk.subarray(offset, offset + this.remaining);
            offset += this.remaining;
            this.finishFrame();
            this.handler.onMessage(this.type, body);
            break;
          }
          this.body ??= Buffer.allocUnsafe(this.remaining);
          const take = Math.min(this.remaining, end - offset);
          chunk.copy(this.body, this.bodyFill, offset, offset + take);
          this.bodyFill += take;
          this.remaining -= take;
          offset += take;
          if (this.remaining === 0) {
            const body = this.body;
            this.finishFrame();
            this.handler.onMessage(this.type, body);
          }
          break;
        }
        case 'xlog-header': {
          const take = Math.min(XLOGDATA_HEADER - this.headerFill, end - offset);
          chunk.copy(this.header, this.headerFill, offset, offset + take);
          this.headerFill += take;
          this.remaining -= take;
          offset += take;
          if (this.headerFill === XLOGDATA_HEADER) {
            this.headerFill = 0;
            const header = decodeXLogDataHeader(this.header, this.headerView);
            this.walPosition = header.walStart;
            this.serverWalEnd = header.serverWalEnd;
            this.state = 'xlog-data';
            if (this.remaining === 0) this.finishFrame();
          }
          break;
        }
        case 'xlog-data': {
          const take = Math.min(this.remaining, end - offset);
          const data = chunk.subarray(offset, offset + take);
          const walStart = this.walPosition;
          this.walPosition += BigInt(take);
          this.remaining -= take;
          offset += take;
          if (this.remaining === 0) this.finishFrame();
          this.handler.onWal(walStart, data, this.serverWalEnd);
          break;
        }
      }
    }
  }

  private startBody(length: number): void {
    if (length < 4) throw new WalstreamError('PROTOCOL', `invalid message length ${length} for message type 0x${this.type.toString(16)}`);
    this.remaining = length - 4;
    if (this.remaining > MAX_MESSAGE && !(this.copyMode && this.type === 0x64)) {
      throw new WalstreamError('PROTOCOL', `message of ${this.remaining} bytes (type 0x${this.type.toString(16)}) is larger than any the server sends`);
    }
    this.state = 'body';
    if (this.remaining === 0) {
      this.finishFrame();
      this.handler.onMessage(this.type, Buffer.alloc(0));
    }
  }

  private finishFrame(): void {
    this.state = 'frame-header';
    this.body = null;
    this.bodyFill = 0;
    this.remaining = 0;
  }
}
