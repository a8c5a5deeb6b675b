/**
 * The bench's `s3` section (issue #17, acceptance 5): catch-up of the same retained WAL (16 MiB segments)
 * into a directory and into a bucket on 127.0.0.1, next to the store's own rate for 16 MiB PUTs made by
 * the AWS SDK alone at the same concurrency (4), in the same alternated runs:
 *
 *   dir        walstream receive -D DIR -S SLOT -E END -n                         (as the catchup row)
 *   rgw        ... --target s3://walstream/PREFIX --s3-endpoint RGW --s3-path-style  (spool fsynced, then uploaded)
 *   rgw_flush  the same with --flush-after-upload (the slot moves only once the bucket holds the WAL)
 *   sdk_rgw    a child process of this file: S3Client.send(PutObject) of 16 MiB buffers already in memory,
 *              4 at a time, as many as the catch-up has segments; no Content-MD5 (the SDK's plain PUT)
 *   s3rver, sdk_s3rver: the same two against s3rver (run in a child process of its own)
 *
 * Ceph RGW (16.2) runs on BlueStore over a sparse file when the disk has room for everything the runs
 * write (RGW frees deleted objects only at its garbage collection, hours later), else on memstore.
 * MiB/s for walstream: WAL bytes / wall time of the whole process, start-up to exit, which includes the
 * spool's writes and fsyncs, reading the spool back, the MD5 of each segment and waiting for the last
 * uploads. For the SDK alone: the same bytes / the time from the first PUT to the last answer (the SDK
 * loaded and one HeadBucket made first; the whole process's time is recorded too). After every bucket run
 * the bench checks the prefix holds every segment at full size, then deletes it.
 *
 * As a script (used by the section itself):
 *   node s3-bench.mjs put '{"endpoint":…,"accessKeyId":…}' BUCKET PREFIX COUNT CONCURRENCY SIZE [md5]
 *   node s3-bench.mjs s3rver DIR        (prints the server as JSON, stops on SIGTERM)
 */
import { spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatLsn, parseLsn, delay } from './cluster.mjs';
import { watchProcess } from './measure.mjs';

const HERE = fileURLToPath(import.meta.url);
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

const median = (values) => {
  const s = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const stats = (values) => {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length ? { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length } : null;
};
const runOrder = (list, r) => (r % 2 === 0 ? list : [...list].reverse());

// ---------------------------------------------------------------------------------------------
// Script modes

/** PUT `count` objects of `size` bytes (4 distinct random buffers, reused), `concurrency` at a time. */
async function putMode([serverJson, bucket, prefix, count, concurrency, size, md5]) {
  const started = performance.now();
  const server = JSON.parse(serverJson);
  const { S3Client, PutObjectCommand, HeadBucketCommand } = await import('@aws-sdk/client-s3');
  const { s3ClientOptions } = await import('../../scripts/s3-servers.mjs');
  const client = new S3Client({ ...s3ClientOptions(server), maxAttempts: 3 });
  const n = Number(count);
  const c = Number(concurrency);
  const buffers = Array.from({ length: Math.min(4, n) }, () => randomFillSync(Buffer.allocUnsafe(Number(size))));
  const md5s = md5 === 'md5' ? buffers.map((b) => createHash('md5').update(b).digest('base64')) : null;
  await client.send(new HeadBucketCommand({ Bucket: bucket }));
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < n; i = next++) {
      const body = buffers[i % buffers.length];
      await client.send(new PutObjectCommand({
        Bucket: bucket, Key: `${prefix}/${String(i).padStart(24, '0')}`, Body: body, ContentLength: body.length,
        ...(md5s ? { ContentMD5: md5s[i % buffers.length] } : {}),
      }));
    }
  };
  await Promise.all(Array.from({ length: c }, worker));
  const putSeconds = (performance.now() - t0) / 1000;
  client.destroy();
  process.stdout.write(`${JSON.stringify({ bytes: n * Number(size), putSeconds, setupSeconds: (t0 - started) / 1000 })}\n`);
}

