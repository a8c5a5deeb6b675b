/**
 * Replication command text and result decoding (pure). Command grammar from PostgreSQL's
 * replication/repl_gram.y; result shapes from replication/walsender.c.
 */
import { WalstreamError } from '../errors.js';
import { formatLsn, parseLsn } from '../lsn.js';

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
  if (!row || !(name in row)) throw new WalstreamError('PROTOCOL', `${command} returned no "${name}" column`);
  return row[name];
}

/** Decode IDENTIFY_SYSTEM's single row (columns systemid, timeline, xlogpos, dbname). */
export function decodeIdentifySystem(rows: Row[]): SystemIdentity {
  if (rows.length !== 1) throw new WalstreamError('PROTOCOL', `IDENTIFY_SYSTEM returned ${rows.length} rows, expected 1`);
  const row = rows[0];
  return {
    systemId: String(field(row, 'systemid', 'IDENTIFY_SYSTEM')),
    timeline: Number(field(row, 'timeline', 'IDENTIFY_SYSTEM')),
    xlogPos: parseLsn(String(field(row, 'xlogpos', 'IDENTIFY_SYSTEM'))),
  };
}

/** Result of READ_REPLICATION_SLOT (PG ≥ 15); nulls when the slot does not exist or never reserved WAL. */
export interface SlotPosition {
  slotType: string | null;
  restartLsn: bigint | null;
  restartTimeline: number | null;
}

/** Decode READ_REPLICATION_SLOT's row (slot_type, restart_lsn, restart_tli). */
export function decodeReadReplicationSlot(rows: Row[]): SlotPosition {
  const row = rows[0];
  const type = field(row, 'slot_type', 'READ_REPLICATION_SLOT');
  const lsn = field(row, 'restart_lsn', 'READ_REPLICATION_SLOT');
  const tli = field(row, 'restart_tli', 'READ_REPLICATION_SLOT');
  return {
    slotType: type == null ? null : String(type),
    restartLsn: lsn == null ? null : parseLsn(String(lsn)),
    restartTimeline: tli == null ? null : Number(tli),
  };
}

/** Result of TIMELINE_HISTORY: the history file's name and exact bytes. */
export interface TimelineHistoryFile {
  fileName: string;
  content: Buffer;
}

/** Decode TIMELINE_HISTORY's row (filename text, content bytea, or text on old servers). */
export function decodeTimelineHistory(rows: Row[]): TimelineHistoryFile {
  const row = rows[0];
  const fileName = String(field(row, 'filename', 'TIMELINE_HISTORY'));
  const content = field(row, 'content', 'TIMELINE_HISTORY');
  if (!/^[0-9A-F]{8}\.history$/.test(fileName)) {
    throw new WalstreamError('PROTOCOL', `TIMELINE_HISTORY returned an unexpected file name "${fileName}"`);
  }
  return { fileName, content: Buffer.isBuffer(content) ? content : Buffer.from(String(content), 'utf8') };
}

/** The end-of-timeline result set sent after CopyDone: the next timeline and where it starts. */
export interface TimelineEnd {
  nextTimeline: number;
  nextTimelineStart: bigint;
}

/** Decode the next_tli/next_tli_startpos row that ends START_REPLICATION at a timeline switch. */
export function decodeTimelineEnd(row: Row): TimelineEnd {
  return {
    nextTimeline: Number(field(row, 'next_tli', 'START_REPLICATION')),
    nextTimelineStart: parseLsn(String(field(row, 'next_tli_startpos', 'START_REPLICATION'))),
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
