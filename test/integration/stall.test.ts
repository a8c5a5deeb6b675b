/**
 * Dead-peer timeout (`walstream receive --timeout SECONDS`) and stops that never wait on the server,
 * through the harness's fault proxy (real sockets, a real PostgreSQL behind it):
 * - a network that silently stops moving bytes mid-stream is taken for dead after --timeout, walstream
 *   reconnects by itself and the archive has no gap;
 * - SIGTERM during such a stall, and during a start-up the server never answers, ends walstream
 *   within about a second (exit 0, no stack trace);
 * - a server that accepts the connection and then says nothing is taken for dead at start-up too
 *   (no connect_timeout given), and retried.
 */
import path from 'node:path';
import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { delay, destroyAll, lsnToBigInt, startCluster, tempDir, waitFor, type Cluster, type ToolProcess } from '../harness/cluster.js';
import { startFaultProxy, type FaultProxy } from '../harness/proxy.js';
import { archivedExtent, listArchive, spawnWalstream } from '../harness/walstream.js';
import { walFileName } from '../../src/lsn.js';

const SEGMENT = 1024 * 1024;
const STREAMING = /starting log streaming/g;
const TIMED_OUT = /no message from the server for \d+ s; taking the connection for dead and reconnecting \(--timeout 3\)/;

afterAll(destroyAll);

/** Every line of stderr, for assertion messages. */
const stderrOf = (proc: ToolProcess) => `walstream stderr:\n${proc.output.stderr}`;
const count = (text: string, re: RegExp) => (text.match(new RegExp(re.source, re.flags.includes('g') ? re.flags : re.flags + 'g')) ?? []).length;

/**
 * Wait (polling every 20 ms) until stderr matches `re` `times` times; returns the time it was seen
 * (performance.now()). Fails at once, with stderr, if walstream exits meanwhile.
 */
