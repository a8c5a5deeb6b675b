#!/usr/bin/env node
/**
 * walstream vs pg_receivewal, side by side, on one throwaway PostgreSQL server started here.
 *
 *   npm run bench                        # build, then: node bench/run.mjs
 *   node bench/run.mjs --gb 0.5 --runs 3 --only catchup,ceiling
 *   node bench/run.mjs --gb 1 --runs 5 --only wire
 *
 * Sections (--only takes a comma-separated subset; default all):
 *   catchup  catch-up of retained WAL into an archive, fsync on both sides:
 *            walstream receive -D dir -S slot -E END -n  vs  pg_receivewal -D dir -S slot -E END -n
 *   nosync   the same with --no-sync on both
 *   ceiling  walstream's receive path into a null sink (bench/null-sink.mjs: WalReceiver, discard,
 *            acknowledge): what server + socket + protocol handling allow, without file I/O
 *   wire     the true ceiling: bench/c-receiver.c (libpq, START_REPLICATION, discard; built here with
 *            cc -lpq, skipped with the reason when cc, libpq-fe.h or libpq is missing) side by side with
 *            the null sink and walstream's durable (fsync) catch-up, in the same alternated catch-up
 *            runs; each walstream rate also as a share of the C receiver's, and user CPU s per GiB; and
 *            the same C receiver writing the segments as walstream does (O_DIRECT, fsync): what the
 *            disk side allows any receiver on this machine
 *   rss      peak RSS (VmHWM) and CPU seconds per GiB of each tool, from the catch-up runs (runs
 *            the catchup section's measurements if catchup itself was not selected)
 *   lag      steady state under pgbench: each tool follows the server (-S slot -s 1) while
 *            pgbench -T N -c C runs; pg_current_wal_flush_lsn() - sent/write/flush_lsn from
 *            pg_stat_replication is sampled every 100 ms (p50/p99/max)
 *   compress catch-up of pgbench-made WAL (realistic compressibility, not the repeated rows above), fsync
 *            on both: -Z lz4 and -Z gzip:6 on both tools, -Z zstd on walstream (pg_receivewal has none);
 *            MiB/s and archive bytes per WAL byte (--methods lz4,gzip,zstd: which of them to run)
 *   verify   walstream verify --all vs pg_waldump --stats=record over the same uncompressed archive of
 *            pgbench-made WAL (bench/lib/verify-bench.mjs): wall time, alternated, ratio
 *   recovery a -X none base backup plus --gb of pgbench-made WAL recovered to the end of the archive with
 *            restore_command = cp vs bin/walstream-restore (prefetch) from uncompressed, -Z lz4 and -Z zstd
 *            archives (bench/lib/recovery-bench.mjs): seconds to the end of recovery, alternated, ratios
 *   s3       catch-up into a directory, into Ceph RGW and s3rver on 127.0.0.1 (--target, with and without
 *            --flush-after-upload) and the SDK's own rate for 16 MiB PUTs, 4 at a time (bench/lib/s3-bench.mjs)
 *   sync     pgbench TPS with each tool as the only synchronous standby (--synchronous,
 *            application_name=walstream_bench, synchronous_standby_names = 'walstream_bench'),
 *            and without any standby for reference
 *
 * Every catch-up run (catchup, nosync, ceiling, wire) gets its own slot, all created before the WAL is
 * generated, so every run of every tool catches up the very same retained WAL from the same start.
 * Runs alternate A B, B A, ...
 * Before each catch-up run the page cache is dropped (sync; echo 3 > /proc/sys/vm/drop_caches, when
 * we may: as root), so the server reads the WAL from disk every time; --warm keeps the cache.
 * The archive directory is deleted after each run. Wall time is the whole process, start-up included.
 *
 * Options: --gb N (WAL to catch up, GiB, default 2: the volume of the memory criterion, and enough that
 * start-up, ~0.1 s of Node against ~0.01 s, is a small part of a run), --runs N (default 7), --segment-mb N (default 16),
 * --only LIST, --pgbench-seconds N (default 10), --clients N (default 4), --scale N (pgbench -i -s,
 * default 4), --dir DIR (where the cluster and archives go; default the OS temp dir), --warm.
 *
 * Prints one table of medians (with min–max) and ratios (and, with wire, a second one of shares of the
 * C receiver's rate), and writes every run's numbers to
 * bench/results/<timestamp>.json. Needs dist/ (npm run bench builds it) and PostgreSQL's
 * initdb/pg_ctl/pg_receivewal/pgbench (PG_BIN, pg_config, or /usr/lib/postgresql/<v>/bin).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { delay, findPgBin, formatLsn, parseLsn, pgTool, run, startCluster } from './lib/cluster.mjs';
import { buildCReceiver } from './lib/c-receiver.mjs';
import { clkTck, watchProcess } from './lib/measure.mjs';
import { benchVerify } from './lib/verify-bench.mjs';
import { benchRecovery } from './lib/recovery-bench.mjs';
import { benchS3 } from './lib/s3-bench.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..');
const CLI = path.join(ROOT, 'dist', 'cli', 'main.js');
const NULL_SINK = path.join(HERE, 'null-sink.mjs');
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const SECTIONS = ['catchup', 'nosync', 'ceiling', 'wire', 'lag', 'sync', 'rss', 'compress', 'verify', 'recovery', 's3'];
const SYNC_NAME = 'walstream_bench';

// ---------------------------------------------------------------------------------------------
// Options

const { values: opts } = parseArgs({
  options: {
    gb: { type: 'string', default: '2' },
    runs: { type: 'string', default: '7' },
    'segment-mb': { type: 'string', default: '16' },
    only: { type: 'string' },
    'pgbench-seconds': { type: 'string', default: '10' },
    clients: { type: 'string', default: '4' },
    scale: { type: 'string', default: '4' },
    dir: { type: 'string' },
    warm: { type: 'boolean', default: false },
    methods: { type: 'string', default: 'lz4,gzip,zstd' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  process.stdout.write('usage: node bench/run.mjs [--gb 2] [--runs 7] [--segment-mb 16] [--only ' + SECTIONS.join(',') + ']\n' +
    '                        [--pgbench-seconds 10] [--clients 4] [--scale 4] [--dir DIR] [--warm] [--methods lz4,gzip,zstd]\n' +
    '(see the comment at the top of bench/run.mjs)\n');
  process.exit(0);
}
const positive = (name, value, integer = false) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    process.stderr.write(`bench: --${name} must be a positive ${integer ? 'whole ' : ''}number, not "${value}"\n`);
    process.exit(2);
  }
  return n;
};
const gb = positive('gb', opts.gb);
const runs = positive('runs', opts.runs, true);
const segmentMB = positive('segment-mb', opts['segment-mb'], true);
const pgbenchSeconds = positive('pgbench-seconds', opts['pgbench-seconds'], true);
const clients = positive('clients', opts.clients, true);
const scale = positive('scale', opts.scale, true);
const compressMethods = new Set(opts.methods.split(',').map((s) => s.trim()).filter(Boolean));
for (const m of compressMethods) {
  if (!['lz4', 'gzip', 'zstd'].includes(m)) {
    process.stderr.write(`bench: unknown method "${m}" in --methods; choose from lz4,gzip,zstd\n`);
    process.exit(2);
  }
}
const only = new Set(opts.only ? opts.only.split(',').map((s) => s.trim()).filter(Boolean) : SECTIONS);
for (const s of only) {
  if (!SECTIONS.includes(s)) {
    process.stderr.write(`bench: unknown section "${s}" in --only; choose from ${SECTIONS.join(',')}\n`);
    process.exit(2);
  }
}
if ((segmentMB & (segmentMB - 1)) !== 0 || segmentMB > 1024) {
  process.stderr.write('bench: --segment-mb must be a power of two from 1 to 1024\n');
  process.exit(2);
}
const segmentSize = BigInt(segmentMB * MiB);
const parentDir = opts.dir ? path.resolve(opts.dir) : os.tmpdir();

if (!existsSync(CLI)) {
  process.stderr.write(`bench: ${path.relative(process.cwd(), CLI)} is missing: build first (npm run bench does: tsc -p tsconfig.json)\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const log = (message) => process.stderr.write(`bench: ${message}\n`);

function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/** Nearest-rank percentile of `values` (0–100). */
function percentile(values, p) {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))];
}

