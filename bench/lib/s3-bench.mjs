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
 *   sdk_rgw_md5 the same PUTs as walstream makes them: Content-MD5 (precomputed) and UNSIGNED-PAYLOAD
 *   s3rver, sdk_s3rver: the same two against s3rver (run in a child process of its own)
 *
 * Ceph RGW (16.2) runs on BlueStore over a sparse file (up to 16 GiB) when the disk has room for everything
 * the runs write (RGW frees deleted objects only at its garbage collection, hours later), else on memstore.
 * Each run also records the CPU seconds of walstream or the SDK process, of PostgreSQL and of RGW+OSD,
 * and how busy the whole machine was. Environment: S3_BENCH_PIN=1 (RGW on CPU 1, the rest on CPU 0),
 * S3_BENCH_CPU_PROF=DIR (a V8 CPU profile of each walstream run).
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
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatLsn, parseLsn, delay } from './cluster.mjs';
import { clkTck, watchProcess } from './measure.mjs';

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

/**
 * S3_BENCH_PIN=1: RGW's daemons (every thread) on CPU 1, everything else this section starts (walstream, the SDK
 * process, PostgreSQL's postmaster and so its walsenders, s3rver) on CPU 0, as if the store ran on a machine of its
 * own with one core. Affinity is set with taskset and put back to all CPUs at the end.
 */
const PIN = process.env.S3_BENCH_PIN === '1';
const pin = (cpus, pid) => execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
const pinned = (file, args) => (PIN ? ['taskset', ['-c', '0', file, ...args]] : [file, args]);
const postmasterPid = (dataDir) => Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);

/** { busy, total } jiffies of all CPUs (/proc/stat): the machine's load during a run, whoever caused it. */
function machineCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3] - f[4], total };
}

/**
 * CPU seconds so far of the PostgreSQL server: the postmaster's own and reaped children's (a walsender
 * that has exited), plus its live children's.
 */
function serverCpu(dataDir) {
  try {
    const pm = Number(readFileSync(path.join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    const fields = (pid) => { const st = readFileSync(`/proc/${pid}/stat`, 'utf8'); return st.slice(st.lastIndexOf(')') + 2).split(' '); };
    const own = fields(pm);
    let ticks = Number(own[11]) + Number(own[12]) + Number(own[13]) + Number(own[14]);
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const f = fields(name);
        if (Number(f[1]) === pm) ticks += Number(f[11]) + Number(f[12]);
      } catch { /* gone */ }
    }
    return ticks / clkTck();
  } catch {
    return NaN;
  }
}

/** CPU seconds so far of processes `pids` (utime + stime). */
function cpuOfPids(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      sum += (Number(f[11]) + Number(f[12])) / clkTck();
    } catch { /* gone */ }
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Script modes