async function s3rverMode([dir]) {
  const { startS3rver } = await import('../../scripts/s3-servers.mjs');
  const server = await startS3rver({ dir });
  const { stop, stopSync, createBucket, ...plain } = server;
  process.stdout.write(`${JSON.stringify(plain)}\n`);
  const quit = () => void server.stop().finally(() => process.exit(0));
  process.once('SIGTERM', quit);
  process.once('SIGINT', quit);
  process.stdin.resume(); // keep running until told
}

if (process.argv[1] && path.resolve(process.argv[1]) === HERE) {
  const [mode, ...args] = process.argv.slice(2);
  const modes = { put: putMode, s3rver: s3rverMode };
  if (!modes[mode]) {
    process.stderr.write('usage: node s3-bench.mjs put SERVER_JSON BUCKET PREFIX COUNT CONCURRENCY SIZE [md5] | s3rver DIR\n');
    process.exit(2);
  }
  modes[mode](args).catch((err) => {
    process.stderr.write(`s3-bench ${mode}: ${err?.stack ?? err}\n`);
    process.exit(1);
  });
}

// ---------------------------------------------------------------------------------------------
// The section

/** s3rver in a child process (so it does not share the bench's event loop); resolves to { server, stop }. */
async function startS3rverChild(dir) {
  const child = spawn(process.execPath, [HERE, 's3rver', dir], { stdio: ['pipe', 'pipe', 'inherit'] });
  const killSync = () => { try { child.kill('SIGKILL'); } catch { /* gone */ } };
  process.once('exit', killSync);
  const line = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s) => {
      out += s;
      if (out.includes('\n')) resolve(out.split('\n')[0]);
    });
    child.once('exit', (code) => reject(new Error(`s3rver child exited with ${code}`)));
  });
  const stop = async () => {
    process.removeListener('exit', killSync);
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(killSync, 10_000);
    await exited;
    clearTimeout(timer);
  };
  return { server: JSON.parse(line), stop, pid: child.pid };
}

/** Every object under `prefix/`: { Key, Size }. */
async function listPrefix(client, sdk, bucket, prefix) {
  const out = [];
  let ContinuationToken;
  do {
    const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken }));
    out.push(...(page.Contents ?? []));
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  return out;
}

async function deleteAll(client, sdk, bucket, objects) {
  for (let i = 0; i < objects.length; i += 500) {
    await client.send(new sdk.DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects.slice(i, i + 500).map((o) => ({ Key: o.Key })), Quiet: true } }));
  }
}

/**
 * Run the section. `ctx`: { cluster, cli, parentDir, runs, bytes, segmentSize (bigint), generate(bytes),
 * dropCaches(): boolean, log(message) }. Prints its table; returns what goes into the results JSON.
 */
