#!/usr/bin/env node
/**
 * walstream's entry point. `restore` runs once per segment during recovery, so it is dispatched before
 * anything else is loaded (no commander, no pg, no streaming code); every other command goes through
 * the full program.
 */
const args = process.argv.slice(2);
if (args[0] === 'restore') {
  const { restoreMain } = await import('./restore.js');
  process.exitCode = await restoreMain(args.slice(1));
} else {
  const { runProgram } = await import('./program.js');
  process.exitCode = await runProgram(process.argv);
}
