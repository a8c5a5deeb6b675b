/**
 * Monitoring without a server: `walstream status` on archives made in temp directories (healthy, a
 * gap, a recorded gap, stale, empty, missing), gap marker names, the metrics registry's exposition
 * (checked with a strict parser), and the JSON log format.
 */
import { utimesSync, writeFileSync, rmSync, openSync, ftruncateSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkArchive } from '../../src/archive-check.js';
import { gapMarkerName, listGapMarkers, parseGapMarker } from '../../src/archive/gaps.js';
import { archiverRegistry } from '../../src/metrics.js';
import { StatusTracker, isHealthy, statusToJson } from '../../src/archiver-status.js';
import { createLogger } from '../../src/cli/log.js';
import { segmentFileName } from '../../src/lsn.js';
import { parsePrometheusText, sampleValue } from '../harness/prometheus.js';
import { runWalstream } from '../harness/walstream.js';
import { useTempDirs } from './temp-dirs.js';

const MB = 1024 * 1024;
const tempDir = useTempDirs('walstream-status-');

/** A 1 MB segment file with a long page header (PostgreSQL 15's magic) and zeros after it. */
function writeSegment(dir: string, timeline: number, segno: number, suffix = ''): string {
  const name = segmentFileName(timeline, BigInt(segno), MB) + suffix;
  const header = Buffer.alloc(40);
  header.writeUInt16LE(0xd110, 0);
  header.writeUInt16LE(0x0002 | 0x0004, 2); // XLP_LONG_HEADER | XLP_BKP_REMOVABLE
  header.writeUInt32LE(timeline, 4);
  header.writeBigUInt64LE(BigInt(segno) * BigInt(MB), 8);
  header.writeBigUInt64LE(7312345678901234567n, 24);
  header.writeUInt32LE(MB, 32);
  header.writeUInt32LE(8192, 36);
  const fd = openSync(path.join(dir, name), 'w');
  writeSync(fd, header);
  ftruncateSync(fd, MB);
  closeSync(fd);
  return name;
}

function healthyArchive(): string {
  const dir = tempDir();
  for (let segno = 1; segno <= 5; segno++) writeSegment(dir, 1, segno);
  writeSegment(dir, 1, 6, '.partial');
  return dir;
}

function age(dir: string, name: string, seconds: number): void {
  const t = (Date.now() - seconds * 1000) / 1000;
  utimesSync(path.join(dir, name), t, t);
}

