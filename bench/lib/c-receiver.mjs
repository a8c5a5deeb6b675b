/**
 * Builds bench/c-receiver.c (the wire ceiling: libpq physical replication into nothing, or into segment
 * files written as walstream writes them: the durable ceiling) once per bench run, into a temp dir that
 * goes at exit. A measuring instrument of the bench, never part of the package.
 *
 * buildCReceiver() → { path, command, compiler, includeDir } or { path: null, reason } when there is no
 * C compiler ($CC or cc), no libpq-fe.h, no libpq to link, or the build fails otherwise.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SOURCE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'c-receiver.c');

function pgConfig(flag) {
  try {
    return execFileSync('pg_config', [flag], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || null;
  } catch {
    return null;
  }
}

export function buildCReceiver() {
  const cc = process.env.CC || 'cc';
  const version = spawnSync(cc, ['--version'], { encoding: 'utf8' });
  if (version.error) return { path: null, reason: `no C compiler (${cc}: ${version.error.code ?? version.error.message})` };
  const includeDir = pgConfig('--includedir') ?? '/usr/include/postgresql';
  if (!existsSync(path.join(includeDir, 'libpq-fe.h'))) {
    return { path: null, reason: `libpq-fe.h not found in ${includeDir} (install libpq-dev / postgresql-devel)` };
  }
  const libDir = pgConfig('--libdir');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'walstream-bench-c-receiver-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'c-receiver');
  const args = ['-O2', '-pthread', '-o', out, SOURCE, `-I${includeDir}`, ...(libDir ? [`-L${libDir}`] : []), '-lpq', '-lrt'];
  const built = spawnSync(cc, args, { encoding: 'utf8' });
  if (built.error || built.status !== 0) {
    const text = `${built.error?.message ?? ''}${built.stderr ?? ''}`.trim();
    const reason = /-lpq|lpq:/.test(text) ? 'libpq not found by the linker (-lpq)' : `${cc} failed: ${text.split('\n').slice(0, 3).join(' / ')}`;
    return { path: null, reason };
  }
  return { path: out, command: [cc, ...args].join(' '), compiler: version.stdout.split('\n')[0].trim(), includeDir };
}
