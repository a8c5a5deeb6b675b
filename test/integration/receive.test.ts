/**
 * `walstream receive` against the real pg_receivewal (PostgreSQL 15), same server, same range:
 *
 *  1. With one slot per tool created before any WAL is generated (so both start at the slot's
 *     restart_lsn, rounded down to its segment), `-S slot -E LSN -n` must give the same archive:
 *     the same complete segments, byte for byte (and equal to the server's own pg_wal files), and a
 *     .partial of the same name whose bytes agree up to the end position. pg_waldump must read
 *     walstream's complete segments. Run with 1 MB and 16 MB segments, with -h/-p/-U and with -d.
 *  2. After walstream exits, its slot's restart_lsn is at or past the end of the last complete segment
 *     (walstream sends a final status update; pg_receivewal does not).
 *
 * Plus: the archive holds nothing but segments and one .partial (no temp files).
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  destroyAll,
  lsnToBigInt,
  runTool,
  startCluster,
  tempDir,
  waitFor,
  type Cluster,
  type ToolResult,
} from '../harness/cluster.js';
import { WALSTREAM_CLI } from '../harness/walstream.js';

const CLI = WALSTREAM_CLI;
const MB = 1024 * 1024;
const TOOL_TIMEOUT_MS = 120_000;

// ---------------------------------------------------------------------------------------------
// LSN and file-name arithmetic, kept local so the test does not trust src/lsn.ts.

function lsnText(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

function segmentName(timeline: number, lsn: bigint, segmentSize: number): string {
  const segno = lsn / BigInt(segmentSize);
  const perId = 0x100000000n / BigInt(segmentSize);
  const hex = (v: bigint | number) => v.toString(16).toUpperCase().padStart(8, '0');
  return hex(timeline) + hex(segno / perId) + hex(segno % perId);
}

/** First LSN of a segment, from its file name. */
function segmentStartOf(name: string, segmentSize: number): bigint {
  const perId = 0x100000000n / BigInt(segmentSize);
  const segno = BigInt('0x' + name.slice(8, 16)) * perId + BigInt('0x' + name.slice(16, 24));
  return segno * BigInt(segmentSize);
}

