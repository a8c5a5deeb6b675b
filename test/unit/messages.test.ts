import { describe, expect, it } from 'vitest';
import { FrameReader } from '../../src/protocol/framing.js';
import { decodeServerCopyMessage, encodeStatusUpdate, pgNow, pgTimeToDate } from '../../src/protocol/messages.js';
import { frame, keepalive, xlogData } from './protocol-bytes.js';

describe('decodeServerCopyMessage', () => {
  it('decodes XLogData with its fields and a view of the WAL bytes', () => {
    const wal = Buffer.from('0123456789abcdef');
    const msg = decodeServerCopyMessage(xlogData(0x1000028n, 0x2000000n, wal, 12345n));
    expect(msg).toMatchObject({ kind: 'xlogdata', walStart: 0x1000028n, serverWalEnd: 0x2000000n, serverTime: 12345n });
    expect(Buffer.from((msg as { data: Uint8Array }).data)).toEqual(wal);
  });
  it('decodes an empty XLogData (header only)', () => {
    const msg = decodeServerCopyMessage(xlogData(5n, 6n, Buffer.alloc(0), 7n));
    expect(msg.kind).toBe('xlogdata');
    expect((msg as { data: Uint8Array }).data.length).toBe(0);
  });
  it('decodes keepalives', () => {
    expect(decodeServerCopyMessage(keepalive(0xabcn, 99n, true))).toEqual({ kind: 'keepalive', serverWalEnd: 0xabcn, serverTime: 99n, replyRequested: true });
    expect(decodeServerCopyMessage(keepalive(1n, 2n, false))).toMatchObject({ replyRequested: false });
  });
  it('rejects wrong lengths and unknown types, naming them', () => {
    expect(() => decodeServerCopyMessage(xlogData(1n, 1n, Buffer.alloc(0), 1n).subarray(0, 24))).toThrow(/XLogData message too short: 24 bytes/);
    expect(() => decodeServerCopyMessage(Buffer.concat([keepalive(1n, 1n, false), Buffer.from([0])]))).toThrow(/keepalive message has 19 bytes, expected 18/);
    expect(() => decodeServerCopyMessage(Buffer.from([0x71, 0]))).toThrow(/type 0x71/);
    expect(() => decodeServerCopyMessage(Buffer.alloc(0))).toThrow(/empty/);
  });
});

describe('FrameReader', () => {
  /** Run a byte stream through a fresh reader, split at the given offsets; collect what it reports. */
  function readSplit(stream: Buffer, splits: number[]) {
    const events: unknown[] = [];
    let wal: { walStart: bigint; bytes: Buffer; serverWalEnd: bigint } | null = null;
    const flushWal = () => { if (wal) events.push({ wal: wal.walStart, bytes: wal.bytes.toString('hex'), end: wal.serverWalEnd }); wal = null; };
    const reader = new FrameReader({
      onMessage: (type, body) => {
        flushWal();
        if (type === 0x57) reader.copyMode = true; // CopyBothResponse
        events.push({ type: String.fromCharCode(type), body: body.toString('hex') });
      },
      onWal: (walStart, data, serverWalEnd) => {
        // WAL pieces of one message arrive in order; join them to compare with the unsplit run.
        if (wal && wal.walStart + BigInt(wal.bytes.length) === walStart) wal.bytes = Buffer.concat([wal.bytes, data]);
        else { flushWal(); wal = { walStart, bytes: Buffer.from(data), serverWalEnd }; }
      },
    });
    let previous = 0;
    for (const split of [...splits, stream.length]) {
      reader.push(stream.subarray(previous, split));
      previous = split;
    }
    flushWal();
    return events;
  }


  const stream = Buffer.concat([
    frame('W', Buffer.from([0, 0, 0])), // CopyBothResponse: the reader enters copy mode
    frame('d', xlogData(0x3000000n, 0x3000100n, Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff)), 1n)),
    frame('d', keepalive(0x3000100n, 2n, true)),
    frame('d', xlogData(0x300012cn, 0x3000200n, Buffer.from('tail'), 3n)),
    frame('d', xlogData(0x3000130n, 0x3000200n, Buffer.alloc(0), 4n)), // header only
    frame('c', Buffer.alloc(0)), // CopyDone
    frame('C', Buffer.from('START_STREAMING\0')),
  ]);

  it('reports the same messages and WAL bytes wherever the socket splits the stream (every offset, and pairs)', () => {
    const expected = readSplit(stream, []);
    expect(expected).toEqual([
      { type: 'W', body: '000000' },
      { wal: 0x3000000n, bytes: Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff)).toString('hex'), end: 0x3000100n },
      { type: 'd', body: keepalive(0x3000100n, 2n, true).toString('hex') },
      { wal: 0x300012cn, bytes: Buffer.from('tail').toString('hex'), end: 0x3000200n },
      { type: 'c', body: '' },
      { type: 'C', body: Buffer.from('START_STREAMING\0').toString('hex') },
    ]);
    for (let a = 0; a <= stream.length; a++) {
      expect(readSplit(stream, [a]), `split at ${a}`).toEqual(expected);
      for (const b of [a + 1, a + 7, a + 26]) if (b <= stream.length) expect(readSplit(stream, [a, b]), `split at ${a},${b}`).toEqual(expected);
    }
    // one byte at a time
    expect(readSplit(stream, Array.from({ length: stream.length }, (_, i) => i))).toEqual(expected);
  });

  it('hands WAL on as views of the input, without copying', () => {
    const views: Buffer[] = [];
    const reader = new FrameReader({ onMessage: () => {}, onWal: (_s, data) => views.push(data) });
    reader.copyMode = true;
    const input = frame('d', xlogData(1n, 2n, Buffer.from('abcdef'), 3n));
    reader.push(input);
    expect(views).toHaveLength(1);
    expect(views[0].buffer).toBe(input.buffer);
  });

  it('rejects a short XLogData and a bad length, naming them', () => {
    const reader = new FrameReader({ onMessage: () => {}, onWal: () => {} });
    reader.copyMode = true;
    expect(() => reader.push(frame('d', Buffer.from([0x77, 1, 2])))).toThrow(/XLogData message too short: 3 bytes/);
    const bad = new FrameReader({ onMessage: () => {}, onWal: () => {} });
    expect(() => bad.push(Buffer.from([0x5a, 0, 0, 0, 2]))).toThrow(/invalid message length 2/);
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
