/**
 * Measuring one child process: wall time (spawn to exit, start-up included), CPU seconds and peak RSS.
 *
 * CPU: the difference of our own cutime+cstime (/proc/self/stat) across the child's life. The kernel
 * adds a child's whole user+system time (all its threads) to its parent's cutime/cstime when the
 * parent reaps it, so this is exact to a clock tick, provided no other child of ours exits meanwhile
 * (the catch-up runs start one process at a time). For a child running alongside others (the lag and
 * sync sections run pgbench next to it) use the polled value: utime+stime from /proc/PID/stat.
 *
 * Peak RSS: VmHWM from /proc/PID/status, polled every `pollMs`. VmHWM is the kernel's high-water mark,
 * so the last reading before exit is the peak up to that moment (no need to catch the peak itself).
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

let clockTicks;

/** sysconf(_SC_CLK_TCK), normally 100. */
export function clkTck() {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

function statFields(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)": field 3 (state) is index 0, so field n is index n - 3.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** Our reaped children's CPU seconds so far (cutime + cstime). */
export function childrenCpuSeconds() {
  const f = statFields('self');
  return (Number(f[13]) + Number(f[14])) / clkTck();
}

/** A process's { user, system } CPU seconds so far, or undefined once it is gone. */
export function processCpuSplit(pid) {
  try {
    const f = statFields(pid);
    return { user: Number(f[11]) / clkTck(), system: Number(f[12]) / clkTck() };
  } catch {
    return undefined;
  }
}

/** VmHWM (peak resident set) in KiB, or undefined once the process is gone. */
export function peakRssKiB(pid) {
  try {
    const m = /VmHWM:\s+(\d+)\s*kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** write_bytes from /proc/PID/io: bytes the process sent (or dirtied for) the storage layer. */
export function writeBytes(pid) {
  try {
    const m = /write_bytes:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Start `file args` and watch it. Returns { child, done, stop } where `done` resolves to
 * { code, signal, wallSeconds, cpuSeconds, cpuPolledSeconds, userSeconds, systemSeconds, peakRssKiB, stdout,
 * stderr, timedOut } (the polled user/system split lags the exact cpuSeconds by up to one poll).
 * `cpuSeconds` is the exact reaped value (see above); only trust it when nothing else of ours exited
 * meanwhile. `stop(signal)` sends a signal (default SIGINT) and resolves with `done`.
 */
export function watchProcess(file, args, { env, timeoutMs = 600_000, pollMs = 20 } = {}) {
  const cpuBefore = childrenCpuSeconds();
  const started = performance.now();
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s) => (stderr += s));
  let peak = 0;
  let written = 0;
  let cpuPolled = 0;
  let split = { user: 0, system: 0 };
  const poll = () => {
    const rss = peakRssKiB(child.pid);
    if (rss !== undefined && rss > peak) peak = rss;
    const w = writeBytes(child.pid);
    if (w !== undefined && w > written) written = w;
    const cpu = processCpuSplit(child.pid);
    if (cpu !== undefined && cpu.user + cpu.system >= cpuPolled) {
      cpuPolled = cpu.user + cpu.system;
      split = cpu;
    }
  };
  const poller = setInterval(poll, pollMs);
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
  const exited = new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      const wallSeconds = (performance.now() - started) / 1000;
      clearInterval(poller);
      clearTimeout(timer);
      resolve({ code, signal, wallSeconds, cpuSeconds: childrenCpuSeconds() - cpuBefore });
    });
  });
  // 'close' (after 'exit') means stdout/stderr are fully read.
  const closed = new Promise((resolve) => child.once('close', resolve));
  const done = Promise.all([exited, closed]).then(([result]) => ({
    ...result, cpuPolledSeconds: cpuPolled, userSeconds: split.user, systemSeconds: split.system, peakRssKiB: peak || undefined, writeBytes: written || undefined, stdout, stderr, timedOut,
  }));
  return {
    child,
    done,
    /** The latest polled numbers while it runs. */
    sample: () => { poll(); return { cpuPolledSeconds: cpuPolled, userSeconds: split.user, systemSeconds: split.system, peakRssKiB: peak || undefined }; },
    stop: (signal = 'SIGINT') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return done;
    },
  };
}
