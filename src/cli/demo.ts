/**
 * `walstream demo [--dir DIR] [--mb N] [--keep]`: the whole story on throwaway local servers (see
 * src/demo/run-demo.ts). Ctrl-C or SIGTERM stops every process it started and says where the files are.
 */
import { Command, InvalidArgumentError } from 'commander';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DemoError, runDemo, summaryText } from '../demo/run-demo.js';
import { formatError } from './format-error.js';

interface DemoFlags {
  dir: string;
  mb: number;
  keep?: boolean;
}

function positiveInt(text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('give a positive whole number of MiB');
  return n;
}

async function demo(flags: DemoFlags): Promise<void> {
  const abort = new AbortController();
  let interrupted: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return void process.stdout.write('still stopping what the demo started...\n');
    interrupted = sig;
    process.stdout.write(`\n${sig}: stopping every process the demo started...\n`);
    abort.abort(new DemoError(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // Output closed under us (`walstream demo | head`): stop everything as for Ctrl-C, quietly.
  let outputClosed = false;
  const onOutputError = () => {
    outputClosed = true;
    if (!abort.signal.aborted) abort.abort(new DemoError('the output was closed'));
  };
  process.stdout.on('error', onOutputError);
  try {
    const figures = await runDemo({
      dir: flags.dir, mb: flags.mb, keep: Boolean(flags.keep), signal: abort.signal,
      cli: fileURLToPath(new URL('./main.js', import.meta.url)),
      say: (line) => void (outputClosed || process.stdout.write(line + '\n')),
    });
    if (!outputClosed) process.stdout.write(summaryText(figures) + '\n');
  } catch (err) {
    const message = interrupted ? `interrupted by ${interrupted}: every process the demo started is stopped` : formatError(err);
    process.stderr.write(`walstream demo: ${message}\n`);
    if (existsSync(flags.dir)) {
      process.stderr.write(`walstream demo: the files are in ${flags.dir} (server logs: NAME.log there); remove them with rm -rf ${flags.dir}\n`);
    }
    process.exitCode = interrupted === 'SIGINT' ? 130 : interrupted === 'SIGTERM' ? 143 : 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.stdout.off('error', onOutputError);
  }
}

/** The `demo` command definition. */
export function demoCommand(): Command {
  return new Command('demo')
    .description('see walstream work on throwaway local servers: archive under load, follow a failover, verify, restore (under a minute)')
    .option('--dir <DIR>', 'where the servers and the archive go (removed at the end unless --keep)', './walstream-demo')
    .option('--mb <N>', 'MiB of WAL the built-in load writes', positiveInt, 200)
    .option('--keep', 'keep the directory (servers stopped) after a successful run')
    .action(demo);
}
