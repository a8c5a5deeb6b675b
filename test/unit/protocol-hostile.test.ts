/**
 * Hostile bytes always get a clear error: every protocol decoder, fed anything, returns a value or
 * throws a one-line WalstreamError('PROTOCOL') (never a RangeError/TypeError), and the FrameReader
 * refuses an impossible length word before buffering anything.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WalstreamError } from '../../src/errors.js';
import { formatLsn } from '../../src/lsn.js';
import { columnValue, parseDataRow, parseErrorFields, parseRowDescription, type FieldDescription } from '../../src/protocol/backend.js';
import { decodeIdentifySystem, decodeReadReplicationSlot, decodeTimelineEnd, decodeTimelineHistory } from '../../src/protocol/commands.js';
import { FrameReader, MAX_COPY_DATA_BODY, MAX_MESSAGE_BODY } from '../../src/protocol/framing.js';
import { decodeServerCopyMessage, decodeXLogDataHeader } from '../../src/protocol/messages.js';
import { dataRow, errorResponse, frame, frameHeader, keepalive, rowDescription, xlogData } from './protocol-bytes.js';

const LINE_BREAK = /[\n\r\u2028\u2029]/;

/** `fn`'s value, or the one-line WalstreamError (code in `codes`) it threw; anything else thrown fails the test. */
function valueOrError<T>(fn: () => T, codes: readonly string[] = ['PROTOCOL']): T | WalstreamError {
  try {
    return fn();
  } catch (err) {
    if (err instanceof WalstreamError && codes.includes(err.code) && !LINE_BREAK.test(err.message)) return err;
    const what = err instanceof Error ? `${err.name}${'code' in err ? ` (${String(err.code)})` : ''}: ${err.message}` : String(err);
    throw new Error(`expected a value or a one-line WalstreamError ${codes.join('/')}, got ${what}`, { cause: err });
  }
}

/** The error `fn` throws, checked to be a one-line WalstreamError with `code`. */
function thrown(fn: () => unknown, code = 'PROTOCOL'): WalstreamError {
  const result = valueOrError(fn, [code]);
  if (!(result instanceof WalstreamError)) throw new Error(`expected a WalstreamError ${code}, got a value: ${String(result)}`);
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Arbitraries

const bytes = (maxLength = 80) => fc.uint8Array({ maxLength }).map((b) => Buffer.from(b));
/** Names and text without NUL (a C string cannot hold one), well-formed Unicode so UTF-8 round-trips. */
const text = (maxLength = 20) => fc.string({ unit: 'grapheme', maxLength }).filter((s) => !s.includes('\0'));
const lsn = fc.bigInt({ min: 0n, max: 0xffffffffffffffffn });
const tli = fc.integer({ min: 1, max: 0xffffffff });

type Mutation =
  | { kind: 'flip'; at: number; xor: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 8 }) }), weight: 2 },
);

function mutate(input: Buffer, mutations: Mutation[]): Buffer {
  let out = Buffer.from(input);
  for (const m of mutations) {
    const at = m.at % (out.length + 1);
    if (m.kind === 'flip') {
      if (out.length > 0) out[at % out.length] ^= m.xor;
    } else if (m.kind === 'truncate') {
      out = out.subarray(0, at);
    } else if (m.kind === 'insert') {
      out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
    } else {
      out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.count)]);
    }
  }
  return out;
}

/** Split offsets into a stream of `length` bytes, sorted. */
function splitPoints(raw: number[], length: number): number[] {
  return raw.map((n) => n % (length + 1)).sort((a, b) => a - b);
}

/** A text-format column with a value PostgreSQL could send for its type. */
const column = fc.oneof(
  fc.record({ name: text(), typeOid: fc.constant(23), value: fc.option(fc.integer({ min: -0x80000000, max: 0x7fffffff }).map(String)) }),
  fc.record({ name: text(), typeOid: fc.constant(20), value: fc.option(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String)) }),
  fc.record({ name: text(), typeOid: fc.constant(25), value: fc.option(text(40)) }),
  fc.record({ name: text(), typeOid: fc.constant(17), value: fc.option(fc.uint8Array({ maxLength: 30 }).map((b) => '\\x' + Buffer.from(b).toString('hex'))) }),
);