export async function benchS3(ctx) {
  const { cluster, log } = ctx;
  const { rgwAvailable, startRgw, s3ClientOptions } = await import('../../scripts/s3-servers.mjs');
  const sdk = await import('@aws-sdk/client-s3');
  const segmentSize = ctx.segmentSize;
  const segBytes = Number(segmentSize);
  const concurrency = 4;
  const servers = {};
  const clients = {};
  let s3rverChild = null;
  const stopAll = async () => {
    for (const c of Object.values(clients)) c.destroy();
    await s3rverChild?.stop().catch(() => undefined);
    await servers.rgw?.stop().catch(() => undefined);
  };
  try {
    // Estimated WAL (the generator writes a little more than asked) times what lands in RGW per run.
    const estimate = ctx.bytes * 1.1 + 2 * segBytes;
    const perRgw = estimate * 3 * ctx.runs; // rgw, rgw_flush, sdk_rgw
    const fs = statfsSync(ctx.parentDir);
    const diskFree = fs.bavail * fs.bsize;
    const bluestoreBytes = Math.max(8 * GiB, Math.ceil((perRgw * 1.3 + 2 * GiB) / GiB) * GiB);
    const rgwSkip = rgwAvailable();
    let store = null;
    if (rgwSkip) log(`s3: RGW skipped: ${rgwSkip}`);
    else if (bluestoreBytes < diskFree - 10 * GiB) store = 'bluestore';
    else if (perRgw * 2.2 < os.freemem() - 4 * GiB) store = 'memstore';
    else log(`s3: RGW skipped: neither ${(bluestoreBytes / GiB).toFixed(0)} GiB of disk nor ${(perRgw * 2.2 / GiB).toFixed(0)} GiB of RAM free`);
    if (store) {
      log(`s3: starting Ceph RGW on ${store}${store === 'bluestore' ? ` (sparse ${bluestoreBytes / GiB} GiB file)` : ''}`);
      servers.rgw = await startRgw({ store, dir: ctx.parentDir, bluestoreBytes, memstoreBytes: Math.ceil(perRgw * 1.2), timeoutMs: 120_000 });
      log(`s3: RGW at ${servers.rgw.endpoint} (started in ${(Object.values(servers.rgw.timings).pop() / 1000).toFixed(1)} s)`);
    }
    s3rverChild = await startS3rverChild(ctx.parentDir);
    servers.s3rver = s3rverChild.server;
    log(`s3: s3rver at ${servers.s3rver.endpoint} (pid ${s3rverChild.pid})`);
    for (const [k, s] of Object.entries(servers)) clients[k] = new sdk.S3Client({ ...s3ClientOptions(s), maxAttempts: 5 });

    const contenders = [
      { key: 'dir' },
      ...(servers.rgw ? [{ key: 'rgw', server: 'rgw' }, { key: 'rgw_flush', server: 'rgw', flush: true }, { key: 'sdk_rgw', server: 'rgw', sdk: true }] : []),
      { key: 's3rver', server: 's3rver' }, { key: 'sdk_s3rver', server: 's3rver', sdk: true },
    ];
    const slots = [];
    for (let r = 0; r < ctx.runs; r++) {
      for (const c of runOrder(contenders, r)) {
        if (c.sdk) { slots.push({ run: r, contender: c }); continue; }
        const name = `bench_s3_${r}_${c.key}`;
        const [row] = await cluster.query('select lsn::text as lsn from pg_create_physical_replication_slot($1, true)', [name]);
        slots.push({ run: r, contender: c, name, restart: parseLsn(row.lsn) });
      }
    }
    const first = slots.find((s) => s.name);
    log(`s3: created ${slots.filter((s) => s.name).length} slots at ${formatLsn(first.restart)}; generating ${(ctx.bytes / GiB).toFixed(2)} GiB of WAL`);
    const generated = await ctx.generate(ctx.bytes);
    await cluster.query('checkpoint');
    const [sw] = await cluster.query('select pg_switch_wal()::text as lsn');
    let end = parseLsn(sw.lsn);
    if (end % segmentSize !== 0n) end = end - (end % segmentSize) + segmentSize;
    await cluster.query('create table if not exists walgen_s3_tail as select 1 as x');
    for (;;) {
      const [row] = await cluster.query('select pg_current_wal_flush_lsn()::text as lsn');
      if (parseLsn(row.lsn) > end) break;
      await delay(20);
    }
    const start = first.restart - (first.restart % segmentSize);
    const bytes = Number(end - start);
    const segments = bytes / segBytes;
    log(`s3: catch-up range ${formatLsn(start)} – ${formatLsn(end)} = ${(bytes / MiB).toFixed(0)} MiB, ${segments} segments; ${ctx.runs} runs × ${contenders.map((c) => c.key).join(', ')}`);

    const records = [];
    for (const slot of slots) {
      const c = slot.contender;
      const server = c.server ? servers[c.server] : null;
      const prefix = `bench-${slot.run}-${c.key}`;
      if (slot.name && slot.restart - (slot.restart % segmentSize) !== start) throw new Error(`slot ${slot.name} starts at ${formatLsn(slot.restart)}, not in the segment of ${formatLsn(start)}`);
      const dropped = ctx.dropCaches();
      let record;
      if (c.sdk) {
        const w = watchProcess(process.execPath, [HERE, 'put', JSON.stringify(server), server.bucket, prefix, String(segments), String(concurrency), String(segBytes)], { timeoutMs: 1_800_000 });
        const r = await w.done;
        if (r.code !== 0) throw new Error(`SDK PUTs to ${c.server} (run ${slot.run}) exited with ${r.code ?? r.signal}\n${r.stderr}`);
        const out = JSON.parse(r.stdout.trim().split('\n').pop());
        record = {
          run: slot.run, key: c.key, bytes, putSeconds: out.putSeconds, setupSeconds: out.setupSeconds, wallSeconds: r.wallSeconds,
          mibPerSecond: bytes / MiB / out.putSeconds, processMibPerSecond: bytes / MiB / r.wallSeconds,
          cpuSeconds: r.cpuSeconds, userSeconds: r.userSeconds, systemSeconds: r.systemSeconds, droppedCaches: dropped,
        };
      } else {
        const dir = mkdtempSync(path.join(ctx.parentDir, `walstream-bench-s3-${c.key}-`));
        const args = [ctx.cli, 'receive', '-D', dir, '-S', slot.name, '-E', formatLsn(end), '-n', '-d', cluster.conninfo(`application_name=bench_s3_${c.key}`)];
        let env;
        if (server) {
          args.push('--target', `s3://${server.bucket}/${prefix}`, '--s3-endpoint', server.endpoint, '--s3-path-style', '--upload-concurrency', String(concurrency));
          if (c.flush) args.push('--flush-after-upload');
          env = { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, AWS_REGION: server.region };
        }
        const w = watchProcess(process.execPath, args, { env, timeoutMs: 1_800_000 });
        // When the spool holds every segment (catch-up done, uploads may still run): polled every 50 ms.
        let spoolDoneSeconds;
        const t0 = performance.now();
        const poll = setInterval(() => {
          try {
            const n = readdirSync(dir).filter((x) => /^[0-9A-F]{24}$/.test(x)).length;
            if (n >= segments && spoolDoneSeconds === undefined) spoolDoneSeconds = (performance.now() - t0) / 1000;
          } catch { /* gone */ }
        }, 50);
        const r = await w.done;
        clearInterval(poll);
        const spooled = readdirSync(dir).filter((x) => /^[0-9A-F]{24}$/.test(x)).length;
        rmSync(dir, { recursive: true, force: true });
        await cluster.query('select pg_drop_replication_slot($1)', [slot.name]);
        if (r.code !== 0) throw new Error(`walstream ${c.key} run ${slot.run} exited with ${r.code ?? r.signal}\n${r.stderr}${r.stdout}`);
        if (spooled !== segments) log(`warning: ${c.key} run ${slot.run} spooled ${spooled} complete segments, expected ${segments}`);
        record = {
          run: slot.run, key: c.key, bytes, wallSeconds: r.wallSeconds, mibPerSecond: bytes / MiB / r.wallSeconds,
          spoolDoneSeconds, cpuSeconds: r.cpuSeconds, userSeconds: r.userSeconds, systemSeconds: r.systemSeconds,
          peakRssMiB: r.peakRssKiB === undefined ? undefined : r.peakRssKiB / 1024, droppedCaches: dropped,
          stderrTail: r.stderr.trim().split('\n').slice(-3).join('\n') || undefined,
        };
      }
      if (server) {
        const objects = await listPrefix(clients[c.server], sdk, server.bucket, prefix);
        const full = objects.filter((o) => o.Size === segBytes).length;
        record.objects = objects.length;
        if (full !== segments) log(`warning: ${c.key} run ${slot.run}: the bucket holds ${full} full segments under ${prefix}/, expected ${segments} (${objects.length} objects)`);
        await deleteAll(clients[c.server], sdk, server.bucket, objects);
      }
      records.push(record);
      const extra = c.sdk ? `(process ${record.wallSeconds.toFixed(2)} s, set-up ${record.setupSeconds.toFixed(2)} s)` : `spool complete at ${record.spoolDoneSeconds?.toFixed(2) ?? '?'} s`;
      log(`s3 run ${slot.run + 1}/${ctx.runs} ${c.key.padEnd(10)} ${(c.sdk ? record.putSeconds : record.wallSeconds).toFixed(2).padStart(6)} s ${record.mibPerSecond.toFixed(0).padStart(5)} MiB/s  ${extra}  CPU ${record.cpuSeconds.toFixed(2)} s`);
    }

    const summary = summarize(records, { bytes, segments, store, servers });
    printS3(summary, { bytes, segments, runs: ctx.runs, store, concurrency });
    return {
      start: formatLsn(start), end: formatLsn(end), bytes, segments, generated, concurrency,
      rgw: servers.rgw ? { store, endpoint: servers.rgw.endpoint, bluestoreBytes: store === 'bluestore' ? bluestoreBytes : undefined } : { skipped: rgwSkip ?? 'no room' },
      runs: records, summary,
    };
  } finally {
    await stopAll();
    await cluster.query('drop table if exists walgen_s3_tail').catch(() => undefined);
  }
}