function firstDifference(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** Fail with the first differing offset (a bare `equals` failure says nothing). */
function expectSameBytes(actual: Buffer, expected: Buffer, what: string): void {
  const at = firstDifference(actual, expected);
  expect(at, `${what}: first difference at byte ${at} (sizes ${actual.length} and ${expected.length})`).toBe(-1);
}

// ---------------------------------------------------------------------------------------------
// The scenario: one cluster, a pair of slots per connection style, one end position for all.

type Style = 'flags' | 'connstr';

interface Variant {
  style: Style;
  /** Also pass --no-sync to both tools. */
  noSync: boolean;
  /** Also pass -s 0 to both tools (pg_receivewal then sends no status update at all during the run). */
  noStatus: boolean;
  /** Pass --no-direct-io to walstream (segments through the page cache instead of O_DIRECT). */
  noDirectIo?: boolean;
}

interface Run {
  variant: Variant;
  slotA: string;
  slotB: string;
  dirA: string;
  dirB: string;
  pgReceivewal: ToolResult;
  walstream: ToolResult;
  pgReceivewalMs: number;
  walstreamMs: number;
  /** restart_lsn of each slot right after both tools exited. */
  slotAAfter: bigint | null;
  slotBAfter: bigint | null;
}

interface Scenario {
  cluster: Cluster;
  segmentSize: number;
  /** restart_lsn of the first slot when it was created (all should be equal: see createdAll). */
  slotStart: bigint;
  /** restart_lsn of every slot when it was created. */
  createdAll: bigint[];
  endpos: bigint;
  runs: Run[];
}

function connectionArgs(cluster: Cluster, style: Style): string[] {
  return style === 'flags'
    ? ['-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres']
    : ['-d', `host=${cluster.host} port=${cluster.port} user=postgres`];
}

function describeResult(name: string, r: ToolResult): string {
  return `${name} exited ${r.code ?? r.signal}${r.timedOut ? ' (timed out)' : ''}\n--- stderr ---\n${r.stderr}\n--- stdout ---\n${r.stdout}`;
}

/**
 * An end position inside WAL the server has already written: not on a segment boundary, at least 8 kB
 * into its segment and at least 256 kB before the segment's end (so no 128 kB walsender message can
 * carry either tool across the segment boundary: both must stop inside E's segment, with a .partial).
 */
async function pickEndpos(cluster: Cluster, segmentSize: number): Promise<bigint> {
  for (;;) {
    const lsn = lsnToBigInt(await cluster.currentLsn());
    const offset = Number(lsn % BigInt(segmentSize));
    if (offset >= 8192 && offset <= segmentSize - 256 * 1024) return lsn;
    await cluster.generateWal(64 * 1024);
  }
}

async function runPair(cluster: Cluster, variant: Variant, index: number, endpos: bigint): Promise<Run> {
  const slotA = `pgrw_${index}`;
  const slotB = `walstream_${index}`;
  const [dirA, dirB] = await Promise.all([tempDir('walstream-receive-pgrw-'), tempDir('walstream-receive-ws-')]);
  const common = [
    ...connectionArgs(cluster, variant.style),
    '-E', lsnText(endpos),
    '-n',
    '-v',
    ...(variant.noSync ? ['--no-sync'] : []),
    ...(variant.noStatus ? ['-s', '0'] : []),
  ];
  const timed = async (run: () => Promise<ToolResult>) => {
    const started = Date.now();
    const result = await run();
    return { result, ms: Date.now() - started };
  };
  const [a, b] = await Promise.all([
    timed(() => runTool('pg_receivewal', ['-D', dirA, '-S', slotA, ...common], { timeoutMs: TOOL_TIMEOUT_MS })),
    timed(() => runTool(process.execPath, [CLI, 'receive', '-D', dirB, '-S', slotB, ...common, ...(variant.noDirectIo ? ['--no-direct-io'] : [])], { timeoutMs: TOOL_TIMEOUT_MS })),
  ]);
  const restart = async (slot: string) => {
    const lsn = await cluster.slotRestartLsn(slot);
    return lsn === null ? null : lsnToBigInt(lsn);
  };
  return {
    variant, slotA, slotB, dirA, dirB,
    pgReceivewal: a.result, walstream: b.result, pgReceivewalMs: a.ms, walstreamMs: b.ms,
    slotAAfter: await restart(slotA),
    slotBAfter: await restart(slotB),
  };
}

/**
 * A cluster with `segmentSizeMB` segments, one slot pair per variant created before any WAL is
 * generated, a few complete segments (pg_switch_wal makes them cheaply), an end position E inside
 * written WAL and some WAL after it; then each variant's pg_receivewal and walstream run concurrently.
 */
async function setUpScenario(segmentSizeMB: number, variants: Variant[], generate: (c: Cluster) => Promise<void>): Promise<Scenario> {
  const segmentSize = segmentSizeMB * MB;
  const cluster = await startCluster({ segmentSizeMB });
  const created: bigint[] = [];
  for (let i = 0; i < variants.length; i++) {
    created.push(lsnToBigInt(await cluster.createSlot(`pgrw_${i}`)));
    created.push(lsnToBigInt(await cluster.createSlot(`walstream_${i}`)));
  }
  await generate(cluster);
  const endpos = await pickEndpos(cluster, segmentSize);
  // More WAL past E, flushed (committed), so neither tool has to wait for the server to reach E.
  await cluster.generateWal(200 * 1024);
  await waitFor(async () => lsnToBigInt(await cluster.flushLsn()) > endpos, { what: `flush LSN past ${lsnText(endpos)}` });

  const runs: Run[] = [];
  for (const [i, variant] of variants.entries()) runs.push(await runPair(cluster, variant, i, endpos));
  for (const run of runs) {
    const v = `${run.variant.style}${run.variant.noSync ? ' --no-sync' : ''}${run.variant.noStatus ? ' -s 0' : ''}`;
    console.info(`[${segmentSizeMB} MB, ${v}] slots from ${lsnText(created[0]!)}, E=${lsnText(endpos)}: pg_receivewal ${run.pgReceivewalMs} ms (slot now ${lsnText(run.slotAAfter ?? 0n)}), walstream ${run.walstreamMs} ms (slot now ${lsnText(run.slotBAfter ?? 0n)})`);
  }
  return { cluster, segmentSize, slotStart: created[0]!, createdAll: created, endpos, runs };
}

interface ArchiveListing {
  all: string[];
  complete: string[];
  partial: string[];
}

async function listArchive(dir: string): Promise<ArchiveListing> {
  const all = (await readdir(dir)).sort();
  return {
    all,
    complete: all.filter((n) => /^[0-9A-F]{24}$/.test(n)),
    partial: all.filter((n) => /^[0-9A-F]{24}\.partial$/.test(n)),
  };
}

// ---------------------------------------------------------------------------------------------

const SCENARIOS: { segmentSizeMB: number; variants: Variant[]; generate: (c: Cluster) => Promise<void> }[] = [
  {
    segmentSizeMB: 1,
    variants: [
      // Both tools fsyncing (no --no-sync), default status interval.
      { style: 'flags', noSync: false, noStatus: false },
      // -s 0: pg_receivewal sends no status update during the run, so its slot cannot move.
      { style: 'connstr', noSync: false, noStatus: true },
      // walstream through the page cache (the default is O_DIRECT where the filesystem allows it).
      { style: 'flags', noSync: false, noStatus: false, noDirectIo: true },
    ],
    // ~3 segments of real WAL, then a switch (a zero-padded tail) and a little more.
    generate: async (c) => {
      await c.generateWal(2.5 * MB);
      await c.switchWal();
      await c.generateWal(300 * 1024);
    },
  },
  {
    segmentSizeMB: 16,
    variants: [
      { style: 'flags', noSync: true, noStatus: false },
      { style: 'connstr', noSync: false, noStatus: true },
    ],
    // Two complete 16 MB segments cheaply: end initdb's segment, then one more with 2 MB of WAL in it.
    generate: async (c) => {
      await c.switchWal();
      await c.generateWal(2 * MB);
      await c.switchWal();
      await c.generateWal(512 * 1024);
    },
  },
];

describe.each(SCENARIOS)('walstream receive vs pg_receivewal, $segmentSizeMB MB segments', ({ segmentSizeMB, variants, generate }) => {
  let s: Scenario;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p .)`);
    s = await setUpScenario(segmentSizeMB, variants, generate);
  }, 600_000);
  afterAll(destroyAll, 120_000);

  const label = (v: Variant) => `${v.style === 'flags' ? '-h/-p/-U' : '-d connstr'}${v.noSync ? ', --no-sync' : ''}${v.noStatus ? ', -s 0' : ''}${v.noDirectIo ? ', walstream --no-direct-io' : ''}`;

  it('creates every slot at the same restart_lsn, so both tools start at the same segment', () => {
    expect(new Set(s.createdAll.map(lsnText)).size).toBe(1);
  });

  describe.each(variants.map((v, i) => ({ i, v, name: label(v) })))('$name', ({ i }) => {
    const run = () => s.runs[i]!;

    it('both tools exit 0 after reaching the end position', () => {
      const r = run();
      expect(r.pgReceivewal.code, describeResult('pg_receivewal', r.pgReceivewal)).toBe(0);
      expect(r.walstream.code, describeResult('walstream', r.walstream)).toBe(0);
    });

    it('archives the same complete segments, byte-identical to pg_receivewal and to the server\'s pg_wal', async () => {
      const r = run();
      const [a, b] = await Promise.all([listArchive(r.dirA), listArchive(r.dirB)]);
      expect(b.complete).toEqual(a.complete);

      // The range: from the slot's segment up to (not including) E's segment, all complete.
      const first = segmentName(1, s.slotStart, s.segmentSize);
      const endSegment = segmentName(1, s.endpos, s.segmentSize);
      expect(b.complete[0]).toBe(first);
      const expected: string[] = [];
      for (let lsn = s.slotStart - (s.slotStart % BigInt(s.segmentSize)); segmentName(1, lsn, s.segmentSize) !== endSegment; lsn += BigInt(s.segmentSize)) {
        expected.push(segmentName(1, lsn, s.segmentSize));
      }
      expect(b.complete).toEqual(expected);
      expect(b.complete.length).toBeGreaterThanOrEqual(2);

      for (const name of b.complete) {
        const [ours, theirs] = await Promise.all([readFile(path.join(r.dirB, name)), readFile(path.join(r.dirA, name))]);
        expect(ours.length, `${name} size`).toBe(s.segmentSize);
        expectSameBytes(ours, theirs, `walstream's ${name} vs pg_receivewal's`);
        // The slots hold every one of these segments, so the server still has them.
        const serverFile = path.join(s.cluster.dataDir, 'pg_wal', name);
        expect(existsSync(serverFile), `${serverFile} exists`).toBe(true);
        expectSameBytes(ours, await readFile(serverFile), `walstream's ${name} vs the server's pg_wal/${name}`);
      }
    });

    it('leaves a .partial of the same name, full size, with the same bytes up to the end position', async () => {
      const r = run();
      const [a, b] = await Promise.all([listArchive(r.dirA), listArchive(r.dirB)]);
      const expectedName = segmentName(1, s.endpos, s.segmentSize) + '.partial';
      expect(a.partial).toEqual([expectedName]);
      expect(b.partial).toEqual([expectedName]);
      const [ours, theirs] = await Promise.all([readFile(path.join(r.dirB, expectedName)), readFile(path.join(r.dirA, expectedName))]);
      expect(ours.length).toBe(s.segmentSize);
      expect(theirs.length).toBe(s.segmentSize);
      const endOffset = Number(s.endpos % BigInt(s.segmentSize));
      expectSameBytes(ours.subarray(0, endOffset), theirs.subarray(0, endOffset), `${expectedName} up to E (offset ${endOffset})`);
    });

    it('pg_waldump reads walstream\'s complete segments', async () => {
      const r = run();
      const { complete } = await listArchive(r.dirB);
      const dump = await runTool('pg_waldump', ['--stats', '-p', r.dirB, complete[0]!, complete[complete.length - 1]!], { timeoutMs: 60_000 });
      expect(dump.code, describeResult('pg_waldump', dump)).toBe(0);
      expect(dump.stdout).toMatch(/Total/);
      // And with explicit LSNs: from the slot position to the end of the last complete segment.
      const end = segmentStartOf(complete[complete.length - 1]!, s.segmentSize) + BigInt(s.segmentSize);
      const byLsn = await runTool('pg_waldump', ['-q', '-p', r.dirB, '--start', lsnText(s.slotStart), '--end', lsnText(end)], { timeoutMs: 60_000 });
      expect(byLsn.code, describeResult('pg_waldump --start/--end', byLsn)).toBe(0);
    });

    it('moves walstream\'s slot to at least the end of the last complete segment (and to E)', async () => {
      const r = run();
      const { complete } = await listArchive(r.dirB);
      const lastCompleteEnd = segmentStartOf(complete[complete.length - 1]!, s.segmentSize) + BigInt(s.segmentSize);
      expect(r.slotBAfter).not.toBeNull();
      expect(r.slotBAfter! >= lastCompleteEnd, `walstream's slot at ${lsnText(r.slotBAfter!)}, last complete segment ends at ${lsnText(lastCompleteEnd)}`).toBe(true);
      expect(r.slotBAfter! >= s.endpos, `walstream's slot at ${lsnText(r.slotBAfter!)}, E = ${lsnText(s.endpos)}`).toBe(true);
      // Still true now (nothing moved it back).
      expect(lsnToBigInt((await s.cluster.slotRestartLsn(r.slotB))!)).toBe(r.slotBAfter);
      if (r.variant.noStatus) {
        // pg_receivewal with -s 0 sent no status update (its run is far shorter than the 30 s after which
        // the walsender would ask for one): its slot is still where it was created.
        expect(r.slotAAfter).toBe(s.slotStart);
        expect(r.slotAAfter! < lastCompleteEnd).toBe(true);
      }
    });

    it('leaves nothing in the archive but complete segments and one .partial', async () => {
      const r = run();
      for (const [who, dir] of [['walstream', r.dirB], ['pg_receivewal', r.dirA]] as const) {
        const listing = await listArchive(dir);
        const stray = listing.all.filter((n) => !listing.complete.includes(n) && !listing.partial.includes(n));
        expect(stray, `${who}'s archive ${dir}`).toEqual([]);
        expect(listing.partial, `${who}'s .partial files`).toHaveLength(1);
        // The .partial is the newest segment: everything complete comes before it.
        const partialSegment = listing.partial[0]!.slice(0, 24);
        expect(listing.complete.every((n) => n < partialSegment), `${who}: complete segments all before ${partialSegment}`).toBe(true);
      }
    });
  });
});