describe('walstream status (library)', () => {
  it('is OK on a healthy archive, reading the segment size from a header', async () => {
    const dir = healthyArchive();
    const r = await checkArchive({ directory: dir, maxAge: { critical: 3600 } });
    expect(r.problems).toEqual([]);
    expect(r.exitCode).toBe(0);
    expect(r.archive!.segmentSize).toBe(MB);
    expect(r.archive!.segmentSizeKnown).toBe(true);
    expect(r.archive!.newest!.fileName).toBe('000000010000000000000005');
    expect(r.archive!.partials.map((p) => p.fileName)).toEqual(['000000010000000000000006.partial']);
    expect(r.archive!.timelines).toEqual([1]);
    expect(r.archive!.systemId).toBe('7312345678901234567');
  });

  it('a missing segment is a CRITICAL gap naming it', async () => {
    const dir = healthyArchive();
    rmSync(path.join(dir, '000000010000000000000003'));
    const r = await checkArchive({ directory: dir });
    expect(r.level).toBe('CRITICAL');
    expect(r.exitCode).toBe(2);
    expect(r.problems).toEqual([{ level: 'CRITICAL', message: 'gap in the archive: 1 segment missing on timeline 1, 000000010000000000000003' }]);
  });

  it('a gap between timelines is found too', async () => {
    const dir = healthyArchive();
    writeSegment(dir, 2, 9);
    const r = await checkArchive({ directory: dir });
    expect(r.exitCode).toBe(2);
    expect(r.problems[0]!.message).toMatch(/2 segments missing on timeline 2, 000000020000000000000007 to 000000020000000000000008/);
  });

  it('a gap recorded by a marker is a WARNING naming the marker', async () => {
    const dir = healthyArchive();
    rmSync(path.join(dir, '000000010000000000000003'));
    rmSync(path.join(dir, '000000010000000000000004'));
    const marker = gapMarkerName(1, 3n * BigInt(MB), 5n * BigInt(MB));
    writeFileSync(path.join(dir, marker), '');
    const r = await checkArchive({ directory: dir });
    expect(r.level).toBe('WARNING');
    expect(r.exitCode).toBe(1);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]!.message).toContain(`known gap in the archive: 2 segments missing on timeline 1, 000000010000000000000003 to 000000010000000000000004 (recorded as ${marker}`);
  });

  it('a stale archive: CRITICAL over one --max-age, WARNING between WARN,CRIT', async () => {
    const dir = healthyArchive();
    age(dir, '000000010000000000000005', 7200);
    age(dir, '000000010000000000000006.partial', 7200);
    const critical = await checkArchive({ directory: dir, maxAge: { critical: 3600 } });
    expect(critical.exitCode).toBe(2);
    expect(critical.problems[0]!.message).toMatch(/^stale archive: WAL last written 2\.0 h ago, over --max-age 60 min$/);
    const warning = await checkArchive({ directory: dir, maxAge: { warning: 1800, critical: 3 * 3600 } });
    expect(warning.exitCode).toBe(1);
    // A .partial written recently keeps the archive fresh even when the newest complete segment is old.
    age(dir, '000000010000000000000006.partial', 10);
    expect((await checkArchive({ directory: dir, maxAge: { critical: 3600 } })).exitCode).toBe(0);
  });

  it('a .partial below the newest segment is a WARNING; an empty archive too; a missing one is UNKNOWN', async () => {
    const dir = healthyArchive();
    rmSync(path.join(dir, '000000010000000000000004'));
    writeSegment(dir, 1, 4, '.partial');
    const r = await checkArchive({ directory: dir });
    expect(r.exitCode).toBe(1);
    expect(r.problems[0]!.message).toMatch(/000000010000000000000004\.partial is below the newest segment/);
    const empty = await checkArchive({ directory: tempDir() });
    expect(empty.exitCode).toBe(1);
    expect(empty.problems[0]!.message).toMatch(/holds no WAL segment/);
    const missing = await checkArchive({ directory: path.join(tempDir(), 'nope') });
    expect(missing.exitCode).toBe(3);
    expect(missing.problems[0]!.message).toMatch(/cannot read the archive .*nope/);
  });

  it('the CLI exits with the Nagios code and prints the problem (text and --json)', async () => {
    const dir = healthyArchive();
    const ok = await runWalstream(['status', '-D', dir]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^WALSTREAM OK: archive healthy \| age=\d+s segments=5\n/);
    rmSync(path.join(dir, '000000010000000000000002'));
    const gap = await runWalstream(['status', '-D', dir, '--json']);
    expect(gap.code).toBe(2);
    const json = JSON.parse(gap.stdout);
    expect(json.status).toBe('CRITICAL');
    expect(json.archive.gaps).toEqual([{ timeline: 1, firstMissing: '000000010000000000000002', lastMissing: '000000010000000000000002', missing: 1, fromLsn: '0/200000', toLsn: '0/300000', marker: null }]);
    age(dir, '000000010000000000000005', 600);
    age(dir, '000000010000000000000006.partial', 600);
    const stale = await runWalstream(['status', '-D', dir, '--max-age', '1m,1h']);
    expect(stale.code).toBe(2); // the gap is still there: CRITICAL beats the stale WARNING
    const first = stale.stdout.split('\n')[0]!;
    expect(first).toMatch(/^WALSTREAM CRITICAL: /);
    expect(first).toMatch(/gap in the archive: 1 segment missing on timeline 1, 000000010000000000000002/);
    expect(first).toMatch(/stale archive: WAL last written 10 min ago, over --max-age 60 s/);
  });
});

describe('gap markers', () => {
  it('round-trip their name and sort oldest first, ignoring other files', () => {
    const a = gapMarkerName(1, 0x300000n, 0x900000n);
    expect(a).toBe('walstream.gap.00000001.0000000000300000-0000000000900000');
    const b = gapMarkerName(2, 0x1_0000_0000n, 0x1_0100_0000n);
    expect(parseGapMarker(b)).toEqual({ fileName: b, timeline: 2, fromLsn: 0x1_0000_0000n, toLsn: 0x1_0100_0000n });
    expect(listGapMarkers([b, '000000010000000000000001', a, 'walstream.gap.1.2-3']).map((m) => m.fileName)).toEqual([a, b]);
  });
});

