/**
 * The bench's `recovery` section: a `-X none` base backup plus ~--gb of pgbench-made WAL recovered to the
 * end of the archive, with restore_command = `cp ARCHIVE/%f %p` against bin/walstream-restore (prefetch on,
 * the default) from an uncompressed, a -Z lz4 and a -Z zstd archive of the same WAL, all made by
 * walstream receive. Runs alternate (A B C D, D C B A, ...); the page cache is left warm (the archives
 * were just written), as the issue's measurement had it. Time: from the server's first log line to
 * "database system is ready to accept connections" after the end of recovery (log_line_prefix %m),
 * so neither pg_ctl nor polling is in it. Every run must end at the same "redo done at" LSN.
 */
import { chownSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, appendFileSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { formatLsn, freePort, parseLsn, pgTool, run, serverUser } from './cluster.mjs';

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const q = (s) => `'${s.replace(/'/g, `'\\''`)}'`;
const chownTree = (dir, user) => {
  if (!user) return;
  chownSync(dir, user.uid, user.gid);
  for (const name of readdirSync(dir)) chownSync(path.join(dir, name), user.uid, user.gid);
};

/** Milliseconds since the epoch of a `%m` log line ("2026-11-27 18:50:01.123 UTC ..."), or NaN. */
function lineTime(line) {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) UTC/.exec(line);
  return m ? Date.parse(`${m[1]}T${m[2]}Z`) : NaN;
}

/**
 * Run the section. `ctx`: { cluster, cli, fast (bin/walstream-restore), parentDir, runs, bytes,
 * segmentSize (bigint), generate(bytes), log(message) }. Returns what goes into the results JSON.
 */
export async function benchRecovery(ctx) {
  const { cluster, log } = ctx;
  const user = serverUser();
  const work = mkdtempSync(path.join(ctx.parentDir, 'walstream-bench-recovery-'));
  chownTree(work, user);
  const methods = [['plain', []], ['lz4', ['-Z', 'lz4']], ['zstd', ['-Z', 'zstd']]];
  try {
    for (const [m] of methods) await cluster.query('select pg_create_physical_replication_slot($1, true)', [`bench_recovery_${m}`]);
    const backup = path.join(work, 'backup');
    await run(pgTool('pg_basebackup'), ['-D', backup, '-X', 'none', '-c', 'fast', '-d', cluster.conninfo()], { asPostgres: true, timeoutMs: 600_000 });
    log(`recovery: base backup taken; generating ${(ctx.bytes / 2 ** 30).toFixed(2)} GiB of pgbench WAL`);
    const [{ lsn: startText }] = await cluster.query('select pg_current_wal_lsn()::text as lsn');
    await ctx.generate(ctx.bytes);
    const [{ lsn: switchText }] = await cluster.query('select pg_switch_wal()::text as lsn');
    const end = parseLsn(switchText) + ctx.segmentSize - (parseLsn(switchText) % ctx.segmentSize || ctx.segmentSize);
    await cluster.query('create table if not exists recovery_tail as select 1 as x'); // WAL past the switch, so -E ends
    const archives = {};
    for (const [m, flags] of methods) {
      const dir = path.join(work, `archive-${m}`);
      await run('mkdir', [dir], { asPostgres: true });
      await run(process.execPath, [ctx.cli, 'receive', '-D', dir, '-S', `bench_recovery_${m}`, '-E', formatLsn(end), '-n', ...flags, '-d', cluster.conninfo()], { asPostgres: true, timeoutMs: 1_800_000 });
      await cluster.query('select pg_drop_replication_slot($1)', [`bench_recovery_${m}`]);
      for (const name of readdirSync(dir)) if (name.endsWith('.partial')) rmSync(path.join(dir, name)); // to the same end for all
      archives[m] = dir;
    }
    const segments = readdirSync(archives.plain).length;
    const bytes = segments * Number(ctx.segmentSize);
    log(`recovery: archives of ${segments} segments (${formatLsn(parseLsn(startText))} – ${formatLsn(end)}); ${ctx.runs} runs each`);

    const walstream = (m) => `WALSTREAM_NODE=${q(process.execPath)} ${q(ctx.fast)} %f %p -D ${q(archives[m])}`;
    const contenders = [
      { key: 'cp', archive: archives.plain, command: `cp ${q(archives.plain)}/%f %p` },
      { key: 'walstream', archive: archives.plain, command: walstream('plain') },
      { key: 'walstream_lz4', archive: archives.lz4, command: walstream('lz4') },
      { key: 'walstream_zstd', archive: archives.zstd, command: walstream('zstd') },
    ];
    const runs = [];
    for (let r = 0; r < ctx.runs; r++) {
      for (const c of r % 2 === 0 ? contenders : [...contenders].reverse()) {
        const result = await recoverOnce(ctx, work, backup, c);
        runs.push({ run: r, tool: c.key, ...result });
        log(`recovery run ${r + 1}/${ctx.runs} ${c.key.padEnd(15)} ${result.seconds.toFixed(2).padStart(6)} s  redo done at ${result.redoDone}`);
      }
    }
    const ends = new Set(runs.map((x) => x.redoDone));
    if (ends.size !== 1) throw new Error(`recoveries ended at different LSNs: ${[...ends].join(', ')}`);
    const of = (tool) => runs.filter((x) => x.tool === tool);
    const cp = median(of('cp').map((x) => x.seconds));
    const summary = { bytes, segments, cpSeconds: cp };
    for (const c of contenders.slice(1)) {
      const seconds = median(of(c.key).map((x) => x.seconds));
      const paired = of(c.key).map((x) => x.seconds / of('cp').find((p) => p.run === x.run).seconds);
      summary[c.key] = { seconds, ratio: seconds / cp, pairedRatio: median(paired) };
      log(`recovery: ${c.key} ${seconds.toFixed(2)} s vs cp ${cp.toFixed(2)} s: ${(seconds / cp).toFixed(3)}x (paired ${median(paired).toFixed(3)}x)`);
    }
    return { start: startText, end: formatLsn(end), runs, summary };
  } finally {
    rmSync(work, { recursive: true, force: true });
    await cluster.query('drop table if exists recovery_tail, pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history').catch(() => undefined);
  }
}

/** One recovery of a fresh copy of `backup` with contender `c`'s restore_command; seconds and where redo ended. */
async function recoverOnce(ctx, work, backup, c) {
  const dataDir = path.join(work, 'recovering');
  cpSync(backup, dataDir, { recursive: true });
  const user = serverUser();
  if (user) await run('chown', ['-R', `${user.uid}:${user.gid}`, dataDir]);
  const logFile = path.join(work, 'recovering.log');
  const port = await freePort();
  appendFileSync(path.join(dataDir, 'postgresql.conf'), [
    `port = ${port}`, `unix_socket_directories = '${work}'`, `log_line_prefix = '%m '`, `log_timezone = 'UTC'`,
    `restore_command = '${c.command.replace(/'/g, "''")}'`, '',
  ].join('\n'));
  writeFileSync(path.join(dataDir, 'recovery.signal'), '');
  if (user) chownSync(path.join(dataDir, 'recovery.signal'), user.uid, user.gid);
  const pgCtl = pgTool('pg_ctl');
  try {
    await run(pgCtl, ['-D', dataDir, '-l', logFile, '-w', '-t', '1800', 'start'], { asPostgres: true, timeoutMs: 1_900_000 });
    let text = '';
    const deadline = Date.now() + 1_800_000;
    while (!/database system is ready to accept connections/.test(text)) {
      if (Date.now() > deadline || /FATAL|PANIC/.test(text)) throw new Error(`recovery with ${c.key} did not end:\n${text.slice(-2000)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
      text = readFileSync(logFile, 'utf8');
    }
    const lines = text.split('\n');
    const first = lineTime(lines[0]);
    const ready = lineTime(lines.find((l) => /database system is ready to accept connections/.test(l)));
    const redoDone = /redo done at ([0-9A-F]+\/[0-9A-F]+)/.exec(text)?.[1] ?? null;
    return { seconds: (ready - first) / 1000, redoDone };
  } finally {
    await run(pgCtl, ['-D', dataDir, '-m', 'immediate', '-w', 'stop'], { asPostgres: true }).catch(() => undefined);
    await stopHelper(c.archive);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(logFile, { force: true });
  }
}

/** Stop the prefetch helper a walstream run left (it would stop by itself when idle) so runs do not overlap. */
async function stopHelper(archive) {
  const spool = path.join(path.dirname(archive), `.${path.basename(archive)}.walstream-prefetch`);
  try {
    const pid = Number(/^pid=(\d+)/.exec(readFileSync(path.join(spool, 'walstream.lock'), 'utf8'))?.[1]);
    if (pid) process.kill(pid, 'SIGTERM');
  } catch { /* none */ }
  for (let i = 0; i < 100 && existsSync(spool); i++) await new Promise((resolve) => setTimeout(resolve, 50));
}
