/**
 * Where streaming starts when the archive has nothing to resume from: the slot's restart_lsn
 * (READ_REPLICATION_SLOT, PostgreSQL ≥ 15), as pg_receivewal's StreamLog does, rounded down to a segment.
 */
import type { ReplicationConnection } from './connection.js';
import { WalstreamError } from './errors.js';
import { segmentStart } from './lsn.js';

/** A start position taken from a slot; `timeline` is null when the server did not say. */
export interface SlotStart {
  startLsn: bigint;
  timeline: number | null;
}

/**
 * The segment start of a physical slot's restart_lsn; null when the server predates
 * READ_REPLICATION_SLOT, the slot does not exist, or it has reserved no WAL (callers then use the
 * server's position). Throws WalstreamError('BAD_OPTION') for a logical slot.
 */
export async function slotStart(conn: ReplicationConnection, slot: string, segmentSize: number, serverVersion: number): Promise<SlotStart | null> {
  if (serverVersion < 150000) return null;
  const position = await conn.readSlot(slot);
  if (position.slotType && position.slotType !== 'physical') {
    throw new WalstreamError('BAD_OPTION', `replication slot "${slot}" is ${position.slotType}, not physical; use a physical slot (--create-slot makes one)`);
  }
  if (position.restartLsn === null) return null;
  return { startLsn: segmentStart(position.restartLsn, segmentSize), timeline: position.restartTimeline };
}

/**
 * Where streaming starts when there is nothing to resume from: the slot's restart_lsn (see slotStart)
 * when `slot` is given and has one, else the segment start of the server's current position, on the
 * slot's timeline or the server's. `serverVersion` is asked for only when needed and not given.
 */
export async function defaultStart(
  conn: ReplicationConnection,
  identity: { timeline: number; xlogPos: bigint },
  slot: string | undefined,
  segmentSize: number,
  serverVersion?: number,
): Promise<{ startLsn: bigint; timeline: number }> {
  const fromSlot = slot ? await slotStart(conn, slot, segmentSize, serverVersion ?? await conn.serverVersion()) : null;
  if (fromSlot) return { startLsn: fromSlot.startLsn, timeline: fromSlot.timeline ?? identity.timeline };
  return { startLsn: segmentStart(identity.xlogPos, segmentSize), timeline: identity.timeline };
}
