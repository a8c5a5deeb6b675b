/**
 * The faults a long-running archiver meets from the server's side, each injected for real: the server
 * killed (SIGKILL of the postmaster) three times while WAL streams, and the wire cut (RST from the
 * harness's proxy) three times. walstream reconnects by itself every time, and the archive ends with
 * no gap, byte-identical to pg_wal; the slot never passes what the archive holds.
 */
import path from 'node:path';
import { readdir } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { destroyAll, lsnToBigInt, startCluster, tempDir, waitFor, type Cluster } from '../harness/cluster.js';
import { startFaultProxy } from '../harness/proxy.js';
import { archivedExtent, spawnWalstream } from '../harness/walstream.js';
import { walFileName } from '../../src/lsn.js';

const SEGMENT = 1024 * 1024;
const ROUNDS = 3;

afterAll(destroyAll);

/** Write WAL, end its segment, and wait until the archive holds it complete; returns the switch LSN. */
async function archiveThrough(cluster: Cluster, archive: string): Promise<bigint> {
  await cluster.generateWal(SEGMENT / 2);
  const end = lsnToBigInt(await cluster.switchWal());
  const name = walFileName(1, end - 1n, SEGMENT);
  await waitFor(async () => (await readdir(archive)).includes(name), { timeoutMs: 60_000, what: `${name} archived` });
  return end;
}

describe('server-side faults', () => {
  it(`the server killed ${ROUNDS} times mid-stream: reconnects each time, no gap`, async () => {
    const cluster = await startCluster();
    const pgWal = path.join(cluster.dataDir, 'pg_wal');
    const slotStart = lsnToBigInt(await cluster.createSlot('crash'));
    const archive = await tempDir('walstream-crash-');
    const ws = spawnWalstream(['receive', '-D', archive, '-d', cluster.connectionString, '-S', 'crash', '-s', '1', '-v']);
    const sessions = () => ws.output.stderr.split('starting log streaming').length - 1;
    await waitFor(async () => sessions() === 1, { what: 'walstream to stream' });
    for (let round = 1; round <= ROUNDS; round++) {
      await cluster.generateWal(350_000); // WAL in flight, mid-segment, when the server dies
      await cluster.kill();
      await cluster.start();
      await waitFor(async () => sessions() === round + 1, { timeoutMs: 30_000, what: `reconnect after crash ${round}` })
        .catch((err) => { throw new Error(`${err.message}; stderr: ${ws.output.stderr}`); });
    }
    const end = await archiveThrough(cluster, archive);
    ws.kill('SIGTERM');
    expect((await ws.exited).code, ws.output.stderr).toBe(0);
    const extent = await archivedExtent(archive, pgWal, slotStart, SEGMENT);
    expect(extent, ws.output.stderr).toBeGreaterThanOrEqual(end);
    expect(lsnToBigInt((await cluster.slotRestartLsn('crash'))!)).toBeLessThanOrEqual(extent);
    console.log(`server crash x${ROUNDS}: ${sessions()} sessions, archive equals pg_wal from ${walFileName(1, slotStart, SEGMENT)} through ${walFileName(1, end - 1n, SEGMENT)}, no gap`);
  });

  it(`the wire cut (RST) ${ROUNDS} times mid-stream: reconnects each time, no gap`, async () => {
    const cluster = await startCluster();
    const pgWal = path.join(cluster.dataDir, 'pg_wal');
    const slotStart = lsnToBigInt(await cluster.createSlot('cut'));
    const proxy = await startFaultProxy({ host: cluster.host, port: cluster.port });
    const archive = await tempDir('walstream-cut-');
    const ws = spawnWalstream(['receive', '-D', archive, '-d', `host=${proxy.host} port=${proxy.port} user=postgres sslmode=disable`, '-S', 'cut', '-s', '1', '-v']);
    const sessions = () => ws.output.stderr.split('starting log streaming').length - 1;
    await waitFor(async () => sessions() === 1, { what: 'walstream to stream' });
    for (let round = 1; round <= ROUNDS; round++) {
      await cluster.generateWal(350_000);
      proxy.cutAll();
      await waitFor(async () => sessions() === round + 1, { timeoutMs: 30_000, what: `reconnect after cut ${round}` });
    }
    const end = await archiveThrough(cluster, archive);
    ws.kill('SIGTERM');
    expect((await ws.exited).code, ws.output.stderr).toBe(0);
    const extent = await archivedExtent(archive, pgWal, slotStart, SEGMENT);
    expect(extent, ws.output.stderr).toBeGreaterThanOrEqual(end);
    expect(lsnToBigInt((await cluster.slotRestartLsn('cut'))!)).toBeLessThanOrEqual(extent);
    console.log(`wire cut x${ROUNDS}: ${sessions()} sessions, ${proxy.accepted} connections, no gap`);
  });
});
