/**
 * Backend message framing for a replication connection, pure and incremental: bytes in (as the socket
 * delivers them, split anywhere), messages out. XLogData's WAL bytes are handed on as they arrive, as
 * views into the caller's buffers, without waiting for the whole message or copying it (a message is up
 * to 128 kB: walsender.c's MAX_SEND_SIZE). Message layout: PostgreSQL's protocol docs ("Message Formats").
 * A length word is checked before anything of the body is buffered (MAX_COPY_DATA_BODY, MAX_MESSAGE_BODY).
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

/**
 * Largest CopyData body (the bytes after the length word) accepted in copy mode: XLogData of at most
 * MAX_SEND_SIZE bytes of WAL plus its 25-byte header. walsender.c defines MAX_SEND_SIZE as
 * XLOG_BLCKSZ * 16 and XLogSendPhysical never sends more: 128 KiB with the default 8 KiB WAL pages,
 * 1 MiB with the largest (64 KiB, configure --with-wal-blocksize=64). Keepalives are 18 bytes.
 */
export const MAX_COPY_DATA_BODY = 16 * 64 * 1024 + XLOGDATA_HEADER;

/**
 * Largest body of any other message (the bytes after the length word). What a replication connection
 * receives besides WAL is small: a RowDescription, a DataRow holding a timeline history file (one line
 * per timeline switch), an ErrorResponse or NoticeResponse. 16 MiB is far above all of them, and far
 * below PostgreSQL's 1 GB MaxAllocSize that a hostile length word could otherwise make us buffer.
 */
export const MAX_MESSAGE_BODY = 16 * 1024 * 1024;

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
    if (length < 4) throw new WalstreamError('PROTOCOL', `invalid message length ${length} for message type ${typeName(this.type)}`);
    this.remaining = length - 4;
    // One comparison on the hot path: only a body above the smaller limit looks further.
    if (this.remaining > MAX_COPY_DATA_BODY) this.checkLarge();
    this.state = 'body';
    if (this.remaining === 0) {
      this.finishFrame();
      this.handler.onMessage(this.type, Buffer.alloc(0));
    }
  }

  /** A body above MAX_COPY_DATA_BODY: a PROTOCOL error for CopyData in copy mode, or above MAX_MESSAGE_BODY. */
  private checkLarge(): void {
    if (this.copyMode && this.type === 0x64 /* 'd' */) {
      throw new WalstreamError('PROTOCOL', `CopyData of ${this.remaining} bytes is larger than the server ever sends (at most ${MAX_COPY_DATA_BODY}: 1 MiB of WAL, walsender.c's largest MAX_SEND_SIZE, plus the ${XLOGDATA_HEADER}-byte XLogData header)`);
    }
    if (this.remaining > MAX_MESSAGE_BODY) {
      throw new WalstreamError('PROTOCOL', `message of ${this.remaining} bytes (type ${typeName(this.type)}) is larger than any the server sends here (at most ${MAX_MESSAGE_BODY})`);
    }
  }

  private finishFrame(): void {
    this.state = 'frame-header';
    this.body = null;
    this.bodyFill = 0;
    this.remaining = 0;
  }
}

/** A message type byte for an error message: 0x54 'T', or just 0x01 when not printable. */
export function typeName(type: number): string {
  const hex = `0x${type.toString(16).padStart(2, '0')}`;
  return type >= 0x21 && type <= 0x7e ? `${hex} '${String.fromCharCode(type)}'` : hex;
}
