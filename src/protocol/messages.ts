/**
 * CopyData payloads of the streaming replication protocol, decoded and encoded without sockets.
 * Layouts from PostgreSQL's replication/walsender.c (XLogSendPhysical, WalSndKeepalive,
 * ProcessStandbyReplyMessage); all integers big-endian, timestamps in µs since 2000-01-01.
 */
import { WalstreamError } from '../errors.js';

/** Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01 00:00:00 UTC). */
const PG_EPOCH_OFFSET_US = 946_684_800_000_000n;

/** XLogData ('w'): a run of WAL bytes starting at `walStart`. */
export interface XLogData {
  kind: 'xlogdata';
  walStart: bigint;
  /** The server's current end of WAL (its flush or replay position) when it sent this. */
  serverWalEnd: bigint;
  /** Server clock at send, µs since 2000-01-01. */
  serverTime: bigint;
  /** The WAL bytes: a view into the message buffer, valid only as long as that buffer is. */
  data: Uint8Array;
}

/** Primary keepalive ('k'). */
export interface Keepalive {
  kind: 'keepalive';
  serverWalEnd: bigint;
  serverTime: bigint;
  /** The server wants a status update now (e.g. wal_sender_timeout is near). */
  replyRequested: boolean;
}

export type ServerCopyMessage = XLogData | Keepalive;

/** Bytes before the WAL in an XLogData message: 'w', dataStart, walEnd, sendTime. */
export const XLOGDATA_HEADER = 25;
const KEEPALIVE_LENGTH = 18;
export const STATUS_UPDATE_LENGTH = 34;

function readUint64(buf: Uint8Array, offset: number): bigint {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  return view.getBigUint64(offset, false);
}

/**
 * The fields of an XLogData header (`header` holds at least its 25 bytes, starting with 'w'; fewer is a
 * WalstreamError('PROTOCOL')). A caller decoding many headers from one buffer may pass a DataView over
 * it, made once.
 */
export function decodeXLogDataHeader(
  header: Uint8Array,
  view = new DataView(header.buffer, header.byteOffset, header.byteLength),
): { walStart: bigint; serverWalEnd: bigint; serverTime: bigint } {
  if (header.length < XLOGDATA_HEADER) {
    throw new WalstreamError('PROTOCOL', `XLogData message too short: ${header.length} bytes, need at least ${XLOGDATA_HEADER}`);
  }
  return { walStart: view.getBigUint64(1), serverWalEnd: view.getBigUint64(9), serverTime: view.getBigUint64(17) };
}

/**
 * Decode one CopyData payload from the server. Throws WalstreamError('PROTOCOL') on an unknown type
 * or a wrong length, naming both. The returned `data` is a view into `payload` (no copy).
 */
export function decodeServerCopyMessage(payload: Uint8Array): ServerCopyMessage {
  if (payload.length === 0) throw new WalstreamError('PROTOCOL', 'empty CopyData message from server');
  const type = payload[0];
  if (type === 0x77 /* 'w' */) {
    if (payload.length < XLOGDATA_HEADER) {
      throw new WalstreamError('PROTOCOL', `XLogData message too short: ${payload.length} bytes, need at least ${XLOGDATA_HEADER}`);
    }
    return { kind: 'xlogdata', ...decodeXLogDataHeader(payload), data: payload.subarray(XLOGDATA_HEADER) };
  }
  if (type === 0x6b /* 'k' */) {
    if (payload.length !== KEEPALIVE_LENGTH) {
      throw new WalstreamError('PROTOCOL', `keepalive message has ${payload.length} bytes, expected ${KEEPALIVE_LENGTH}`);
    }
    return {
      kind: 'keepalive',
      serverWalEnd: readUint64(payload, 1),
      serverTime: readUint64(payload, 9),
      replyRequested: payload[17] !== 0,
    };
  }
  throw new WalstreamError('PROTOCOL', `unexpected CopyData message type 0x${type.toString(16).padStart(2, '0')} from server`);
}

/** A standby status update ('r'), as the client reports it. */
export interface StatusUpdate {
  /** End of WAL received and written (not necessarily durable). */
  writeLsn: bigint;
  /** End of WAL durably on disk; 0 when the client does not report flush. */
  flushLsn: bigint;
  /** End of WAL applied: always 0 for an archiver, which applies nothing. */
  applyLsn: bigint;
  /** Client clock, µs since 2000-01-01. */
  clientTime: bigint;
  replyRequested: boolean;
}

/**
 * Encode a standby status update CopyData payload (34 bytes; ProcessStandbyReplyMessage reads it) into
 * `out` (a new buffer by default). A caller sending one per commit batch passes the same buffer, and a
 * DataView over it made once, so encoding allocates nothing.
 */
export function encodeStatusUpdate(
  update: StatusUpdate,
  out: Buffer = Buffer.allocUnsafe(STATUS_UPDATE_LENGTH),
  view = new DataView(out.buffer, out.byteOffset, STATUS_UPDATE_LENGTH),
): Buffer {
  // DataView's setters: about half the cost of Buffer.writeBigUInt64BE.
  out[0] = 0x72; // 'r'
  view.setBigUint64(1, update.writeLsn);
  view.setBigUint64(9, update.flushLsn);
  view.setBigUint64(17, update.applyLsn);
  view.setBigInt64(25, update.clientTime);
  out[33] = update.replyRequested ? 1 : 0;
  return out.length === STATUS_UPDATE_LENGTH ? out : out.subarray(0, STATUS_UPDATE_LENGTH);
}

/** Current time in PostgreSQL's µs-since-2000 representation (GetCurrentTimestamp). */
export function pgNow(nowMs: number = Date.now()): bigint {
  return BigInt(Math.round(nowMs * 1000)) - PG_EPOCH_OFFSET_US;
}

/** Convert a PostgreSQL timestamp (µs since 2000) to a JavaScript Date. */
export function pgTimeToDate(pgTime: bigint): Date {
  return new Date(Number((pgTime + PG_EPOCH_OFFSET_US) / 1000n));
}
