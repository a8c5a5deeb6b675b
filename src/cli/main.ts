#!/usr/bin/env node
/**
 * walstream's entry point. `restore` runs once per segment during recovery, so it is dispatched before
 * anything else is loaded (no commander, no pg, no streaming code); every other command goes through
 * the full program.
 */
// Output piped into `head` (or any reader that goes away): stop quietly, as other command-line tools do.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => { if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0); else throw err; });
}
const args = process.argv.slice(2);
if (args[0] === 'receive') {
  // Peak RSS while catching up (issue #19; README "peak RSS under 64 MiB"): V8 grows the young
  // generation to several MiB resident within a second though a scavenge keeps a few KiB, so it stays
  // at its first size (set before the modules load, which is what grows it first); and TurboFan's
  // inlining, for a hot path of a few short functions, costs megabytes of compiler zones and code.
  const v8 = await import('node:v8');
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  v8.setFlagsFromString('--no-turbo-inlining');
}
if (args[0] === 'restore') {
  const { restoreMain } = await import('./restore.js');
  process.exitCode = await restoreMain(args.slice(1));
} else {
  const { runProgram } = await import('./program.js');
  process.exitCode = await runProgram(process.argv);
}
