/**
 * The commander program: one module per command, each a thin layer over the library. This is the one
 * error boundary: library errors become one stderr line and exit code 1, never a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { formatError } from './format-error.js';
import { packageVersion } from './version.js';


/**
 * Each command's module, loaded only when needed: `walstream verify` (or status, cleanup) need not
 * load pg, prom-client and the streaming code, which is a fifth of a short command's time.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  receive: async () => (await import('./receive.js')).receiveCommand(),
  cleanup: async () => (await import('./cleanup.js')).cleanupCommand(),
  bench: async () => (await import('./bench.js')).benchCommand(),
  verify: async () => (await import('./verify.js')).verifyCommand(),
  status: async () => (await import('./status.js')).statusCommand(),
  demo: async () => (await import('./demo.js')).demoCommand(),
};

/** Build the CLI: the command `argv` names, or every command (help, an unknown command). */
async function buildProgram(argv: string[]): Promise<Command> {
  const program = new Command('walstream')
    .description('Stream PostgreSQL WAL into a durable archive over the replication protocol (a pg_receivewal replacement).')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .addHelpText('after', `
Commands at a glance:
  walstream receive -D /archive -d "host=primary user=repl" -S walstream
      archive WAL continuously (restart-safe; resumes from the archive)
  restore_command = 'walstream restore %f %p -D /archive'
      feed recovery from the archive (exit 0 found, 1 absent)
  archive_cleanup_command = 'walstream cleanup -D /archive %r'
      remove segments older than the restart point`);
  const named = argv[2] !== undefined && Object.hasOwn(COMMANDS, argv[2]) ? [argv[2]] : Object.keys(COMMANDS);
  for (const name of named) program.addCommand(await COMMANDS[name]!());
  program.command('restore').description('copy WALFILE from the archive to DEST for restore_command (walstream restore WALFILE DEST -D ARCHIVE)').allowUnknownOption().argument('WALFILE').argument('DEST');
  // Usage errors (an unknown option, a bad value) read like every other error: one line, the same prefix
  // and pg_receivewal's pointer to the help (verify and cleanup word their own).
  for (const command of [program, ...program.commands.filter((c) => !['verify', 'cleanup'].includes(c.name()))]) {
    const name = command === program ? 'walstream' : `walstream ${command.name()}`;
    command.configureOutput({ outputError: (text, write) => write(`walstream: ${text.trimEnd()}. Try "${name} --help" for more information.\n`) });
  }
  return program;
}

/** Run the CLI with process.argv-style arguments; resolves to the exit code. */
export async function runProgram(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
  program.exitOverride();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 1;
    process.stderr.write(`walstream: error: ${formatError(err)}\n`);
    return 1;
  }
}