/** One backend message (or a result set: RowDescription then DataRow) as frames. */
const message: fc.Arbitrary<readonly Buffer[]> = fc.oneof(
  { arbitrary: fc.constant([frame('W', Buffer.from([0, 0, 0]))]), weight: 1 },
  { arbitrary: fc.constant([frame('c', Buffer.alloc(0))]), weight: 1 },
  { arbitrary: fc.tuple(fc.bigInt({ min: 0n, max: 2n ** 63n }), lsn, fc.uint8Array({ maxLength: 300 })).map(([start, end, data]) => [frame('d', xlogData(start, end, data))]), weight: 5 },
  { arbitrary: fc.tuple(lsn, fc.boolean()).map(([end, reply]) => [frame('d', keepalive(end, 1n, reply))]), weight: 2 },
  { arbitrary: fc.array(column, { maxLength: 5 }).map((cols) => [frame('T', rowDescription(cols)), frame('D', dataRow(cols.map((c) => c.value)))]), weight: 2 },
  { arbitrary: fc.array(fc.tuple(fc.constantFrom('S', 'V', 'C', 'M', 'D', 'H', 'P', 'F', 'L', 'R'), text(40))).map((f) => [frame('E', errorResponse(f))]), weight: 1 },
  { arbitrary: fc.array(fc.tuple(fc.constantFrom('S', 'C', 'M'), text(40))).map((f) => [frame('N', errorResponse(f))]), weight: 1 },
  { arbitrary: text(30).map((tag) => [frame('C', Buffer.from(tag + '\0'))]), weight: 1 },
  { arbitrary: fc.constant([frame('Z', Buffer.from('I'))]), weight: 1 },
);

/** A valid stream as a replication connection sees it: copy-both starts, then any messages. */
const validStream = fc.array(message, { maxLength: 12 }).map((msgs) => Buffer.concat([frame('W', Buffer.from([0, 0, 0])), ...msgs.flat()]));

// ---------------------------------------------------------------------------------------------------
// A FrameReader run, recorded

type Event = { type: number; body: string } | { walStart: bigint; serverWalEnd: bigint; wal: string };

/**
 * Feed `stream` to a fresh reader in pieces cut at `splits`; record its handler calls (WAL pieces of one
 * run joined per walStart). With `decode`, each message also goes through the decoder the connection
 * uses for it, so hostile bodies reach them too.
 */