function stats(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x));
  return v.length === 0 ? null : { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

const segmentStart = (lsn) => lsn - (lsn % segmentSize);

/** Try to empty the page cache: true if the kernel let us. */
function dropCaches() {
  try {
    execFileSync('sync');
    writeFileSync('/proc/sys/vm/drop_caches', '3');
    return true;
  } catch {
    return false;
  }
}

function newArchiveDir(label) {
  return mkdtempSync(path.join(parentDir, `walstream-bench-${label}-`));
}

function dirBytes(dir) {
  const names = readdirSync(dir).sort();
  const total = names.reduce((sum, name) => sum + statSync(path.join(dir, name)).size, 0);
  return { files: names.length, total, names };
}

/** The commit measured, and whether src/ had uncommitted changes (the bench runs whatever dist/ holds). */
function gitDescription() {
  try {
    const git = (...args) => execFileSync('git', ['-C', ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return { commit: git('rev-parse', 'HEAD'), srcModified: git('status', '--porcelain', '--', 'src').split('\n').filter(Boolean).length };
  } catch {
    return null;
  }
}

// The wire ceiling (section wire): built before the server starts, so a missing compiler shows at once.
const cReceiver = only.has('wire') ? buildCReceiver() : null;
if (cReceiver && !cReceiver.path) log(`C receiver skipped: ${cReceiver.reason}`);

// ---------------------------------------------------------------------------------------------
// The server

const pgVersion = execFileSync(pgTool('postgres'), ['--version'], { encoding: 'utf8' }).trim();
log(`starting PostgreSQL (${pgVersion}, ${segmentMB} MiB segments) under ${parentDir}`);
const cluster = await startCluster({
  segmentMB,
  parent: parentDir,
  conf: {
    wal_level: 'replica',
    max_wal_senders: '20',
    max_replication_slots: String(Math.max(32, runs * 6 + 8)),
    max_wal_size: '100GB',
    min_wal_size: '1GB',
    checkpoint_timeout: '1h',
    wal_keep_size: '0',
    shared_buffers: '256MB',
    synchronous_commit: 'on',
    wal_sender_timeout: '60s',
  },
});
const conn = cluster.conninfo();
const receivewal = pgTool('pg_receivewal');
const pgbench = pgTool('pgbench');
const canDropCaches = !opts.warm && dropCaches();
if (!opts.warm && !canDropCaches) log('cannot drop the page cache (not root, or /proc/sys/vm/drop_caches is read-only): catch-up runs read WAL from a warm cache');

const result = {
  startedAt: new Date().toISOString(),
  options: { gb, runs, segmentMB, only: [...only], pgbenchSeconds, clients, scale, warm: opts.warm, dir: parentDir },
  environment: {
    node: process.version,
    postgres: pgVersion,
    pgReceivewal: execFileSync(receivewal, ['--version'], { encoding: 'utf8' }).trim(),
    pgBin: findPgBin(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    memoryGiB: Math.round(os.totalmem() / GiB),
    kernel: os.release(),
    droppedCaches: canDropCaches,
    git: gitDescription(),
    loadAverageAtStart: os.loadavg(),
  },
  catchup: null,
  wire: null,
  lag: null,
  sync: null,
};

// ---------------------------------------------------------------------------------------------
// Catch-up: walstream, pg_receivewal (fsync / --no-sync) and the null-sink ceiling

/**
 * The contenders of run `r` in the order they go: as listed in even runs, reversed in odd ones
 * (A B, B A, ...). The server drifts during a bench (bloat, autovacuum, the host); with a fixed order
 * whoever goes second in every run would get the drift as an advantage.
 */
function runOrder(list, r) {
  return r % 2 === 0 ? list : [...list].reverse();
}

/** Which catch-up contenders run; each run takes them in runOrder. */
function catchupContenders() {
  const list = [];
  if (only.has('catchup') || only.has('rss')) list.push({ key: 'walstream', mode: 'fsync' }, { key: 'pg_receivewal', mode: 'fsync' });
  if (only.has('nosync')) list.push({ key: 'walstream', mode: 'nosync' }, { key: 'pg_receivewal', mode: 'nosync' });
  if (only.has('ceiling')) list.push({ key: 'null_sink', mode: 'null' });
  if (only.has('wire')) {
    // The same runs serve both: durable catch-up is catchup's walstream/fsync, the null sink ceiling's.
    if (!list.some((c) => c.key === 'walstream' && c.mode === 'fsync')) list.push({ key: 'walstream', mode: 'fsync' });
    if (!list.some((c) => c.key === 'null_sink')) list.push({ key: 'null_sink', mode: 'null' });
    if (cReceiver?.path) list.push({ key: 'c_receiver', mode: 'wire' }, { key: 'c_receiver', mode: 'durable' });
  }
  return list;
}

/** The compress section's contenders: the same level on both tools where both have the method. */
function compressContenders() {
  return [
    { key: 'walstream', mode: 'lz4' }, { key: 'pg_receivewal', mode: 'lz4' },
    { key: 'walstream', mode: 'gzip' }, { key: 'pg_receivewal', mode: 'gzip' },
    { key: 'walstream', mode: 'zstd' },
  ].filter((c) => compressMethods.has(c.mode));
}
const COMPRESS_FLAGS = { lz4: ['-Z', 'lz4'], gzip: ['-Z', 'gzip:6'], zstd: ['-Z', 'zstd:3'] };

function catchupCommand(c, dir, slot, end, { start, timeline }) {
  const endText = formatLsn(end);
  const app = `application_name=bench_${c.key}`;
  if (c.key === 'null_sink') return [process.execPath, [NULL_SINK, cluster.conninfo(app), slot, endText]];
  if (c.key === 'c_receiver') {
    const durable = c.mode === 'durable' ? [dir, String(segmentSize)] : [];
    return [cReceiver.path, [cluster.conninfo(`${app} replication=true`), slot, formatLsn(start), String(timeline), endText, ...durable]];
  }
  const args = ['-D', dir, '-S', slot, '-E', endText, '-n', '-d', cluster.conninfo(app), ...(c.mode === 'nosync' ? ['--no-sync'] : []), ...(COMPRESS_FLAGS[c.mode] ?? [])];
  return c.key === 'walstream' ? [process.execPath, [CLI, 'receive', ...args]] : [receivewal, args];
}

/** Write at least `bytes` of WAL: ~1 kB rows (below TOAST), committed in batches. */
async function generateWal(bytes) {
  const client = await cluster.client();
  try {
    const lsn = async () => parseLsn((await client.query('select pg_current_wal_lsn()::text as l')).rows[0].l);
    await client.query('create table if not exists walgen (id bigserial, pad text) with (autovacuum_enabled = false)');
    const start = await lsn();
    const started = performance.now();
    let written = 0n;
    while (written < BigInt(Math.ceil(bytes))) {
      const rows = Math.min(100_000, Math.max(1000, Math.ceil((bytes - Number(written)) / 1150)));
      await client.query(`insert into walgen (pad) select repeat(md5(g::text), 31) || g from generate_series(1, $1) g`, [rows]);
      written = (await lsn()) - start;
    }
    return { bytes: Number(written), seconds: (performance.now() - started) / 1000 };
  } finally {
    await client.end();
  }
}

/**
 * Write at least `bytes` of WAL the way a database does: pgbench -i, then pgbench transactions (with
 * a checkpoint now and then, so full-page images come in as they do in production).
 */
async function generatePgbenchWal(bytes) {
  const started = performance.now();
  const lsn = async () => parseLsn((await cluster.query('select pg_current_wal_lsn()::text as l'))[0].l);
  const start = await lsn();
  const common = ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', 'postgres'];
  await run(pgbench, ['-i', '-s', String(scale), '-q', ...common], { timeoutMs: 600_000 });
  while ((await lsn()) - start < BigInt(Math.ceil(bytes))) {
    await cluster.query('checkpoint');
    await run(pgbench, ['-n', '-T', '10', '-c', String(clients), '-j', String(Math.min(clients, os.cpus().length)), ...common],
      { timeoutMs: 120_000, env: { ...process.env, PGOPTIONS: '-c synchronous_commit=off' } });
  }
  return { bytes: Number((await lsn()) - start), seconds: (performance.now() - started) / 1000 };
}

async function catchup(contenders = catchupContenders(), generate = generateWal) {
  const slots = [];
  for (let r = 0; r < runs; r++) {
    for (const c of runOrder(contenders, r)) {
      const name = `bench_${r}_${c.key}_${c.mode}`;
      const [row] = await cluster.query('select lsn::text as lsn from pg_create_physical_replication_slot($1, true)', [name]);
      slots.push({ run: r, contender: c, name, restart: parseLsn(row.lsn) });
    }
  }
  log(`created ${slots.length} slots at ${formatLsn(slots[0].restart)}; generating ${gb} GiB of WAL`);
  const generated = await generate(gb * GiB);
  log(`generated ${(generated.bytes / GiB).toFixed(2)} GiB of WAL in ${generated.seconds.toFixed(1)} s; checkpoint`);
  await cluster.query('checkpoint');
  const [{ timeline_id: timeline }] = await cluster.query('select timeline_id from pg_control_checkpoint()');
  // End on a segment boundary, and write a little WAL past it so neither tool waits for the server.
  const [sw] = await cluster.query('select pg_switch_wal()::text as lsn');
  let end = parseLsn(sw.lsn);
  if (end % segmentSize !== 0n) end = segmentStart(end) + segmentSize;
  await cluster.query('create table walgen_tail as select 1 as x');
  for (;;) {
    const [row] = await cluster.query('select pg_current_wal_flush_lsn()::text as lsn');
    if (parseLsn(row.lsn) > end) break;
    await delay(20);
  }
  const start = segmentStart(slots[0].restart);
  const bytes = Number(end - start);
  log(`catch-up range ${formatLsn(start)} – ${formatLsn(end)} = ${(bytes / MiB).toFixed(0)} MiB; ${runs} runs × ${contenders.map((c) => `${c.key}/${c.mode}`).join(', ')}`);

  const records = [];
  const expectedSegments = Number((end - start) / segmentSize);
  for (const slot of slots) {
    const c = slot.contender;
    if (segmentStart(slot.restart) !== start) throw new Error(`slot ${slot.name} starts at ${formatLsn(slot.restart)}, not in the segment of ${formatLsn(start)}`);
    const dir = c.key === 'null_sink' || (c.key === 'c_receiver' && c.mode === 'wire') ? null : newArchiveDir(`${c.key}_${c.mode}`);
    const dropped = canDropCaches ? dropCaches() : false;
    const [file, args] = catchupCommand(c, dir, slot.name, end, { start, timeline });
    const reapedBefore = childrenCpuSplit();
    const watched = watchProcess(file, args, { timeoutMs: Math.max(300_000, gb * 600_000) });
    const r = await watched.done;
    const reapedAfter = childrenCpuSplit();
    const archive = dir ? dirBytes(dir) : null;
    if (dir) rmSync(dir, { recursive: true, force: true });
    await cluster.query('select pg_drop_replication_slot($1)', [slot.name]);
    if (r.code !== 0) throw new Error(`${c.key} (${c.mode}) run ${slot.run} exited with ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}\n${r.stderr}${r.stdout}`);
    const completeSegments = archive ? archive.names.filter((n) => /^[0-9A-F]{24}(\.gz|\.lz4|\.zst)?$/.test(n)).length : null;
    if (archive && completeSegments !== expectedSegments) {
      log(`warning: ${c.key} (${c.mode}) run ${slot.run} archived ${completeSegments} complete segments, expected ${expectedSegments}: ${archive.names.slice(-3).join(' ')}`);
    }
    const record = {
      run: slot.run, tool: c.key, mode: c.mode, slot: slot.name, bytes,
      wallSeconds: r.wallSeconds, mibPerSecond: bytes / MiB / r.wallSeconds,
      cpuSeconds: r.cpuSeconds, cpuSecondsPerGiB: r.cpuSeconds / (bytes / GiB), userSeconds: r.userSeconds, systemSeconds: r.systemSeconds,
      peakRssMiB: r.peakRssKiB === undefined ? undefined : r.peakRssKiB / 1024,
      // Disk writes per WAL byte (last /proc/PID/io sample, up to 20 ms before exit): pg_receivewal
      // zero-fills each segment first, walstream writes it once.
      diskWritesPerWalByte: r.writeBytes === undefined ? undefined : r.writeBytes / bytes,
      droppedCaches: dropped, completeSegments, archiveFiles: archive?.files ?? null,
      archiveBytesPerWalByte: archive ? archive.total / bytes : null,
      // Exact user/system split from our cutime/cstime across the run (the polled split above can miss
      // the last 20 ms, which matters for the C receiver's few hundredths of a second).
      userSecondsReaped: reapedAfter.user - reapedBefore.user, systemSecondsReaped: reapedAfter.system - reapedBefore.system,
    };
    if (c.key === 'null_sink' || c.key === 'c_receiver') {
      // Both print one JSON line with the WAL bytes they received.
      try { record.receivedBytes = JSON.parse(r.stdout.trim().split('\n').pop()).bytes; } catch { record.receivedBytes = null; }
      if (typeof record.receivedBytes !== 'number' || record.receivedBytes < bytes) log(`warning: ${c.key} run ${slot.run} received ${record.receivedBytes} bytes, expected at least ${bytes}: ${r.stdout.trim()}`);
    }
    records.push(record);
    log(`run ${slot.run + 1}/${runs} ${c.key.padEnd(13)} ${c.mode.padEnd(6)} ${r.wallSeconds.toFixed(2).padStart(6)} s  ${record.mibPerSecond.toFixed(0).padStart(5)} MiB/s  CPU ${r.cpuSeconds.toFixed(2)} s (user ${r.userSeconds.toFixed(2)}, sys ${r.systemSeconds.toFixed(2)})  peak RSS ${record.peakRssMiB?.toFixed(0) ?? '?'} MiB`);
  }
  await cluster.query('drop table if exists walgen, walgen_tail, pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history');
  return { start: formatLsn(start), end: formatLsn(end), timeline, bytes, generated, runs: records };
}

/** Our reaped children's { user, system } CPU seconds so far (cutime, cstime of /proc/self/stat). */
function childrenCpuSplit() {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[13]) / clkTck(), system: Number(f[14]) / clkTck() };
}

// ---------------------------------------------------------------------------------------------
// Steady state (lag) and synchronous standby, under pgbench

let pgbenchReady = false;
async function pgbenchInit() {
  if (pgbenchReady) return;
  log(`pgbench -i -s ${scale}`);
  await run(pgbench, ['-i', '-s', String(scale), '-q', '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', 'postgres']);
  await cluster.query('checkpoint');
  // One unmeasured run: the first transactions after a checkpoint write full-page images, which would
  // give whichever tool goes first more WAL to follow.
  log(`pgbench warm-up (${pgbenchSeconds} s, not measured)`);
  await runPgbench();
  pgbenchReady = true;
}

/** pgbench -T N -c C -n; resolves to its TPS (excluding connection time). */
async function runPgbench() {
  const { stdout } = await run(pgbench, ['-n', '-T', String(pgbenchSeconds), '-c', String(clients), '-j', String(Math.min(clients, os.cpus().length)),
    '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', 'postgres'], { timeoutMs: (pgbenchSeconds + 120) * 1000 });
  const m = /tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)/.exec(stdout) ?? /tps = ([\d.]+)/.exec(stdout);
  if (!m) throw new Error(`cannot read TPS from pgbench output:\n${stdout}`);
  return Number(m[1]);
}

/** Start a following (no -E) tool; resolves once pg_stat_replication shows it streaming (and sync when asked). */
async function startFollower(tool, { dir, slot, appName, synchronous }) {
  const args = ['-D', dir, '-n', '-d', cluster.conninfo(`application_name=${appName}`),
    ...(slot ? ['-S', slot] : []), ...(synchronous ? ['--synchronous'] : ['-s', '1'])];
  const watched = tool === 'walstream' ? watchProcess(process.execPath, [CLI, 'receive', ...args]) : watchProcess(receivewal, args);
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (watched.child.exitCode !== null) {
      const r = await watched.done;
      throw new Error(`${tool} exited early with ${r.code}\n${r.stderr}`);
    }
    const rows = await cluster.query('select state, sync_state from pg_stat_replication where application_name = $1', [appName]);
    if (rows[0]?.state === 'streaming' && (!synchronous || rows[0].sync_state === 'sync')) return watched;
    if (Date.now() > deadline) {
      await watched.stop('SIGKILL');
      throw new Error(`${tool} did not reach streaming${synchronous ? '/sync' : ''} in 60 s`);
    }
    await delay(50);
  }
}