/** Medians (min–max) per contender, and each bucket row as a share of its store's SDK-alone rate (of medians, and paired). */
function summarize(records) {
  const of = (key) => records.filter((x) => x.key === key);
  const summary = {};
  for (const key of ['dir', 'rgw', 'rgw_flush', 'sdk_rgw', 's3rver', 'sdk_s3rver']) {
    const list = of(key);
    if (list.length === 0) continue;
    const entry = { mibps: stats(list.map((x) => x.mibPerSecond)), wallSeconds: stats(list.map((x) => x.wallSeconds)), cpuSeconds: stats(list.map((x) => x.cpuSeconds)) };
    if (key.startsWith('sdk_')) entry.processMibps = stats(list.map((x) => x.processMibPerSecond));
    else entry.spoolDoneSeconds = stats(list.map((x) => x.spoolDoneSeconds));
    const ref = key === 'dir' || key.startsWith('sdk_') ? null : key.startsWith('rgw') ? 'sdk_rgw' : 'sdk_s3rver';
    if (ref && of(ref).length) {
      const refMedian = stats(of(ref).map((x) => x.mibPerSecond)).median;
      entry.shareOfSdk = entry.mibps.median / refMedian;
      entry.pairedShareOfSdk = stats(list.map((x) => x.mibPerSecond / of(ref).find((p) => p.run === x.run)?.mibPerSecond));
      entry.reference = ref;
    }
    summary[key] = entry;
  }
  return summary;
}