function readStream(stream: Buffer, splits: number[], decode = false): Event[] {
  const events: Event[] = [];
  let wal: { walStart: bigint; serverWalEnd: bigint; parts: Buffer[]; length: number } | null = null;
  const flushWal = () => {
    if (wal) events.push({ walStart: wal.walStart, serverWalEnd: wal.serverWalEnd, wal: Buffer.concat(wal.parts).toString('hex') });
    wal = null;
  };
  let fields: FieldDescription[] = [];
  const reader: FrameReader = new FrameReader({
    onMessage(type, body) {
      flushWal();
      if (type === 0x57) reader.copyMode = true; // CopyBothResponse
      if (type === 0x63) reader.copyMode = false; // CopyDone
      events.push({ type, body: body.toString('hex') });
      if (!decode) return;
      if (type === 0x54) fields = parseRowDescription(body);
      if (type === 0x44) parseDataRow(body).forEach((v, i) => columnValue(v, fields[i]?.typeOid ?? 25, fields[i]?.name));
      if (type === 0x45 || type === 0x4e) parseErrorFields(body, type === 0x45 ? 'ErrorResponse' : 'NoticeResponse');
      if (type === 0x64 && reader.copyMode) decodeServerCopyMessage(body);
    },
    onWal(walStart, data, serverWalEnd) {
      if (wal && wal.walStart + BigInt(wal.length) === walStart && wal.serverWalEnd === serverWalEnd) {
        wal.parts.push(Buffer.from(data));
        wal.length += data.length;
      } else {
        flushWal();
        wal = { walStart, serverWalEnd, parts: [Buffer.from(data)], length: data.length };
      }
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

// ---------------------------------------------------------------------------------------------------
// Properties

describe('protocol decoders: arbitrary bytes give a value or a one-line PROTOCOL error', () => {
  const rowDescriptionBody = fc.oneof(bytes(), fc.tuple(fc.array(fc.record({ name: text(), typeOid: fc.nat() }), { maxLength: 4 }), fc.array(mutation, { maxLength: 3 }))
    .map(([f, m]) => mutate(rowDescription(f), m)));
  const dataRowBody = fc.oneof(bytes(), fc.tuple(fc.array(fc.option(bytes(20)), { maxLength: 4 }), fc.array(mutation, { maxLength: 3 }))
    .map(([v, m]) => mutate(dataRow(v), m)));
  const errorBody = fc.oneof(bytes(), fc.tuple(fc.array(fc.tuple(fc.constantFrom('S', 'C', 'M', 'D', 'H'), text())), fc.array(mutation, { maxLength: 3 }))
    .map(([f, m]) => mutate(errorResponse(f), m)));

  // Exactness: whatever a decoder accepts has the declared structure, and nothing after it.
  it('parseRowDescription (accepted only when every field and nothing more fills the body)', () => {
    fc.assert(fc.property(rowDescriptionBody, (body) => {
      const fields = valueOrError(() => parseRowDescription(body));
      if (fields instanceof WalstreamError) return;
      let offset = 2;
      for (let i = 0; i < fields.length; i++) offset = body.indexOf(0, offset) + 1 + 18;
      expect(body.readInt16BE(0)).toBe(fields.length);
      expect(offset).toBe(body.length);
    }));
  });
  it('parseDataRow (accepted only when the body is exactly what the columns encode to)', () => {
    fc.assert(fc.property(dataRowBody, (body) => {
      const values = valueOrError(() => parseDataRow(body));
      if (!(values instanceof WalstreamError)) expect(dataRow(values)).toEqual(body);
    }));
  });
  it('parseErrorFields (accepted exactly when the body is terminated fields and a final zero byte)', () => {
    fc.assert(fc.property(errorBody, (body) => {
      const fields = valueOrError(() => parseErrorFields(body));
      expect(!(fields instanceof WalstreamError)).toBe(/^([^\0]+\0)*\0$/.test(body.toString('latin1')));
    }));
  });
  it('columnValue, for every type it knows and one it does not (int4 accepted only as a 32-bit integer, hex only as hex)', () => {
    const raw = fc.oneof(bytes(30), fc.string({ maxLength: 14 }).map((s) => Buffer.from(s, 'latin1')), fc.string({ maxLength: 10 }).map((s) => Buffer.from('\\x' + s, 'latin1')),
      fc.stringMatching(/^-?[0-9]{0,12}$/).map((s) => Buffer.from(s)), fc.stringMatching(/^\\x[0-9a-fA-F]{0,9}$/).map((s) => Buffer.from(s)));
    fc.assert(fc.property(fc.option(raw), fc.constantFrom(17, 20, 23, 25, 1043), (value, oid) => {
      const result = valueOrError(() => columnValue(value, oid));
      if (result instanceof WalstreamError || value === null) return;
      const text = value.toString('latin1');
      if (oid === 23) expect(Number.isInteger(result) && (result as number) >= -0x80000000 && (result as number) <= 0x7fffffff && Number(text) === result).toBe(true);
      if (oid === 17 && text.startsWith('\\x')) expect('\\x' + (result as Buffer).toString('hex')).toBe(text.toLowerCase());
    }));
  });
  it('decodeServerCopyMessage and decodeXLogDataHeader', () => {
    const payload = fc.oneof(bytes(40), fc.tuple(fc.constantFrom(0x77, 0x6b), bytes(40)).map(([t, b]) => Buffer.concat([Buffer.from([t]), b])));
    fc.assert(fc.property(payload, (p) => {
      valueOrError(() => decodeServerCopyMessage(p));
      valueOrError(() => decodeXLogDataHeader(p));
    }));
  });

  /** Column values as rows from columnValue hold them, and anything else. */
  const cell = fc.oneof(
    fc.constant(null), fc.string({ maxLength: 50 }), fc.integer(), fc.double(), fc.bigInt(), fc.boolean(), bytes(10),
    fc.constantFrom('physical', 'logical', '-1', '0', '1', '4294967295', '4294967296', '1.5', ' 1', '1e3', '0x10', '18446744073709551616', '0/0', 'FFFFFFFF/FFFFFFFF', '1/2/3', '00000002.history'),
    lsn.map(formatLsn), tli, tli.map(String), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String),
  );
  const columns = ['systemid', 'timeline', 'xlogpos', 'dbname', 'slot_type', 'restart_lsn', 'restart_tli', 'filename', 'content', 'next_tli', 'next_tli_startpos'];
  const row = fc.oneof(
    fc.record(Object.fromEntries(columns.map((c) => [c, cell])), { requiredKeys: [] }),
    fc.dictionary(fc.string({ maxLength: 12 }), cell),
  );
  const rows = fc.oneof({ arbitrary: fc.array(row, { maxLength: 3 }), weight: 5 }, { arbitrary: fc.anything(), weight: 1 });

  it('command result decoders (IDENTIFY_SYSTEM, READ_REPLICATION_SLOT, TIMELINE_HISTORY, the timeline end)', () => {
    fc.assert(fc.property(rows, row, (rs, r) => {
      const many = rs as Record<string, unknown>[];
      valueOrError(() => decodeIdentifySystem(many));
      // A logical slot is the user's mistake, not a protocol error: BAD_OPTION, and only for that.
      const slot = valueOrError(() => decodeReadReplicationSlot(many), ['PROTOCOL', 'BAD_OPTION']);
      if (slot instanceof WalstreamError && slot.code === 'BAD_OPTION') expect(many[0].slot_type).toBe('logical');
      valueOrError(() => decodeTimelineHistory(many));
      valueOrError(() => decodeTimelineEnd(r));
    }), { numRuns: 300 });
  });
});

describe('protocol decoders: what an encoder makes decodes back', () => {
  it('RowDescription', () => {
    fc.assert(fc.property(fc.array(fc.record({ name: text(), typeOid: fc.nat({ max: 0xffffffff }) }), { maxLength: 8 }), (fields) => {
      expect(parseRowDescription(rowDescription(fields))).toEqual(fields);
    }));
  });
  it('DataRow', () => {
    fc.assert(fc.property(fc.array(fc.option(bytes(40)), { maxLength: 8 }), (values) => {
      expect(parseDataRow(dataRow(values))).toEqual(values);
    }));
  });
  it('ErrorResponse fields', () => {
    fc.assert(fc.property(text(40), fc.stringMatching(/^[0-9A-Z]{5}$/), text(60), fc.option(text(), { nil: undefined }), fc.option(text(), { nil: undefined }), (severity, code, msg, detail, hint) => {
      const f: [string, string][] = [['S', severity], ['V', severity], ['C', code], ['M', msg]];
      if (detail !== undefined) f.push(['D', detail]);
      if (hint !== undefined) f.push(['H', hint]);
      expect(parseErrorFields(errorResponse(f))).toEqual({ severity, code, message: msg, detail, hint });
    }));
  });
  it('int4 and bytea column values', () => {
    fc.assert(fc.property(fc.integer({ min: -0x80000000, max: 0x7fffffff }), fc.uint8Array({ maxLength: 40 }), (n, b) => {
      expect(columnValue(Buffer.from(String(n)), 23)).toBe(n);
      expect(columnValue(Buffer.from('\\x' + Buffer.from(b).toString('hex')), 17)).toEqual(Buffer.from(b));
    }));
  });
  it('XLogData and keepalive payloads', () => {
    fc.assert(fc.property(lsn, lsn, fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.uint8Array({ maxLength: 64 }), fc.boolean(), (start, end, time, data, reply) => {
      const w = decodeServerCopyMessage(xlogData(start, end, data, time));
      expect(w).toEqual({ kind: 'xlogdata', walStart: start, serverWalEnd: end, serverTime: time < 0n ? time + 2n ** 64n : time, data: expect.anything() });
      expect(Buffer.from((w as { data: Uint8Array }).data)).toEqual(Buffer.from(data));
      expect(decodeServerCopyMessage(keepalive(end, time < 0n ? 0n : time, reply))).toEqual({ kind: 'keepalive', serverWalEnd: end, serverTime: time < 0n ? 0n : time, replyRequested: reply });
    }));
  });
  it('command results as the server sends them', () => {
    fc.assert(fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), tli, lsn, fc.option(lsn), fc.option(tli), (sysid, timeline, pos, restart, restartTli) => {
      expect(decodeIdentifySystem([{ systemid: String(sysid), timeline, xlogpos: formatLsn(pos), dbname: null }]))
        .toEqual({ systemId: String(sysid), timeline, xlogPos: pos });
      expect(decodeReadReplicationSlot([{ slot_type: 'physical', restart_lsn: restart === null ? null : formatLsn(restart), restart_tli: restartTli === null ? null : String(restartTli) }]))
        .toEqual({ slotType: 'physical', restartLsn: restart, restartTimeline: restartTli });
      expect(decodeTimelineEnd({ next_tli: String(timeline), next_tli_startpos: formatLsn(pos) })).toEqual({ nextTimeline: timeline, nextTimelineStart: pos });
      const name = timeline.toString(16).toUpperCase().padStart(8, '0') + '.history';
      expect(decodeTimelineHistory([{ filename: name, content: Buffer.from('1\t0/3000000\tno recovery target specified\n') }]).fileName).toBe(name);
    }));
  });
});

describe('FrameReader on hostile streams', () => {
  it('a valid stream split anywhere gives exactly the handler calls of the stream fed whole', () => {
    fc.assert(fc.property(validStream, fc.array(fc.nat(), { maxLength: 12 }), (stream, raw) => {
      const whole = readStream(stream, [], true);
      expect(readStream(stream, splitPoints(raw, stream.length), true)).toEqual(whole);
    }), { numRuns: 200 });
  });

  it('a mutated stream (bytes flipped, inserted, deleted, truncated) throws nothing but one-line PROTOCOL errors', () => {
    fc.assert(fc.property(validStream, fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 6 }), (stream, mutations, raw) => {
      const hostile = mutate(stream, mutations);
      valueOrError(() => readStream(hostile, splitPoints(raw, hostile.length), true));
    }), { numRuns: 300 });
  });

  it('noise, and well-framed messages with random bodies, in copy mode or not, throw nothing but one-line PROTOCOL errors', () => {
    const framedJunk = fc.array(fc.tuple(fc.constantFrom('T', 'D', 'E', 'N', 'd', 'c', 'C', 'Z'), bytes(40), fc.boolean())
      .map(([type, body, w]) => frame(type, type === 'd' && w ? Buffer.concat([Buffer.from([0x77]), body]) : body)), { maxLength: 6 }).map((f) => Buffer.concat(f));
    fc.assert(fc.property(fc.oneof(bytes(200), framedJunk), fc.boolean(), (junk, copy) => {
      valueOrError(() => readStream(copy ? Buffer.concat([frame('W', Buffer.from([0, 0, 0])), junk]) : junk, [], true));
    }), { numRuns: 300 });
  });

  /** A reader in copy mode (as after CopyBothResponse) or not. */
  function reader(copyMode: boolean): FrameReader {
    const r = new FrameReader({ onMessage: () => {}, onWal: () => {} });
    r.copyMode = copyMode;
    return r;
  }

  it('a CopyData length word of 0x7FFFFFFF in copy mode throws after the 5 header bytes alone', () => {
    const err = thrown(() => reader(true).push(frameHeader('d', 0x7fffffff)));
    expect(err.message).toBe(`CopyData of 2147483643 bytes is larger than the server ever sends (at most ${MAX_COPY_DATA_BODY}: 1 MiB of WAL, walsender.c's largest MAX_SEND_SIZE, plus the 25-byte XLogData header)`);
  });

  it('a RowDescription claiming 1 GB throws after the 5 header bytes alone', () => {
    const err = thrown(() => reader(false).push(frameHeader('T', 2 ** 30)));
    expect(err.message).toBe(`message of ${2 ** 30 - 4} bytes (type 0x54 'T') is larger than any the server sends here (at most ${MAX_MESSAGE_BODY})`);
  });

  it('huge length words allocate nothing (arrayBuffers stays flat) whatever body bytes follow', () => {
    const tail = Buffer.alloc(64 * 1024, 0x41);
    const cases: [boolean, Buffer][] = [
      [false, Buffer.concat([frameHeader('T', 2 ** 30), tail])],
      [false, Buffer.concat([frameHeader('D', 0x7fffffff), tail])],
      [true, Buffer.concat([frameHeader('d', 0x7fffffff), Buffer.from([0x77]), tail])], // XLogData
      [true, Buffer.concat([frameHeader('d', 0x7fffffff), tail])], // other CopyData: would be buffered whole
      [true, Buffer.concat([frameHeader('E', 0x40000000), tail])],
    ];
    for (const [copy, input] of cases) {
      const before = process.memoryUsage().arrayBuffers;
      thrown(() => reader(copy).push(input));
      expect(process.memoryUsage().arrayBuffers - before, `type ${String.fromCharCode(input[0])}`).toBeLessThan(8 * 1024 * 1024);
    }
  });

  it('limits: CopyData in copy mode up to 1 MiB + 25 bytes, other messages up to 16 MiB; one more byte is refused', () => {
    expect(MAX_COPY_DATA_BODY).toBe(1024 * 1024 + 25);
    expect(MAX_MESSAGE_BODY).toBe(16 * 1024 * 1024);
    // The largest XLogData walsender.c can send (64 KiB WAL pages) goes through whole.
    let walBytes = 0;
    const r = new FrameReader({ onMessage: () => {}, onWal: (_s, data) => { walBytes += data.length; } });
    r.copyMode = true;
    r.push(frame('d', xlogData(0n, 0n, Buffer.alloc(1024 * 1024))));
    expect(walBytes).toBe(1024 * 1024);
    expect(thrown(() => reader(true).push(frameHeader('d', 4 + MAX_COPY_DATA_BODY + 1))).message).toMatch(/^CopyData of 1048602 bytes is larger than the server ever sends/);
    // Outside copy mode CopyData is an ordinary message; in copy mode other messages keep the 16 MiB limit.
    expect(() => reader(false).push(frameHeader('d', 4 + MAX_COPY_DATA_BODY + 1))).not.toThrow();
    expect(() => reader(true).push(frameHeader('E', 4 + MAX_MESSAGE_BODY))).not.toThrow();
    expect(() => reader(false).push(frameHeader('T', 4 + MAX_MESSAGE_BODY))).not.toThrow();
    expect(thrown(() => reader(true).push(frameHeader('E', 4 + MAX_MESSAGE_BODY + 1))).message).toBe(`message of 16777217 bytes (type 0x45 'E') is larger than any the server sends here (at most 16777216)`);
    expect(thrown(() => reader(false).push(frameHeader(0x01, 3))).message).toBe('invalid message length 3 for message type 0x01');
    expect(thrown(() => reader(false).push(frameHeader('T', -1))).message).toBe(`invalid message length -1 for message type 0x54 'T'`);
  });
});

