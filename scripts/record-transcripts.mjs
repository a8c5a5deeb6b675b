#!/usr/bin/env node
/**
 * Records the byte transcripts in fixtures/transcripts/ that test/unit/session-transcripts.test.ts
 * replays with no PostgreSQL installed. Run by hand, when the protocol handling changes enough that
 * the recordings no longer match what the session sends:
 *
 *   npm run build && node scripts/record-transcripts.mjs
 *   WALSTREAM_DIST=/tmp/b/dist node scripts/record-transcripts.mjs   # a build elsewhere (tsc --outDir
 *       /tmp/b/dist; /tmp/b needs {"type":"module"} in package.json and node_modules linked to ours)
 *
 * The recordings replace fixtures/transcripts/*.bin only when all four succeeded and hold what the
 * tests rely on; a failed one is left in the OS temp dir as NAME.failed.bin. Needs PostgreSQL 15 or
 * later (READ_REPLICATION_SLOT); the committed ones were made with 15.
 *
 * Starts a throwaway PostgreSQL (bench/lib/cluster.mjs: initdb with 1 MB segments, trust auth on
 * 127.0.0.1, run as the `postgres` OS user when we are root; removed at exit) and records, through
 * ReplicationConnection.open(target, { wrapTransport }) from dist/, every read from the server and every
 * write to it after authentication. Each session starts with the set-up commands (checkServer: SHOW
 * server_version_num, IDENTIFY_SYSTEM, SHOW wal_segment_size) and is driven by StreamSession:
 *
 *   catchup-segment-boundary  a slot's retained WAL from its segment start, then WAL written live, until
 *                             endLsn = the next segment boundary + 1 (archiveSession into a directory).
 *                             Catch-up alone never puts a segment boundary inside an XLogData message
 *                             (walsender sends 128 kB page-aligned pieces: 8 per 1 MB segment), so the
 *                             live part makes the pieces unaligned; recorded again until one crosses.
 *   keepalive-reply           at the server's position on an idle server, wal_sender_timeout = 2 s: the
 *                             keepalive with replyRequested (sent at half the timeout) is answered,
 *                             then a stop (final status update, CopyDone; the server ends the copy).
 *   error-mid-stream          WAL from a segment start; while the first batch is held the walsender is
 *                             ended with pg_terminate_backend: FATAL ErrorResponse, then the server
 *                             closes the connection.
 *   timeline-switch           the server restarted as a standby and promoted (timeline 2); then
 *                             START_REPLICATION on timeline 1 before the switch point: WAL up to it,
 *                             the server's CopyDone, ours, the next_tli result; then TIMELINE_HISTORY 2.
 *
 * File format (test/harness/transcript.ts, loadTranscript): records of [1 byte direction: 0 = server,
 * 1 = client][uint32 BE length][bytes]; a zero-length server record is the server closing. Needs dist/
 * and PostgreSQL's initdb/pg_ctl (PG_BIN, pg_config, or /usr/lib/postgresql/<v>/bin).
 */
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { delay, pgTool, run, serverUser, startCluster } from '../bench/lib/cluster.mjs';

const repo = fileURLToPath(new URL('..', import.meta.url));
const distDir = path.resolve(process.env.WALSTREAM_DIST ?? path.join(repo, 'dist'));
const outDir = path.join(repo, 'fixtures', 'transcripts');
const load = (module) => import(pathToFileURL(path.join(distDir, module)).href);

const { ReplicationConnection } = await load('connection.js');
const { StreamSession } = await load('stream.js');
const { archiveSession } = await load('archive-session.js');
const { SegmentConsumer } = await load('segments.js');
const { DirectorySink } = await load('archive/directory.js');
const { checkServer } = await load('server-check.js');
const { slotStart } = await load('start-position.js');
const { targetsFor } = await load('conninfo.js');
const { FrameReader } = await load('protocol/framing.js');
const { formatLsn, parseLsn, segmentStart } = await load('lsn.js');

// ---------------------------------------------------------------------------------------------------
// Recording (the same as test/harness/transcript.ts recordingTransport/encodeTranscript, in plain JS)

