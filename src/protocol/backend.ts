/**
 * Decoding the backend messages a replication connection meets outside the WAL stream (pure):
 * RowDescription, DataRow, ErrorResponse/NoticeResponse fields. Formats: PostgreSQL's protocol docs.
 * Every decoder checks each length and terminator against the body it is given: a malformed message is
 * a one-line WalstreamError('PROTOCOL') naming what arrived, never a RangeError from Buffer.
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

/** Characters shown of a value in an error message before it is cut short. */
const SHOWN_CHARS = 40;

/**
 * A value from the server as an error message shows it: strings quoted, cut to 40 characters, with
 * control characters, quotes, backslashes and line separators escaped, so the message stays one line.
 */
export function showValue(value: unknown): string {
  if (typeof value === 'string') {
    const chars = Array.from(value);
    const shown = chars.length > SHOWN_CHARS ? chars.slice(0, SHOWN_CHARS).join('') : value;
    const escaped = shown.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029"\\]/g, (c) => {
      switch (c) {
        case '\n': return '\\n';
        case '\r': return '\\r';
        case '\t': return '\\t';
        case '"': return '\\"';
        case '\\': return '\\\\';
        default: return '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0');
      }
    });
    return chars.length > SHOWN_CHARS ? `"${escaped}…" (${chars.length} characters)` : `"${escaped}"`;
  }
  if (value === null || value === undefined) return 'null';
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  return `a value of type ${typeof value}`;
}

/** "1 byte", "7 bytes". */
function bytes(n: number): string {
  return n === 1 ? '1 byte' : `${n} bytes`;
}

function protocolError(message: string): WalstreamError {
  return new WalstreamError('PROTOCOL', message);
}

/** The NUL-terminated string at `offset`, and the offset after its terminator; null when unterminated. */
function cstring(body: Buffer, offset: number): [string, number] | null {
  const end = body.indexOf(0, offset);
  if (end < 0) return null;
  return [body.toString('utf8', offset, end), end + 1];
}

/** Bytes of a RowDescription field after its name: table oid (4), column (2), type oid (4), type size (2), type modifier (4), format (2). */
const FIELD_FIXED = 18;

/** RowDescription: the column names and type OIDs. */
export function parseRowDescription(body: Buffer): FieldDescription[] {
  if (body.length < 2) throw protocolError(`RowDescription of ${bytes(body.length)} is too short: its field count alone takes 2`);
  const count = body.readInt16BE(0);
  if (count < 0) throw protocolError(`RowDescription declares ${count} fields`);
  const fields: FieldDescription[] = [];
  let offset = 2;
  for (let i = 0; i < count; i++) {
    const name = cstring(body, offset);
    if (name === null) {
      throw protocolError(`RowDescription of ${bytes(body.length)} declares ${count} fields, but the name of field ${i + 1} at byte ${offset} has no terminator`);
    }
    const [text, next] = name;
    if (body.length - next < FIELD_FIXED) {
      throw protocolError(`RowDescription of ${bytes(body.length)} ends inside field ${i + 1} of ${count} (${showValue(text)}): ${body.length - next} of its ${FIELD_FIXED} bytes after the name are there`);
    }
    fields.push({ name: text, typeOid: body.readUInt32BE(next + 6) });
    offset = next + FIELD_FIXED;
  }
  if (offset !== body.length) {
    throw protocolError(`RowDescription of ${bytes(body.length)} has ${bytes(body.length - offset)} after its ${count} fields`);
  }
  return fields;
}

/** DataRow: each column's raw text bytes, or null. The buffers are views into `body`. */
export function parseDataRow(body: Buffer): (Buffer | null)[] {
  if (body.length < 2) throw protocolError(`DataRow of ${bytes(body.length)} is too short: its column count alone takes 2`);
  const count = body.readInt16BE(0);
  if (count < 0) throw protocolError(`DataRow declares ${count} columns`);
  const values: (Buffer | null)[] = [];
  let offset = 2;
  for (let i = 0; i < count; i++) {
    if (body.length - offset < 4) {
      throw protocolError(`DataRow of ${bytes(body.length)} declares ${count} columns, but ends inside the length of column ${i + 1} at byte ${offset}`);
    }
    const length = body.readInt32BE(offset);
    offset += 4;
    if (length === -1) {
      values.push(null);
    } else if (length < 0) {
      throw protocolError(`DataRow column ${i + 1} of ${count} has length ${length} (only -1, NULL, may be negative)`);
    } else if (length > body.length - offset) {
      throw protocolError(`DataRow column ${i + 1} of ${count} claims ${bytes(length)} at byte ${offset}, but the ${body.length}-byte message has ${body.length - offset} left`);
    } else {
      values.push(body.subarray(offset, offset + length));
      offset += length;
    }
  }
  if (offset !== body.length) {
    throw protocolError(`DataRow of ${bytes(body.length)} has ${bytes(body.length - offset)} after its ${count} columns`);
  }
  return values;
}

const INT4_OID = 23;
const INT8_OID = 20;
const BYTEA_OID = 17;

/**
 * A text-format column value as JavaScript: int4 → number, bytea ('\x…' hex) → Buffer, anything else →
 * string. An int4 that is not a 32-bit integer, or '\x' hex that is not hex, is a WalstreamError('PROTOCOL')
 * (naming `column` when given).
 */
export function columnValue(raw: Buffer | null, typeOid: number, column?: string): unknown {
  if (raw === null) return null;
  const where = () => (column === undefined ? 'column' : `column ${showValue(column)}`);
  if (typeOid === INT4_OID) {
    const text = raw.toString('latin1');
    const value = /^-?[0-9]{1,10}$/.test(text) ? Number(text) : NaN;
    if (!(value >= -0x80000000 && value <= 0x7fffffff)) throw protocolError(`int4 ${where()} holds ${showValue(text)}, not a 32-bit integer`);
    return value;
  }
  if (typeOid === BYTEA_OID) {
    const text = raw.toString('latin1');
    if (text.startsWith('\\x')) {
      if (text.length % 2 !== 0 || !/^[0-9A-Fa-f]*$/.test(text.slice(2))) {
        throw protocolError(`bytea ${where()} holds ${showValue(text)}, which is not \\x followed by pairs of hex digits`);
      }
      return Buffer.from(text.slice(2), 'hex');
    }
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

/**
 * Decode ErrorResponse or NoticeResponse fields (`what` names the message in errors): each a type byte
 * and a NUL-terminated string, the whole ended by one zero byte.
 */
export function parseErrorFields(body: Buffer, what = 'ErrorResponse'): ServerMessageFields {
  const fields: Record<string, string> = {};
  let offset = 0;
  while (offset < body.length && body[offset] !== 0) {
    const key = String.fromCharCode(body[offset]);
    const value = cstring(body, offset + 1);
    if (value === null) {
      throw protocolError(`${what} of ${bytes(body.length)}: field ${showValue(key)} at byte ${offset} has no terminator`);
    }
    fields[key] = value[0];
    offset = value[1];
  }
  if (offset === body.length) {
    throw protocolError(`${what} of ${bytes(body.length)} does not end with the zero byte that ends its fields`);
  }
  if (offset !== body.length - 1) {
    throw protocolError(`${what} of ${bytes(body.length)} has ${bytes(body.length - offset - 1)} after the zero byte that ends its fields`);
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
