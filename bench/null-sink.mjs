#!/usr/bin/env node
/**
 * The ceiling: walstream's receive path (WalReceiver from dist/index.js) into a null sink. Every chunk
 * is discarded and acknowledged at once, so this measures what the server and the socket allow plus
 * the cost of walstream's protocol handling, without any file I/O. It borrows the chunks (views of the
 * read buffers, `borrowChunks`): a sink that writes each chunk before the next needs no copy of its own.
 * NULL_SINK_COPY=1 takes WalReceiver's default (a copy of each chunk) instead, for comparison.
 *
 *   node bench/null-sink.mjs CONNSTR SLOT END_LSN
 *
 * Prints one JSON line: { bytes, startLsn, endLsn, seconds }.
 */
import { WalReceiver, parseLsn, formatLsn } from '../dist/index.js';

const [connection, slot, end] = process.argv.slice(2);
if (!connection || !end) {
  process.stderr.write('usage: node bench/null-sink.mjs CONNSTR SLOT|"" END_LSN\n');
  process.exit(2);
}
const started = performance.now();
const receiver = new WalReceiver({ connection, slot: slot || undefined, endLsn: parseLsn(end), applicationName: 'bench_null_sink', borrowChunks: process.env.NULL_SINK_COPY !== '1' });
let startLsn = null;
let bytes = 0;
let last = 0n;
for await (const chunk of receiver) {
  startLsn ??= chunk.startLsn;
  bytes += chunk.data.length;
  last = chunk.startLsn + BigInt(chunk.data.length);
  receiver.acknowledge(last);
}
await receiver.close();
process.stdout.write(JSON.stringify({
  bytes, startLsn: startLsn === null ? null : formatLsn(startLsn), endLsn: formatLsn(last),
  seconds: (performance.now() - started) / 1000,
}) + '\n');