/** SIGINT a follower; its CPU numbers as last polled before the signal, and its peak RSS. */
async function stopFollower(watched, tool) {
  const cpu = watched.sample();
  const r = await watched.stop('SIGINT');
  if (r.code !== 0 && r.signal !== 'SIGINT') log(`warning: ${tool} exited with ${r.code ?? r.signal} after SIGINT: ${r.stderr.trim().split('\n').pop()}`);
  return { ...cpu, peakRssMiB: r.peakRssKiB === undefined ? undefined : r.peakRssKiB / 1024 };
}

/** CPU used between two samples of a follower: total, user and system seconds. */
function cpuDelta(before, after) {
  return {
    cpuSeconds: after.cpuPolledSeconds - before.cpuPolledSeconds,
    userSeconds: after.userSeconds - before.userSeconds,
    systemSeconds: after.systemSeconds - before.systemSeconds,
  };
}

/** Run `sql` every 100 ms on one connection, handing each first row to `onRow`, until the returned stop() is awaited. */
async function startSampler(sql, params, onRow) {
  const client = await cluster.client();
  let sampling = true;
  const loop = (async () => {
    while (sampling) {
      const t = performance.now();
      const { rows } = await client.query(sql, params);
      if (rows[0]) onRow(rows[0]);
      await delay(Math.max(0, 100 - (performance.now() - t)));
    }
  })();
  return async () => {
    sampling = false;
    await loop;
    await client.end();
  };
}

