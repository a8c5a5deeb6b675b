/**
 * Entry point of the prefetch helper process, started by helper-process.ts startPrefetchHelper. Its
 * exit code is nobody's business (nobody waits for it); it exits 0 whichever way it stops.
 */
import { decodeHelperArgs } from './helper-process.js';
import { runPrefetch } from './prefetch.js';

process.title = 'walstream-prefetch';
try {
  await runPrefetch(decodeHelperArgs(process.argv.slice(2)));
} catch {
  process.exitCode = 0; // best effort: a restore call without a helper reads the archive itself
}
