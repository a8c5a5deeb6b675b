/**
 * Decoding the backend messages a replication connection meets outside the WAL stream (pure):
 * RowDescription, DataRow, ErrorResponse/NoticeResponse fields. Formats: PostgreSQL's protocol docs.
 */
import { WalstreamError } from '../errors.js';

/** Backend message type bytes used here. */
export const Backend = {
  RowDescription: 0x54, // 'T'
  DataRow: 0x44, // 'D'
  CommandComplete: 0x43, // 'C'
  ReadyForQuery: 0x5a, // 'Z'
  ErrorResponse: 0x45, // 'E'
  NoticeResponse: 0x4e, // 'N'
  ParameterStatus: 0x53, // 'S'
  CopyBothResponse: 0x57, // 'W'
  CopyOutResponse: 0x48, // 'H'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  EmptyQueryResponse: 0x49, // 'I'
} as const;

export interface FieldDescription {
  name: string;
  typeOid: number;
}

function cstring(body: Buffer, offset: number): [string, number] {
  const end = body.indexOf(0, offset);
  if (end < 0) throw new WalstreamError('PROTOCOL', 'unterminated string in a server message');
  return [body.toString('utf8', offset, end), end + 1];
}

/** RowDescription: the column names and type OIDs. */
export function parseRowDescription(body: Buffer): FieldDescription[] {
  const count = body.readInt16BE(0);
  const fields: FieldDescription[] = [];
  let offset = 2;
  for (let i = 0; i < count; i++) {
    const [name, next] = cstring(body, offset);
    // table oid (4), column (2), type oid (4), type size (2), type modifier (4), format (2)
    fields.push({ name, typeOid: body.readUInt32BE(next + 6) });
    offset = next + 18;
  }
  return fields;
}

/** DataRow: each column's raw text bytes, or null. The buffers are views into `body`. */
export function parseDataRow(body: Buffer): (Buffer | null)[] {
  const count = body.readInt16BE(0);
  const values: (Buffer | null)[] = [];
  let offset = 2;
  for (let i = 0; i < count; i++) {
    const length = body.readInt32BE(offset);
    offset += 4;
    if (length < 0) {
      values.push(null);
    } else {
      values.push(body.subarray(offset, offset + length));
      offset += length;
    }
  }
  return values;
}

const INT4_OID = 23;
const INT8_OID = 20;
const BYTEA_OID = 17;

/** A text-format column value as JavaScript: int4 → number, bytea ('\x…' hex) → Buffer, anything else → string. */
export function columnValue(raw: Buffer | null, typeOid: number): unknown {
  if (raw === null) return null;
  if (typeOid === INT4_OID) return Number(raw.toString('latin1'));
  if (typeOid === BYTEA_OID) {
    const text = raw.toString('latin1');
    if (text.startsWith('\\x')) return Buffer.from(text.slice(2), 'hex');
    return Buffer.from(raw);
  }
  if (typeOid === INT8_OID) return raw.toString('latin1');
  return raw.toString('utf8');
}

/** ErrorResponse/NoticeResponse fields (S/V severity, C code, M message, D detail, H hint). */
export interface ServerMessageFields {
  severity: string;
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

/** Decode ErrorResponse or NoticeResponse fields. */
export function parseErrorFields(body: Buffer): ServerMessageFields {
  const fields: Record<string, string> = {};
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const key = String.fromCharCode(body[offset]);
    const [value, next] = cstring(body, offset + 1);
    fields[key] = value;
    offset = next;
  }
  return {
    severity: fields.V ?? fields.S ?? 'ERROR',
    code: fields.C ?? 'XX000',
    message: fields.M ?? 'unknown server error',
    detail: fields.D,
    hint: fields.H,
  };
}

/** Frontend messages: Query, CopyData, CopyDone, Terminate. */
export function encodeQuery(text: string): Buffer {
  const length = Buffer.byteLength(text, 'utf8');
  const buf = Buffer.allocUnsafe(1 + 4 + length + 1);
  buf[0] = 0x51; // 'Q'
  buf.writeInt32BE(4 + length + 1, 1);
  buf.write(text, 5, 'utf8');
  buf[5 + length] = 0;
  return buf;
}

/** CopyData wrapping `payload`. */
export function encodeCopyData(payload: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(5 + payload.length);
  writeCopyData(buf, payload);
  return buf;
}

/**
 * Write a CopyData frame carrying `payload` at the start of `out` (at least 5 bytes longer than the
 * payload); returns the frame's length. For a caller that reuses one buffer per message.
 */
export function writeCopyData(out: Buffer, payload: Uint8Array): number {
  out[0] = 0x64; // 'd'
  out.writeInt32BE(4 + payload.length, 1);
  out.set(payload, 5);
  return 5 + payload.length;
}

/** CopyDone. */
export function encodeCopyDone(): Buffer {
  return Buffer.from([0x63, 0, 0, 0, 4]);
}