const summarizeSamples = (v) => ({ p50: percentile(v, 50), p99: percentile(v, 99), max: v.length ? Math.max(...v) : undefined, samples: v.length });

async function lag() {
  await pgbenchInit();
  const records = [];
  for (let r = 0; r < runs; r++) {
    for (const tool of runOrder(['walstream', 'pg_receivewal'], r)) {
      const slot = `bench_lag_${r}_${tool}`;
      const appName = `bench_lag_${tool}`;
      // Both tools start at a segment boundary, so the flush lag (which only moves when a segment is
      // complete) is not decided by where in its segment the server happened to be.
      await cluster.query('select pg_switch_wal()');
      await cluster.query('select pg_create_physical_replication_slot($1, true)', [slot]);
      const dir = newArchiveDir(`lag-${tool}`);
      const watched = await startFollower(tool, { dir, slot, appName });
      await delay(1500); // let it settle (first status update, current segment caught up)
      const samples = { sent: [], write: [], flush: [] };
      const stopSampling = await startSampler(
        `select (pg_current_wal_flush_lsn() - sent_lsn)::float8 as sent, (pg_current_wal_flush_lsn() - write_lsn)::float8 as write,
                (pg_current_wal_flush_lsn() - flush_lsn)::float8 as flush
         from pg_stat_replication where application_name = $1`, [appName],
        (row) => { for (const k of ['sent', 'write', 'flush']) if (row[k] !== null) samples[k].push(Math.max(0, row[k])); });
      const cpuBefore = watched.sample();
      const [walBefore] = await cluster.query('select pg_current_wal_lsn()::text as l');
      const tps = await runPgbench();
      const [walAfter] = await cluster.query('select pg_current_wal_lsn()::text as l');
      await stopSampling();
      const stopped = await stopFollower(watched, tool);
      rmSync(dir, { recursive: true, force: true });
      await cluster.query('select pg_drop_replication_slot($1)', [slot]);
      const walBytes = Number(parseLsn(walAfter.l) - parseLsn(walBefore.l));
      const record = {
        run: r, tool, tps, walBytes, walMiBPerSecond: walBytes / MiB / pgbenchSeconds,
        ...cpuDelta(cpuBefore, stopped), peakRssMiB: stopped.peakRssMiB,
        sentLag: summarizeSamples(samples.sent), writeLag: summarizeSamples(samples.write), flushLag: summarizeSamples(samples.flush),
      };
      records.push(record);
      log(`lag run ${r + 1}/${runs} ${tool.padEnd(13)} ${tps.toFixed(0)} tps, WAL ${record.walMiBPerSecond.toFixed(1)} MiB/s; behind flush: sent p50 ${kib(record.sentLag.p50)} p99 ${kib(record.sentLag.p99)}, flush p50 ${kib(record.flushLag.p50)} p99 ${kib(record.flushLag.p99)}; CPU ${record.cpuSeconds.toFixed(2)} s`);
    }
  }
  return { pgbenchSeconds, clients, scale, statusIntervalSeconds: 1, runs: records };
}