describe('metrics and status figures', () => {
  function tracked() {
    const states: string[] = [];
    const tracker = new StatusTracker('backup', (s) => states.push(s));
    return { tracker, states };
  }

  it('the registry exposes every walstream metric as valid exposition, NaN where not known yet', async () => {
    const { tracker } = tracked();
    const source = { status: () => tracker.snapshot(null, null) };
    const registry = archiverRegistry(source);
    let samples = parsePrometheusText(await registry.metrics());
    expect(sampleValue(samples, 'walstream_up')).toBe(0);
    expect(sampleValue(samples, 'walstream_flushed_lsn_bytes')).toBeNaN();
    expect(sampleValue(samples, 'walstream_reconnects_total')).toBe(0);
    expect(samples.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);

    tracker.connecting('db1', 5432, false);
    tracker.streaming(1);
    tracker.received(4096, 0x3001000n, 0x3002000n);
    tracker.segment('000000010000000000000002');
    tracker.failed('connection lost');
    tracker.connecting('db1', 5432, true);
    const positions = { writeLsn: 0x3001000n, flushLsn: 0x3000800n, timeline: 1 };
    source.status = () => tracker.snapshot(positions, 2);
    samples = parsePrometheusText(await registry.metrics());
    expect(sampleValue(samples, 'walstream_flushed_lsn_bytes')).toBe(0x3000800);
    expect(sampleValue(samples, 'walstream_received_lsn_bytes')).toBe(0x3001000);
    expect(sampleValue(samples, 'walstream_server_wal_end_bytes')).toBe(0x3002000);
    expect(sampleValue(samples, 'walstream_lag_bytes')).toBe(0x1800);
    expect(sampleValue(samples, 'walstream_bytes_received_total')).toBe(4096);
    expect(sampleValue(samples, 'walstream_segments_archived_total')).toBe(1);
    expect(sampleValue(samples, 'walstream_reconnects_total')).toBe(1);
    expect(sampleValue(samples, 'walstream_verify_failures_total')).toBe(2);
    expect(sampleValue(samples, 'walstream_timeline')).toBe(1);
    expect(sampleValue(samples, 'walstream_last_segment_timestamp_seconds')).toBeCloseTo(Date.now() / 1000, -1);
  });

  it('the strict parser rejects what Prometheus would', () => {
    expect(() => parsePrometheusText('a 1')).toThrow(/newline/);
    expect(() => parsePrometheusText('a-b 1\n')).toThrow(/expected/);
    expect(() => parsePrometheusText('a{b="c} 1\n')).toThrow(/unterminated/);
    expect(() => parsePrometheusText('# TYPE a counter\na -1\n')).toThrow(/negative/);
    expect(() => parsePrometheusText('a 1\na 2\n')).toThrow(/duplicate/);
    expect(() => parsePrometheusText('a 1\n# TYPE a gauge\n')).toThrow(/after samples/);
    expect(() => parsePrometheusText('a one\n')).toThrow(/bad value/);
  });

  it('status JSON shows LSNs as X/X, and health follows the grace period', () => {
    const { tracker, states } = tracked();
    tracker.connecting('db1', 5432, false);
    expect(isHealthy(tracker.snapshot(null, null), 30_000)).toBe(true); // starting, within the grace
    expect(isHealthy(tracker.snapshot(null, null), 30_000, Date.now() + 31_000)).toBe(false);
    tracker.streaming(1);
    expect(isHealthy(tracker.snapshot(null, null), 0)).toBe(true);
    tracker.failed('connection to host=db1 lost');
    expect(isHealthy(tracker.snapshot(null, null), 0)).toBe(false);
    expect(states).toEqual(['connecting', 'streaming', 'disconnected']);
    const json = statusToJson(tracker.snapshot({ writeLsn: 0x16B374D848n, flushLsn: 0x16B3000000n, timeline: 3 }, null));
    expect(json).toMatchObject({ state: 'disconnected', connectedTo: 'db1:5432', slot: 'backup', timeline: 3, flushedLsn: '16/B3000000', receivedLsn: '16/B374D848', lastError: 'connection to host=db1 lost' });
  });
});

describe('--log-format', () => {
  it('json: one object a line with time, level, msg and LSN fields; plain: walstream: lines', () => {
    const lines: string[] = [];
    const json = createLogger('json', undefined, (l) => lines.push(l));
    json('info', 'starting log streaming at 0/3000000 (timeline 1)');
    json('info', 'finished segment X\nsecond line', { segment: 'X', lsn: 0x4000000n });
    const [first, second] = lines.map((l) => JSON.parse(l));
    expect(first).toMatchObject({ level: 'info', msg: 'starting log streaming at 0/3000000 (timeline 1)', lsn: '0/3000000' });
    expect(new Date(first.time).getTime()).toBeGreaterThan(Date.now() - 5000);
    expect(second).toMatchObject({ segment: 'X', lsn: '0/4000000' });
    expect(lines.every((l) => l.endsWith('\n') && l.split('\n').length === 2)).toBe(true);
    const plain: string[] = [];
    createLogger('plain', undefined, (l) => plain.push(l))('warn', 'disk full');
    expect(plain).toEqual(['walstream: disk full\n']);
  });
});

