/**
 * What every session learns about the server before streaming, checked the same way for the Archiver,
 * WalReceiver and `walstream bench`: a supported version, its identity, a valid segment size.
 */
import type { ReplicationConnection } from './connection.js';
import { WalstreamError } from './errors.js';
import { isValidSegmentSize } from './lsn.js';
import type { SystemIdentity } from './protocol/commands.js';

/** The server facts a session starts from. */
export interface ServerFacts {
  /** server_version_num, e.g. 150004. */
  version: number;
  identity: SystemIdentity;
  /** wal_segment_size in bytes. */
  segmentSize: number;
}

/**
 * Ask the server its version, identity (IDENTIFY_SYSTEM) and segment size; rejects with
 * WalstreamError SERVER_VERSION for servers before 13 and BAD_SEGMENT_SIZE for an impossible size.
 */
export async function checkServer(conn: ReplicationConnection): Promise<ServerFacts> {
  const version = await conn.serverVersion();
  if (version < 130000) {
    throw new WalstreamError('SERVER_VERSION', `server ${conn.description} runs PostgreSQL ${Math.floor(version / 10000)}; walstream supports 13 and later: upgrade the server or use that version's pg_receivewal`);
  }
  const identity = await conn.identifySystem();
  const segmentSize = await conn.segmentSize();
  if (!isValidSegmentSize(segmentSize)) {
    throw new WalstreamError('BAD_SEGMENT_SIZE', `server reports wal_segment_size ${segmentSize}, not a power of two between 1 MB and 1 GB`);
  }
  return { version, identity, segmentSize };
}
