/**
 * Cleanup registry for the integration-test harness: everything a test starts (clusters, tools, temp
 * dirs) is tracked here, torn down by destroyAll(), and killed best-effort at process exit so nothing
 * outlives the test process. Also the /proc helpers that teardown needs.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

// ---------------------------------------------------------------------------------------------
// Processes we do not own (the postmaster is reparented away from us by pg_ctl)

const hasProc = existsSync('/proc/self/stat');

/** True if `pid` is a live process; zombies count as dead (shared with the bench: scripts/pg-local.mjs). */
export { pidAlive } from '../../scripts/pg-local.mjs';

/** Live direct children of `pid` (Linux /proc only; empty elsewhere). */
export function childPids(pid: number): number[] {
  if (!hasProc) return [];
  const result: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === pid && fields[0] !== 'Z') result.push(Number(entry));
    } catch {
      // Process exited while we looked.
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Cleanup registry

/** Something the harness must tear down: asynchronously in destroyAll(), best-effort synchronously at exit. */
export interface Resource {
  destroy(): Promise<void>;
  destroySync(): void;
}

const resources: Resource[] = [];

/** Register a resource for destroyAll() and exit-time cleanup. */
export function track(resource: Resource): void {
  if (!resources.includes(resource)) resources.push(resource);
}

/** Forget a resource (its own destroy() calls this). */
export function untrack(resource: Resource): void {
  const i = resources.indexOf(resource);
  if (i >= 0) resources.splice(i, 1);
}

/**
 * Tear down everything the harness created (clusters, spawned tools, temp dirs), newest first, so a
 * standby goes before its primary and a tool before the cluster it streams from. Tries every resource,
 * then throws an AggregateError if any teardown failed. Call it from afterAll().
 */
export async function destroyAll(): Promise<void> {
  const errors: unknown[] = [];
  while (resources.length > 0) {
    const resource = resources.pop()!;
    try {
      await resource.destroy();
    } catch (err) {
      errors.push(err);
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, `destroyAll: ${errors.length} teardown(s) failed`);
}

function destroyAllSync(): void {
  while (resources.length > 0) {
    try {
      resources.pop()!.destroySync();
    } catch {
      // Best effort: we are exiting.
    }
  }
}

// No cluster may outlive the test process, even if afterAll never ran.
process.on('exit', destroyAllSync);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  const onSignal = () => {
    destroyAllSync();
    process.removeListener(signal, onSignal);
    // Keep the default behaviour (die by the signal) unless someone else handles it.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.on(signal, onSignal);
}

// ---------------------------------------------------------------------------------------------
// Test TCP servers (the fault proxy, the fake PostgreSQL)

/** The close/destroy of a test TCP server, tracked for cleanup until closed. */
export interface ServerLifecycle extends Resource {
  /** Stop accepting, destroy every open socket; resolves once the server has closed. Idempotent, never waits for a peer. */
  close(): Promise<void>;
  /** Whether close has begun (a connection accepted now is to be destroyed at once). */
  readonly closing: boolean;
}

/** Lifecycle of `server`, whose open sockets `destroySockets` ends; registered with track() now. */
export function serverLifecycle(server: { close(callback?: () => void): unknown }, destroySockets: () => void): ServerLifecycle {
  let closing: Promise<void> | undefined;
  const life: ServerLifecycle = {
    get closing() {
      return closing !== undefined;
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        untrack(life);
        // close() stops accepting; its callback runs once every server-side socket has closed.
        server.close(() => resolve());
        destroySockets();
      });
      return closing;
    },
    destroy() {
      return life.close();
    },
    destroySync() {
      untrack(life);
      destroySockets();
      if (!closing) {
        closing = Promise.resolve();
        server.close();
      }
    },
  };
  track(life);
  return life;
}
