/**
 * Log lines on stderr, for `receive`: plain `walstream: MESSAGE` lines by default, or with
 * `--log-format json` one JSON object a line for log shippers: time (ISO 8601), level, msg, and the
 * LSN fields the event has (`lsn` and the like, as "X/X"; an LSN written in a message's text is given
 * as `lsn` too). Either way one line per event, whatever the server's text holds, and the progress
 * line is cleared first.
 */
import { WalstreamError, joinLines } from '../errors.js';
import { formatLsn } from '../lsn.js';
import type { ProgressLine } from './progress.js';

export type LogFormat = 'plain' | 'json';
export type LogLevel = 'info' | 'warn' | 'debug';

/** Writes one event: `fields` holds extra values (bigint ones are taken for LSNs and shown as X/X). */
export type LogFn = (level: LogLevel, message: string, fields?: Record<string, string | number | bigint>) => void;

/** Check a --log-format value. */
export function parseLogFormat(text: string): LogFormat {
  if (text === 'plain' || text === 'json') return text;
  throw new WalstreamError('BAD_OPTION', `invalid --log-format "${text}": give plain or json`);
}

const LSN_IN_TEXT = /\b[0-9A-F]{1,8}\/[0-9A-F]{1,8}\b/;

/** A LogFn writing to `write` (default stderr) in `format`, clearing `progress` before each line. */
export function createLogger(format: LogFormat, progress?: ProgressLine, write: (line: string) => void = (l) => process.stderr.write(l)): LogFn {
  return (level, message, fields = {}) => {
    progress?.clear();
    const text = joinLines(message);
    if (format === 'plain') return write(`walstream: ${text}\n`);
    const entry: Record<string, unknown> = { time: new Date().toISOString(), level, msg: text };
    for (const [key, value] of Object.entries(fields)) entry[key] = typeof value === 'bigint' ? formatLsn(value) : value;
    const inText = LSN_IN_TEXT.exec(text);
    if (entry.lsn === undefined && inText) entry.lsn = inText[0];
    write(JSON.stringify(entry) + '\n');
  };
}
