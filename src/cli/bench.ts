/**
 * `walstream bench`: how fast walstream receives WAL from your own server. It streams up to --bytes
 * from the slot's restart_lsn (or, without a slot, from the start of the server's current segment)
 * into a null sink (WalReceiver, every chunk discarded) or into an archive directory (the Archiver,
 * exactly what `walstream receive` runs), then prints bytes, seconds, MiB/s, CPU and peak RSS.
 *
 * It measures catch-up of WAL the server has retained (a slot that has fallen behind) at full speed;
 * once it reaches the server's current position it follows live WAL, and the rate is then your
 * server's WAL rate, not walstream's. The repository's bench/run.mjs runs the full comparison with
 * pg_receivewal on a throwaway server.
 */
import { mkdtempSync, readdirSync, rmSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ProgressLine, formatBytes } from './progress.js';
import { Command, Option } from 'commander';
import { Archiver } from '../archiver.js';
import { checkServer } from '../server-check.js';
import { WalReceiver } from '../receiver.js';
import { type ConnectionOptions, resolveTargets } from '../conninfo.js';
import { ReplicationConnection } from '../connection.js';
import { WalstreamError } from '../errors.js';
import { formatLsn, segmentStart } from '../lsn.js';
import { parseByteSize } from '../units.js';

interface BenchFlags {
  dbname?: string;
  host?: string;
  port?: string;
  username?: string;
  slot?: string;
  bytes: string;
  sink: 'null' | 'dir';
  directory?: string;
  sync: boolean;
  json?: boolean;
  progress: boolean;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const APPLICATION_NAME = 'walstream_bench';

interface StartPoint {
  startLsn: bigint;
  timeline: number;
  serverLsn: bigint;
  segmentSize: number;
}

/** Where the stream will start: the slot's restart_lsn (PG ≥ 15) or the server's position, rounded down to a segment. */
async function startPoint(conn: ReplicationConnection, slot: string | undefined): Promise<StartPoint> {
  const { version, identity, segmentSize } = await checkServer(conn);
  let lsn = identity.xlogPos;
  let timeline = identity.timeline;
  if (slot) {
    if (version < 150000) {
      process.stderr.write(`walstream bench: the server is older than PostgreSQL 15 (no READ_REPLICATION_SLOT): starting at its current position, not at slot "${slot}"'s\n`);
    } else {
      const position = await conn.readSlot(slot);
      if (position.slotType === null) {
        throw new WalstreamError('BAD_OPTION', `replication slot "${slot}" does not exist: create one for the benchmark (walstream receive --create-slot -S ${slot} -d ...) and let WAL accumulate behind it`);
      }
      if (position.slotType !== 'physical') {
        throw new WalstreamError('BAD_OPTION', `replication slot "${slot}" is ${position.slotType}, not physical; use a physical slot`);
      }
      if (position.restartLsn === null) {
        throw new WalstreamError('BAD_OPTION', `replication slot "${slot}" has not reserved WAL yet (no restart_lsn); create it with --create-slot (which reserves WAL) or stream from it once`);
      }
      lsn = position.restartLsn;
      timeline = position.restartTimeline ?? timeline;
    }
  }
  return { startLsn: segmentStart(lsn, segmentSize), timeline, serverLsn: identity.xlogPos, segmentSize };
}

/** A directory for --sink dir: the given one (created if missing, must be empty), or a temporary one removed afterwards. */
function archiveDirectory(flags: BenchFlags): { dir: string; temporary: boolean } {
  if (!flags.directory) return { dir: mkdtempSync(path.join(os.tmpdir(), 'walstream-bench-')), temporary: true };
  mkdirSync(flags.directory, { recursive: true });
  if (readdirSync(flags.directory).length > 0) {
    throw new WalstreamError('BAD_OPTION', `archive directory "${flags.directory}" is not empty: the benchmark needs an empty directory (or no -D, for a temporary one)`);
  }
  return { dir: flags.directory, temporary: false };
}

async function bench(flags: BenchFlags): Promise<void> {
  const bytes = parseByteSize(flags.bytes, '--bytes');
  if (flags.sink === 'null' && flags.directory) throw new WalstreamError('BAD_OPTION', '-D/--directory needs --sink dir');
  const connection: ConnectionOptions = { connectionString: flags.dbname, host: flags.host, port: flags.port, user: flags.username };
  const targets = resolveTargets(connection, process.env, APPLICATION_NAME);

  // Checked (and a temporary one made) before connecting: bad input fails before anything is printed.
  const archive: { dir: string; temporary: boolean } | null = flags.sink === 'dir' ? archiveDirectory(flags) : null;
  let progress: ProgressLine | null = null;
  let control: ReplicationConnection | null = null;
  try {
    // A side connection: finds the start, and tells the server's position for the progress line.
    const side = await ReplicationConnection.openFirst(targets);
    control = side;
    const start = await startPoint(side, flags.slot);
    const endLsn = start.startLsn + BigInt(bytes);
    let serverLsn = start.serverLsn;
    const available = serverLsn > start.startLsn ? Number(serverLsn - start.startLsn) : 0;
    process.stderr.write(`walstream bench: ${formatBytes(bytes)} from ${formatLsn(start.startLsn)} (${flags.slot ? `slot "${flags.slot}"` : 'the server\'s current segment'}, timeline ${start.timeline}) into ${flags.sink === 'null' ? 'a null sink' : `a directory${flags.sync ? '' : ' (--no-sync)'}`}; ` +
      `${formatBytes(available)} already written on the server${available < bytes ? ': the rest is live WAL, received as fast as the server writes it' : ''}\n`);

    let position = start.startLsn;
    let polling = false;
    const poller = setInterval(() => {
      if (polling) return;
      polling = true;
      side.identifySystem().then((id) => { serverLsn = id.xlogPos; }, () => {}).finally(() => { polling = false; });
    }, 1000);
    poller.unref();
    progress = new ProgressLine(flags.progress, () => position, (rate) => {
      const behind = serverLsn - position;
      return `  ${formatLsn(position)}  ${formatBytes(Number(position - start.startLsn))} of ${formatBytes(bytes)}  ${rate}  ` +
        (behind > 0n ? `${formatBytes(Number(behind))} behind the server` : 'at the server\'s position');
    });

    let stopRequested = false;
    let stop: () => void = () => { stopRequested = true; };
    const onSignal = () => stop();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    progress.begin();
    try {
      if (flags.sink === 'null') {
        // Nothing is stored, so nothing is acknowledged: the slot (if any) stays where it is and the
        // benchmark can be run again over the same retained WAL.
        const receiver = new WalReceiver({
          connection, slot: flags.slot, startLsn: start.startLsn, timeline: start.timeline, endLsn,
          applicationName: APPLICATION_NAME,
        });
        stop = () => { void receiver.close(); };
        if (stopRequested) stop();
        for await (const chunk of receiver) position = chunk.startLsn + BigInt(chunk.data.length);
      } else {
        const archiver = new Archiver({
          connection, directory: archive!.dir, slot: flags.slot, endLsn, noSync: !flags.sync,
          loop: false, applicationName: APPLICATION_NAME,
        });
        archiver.on('log', ({ level, message }) => { if (level === 'warn') process.stderr.write(`\nwalstream bench: ${message}\n`); });
        stop = () => archiver.stop();
        if (stopRequested) stop();
        const tracker = setInterval(() => { position = archiver.positions()?.writeLsn ?? position; }, 100);
        try {
          await archiver.run();
        } finally {
          clearInterval(tracker);
          position = archiver.positions()?.writeLsn ?? position;
        }
      }
    } finally {
      progress.end();
      clearInterval(poller);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    const cpuSeconds = (cpu.user + cpu.system) / 1e6;
    const received = Number(position - start.startLsn);
    const peakRssBytes = process.resourceUsage().maxRSS * 1024;
    const summary = {
      sink: flags.sink, sync: flags.sink === 'dir' ? flags.sync : undefined, slot: flags.slot ?? null,
      startLsn: formatLsn(start.startLsn), endLsn: formatLsn(position), bytes: received, seconds,
      mibPerSecond: received / MiB / seconds, cpuSeconds, cpuSecondsPerGiB: received > 0 ? cpuSeconds / (received / GiB) : null,
      peakRssBytes, directory: archive && !archive.temporary ? archive.dir : undefined,
    };
    if (flags.json) {
      process.stdout.write(JSON.stringify(summary) + '\n');
    } else {
      process.stdout.write(`walstream bench: ${formatBytes(received)} (${received} bytes, ${summary.startLsn} to ${summary.endLsn}) in ${seconds.toFixed(2)} s = ` +
        `${summary.mibPerSecond.toFixed(1)} MiB/s into ${flags.sink === 'null' ? 'a null sink' : `a directory${flags.sync ? ', fsynced' : ', --no-sync'}`}; ` +
        `CPU ${cpuSeconds.toFixed(2)} s${summary.cpuSecondsPerGiB === null ? '' : ` (${summary.cpuSecondsPerGiB.toFixed(2)} s/GiB)`}; peak RSS ${(peakRssBytes / MiB).toFixed(1)} MiB\n`);
      if (summary.directory) process.stderr.write(`walstream bench: the archive is left in ${summary.directory}\n`);
    }
  } finally {
    progress?.end();
    await control?.close();
    if (archive?.temporary) rmSync(archive.dir, { recursive: true, force: true });
  }
}

/** The `bench` command definition. */
export function benchCommand(): Command {
  return new Command('bench')
    .description('measure how fast walstream receives WAL from your server (catch-up of retained WAL behind a slot, or live WAL)')
    .option('-d, --dbname <connstr>', 'libpq connection string or URI of the server to measure against')
    .option('-h, --host <host>', 'server host or socket directory')
    .option('-p, --port <port>', 'server port')
    .option('-U, --username <name>', 'role to connect as (needs the REPLICATION attribute)')
    .option('-S, --slot <name>', 'start at this physical slot\'s restart_lsn (catch-up of the WAL it retains)')
    .option('--bytes <size>', 'stop after this much WAL (1024-based units: 512MB, 2GB)', '2GB')
    .addOption(new Option('--sink <kind>', 'null: discard what is received (the receive path alone); dir: archive it as walstream receive does').choices(['null', 'dir']).default('null'))
    .option('-D, --directory <dir>', 'with --sink dir: an empty (or new) directory to archive into, left in place; default a temporary one, removed afterwards')
    .addOption(new Option('--no-sync', 'with --sink dir: do not fsync (pg_receivewal\'s --no-sync)'))
    .option('--json', 'print the summary as one JSON object on stdout')
    .addOption(new Option('--no-progress', 'no live progress line (it is only drawn on a terminal anyway)'))
    .addHelpText('after', `
What it measures: WAL already on the server is received as fast as walstream can take it; beyond the
server's current position the stream waits for new WAL, and the rate becomes your server's WAL rate.
So for a throughput figure, give it a slot that has WAL behind it:
  walstream receive --create-slot -S walstream_bench -d "host=db user=repl"   # then let WAL accumulate
  walstream bench -d "host=db user=repl" -S walstream_bench --bytes 2GB
  walstream bench -d "host=db user=repl" -S walstream_bench --sink dir -D /fast/disk/scratch

The null sink never acknowledges anything, so the slot stays where it is and the run can be repeated.
--sink dir runs the Archiver: like walstream receive it reports what it made durable, which advances
the slot's restart_lsn. Never point it at the slot of a real archiver.
The summary line goes to stdout: bytes, seconds, MiB/s (of wall time, connection included), CPU
seconds (and per GiB) and peak RSS of this process. Ctrl-C ends early with a summary of what was received.`)
    .action(async (flags: BenchFlags) => {
      await bench(flags);
    });
}
