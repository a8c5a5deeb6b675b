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
  // V8 grows the young generation from 1 MiB semispaces to 8 MiB ones (16 MiB resident) within a
  // second of catching up, though what survives a scavenge there is a few KiB: a quarter of the
  // 64 MiB peak RSS budget of issue #19. Kept at 1 MiB (set before the modules load, which is what
  // grows it first), scavenges come more often and each stays as short; measured 72 -> 66 MiB.
  const v8 = await import('node:v8');
  v8.setFlagsFromString('--semi-space-growth-factor=1');
}
if (args[0] === 'restore') {
  const { restoreMain } = await import('./restore.js');
  process.exitCode = await restoreMain(args.slice(1));
} else {
  const { runProgram } = await import('./program.js');
  process.exitCode = await runProgram(process.argv);
}
