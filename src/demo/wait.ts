/** Polling for the demo: a condition, a deadline, and the demo's abort signal. */
import { DemoError } from './pg-tools.js';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Poll `check` every 100 ms until it returns true. Errors it throws count as "not yet" (a server still
 * starting), except a DemoError, which is final. Rejects with `timed out waiting for WHAT` after `timeoutMs`, or with the signal's reason
 * once `signal` is aborted.
 */
export async function waitUntil(what: string, check: () => Promise<boolean> | boolean, signal: AbortSignal, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    signal.throwIfAborted();
    try {
      if (await check()) return;
    } catch (err) {
      if (err instanceof DemoError) throw err;
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? ` (${last.message})` : ''}`);
    await pause(100);
  }
}
