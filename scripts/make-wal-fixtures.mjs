#!/usr/bin/env node
/**
 * Makes fixtures/wal/: real 1 MB WAL segments and a timeline history file from a throwaway
 * PostgreSQL cluster, for the verifier's unit tests (test/unit/verify*.test.ts), which run with no
 * server. Run by hand when the fixtures need remaking:
 *
 *   node scripts/make-wal-fixtures.mjs
 *
 * What it does (bench/lib/cluster.mjs starts the cluster: initdb --wal-segsize=1, trust auth on
 * 127.0.0.1, as the `postgres` OS user when we are root, removed at exit):
 *   1. pg_switch_wal(), so segment A starts clean; rows of md5 text (compressible like real data, not
 *      repeated characters) until WAL reaches ~1.4 MB into the timeline: A is full, B begun;
 *      pg_switch_wal() again (an XLOG_SWITCH record inside B, the rest of B ignored);
 *      rows until WAL is ~60 kB into segment D (records crossing the C/D boundary).
 *   2. A clean stop, standby.signal, start, pg_ctl promote: timeline 2 begins inside D
 *      (00000002.history), its first segment a copy of timeline 1's D up to the switch point.
 *   3. A few rows on timeline 2, pg_switch_wal() (so timeline 2's D is complete), a clean stop.
 * Copied out of pg_wal: timeline 1's A, B, C (complete), its D as NAME.partial (as walstream and
 * pg_receivewal leave the old timeline's last segment; zeros after the switch point, as streamed:
 * pg_wal's own file may be a recycled one with old WAL there), timeline 2's D, and 00000002.history.
 *
 * pg_waldump (the server's own reader, an independent oracle) then reads timeline 1 from A's start
 * to the switch point and timeline 2 from D's start to its end; every record it prints is credited to
 * the file holding its start LSN. fixtures/wal/waldump.json holds those per-file counts, the switch
 * point and the system identifier.
 */
import { copyFileSync, chownSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatLsn, parseLsn, pgTool, run, serverUser, startCluster } from '../bench/lib/cluster.mjs';

const repo = fileURLToPath(new URL('..', import.meta.url));
const outDir = path.join(repo, 'fixtures', 'wal');
const SEGMENT = 1 << 20;

const cluster = await startCluster({
  segmentMB: 1,
  // Nothing removed or recycled from pg_wal while the fixtures are made; no timed checkpoints.
  conf: { wal_keep_size: '256MB', max_wal_size: '256MB', min_wal_size: '32MB', checkpoint_timeout: '1h', wal_recycle: 'off' },
});
const sql = (text, params) => cluster.query(text, params);
const currentLsn = async () => parseLsn((await sql('select pg_current_wal_lsn()::text as lsn'))[0].lsn);
const walName = (timeline, lsn) => {
  const segno = lsn / BigInt(SEGMENT);
  const perId = 0x100000000n / BigInt(SEGMENT);
  const hex = (v) => v.toString(16).toUpperCase().padStart(8, '0');
  return hex(BigInt(timeline)) + hex(segno / perId) + hex(segno % perId);
};
/** Commit rows of md5 text until WAL reaches `target`. */
async function writeUntil(target) {
  while ((await currentLsn()) < target) {
    await sql(`insert into fx (pad) select string_agg(md5(random()::text), '') from generate_series(1, 12), generate_series(1, 20) g group by g`);
  }
}

