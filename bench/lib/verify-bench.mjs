/**
 * The bench's `verify` section: `walstream verify --all` against `pg_waldump --stats=record` (which
 * also reads every record and checks its CRC) over the same uncompressed archive of pgbench-made WAL,
 * made once by pg_receivewal (walstream with its default --jobs: one fewer than the processors).
 * Runs alternate A B, B A; the page cache is dropped before each run when we may, so both read the
 * archive from disk. Reported: wall time of each, medians and their ratio (pg_waldump's time /
 * walstream's: above 1 means walstream is faster), median CPU time (user + system) of each, and the
 * record counts, which must agree.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { formatLsn, parseLsn, run } from './cluster.mjs';
import { watchProcess } from './measure.mjs';

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Run the section. `ctx`: { cluster, cli, receivewal, waldump, parentDir, runs, bytes, segmentSize
 * (bigint), generate(bytes), dropCaches() → boolean, log(message) }. Returns what goes into the results JSON.
 */
export async function benchVerify(ctx) {
  const { cluster, log } = ctx;
  const slot = 'bench_verify';
  const [row] = await cluster.query('select lsn::text as lsn from pg_create_physical_replication_slot($1, true)', [slot]);
  const start = parseLsn(row.lsn) - (parseLsn(row.lsn) % ctx.segmentSize);
  log(`verify: generating ${(ctx.bytes / 2 ** 30).toFixed(2)} GiB of pgbench WAL`);
  await ctx.generate(ctx.bytes);
  const [sw] = await cluster.query('select pg_switch_wal()::text as lsn');
  let end = parseLsn(sw.lsn);
  if (end % ctx.segmentSize !== 0n) end = end - (end % ctx.segmentSize) + ctx.segmentSize;
  await cluster.query('create table verify_tail as select 1 as x');
  const dir = mkdtempSync(path.join(ctx.parentDir, 'walstream-bench-verify-'));
  try {
    await run(ctx.receivewal, ['-D', dir, '-S', slot, '-E', formatLsn(end), '-n', '--no-sync', '-d', cluster.conninfo()], { timeoutMs: 1_800_000 });
    await cluster.query('select pg_drop_replication_slot($1)', [slot]);
    for (const name of readdirSync(dir)) if (name.endsWith('.partial')) rmSync(path.join(dir, name)); // only complete segments, for both
    const segments = readdirSync(dir).length;
    const bytes = Number(end - start);
    log(`verify: archive of ${segments} segments (${formatLsn(start)} – ${formatLsn(end)}); ${ctx.runs} runs each`);
    const contenders = [
      { key: 'walstream', file: process.execPath, args: [ctx.cli, 'verify', '-D', dir, '--all', '--json'] },
      { key: 'pg_waldump', file: ctx.waldump, args: ['--stats=record', '-p', dir, '-s', formatLsn(start), '-e', formatLsn(end)] },
    ];
    const runs = [];
    for (let r = 0; r < ctx.runs; r++) {
      for (const c of r % 2 === 0 ? contenders : [...contenders].reverse()) {
        const dropped = ctx.dropCaches();
        const result = await watchProcess(c.file, c.args, { timeoutMs: 1_800_000 }).done;
        if (c.key === 'walstream' && result.code === 1) throw new Error(`walstream verify found faults:\n${result.stdout.slice(0, 2000)}`);
        if (result.code !== 0) throw new Error(`${c.key} exited with ${result.code ?? result.signal}\n${result.stderr.slice(0, 2000)}`);
        const records = c.key === 'walstream'
          ? JSON.parse(result.stdout).records
          : Number(/^Total\s+(\d+)/m.exec(result.stdout)?.[1] ?? NaN);
        runs.push({ run: r, tool: c.key, wallSeconds: result.wallSeconds, cpuSeconds: result.cpuSeconds, peakRssMiB: result.peakRssKiB / 1024, records, droppedCaches: dropped, mibPerSecond: bytes / 2 ** 20 / result.wallSeconds });
        log(`verify run ${r + 1}/${ctx.runs} ${c.key.padEnd(10)} ${result.wallSeconds.toFixed(2).padStart(6)} s  ${(bytes / 2 ** 20 / result.wallSeconds).toFixed(0).padStart(5)} MiB/s  CPU ${result.cpuSeconds.toFixed(2)} s  ${records} records`);
      }
    }
    const of = (tool) => runs.filter((x) => x.tool === tool);
    const walstream = median(of('walstream').map((x) => x.wallSeconds));
    const waldump = median(of('pg_waldump').map((x) => x.wallSeconds));
    const paired = of('walstream').map((w) => of('pg_waldump').find((p) => p.run === w.run).wallSeconds / w.wallSeconds);
    const summary = {
      bytes, segments, walstreamSeconds: walstream, pgWaldumpSeconds: waldump, ratio: waldump / walstream, pairedRatio: median(paired),
      walstreamMiBs: bytes / 2 ** 20 / walstream, pgWaldumpMiBs: bytes / 2 ** 20 / waldump,
      walstreamCpuSeconds: median(of('walstream').map((x) => x.cpuSeconds)), pgWaldumpCpuSeconds: median(of('pg_waldump').map((x) => x.cpuSeconds)),
      records: { walstream: of('walstream')[0]?.records, pgWaldump: of('pg_waldump')[0]?.records },
    };
    log(`verify: walstream ${walstream.toFixed(2)} s (${summary.walstreamMiBs.toFixed(0)} MiB/s), pg_waldump --stats=record ${waldump.toFixed(2)} s (${summary.pgWaldumpMiBs.toFixed(0)} MiB/s): walstream ${summary.ratio.toFixed(2)}x as fast (paired ${summary.pairedRatio.toFixed(2)}x); CPU ${summary.walstreamCpuSeconds.toFixed(2)} s vs ${summary.pgWaldumpCpuSeconds.toFixed(2)} s; records ${summary.records.walstream} vs ${summary.records.pgWaldump}`);
    return { start: formatLsn(start), end: formatLsn(end), runs, summary };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await cluster.query('drop table if exists verify_tail, pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history').catch(() => undefined);
  }
}
