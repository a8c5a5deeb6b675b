/**
 * A small tmpfs mounted for one test: a real filesystem that really fills up (ENOSPC), unmounted by
 * destroyAll() or at exit. Mounting needs root; `tmpfsUnavailable()` says why it cannot be used.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { track, untrack, type Resource } from './cleanup.js';

/** Why a tmpfs cannot be mounted here (not root, no mount permission), or null when it can. */
export function tmpfsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const probe = mkdtempSync(path.join(os.tmpdir(), 'walstream-tmpfs-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return null;
  } catch (err) {
    return `mount -t tmpfs failed: ${(err as Error).message}`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

/** Mount a tmpfs of `bytes` (rounded up to pages) on a new temp directory; returns its path. */
export function mountTmpfs(bytes: number): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'walstream-tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0755`, 'tmpfs', dir]);
  const unmount = () => {
    untrack(resource);
    try {
      execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
    } catch {
      // Already unmounted.
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const resource: Resource = { destroy: async () => unmount(), destroySync: unmount };
  track(resource);
  return dir;
}