// ---------------------------------------------------------------------------------------------------
// One explicit test per hostile case

describe('hostile cases, one by one', () => {
  const identity = { systemid: '7300000000000000001', timeline: 1, xlogpos: '0/3000060', dbname: null };

  it('IDENTIFY_SYSTEM timeline "-1"', () => {
    expect(thrown(() => decodeIdentifySystem([{ ...identity, timeline: '-1' }])).message)
      .toBe('IDENTIFY_SYSTEM returned timeline "-1": expected a timeline ID, an integer from 1 to 4294967295');
    // as columnValue hands on an int4 column
    expect(thrown(() => decodeIdentifySystem([{ ...identity, timeline: -1 }])).message)
      .toBe('IDENTIFY_SYSTEM returned timeline -1: expected a timeline ID, an integer from 1 to 4294967295');
  });

  it('IDENTIFY_SYSTEM timeline "0", "abc", "1.5", 2^32 and other bad columns', () => {
    for (const timeline of ['0', 0, 'abc', '1.5', 1.5, '4294967296', 4294967296, '', ' 1', '1e3', null, NaN]) {
      expect(thrown(() => decodeIdentifySystem([{ ...identity, timeline }])).message, String(timeline)).toMatch(/^IDENTIFY_SYSTEM returned timeline .*: expected a timeline ID/);
    }
    expect(decodeIdentifySystem([{ ...identity, timeline: '4294967295' }]).timeline).toBe(4294967295);
    expect(thrown(() => decodeIdentifySystem([{ ...identity, systemid: '18446744073709551616' }])).message)
      .toBe('IDENTIFY_SYSTEM returned systemid "18446744073709551616": expected a system identifier, a decimal integer from 0 to 18446744073709551615');
    expect(thrown(() => decodeIdentifySystem([{ ...identity, systemid: '-7' }])).message).toMatch(/^IDENTIFY_SYSTEM returned systemid "-7": /);
    expect(thrown(() => decodeIdentifySystem([{ ...identity, xlogpos: '0/XYZ' }])).message)
      .toBe('IDENTIFY_SYSTEM returned xlogpos "0/XYZ": expected an LSN like 0/3000060');
    expect(thrown(() => decodeIdentifySystem([])).message).toBe('IDENTIFY_SYSTEM returned 0 rows, expected 1');
  });

  it('a value in an error is cut to 40 characters and kept on one line', () => {
    const message = thrown(() => decodeIdentifySystem([{ ...identity, xlogpos: 'line1\nline2\r\u2028"\\\0' + 'x'.repeat(100) }])).message;
    expect(message).toBe('IDENTIFY_SYSTEM returned xlogpos "line1\\nline2\\r\\u2028\\"\\\\\\u0000xxxxxxxxxxxxxxxxxxxxxxxx…" (116 characters): expected an LSN like 0/3000060');
  });

  it('START_REPLICATION next_tli "abc" (and a bad next_tli_startpos)', () => {
    expect(thrown(() => decodeTimelineEnd({ next_tli: 'abc', next_tli_startpos: '0/5000000' })).message)
      .toBe('START_REPLICATION returned next_tli "abc": expected a timeline ID, an integer from 1 to 4294967295');
    expect(thrown(() => decodeTimelineEnd({ next_tli: '4294967296', next_tli_startpos: '0/5000000' })).message).toMatch(/next_tli "4294967296"/);
    expect(thrown(() => decodeTimelineEnd({ next_tli: '2', next_tli_startpos: null })).message)
      .toBe('START_REPLICATION returned next_tli_startpos null: expected an LSN like 0/3000060');
  });

  it('READ_REPLICATION_SLOT: a logical slot says so; an unknown slot_type and restart_tli "0" are PROTOCOL errors', () => {
    expect(thrown(() => decodeReadReplicationSlot([{ slot_type: 'logical', restart_lsn: '0/1000000', restart_tli: '1' }]), 'BAD_OPTION').message)
      .toBe('READ_REPLICATION_SLOT returned slot_type "logical": a logical slot cannot be streamed physically; use a physical slot (--create-slot makes one)');
    expect(thrown(() => decodeReadReplicationSlot([{ slot_type: 'bogus', restart_lsn: null, restart_tli: null }])).message)
      .toBe('READ_REPLICATION_SLOT returned slot_type "bogus": expected "physical" or null');
    expect(thrown(() => decodeReadReplicationSlot([{ slot_type: 'physical', restart_lsn: '0/1000000', restart_tli: '0' }])).message)
      .toBe('READ_REPLICATION_SLOT returned restart_tli "0": expected a timeline ID, an integer from 1 to 4294967295');
    expect(decodeReadReplicationSlot([{ slot_type: null, restart_lsn: null, restart_tli: null }])).toEqual({ slotType: null, restartLsn: null, restartTimeline: null });
  });

  it('TIMELINE_HISTORY without content', () => {
    expect(thrown(() => decodeTimelineHistory([{ filename: '00000002.history', content: null }])).message)
      .toBe('TIMELINE_HISTORY returned content null: expected the bytes of 00000002.history');
    expect(thrown(() => decodeTimelineHistory([{ filename: '../../etc/passwd\n', content: '' }])).message)
      .toBe('TIMELINE_HISTORY returned filename "../../etc/passwd\\n": expected a history file name like 00000002.history');
  });

  it('a 1-byte RowDescription', () => {
    expect(thrown(() => parseRowDescription(Buffer.from([0]))).message).toBe('RowDescription of 1 byte is too short: its field count alone takes 2');
  });

  it('RowDescription fields that run past the body, a negative count, trailing bytes', () => {
    const good = rowDescription([{ name: 'timeline', typeOid: 23 }]);
    expect(thrown(() => parseRowDescription(good.subarray(0, good.length - 1))).message)
      .toBe('RowDescription of 28 bytes ends inside field 1 of 1 ("timeline"): 17 of its 18 bytes after the name are there');
    expect(thrown(() => parseRowDescription(Buffer.from([0, 1, 0x61, 0x62]))).message)
      .toBe('RowDescription of 4 bytes declares 1 fields, but the name of field 1 at byte 2 has no terminator');
    expect(thrown(() => parseRowDescription(Buffer.from([0xff, 0xff]))).message).toBe('RowDescription declares -1 fields');
    expect(thrown(() => parseRowDescription(Buffer.concat([good, Buffer.from([7])]))).message).toBe('RowDescription of 30 bytes has 1 byte after its 1 fields');
  });

  it('a DataRow whose column length runs past the body', () => {
    const row = dataRow(['abcdef']);
    expect(thrown(() => parseDataRow(row.subarray(0, row.length - 2))).message)
      .toBe('DataRow column 1 of 1 claims 6 bytes at byte 6, but the 10-byte message has 4 left');
    expect(thrown(() => parseDataRow(Buffer.from([0, 2, 0xff, 0xff, 0xff, 0xff, 0, 0]))).message)
      .toBe('DataRow of 8 bytes declares 2 columns, but ends inside the length of column 2 at byte 6');
    expect(thrown(() => parseDataRow(Buffer.from([0, 1, 0xff, 0xff, 0xff, 0xfe]))).message)
      .toBe('DataRow column 1 of 1 has length -2 (only -1, NULL, may be negative)');
    expect(thrown(() => parseDataRow(Buffer.concat([row, Buffer.from([0, 0])]))).message).toBe('DataRow of 14 bytes has 2 bytes after its 1 columns');
    expect(thrown(() => parseDataRow(Buffer.alloc(0))).message).toBe('DataRow of 0 bytes is too short: its column count alone takes 2');
  });

  it('an ErrorResponse without its terminator', () => {
    expect(thrown(() => parseErrorFields(Buffer.from('SERROR\0C08P01\0Mbad\0'))).message)
      .toBe('ErrorResponse of 19 bytes does not end with the zero byte that ends its fields');
    expect(thrown(() => parseErrorFields(Buffer.from('SERROR\0Mbad'))).message)
      .toBe('ErrorResponse of 11 bytes: field "M" at byte 7 has no terminator');
    expect(thrown(() => parseErrorFields(Buffer.from('Mbad\0\0junk'))).message)
      .toBe('ErrorResponse of 10 bytes has 4 bytes after the zero byte that ends its fields');
    expect(thrown(() => parseErrorFields(Buffer.alloc(0), 'NoticeResponse')).message)
      .toBe('NoticeResponse of 0 bytes does not end with the zero byte that ends its fields');
  });

  it('column values that are not what their type says', () => {
    expect(thrown(() => columnValue(Buffer.from('abc'), 23, 'timeline')).message).toBe('int4 column "timeline" holds "abc", not a 32-bit integer');
    expect(thrown(() => columnValue(Buffer.from(''), 23)).message).toBe('int4 column holds "", not a 32-bit integer');
    expect(thrown(() => columnValue(Buffer.from('2147483648'), 23)).message).toMatch(/holds "2147483648", not a 32-bit integer/);
    expect(thrown(() => columnValue(Buffer.from('\\x3g'), 17, 'content')).message)
      .toBe('bytea column "content" holds "\\\\x3g", which is not \\x followed by pairs of hex digits');
    expect(thrown(() => columnValue(Buffer.from('\\x123'), 17)).message).toMatch(/not \\x followed by pairs of hex digits/);
    expect(columnValue(Buffer.from('-2147483648'), 23)).toBe(-2147483648);
  });

  it('XLogData headers shorter than 25 bytes', () => {
    expect(thrown(() => decodeXLogDataHeader(new Uint8Array(24))).message).toBe('XLogData message too short: 24 bytes, need at least 25');
  });
});
