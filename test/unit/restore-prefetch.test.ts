/**
 * The prefetch helper and bin/walstream-restore on synthetic archives (segments with a real long page
 * header and a marker, 1 MB): what gets spooled, what the fast path serves, when the helper stops.
 * Runs the built dist/ (the helper is a separate Node process) and the sh script itself.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compressFrame } from '../../src/archive/codec.js';
import { segmentFileName } from '../../src/lsn.js';
import { chooseChain, nextSegment } from '../../src/restore/predict.js';
import { defaultSpoolDir, spoolProblem } from '../../src/restore/spool.js';
import { depthInSegments, parsePrefetchDepth } from '../../src/restore/prefetch-call.js';
import { restoreMain } from '../../src/cli/restore.js';
import { parseHistory } from '../../src/walfile/history.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const FAST = join(ROOT, 'bin/walstream-restore');
const CLI = join(ROOT, 'dist/cli/main.js');
const MB = 1 << 20;

let root: string;
let archive: string;
let pgwal: string;
let spool: string;
let node: string;
const helpers = new Set<number>();

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'walstream-prefetch-'));
  archive = join(root, 'archive');
  pgwal = join(root, 'pg_wal');
  spool = defaultSpoolDir(archive);
  await mkdir(archive);
  await mkdir(pgwal);
  node = await loggingNode();
});

afterEach(async () => {
  for (const pid of helpers) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
  helpers.clear();
  await rm(root, { recursive: true, force: true });
});

/** A segment: long page header (XLOG magic, XLP_LONG_HEADER, timeline, page address, segment size) and a marker. */
function segment(timeline: number, segno: number): Buffer {
  const b = Buffer.alloc(MB);
  b.writeUInt16LE(0xd110, 0);
  b.writeUInt16LE(0x0002, 2);
  b.writeUInt32LE(timeline, 4);
  b.writeBigUInt64LE(BigInt(segno) * BigInt(MB), 8);
  b.writeBigUInt64LE(7777n, 24);
  b.writeUInt32LE(MB, 32);
  b.writeUInt32LE(8192, 36);
  b.write(`segment ${timeline}/${segno}`, 100);
  return b;
}
const name = (timeline: number, segno: number) => segmentFileName(timeline, BigInt(segno), MB);

async function archiveSegments(timeline: number, from: number, to: number, suffix = ''): Promise<void> {
  for (let s = from; s <= to; s++) {
    const data = segment(timeline, s);
    const content = suffix === '.lz4' ? await compressFrame({ method: 'lz4' }, data) : data;
    await writeFile(join(archive, name(timeline, s) + suffix), content);
  }
}

/** A WALSTREAM_NODE that logs each Node start (its arguments, one line) before running Node. */
async function loggingNode(): Promise<string> {
  const script = join(root, 'node-logged');
  await writeFile(script, `#!/bin/sh\necho "$*" >> ${JSON.stringify(join(root, 'node-runs'))}\nexec ${JSON.stringify(process.execPath)} "$@"\n`, { mode: 0o755 });
  return script;
}
/** The Node starts so far, through loggingNode. */
const nodeRuns = () => (existsSync(join(root, 'node-runs')) ? readFileSync(join(root, 'node-runs'), 'utf8').trim().split('\n') : []);

/** Run bin/walstream-restore (as restore_command would), with the data directory as working directory. */
function fast(walFile: string, ...extra: string[]): { status: number | null; stderr: string; ms: number } {
  const t = Date.now();
  const run = spawnSync(FAST, [walFile, join(pgwal, 'RECOVERYXLOG'), '-D', archive, '--prefetch-idle', '1', ...extra], {
    encoding: 'utf8',
    env: { ...process.env, WALSTREAM_NODE: node },
  });
  return { status: run.status, stderr: run.stderr, ms: Date.now() - t };
}