function recordingTransport(inner, log) {
  let closedByUs = false;
  return {
    start(onData, onClose) {
      inner.start((chunk) => {
        log.push({ from: 'server', bytes: Buffer.from(chunk) });
        onData(chunk);
      }, (err) => {
        if (!closedByUs) log.push({ from: 'server', bytes: Buffer.alloc(0) });
        onClose(err);
      });
    },
    write(bytes) {
      log.push({ from: 'client', bytes: Buffer.from(bytes) });
      inner.write(bytes);
    },
    pause: () => inner.pause(),
    resume: () => inner.resume(),
    end() { closedByUs = true; return inner.end(); },
    destroy() { closedByUs = true; inner.destroy(); },
  };
}

function encodeTranscript(steps) {
  const parts = [];
  for (const step of steps) {
    const header = Buffer.alloc(5);
    header[0] = step.from === 'server' ? 0 : 1;
    header.writeUInt32BE(step.bytes.length, 1);
    parts.push(header, step.bytes);
  }
  return Buffer.concat(parts);
}

/** The server side of a transcript as messages: { type, body } or { type: 'w', walStart, length }. */
function serverMessages(steps) {
  const out = [];
  const reader = new FrameReader({
    onMessage: (type, body) => {
      if (type === 0x57 /* W: CopyBothResponse */) reader.copyMode = true;
      if (type === 0x63 /* c */ || type === 0x5a /* Z */) reader.copyMode = false;
      out.push({ type: String.fromCharCode(type), body: Buffer.from(body) });
    },
    // All the bytes are pushed at once: each message's WAL comes in one call.
    onWal: (walStart, data) => out.push({ type: 'w', walStart, length: data.length }),
  });
  reader.push(Buffer.concat(steps.filter((s) => s.from === 'server').map((s) => s.bytes)));
  return out;
}

let target;

/** Run `body` on a recorded connection and write fixtures/transcripts/NAME.bin. */
async function record(name, body) {
  const steps = [];
  const conn = await ReplicationConnection.open(target, { wrapTransport: (t) => recordingTransport(t, steps) });
  let result;
  try {
    result = await body(conn, steps);
  } catch (err) {
    const file = path.join(os.tmpdir(), `${name}.failed.bin`);
    writeFileSync(file, encodeTranscript(steps));
    console.error(`${name}: the recording failed; what it had is in ${file}`);
    throw err;
  } finally {
    await conn.close();
  }
  return { name, steps, result };
}

function save({ name, steps }) {
  const file = path.join(outDir, `${name}.bin`);
  const bytes = encodeTranscript(steps);
  writeFileSync(file, bytes);
  const reads = steps.filter((s) => s.from === 'server').length;
  const writes = steps.length - reads;
  console.log(`${path.relative(repo, file)}: ${bytes.length} bytes, ${reads} server reads, ${writes} client writes`);
}

function check(condition, what) {
  if (!condition) throw new Error(`record-transcripts: ${what}`);
}

// ---------------------------------------------------------------------------------------------------
// The server

const cluster = await startCluster({
  segmentMB: 1,
  conf: { wal_sender_timeout: '2s', log_replication_commands: 'on', max_wal_senders: '4', max_replication_slots: '4' },
});
target = targetsFor(`host=${cluster.host} port=${cluster.port} user=postgres sslmode=disable`)[0];
const sql = (text, params) => cluster.query(text, params);
const currentLsn = async () => parseLsn((await sql('select pg_current_wal_lsn()::text as lsn'))[0].lsn);
await sql('create table walgen (id bigserial, pad text)');
/** Commit rows of `rowBytes` until at least `bytes` of WAL were written. */
async function generateWal(bytes, rowBytes = 1000) {
  const start = await currentLsn();
  while ((await currentLsn()) - start < BigInt(bytes)) {
    await sql(`insert into walgen (pad) select repeat('x', $1) from generate_series(1, $2)`, [rowBytes, Math.max(1, Math.ceil(Math.min(bytes, 256 << 10) / (rowBytes + 100)))]);
  }
}

