/**
 * Small builders of backend protocol bytes for tests: whole frames (type byte, length word, body) and
 * the bodies inside them. Layouts: PostgreSQL's protocol docs ("Message Formats") and walsender.c.
 */

/** A frame: type byte (a character or its code), int32 length (itself + body), body. */
export function frame(type: string | number, body: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + body.length);
  out[0] = typeof type === 'number' ? type : type.charCodeAt(0);
  out.writeInt32BE(4 + body.length, 1);
  out.set(body, 5);
  return out;
}

/** Just a frame header claiming `length` (the length word, which counts itself). */
export function frameHeader(type: string | number, length: number): Buffer {
  const out = Buffer.alloc(5);
  out[0] = typeof type === 'number' ? type : type.charCodeAt(0);
  out.writeInt32BE(length | 0, 1);
  return out;
}

/** XLogData CopyData payload: 'w', walStart, walEnd, send time, WAL bytes. */
export function xlogData(walStart: bigint, walEnd: bigint, data: Uint8Array, time = 0n): Buffer {
  const buf = Buffer.alloc(25 + data.length);
  buf[0] = 0x77;
  buf.writeBigUInt64BE(walStart, 1);
  buf.writeBigUInt64BE(walEnd, 9);
  buf.writeBigInt64BE(time, 17);
  buf.set(data, 25);
  return buf;
}

/** Primary keepalive CopyData payload: 'k', walEnd, send time, reply-requested byte. */
export function keepalive(walEnd: bigint, time = 0n, reply = false): Buffer {
  const buf = Buffer.alloc(18);
  buf[0] = 0x6b;
  buf.writeBigUInt64BE(walEnd, 1);
  buf.writeBigInt64BE(time, 9);
  buf[17] = reply ? 1 : 0;
  return buf;
}

/** RowDescription body: count, then per field name\0 and 18 fixed bytes (type OID at +6; text format). */
export function rowDescription(fields: { name: string; typeOid: number }[]): Buffer {
  const parts: Buffer[] = [Buffer.from([fields.length >> 8, fields.length & 0xff])];
  for (const f of fields) {
    const meta = Buffer.alloc(18);
    meta.writeUInt32BE(f.typeOid >>> 0, 6);
    meta.writeInt16BE(-1, 10); // type size: varlena
    meta.writeInt32BE(-1, 12); // type modifier
    parts.push(Buffer.from(f.name + '\0', 'utf8'), meta);
  }
  return Buffer.concat(parts);
}

/** DataRow body: count, then per column int32 length (-1 for NULL) and the bytes. Strings are UTF-8. */
export function dataRow(values: (Uint8Array | string | null)[]): Buffer {
  const parts: Buffer[] = [Buffer.from([values.length >> 8, values.length & 0xff])];
  for (const v of values) {
    const length = Buffer.alloc(4);
    if (v === null) {
      length.writeInt32BE(-1);
      parts.push(length);
    } else {
      const bytes = typeof v === 'string' ? Buffer.from(v, 'utf8') : Buffer.from(v);
      length.writeInt32BE(bytes.length);
      parts.push(length, bytes);
    }
  }
  return Buffer.concat(parts);
}

/** ErrorResponse/NoticeResponse body: per field its type byte and value\0, then the final \0. */
export function errorResponse(fields: Record<string, string> | [string, string][]): Buffer {
  const entries = Array.isArray(fields) ? fields : Object.entries(fields);
  return Buffer.concat([...entries.map(([key, value]) => Buffer.from(key.charAt(0) + value + '\0', 'utf8')), Buffer.from([0])]);
}
