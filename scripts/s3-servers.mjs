/**
 * Real S3 servers on 127.0.0.1 for the tests and the bench (issue #17): s3rver (in this process, quick)
 * and Ceph's RADOS Gateway on a one-node cluster (monitor + one OSD + radosgw, spawned as plain
 * processes; recipe and timings in /work/shared/ceph-rgw-notes.md). Plain ESM JavaScript so vitest
 * tests and bench/run.mjs can both import it; types in s3-servers.d.mts. Nothing is mocked.
 *
 * Every server is an object { kind, endpoint, host, port, region, accessKeyId, secretAccessKey,
 * bucket, dir, createBucket(name), stop(), stopSync() }. Live servers are also stopped (SIGKILL, data
 * removed) when this process exits, so no daemon outlives it.
 *
 * Quirks seen with @aws-sdk/client-s3 3.x (see also s3ClientOptions):
 * - s3rver 3.7.1 does not verify SigV4 signatures at all (its code says "unimplemented"): it only
 *   checks that the access key id exists (S3RVER, whose secret is S3RVER). A wrong secret or a
 *   signature for another host passes there; RGW verifies them.
 * - Recent SDKs add CRC32 checksum headers (x-amz-checksum-*, x-amz-sdk-checksum-algorithm) and
 *   send stream bodies with aws-chunked encoding; Ceph 16 (pacific) does not know them: a stream body
 *   fails with 411 MissingContentLength. With requestChecksumCalculation and
 *   responseChecksumValidation = 'WHEN_REQUIRED' (what s3ClientOptions sets) both servers work.
 * - Path-style addressing (forcePathStyle) is required: neither server is set up for virtual hosts.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants as fsConstants, readFileSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Region every server here answers for (the SDK needs one; neither server checks it). */
export const S3_REGION = 'us-east-1';
/** The bucket start*() creates unless told otherwise. */
export const DEFAULT_BUCKET = 'walstream';
/** The RGW user startRgw() creates (radosgw-admin user create --uid test). */
export const RGW_ACCESS_KEY = 'WALSTREAMTESTKEY0001';
export const RGW_SECRET_KEY = 'walstream-test-secret-key-0000000000000000';

// ---------------------------------------------------------------------------------------------
// Small helpers

