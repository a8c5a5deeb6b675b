/**
 * What a replication slot holds back on the server, read over a short-lived plain SQL connection
 * (not a replication one), so the WAL stream is never disturbed. SQL rather than READ_REPLICATION_SLOT
 * because it works on every supported server (13+; that command is 15+ only) and says more: whether
 * the slot is in use, its wal_status, and it can advance the slot (pg_replication_slot_advance,
 * PostgreSQL 11+, which no replication command does for a physical slot). The role needs a pg_hba.conf
 * line for a normal database connection (the database is the connection's dbname, else `postgres`).
 */
import { ReplicationConnection, toWalstreamError } from './connection.js';
import { type ConnectionTarget, describeTarget } from './conninfo.js';
import { WalstreamError } from './errors.js';
import { formatLsn, parseLsn } from './lsn.js';

/** One look at a slot and the server's position. */
export interface SlotReport {
  slot: string;
  /** The server's WAL position: its insert/flush position on a primary, what it received on a standby. */
  serverLsn: bigint;
  /** False when no slot of that name exists. */
  exists: boolean;
  /** 'physical' or 'logical' (null when absent). */
  slotType: string | null;
  /** A walsender is streaming from it now. */
  active: boolean;
  restartLsn: bigint | null;
  /** pg_replication_slots.wal_status: reserved, extended, unreserved, lost (null when absent). */
  walStatus: string | null;
  /** WAL the server holds back for the slot: serverLsn - restartLsn (null without a restart_lsn). */
  retainedBytes: bigint | null;
}

const SERVER_LSN = `CASE WHEN pg_is_in_recovery() THEN COALESCE(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) ELSE pg_current_wal_lsn() END`;

/** A string literal for SQL, safe whatever standard_conforming_strings says (libpq's PQescapeLiteral). */
function quoteLiteral(value: string): string {
  if (value.includes('\0')) throw new WalstreamError('BAD_OPTION', 'a value sent in SQL contains a zero byte');
  const quoted = `'${value.replace(/'/g, "''").replace(/\\/g, '\\\\')}'`;
  return value.includes("\\") ? `E${quoted}` : quoted;
}

function probeSql(slot: string): string {
  return `SELECT (${SERVER_LSN})::text AS server_lsn, s.slot_name IS NOT NULL AS exists, s.slot_type, coalesce(s.active, false) AS active,
  s.restart_lsn::text AS restart_lsn, s.wal_status
  FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots s ON s.slot_name = ${quoteLiteral(slot)}`;
}

/** The part of a connection the SQL here needs: one simple query, rows as objects (text values). */
export interface SqlClient {
  command(text: string): Promise<Array<Record<string, unknown>>>;
}

/**
 * Run `fn` on a new SQL connection to `target` (TLS and plain tried in its sslmode's order, the same
 * start-up as ReplicationConnection.open, as a database connection); always closed after. Each query
 * and the start-up (without connect_timeout) are bounded by `timeoutMs`. Errors never carry the password.
 */
export async function withSqlClient<T>(target: ConnectionTarget, timeoutMs: number, fn: (client: SqlClient) => Promise<T>): Promise<T> {
  let conn: ReplicationConnection;
  try {
    conn = await ReplicationConnection.open(target, {
      timeoutMs,
      sql: { database: target.database ?? 'postgres', applicationName: `${target.applicationName || 'walstream'} slot check` },
    });
  } catch (err) {
    if (err instanceof WalstreamError && err.code === 'CONNECT_FAILED') throw new WalstreamError(err.code, `slot check: ${err.message}`, { cause: err });
    throw err;
  }
  try {
    return await fn(conn);
  } catch (err) {
    throw toWalstreamError(err, `slot check on ${describeTarget(target)}`);
  } finally {
    await conn.close().catch(() => {});
  }
}

/** A boolean column in text form ('t' / 'f'). */
function bool(value: unknown): boolean {
  return value === 't';
}

/** Read `slot` and the server's position over `client` (see SlotReport). */
export async function readSlotReport(client: SqlClient, slot: string): Promise<SlotReport> {
  const row = (await client.command(probeSql(slot)))[0];
  if (row === undefined) throw new WalstreamError('PROTOCOL', 'the slot check query returned no row');
  const serverLsn = parseLsn(String(row.server_lsn));
  const restartLsn = row.restart_lsn ? parseLsn(String(row.restart_lsn)) : null;
  return {
    slot,
    serverLsn,
    exists: bool(row.exists),
    slotType: (row.slot_type as string | null) ?? null,
    active: bool(row.active),
    restartLsn,
    walStatus: (row.wal_status as string | null) ?? null,
    retainedBytes: restartLsn === null ? null : serverLsn > restartLsn ? serverLsn - restartLsn : 0n,
  };
}

/** One SlotReport over a new connection to `target`. */
export function probeSlot(target: ConnectionTarget, slot: string, timeoutMs = 30_000): Promise<SlotReport> {
  return withSqlClient(target, timeoutMs, (client) => readSlotReport(client, slot));
}

/**
 * Move `slot`'s restart_lsn forward to `lsn` (pg_replication_slot_advance; the server caps it at its
 * flush position), so the server may remove the WAL before it. Resolves with the slot's new position.
 * Fails while a walsender streams from the slot (SQLSTATE 55006, "is active for PID").
 */
export async function advanceSlot(target: ConnectionTarget, slot: string, lsn: bigint, timeoutMs = 30_000): Promise<bigint> {
  return withSqlClient(target, timeoutMs, async (client) => {
    const row = (await client.command(`SELECT end_lsn::text AS end_lsn FROM pg_replication_slot_advance(${quoteLiteral(slot)}, ${quoteLiteral(formatLsn(lsn))}::pg_lsn)`))[0];
    if (row === undefined) throw new WalstreamError('PROTOCOL', 'pg_replication_slot_advance returned no row');
    return parseLsn(String(row.end_lsn));
  });
}
