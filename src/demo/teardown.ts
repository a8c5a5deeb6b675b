/**
 * Everything the demo started, and stopping it: on success, failure, Ctrl-C or SIGTERM. Servers are
 * stopped with pg_ctl stop -m immediate (their data is throwaway); a process exit that skips the
 * asynchronous path (an uncaught error) still sends each postmaster SIGQUIT from the 'exit' hook.
 */
import type { DemoCluster } from './cluster.js';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class Teardown {
  private readonly clusters: DemoCluster[] = [];
  private readonly stoppers: (() => Promise<void>)[] = [];
  private readonly exitHook = () => this.quitSync();

  constructor() {
    process.on('exit', this.exitHook);
  }

  /** Register a cluster before its first start. */
  cluster(cluster: DemoCluster): DemoCluster {
    this.clusters.push(cluster);
    return cluster;
  }

  /** Register something else to stop first (the archiver), as a function that resolves once it has. */
  onStop(stop: () => Promise<void>): void {
    this.stoppers.push(stop);
  }

  /**
   * Stop every registered thing, the archiver first, then each started cluster (waiting up to 2 s for
   * a postmaster whose pg_ctl start was interrupted to write its pid file). Resolves the number of
   * servers it stopped. Never rejects.
   */
  async stopAll(): Promise<number> {
    for (const stop of this.stoppers.splice(0)) await stop().catch(() => undefined);
    let stopped = 0;
    for (const cluster of this.clusters) {
      if (!cluster.started) continue;
      for (let waited = 0; cluster.postmasterPid() === undefined && waited < 2000; waited += 100) await pause(100);
      const pid = cluster.postmasterPid();
      if (pid === undefined || !alive(pid)) continue;
      await cluster.stop('immediate').catch(() => quit(pid, 'SIGKILL'));
      cluster.started = false;
      stopped++;
    }
    process.off('exit', this.exitHook);
    return stopped;
  }

  /**
   * Last resort at process exit: SIGQUIT (immediate shutdown) to every postmaster still running,
   * waiting up to 3 s for the pid file of one whose pg_ctl start is still under way.
   */
  private quitSync(): void {
    const sleep = new Int32Array(new SharedArrayBuffer(4));
    for (const cluster of this.clusters) {
      if (!cluster.started) continue;
      for (let waited = 0; cluster.postmasterPid() === undefined && waited < 3000; waited += 50) Atomics.wait(sleep, 0, 0, 50);
      const pid = cluster.postmasterPid();
      if (pid !== undefined) quit(pid, 'SIGQUIT');
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function quit(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
