/**
 * Acceptance (#12, 5): archive files get the server's permissions as pg_receivewal creates them
 * (0600; 0640 when the data directory grants group access), and the reconnect backoff starts over
 * after a healthy session instead of staying at its longest.
 */
import { stat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { destroyAll, lsnToBigInt, startCluster, tempDir, waitFor, type Cluster } from '../harness/cluster.js';
import { runWalstream, spawnWalstream } from '../harness/walstream.js';

afterAll(destroyAll);

/** Archive WAL of `cluster` to an endpos and return the permission bits of every file written. */
async function archivedModes(cluster: Cluster): Promise<Map<string, number>> {
  const archive = await tempDir('walstream-modes-');
  await cluster.createSlot('modes');
  await cluster.generateWal(1_500_000);
  const end = await cluster.currentLsn();
  const result = await runWalstream(['receive', '-D', archive, '-d', cluster.connectionString, '-S', 'modes', '-E', end, '-n']);
  expect(result.code, result.stderr).toBe(0);
  const modes = new Map<string, number>();
  for (const name of await readdir(archive)) modes.set(name, (await stat(path.join(archive, name))).mode & 0o777);
  expect([...modes.keys()].some((n) => /^[0-9A-F]{24}$/.test(n)), 'a complete segment').toBe(true);
  expect([...modes.keys()].some((n) => n.endsWith('.partial')), 'a .partial').toBe(true);
  return modes;
}

describe('file permissions follow the server (streamutil.c RetrieveDataDirCreatePerm)', () => {
  const umask = process.umask(0o022); // what most systems run with: old walstream made 0644 files under it
  afterAll(() => { process.umask(umask); });

  it('0600 for a data directory without group access', async () => {
    const cluster = await startCluster();
    const modes = await archivedModes(cluster);
    for (const [name, mode] of modes) expect(mode.toString(8), name).toBe('600');
  });

  it('0640 when the server was initialised with group access (data_directory_mode 0750)', async () => {
    const cluster = await startCluster({ initdbArgs: ['--allow-group-access'] });
    const [row] = await cluster.query<{ mode: string }>(`select current_setting('data_directory_mode') as mode`);
    expect(row!.mode).toBe('0750');
    const modes = await archivedModes(cluster);
    for (const [name, mode] of modes) expect(mode.toString(8), name).toBe('640');
  });
});

describe('reconnect backoff', () => {
  it('is back to 1 s after a session that archived WAL, however long the outage before it', async () => {
    const cluster = await startCluster();
    const slotStart = lsnToBigInt(await cluster.createSlot('backoff'));
    const archive = await tempDir('walstream-backoff-');
    const ws = spawnWalstream(['receive', '-D', archive, '-d', cluster.connectionString, '-S', 'backoff', '-s', '1', '-v']);
    const sessions = () => ws.output.stderr.split('starting log streaming').length - 1;
    await waitFor(async () => sessions() === 1, { what: 'walstream to stream' });

    // A first outage long enough for the backoff to grow to 4 s.
    await cluster.stop('fast');
    await waitFor(async () => /retrying in 4 s/.test(ws.output.stderr), { timeoutMs: 30_000, what: 'backoff to reach 4 s' });
    await cluster.start();
    await waitFor(async () => sessions() === 2, { timeoutMs: 30_000, what: 'walstream to reconnect' });
    // A healthy session: WAL streamed and made durable (the slot moved past it).
    await cluster.generateWal(300_000);
    const target = lsnToBigInt(await cluster.switchWal()); // a complete segment: flushed and reported
    await waitFor(async () => lsnToBigInt((await cluster.slotRestartLsn('backoff'))!) >= target, { what: 'the slot to move' });
    expect(target).toBeGreaterThan(slotStart);

    // The next outage starts over at 1 s.
    const before = ws.output.stderr.length;
    await cluster.stop('fast');
    await waitFor(async () => /retrying in \d+ s/.test(ws.output.stderr.slice(before)), { timeoutMs: 30_000, what: 'a retry after the second outage' });
    const firstRetry = /retrying in (\d+) s/.exec(ws.output.stderr.slice(before))![1];
    expect(firstRetry, ws.output.stderr).toBe('1');
    ws.kill('SIGTERM');
    expect((await ws.exited).code, ws.output.stderr).toBe(0);
  });
});
