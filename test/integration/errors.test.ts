/**
 * Acceptance: "Bad input, each a clear error, exit non-zero, archive untouched". Each case runs the
 * built CLI (`node dist/cli/main.js receive …`, build first with `npx tsc -p .`) against real
 * clusters and checks: exit code 1, exactly one stderr line that says what to change (no stack
 * trace), nothing on stdout, no password in the output, and the archive directory byte-for-byte
 * (names, sizes, mtimes, content hashes) as it was before.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  destroyAll,
  freePort,
  lsnToBigInt,
  runTool,
  startCluster,
  tempDir,
  type Cluster,
  type ToolResult,
} from '../harness/cluster.js';
import { WALSTREAM_CLI } from '../harness/walstream.js';
import { formatLsn } from '../../src/lsn.js';

const SEGMENT = 1024 * 1024;
const WRONG_PASSWORD = 'wrongpass-Zq7x';

/** Run `walstream receive ARGS` to completion. No ~/.pgpass, no inherited PGPASSWORD. */
function receive(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<ToolResult> {
  return runTool(process.execPath, [WALSTREAM_CLI, 'receive', ...args], {
    env: { PGPASSFILE: '/nonexistent/walstream-test-pgpass', PGPASSWORD: '', ...env },
    timeoutMs,
  });
}

/**
 * An endpos a little below the server's flush position, inside the current segment and not on a
 * segment boundary; WAL is written past it (in the same segment) so streaming can reach it.
 */
async function pickEndpos(cluster: Cluster): Promise<bigint> {
  if (lsnToBigInt(await cluster.currentLsn()) % BigInt(SEGMENT) > BigInt(SEGMENT / 2)) await cluster.switchWal();
  await cluster.generateWal(20_000);
  const endpos = lsnToBigInt(await cluster.flushLsn()) - 7n;
  expect(endpos % BigInt(SEGMENT)).not.toBe(0n);
  await cluster.generateWal(30_000);
  expect(lsnToBigInt(await cluster.flushLsn()) / BigInt(SEGMENT)).toBe(endpos / BigInt(SEGMENT));
  return endpos;
}

interface FileState {
  name: string;
  size: number;
  mtimeMs: number;
  sha256: string;
}

/** Names, sizes, mtimes and content hashes of every file in `dir`; null when it does not exist. */
async function snapshot(dir: string): Promise<FileState[] | null> {
  if (!existsSync(dir)) return null;
  const files: FileState[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const file = path.join(dir, name);
    const st = await stat(file);
    const sha256 = st.isFile() ? createHash('sha256').update(await readFile(file)).digest('hex') : 'not a file';
    files.push({ name, size: st.size, mtimeMs: st.mtimeMs, sha256 });
  }
  return files;
}

/**
 * Exit code 1, nothing on stdout, exactly one stderr line (`walstream: error: …`, no stack trace).
 * Returns that line.
 */
function expectOneLineFailure(result: ToolResult): string {
  expect(result.timedOut, `walstream did not exit; stderr: ${result.stderr}`).toBe(false);
  expect(result.signal).toBeNull();
  expect(result.code, `stderr: ${result.stderr}`).toBe(1);
  expect(result.stdout).toBe('');
  expect(result.stderr).not.toMatch(/^ {4}at /m);
  expect(result.stderr.endsWith('\n')).toBe(true);
  const lines = result.stderr.slice(0, -1).split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  const line = lines[0]!;
  expect(line).toMatch(/^walstream: error: \S/);
  return line;
}

describe('walstream receive: bad input gives one clear line, exit 1, archive untouched', () => {
  /** SCRAM cluster: wsuser/wspass (REPLICATION), norepl/nopass (no REPLICATION); postgres trusted. */
  let clusterX: Cluster;
  /** A second, unrelated cluster. */
  let clusterY: Cluster;
  /** An archive of a few segments (and a .partial) of cluster X; each case works on a copy. */
  let seedArchive: string;

  beforeAll(async () => {
    [clusterX, clusterY] = await Promise.all([startCluster({ segmentSizeMB: 1, scram: true }), startCluster({ segmentSizeMB: 1 })]);
    seedArchive = await tempDir('walstream-err-seed-');
    await clusterX.createSlot('seed');
    await clusterX.generateWal(2.5 * SEGMENT);
    const endpos = await pickEndpos(clusterX);
    const result = await receive(['-D', seedArchive, '-S', 'seed', '-h', clusterX.host, '-p', String(clusterX.port), '-U', 'postgres', '-E', formatLsn(endpos), '-n', '--no-sync']);
    expect(result.code, result.stderr).toBe(0);
    const names = await readdir(seedArchive);
    expect(names.filter((n) => /^[0-9A-F]{24}$/.test(n)).length).toBeGreaterThanOrEqual(2);
    expect(names.filter((n) => n.endsWith('.partial'))).toHaveLength(1);
  });

  afterAll(destroyAll);

  /** A fresh copy of the seed archive, with its snapshot. */
  async function seededCopy(): Promise<{ dir: string; before: FileState[] }> {
    const dir = await tempDir('walstream-err-');
    await cp(seedArchive, dir, { recursive: true, preserveTimestamps: true });
    const before = await snapshot(dir);
    expect(before!.length).toBeGreaterThanOrEqual(3);
    return { dir, before: before! };
  }

  it('(a) closed port with --no-loop: fails fast naming the host and port', async () => {
    const { dir, before } = await seededCopy();
    const port = await freePort();
    const started = Date.now();
    const result = await receive(['-D', dir, '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', '--no-loop'], {}, 30_000);
    const elapsed = Date.now() - started;
    const line = expectOneLineFailure(result);
    console.log(`(a) ${elapsed} ms: ${line}`);
    expect(elapsed).toBeLessThan(20_000);
    expect(line).toContain('127.0.0.1');
    expect(line).toContain(String(port));
    // What to change: check that the server runs there, or fix the host/port given.
    expect(line).toMatch(/is the server running/i);
    expect(line).toMatch(/-h\b.*-p\b/);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('(b) role without REPLICATION: says the role needs the REPLICATION attribute', async () => {
    const { dir, before } = await seededCopy();
    const result = await receive(['-D', dir, '-h', clusterX.host, '-p', String(clusterX.port), '-U', 'norepl'], { PGPASSWORD: 'nopass' });
    const line = expectOneLineFailure(result);
    console.log(`(b) ${line}`);
    expect(line).toMatch(/replication role|REPLICATION attribute/);
    expect(line).toContain('ALTER ROLE');
    expect(line).toMatch(/REPLICATION/);
    expect(result.stderr + result.stdout).not.toContain('nopass');
    expect(await snapshot(dir)).toEqual(before);
  });

  it('(c) wrong password over SCRAM: says authentication failed, never shows the password', async () => {
    const { dir, before } = await seededCopy();
    const viaEnv = await receive(['-D', dir, '-h', clusterX.host, '-p', String(clusterX.port), '-U', 'wsuser'], { PGPASSWORD: WRONG_PASSWORD });
    const line = expectOneLineFailure(viaEnv);
    console.log(`(c) env: ${line}`);
    expect(line).toContain('password authentication failed for user "wsuser"');
    expect(line).toMatch(/check the password/);
    expect(viaEnv.stdout + viaEnv.stderr).not.toContain(WRONG_PASSWORD);

    const viaConninfo = await receive(['-D', dir, '-d', clusterX.connectionStringFor('wsuser', WRONG_PASSWORD)]);
    const line2 = expectOneLineFailure(viaConninfo);
    console.log(`(c) -d: ${line2}`);
    expect(line2).toContain('password authentication failed for user "wsuser"');
    expect(line2).toMatch(/check the password/);
    expect(viaConninfo.stdout + viaConninfo.stderr).not.toContain(WRONG_PASSWORD);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('(c) the right password over SCRAM streams to --endpos and exits 0, via PGPASSWORD and via -d', async () => {
    for (const how of ['env', 'conninfo'] as const) {
      const dir = await tempDir('walstream-err-ok-');
      const endpos = await pickEndpos(clusterX);
      const common = ['-D', dir, '-E', formatLsn(endpos), '-n', '-v', '--no-sync'];
      const result = how === 'env'
        ? await receive([...common, '-h', clusterX.host, '-p', String(clusterX.port), '-U', 'wsuser'], { PGPASSWORD: 'wspass' })
        : await receive([...common, '-d', clusterX.connectionStringFor('wsuser', 'wspass')]);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout + result.stderr).not.toContain('wspass');
      expect(result.stderr).toMatch(/stopped log streaming at/);
      const partial = (await readdir(dir)).filter((n) => n.endsWith('.partial'));
      expect(partial).toHaveLength(1);
      expect(partial[0]!.slice(16, 24)).toBe((endpos / BigInt(SEGMENT)).toString(16).toUpperCase().padStart(8, '0'));
    }
  });

  it('(d) an archive of another cluster: refused before anything is written', async () => {
    const { dir, before } = await seededCopy();
    const [x] = await clusterX.query<{ id: string }>('select system_identifier::text as id from pg_control_system()');
    const [y] = await clusterY.query<{ id: string }>('select system_identifier::text as id from pg_control_system()');
    expect(x!.id).not.toBe(y!.id);
    const result = await receive(['-D', dir, '-h', clusterY.host, '-p', String(clusterY.port), '-U', 'postgres']);
    const line = expectOneLineFailure(result);
    console.log(`(d) ${line}`);
    expect(line).toContain(x!.id);
    expect(line).toContain(y!.id);
    expect(line).toMatch(/use an empty directory/);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('(e) malformed -E: names the value and the expected form', async () => {
    const { dir, before } = await seededCopy();
    const result = await receive(['-D', dir, '-h', clusterX.host, '-p', String(clusterX.port), '-U', 'postgres', '-E', 'nonsense']);
    const line = expectOneLineFailure(result);
    console.log(`(e) ${line}`);
    expect(line).toContain('invalid LSN "nonsense"');
    // What to change: the form an LSN takes.
    expect(line).toMatch(/expected .*hexadecimal.* like 0\/[0-9A-F]+/);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('(f) missing archive directory: says to create it', async () => {
    const missing = '/nonexistent/path';
    expect(existsSync('/nonexistent')).toBe(false);
    const result = await receive(['-D', missing, '-h', clusterX.host, '-p', String(clusterX.port), '-U', 'postgres']);
    const line = expectOneLineFailure(result);
    console.log(`(f) ${line}`);
    expect(line).toContain(`"${missing}"`);
    expect(line).toMatch(/does not exist/);
    expect(line).toMatch(/create it|mkdir/);
    expect(existsSync('/nonexistent')).toBe(false);
  });

  it('(g) -w and the server asks for a password: exits 1 at once, no retrying', async () => {
    const { dir, before } = await seededCopy();
    const started = Date.now();
    const result = await receive(['-D', dir, '-h', clusterX.host, '-p', String(clusterX.port), '-U', 'wsuser', '-w'], {}, 20_000);
    const elapsed = Date.now() - started;
    const line = expectOneLineFailure(result);
    console.log(`(g) ${elapsed} ms: ${line}`);
    expect(elapsed).toBeLessThan(10_000);
    expect(line).toMatch(/asked for a password, but none was supplied/);
    expect(line).toMatch(/PGPASSWORD/);
    expect(await snapshot(dir)).toEqual(before);
  });

  it('(h) pg_receivewal\'s conflicts: --synchronous with --no-sync, --create-slot with --drop-slot', async () => {
    const { dir, before } = await seededCopy();
    const server = ['-h', clusterX.host, '-p', String(clusterX.port), '-U', 'postgres'];
    const sync = await receive(['-D', dir, ...server, '--synchronous', '--no-sync'], {}, 15_000);
    expect(expectOneLineFailure(sync)).toBe('walstream: error: cannot use --synchronous together with --no-sync. Try "walstream receive --help" for more information.');
    const slots = await receive(['-D', dir, ...server, '-S', 'x', '--create-slot', '--drop-slot'], {}, 15_000);
    expect(expectOneLineFailure(slots)).toMatch(/cannot use --create-slot together with --drop-slot/);
    expect(await snapshot(dir)).toEqual(before);
  });
});
