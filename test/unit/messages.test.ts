import { describe, expect, it } from 'vitest';
import { Parser } from 'pg-protocol/dist/parser.js';
import { decodeServerCopyMessage, encodeStatusUpdate, pgNow, pgTimeToDate } from '../../src/protocol/messages.js';

function xlogData(walStart: bigint, walEnd: bigint, time: bigint, data: Buffer): Buffer {
  const buf = Buffer.alloc(25 + data.length);
  buf[0] = 0x77;
  buf.writeBigUInt64BE(walStart, 1);
  buf.writeBigUInt64BE(walEnd, 9);
  buf.writeBigInt64BE(time, 17);
  data.copy(buf, 25);
  return buf;
}

function keepalive(walEnd: bigint, time: bigint, reply: boolean): Buffer {
  const buf = Buffer.alloc(18);
  buf[0] = 0x6b;
  buf.writeBigUInt64BE(walEnd, 1);
  buf.writeBigInt64BE(time, 9);
  buf[17] = reply ? 1 : 0;
  return buf;
}

/** Wrap a payload as the wire CopyData message ('d', int32 length, payload). */
function copyDataFrame(payload: Buffer): Buffer {
  const frame = Buffer.alloc(5 + payload.length);
  frame[0] = 0x64;
  frame.writeInt32BE(4 + payload.length, 1);
  payload.copy(frame, 5);
  return frame;
}

describe('decodeServerCopyMessage', () => {
  it('decodes XLogData with its fields and a view of the WAL bytes', () => {
    const wal = Buffer.from('0123456789abcdef');
    const msg = decodeServerCopyMessage(xlogData(0x1000028n, 0x2000000n, 12345n, wal));
    expect(msg).toMatchObject({ kind: 'xlogdata', walStart: 0x1000028n, serverWalEnd: 0x2000000n, serverTime: 12345n });
    expect(Buffer.from((msg as { data: Uint8Array }).data)).toEqual(wal);
  });
  it('decodes an empty XLogData (header only)', () => {
    const msg = decodeServerCopyMessage(xlogData(5n, 6n, 7n, Buffer.alloc(0)));
    expect(msg.kind).toBe('xlogdata');
    expect((msg as { data: Uint8Array }).data.length).toBe(0);
  });
  it('decodes keepalives', () => {
    expect(decodeServerCopyMessage(keepalive(0xabcn, 99n, true))).toEqual({ kind: 'keepalive', serverWalEnd: 0xabcn, serverTime: 99n, replyRequested: true });
    expect(decodeServerCopyMessage(keepalive(1n, 2n, false))).toMatchObject({ replyRequested: false });
  });
  it('rejects wrong lengths and unknown types, naming them', () => {
    expect(() => decodeServerCopyMessage(xlogData(1n, 1n, 1n, Buffer.alloc(0)).subarray(0, 24))).toThrow(/XLogData message too short: 24 bytes/);
    expect(() => decodeServerCopyMessage(Buffer.concat([keepalive(1n, 1n, false), Buffer.from([0])]))).toThrow(/keepalive message has 19 bytes, expected 18/);
    expect(() => decodeServerCopyMessage(Buffer.from([0x71, 0]))).toThrow(/type 0x71/);
    expect(() => decodeServerCopyMessage(Buffer.alloc(0))).toThrow(/empty/);
  });
  it('decodes the same messages whatever byte offset the socket splits the stream at', () => {
    const payloads = [
      xlogData(0x3000000n, 0x3000100n, 1n, Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff))),
      keepalive(0x3000100n, 2n, true),
      xlogData(0x300012cn, 0x3000200n, 3n, Buffer.from('tail')),
    ];
    const stream = Buffer.concat(payloads.map(copyDataFrame));
    const expected = payloads.map((p) => decodeServerCopyMessage(Buffer.from(p)));
    const normalise = (m: ReturnType<typeof decodeServerCopyMessage>) => (m.kind === 'xlogdata' ? { ...m, data: Buffer.from(m.data) } : m);
    for (let split = 0; split <= stream.length; split++) {
      for (const second of [split, Math.min(stream.length, split + 7)]) {
        // pg-protocol may write into buffers it was given (mergeBuffer reuses them): a fresh copy each time.
        const wire = Buffer.from(stream);
        const parser = new Parser();
        const seen: ReturnType<typeof normalise>[] = [];
        const onMessage = (msg: { name: string; chunk?: Buffer }) => {
          if (msg.name === 'copyData') seen.push(normalise(decodeServerCopyMessage(msg.chunk!))); // copy before the parser reuses its buffer
        };
        parser.parse(wire.subarray(0, split), onMessage as never);
        parser.parse(wire.subarray(split, second), onMessage as never);
        parser.parse(wire.subarray(second), onMessage as never);
        expect(seen, `split at ${split}/${second}`).toEqual(expected.map(normalise));
      }
    }
  });
});

describe('encodeStatusUpdate', () => {
  it('lays out the 34-byte standby status update', () => {
    const buf = encodeStatusUpdate({ writeLsn: 0x1_0000_0010n, flushLsn: 0x20n, applyLsn: 0n, clientTime: 0x0102030405060708n, replyRequested: true });
    expect(buf.length).toBe(34);
    expect(buf[0]).toBe(0x72);
    expect(buf.readBigUInt64BE(1)).toBe(0x1_0000_0010n);
    expect(buf.readBigUInt64BE(9)).toBe(0x20n);
    expect(buf.readBigUInt64BE(17)).toBe(0n);
    expect(buf.readBigInt64BE(25)).toBe(0x0102030405060708n);
    expect(buf[33]).toBe(1);
  });
  it('uses PostgreSQL time (µs since 2000-01-01)', () => {
    expect(pgNow(Date.UTC(2000, 0, 1))).toBe(0n);
    expect(pgNow(Date.UTC(2000, 0, 1, 0, 0, 1))).toBe(1_000_000n);
    expect(pgTimeToDate(1_000_000n).toISOString()).toBe('2000-01-01T00:00:01.000Z');
  });
});
