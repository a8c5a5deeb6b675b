/**
 * Replication command text and result decoding (pure). Command grammar from PostgreSQL's
 * replication/repl_gram.y; result shapes from replication/walsender.c.
 */
import { WalstreamError } from '../errors.js';
import { formatLsn, parseLsn } from '../lsn.js';
import { showValue } from './backend.js';

/** Quote an identifier for a replication command (slot names): double quotes, doubled inside. */
export function quoteIdentifier(name: string): string {
  return '"' + name.replace(/"/g, '""') + '"';
}

/** Result of IDENTIFY_SYSTEM. */
export interface SystemIdentity {
  /** The cluster's system identifier, as text (a 64-bit number). */
  systemId: string;
  timeline: number;
  /** The server's current WAL flush position (primary) or replay/receive position (standby). */
  xlogPos: bigint;
}

type Row = Record<string, unknown>;

function field(row: Row | undefined, name: string, command: string): unknown {
  if (typeof row !== 'object' || row === null || !(name in row)) throw new WalstreamError('PROTOCOL', `${command} returned no "${name}" column`);
  return row[name];
}

/** The one row a command returns; anything else is a PROTOCOL error naming the count. */
function onlyRow(rows: Row[], command: string): Row {
  if (!Array.isArray(rows) || rows.length !== 1) {
    throw new WalstreamError('PROTOCOL', `${command} returned ${Array.isArray(rows) ? rows.length : 'no'} rows, expected 1`);
  }
  return rows[0];
}

/** "COMMAND returned column VALUE: expected …", the value shown on one line and cut short. */
function badColumn(command: string, column: string, value: unknown, expected: string): WalstreamError {
  return new WalstreamError('PROTOCOL', `${command} returned ${column} ${showValue(value)}: expected ${expected}`);
}

/** A column's decimal digits: a string, or an integer number/bigint (as columnValue gives int4); null otherwise. */
function digits(value: unknown): string | null {
  const text = typeof value === 'string' ? value : typeof value === 'bigint' || (typeof value === 'number' && Number.isInteger(value)) ? String(value) : null;
  return text !== null && /^[0-9]+$/.test(text) ? text : null;
}

const MAX_UINT32 = 0xffffffffn;
const MAX_UINT64 = 0xffffffffffffffffn;

/** A timeline ID (TimeLineID, a uint32 that is never 0) from a column. */
function timelineColumn(value: unknown, command: string, column: string): number {
  const text = digits(value);
  const tli = text === null || text.length > 10 ? 0n : BigInt(text);
  if (tli < 1n || tli > MAX_UINT32) throw badColumn(command, column, value, `a timeline ID, an integer from 1 to ${MAX_UINT32}`);
  return Number(tli);
}

/** An LSN in X/X notation from a column. */
function lsnColumn(value: unknown, command: string, column: string): bigint {
  if (typeof value === 'string') {
    try {
      return parseLsn(value);
    } catch {
      // reported below, naming the command and column
    }
  }
  throw badColumn(command, column, value, 'an LSN like 0/3000060');
}

/** Decode IDENTIFY_SYSTEM's single row (columns systemid, timeline, xlogpos, dbname). */
export function decodeIdentifySystem(rows: Row[]): SystemIdentity {
  const row = onlyRow(rows, 'IDENTIFY_SYSTEM');
  const systemId = field(row, 'systemid', 'IDENTIFY_SYSTEM');
  const systemDigits = digits(systemId);
  if (systemDigits === null || systemDigits.length > 20 || BigInt(systemDigits) > MAX_UINT64) {
    throw badColumn('IDENTIFY_SYSTEM', 'systemid', systemId, 'a system identifier, a decimal integer from 0 to 18446744073709551615');
  }
  return {
    systemId: BigInt(systemDigits).toString(),
    timeline: timelineColumn(field(row, 'timeline', 'IDENTIFY_SYSTEM'), 'IDENTIFY_SYSTEM', 'timeline'),
    xlogPos: lsnColumn(field(row, 'xlogpos', 'IDENTIFY_SYSTEM'), 'IDENTIFY_SYSTEM', 'xlogpos'),
  };
}

/** Result of READ_REPLICATION_SLOT (PG ≥ 15); nulls when the slot does not exist or never reserved WAL. */
export interface SlotPosition {
  /** 'physical', or null when the slot does not exist. */
  slotType: string | null;
  restartLsn: bigint | null;
  restartTimeline: number | null;
}

/**
 * Decode READ_REPLICATION_SLOT's row (slot_type, restart_lsn, restart_tli). A logical slot is a
 * WalstreamError('BAD_OPTION') (it cannot be streamed physically); malformed columns are 'PROTOCOL'.
 */
export function decodeReadReplicationSlot(rows: Row[]): SlotPosition {
  const row = onlyRow(rows, 'READ_REPLICATION_SLOT');
  const type = field(row, 'slot_type', 'READ_REPLICATION_SLOT');
  const lsn = field(row, 'restart_lsn', 'READ_REPLICATION_SLOT');
  const tli = field(row, 'restart_tli', 'READ_REPLICATION_SLOT');
  if (type === 'logical') {
    throw new WalstreamError('BAD_OPTION', 'READ_REPLICATION_SLOT returned slot_type "logical": a logical slot cannot be streamed physically; use a physical slot (--create-slot makes one)');
  }
  if (type != null && type !== 'physical') throw badColumn('READ_REPLICATION_SLOT', 'slot_type', type, '"physical" or null');
  return {
    slotType: type == null ? null : 'physical',
    restartLsn: lsn == null ? null : lsnColumn(lsn, 'READ_REPLICATION_SLOT', 'restart_lsn'),
    restartTimeline: tli == null ? null : timelineColumn(tli, 'READ_REPLICATION_SLOT', 'restart_tli'),
  };
}

/** Result of TIMELINE_HISTORY: the history file's name and exact bytes. */
export interface TimelineHistoryFile {
  fileName: string;
  content: Buffer;
}

/** Decode TIMELINE_HISTORY's row (filename text, content bytea, or text on old servers). */
export function decodeTimelineHistory(rows: Row[]): TimelineHistoryFile {
  const row = onlyRow(rows, 'TIMELINE_HISTORY');
  const fileName = field(row, 'filename', 'TIMELINE_HISTORY');
  const content = field(row, 'content', 'TIMELINE_HISTORY');
  if (typeof fileName !== 'string' || !/^[0-9A-F]{8}\.history$/.test(fileName)) {
    throw badColumn('TIMELINE_HISTORY', 'filename', fileName, 'a history file name like 00000002.history');
  }
  if (Buffer.isBuffer(content)) return { fileName, content };
  if (typeof content === 'string') return { fileName, content: Buffer.from(content, 'utf8') };
  throw badColumn('TIMELINE_HISTORY', 'content', content, `the bytes of ${fileName}`);
}

/** The end-of-timeline result set sent after CopyDone: the next timeline and where it starts. */
export interface TimelineEnd {
  nextTimeline: number;
  nextTimelineStart: bigint;
}

/** Decode the next_tli/next_tli_startpos row that ends START_REPLICATION at a timeline switch. */
export function decodeTimelineEnd(row: Row): TimelineEnd {
  return {
    nextTimeline: timelineColumn(field(row, 'next_tli', 'START_REPLICATION'), 'START_REPLICATION', 'next_tli'),
    nextTimelineStart: lsnColumn(field(row, 'next_tli_startpos', 'START_REPLICATION'), 'START_REPLICATION', 'next_tli_startpos'),
  };
}

/** START_REPLICATION [SLOT s] PHYSICAL X/X TIMELINE n */
export function startReplicationCommand(opts: { slot?: string; startLsn: bigint; timeline: number }): string {
  const slot = opts.slot ? `SLOT ${quoteIdentifier(opts.slot)} ` : '';
  return `START_REPLICATION ${slot}PHYSICAL ${formatLsn(opts.startLsn)} TIMELINE ${opts.timeline}`;
}

/** CREATE_REPLICATION_SLOT s PHYSICAL RESERVE_WAL (the pre-15 spelling, which 15+ still accepts). */
export function createSlotCommand(slot: string): string {
  return `CREATE_REPLICATION_SLOT ${quoteIdentifier(slot)} PHYSICAL RESERVE_WAL`;
}

/** DROP_REPLICATION_SLOT s */
export function dropSlotCommand(slot: string): string {
  return `DROP_REPLICATION_SLOT ${quoteIdentifier(slot)}`;
}

/** READ_REPLICATION_SLOT s (PG ≥ 15) */
export function readSlotCommand(slot: string): string {
  return `READ_REPLICATION_SLOT ${quoteIdentifier(slot)}`;
}

/** TIMELINE_HISTORY n */
export function timelineHistoryCommand(timeline: number): string {
  return `TIMELINE_HISTORY ${timeline}`;
}
