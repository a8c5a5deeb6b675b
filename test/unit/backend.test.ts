import { describe, expect, it } from 'vitest';
import { columnValue, encodeCopyData, encodeCopyDone, encodeQuery, parseDataRow, parseErrorFields, parseRowDescription } from '../../src/protocol/backend.js';

describe('backend messages', () => {
  it('decodes RowDescription and DataRow (text values, NULLs, bytea, int4)', () => {
    const names = ['systemid', 'timeline', 'content'];
    const oids = [25, 23, 17];
    const parts: Buffer[] = [Buffer.from([0, 3])];
    names.forEach((name, i) => {
      const meta = Buffer.alloc(18);
      meta.writeUInt32BE(oids[i], 6);
      parts.push(Buffer.from(name + '\0'), meta);
    });
    const fields = parseRowDescription(Buffer.concat(parts));
    expect(fields).toEqual([{ name: 'systemid', typeOid: 25 }, { name: 'timeline', typeOid: 23 }, { name: 'content', typeOid: 17 }]);

    const col = (text: string | null) => {
      if (text === null) return Buffer.from([0xff, 0xff, 0xff, 0xff]);
      const b = Buffer.alloc(4);
      b.writeInt32BE(Buffer.byteLength(text));
      return Buffer.concat([b, Buffer.from(text)]);
    };
    const row = parseDataRow(Buffer.concat([Buffer.from([0, 3]), col('7300000000000000001'), col('2'), col('\\x310930')]));
    expect(row.map((v, i) => columnValue(v, fields[i].typeOid))).toEqual(['7300000000000000001', 2, Buffer.from('1\t0')]);
    expect(parseDataRow(Buffer.concat([Buffer.from([0, 1]), col(null)]))).toEqual([null]);
  });

  it('decodes ErrorResponse fields', () => {
    const body = Buffer.from('SERROR\0VERROR\0C28P01\0Mpassword authentication failed for user "x"\0Hcheck it\0\0');
    expect(parseErrorFields(body)).toEqual({ severity: 'ERROR', code: '28P01', message: 'password authentication failed for user "x"', detail: undefined, hint: 'check it' });
  });

  it('encodes Query, CopyData and CopyDone', () => {
    expect(encodeQuery('IDENTIFY_SYSTEM').toString('latin1')).toBe('Q\0\0\0\x14IDENTIFY_SYSTEM\0');
    expect([...encodeCopyData(Buffer.from([1, 2]))]).toEqual([0x64, 0, 0, 0, 6, 1, 2]);
    expect([...encodeCopyDone()]).toEqual([0x63, 0, 0, 0, 4]);
  });
});