async function waitForStderr(proc: ToolProcess, re: RegExp, timeoutMs: number, what: string, times = 1): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (count(proc.output.stderr, re) >= times) return performance.now();
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(`walstream exited (${proc.exitCode ?? proc.signalCode}) while waiting for ${what}; ${stderrOf(proc)}`);
    }
    if (performance.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${stderrOf(proc)}`);
    await delay(20);
  }
}

/** waitFor, failing at once (with stderr) if walstream exits meanwhile, and with stderr on a timeout. */
async function waitWhileRunning<T>(proc: ToolProcess, fn: () => Promise<T | undefined | null | false>, opts: { timeoutMs: number; intervalMs?: number; what: string }): Promise<T> {
  let exited = false;
  const result = await waitFor(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      exited = true;
      return true as T;
    }
    return fn();
  }, opts).catch((err: Error) => { throw new Error(`${err.message}; ${stderrOf(proc)}`); });
  if (exited) throw new Error(`walstream exited (${proc.exitCode ?? proc.signalCode}) while waiting for ${opts.what}; ${stderrOf(proc)}`);
  return result;
}

/**
 * SIGTERM the walstream (node) process and expect it to exit 0 within `limitMs`; returns how long it
 * took. Waits a few seconds past the limit, so a slow stop is reported with its time rather than as a hang.
 */
async function stopWithin(proc: ToolProcess, limitMs: number, what: string): Promise<number> {
  const t0 = performance.now();
  proc.kill('SIGTERM');
  const result = await Promise.race([proc.exited, delay(limitMs + 3000).then(() => null)]);
  const ms = Math.round(performance.now() - t0);
  expect(result, `${what}: walstream still running ${ms} ms after SIGTERM; ${stderrOf(proc)}`).not.toBeNull();
  expect(ms, `${what}: walstream took ${ms} ms to exit after SIGTERM (limit ${limitMs}); ${stderrOf(proc)}`).toBeLessThanOrEqual(limitMs);
  expect(result, `${what}: exit status; ${stderrOf(proc)}`).toEqual({ code: 0, signal: null });
  expect(proc.output.stderr, `${what}: a stack trace on stderr`).not.toMatch(/^\s+at .*[(:]/m);
  return ms;
}

describe('dead-peer timeout and stops through a stalled network', () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster();
  });

  const conninfo = (proxy: FaultProxy, extra = '') => `host=127.0.0.1 port=${proxy.port} user=postgres dbname=postgres${extra}`;

  it('takes a connection stalled longer than --timeout for dead, reconnects by itself and leaves no gap', async () => {
    const pgWal = path.join(cluster.dataDir, 'pg_wal');
    const slotStart = lsnToBigInt(await cluster.createSlot('stall'));
    const archive = await tempDir('stall-archive-');
    const proxy = await startFaultProxy({ host: cluster.host, port: cluster.port });
    const ws = spawnWalstream(['receive', '-D', archive, '-d', conninfo(proxy), '-S', 'stall', '--timeout', '3', '-s', '1', '-v']);
    await waitForStderr(ws, STREAMING, 30_000, 'walstream to start streaming');

    // Healthy streaming first: WAL reaches the archive.
    await cluster.generateWal(SEGMENT / 4);
    const beforeStall = lsnToBigInt(await cluster.currentLsn());
    await waitWhileRunning(ws, async () => (await archivedExtent(archive, pgWal, slotStart, SEGMENT)) >= beforeStall, { timeoutMs: 30_000, what: 'WAL before the stall to reach the archive' });

    // Stall right after a byte reached walstream (the WAL of a small write), so the silence walstream
    // sees starts when the stall does (within the 2 ms of polling).
    const down = proxy.bytesDown;
    const kick = cluster.generateWal(1);
    await waitFor(async () => proxy.bytesDown > down, { timeoutMs: 10_000, intervalMs: 2, what: 'WAL from the server before the stall' });
    proxy.setMode('stall');
    const stallAt = performance.now();
    const acceptedBefore = proxy.accepted;
    await kick;
    // WAL written during the stall: held in the proxy and the kernel buffers, never seen by walstream on
    // this connection; it must arrive over the new one.
    const generated = cluster.generateWal(1.5 * SEGMENT);

    const timedOutAt = await waitForStderr(ws, TIMED_OUT, 15_000, 'the dead-peer timeout message');
    const timeoutMs = Math.round(timedOutAt - stallAt);
    expect(timeoutMs, `timeout message ${timeoutMs} ms after the stall: before the 3 s timeout (100 ms of measuring slack); ${stderrOf(ws)}`).toBeGreaterThanOrEqual(2900);
    expect(timeoutMs, `timeout message ${timeoutMs} ms after the stall: more than --timeout 3 + 2 s; ${stderrOf(ws)}`).toBeLessThanOrEqual(5000);
    expect(ws.exitCode, `walstream must keep running after the timeout; ${stderrOf(ws)}`).toBeNull();
    await generated;
    const afterStall = lsnToBigInt(await cluster.currentLsn());

    // The network comes back (a connection made meanwhile was held by the proxy and now goes through).
    proxy.setMode('forward');
    // Reconnected = the WAL written during the stall is in the archive, over a new connection. Bound:
    // up to 3.75 s for the timeout (it is checked every 750 ms), 1 s of backoff, then the old walsender
    // may still hold the slot (PostgreSQL refuses START_REPLICATION on an active slot until it exits;
    // walstream retries after 2 s more), plus connecting and start-up: 3 + 8 s leaves a few seconds spare.
    const boundMs = 3000 + 8000;
    await waitWhileRunning(ws, async () => (await archivedExtent(archive, pgWal, slotStart, SEGMENT)) >= afterStall, { timeoutMs: 30_000, what: 'WAL written during the stall to reach the archive after reconnecting' });
    const reconnectMs = Math.round(performance.now() - stallAt);
    expect(proxy.accepted, `no new connection through the proxy; ${stderrOf(ws)}`).toBeGreaterThan(acceptedBefore);
    expect(count(ws.output.stderr, STREAMING), `no second "starting log streaming"; ${stderrOf(ws)}`).toBeGreaterThanOrEqual(2);
    expect(reconnectMs, `resumed streaming ${reconnectMs} ms after the stall began (bound ${boundMs}); ${stderrOf(ws)}`).toBeLessThanOrEqual(boundMs);

    // And keeps archiving: everything up to a segment switch, with no gap.
    await cluster.generateWal(SEGMENT / 2);
    const end = lsnToBigInt(await cluster.switchWal());
    const lastSegment = walFileName(1, end - 1n, SEGMENT);
    await waitWhileRunning(ws, async () => (await readdir(archive)).includes(lastSegment), { timeoutMs: 30_000, what: `${lastSegment} archived` })
      .catch(async (err: Error) => { throw new Error(`${err.message}; archive: ${(await readdir(archive)).join(' ')}`); });
    const stopMs = await stopWithin(ws, 5000, 'stop after the reconnect');

    const extent = await archivedExtent(archive, pgWal, slotStart, SEGMENT);
    expect(extent, `archive holds the server's WAL with no gap only up to ${extent.toString(16)}, not to the switch at ${end.toString(16)}; ${stderrOf(ws)}`).toBeGreaterThanOrEqual(end);
    const { complete, partial, other } = await listArchive(archive);
    expect(partial.filter((n) => n < lastSegment), `a .partial left below the newest segment; complete: ${complete.join(' ')}`).toEqual([]);
    expect(other, 'unexpected files in the archive').toEqual([]);
    const restart = lsnToBigInt((await cluster.slotRestartLsn('stall'))!);
    expect(restart, `slot restart_lsn ${restart.toString(16)} is past what the archive holds (${extent.toString(16)})`).toBeLessThanOrEqual(extent);
    console.log(`stall: timeout message ${timeoutMs} ms after the stall, WAL flowing again ${reconnectMs} ms after it, ${proxy.accepted} connections, stop ${stopMs} ms`);
  });

  it('SIGTERM during a stall ends walstream within 2 s (exit 0), long before --timeout 60', async () => {
    const archive = await tempDir('stall-stop-');
    const proxy = await startFaultProxy({ host: cluster.host, port: cluster.port });
    const ws = spawnWalstream(['receive', '-D', archive, '-d', conninfo(proxy, ' application_name=stall_stop'), '--timeout', '60', '-v']);
    await waitForStderr(ws, STREAMING, 30_000, 'walstream to start streaming');
    // In the copy: the server lists the walsender as streaming.
    await waitWhileRunning(ws, async () => (await cluster.query(`select 1 from pg_stat_replication where application_name = 'stall_stop' and state = 'streaming'`)).length === 1,
      { timeoutMs: 30_000, what: 'the walsender to be streaming' });
    proxy.setMode('stall');
    await delay(300);
    const ms = await stopWithin(ws, 2000, 'SIGTERM during a stall');
    console.log(`stall: SIGTERM during a stall: exit after ${ms} ms`);
  });

  it('SIGTERM during a start-up the server never answers ends walstream within 2 s (exit 0)', async () => {
    const archive = await tempDir('stall-silent-');
    const proxy = await startFaultProxy({ host: cluster.host, port: cluster.port }, 'silent');
    const ws = spawnWalstream(['receive', '-D', archive, '-d', conninfo(proxy)]);
    await waitWhileRunning(ws, async () => proxy.accepted >= 1, { timeoutMs: 15_000, what: 'walstream to connect to the silent proxy' });
    await delay(300);
    expect(ws.exitCode, `walstream exited before SIGTERM; ${stderrOf(ws)}`).toBeNull();
    const ms = await stopWithin(ws, 2000, 'SIGTERM during a silent start-up');
    expect(proxy.accepted, 'walstream connected again instead of waiting (default --timeout 60)').toBe(1);
    console.log(`stall: SIGTERM during a silent start-up: exit after ${ms} ms`);
  });

  it('takes a server that never answers start-up for dead after --timeout, and retries', async () => {
    const archive = await tempDir('stall-silent-');
    const proxy = await startFaultProxy({ host: cluster.host, port: cluster.port }, 'silent');
    const spawnedAt = performance.now();
    const ws = spawnWalstream(['receive', '-D', archive, '-d', conninfo(proxy), '--timeout', '2', '-v']);
    const firstAcceptAt = await waitWhileRunning(ws, async () => proxy.accepted >= 1 && performance.now(), { timeoutMs: 15_000, intervalMs: 20, what: 'walstream to connect to the silent proxy' });
    const failure = /^walstream: could not connect to host=127\.0\.0\.1 port=\d+.*(timeout|timed out).*; retrying in \d+ s$/im;
    const failedAt = await waitForStderr(ws, failure, 8000, 'the start-up timeout warning');
    // A retry: a new connection through the proxy and a new attempt in the log (one start-up attempt
    // may open two connections, SSL then plain, so the count alone does not prove it).
    await waitWhileRunning(ws, async () => proxy.accepted >= 2 && count(ws.output.stderr, /^walstream: connecting to host=/m) >= 2, { timeoutMs: 8000, intervalMs: 20, what: 'a second connection (the retry)' })
      .catch((err: Error) => { throw new Error(`${err.message}; connections accepted: ${proxy.accepted}`); });
    const retriedMs = Math.round(performance.now() - spawnedAt);
    const failedMs = Math.round(failedAt - firstAcceptAt);
    expect(failedMs, `start-up given up ${failedMs} ms after connecting, before --timeout 2 (200 ms of measuring slack); ${stderrOf(ws)}`).toBeGreaterThanOrEqual(1800);
    expect(retriedMs, `retried only ${retriedMs} ms after starting; ${stderrOf(ws)}`).toBeLessThanOrEqual(8000);
    const stopMs = await stopWithin(ws, 2000, 'SIGTERM while retrying a silent server');
    console.log(`stall: silent start-up given up ${failedMs} ms after connecting, retried ${retriedMs} ms after spawn, stop ${stopMs} ms`);
  });
});