async function setSyncNames(value) {
  await cluster.query(`alter system set synchronous_standby_names = '${value}'`);
  await cluster.query('select pg_reload_conf()');
  for (let i = 0; i < 100; i++) {
    const [row] = await cluster.query('show synchronous_standby_names');
    if (row.synchronous_standby_names === value) return;
    await delay(20);
  }
  throw new Error(`synchronous_standby_names did not become '${value}' after reload`);
}

async function sync() {
  await pgbenchInit();
  const records = [];
  try {
    for (let r = 0; r < runs; r++) {
      await setSyncNames('');
      const baseline = await runPgbench();
      records.push({ run: r, tool: 'none', tps: baseline });
      log(`sync run ${r + 1}/${runs} no standby     ${baseline.toFixed(0)} tps`);
      await setSyncNames(SYNC_NAME);
      for (const tool of runOrder(['walstream', 'pg_receivewal'], r)) {
        const dir = newArchiveDir(`sync-${tool}`);
        const watched = await startFollower(tool, { dir, appName: SYNC_NAME, synchronous: true });
        // The server's own measure of the round trip each commit waits for: flush_lag is the time
        // from its local flush to the standby's report of having flushed the same position.
        const lags = { write: [], flush: [] };
        const stopSampling = await startSampler(
          `select extract(epoch from write_lag)::float8 * 1000 as write, extract(epoch from flush_lag)::float8 * 1000 as flush
           from pg_stat_replication where application_name = $1`, [SYNC_NAME],
          (row) => { for (const k of ['write', 'flush']) if (row[k] !== null) lags[k].push(row[k]); });
        const cpuBefore = watched.sample();
        const tps = await runPgbench();
        const stopped = await stopFollower(watched, tool);
        await stopSampling();
        rmSync(dir, { recursive: true, force: true });
        const record = {
          run: r, tool, tps, ...cpuDelta(cpuBefore, stopped), peakRssMiB: stopped.peakRssMiB,
          writeLagMs: summarizeSamples(lags.write), flushLagMs: summarizeSamples(lags.flush),
        };
        records.push(record);
        log(`sync run ${r + 1}/${runs} ${tool.padEnd(13)} ${tps.toFixed(0)} tps; flush_lag p50 ${record.flushLagMs.p50?.toFixed(2)} ms p99 ${record.flushLagMs.p99?.toFixed(2)} ms; CPU ${record.cpuSeconds.toFixed(2)} s (user ${record.userSeconds.toFixed(2)}, sys ${record.systemSeconds.toFixed(2)})`);
      }
    }
  } finally {
    await setSyncNames('');
  }
  return { pgbenchSeconds, clients, scale, runs: records };
}