const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP port that was free on 127.0.0.1 a moment ago (bind port 0, read it, close). */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Poll fn until it returns a truthy value (errors count as "not yet"); throw `timed out after N ms waiting for what` at the deadline. */
async function waitFor(fn, { timeoutMs, intervalMs = 50, what }) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      if (err?.fatal) throw err;
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? ` (last error: ${oneLine(lastError.message)})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`, { cause: lastError });
    }
    await delay(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/** Last non-empty line of `text`, trimmed, at most 300 characters. */
function oneLine(text) {
  const lines = String(text).split('\n').map((l) => l.trim()).filter(Boolean);
  return (lines.at(-1) ?? '').slice(0, 300);
}

/** Run a program to completion (SIGKILL after timeoutMs); resolves { code, signal, stdout, stderr, timedOut }. */
function run(cmd, args, { timeoutMs = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.setEncoding('utf8').on('data', (s) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s) => (stderr += s));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
}

/** run(), throwing a one-line error (`cmd args: exited with N: last line of output`) unless it exits 0. */
async function mustRun(cmd, args, opts) {
  const r = await run(cmd, args, opts);
  if (r.code === 0) return r.stdout;
  const how = r.timedOut ? `timed out after ${opts?.timeoutMs ?? 30_000} ms` : `exited with ${r.code ?? r.signal}`;
  throw new Error(`${cmd} ${args.join(' ')}: ${how}: ${oneLine(r.stderr || r.stdout)}`);
}

// ---------------------------------------------------------------------------------------------
// Exit-time cleanup: nothing started here outlives this process

/** Live servers (their stopSync()), stopped at process exit and on SIGINT/SIGTERM/SIGHUP. */
const live = new Set();
function stopAllSync() {
  for (const stopSync of [...live]) {
    try {
      stopSync();
    } catch {
      // Best effort: we are exiting.
    }
  }
}
process.on('exit', stopAllSync);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  const onSignal = () => {
    stopAllSync();
    process.removeListener(signal, onSignal);
    // Keep the default behaviour (die by the signal) unless someone else handles it.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.on(signal, onSignal);
}

// ---------------------------------------------------------------------------------------------
// The SDK side

/**
 * The S3Client configuration for `server` (anything with endpoint, region, accessKeyId,
 * secretAccessKey): path-style addressing, static credentials, and checksums only where an operation
 * requires them (both servers accept that; Ceph 16 rejects the SDK's default stream checksums).
 * Spread it and override fields as needed, e.g. `{ ...s3ClientOptions(server), endpoint: proxy.endpoint }`.
 */
export function s3ClientOptions(server) {
  return {
    endpoint: server.endpoint,
    region: server.region ?? S3_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  };
}

/** Create bucket `name` on `server` through the SDK; resolves once it exists (an existing bucket of ours is fine). */
async function createBucketOn(server, name, { timeoutMs = 30_000 } = {}) {
  const { S3Client, CreateBucketCommand, HeadBucketCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({ ...s3ClientOptions(server), maxAttempts: 5 });
  try {
    try {
      await client.send(new CreateBucketCommand({ Bucket: name }), { abortSignal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      if (err?.name !== 'BucketAlreadyOwnedByYou' && err?.name !== 'BucketAlreadyExists') {
        throw new Error(`create bucket ${name} on ${server.endpoint}: ${err?.name ?? 'Error'}: ${oneLine(err?.message)}`, { cause: err });
      }
    }
    await client.send(new HeadBucketCommand({ Bucket: name }), { abortSignal: AbortSignal.timeout(timeoutMs) });
  } finally {
    client.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// s3rver

/**
 * Start s3rver (in this process) on 127.0.0.1 at a kernel-chosen port, its data in a fresh temp dir
 * `walstream-s3rver-XXXXXX` under `dir` (default the OS temp dir), and create bucket `bucket`
 * (default 'walstream') through the SDK. Credentials are s3rver's built-in S3RVER / S3RVER.
 * stop() closes every connection and the server and removes the data dir (idempotent).
 */
export async function startS3rver({ dir, bucket = DEFAULT_BUCKET } = {}) {
  const { default: S3rver } = await import('s3rver');
  const dataDir = await mkdtemp(path.join(dir ?? os.tmpdir(), 'walstream-s3rver-'));
  const s3rver = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: dataDir });
  let stopping;
  const stopSync = () => {
    live.delete(stopSync);
    s3rver.httpServer?.closeAllConnections?.();
    s3rver.httpServer?.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  const stop = () =>
    (stopping ??= (async () => {
      live.delete(stopSync);
      const http = s3rver.httpServer;
      if (http?.listening) {
        const closed = new Promise((resolve) => http.close(() => resolve()));
        http.closeAllConnections?.();
        await closed;
      }
      await rm(dataDir, { recursive: true, force: true });
    })());
  live.add(stopSync);
  try {
    const { port } = await s3rver.run();
    const server = {
      kind: 's3rver',
      host: '127.0.0.1',
      port,
      endpoint: `http://127.0.0.1:${port}`,
      region: S3_REGION,
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      bucket,
      dir: dataDir,
      createBucket: (name) => createBucketOn(server, name),
      stop,
      stopSync,
    };
    await createBucketOn(server, bucket);
    return server;
  } catch (err) {
    await stop();
    throw new Error(`startS3rver: ${oneLine(err?.message ?? err)}`, { cause: err });
  }
}

// ---------------------------------------------------------------------------------------------
// Ceph RADOS Gateway

const CEPH_PROGRAMS = ['monmaptool', 'ceph-mon', 'ceph-osd', 'ceph', 'radosgw', 'radosgw-admin'];
const CEPH_INSTALL = 'apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd';

function findProgram(name) {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/usr/sbin', '/bin', '/sbin'];
  for (const d of dirs) {
    if (!d) continue;
    const candidate = path.join(d, name);
    try {
      accessSync(candidate, fsConstants.X_OK);
      return candidate;
    } catch {
      // Not here.
    }
  }
  return undefined;
}

/**
 * null when the Ceph programs startRgw() needs are installed, else a one-line reason naming the
 * missing ones and the install command (for `it.skipIf(reason)` with the reason printed).
 */
export function rgwAvailable() {
  const missing = CEPH_PROGRAMS.filter((p) => findProgram(p) === undefined);
  if (missing.length === 0) return null;
  return `Ceph RADOS Gateway not installed (missing ${missing.join(', ')}): ${CEPH_INSTALL}`;
}

/** ceph.conf for a one-node cluster in `d` (the recipe of ceph-rgw-notes.md). */
function cephConf({ d, fsid, monPort, rgwPort, store, memstoreBytes, bluestoreBytes, osdMemoryTarget }) {
  const osd =
    store === 'memstore'
      ? ['osd objectstore = memstore', `memstore device bytes = ${memstoreBytes}`]
      : [
          'osd objectstore = bluestore',
          `bluestore block path = ${d}/osd.$id.block`,
          'bluestore block create = true',
          `bluestore block size = ${bluestoreBytes}`,
          `osd memory target = ${osdMemoryTarget}`,
        ];
  return [
    '[global]',
    `fsid = ${fsid}`,
    `mon host = v2:127.0.0.1:${monPort}`,
    'public addr = 127.0.0.1',
    'cluster addr = 127.0.0.1',
    'auth cluster required = none',
    'auth service required = none',
    'auth client required = none',
    // Without it the gateway hangs forever under auth none ("get_initial_auth_request returned -13").
    'ms mon client mode = crc',
    `run dir = ${d}/run`,
    `log file = ${d}/log/$name.log`,
    `crash dir = ${d}/crash`,
    `pid file = ${d}/run/$name.pid`,
    `admin socket = ${d}/run/$name.$pid.asok`,
    'osd pool default size = 1',
    'osd pool default min size = 1',
    'mon allow pool size one = true',
    'mon warn on pool no redundancy = false',
    'osd pool default pg num = 8',
    'osd pool default pgp num = 8',
    'osd pool default pg autoscale mode = off',
    'mon max pg per osd = 1000',
    'osd crush chooseleaf type = 0',
    'mon data avail warn = 1',
    // Without it start-up takes ~12 s and the first bucket and PUT ~2 s each.
    'paxos propose interval = 0.05',
    '',
    '[mon]',
    `mon data = ${d}/mon.$id`,
    '',
    '[osd]',
    `osd data = ${d}/osd.$id`,
    ...osd,
    '',
    '[client]',
    `rgw frontends = beast endpoint=127.0.0.1:${rgwPort}`,
    `rgw data = ${d}/rgw`,
    '',
  ].join('\n');
}

/** Spawn a daemon in the foreground (-f), output collected (last 64 kB), with `exited` resolving on its exit. */
function spawnDaemon(name, cmd, args) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (s) => {
    output = (output + s).slice(-65536);
  };
  child.stdout.setEncoding('utf8').on('data', collect);
  child.stderr.setEncoding('utf8').on('data', collect);
  const exited = new Promise((resolve) => {
    child.once('error', (err) => resolve({ code: null, signal: null, error: err }));
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const daemon = {
    name,
    child,
    exited,
    get output() {
      return output;
    },
    running: () => child.exitCode === null && child.signalCode === null && child.pid !== undefined,
  };
  return daemon;
}

/** Throw a fatal (not retried by waitFor) one-line error if `daemon` has exited, with the last line it or its log wrote. */
function assertRunning(daemon, logFile) {
  if (daemon.running()) return;
  let log = '';
  try {
    log = readFileSync(logFile, 'utf8').slice(-65536);
  } catch {
    // No log yet.
  }
  const why = oneLine(daemon.output) || oneLine(log.split('\n').filter((l) => /error|fail|abort|in use/i.test(l)).join('\n')) || oneLine(log);
  const err = new Error(`${daemon.name} exited (${daemon.child.exitCode ?? daemon.child.signalCode}): ${why}`);
  err.fatal = true;
  throw err;
}

/** SIGTERM `daemon`, SIGKILL it if it has not exited after graceMs, and wait for it to be reaped. */
async function stopDaemon(daemon, graceMs) {
  if (!daemon.running()) return;
  daemon.child.kill('SIGTERM');
  const exited = await Promise.race([daemon.exited.then(() => true), delay(graceMs).then(() => false)]);
  if (!exited) {
    daemon.child.kill('SIGKILL');
    await daemon.exited;
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function tcpAnswers(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Whether something answers HTTP on `endpoint` (any status). */
async function answersHttp(endpoint) {
  const res = await fetch(endpoint + '/', { signal: AbortSignal.timeout(2000) });
  await res.arrayBuffer().catch(() => undefined);
  return true;
}

/**
 * Start a one-node Ceph cluster (monitor, one OSD, radosgw) on 127.0.0.1 in a fresh temp dir
 * `walstream-rgw-XXXXXX` under `dir` (default the OS temp dir), on kernel-chosen free ports (the OSD
 * takes free ports of Ceph's own 6800-7300 range), and create bucket `bucket` (default 'walstream')
 * through the SDK with the access/secret keys RGW_ACCESS_KEY / RGW_SECRET_KEY.
 * store 'memstore' (default; ~1.5 s; data in RAM at ~2x its size, capacity memstoreBytes, default 2 GiB)
 * or 'bluestore' (~6 s; a sparse file of bluestoreBytes, default 8 GiB, osdMemoryTarget default 1 GiB).
 * Every step polls with a time limit (timeoutMs in all, default 60 s); a daemon that dies fails the
 * start at once with its last log line. On any failure every daemon started so far is killed and the
 * dir removed before the error (one line, `startRgw(store): ...`) is thrown.
 * stop() stops radosgw, then the OSD, then the monitor (SIGTERM, SIGKILL after a short wait, each
 * reaped) and removes the dir; idempotent. stopSync() SIGKILLs all three (for exit-time cleanup).
 * Also returned: pids() of the live daemons and logDir.
 */
export async function startRgw({
  store = 'memstore',
  dir,
  bucket = DEFAULT_BUCKET,
  memstoreBytes = 2 * GiB,
  bluestoreBytes = 8 * GiB,
  osdMemoryTarget = GiB,
  timeoutMs = 60_000,
} = {}) {
  if (store !== 'memstore' && store !== 'bluestore') throw new Error(`startRgw: store must be 'memstore' or 'bluestore', not ${JSON.stringify(store)}`);
  const missing = rgwAvailable();
  if (missing) throw new Error(`startRgw: ${missing}`);
  // A port taken between freePort() and the daemon's bind makes that daemon die: start again (twice at most).
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRgwOnce({ store, dir, bucket, memstoreBytes, bluestoreBytes, osdMemoryTarget, timeoutMs });
    } catch (err) {
      if (attempt >= 3 || !/address already in use/i.test(err?.message ?? '')) throw err;
    }
  }
}

async function startRgwOnce({ store, dir, bucket, memstoreBytes, bluestoreBytes, osdMemoryTarget, timeoutMs }) {
  const started = Date.now();
  /** Time left before the start's deadline; throws once it has passed. */
  const left = () => {
    const ms = timeoutMs - (Date.now() - started);
    if (ms <= 0) throw new Error(`not ready within ${timeoutMs} ms (reached: ${Object.keys(timings).at(-1) ?? 'nothing'})`);
    return ms;
  };
  const d = await mkdtemp(path.join(dir ?? os.tmpdir(), 'walstream-rgw-'));
  const conf = path.join(d, 'ceph.conf');
  const logDir = path.join(d, 'log');
  const daemons = []; // in start order: mon, osd, rgw
  const timings = {};
  const mark = (step) => (timings[step] = Date.now() - started);
  let stopping;

  const stopSync = () => {
    live.delete(stopSync);
    for (const daemon of [...daemons].reverse()) {
      if (daemon.running()) daemon.child.kill('SIGKILL');
    }
    rmSync(d, { recursive: true, force: true, maxRetries: 3 });
  };
  const stop = () =>
    (stopping ??= (async () => {
      try {
        for (const daemon of [...daemons].reverse()) await stopDaemon(daemon, 500);
      } finally {
        live.delete(stopSync);
        await rm(d, { recursive: true, force: true, maxRetries: 3 });
      }
    })());
  live.add(stopSync);

  try {
    const monPort = await freePort();
    let rgwPort = await freePort();
    while (rgwPort === monPort) rgwPort = await freePort();
    const fsid = randomUUID();
    await Promise.all(['run', 'log', 'crash', 'rgw', 'osd.0'].map((sub) => mkdir(path.join(d, sub))));
    await writeFile(conf, cephConf({ d, fsid, monPort, rgwPort, store, memstoreBytes, bluestoreBytes, osdMemoryTarget }));
    const cephArgs = ['-c', conf];

    // 1. The monitor.
    await mustRun('monmaptool', ['--create', '--fsid', fsid, '--addv', 'a', `[v2:127.0.0.1:${monPort}]`, path.join(d, 'monmap')], { timeoutMs: left() });
    await mustRun('ceph-mon', [...cephArgs, '-i', 'a', '--mkfs', '--monmap', path.join(d, 'monmap')], { timeoutMs: left() });
    const mon = spawnDaemon('ceph-mon', 'ceph-mon', [...cephArgs, '-i', 'a', '-f']);
    daemons.push(mon);
    mark('monStarted');

    // 2. The OSD: registered with the monitor (retried until the monitor answers), made, started, up.
    await waitFor(
      async () => {
        assertRunning(mon, path.join(logDir, 'mon.a.log'));
        return tcpAnswers(monPort);
      },
      { timeoutMs: left(), intervalMs: 20, what: `the monitor to listen on 127.0.0.1:${monPort}` },
    );
    const uuid = randomUUID();
    const osdId = await waitFor(
      async () => {
        assertRunning(mon, path.join(logDir, 'mon.a.log'));
        const r = await run('ceph', [...cephArgs, '--connect-timeout', '5', 'osd', 'new', uuid], { timeoutMs: 10_000 });
        if (r.code !== 0) throw new Error(`ceph osd new: ${oneLine(r.stderr || r.stdout)}`);
        return r.stdout.trim();
      },
      { timeoutMs: left(), intervalMs: 100, what: 'the monitor to register the OSD (ceph osd new)' },
    );
    mark('osdRegistered');
    if (osdId !== '0') throw new Error(`ceph osd new gave id ${JSON.stringify(osdId)}, expected 0`);
    await mustRun('ceph-osd', [...cephArgs, '-i', '0', '--mkfs', '--osd-uuid', uuid], { timeoutMs: left() });
    const osd = spawnDaemon('ceph-osd', 'ceph-osd', [...cephArgs, '-i', '0', '-f']);
    daemons.push(osd);
    mark('osdStarted');
    await waitFor(
      async () => {
        assertRunning(mon, path.join(logDir, 'mon.a.log'));
        assertRunning(osd, path.join(logDir, 'osd.0.log'));
        const r = await run('ceph', [...cephArgs, '--connect-timeout', '5', 'osd', 'dump'], { timeoutMs: 10_000 });
        return r.code === 0 && /^osd\.0 up\b/m.test(r.stdout);
      },
      { timeoutMs: left(), intervalMs: 100, what: 'osd.0 up (ceph osd dump)' },
    );
    mark('osdUp');

    // 3. The gateway, then its user, then the bucket.
    const rgw = spawnDaemon('radosgw', 'radosgw', [...cephArgs, '-n', 'client.rgw.a', '-f']);
    daemons.push(rgw);
    const endpoint = `http://127.0.0.1:${rgwPort}`;
    await waitFor(
      async () => {
        for (const [daemon, log] of [
          [mon, 'mon.a.log'],
          [osd, 'osd.0.log'],
          [rgw, 'client.rgw.a.log'],
        ]) {
          assertRunning(daemon, path.join(logDir, log));
        }
        return answersHttp(endpoint);
      },
      { timeoutMs: left(), intervalMs: 50, what: `radosgw to answer HTTP on ${endpoint}` },
    );
    mark('rgwAnswers');
    await mustRun(
      'radosgw-admin',
      [...cephArgs, 'user', 'create', '--uid', 'test', '--display-name', 'test', '--access-key', RGW_ACCESS_KEY, '--secret', RGW_SECRET_KEY],
      { timeoutMs: left() },
    );
    mark('userCreated');
    const server = {
      kind: 'rgw',
      store,
      host: '127.0.0.1',
      port: rgwPort,
      endpoint,
      region: S3_REGION,
      accessKeyId: RGW_ACCESS_KEY,
      secretAccessKey: RGW_SECRET_KEY,
      bucket,
      dir: d,
      logDir,
      timings,
      pids: () => daemons.filter((x) => x.running()).map((x) => x.child.pid),
      createBucket: (name) => createBucketOn(server, name, { timeoutMs: 30_000 }),
      stop,
      stopSync,
    };
    await createBucketOn(server, bucket, { timeoutMs: left() });
    mark('ready');
    return server;
  } catch (err) {
    // Keep a log tail for the message before the dir goes.
    let rgwLog = '';
    if (/radosgw/.test(err?.message ?? '')) rgwLog = await readFile(path.join(logDir, 'client.rgw.a.log'), 'utf8').catch(() => '');
    await stop();
    const inUse = /address already in use/i.test(rgwLog) ? ' (Address already in use)' : '';
    throw new Error(`startRgw(${store}): ${oneLine(err?.message ?? err)}${inUse}`, { cause: err });
  }
}
