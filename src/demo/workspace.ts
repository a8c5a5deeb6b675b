/**
 * The demo directory: made (or reused when empty, or when an earlier demo left it), owned by the server
 * user, and removed at the end unless kept. A marker file tells an earlier demo's directory from
 * anyone else's, which is never touched.
 */
import { existsSync, readFileSync } from 'node:fs';
import { chown, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { DemoError, type ServerUser } from './pg-tools.js';

const MARKER = '.walstream-demo';

export interface Workspace {
  dir: string;
  /** Whether the demo made the directory itself (then it removes the directory, else only its contents). */
  created: boolean;
}

/** Whether some data directory under `dir` has a postmaster.pid whose process is alive. */
async function serverRunningIn(dir: string): Promise<boolean> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const pidFile = path.join(dir, entry.name, 'postmaster.pid');
    if (!entry.isDirectory() || !existsSync(pidFile)) continue;
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8').split('\n')[0]), 0);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EPERM') return true;
    }
  }
  return false;
}

/**
 * Make `dir` ready: created when absent; an empty one is used; an earlier demo's (marker present, no
 * server running in it) is emptied; anything else is refused with a DemoError. Owned by `user` when given.
 */
export async function prepareWorkspace(dir: string, user: ServerUser | undefined): Promise<Workspace> {
  const absolute = path.resolve(dir);
  let created = false;
  if (!existsSync(absolute)) {
    await mkdir(absolute, { recursive: true });
    created = true;
  } else {
    const entries = await readdir(absolute);
    if (entries.length > 0 && !entries.includes(MARKER)) {
      throw new DemoError(`${absolute} is not empty and not an earlier demo's directory: choose another --dir`);
    }
    if (await serverRunningIn(absolute)) {
      throw new DemoError(`${absolute} holds a server that may still be running (a postmaster.pid): stop it (pg_ctl -D ${absolute}/NAME stop) or remove the directory`);
    }
    for (const entry of entries) await rm(path.join(absolute, entry), { recursive: true, force: true });
  }
  await writeFile(path.join(absolute, MARKER), 'made by walstream demo; removed at its end unless --keep\n');
  if (user) await chown(absolute, user.uid, user.gid);
  return { dir: absolute, created };
}

/** Remove what the demo made: the directory itself when it made it, else its contents. */
export async function removeWorkspace(ws: Workspace): Promise<void> {
  if (ws.created) return rm(ws.dir, { recursive: true, force: true });
  for (const entry of await readdir(ws.dir)) await rm(path.join(ws.dir, entry), { recursive: true, force: true });
}

/** Give `target` and everything under it to `user` (the archive, written by us, read by restore_command). */
export async function chownTree(target: string, user: ServerUser): Promise<void> {
  await chown(target, user.uid, user.gid);
  for (const entry of await readdir(target, { withFileTypes: true })) {
    const child = path.join(target, entry.name);
    if (entry.isDirectory()) await chownTree(child, user);
    else await chown(child, user.uid, user.gid);
  }
}