function printS3(summary, { bytes, segments, runs, store, concurrency }) {
  const labels = {
    dir: 'walstream catch-up into a directory (fsync)',
    rgw: `walstream catch-up into RGW (${store})`,
    rgw_flush: '  … with --flush-after-upload',
    sdk_rgw: `  RGW: SDK alone, 16 MiB PUTs ×${concurrency}`,
    s3rver: 'walstream catch-up into s3rver',
    sdk_s3rver: `  s3rver: SDK alone, 16 MiB PUTs ×${concurrency}`,
  };
  const f = (s, d = 0) => (s ? `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})` : '–');
  const pct = (x) => `${(x * 100).toFixed(0)}%`;
  const header = ['object storage (median, min–max)', 'MiB/s', 'of SDK alone', 'run by run'];
  const rows = Object.entries(summary).map(([k, e]) => [labels[k], f(e.mibps), e.shareOfSdk === undefined ? '' : pct(e.shareOfSdk),
    e.pairedShareOfSdk ? `${pct(e.pairedShareOfSdk.median)} (${pct(e.pairedShareOfSdk.min)}–${pct(e.pairedShareOfSdk.max)})` : '']);
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => String(r[i] ?? '').length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  process.stdout.write([
    '',
    `s3: ${(bytes / MiB).toFixed(0)} MiB of retained WAL (${segments} segments), ${runs} runs, alternated; RGW ${store ?? 'skipped'}`,
    line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line),
    'walstream: WAL bytes / whole-process wall time (start-up, streaming, spool write + fsync, reading the spool back,',
    'MD5 per segment, the uploads and waiting for the last of them). SDK alone: the same bytes / first PUT to last answer,',
    'buffers already in memory, no Content-MD5, SDK loaded and one HeadBucket made before. Run by run: each run\'s rate',
    'over the SDK-alone rate of the same store in the same run.',
    '',
  ].join('\n'));
}