mkdirSync(outDir, { recursive: true });
const archiveParent = mkdtempSync(path.join(os.tmpdir(), 'walstream-transcripts-'));
const recordings = [];

try {
  // (a) catchup-segment-boundary
  for (let attempt = 1; ; attempt++) {
    // A physical slot reserves WAL from the last checkpoint's redo pointer: checkpoint in a fresh
    // segment, so the slot's segment starts right there (no switch record and its zero padding in it).
    await sql('select pg_switch_wal()');
    await sql('checkpoint');
    const slot = `catchup_${attempt}`;
    await sql('select pg_create_physical_replication_slot($1, true)', [slot]);
    await generateWal(400 << 10); // retained: the session catches this up in 128 kB messages
    const archive = path.join(archiveParent, slot);
    mkdirSync(archive);
    const rec = await record('catchup-segment-boundary', async (conn) => {
      const { version, identity, segmentSize } = await checkServer(conn);
      const start = await slotStart(conn, slot, segmentSize, version);
      check(start, `slot ${slot} has no restart_lsn`);
      const boundary = start.startLsn + BigInt(segmentSize);
      const endLsn = boundary + 1n;
      const consumer = new SegmentConsumer({ sink: new DirectorySink(archive, { noSync: true }), segmentSize, timeline: identity.timeline, startLsn: start.startLsn });
      const session = new StreamSession(conn, {
        slot, startLsn: start.startLsn, timeline: identity.timeline, endLsn, segmentSize, statusIntervalMs: 1000,
        positions: () => ({ writeLsn: consumer.writeLsn(), flushLsn: consumer.flushLsn() }),
      });
      // WAL written while the session streams: small commits, so walsender sends unaligned pieces.
      let streaming = true;
      const writer = (async () => {
        while (streaming && (await currentLsn()) < boundary + (64n << 10n)) {
          await sql(`insert into walgen (pad) select repeat('y', 1000) from generate_series(1, 5)`);
        }
      })();
      try {
        const outcome = await archiveSession(session, consumer, { synchronous: false, reportFlush: true });
        await consumer.close();
        return { outcome, boundary, startLsn: start.startLsn };
      } finally {
        streaming = false;
        await writer;
      }
    });
    check(rec.result.outcome.kind === 'endpos', `catch-up ended with ${rec.result.outcome.kind}`);
    const crossing = serverMessages(rec.steps).find((m) => m.type === 'w' && m.walStart < rec.result.boundary && m.walStart + BigInt(m.length) > rec.result.boundary);
    console.log(`catchup attempt ${attempt}: ${formatLsn(rec.result.startLsn)} .. ${formatLsn(rec.result.outcome.receivedLsn)}, boundary ${formatLsn(rec.result.boundary)} ${crossing ? `inside XLogData at ${formatLsn(crossing.walStart)} (+${crossing.length})` : 'between messages'}`);
    await sql('select pg_drop_replication_slot($1)', [slot]);
    if (crossing) {
      recordings.push(rec);
      break;
    }
    check(attempt < 5, 'no XLogData crossed the segment boundary in 5 attempts');
  }

  // (b) keepalive-reply: the server idle; the session answers the server's request, then stops.
  await delay(500);
  recordings.push(await record('keepalive-reply', async (conn) => {
    const { identity, segmentSize } = await checkServer(conn);
    const stop = new AbortController();
    const session = new StreamSession(conn, {
      startLsn: identity.xlogPos, timeline: identity.timeline, segmentSize, statusIntervalMs: 0, signal: stop.signal,
      positions: () => ({ writeLsn: session.receivedLsn, flushLsn: session.receivedLsn }),
    });
    const giveUp = setTimeout(() => stop.abort(), 10_000);
    let asked = false;
    for await (const batch of session) {
      if (batch.replyRequested) {
        asked = true;
        session.sendStatus();
        stop.abort();
      }
    }
    clearTimeout(giveUp);
    check(asked, 'no keepalive asked for a reply within 10 s');
    const outcome = await session.finish();
    check(outcome.kind === 'stopped', `keepalive session ended with ${outcome.kind}`);
    return outcome;
  }));

  // (d) error-mid-stream: pg_terminate_backend of the walsender while the session holds a batch.
  await sql('select pg_switch_wal()');
  await generateWal(200 << 10);
  recordings.push(await record('error-mid-stream', async (conn) => {
    const { identity, segmentSize } = await checkServer(conn);
    const session = new StreamSession(conn, {
      startLsn: segmentStart(identity.xlogPos, segmentSize), timeline: identity.timeline, segmentSize, statusIntervalMs: 0,
      positions: () => ({ writeLsn: session.receivedLsn, flushLsn: 0n }),
    });
    let terminated = false;
    let failure;
    try {
      for await (const batch of session) {
        void batch;
        if (!terminated) {
          terminated = true;
          await sql('select pg_terminate_backend(pid) from pg_stat_replication');
          for (let i = 0; i < 100 && (await sql('select 1 from pg_stat_replication')).length > 0; i++) await delay(50);
        }
      }
    } catch (err) {
      failure = err;
    }
    check(failure, 'the session did not fail after pg_terminate_backend');
    console.log(`error-mid-stream: the session failed with ${failure.constructor.name}${failure.code ? ` ${failure.code}` : ''}: ${failure.message}`);
    await session.finish().catch(() => {});
    return failure;
  }));

  // (c) timeline-switch: restart as a standby of itself and promote: timeline 2.
  await sql('select pg_switch_wal()');
  await generateWal(150 << 10);
  await cluster.stop('fast');
  const signalFile = path.join(cluster.dataDir, 'standby.signal');
  writeFileSync(signalFile, '');
  const user = serverUser();
  if (user) chownSync(signalFile, user.uid, user.gid);
  await cluster.start();
  await run(pgTool('pg_ctl'), ['-D', cluster.dataDir, '-w', '-t', '60', 'promote'], { asPostgres: true });
  const history = (await sql(`select pg_read_file('pg_wal/00000002.history') as h`))[0].h;
  const switchPoint = parseLsn(history.trim().split('\n').at(-1).split('\t')[1]);
  recordings.push(await record('timeline-switch', async (conn) => {
    const { identity, segmentSize } = await checkServer(conn);
    check(identity.timeline === 2, `the promoted server is on timeline ${identity.timeline}`);
    const session = new StreamSession(conn, {
      startLsn: segmentStart(switchPoint, segmentSize), timeline: 1, segmentSize, statusIntervalMs: 0,
      positions: () => ({ writeLsn: session.receivedLsn, flushLsn: 0n }),
    });
    for await (const batch of session) void batch;
    const outcome = await session.finish();
    check(outcome.kind === 'timeline-end' && outcome.end.nextTimeline === 2 && outcome.end.nextTimelineStart === switchPoint,
      `timeline session ended with ${JSON.stringify(outcome, (_, v) => (typeof v === 'bigint' ? formatLsn(v) : v))}`);
    await conn.timelineHistory(2); // as the Archiver does after a switch
    console.log(`timeline-switch: timeline 1 from ${formatLsn(segmentStart(switchPoint, segmentSize))} to the switch at ${formatLsn(switchPoint)}`);
    return outcome;
  }));

  // What the tests rely on, checked before anything is written.
  const byName = Object.fromEntries(recordings.map((r) => [r.name, r]));
  const types = (name) => serverMessages(byName[name].steps).map((m) => m.type);
  const keepalives = serverMessages(byName['keepalive-reply'].steps).filter((m) => m.type === 'd' && m.body[0] === 0x6b);
  check(keepalives.some((m) => m.body[17] === 1), 'keepalive-reply has no keepalive with replyRequested');
  check(types('timeline-switch').includes('c') && types('timeline-switch').includes('D'), 'timeline-switch lacks the server\'s CopyDone or the next_tli row');
  check(types('error-mid-stream').includes('E'), 'error-mid-stream has no ErrorResponse');
  check(byName['error-mid-stream'].steps.at(-1).bytes.length === 0, 'error-mid-stream does not end with the server closing');
  for (const rec of recordings) save(rec);
} finally {
  rmSync(archiveParent, { recursive: true, force: true });
  await cluster.destroy();
}
