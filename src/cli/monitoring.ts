/**
 * `receive`'s monitoring flags: the metrics server (--metrics-port, --metrics-host, --health-grace),
 * the slot guard (--max-slot-retained, --on-slot-limit, --slot-check-interval) and --log-format.
 * Kept here so receive.ts only wires them in.
 */
import { type Command, Option } from 'commander';
import type { Archiver, ArchiverOptions } from '../archiver.js';
import { WalstreamError } from '../errors.js';
import type { MonitoringServer } from '../metrics-server.js';
import { parseByteSize, wholeNumber } from '../units.js';
import { type LogFn, type LogFormat, parseLogFormat } from './log.js';

export interface MonitoringFlags {
  slot?: string;
  metricsPort?: string;
  metricsHost: string;
  healthGrace: string;
  maxSlotRetained?: string;
  onSlotLimit: string;
  slotCheckInterval?: string;
  logFormat: string;
}

/** Add the monitoring flags to `command`. */
export function addMonitoringOptions(command: Command): Command {
  return command
    .option('--metrics-port <port>', 'serve /metrics (Prometheus), /status (JSON) and /healthz on this port')
    .option('--metrics-host <address>', 'address the metrics server listens on', '127.0.0.1')
    .option('--health-grace <seconds>', '/healthz answers 503 once no stream has been open for this long', '30')
    .option('--max-slot-retained <size>', 'warn (once a minute) when the slot holds back more WAL than this on the server (e.g. 10GB)')
    .addOption(new Option('--on-slot-limit <action>', 'over --max-slot-retained: warn, or release the slot (advance it to the server\'s position: protects the primary\'s disk, leaves a gap in the archive, recorded as a walstream.gap.* file)').choices(['warn', 'release']).default('warn'))
    .option('--slot-check-interval <seconds>', 'seconds between checks of what the slot holds back (a short SQL connection each time; default 10 with --metrics-port or --max-slot-retained)')
    .addOption(new Option('--log-format <format>', 'log lines: plain, or json (one object a line: time, level, msg, lsn)').choices(['plain', 'json']).default('plain'));
}

/** The Archiver options the flags ask for (slot checks and the slot guard). */
export function monitoringArchiverOptions(flags: MonitoringFlags): Pick<ArchiverOptions, 'slotCheckIntervalSeconds' | 'maxSlotRetained' | 'onSlotLimit'> {
  if (flags.maxSlotRetained !== undefined && !flags.slot) throw new WalstreamError('BAD_OPTION', '--max-slot-retained needs a slot to be specified using --slot');
  const maxSlotRetained = flags.maxSlotRetained !== undefined ? BigInt(parseByteSize(flags.maxSlotRetained, '--max-slot-retained')) : undefined;
  const wanted = flags.metricsPort !== undefined || maxSlotRetained !== undefined;
  const slotCheckIntervalSeconds = flags.slotCheckInterval !== undefined ? wholeNumber(flags.slotCheckInterval, '--slot-check-interval', 0, 86400) : wanted ? 10 : 0;
  return { slotCheckIntervalSeconds, maxSlotRetained, onSlotLimit: flags.onSlotLimit as 'warn' | 'release' };
}

/** The chosen log format. */
export function logFormatOf(flags: MonitoringFlags): LogFormat {
  return parseLogFormat(flags.logFormat);
}

/** Start the metrics server when --metrics-port is given (logged at info level); null otherwise. */
export async function startMetricsFromFlags(archiver: Archiver, flags: MonitoringFlags, log: LogFn): Promise<MonitoringServer | null> {
  if (flags.metricsPort === undefined) return null;
  const port = wholeNumber(flags.metricsPort, '--metrics-port', 0, 65535);
  const healthGraceSeconds = wholeNumber(flags.healthGrace, '--health-grace', 0, 86400);
  let server: MonitoringServer;
  try {
    // prom-client (12 MiB of memory) loads only when metrics are served.
    const { startMonitoringServer } = await import('../metrics-server.js');
    server = await startMonitoringServer(archiver, { port, host: flags.metricsHost, healthGraceSeconds });
  } catch (err) {
    throw new WalstreamError('BAD_OPTION', `cannot serve metrics on ${flags.metricsHost}:${port}: ${(err as Error).message}`);
  }
  log('info', `serving /metrics, /status and /healthz on http://${flags.metricsHost}:${server.address.port}/`);
  return server;
}
