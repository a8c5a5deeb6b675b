/**
 * Entry point of the prefetch helper process. Its exit code is nobody's business (nobody waits for
 * it); it exits 0 whichever way it stops. Started two ways:
 * - by a `walstream restore` call (helper-process.ts startPrefetchHelper): one JSON argument, detached,
 *   working directory /;
 * - by bin/walstream-restore when no helper serves the archive, so that neither the call nor recovery
 *   waits for a Node start-up: `prefetch-main.js --from-sh after|serve WALFILE ARCHIVE SPOOL PREFETCH IDLE`
 *   with the restore call's own arguments as given (PREFETCH and IDLE empty for the defaults) and the data
 *   directory as working directory. `after`: the script copied the plain WALFILE itself, prefetching
 *   starts after it; `serve`: WALFILE is archived compressed only, the helper spools it first (the script
 *   waits for it). See shArgs.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { decodeHelperArgs } from './helper-process.js';
import { runPrefetch, type PrefetchOptions } from './prefetch.js';
import { depthInSegments, parsePrefetchDepth } from './prefetch-call.js';
import { spoolProblem } from './spool.js';

process.title = 'walstream-prefetch';
try {
  const options = process.argv[2] === '--from-sh' ? await shArgs(process.argv.slice(3)) : decodeHelperArgs(process.argv.slice(2));
  if (options) await runPrefetch(options);
} catch {
  process.exitCode = 0; // best effort: a restore call without a helper reads the archive itself
}

/**
 * Options from bin/walstream-restore's arguments, resolved against the data directory (the working
 * directory), which the helper then leaves for /; null when they do not allow prefetching (the script
 * falls back to `walstream restore`, which says why).
 */
async function shArgs([mode, walFile, archive, spool, prefetch, idle]: string[]): Promise<PrefetchOptions | null> {
  if ((mode !== 'after' && mode !== 'serve') || !walFile || !archive || !spool) return null;
  const spoolDir = resolve(spool);
  if (spoolProblem(spoolDir)) return null;
  const depthSpec = prefetch ? parsePrefetchDepth(prefetch) : undefined;
  const idleSeconds = idle ? Number(idle) : 30;
  if (depthSpec === null || !(idleSeconds > 0)) return null;
  const archiveDir = resolve(archive);
  process.chdir('/'); // never hold the data directory
  // `after`: the plain segment's size is the segment size; `serve`: the helper reads it from the archive.
  const segmentSize = mode === 'after' ? (await stat(resolve(archiveDir, walFile))).size : 0;
  return {
    archiveDir,
    archiveArg: archive,
    spoolDir,
    restored: walFile,
    serveRestored: mode === 'serve',
    segmentSize,
    depth: segmentSize > 0 ? depthInSegments(depthSpec, segmentSize) : 1,
    ...(depthSpec ? { depthSpec } : {}),
    idleMs: idleSeconds * 1000,
  };
}
