/**
 * Acceptance (#15) against real servers. 1 and 4: `receive --metrics-port` over a password (SCRAM)
 * connection: after WAL, /metrics and /status show the flushed position and the segment counter
 * moved; a server restart increments walstream_reconnects_total; /healthz turns 503 while the server
 * is down and 200 after; /metrics parses as strict exposition; the password appears in no endpoint.
 * 3 and 2 (slot): the archive on a full tmpfs: the slot-retained metric grows and the warning appears,
 * `status -d -S --max-retained` is CRITICAL naming the slot; with --on-slot-limit=release the slot is
 * advanced and `status` reports the recorded gap.
 */
import { readdir, rm, writeFile } from 'node:fs/promises';
import { statfsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { destroyAll, freePort, lsnToBigInt, startCluster, tempDir, waitFor } from '../harness/cluster.js';
import { runWalstream, spawnWalstream } from '../harness/walstream.js';
import { mountTmpfs, tmpfsUnavailable } from '../harness/tmpfs.js';
import { parsePrometheusText, sampleValue } from '../harness/prometheus.js';
import { parseLsn } from '../../src/lsn.js';

const SEGMENT = 1024 * 1024;
afterAll(destroyAll);

/** GET a path of the metrics server: status code and body. */
async function get(port: number, route: string): Promise<{ code: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${route}`);
  return { code: res.status, body: await res.text() };
}

async function metrics(port: number) {
  const { code, body } = await get(port, '/metrics');
  expect(code).toBe(200);
  return parsePrometheusText(body);
}

describe('receive --metrics-port', () => {
  it('shows the flushed position and segments moving, counts a reconnect, and /healthz follows the server', async () => {
    const cluster = await startCluster({ scram: true });
    await cluster.createSlot('mon');
    const password = 'wspass';
    const archive = await tempDir('walstream-mon-');
    const port = await freePort();
    const ws = spawnWalstream(['receive', '-D', archive, '-d', cluster.connectionStringFor('wsuser', password), '-S', 'mon', '-s', '1',
      '--metrics-port', String(port), '--health-grace', '2', '--slot-check-interval', '1']);
    const fail = (err: Error) => { throw new Error(`${err.message}; stderr: ${ws.output.stderr}`); };
    await waitFor(async () => (await get(port, '/healthz')).code === 200 && JSON.parse((await get(port, '/status')).body).state === 'streaming', { what: 'streaming' }).catch(fail);

    const before = await metrics(port);
    const segmentsBefore = sampleValue(before, 'walstream_segments_archived_total');
    await cluster.generateWal(3 * SEGMENT);
    const end = lsnToBigInt(await cluster.switchWal());
    await waitFor(async () => sampleValue(await metrics(port), 'walstream_flushed_lsn_bytes') >= Number(end), { what: `flushed ${end.toString(16)}` }).catch(fail);
    const after = await metrics(port);
    expect(sampleValue(after, 'walstream_segments_archived_total') - segmentsBefore).toBeGreaterThanOrEqual(3);
    expect(sampleValue(after, 'walstream_bytes_received_total')).toBeGreaterThanOrEqual(3 * SEGMENT);
    expect(sampleValue(after, 'walstream_up')).toBe(1);
    expect(sampleValue(after, 'walstream_timeline')).toBe(1);
    expect(sampleValue(after, 'walstream_received_lsn_bytes')).toBeGreaterThanOrEqual(Number(end));
    expect(sampleValue(after, 'walstream_server_wal_end_bytes')).toBeGreaterThanOrEqual(Number(end));
    expect(sampleValue(after, 'walstream_last_segment_timestamp_seconds')).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(sampleValue(after, 'walstream_reconnects_total')).toBe(0);
    await waitFor(async () => !Number.isNaN(sampleValue(await metrics(port), 'walstream_slot_retained_bytes')), { what: 'a slot check' }).catch(fail);
    const status = JSON.parse((await get(port, '/status')).body);
    expect(parseLsn(status.flushedLsn)).toBeGreaterThanOrEqual(end);
    expect(status).toMatchObject({ state: 'streaming', slot: 'mon', timeline: 1, connectedTo: `127.0.0.1:${cluster.port}`, lastError: null });
    expect(status.segmentsArchived).toBe(sampleValue(await metrics(port), 'walstream_segments_archived_total'));

    // The server goes away: 503 once the grace has passed; back: 200 and one more reconnect.
    await cluster.stop('fast');
    const down = await waitFor(async () => { const r = await get(port, '/healthz'); return r.code === 503 && r; }, { timeoutMs: 20_000, what: '/healthz 503' }).catch(fail);
    expect(down.body).toMatch(/^not streaming for \d+ s \(disconnected\)/);
    const whileDown = JSON.parse((await get(port, '/status')).body);
    expect(whileDown.state).toMatch(/disconnected|connecting/);
    expect(whileDown.lastError).toBeTruthy();
    const endpoints = [down.body, JSON.stringify(whileDown), (await get(port, '/metrics')).body];
    await cluster.start();
    await waitFor(async () => (await get(port, '/healthz')).code === 200, { timeoutMs: 30_000, what: '/healthz 200 after the restart' }).catch(fail);
    const restarted = await metrics(port);
    expect(sampleValue(restarted, 'walstream_reconnects_total')).toBeGreaterThanOrEqual(1);
    expect(sampleValue(restarted, 'walstream_up')).toBe(1);
    endpoints.push((await get(port, '/metrics')).body, (await get(port, '/status')).body, (await get(port, '/healthz')).body);
    for (const text of endpoints) expect(text).not.toContain(password);
    expect(ws.output.stderr).not.toContain(password);

    ws.kill('SIGTERM');
    expect((await ws.exited).code, ws.output.stderr).toBe(0);
    console.log(`metrics: ${sampleValue(restarted, 'walstream_segments_archived_total')} segments, reconnects ${sampleValue(restarted, 'walstream_reconnects_total')}; /healthz while down: "${down.body.trim()}"`);
  });
});

const unavailable = tmpfsUnavailable();
if (unavailable) console.log(`slot guard test skipped: ${unavailable}`);

describe.skipIf(unavailable !== null)('slot guard on a full archive (a real tmpfs)', () => {
  it('the retained metric grows and the warning appears; with --on-slot-limit=release the slot moves and status reports the gap', async () => {
    const cluster = await startCluster();
    await cluster.createSlot('guard');
    const archive = mountTmpfs(16 * SEGMENT);
    const { bavail, bsize } = statfsSync(archive);
    const filler = path.join(archive, 'filler');
    await writeFile(filler, Buffer.alloc(Number(bavail) * Number(bsize) - (2 * SEGMENT - 128 * 1024)));
    const port = await freePort();
    const base = ['receive', '-D', archive, '-d', cluster.connectionString, '-S', 'guard', '-s', '1', '--max-slot-retained', '3MB', '--slot-check-interval', '1', '--metrics-port', String(port)];

    const warn = spawnWalstream(base);
    const fail = (proc: typeof warn) => (err: Error) => { throw new Error(`${err.message}; stderr: ${proc.output.stderr}`); };
    await cluster.generateWal(6 * SEGMENT);
    await waitFor(async () => /holds back .* of WAL on the server .*over --max-slot-retained 3\.0 MiB/.test(warn.output.stderr), { timeoutMs: 30_000, what: 'the slot warning' }).catch(fail(warn));
    const line = warn.output.stderr.split('\n').find((l) => l.includes('--max-slot-retained'))!;
    expect(line).toMatch(/^walstream: replication slot "guard" holds back [\d.]+ MiB of WAL on the server \(restart_lsn [0-9A-F]+\/[0-9A-F]+, server at [0-9A-F]+\/[0-9A-F]+\), over --max-slot-retained 3\.0 MiB(; walstream is behind: .*ENOSPC.*)?; --on-slot-limit=release would release it/);
    await waitFor(async () => /no space left on device \(ENOSPC\)/.test(warn.output.stderr), { timeoutMs: 30_000, what: 'ENOSPC' }).catch(fail(warn));
    const retained1 = sampleValue(await metrics(port), 'walstream_slot_retained_bytes');
    expect(retained1).toBeGreaterThan(3 * SEGMENT);
    await cluster.generateWal(2 * SEGMENT);
    await waitFor(async () => sampleValue(await metrics(port), 'walstream_slot_retained_bytes') >= retained1 + 2 * SEGMENT, { timeoutMs: 20_000, what: 'the retained metric to grow' }).catch(fail(warn));
    // Warn only: the slot still holds the WAL.
    expect(warn.output.stderr).not.toMatch(/released/);
    // `status` with the slot past --max-retained: CRITICAL, naming the slot.
    const check = await runWalstream(['status', '-D', archive, '-d', cluster.connectionString, '-S', 'guard', '--max-retained', '4MB']);
    expect(check.code, check.stdout + check.stderr).toBe(2);
    expect(check.stdout).toMatch(/^WALSTREAM CRITICAL: .*replication slot "guard" holds back [\d.]+ MiB of WAL on the server, over --max-retained 4\.0 MiB/);
    warn.kill('SIGTERM');
    expect((await warn.exited).code, warn.output.stderr).toBe(0);

    // Release: the slot is advanced to the server's position, the gap recorded.
    const serverBefore = lsnToBigInt(await cluster.currentLsn());
    const release = spawnWalstream([...base, '--on-slot-limit=release']);
    await waitFor(async () => /released replication slot "guard": advanced it from/.test(release.output.stderr), { timeoutMs: 60_000, what: 'the release' }).catch(fail(release));
    // At least the segment holding the server's position then: the next connection streams from that
    // segment's start and reports it (never the archive's older position: the release waits for no
    // connection to be choosing its start or streaming).
    expect(lsnToBigInt((await cluster.slotRestartLsn('guard'))!)).toBeGreaterThanOrEqual(serverBefore - (serverBefore % BigInt(SEGMENT)));
    await waitFor(async () => (await readdir(archive)).some((n) => n.startsWith('walstream.gap.')), { timeoutMs: 30_000, what: 'the gap marker' }).catch(fail(release));
    // Space returns: archiving goes on after the gap.
    await rm(filler);
    await cluster.generateWal(SEGMENT);
    const end = lsnToBigInt(await cluster.switchWal());
    await waitFor(async () => sampleValue(await metrics(port), 'walstream_flushed_lsn_bytes') >= Number(end), { timeoutMs: 60_000, what: 'archiving after the gap' }).catch(fail(release));
    expect(sampleValue(await metrics(port), 'walstream_gaps_recorded_total')).toBeGreaterThanOrEqual(1);
    release.kill('SIGTERM');
    expect((await release.exited).code, release.output.stderr).toBe(0);

    const status = await runWalstream(['status', '-D', archive, '--json']);
    const json = JSON.parse(status.stdout);
    expect(status.code, status.stdout).toBe(1);
    expect(json.archive.markers.length).toBeGreaterThanOrEqual(1);
    expect(json.archive.gaps.length).toBeGreaterThanOrEqual(1);
    expect(json.archive.gaps.every((g: { marker: string | null }) => g.marker !== null), JSON.stringify(json.archive.gaps)).toBe(true);
    expect(json.problems[0].message).toMatch(/^known gap in the archive: \d+ segments? missing on timeline 1, .*recorded as walstream\.gap\.00000001\./);
    // Only known gaps: no .partial before the gap is left for a restart to resume from (the server removed that WAL).
    expect(json.problems.filter((p: { message: string }) => !p.message.startsWith('known gap')), status.stdout).toEqual([]);
    await cluster.query('checkpoint'); // the server removes the released WAL
    await cluster.generateWal(SEGMENT / 2);
    const end2 = await cluster.switchWal();
    const again = await runWalstream(['receive', '-D', archive, '-d', cluster.connectionString, '-S', 'guard', '-E', end2, '-n']);
    expect(again.code, again.stderr).toBe(0);
    console.log(`slot guard: "${line}"; release: ${release.output.stderr.split('\n').find((l) => l.includes('released'))}; status: ${json.problems[0].message}`);
  });
});