try {
  await sql('create table fx (id bigserial primary key, pad text)');
  await sql('select pg_switch_wal()');
  const startA = await currentLsn();
  const segA = startA / BigInt(SEGMENT);
  const base = segA * BigInt(SEGMENT);
  await writeUntil(base + BigInt(SEGMENT) + 400_000n);
  await sql('select pg_switch_wal()'); // XLOG_SWITCH inside B
  await writeUntil(base + 3n * BigInt(SEGMENT) + 60_000n); // into D
  const segD = segA + 3n;

  await cluster.stop('fast');
  const signalFile = path.join(cluster.dataDir, 'standby.signal');
  writeFileSync(signalFile, '');
  const user = serverUser();
  if (user) chownSync(signalFile, user.uid, user.gid);
  await cluster.start();
  await run(pgTool('pg_ctl'), ['-D', cluster.dataDir, '-w', '-t', '60', 'promote'], { asPostgres: true });
  const history = (await sql(`select pg_read_file('pg_wal/00000002.history') as h`))[0].h;
  const switchPoint = parseLsn(history.trim().split('\n').at(-1).split('\t')[1]);
  if (switchPoint / BigInt(SEGMENT) !== segD) throw new Error(`switch point ${formatLsn(switchPoint)} is not in segment D`);
  await sql(`insert into fx (pad) select md5(g::text) from generate_series(1, 200) g`);
  await sql('select pg_switch_wal()'); // timeline 2's D complete
  const systemId = (await sql('select system_identifier::text as id from pg_control_system()'))[0].id;
  await cluster.stop('fast');

  // Copy the segments out.
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const pgWal = path.join(cluster.dataDir, 'pg_wal');
  const files = [];
  for (let i = 0n; i < 3n; i++) files.push({ from: walName(1, (segA + i) * BigInt(SEGMENT)), to: walName(1, (segA + i) * BigInt(SEGMENT)) });
  const oldLast = walName(1, segD * BigInt(SEGMENT));
  files.push({ from: existsSync(path.join(pgWal, oldLast)) ? oldLast : `${oldLast}.partial`, to: `${oldLast}.partial` });
  files.push({ from: walName(2, segD * BigInt(SEGMENT)), to: walName(2, segD * BigInt(SEGMENT)) });
  files.push({ from: '00000002.history', to: '00000002.history' });
  for (const f of files) copyFileSync(path.join(pgWal, f.from), path.join(outDir, f.to));
  // pg_wal's old-timeline file may be a recycled one, old WAL after the switch point; an archive's
  // .partial holds only what was streamed (up to the switch point), zeros after it.
  const partialPath = path.join(outDir, `${oldLast}.partial`);
  const partial = readFileSync(partialPath);
  partial.fill(0, Number(switchPoint % BigInt(SEGMENT)));
  writeFileSync(partialPath, partial);

  // pg_waldump over the same files (a scratch directory: the .partial under its plain name).
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'walstream-waldump-'));
  try {
    for (const f of files) copyFileSync(path.join(outDir, f.to), path.join(scratch, f.to.replace(/\.partial$/, '')));
    const dump = async (timeline, start, end) => {
      const { stdout } = await run(pgTool('pg_waldump'), ['-p', scratch, '-t', String(timeline), '-s', formatLsn(start), '-e', formatLsn(end)]);
      return stdout.split('\n').filter((l) => l.startsWith('rmgr:'));
    };
    const counts = {};
    const credit = (timeline, lines, partialSegno) => {
      for (const line of lines) {
        const lsn = parseLsn(/lsn: ([0-9A-F]+\/[0-9A-F]+)/.exec(line)[1]);
        const segno = lsn / BigInt(SEGMENT);
        const name = walName(timeline, lsn) + (segno === partialSegno ? '.partial' : '');
        counts[name] = (counts[name] ?? 0) + 1;
      }
    };
    credit(1, await dump(1, base, switchPoint), segD);
    credit(2, await dump(2, segD * BigInt(SEGMENT), (segD + 1n) * BigInt(SEGMENT)), -1n);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    const { stdout: version } = await run(pgTool('pg_waldump'), ['--version']);
    writeFileSync(path.join(outDir, 'waldump.json'), JSON.stringify({
      made: 'scripts/make-wal-fixtures.mjs', pgWaldump: version.trim(), systemId, segmentSize: SEGMENT,
      switchPoint: formatLsn(switchPoint), records: counts, total,
    }, null, 2) + '\n');
    console.log(`fixtures/wal: ${files.map((f) => f.to).join(', ')}; switch point ${formatLsn(switchPoint)}; pg_waldump: ${total} records`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
} finally {
  await cluster.destroy();
}