/** PUT `count` objects of `size` bytes (4 distinct random buffers, reused), `concurrency` at a time. */
async function putMode([serverJson, bucket, prefix, count, concurrency, size, md5]) {
  const started = performance.now();
  const server = JSON.parse(serverJson);
  const { S3Client, PutObjectCommand, HeadBucketCommand } = await import('@aws-sdk/client-s3');
  const { s3ClientOptions } = await import('../../scripts/s3-servers.mjs');
  const client = new S3Client({ ...s3ClientOptions(server), maxAttempts: 3 });
  if (md5 === 'md5') {
    // The requests walstream makes: Content-MD5 (precomputed here) and UNSIGNED-PAYLOAD.
    client.middlewareStack.add((next) => (args) => { args.request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD'; return next(args); }, { step: 'build' });
  }
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
  // The build is copied once (dist/, package.json, node_modules linked): a rebuild of dist/ while the section
  // runs (other work in the same tree) cannot mix two builds within one run or between runs.
  const distDir = path.dirname(path.dirname(ctx.cli));
  const build = mkdtempSync(path.join(ctx.parentDir, 'walstream-bench-s3-build-'));
  cpSync(distDir, path.join(build, 'dist'), { recursive: true });
  cpSync(path.join(path.dirname(distDir), 'package.json'), path.join(build, 'package.json'));
  symlinkSync(path.join(path.dirname(distDir), 'node_modules'), path.join(build, 'node_modules'));
  const cli = path.join(build, 'dist', path.relative(distDir, ctx.cli));
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
    // BlueStore on a sparse file up to 16 GiB (a 24 GiB file failed to mkfs here with EPERM); beyond, memstore.
    else if (bluestoreBytes <= 16 * GiB && bluestoreBytes < diskFree - 10 * GiB) store = 'bluestore';
    else if (perRgw * 2.2 < os.freemem() - 4 * GiB) store = 'memstore';
    else log(`s3: RGW skipped: neither ${(bluestoreBytes / GiB).toFixed(0)} GiB of disk nor ${(perRgw * 2.2 / GiB).toFixed(0)} GiB of RAM free`);
    if (store) {
      log(`s3: starting Ceph RGW on ${store}${store === 'bluestore' ? ` (sparse ${bluestoreBytes / GiB} GiB file)` : ''}`);
      const start = (kind) => startRgw({ store: kind, dir: ctx.parentDir, bluestoreBytes, memstoreBytes: Math.ceil(perRgw * 1.2), timeoutMs: 120_000 });
      try {
        servers.rgw = await start(store);
      } catch (err) {
        if (store !== 'bluestore' || perRgw * 2.2 >= os.freemem() - 4 * GiB) throw err;
        log(`s3: RGW on BlueStore did not start (${String(err?.message ?? err).slice(0, 200)}); memstore instead`);
        store = 'memstore';
        servers.rgw = await start(store);
      }
      log(`s3: RGW at ${servers.rgw.endpoint} (started in ${(Object.values(servers.rgw.timings).pop() / 1000).toFixed(1)} s)`);
    }
    if (PIN) {
      for (const pid of servers.rgw?.pids() ?? []) pin('1', pid);
      pin('0', postmasterPid(cluster.dataDir));
      log('s3: pinned: RGW on CPU 1; PostgreSQL, walstream, the SDK and s3rver on CPU 0 (S3_BENCH_PIN=1)');
    }
    s3rverChild = await startS3rverChild(ctx.parentDir);
    if (PIN) pin('0', s3rverChild.pid);
    servers.s3rver = s3rverChild.server;
    log(`s3: s3rver at ${servers.s3rver.endpoint} (pid ${s3rverChild.pid})`);
    for (const [k, s] of Object.entries(servers)) clients[k] = new sdk.S3Client({ ...s3ClientOptions(s), maxAttempts: 5 });

    const contenders = [
      { key: 'dir' },
      ...(servers.rgw ? [{ key: 'rgw', server: 'rgw' }, { key: 'rgw_flush', server: 'rgw', flush: true }, { key: 'sdk_rgw', server: 'rgw', sdk: true },
        { key: 'sdk_rgw_md5', server: 'rgw', sdk: true, md5: true }] : []),
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
      const cpu0 = machineCpu();
      const rgwCpu0 = c.server === 'rgw' ? cpuOfPids(servers.rgw.pids()) : 0;
      const pgCpu0 = serverCpu(cluster.dataDir);
      let record;
      if (c.sdk) {
        const w = watchProcess(...pinned(process.execPath, [HERE, 'put', JSON.stringify(server), server.bucket, prefix, String(segments), String(concurrency), String(segBytes), ...(c.md5 ? ['md5'] : [])]), { timeoutMs: 1_800_000 });
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
        const args = [cli, 'receive', '-D', dir, '-S', slot.name, '-E', formatLsn(end), '-n', '-d', cluster.conninfo(`application_name=bench_s3_${c.key}`)];
        let env;
        if (server) {
          args.push('--target', `s3://${server.bucket}/${prefix}`, '--s3-endpoint', server.endpoint, '--s3-path-style', '--upload-concurrency', String(concurrency));
          if (c.flush) args.push('--flush-after-upload');
          env = { AWS_ACCESS_KEY_ID: server.accessKeyId, AWS_SECRET_ACCESS_KEY: server.secretAccessKey, AWS_REGION: server.region };
        }
        // S3_BENCH_CPU_PROF=DIR: a V8 CPU profile of every walstream run there (to see where its time goes).
        const prof = process.env.S3_BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.S3_BENCH_CPU_PROF}`, `--cpu-prof-name=${prefix}.cpuprofile`] : [];
        const w = watchProcess(...pinned(process.execPath, [...prof, ...args]), { env, timeoutMs: 1_800_000 });
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
      const cpu1 = machineCpu();
      record.machineBusy = (cpu1.busy - cpu0.busy) / Math.max(1, cpu1.total - cpu0.total);
      if (c.server === 'rgw') record.rgwCpuSeconds = cpuOfPids(servers.rgw.pids()) - rgwCpu0;
      if (!c.sdk) record.postgresCpuSeconds = serverCpu(cluster.dataDir) - pgCpu0;
      if (server) {
        const objects = await listPrefix(clients[c.server], sdk, server.bucket, prefix);
        const full = objects.filter((o) => o.Size === segBytes).length;
        record.objects = objects.length;
        if (full !== segments) log(`warning: ${c.key} run ${slot.run}: the bucket holds ${full} full segments under ${prefix}/, expected ${segments} (${objects.length} objects)`);
        await deleteAll(clients[c.server], sdk, server.bucket, objects);
      }
      records.push(record);
      const extra = c.sdk ? `(process ${record.wallSeconds.toFixed(2)} s, set-up ${record.setupSeconds.toFixed(2)} s)` : `spool complete at ${record.spoolDoneSeconds?.toFixed(2) ?? '?'} s`;
      log(`s3 run ${slot.run + 1}/${ctx.runs} ${c.key.padEnd(10)} ${(c.sdk ? record.putSeconds : record.wallSeconds).toFixed(2).padStart(6)} s ${record.mibPerSecond.toFixed(0).padStart(5)} MiB/s  ${extra}  CPU ${record.cpuSeconds.toFixed(2)} s${record.postgresCpuSeconds !== undefined ? `, PostgreSQL ${record.postgresCpuSeconds.toFixed(2)} s` : ''}${record.rgwCpuSeconds !== undefined ? `, RGW+OSD ${record.rgwCpuSeconds.toFixed(2)} s` : ''}; machine ${(record.machineBusy * 100).toFixed(0)}% busy`);
    }

    const summary = summarize(records, { bytes, segments, store, servers });
    printS3(summary, { bytes, segments, runs: ctx.runs, store: `${store}${PIN ? ', pinned: RGW on CPU 1, the rest on CPU 0' : ''}`, concurrency });
    return {
      start: formatLsn(start), end: formatLsn(end), bytes, segments, generated, concurrency,
      rgw: servers.rgw ? { store, endpoint: servers.rgw.endpoint, bluestoreBytes: store === 'bluestore' ? bluestoreBytes : undefined } : { skipped: rgwSkip ?? 'no room' },
      pinned: PIN, runs: records, summary,
    };
  } finally {
    rmSync(build, { recursive: true, force: true });
    if (PIN) try { pin(`0-${os.cpus().length - 1}`, postmasterPid(cluster.dataDir)); } catch { /* gone */ }
    await stopAll();
    await cluster.query('drop table if exists walgen_s3_tail').catch(() => undefined);
  }
}

/** Medians (min–max) per contender, and each bucket row as a share of its store's SDK-alone rate (of medians, and paired). */
function summarize(records) {
  const of = (key) => records.filter((x) => x.key === key);
  const summary = {};
  for (const key of ['dir', 'rgw', 'rgw_flush', 'sdk_rgw', 'sdk_rgw_md5', 's3rver', 'sdk_s3rver']) {
    const list = of(key);
    if (list.length === 0) continue;
    const entry = {
      mibps: stats(list.map((x) => x.mibPerSecond)), wallSeconds: stats(list.map((x) => x.wallSeconds)), cpuSeconds: stats(list.map((x) => x.cpuSeconds)),
      machineBusy: stats(list.map((x) => x.machineBusy)), rgwCpuSeconds: stats(list.map((x) => x.rgwCpuSeconds)),
      postgresCpuSeconds: stats(list.map((x) => x.postgresCpuSeconds)),
    };
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
    sdk_rgw_md5: '  … with Content-MD5 and UNSIGNED-PAYLOAD',
    s3rver: 'walstream catch-up into s3rver',
    sdk_s3rver: `  s3rver: SDK alone, 16 MiB PUTs ×${concurrency}`,
  };
  const f = (s, d = 0) => (s ? `${s.median.toFixed(d)} (${s.min.toFixed(d)}–${s.max.toFixed(d)})` : '–');
  const pct = (x) => `${(x * 100).toFixed(0)}%`;
  const header = ['object storage (median, min–max)', 'MiB/s', 'of SDK alone', 'run by run', 'client CPU s', 'PG CPU s', 'RGW CPU s', 'machine busy'];
  const rows = Object.entries(summary).map(([k, e]) => [labels[k], f(e.mibps), e.shareOfSdk === undefined ? '' : pct(e.shareOfSdk),
    e.pairedShareOfSdk ? `${pct(e.pairedShareOfSdk.median)} (${pct(e.pairedShareOfSdk.min)}–${pct(e.pairedShareOfSdk.max)})` : '',
    e.cpuSeconds ? e.cpuSeconds.median.toFixed(2) : '', e.postgresCpuSeconds ? e.postgresCpuSeconds.median.toFixed(2) : '', e.rgwCpuSeconds ? e.rgwCpuSeconds.median.toFixed(2) : '', e.machineBusy ? pct(e.machineBusy.median) : '']);
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => String(r[i] ?? '').length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  process.stdout.write([
    '',
    `s3: ${(bytes / MiB).toFixed(0)} MiB of retained WAL (${segments} segments), ${runs} runs, alternated; RGW ${store ?? 'skipped'}`,
    line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line),
    `SDK alone as whole processes (start-up, buffers filled, SDK loaded, then the PUTs): ${Object.entries(summary).filter(([k]) => k.startsWith('sdk_')).map(([k, e]) => `${k} ${f(e.processMibps)}`).join(', ')} MiB/s.`,
    'walstream: WAL bytes / whole-process wall time (start-up, streaming, spool write + fsync, reading the spool back,',
    'MD5 per segment, the uploads and waiting for the last of them). SDK alone: the same bytes / first PUT to last answer,',
    'buffers already in memory, no Content-MD5 (\'with Content-MD5\': precomputed, signed as walstream signs), SDK loaded and',
    'one HeadBucket made before the clock starts. Run by run: each run\'s rate over the SDK-alone rate of the same store in',
    'the same run. Client CPU: the whole walstream (or SDK) process, user +',
    'system; PG CPU: the PostgreSQL server (walsender); RGW CPU: radosgw + ceph-osd + ceph-mon during the run; machine',
    'busy: all CPUs (/proc/stat), whoever used them (other work on the machine included).',
    '',
  ].join('\n'));
}