// ---------------------------------------------------------------------------------------------
// Report

function kib(bytes) {
  if (bytes === undefined) return '?';
  if (bytes >= 10 * MiB) return `${(bytes / MiB).toFixed(0)} MiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  return `${(bytes / 1024).toFixed(0)} KiB`;
}

/**
 * Run-by-run ratios of walstream to pg_receivewal (runs alternate A B on the same server, so a pair
 * shares the machine's state of the moment): their median, and in how many pairs walstream was ahead.
 * Steadier than a ratio of medians when the machine drifts during the bench.
 */
function pairedRatios(list, pred, field, higherIsBetter = true) {
  const byRun = new Map();
  for (const x of list.filter(pred)) {
    const entry = byRun.get(x.run) ?? {};
    entry[x.tool] = x[field];
    byRun.set(x.run, entry);
  }
  const ratios = [...byRun.values()]
    .filter((e) => typeof e.walstream === 'number' && typeof e.pg_receivewal === 'number' && e.pg_receivewal > 0)
    .map((e) => e.walstream / e.pg_receivewal);
  if (ratios.length === 0) return null;
  const ahead = ratios.filter((r) => (higherIsBetter ? r > 1 : r < 1)).length;
  return { median: median(ratios), min: Math.min(...ratios), max: Math.max(...ratios), n: ratios.length, walstreamAhead: ahead };
}

/** A table row for pairedRatios: spread and pairs won in the walstream column, the median as the ratio. */
const pairedRow = (p) => ['  run-by-run ratio: min–max; pairs walstream won', p ? `${p.min.toFixed(2)}–${p.max.toFixed(2)}; ${p.walstreamAhead} of ${p.n}` : '–', '', p ? `${p.median.toFixed(2)}×` : ''];

function summarize() {
  const rows = [];
  const fmt = (s, digits, unit = '') => (s ? `${s.median.toFixed(digits)}${unit} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})` : '–');
  const ratio = (a, b) => (a && b && b.median > 0 ? `${(a.median / b.median).toFixed(2)}×` : a && b && a.median === b.median ? '=' : '');
  const pick = (list, pred, field) => stats(list.filter(pred).map(field));
  const summary = {};

  if (result.catchup) {
    const list = result.catchup.runs;
    const get = (tool, mode, field) => pick(list, (x) => x.tool === tool && x.mode === mode, (x) => x[field]);
    const modes = [];
    if (only.has('catchup')) modes.push(['fsync', 'catch-up to disk, fsync (MiB/s)']);
    if (only.has('nosync')) modes.push(['nosync', 'catch-up, --no-sync (MiB/s)']);
    for (const [mode, label] of modes) {
      const a = get('walstream', mode, 'mibPerSecond');
      const b = get('pg_receivewal', mode, 'mibPerSecond');
      rows.push([label, fmt(a, 0), fmt(b, 0), ratio(a, b)]);
      const paired = pairedRatios(list, (x) => x.mode === mode, 'mibPerSecond');
      rows.push(pairedRow(paired));
      summary[`catchup_${mode}_mibps`] = { walstream: a, pg_receivewal: b, ratio: a && b ? a.median / b.median : undefined, paired };
    }
    if (only.has('ceiling')) {
      const a = get('null_sink', 'null', 'mibPerSecond');
      rows.push(['ceiling: WalReceiver → null sink (MiB/s)', fmt(a, 0), '', '']);
      summary.ceiling_mibps = a;
    }
    if (only.has('rss') || only.has('catchup')) {
      for (const mode of ['fsync', 'nosync']) {
        if (!list.some((x) => x.mode === mode)) continue;
        const ra = get('walstream', mode, 'peakRssMiB');
        const rb = get('pg_receivewal', mode, 'peakRssMiB');
        const ca = get('walstream', mode, 'cpuSecondsPerGiB');
        const cb = get('pg_receivewal', mode, 'cpuSecondsPerGiB');
        rows.push([`peak RSS, ${mode} catch-up (MiB)`, fmt(ra, 1), fmt(rb, 1), ratio(ra, rb)]);
        rows.push([`CPU s per GiB, ${mode} catch-up`, fmt(ca, 2), fmt(cb, 2), ratio(ca, cb)]);
        const da = get('walstream', mode, 'diskWritesPerWalByte');
        const db = get('pg_receivewal', mode, 'diskWritesPerWalByte');
        rows.push([`bytes written to disk per WAL byte, ${mode}`, fmt(da, 2), fmt(db, 2), ratio(da, db)]);
        summary[`disk_writes_per_wal_byte_${mode}`] = { walstream: da, pg_receivewal: db };
        summary[`rss_${mode}_mib`] = { walstream: ra, pg_receivewal: rb };
        summary[`cpu_${mode}_s_per_gib`] = { walstream: ca, pg_receivewal: cb };
      }
      if (only.has('ceiling')) {
        rows.push(['  null sink: peak RSS (MiB) / CPU s per GiB', `${fmt(get('null_sink', 'null', 'peakRssMiB'), 1)} / ${fmt(get('null_sink', 'null', 'cpuSecondsPerGiB'), 2)}`, '', '']);
      }
    }
  }
  if (result.lag) {
    const list = result.lag.runs;
    const lagStat = (tool, kind, p) => stats(list.filter((x) => x.tool === tool).map((x) => x[kind][p]));
    const fmtLag = (s) => (s ? `${kib(s.median)} (${kib(s.min)}–${kib(s.max)})` : '–');
    for (const [kind, label] of [['sentLag', 'sent'], ['writeLag', 'write'], ['flushLag', 'flush']]) {
      for (const p of ['p50', 'p99']) {
        const a = lagStat('walstream', kind, p);
        const b = lagStat('pg_receivewal', kind, p);
        rows.push([`lag behind flush under pgbench: ${label} ${p}`, fmtLag(a), fmtLag(b), ratio(a, b)]);
        summary[`lag_${label}_${p}_bytes`] = { walstream: a, pg_receivewal: b };
      }
    }
    const ta = stats(list.filter((x) => x.tool === 'walstream').map((x) => x.tps));
    const tb = stats(list.filter((x) => x.tool === 'pg_receivewal').map((x) => x.tps));
    rows.push(['  pgbench TPS while following (async)', fmt(ta, 0), fmt(tb, 0), ratio(ta, tb)]);
    const ca = stats(list.filter((x) => x.tool === 'walstream').map((x) => x.cpuSeconds));
    const cb = stats(list.filter((x) => x.tool === 'pg_receivewal').map((x) => x.cpuSeconds));
    rows.push([`  tool CPU s during the ${pgbenchSeconds} s pgbench`, fmt(ca, 2), fmt(cb, 2), ratio(ca, cb)]);
    const wal = stats(list.map((x) => x.walMiBPerSecond));
    rows.push(['  WAL rate under pgbench (MiB/s, both)', fmt(wal, 1), '', '']);
    summary.lag_tps = { walstream: ta, pg_receivewal: tb };
  }
  if (result.sync) {
    const list = result.sync.runs;
    const t = (tool) => stats(list.filter((x) => x.tool === tool).map((x) => x.tps));
    const a = t('walstream');
    const b = t('pg_receivewal');
    const none = t('none');
    rows.push(['sync standby: pgbench TPS', fmt(a, 0), fmt(b, 0), ratio(a, b)]);
    const paired = pairedRatios(list, () => true, 'tps');
    rows.push(pairedRow(paired));
    rows.push(['  no standby (reference TPS)', fmt(none, 0), '', '']);
    for (const p of ['p50', 'p99']) {
      const la = stats(list.filter((x) => x.tool === 'walstream').map((x) => x.flushLagMs[p]));
      const lb = stats(list.filter((x) => x.tool === 'pg_receivewal').map((x) => x.flushLagMs[p]));
      rows.push([`  flush_lag ${p} (ms, pg_stat_replication)`, fmt(la, 2), fmt(lb, 2), ratio(la, lb)]);
      summary[`sync_flush_lag_${p}_ms`] = { walstream: la, pg_receivewal: lb };
    }
    const ca = stats(list.filter((x) => x.tool === 'walstream').map((x) => x.cpuSeconds));
    const cb = stats(list.filter((x) => x.tool === 'pg_receivewal').map((x) => x.cpuSeconds));
    rows.push([`  tool CPU s during the ${pgbenchSeconds} s pgbench`, fmt(ca, 2), fmt(cb, 2), ratio(ca, cb)]);
    summary.sync_tps = { walstream: a, pg_receivewal: b, none, paired };
  }
  if (result.compress) {
    const list = result.compress.runs;
    const get = (tool, mode, field) => pick(list, (x) => x.tool === tool && x.mode === mode, (x) => x[field]);
    for (const mode of ['lz4', 'gzip', 'zstd'].filter((m) => compressMethods.has(m))) {
      const a = get('walstream', mode, 'mibPerSecond');
      const b = get('pg_receivewal', mode, 'mibPerSecond');
      rows.push([`pgbench WAL, -Z ${COMPRESS_FLAGS[mode][1]} catch-up, fsync (MiB/s)`, fmt(a, 0), b ? fmt(b, 0) : 'no such method', ratio(a, b)]);
      if (b) rows.push(pairedRow(pairedRatios(list, (x) => x.mode === mode, 'mibPerSecond')));
      const sa = get('walstream', mode, 'archiveBytesPerWalByte');
      const sb = get('pg_receivewal', mode, 'archiveBytesPerWalByte');
      rows.push([`  archive bytes per WAL byte`, fmt(sa, 3), sb ? fmt(sb, 3) : '', ratio(sa, sb)]);
      summary[`compress_${mode}`] = { walstream: a, pg_receivewal: b, sizeWalstream: sa, sizePgReceivewal: sb, paired: pairedRatios(list, (x) => x.mode === mode, 'mibPerSecond') };
    }
  }
  const wire = only.has('wire') ? summarizeWire() : null;
  if (wire) summary.wire = wire.summary;
  return { rows, summary, wire };
}

/**
 * Section wire: the C receiver's MiB/s as 100 %, walstream's null sink and durable catch-up as shares
 * of it (ratio of medians, and run by run: each run has all three, alternated, on the same WAL).
 */
function summarizeWire() {
  const list = result.catchup?.runs ?? [];
  const contenders = [
    ['c_receiver', 'C receiver (libpq, discard)', (x) => x.tool === 'c_receiver' && x.mode === 'wire'],
    ['c_durable', 'C receiver, durable (O_DIRECT, fsync)', (x) => x.tool === 'c_receiver' && x.mode === 'durable'],
    ['null_sink', 'walstream null sink', (x) => x.tool === 'null_sink'],
    ['durable', 'walstream durable catch-up (fsync)', (x) => x.tool === 'walstream' && x.mode === 'fsync'],
  ];
  const byRun = (pred) => new Map(list.filter(pred).map((x) => [x.run, x.mibPerSecond]));
  const wireByRun = byRun(contenders[0][2]);
  const summary = {};
  const rows = [];
  const fmt = (s, digits, unit = '') => (s ? `${s.median.toFixed(digits)}${unit} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})` : '–');
  const pct = (x) => `${(x * 100).toFixed(0)}%`;
  const wireRate = stats([...wireByRun.values()]);
  for (const [key, label, pred] of contenders) {
    const rate = stats(list.filter(pred).map((x) => x.mibPerSecond));
    const user = stats(list.filter(pred).map((x) => x.userSecondsReaped / (x.bytes / GiB)));
    const system = stats(list.filter(pred).map((x) => x.systemSecondsReaped / (x.bytes / GiB)));
    const share = rate && wireRate ? rate.median / wireRate.median : undefined;
    const pairs = [...byRun(pred)].filter(([run]) => wireByRun.get(run) > 0).map(([run, v]) => v / wireByRun.get(run));
    const paired = key === 'c_receiver' ? null : stats(pairs);
    summary[key] = { mibps: rate, shareOfCReceiver: share, pairedShare: paired, userCpuSecondsPerGiB: user, systemCpuSecondsPerGiB: system };
    rows.push([label, fmt(rate, 0), share === undefined ? '–' : pct(share), paired ? `${pct(paired.median)} (${pct(paired.min)}–${pct(paired.max)})` : '', fmt(user, 3), fmt(system, 3)]);
  }
  const shares = [['null sink', summary.null_sink.shareOfCReceiver], ['durable', summary.durable.shareOfCReceiver]].filter(([, v]) => v !== undefined);
  const cDurable = summary.c_durable.shareOfCReceiver;
  const ofCDurable = summary.durable.mibps && summary.c_durable.mibps ? summary.durable.mibps.median / summary.c_durable.mibps.median : undefined;
  const line = shares.length ? `walstream: ${shares.map(([k, v], i) => `${k} ${pct(v)}${i === 0 ? ' of the C receiver' : ''}`).join(', ')}` +
    (cDurable === undefined ? '' : `; the C receiver's own durable catch-up ${pct(cDurable)}, walstream's durable ${pct(ofCDurable)} of it`) : null;
  result.wire = {
    cReceiver: cReceiver?.path ? { command: cReceiver.command, compiler: cReceiver.compiler } : { skipped: cReceiver?.reason ?? 'not built' },
    runs: 'catchup.runs: tool c_receiver (mode wire; mode durable = c_durable), null_sink (null), walstream (fsync) = durable',
    summary: 'summary.wire',
  };
  return { rows, line, summary };
}

function printWire(wire) {
  const header = ['close to the wire (median, min–max)', 'MiB/s', 'share of C', 'run by run', 'user CPU s/GiB', 'sys CPU s/GiB'];
  const all = [header, ...wire.rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => String(r[i] ?? '').length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c ?? '').padEnd(widths[i]) : String(c ?? '').padStart(widths[i]))).join('  ');
  const out = [
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...wire.rows.map(line),
    ...(wire.line ? [wire.line] : []),
    ...(result.wire.cReceiver.skipped ? [`C receiver skipped: ${result.wire.cReceiver.skipped}`] : []),
    'The C receiver (bench/c-receiver.c) streams the same retained WAL as the others over libpq and discards it: no',
    'files, no fsync, a status update only when the server asks. Its durable mode writes what walstream writes, the way',
    'walstream writes it (1 MiB O_DIRECT chunks, four in flight, fdatasync, rename and directory fsync per segment):',
    'what the disk side costs without walstream. MiB/s: bytes caught up / whole-process wall time.',
    'share of C: ratio of medians; run by run: each run\'s rate over the C receiver\'s in the same run, median (min–max).',
    'CPU: the whole process (all threads), user and system, exact at exit.',
    '',
  ];
  process.stdout.write(out.join('\n'));
}

function printTable(rows) {
  const header = ['metric (median, min–max)', 'walstream', 'pg_receivewal', 'ws/pg'];
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => String(r[i] ?? '').length)));
  const line = (r) => r.map((c, i) => (i === 0 ? String(c ?? '').padEnd(widths[i]) : String(c ?? '').padStart(widths[i]))).join('  ');
  const headline = [
    '',
    `pg-walstream bench: ${gb} GiB WAL, ${segmentMB} MiB segments, ${runs} runs per figure; ${result.environment.postgres}; node ${process.version}; ` +
      `${result.environment.cpus} CPUs (${result.environment.cpuModel}); page cache ${result.environment.droppedCaches ? 'dropped before each catch-up run' : 'warm'}; ` +
      `load average ${result.environment.loadAverageAtStart[0].toFixed(2)} at start, ${result.environment.loadAverageAtEnd[0].toFixed(2)} at end`,
  ];
  // Only the wire section selected: no rows here, its own table follows.
  if (rows.length === 0) return void process.stdout.write([...headline, '', ''].join('\n'));
  const out = [
    ...headline,
    line(header),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows.map(line),
    '',
    'MiB/s: bytes caught up / whole-process wall time (start-up included). ws/pg > 1 is better for MiB/s and TPS,',
    '< 1 is better for RSS, CPU and lag. Lag: pg_current_wal_flush_lsn() minus the position in pg_stat_replication,',
    'sampled every 100 ms while pgbench runs (both tools with -s 1; flush moves only as far as the tool has fsynced: for',
    'pg_receivewal without --synchronous, at the end of each segment). flush_lag: the server\'s time from its own flush to',
    'the standby\'s flush report, i.e. the wait a synchronous commit adds.',
    '',
  ];
  process.stdout.write(out.join('\n'));
}

// ---------------------------------------------------------------------------------------------
// Main

const began = performance.now();
let failed = null;
try {
  if (only.has('catchup') || only.has('nosync') || only.has('ceiling') || only.has('wire') || only.has('rss')) result.catchup = await catchup();
  if (only.has('compress')) result.compress = await catchup(compressContenders(), generatePgbenchWal);
  if (only.has('lag')) result.lag = await lag();
  if (only.has('sync')) result.sync = await sync();
  if (only.has('verify')) {
    result.verify = await benchVerify({ cluster, cli: CLI, receivewal, waldump: pgTool('pg_waldump'), parentDir, runs, bytes: gb * GiB, segmentSize,
      generate: generatePgbenchWal, dropCaches: () => canDropCaches && dropCaches(), log });
  }
  if (only.has('recovery')) {
    result.recovery = await benchRecovery({ cluster, cli: CLI, fast: path.join(ROOT, 'bin', 'walstream-restore'), parentDir, runs, bytes: gb * GiB, segmentSize,
      generate: generatePgbenchWal, log });
  }
  if (only.has('s3')) {
    result.s3 = await benchS3({ cluster, cli: CLI, parentDir, runs, bytes: gb * GiB, segmentSize, generate: generateWal,
      dropCaches: () => canDropCaches && dropCaches(), log });
  }
} catch (err) {
  failed = err;
  log(`error: ${err?.stack ?? err}`);
  const tail = (() => { try { return execFileSync('tail', ['-n', '20', cluster.logFile], { encoding: 'utf8' }); } catch { return ''; } })();
  if (tail) log(`server log (tail):\n${tail}`);
} finally {
  await cluster.destroy().catch(() => undefined);
}
result.totalSeconds = (performance.now() - began) / 1000;
result.environment.loadAverageAtEnd = os.loadavg();
const { rows, summary, wire } = summarize();
result.summary = summary;
if (failed) result.error = String(failed?.message ?? failed);
printTable(rows);
if (wire) printWire(wire);
const resultsDir = path.join(HERE, 'results');
mkdirSync(resultsDir, { recursive: true });
const file = path.join(resultsDir, `${result.startedAt.replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify(result, (_, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
log(`total ${result.totalSeconds.toFixed(0)} s; every run's numbers in ${path.relative(process.cwd(), file)}`);
process.exitCode = failed ? 1 : 0;
