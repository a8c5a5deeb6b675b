/**
 * What a replication slot holds back on the server, read over a short-lived plain SQL connection
 * (not a replication one), so the WAL stream is never disturbed. SQL rather than READ_REPLICATION_SLOT
 * because it works on every supported server (13+; that command is 15+ only) and says more: whether
 * the slot is in use, its wal_status, and it can advance the slot (pg_replication_slot_advance,
 * PostgreSQL 11+, which no replication command does for a physical slot). The role needs a pg_hba.conf
 * line for a normal database connection (the database is the connection's dbname, else `postgres`).
 */
import { toWalstreamError } from './connection.js'; // before pg (connection.ts loads it the fast way)
import pg from 'pg';
import { type ConnectionTarget, describeTarget, sslFallbackOrder, toPgClientConfig } from './conninfo.js';
import { isSslRefusal } from './conninfo/tls.js';
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

const PROBE_SQL = `SELECT (${SERVER_LSN})::text AS server_lsn, s.slot_name IS NOT NULL AS exists, s.slot_type, coalesce(s.active, false) AS active,
  s.restart_lsn::text AS restart_lsn, s.wal_status
  FROM (SELECT 1) AS one LEFT JOIN pg_replication_slots s ON s.slot_name = $1`;

/**
 * Run `fn` on a new SQL connection to `target` (TLS and plain tried in its sslmode's order, as
 * ReplicationConnection.open does); always closed after. Errors never carry the password.
 */
export async function withSqlClient<T>(target: ConnectionTarget, timeoutMs: number, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  let lastError: unknown;
  for (const ssl of sslFallbackOrder(target)) {
    const config = toPgClientConfig(target);
    const client = new pg.Client({
      ...config,
      ssl,
      database: target.database ?? 'postgres',
      connectionTimeoutMillis: config.connectionTimeoutMillis || timeoutMs,
      query_timeout: timeoutMs || undefined,
      application_name: `${target.applicationName || 'walstream'} slot check`,
    });
    client.on('error', () => { /* reported through the failing call */ });
    try {
      await client.connect();
    } catch (err) {
      lastError = err;
      await client.end().catch(() => {});
      if (isSslRefusal(err)) continue;
      break;
    }
    try {
      return await fn(client);
    } catch (err) {
      throw toWalstreamError(err, `slot check on ${describeTarget(target)}`);
    } finally {
      await client.end().catch(() => {});
    }
  }
  throw toWalstreamError(lastError, `slot check: could not connect to ${describeTarget(target)}`);
}

/** Read `slot` and the server's position over `client` (see SlotReport). */
export async function readSlotReport(client: pg.Client, slot: string): Promise<SlotReport> {
  const row = (await client.query(PROBE_SQL, [slot])).rows[0];
  const serverLsn = parseLsn(row.server_lsn);
  const restartLsn = row.restart_lsn ? parseLsn(row.restart_lsn) : null;
  return {
    slot,
    serverLsn,
    exists: Boolean(row.exists),
    slotType: row.slot_type ?? null,
    active: Boolean(row.active),
    restartLsn,
    walStatus: row.wal_status ?? null,
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
    const row = (await client.query('SELECT end_lsn::text AS end_lsn FROM pg_replication_slot_advance($1, $2::pg_lsn)', [slot, formatLsn(lsn)])).rows[0];
    return parseLsn(row.end_lsn);
  });
}
