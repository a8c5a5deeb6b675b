/**
 * StreamSession's readCoalesceMs on a real server: following a primary that commits every few
 * milliseconds, the socket is read in batches (one wake-up per interval, not one per commit), and the
 * WAL delivered is the same bytes, in order, as when reading at once.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { ReplicationConnection } from '../../src/connection.js';
import { targetsFor } from '../../src/conninfo.js';
import { StreamSession, type StreamOutcome } from '../../src/stream.js';
import { walFileName } from '../../src/lsn.js';
import { destroyAll, hasOpenssl, lsnToBigInt, selfSignedCertificate, startCluster, type Cluster } from '../harness/cluster.js';
import { waitFor } from '../harness/tools.js';

afterAll(destroyAll);

/** Collects a session's WAL and counts its batches (one per socket read). */
class CountingConsumer {
  batches = 0;
  bytes: Buffer[] = [];
  start: bigint | null = null;
  end = 0n;
  positions = () => ({ writeLsn: this.end, flushLsn: 0n });
  /** Pull every batch, then end the session. */
  async drain(session: StreamSession): Promise<StreamOutcome> {
    for await (const batch of session) {
      if (batch.pieces.length > 0) this.batches++;
      for (const { walStart, data } of batch.pieces) {
        this.start ??= walStart;
        this.bytes.push(Buffer.from(data));
        this.end = walStart + BigInt(data.length);
      }
    }
    return session.finish();
  }
}

/** Follow `cluster` from its current position while it makes `commits` small commits, `gapMs` apart. */
async function follow(cluster: Cluster, readCoalesceMs: number, commits: number, gapMs: number): Promise<CountingConsumer> {
  const conn = await ReplicationConnection.open(targetsFor(cluster.connectionString)[0]!);
  const consumer = new CountingConsumer();
  const abort = new AbortController();
  try {
    const identity = await conn.identifySystem();
    const startLsn = identity.xlogPos - (identity.xlogPos % 8192n); // a page start, like the server's own requests
    const session = consumer.drain(new StreamSession(conn, {
      startLsn, timeline: identity.timeline, segmentSize: 1 << 20, statusIntervalMs: 1000,
      positions: consumer.positions, readCoalesceMs, signal: abort.signal,
    }));
    await cluster.withClient(async (client) => {
      await client.query('create table if not exists trickle (n int)');
      for (let i = 0; i < commits; i++) {
        await client.query('insert into trickle values ($1)', [i]);
        await new Promise((r) => setTimeout(r, gapMs));
      }
    });
    const target = lsnToBigInt(await cluster.currentLsn());
    await waitFor(async () => consumer.end >= target, { what: 'the stream to reach the last commit' });
    abort.abort();
    await session;
  } finally {
    await conn.close();
  }
  return consumer;
}

const SEGMENT = 1 << 20;

/** The server's own WAL bytes [from, to) out of its pg_wal files (1 MB segments, timeline 1). */
async function serverWal(cluster: Cluster, from: bigint, to: bigint): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let at = from; at < to;) {
    const segmentEnd = at - (at % BigInt(SEGMENT)) + BigInt(SEGMENT);
    const until = to < segmentEnd ? to : segmentEnd;
    const file = await open(path.join(cluster.dataDir, 'pg_wal', walFileName(1, at, SEGMENT)), 'r');
    try {
      const buf = Buffer.alloc(Number(until - at));
      await file.read(buf, 0, buf.length, Number(at % BigInt(SEGMENT)));
      parts.push(buf);
    } finally {
      await file.close();
    }
    at = until;
  }
  return Buffer.concat(parts);
}

describe('read coalescing', () => {
  it('reads a trickle in batches, and the WAL is the same bytes as the server\'s', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1 });
    const atOnce = await follow(cluster, 0, 60, 5);
    const coalesced = await follow(cluster, 100, 60, 5);
    // 60 commits 5 ms apart take at least 300 ms: read at once, about one batch per commit (fewer on a
    // loaded machine); with 100 ms of rest after each caught-up read, a handful.
    expect(atOnce.batches).toBeGreaterThanOrEqual(25);
    expect(coalesced.batches).toBeLessThanOrEqual(atOnce.batches / 3);
    for (const run of [atOnce, coalesced]) {
      expect(Buffer.concat(run.bytes).equals(await serverWal(cluster, run.start!, run.end))).toBe(true);
    }
  });

  it.skipIf(!hasOpenssl)('never rests while catching up, over TLS (16 KiB pieces) or plain TCP', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1, conf: (await selfSignedCertificate()).conf });
    for (const sslmode of ['require', 'disable']) {
      const slot = `catchup_${sslmode}`;
      const startLsn = lsnToBigInt(await cluster.createSlot(slot));
      await cluster.generateWal(6 << 20);
      const endLsn = lsnToBigInt(await cluster.currentLsn());
      const conn = await ReplicationConnection.open(targetsFor(`${cluster.connectionString} sslmode=${sslmode}`)[0]!);
      const consumer = new CountingConsumer();
      try {
        // A rest of 2 s after every read would take minutes for 6 MB; caught-up rests only come at the end.
        const session = consumer.drain(new StreamSession(conn, {
          slot, startLsn, endLsn, timeline: 1, segmentSize: SEGMENT, statusIntervalMs: 1000,
          positions: consumer.positions, readCoalesceMs: 2000,
        }));
        let timer: NodeJS.Timeout | undefined;
        const stalled = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`catching up over sslmode=${sslmode} rested: not done in 20 s`)), 20_000); });
        try {
          await Promise.race([session, stalled]);
        } finally {
          clearTimeout(timer);
        }
      } finally {
        await conn.close();
      }
      expect(consumer.end).toBeGreaterThanOrEqual(endLsn);
      expect(Buffer.concat(consumer.bytes).equals(await serverWal(cluster, startLsn, consumer.end))).toBe(true);
    }
  });
});