function helperPid(): number | null {
  try {
    const pid = Number(/^pid=(\d+)/.exec(readFileSync(join(spool, 'walstream.lock'), 'utf8'))?.[1]);
    if (pid) helpers.add(pid);
    return pid || null;
  } catch {
    return null;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const spooled = async () => (existsSync(spool) ? (await readdir(spool)).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort() : []);
const restored = () => readFileSync(join(pgwal, 'RECOVERYXLOG'));

describe('prefetch helper', () => {
  it('spools the next segments, serves them through the sh fast path, refills, and exits when idle', async () => {
    await archiveSegments(1, 1, 12);
    expect(fast(name(1, 1)).status).toBe(0);
    expect(restored().equals(segment(1, 1))).toBe(true);
    await until('8 segments spooled', async () => (await spooled()).length === 8);
    const pid = helperPid()!;
    // Started by the sh script itself, which copied segment 1 as cp would: Node ran only as the helper.
    expect(nodeRuns()).toEqual([expect.stringMatching(/prefetch-main\.js --from-sh after 000000010000000000000001 /)]);
    expect(await spooled()).toEqual([2, 3, 4, 5, 6, 7, 8, 9].map((s) => name(1, s)));
    for (let s = 2; s <= 12; s++) {
      const run = fast(name(1, s));
      expect(run.status, run.stderr).toBe(0);
      expect(restored().equals(segment(1, s)), `segment ${s}`).toBe(true);
    }
    expect(fast(name(1, 13)).status).toBe(1); // the end of the archive
    // At the end of recovery the server reads its last segment once more: it is spooled again for that.
    await until('12 spooled again', async () => (await spooled()).join() === name(1, 12));
    expect(fast(name(1, 12)).status).toBe(0);
    expect(restored().equals(segment(1, 12))).toBe(true);
    expect(await readdir(pgwal)).toEqual(['RECOVERYXLOG']);
    await until('the helper to exit by itself', () => !alive(pid), 10_000);
    expect(existsSync(spool)).toBe(false); // it removes what it made
  });

  it('decodes a compressed archive into the spool', async () => {
    await archiveSegments(1, 1, 4, '.lz4');
    expect(fast(name(1, 1)).status).toBe(0);
    // The first call started the helper before decoding its own segment (the helper reads the segment
    // size from the archive) and announced the next one, so the next call waits for the helper, not Node.
    expect(existsSync(join(spool, `pending.${name(1, 2)}`)) || (await spooled()).includes(name(1, 2))).toBe(true);
    expect(nodeRuns()).toEqual([expect.stringMatching(/prefetch-main\.js --from-sh serve 000000010000000000000001 /)]);
    await until('3 segments spooled', async () => (await spooled()).length === 3);
    expect(readFileSync(join(spool, name(1, 2))).equals(segment(1, 2))).toBe(true);
    expect(fast(name(1, 2)).status).toBe(0);
    expect(restored().equals(segment(1, 2))).toBe(true);
  });

  it('a helper started for a damaged compressed first segment exits by itself; the call reports the damage', async () => {
    await archiveSegments(1, 1, 3, '.lz4');
    const cut = readFileSync(join(archive, `${name(1, 1)}.lz4`));
    await writeFile(join(archive, `${name(1, 1)}.lz4`), cut.subarray(0, cut.length - 50));
    const run = fast(name(1, 1), '--prefetch-idle', '30');
    expect(run.status).toBe(126);
    expect(run.stderr).toMatch(/walstream restore: /);
    await until('the helper to exit and remove its spool', () => !existsSync(spool), 5_000);
  });

  it('stops when recovery asks for a segment it did not predict, and never spools a damaged one', async () => {
    await archiveSegments(1, 1, 6);
    await writeFile(join(archive, name(1, 4)), segment(1, 4).subarray(0, MB - 8192)); // cut short: damaged
    expect(fast(name(1, 1), '--prefetch-idle', '30').status).toBe(0);
    await until('2 and 3 spooled', async () => (await spooled()).join() === [name(1, 2), name(1, 3)].join());
    await new Promise((r) => setTimeout(r, 300));
    expect(await spooled()).toEqual([name(1, 2), name(1, 3)]); // 4 is damaged: the restore call reports it
    const pid = helperPid()!;
    const damaged = fast(name(1, 4));
    expect(damaged.status).toBe(126);
    expect(damaged.stderr).toMatch(/walstream restore: /);
    expect(fast(name(1, 6)).status).toBe(0); // not the prediction (3 was next)
    expect(restored().equals(segment(1, 6))).toBe(true);
    await until('the helper to exit on the wrong prediction', () => !alive(pid), 5_000);
    expect((await spooled()).filter((n) => n < name(1, 6))).toEqual([]);
  });

  it('takes nothing from a spool whose helper is gone', async () => {
    await archiveSegments(1, 1, 3);
    await mkdir(spool);
    await writeFile(join(spool, name(1, 2)), segment(1, 3)); // a leftover that is not segment 2
    await writeFile(join(spool, 'walstream.lock'), 'pid=999999999\n');
    await writeFile(join(spool, 'archive'), `${archive}\n`);
    expect(fast(name(1, 2)).status).toBe(0);
    expect(restored().equals(segment(1, 2))).toBe(true);
  });

  it('takes nothing from a spool whose lock was written in another boot (a reused pid)', async () => {
    await archiveSegments(1, 1, 3);
    await mkdir(spool);
    const live = spawn('sleep', ['30'], { stdio: 'ignore' }); // a running pid for the lock
    try {
      const lock = (boot: string) => writeFile(join(spool, 'walstream.lock'), `pid=${live.pid}\nhost=x\nboot=${boot}\n`);
      await writeFile(join(spool, 'archive'), `${archive}\n`);
      await writeFile(join(spool, name(1, 2)), segment(1, 3)); // what the spool holds under that name
      await lock(readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim());
      expect(fast(name(1, 2)).status).toBe(0); // this boot: served from the spool
      expect(restored().equals(segment(1, 3))).toBe(true);
      await writeFile(join(spool, name(1, 2)), segment(1, 3));
      await lock('00000000-0000-0000-0000-000000000000');
      expect(fast(name(1, 2), '--prefetch-idle', '0.2').status).toBe(0); // another boot: from the archive
      expect(restored().equals(segment(1, 2))).toBe(true);
    } finally {
      live.kill();
    }
  });

  it('--prefetch 0 starts no helper; a spool inside the data directory is refused with a warning', async () => {
    await archiveSegments(1, 1, 3);
    expect(fast(name(1, 1), '--prefetch', '0').status).toBe(0);
    await new Promise((r) => setTimeout(r, 300));
    expect(existsSync(spool)).toBe(false);

    await writeFile(join(pgwal, '..', 'PG_VERSION'), '15\n'); // root is now a data directory
    const run = spawnSync(process.execPath, [CLI, 'restore', name(1, 2), 'pg_wal/RECOVERYXLOG', '-D', archive, '--spool', 'pg_wal/spool'], { cwd: root, encoding: 'utf8' });
    expect(run.status).toBe(0);
    expect(run.stderr).toMatch(/^walstream restore: warning: prefetching is off: spool ".*\/pg_wal\/spool" is inside the data directory/);
    expect(existsSync(join(pgwal, 'spool'))).toBe(false);
    expect(spoolProblem(join(tmpdir(), 'elsewhere'), root)).toBeNull();
  });
});

describe('walstream restore and the spool', () => {
  it('copies a spooled segment into %p across filesystems (EXDEV), then removes it from the spool', async () => {
    if (!existsSync('/dev/shm')) return;
    await archiveSegments(1, 1, 4);
    const shm = await mkdtemp('/dev/shm/walstream-spool-');
    try {
      const run = (walFile: string) => spawnSync(process.execPath, [CLI, 'restore', walFile, join(pgwal, 'RECOVERYXLOG'), '-D', archive, '--spool', shm, '--prefetch-idle', '2'], { encoding: 'utf8' });
      expect(run(name(1, 1)).status).toBe(0);
      await until('2 spooled in /dev/shm', () => existsSync(join(shm, name(1, 2))));
      const pid = Number(/^pid=(\d+)/m.exec(readFileSync(join(shm, 'walstream.lock'), 'utf8'))![1]);
      helpers.add(pid);
      const marked = Buffer.from(segment(1, 2));
      marked.write('from the spool', 200); // tells the spool's copy from the archive's
      await writeFile(join(shm, name(1, 2)), marked);
      expect(await restoreMain([name(1, 2), join(pgwal, 'RECOVERYXLOG'), '-D', archive, '--spool', shm])).toBe(0);
      expect(restored().equals(marked)).toBe(true);
      expect(existsSync(join(shm, name(1, 2)))).toBe(false);
    } finally {
      await rm(shm, { recursive: true, force: true });
    }
  });

  it('--prefetch takes segments or a size', () => {
    expect(parsePrefetchDepth('0')).toEqual({ segments: 0 });
    expect(parsePrefetchDepth('512MB')).toEqual({ bytes: 512 << 20 });
    expect(parsePrefetchDepth('lots')).toBeNull();
    expect(depthInSegments(undefined, 16 << 20)).toBe(8);
    expect(depthInSegments(undefined, 1 << 30)).toBe(1);
    expect(depthInSegments({ bytes: 512 << 20 }, 16 << 20)).toBe(32);
    expect(depthInSegments({ segments: 3 }, 16 << 20)).toBe(3);
  });
});

describe('bin/walstream-restore without Node', () => {
  /** Run it with a Node that cannot start: 127 means it handed over to walstream restore. */
  const sh = (walFile: string, ...extra: string[]) =>
    spawnSync(FAST, [walFile, join(pgwal, 'RECOVERYXLOG'), '-D', archive, ...extra], { encoding: 'utf8', env: { ...process.env, WALSTREAM_NODE: '/nonexistent/node' } }).status;

  it('answers "absent" (1) itself when the archive holds no form of the file, hands over otherwise', async () => {
    expect(sh(name(1, 2))).toBe(1);
    expect(sh('00000002.history')).toBe(1);
    await writeFile(join(archive, '00000002.history.gz'), 'x');
    expect(sh('00000002.history')).toBe(127);
    await writeFile(join(archive, `${name(1, 2)}.zst`), 'x');
    expect(sh(name(1, 2))).toBe(127);
    await writeFile(join(archive, `${name(1, 3)}.lz4.partial`), 'x');
    expect(sh(name(1, 3))).toBe(1);
    expect(sh(name(1, 3), '--include-partial')).toBe(127);
    expect(sh('00000001000000000000000X')).toBe(127); // not a WAL file name: walstream restore's to judge
    expect(spawnSync(FAST, [name(1, 2), 'x', '-D', join(root, 'nope')], { env: { ...process.env, WALSTREAM_NODE: '/nonexistent/node' } }).status).toBe(127);
  });
});

describe('prediction', () => {
  const exists = (names: string[]) => async (n: string) => names.includes(n);

  it('follows a history file onto the next timeline at the switch segment, as XLogFileReadAnyTLI does', async () => {
    const archived = [1, 2, 3, 4].map((s) => name(1, s)).concat([5, 6, 7].map((s) => name(2, s)));
    const histories = new Map([[2, parseHistory('1\t0/50A000\tno recovery target specified\n', 2)]]);
    const chain = await chooseChain(name(1, 3), histories, MB, exists(archived));
    expect(chain.map((s) => s.timeline)).toEqual([2, 1]);
    expect(await nextSegment(chain, name(1, 3), MB, exists(archived))).toBe(name(1, 4));
    expect(await nextSegment(chain, name(1, 4), MB, exists(archived))).toBe(name(2, 5));
    expect(await nextSegment(chain, name(2, 5), MB, exists(archived))).toBe(name(2, 6));
    expect(await nextSegment(chain, name(2, 7), MB, exists(archived))).toBeNull();
    // Recovery that stayed on timeline 1 past the switch (recovery_target_timeline = 'current'): timeline 1 alone.
    const stayed = await chooseChain(name(1, 5), histories, MB, exists([...archived, name(1, 5)]));
    expect(stayed).toEqual([{ timeline: 1, begin: 0n }]);
  });
});
