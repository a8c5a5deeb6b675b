/**
 * Starting the prefetch helper (prefetch.ts) as its own process: detached from the restore call that
 * starts it (its own session, no stdio, working directory / so that it never holds the data directory,
 * not waited for), so the call exits at once and PostgreSQL, which waits only for the command it ran,
 * never waits for the helper.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { PrefetchOptions } from './prefetch.js';

/** The helper's entry script, beside this module in dist/ (absent when running from the TypeScript sources). */
const HELPER_MAIN = fileURLToPath(new URL('./prefetch-main.js', import.meta.url));

/** The options a helper is started with; the rest are PrefetchOptions' defaults. */
export type HelperArgs = Omit<PrefetchOptions, 'pollMs'>;

/** Encode helper options as argv (one JSON argument: paths may hold any character). */
export function encodeHelperArgs(args: HelperArgs): string[] {
  return [JSON.stringify(args)];
}

/** Decode argv made by encodeHelperArgs; throws on anything else. */
export function decodeHelperArgs(argv: string[]): HelperArgs {
  const args = JSON.parse(argv[0] ?? '') as HelperArgs;
  for (const key of ['archiveDir', 'archiveArg', 'spoolDir', 'restored'] as const) if (typeof args[key] !== 'string') throw new Error(`helper argument ${key} missing`);
  for (const key of ['segmentSize', 'depth', 'idleMs'] as const) if (!Number.isFinite(args[key])) throw new Error(`helper argument ${key} missing`);
  return args;
}

/**
 * Start a helper for `args` and return its pid without waiting for it; null when the helper script is
 * not there (running from sources). A helper finding another one live on the same spool exits by itself.
 */
export function startPrefetchHelper(args: HelperArgs): number | null {
  if (!existsSync(HELPER_MAIN)) return null;
  const child = spawn(process.execPath, [HELPER_MAIN, ...encodeHelperArgs(args)], { detached: true, stdio: 'ignore', cwd: '/' });
  child.on('error', () => undefined);
  child.unref();
  return child.pid ?? null;
}
