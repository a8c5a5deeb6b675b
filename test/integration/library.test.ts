/**
 * Issue 4: the library, imported by its package name (self-reference through `exports`).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  Archiver, WalReceiver, formatLsn, parseLsn, walFileName,
  type CompletedSegment, type WalSegmentWriter, type WalSink,
} from 'pg-walstream';
import { destroyAll, lsnToBigInt, runTool, startCluster, tempDir } from '../harness/cluster.js';
import { waitFor } from '../harness/tools.js';
import { differingFiles, listArchive } from '../harness/walstream.js';

afterAll(destroyAll);

const MB = 1 << 20;

/** An in-memory WalSink: what a tool that uploads segments would implement. */
class MemorySink implements WalSink {
  readonly files = new Map<string, Buffer>();
  readonly partial = new Map<string, Buffer>();
  writes = 0;
  lists = 0;
  async list() { this.lists++; return [...this.files.keys(), ...[...this.partial.keys()].map((n) => n + '.partial')]; }
  async readHead(name: string, length: number) {
    const file = this.files.get(name) ?? this.partial.get(name.replace(/\.partial$/, ''));
    return file ? file.subarray(0, length) : null;
  }
  async openSegment(name: string, segmentSize: number): Promise<WalSegmentWriter> {
    const buf = Buffer.alloc(segmentSize);
    let position = 0;
    this.partial.set(name, buf);
    return {
      write: async (data) => {
        buf.set(data, position); // copy now: data is valid only during the call
        position += data.length;
        this.writes++;
        await new Promise((r) => setImmediate(r)); // an asynchronous sink
      },
      sync: async () => {},
      close: async (mode) => {
        if (mode === 'complete') {
          this.partial.delete(name);
          this.files.set(name, buf);
        }
      },
    };
  }
  async writeFile(name: string, content: Uint8Array) { this.files.set(name, Buffer.from(content)); }
}

describe('the library', () => {
  it('Archiver with endLsn gives pg_receivewal\'s archive, one segment event per completed segment', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1 });
    await cluster.createSlot('lib');
    await cluster.createSlot('ref');
    await cluster.generateWal(3 * MB + Math.floor(MB / 3));
    const endLsn = parseLsn(await cluster.currentLsn());
    await cluster.generateWal(MB / 8);

    const directory = await tempDir('lib-');
    const archiver = new Archiver({
      connection: { host: cluster.host, port: cluster.port, user: 'postgres' },
      directory, slot: 'lib', endLsn, synchronous: false, compression: { method: 'none' },
    });
    const events: CompletedSegment[] = [];
    archiver.on('segment', (e) => events.push(e));
    await archiver.run();

    const refDir = await tempDir('ref-');
    const ref = await runTool('pg_receivewal', ['-D', refDir, '-S', 'ref', '-h', cluster.host, '-p', String(cluster.port), '-U', 'postgres', '-E', formatLsn(endLsn), '-n', '--no-sync']);
    expect(ref.code, ref.stderr).toBe(0);

    const [ours, theirs] = await Promise.all([listArchive(directory), listArchive(refDir)]);
    expect(ours.complete.length).toBeGreaterThanOrEqual(3);
    expect(ours.complete).toEqual(theirs.complete);
    expect(ours.partial).toEqual(theirs.partial);
    expect(await differingFiles(directory, refDir, ours.complete)).toEqual([]);
    expect(events.map((e) => e.name)).toEqual(ours.complete);
    for (const e of events) {
      expect(e.timeline).toBe(1);
      expect(walFileName(e.timeline, e.startLsn, MB)).toBe(e.name);
    }
  });

  it('WalReceiver yields exactly the server\'s WAL bytes, and acknowledge() moves the slot', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1 });
    const slotStart = lsnToBigInt(await cluster.createSlot('raw'));
    await cluster.generateWal(2 * MB + MB / 2);
    const endLsn = lsnToBigInt(await cluster.currentLsn());

    const receiver = new WalReceiver({ connection: cluster.connectionString, slot: 'raw', timeline: 1 });
    const startLsn = slotStart - (slotStart % BigInt(MB));
    const chunks: { startLsn: bigint; data: Uint8Array }[] = [];
    let acknowledged = 0n;
    for await (const chunk of receiver) {
      chunks.push(chunk); // kept: chunks stay valid after the next one arrives
      acknowledged = chunk.startLsn + BigInt(chunk.data.length);
      receiver.acknowledge(acknowledged);
      if (acknowledged >= endLsn) break;
    }
    await receiver.close();

    // Contiguous from the slot's segment start, and byte-identical to the server's own segment files.
    expect(chunks[0].startLsn).toBe(startLsn);
    for (let i = 1; i < chunks.length; i++) expect(chunks[i].startLsn).toBe(chunks[i - 1].startLsn + BigInt(chunks[i - 1].data.length));
    const received = Buffer.concat(chunks.map((c) => c.data));
    const firstSegment = walFileName(1, startLsn, MB);
    const secondSegment = walFileName(1, startLsn + BigInt(MB), MB);
    const server = Buffer.concat([
      await readFile(path.join(cluster.dataDir, 'pg_wal', firstSegment)),
      await readFile(path.join(cluster.dataDir, 'pg_wal', secondSegment)),
    ]);
    expect(received.length).toBeGreaterThanOrEqual(2 * MB);
    expect(received.subarray(0, 2 * MB).equals(server)).toBe(true);

    // The final status update carried the acknowledged position: restart_lsn moved to it.
    const restart = lsnToBigInt((await cluster.slotRestartLsn('raw'))!);
    expect(restart).toBe(acknowledged);
  });


  it('WalReceiver with borrowChunks yields views of its read buffers, with the server\'s bytes while the loop holds them', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1 });
    const slotStart = lsnToBigInt(await cluster.createSlot('borrow'));
    await cluster.generateWal(2 * MB + MB / 2);
    const endLsn = lsnToBigInt(await cluster.currentLsn());

    const receiver = new WalReceiver({ connection: cluster.connectionString, slot: 'borrow', timeline: 1, borrowChunks: true });
    const copies: Buffer[] = [];
    const buffersSeen = new Set<ArrayBufferLike>();
    let views = 0;
    let acknowledged = 0n;
    for await (const chunk of receiver) {
      copies.push(Buffer.from(chunk.data)); // a borrowed view is valid only in this turn of the loop
      if (chunk.data.buffer.byteLength > chunk.data.length) views++;
      buffersSeen.add(chunk.data.buffer);
      acknowledged = chunk.startLsn + BigInt(chunk.data.length);
      receiver.acknowledge(acknowledged);
      if (acknowledged >= endLsn) break;
    }
    await receiver.close();

    // Not copies: the chunks are views into a few reused read buffers.
    expect(views).toBe(copies.length);
    expect(copies.length).toBeGreaterThan(buffersSeen.size * 4);
    const startLsn = slotStart - (slotStart % BigInt(MB));
    const server = Buffer.concat([
      await readFile(path.join(cluster.dataDir, 'pg_wal', walFileName(1, startLsn, MB))),
      await readFile(path.join(cluster.dataDir, 'pg_wal', walFileName(1, startLsn + BigInt(MB), MB))),
    ]);
    expect(Buffer.concat(copies).subarray(0, 2 * MB).equals(server)).toBe(true);
  });
  it('WalReceiver with readCoalesceMs hands over a trickle in fewer, larger groups', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1 });
    await cluster.query('create table trickle (n int)');
    /** Groups of chunks that arrive in one turn of the event loop, while 40 commits trickle in 5 ms apart. */
    const groups = async (readCoalesceMs: number) => {
      const receiver = new WalReceiver({ connection: cluster.connectionString, readCoalesceMs });
      let count = 0;
      let inGroup = false;
      let received = 0n;
      let target: bigint | null = null;
      const committing = (async () => {
        await new Promise((r) => setTimeout(r, 200)); // let the receiver start
        for (let i = 0; i < 40; i++) {
          await cluster.query(`insert into trickle values (${i})`);
          await new Promise((r) => setTimeout(r, 5));
        }
        target = lsnToBigInt(await cluster.currentLsn());
        await cluster.query('insert into trickle values (-1)'); // one more chunk, past the target, ends the loop
      })();
      for await (const chunk of receiver) {
        if (!inGroup) {
          inGroup = true;
          count++;
          setImmediate(() => { inGroup = false; });
        }
        received = chunk.startLsn + BigInt(chunk.data.length);
        if (target !== null && received >= target) break;
      }
      await committing;
      await receiver.close();
      return count;
    };
    const atOnce = await groups(0);
    const coalesced = await groups(100);
    expect(atOnce).toBeGreaterThanOrEqual(15);
    expect(coalesced).toBeLessThanOrEqual(atOnce / 3);
  });

  it('a custom asynchronous sink receives every segment, through its asynchronous writes', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1 });
    await cluster.createSlot('mem');
    await cluster.generateWal(3 * MB);
    const endLsn = lsnToBigInt(await cluster.currentLsn());
    await cluster.generateWal(MB / 8);

    const sink = new MemorySink();
    const archiver = new Archiver({ connection: cluster.connectionString, sink, slot: 'mem', endLsn });
    await archiver.run();
    const names = [...sink.files.keys()].filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
    expect(names.length).toBeGreaterThanOrEqual(2);
    for (const name of names) {
      const server = await readFile(path.join(cluster.dataDir, 'pg_wal', name)).catch(() => null);
      if (server) expect(sink.files.get(name)!.equals(server), name).toBe(true);
    }
    expect(sink.writes).toBeGreaterThan(names.length);
    expect(sink.lists).toBe(1); // one connection: one listing serves the system id, resume point and history checks
  });

  it('an Archiver with an asynchronous sink serves as the synchronous standby: every commit is acknowledged', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1, conf: { synchronous_standby_names: 'memsync' } });
    const sink = new MemorySink();
    const archiver = new Archiver({ connection: cluster.connectionString, applicationName: 'memsync', sink, synchronous: true });
    const running = archiver.run();
    try {
      await waitFor(async () => {
        const rows = await cluster.query<{ sync_state: string }>(`select sync_state from pg_stat_replication where application_name = 'memsync'`);
        return rows[0]?.sync_state === 'sync';
      }, { what: 'the Archiver to be the synchronous standby' });
      // Each write of this sink is asynchronous, so the stream holds back the socket while it runs; the
      // flush (and the status update a waiting commit needs) must still follow every batch.
      const acknowledged = async (sql: string) => {
        let timer: NodeJS.Timeout | undefined;
        const stalled = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`commit of "${sql}" not acknowledged in 10 s`)), 10_000); });
        try {
          await Promise.race([cluster.query(sql), stalled]);
        } finally {
          clearTimeout(timer);
        }
      };
      await acknowledged('create table memsync_acked (id int)');
      for (let i = 0; i < 20; i++) await acknowledged(`insert into memsync_acked values (${i})`);
      const [{ n }] = await cluster.query<{ n: string }>('select count(*)::text as n from memsync_acked');
      expect(n).toBe('20');
      expect(sink.writes).toBeGreaterThanOrEqual(20);
    } finally {
      archiver.stop();
      await running;
    }
  });

  it('a slow consumer pauses the socket: the server cannot run ahead and memory stays flat', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1 });
    await cluster.createSlot('slow');
    await cluster.generateWal(64 * MB);
    const available = lsnToBigInt(await cluster.currentLsn());

    const receiver = new WalReceiver({ connection: cluster.connectionString, slot: 'slow', applicationName: 'slowpoke' });
    const baseline = process.memoryUsage();
    let consumed = 0n;
    let first: bigint | null = null;
    const started = Date.now();
    const samples: { sent: bigint; consumed: bigint; arrayBuffers: number }[] = [];
    for await (const chunk of receiver) {
      first ??= chunk.startLsn;
      consumed = chunk.startLsn + BigInt(chunk.data.length);
      await new Promise((r) => setTimeout(r, 20)); // a slow disk
      if (Date.now() - started > 1500 && samples.length < 5) {
        const [row] = await cluster.query<{ sent: string }>(`select sent_lsn::text as sent from pg_stat_replication where application_name = 'slowpoke'`);
        samples.push({ sent: lsnToBigInt(row.sent), consumed, arrayBuffers: process.memoryUsage().arrayBuffers });
      }
      if (samples.length >= 5) break;
    }
    await receiver.close();
    // Far more WAL was available than was consumed...
    expect(available - consumed).toBeGreaterThan(32n * BigInt(MB));
    for (const sample of samples) {
      // ...yet the server could only send what fits in the socket buffers and our small queue.
      expect(sample.sent - sample.consumed).toBeLessThan(24n * BigInt(MB));
      expect(sample.arrayBuffers - baseline.arrayBuffers).toBeLessThan(32 * MB);
    }
  });

  it('an Archiver on a throttled disk (a sink that sleeps) pauses the socket: the server cannot run ahead, memory stays flat', async () => {
    const cluster = await startCluster({ segmentSizeMB: 1 });
    await cluster.createSlot('throttled');
    await cluster.generateWal(48 * MB);
    const available = lsnToBigInt(await cluster.currentLsn());

    let written = 0n;
    const slowSink: WalSink = {
      async list() { return []; },
      async readHead() { return null; },
      async writeFile() {},
      openSegment: (name: string) => ({
        write: async (data: Uint8Array) => {
          written += BigInt(data.length); // data is not kept: nothing to copy
          await new Promise((r) => setTimeout(r, 15)); // a slow disk
        },
        sync: async () => {},
        close: async () => {},
      }),
    };
    const archiver = new Archiver({ connection: cluster.connectionString, sink: slowSink, slot: 'throttled', applicationName: 'throttled' });
    const baseline = process.memoryUsage();
    const running = archiver.run();
    const samples: { sent: bigint; written: bigint; arrayBuffers: number }[] = [];
    await new Promise((r) => setTimeout(r, 1500));
    for (let i = 0; i < 5; i++) {
      const [row] = await cluster.query<{ sent: string }>(`select sent_lsn::text as sent from pg_stat_replication where application_name = 'throttled'`);
      const first = archiver.positions()!;
      samples.push({ sent: lsnToBigInt(row.sent), written: first.writeLsn, arrayBuffers: process.memoryUsage().arrayBuffers });
      await new Promise((r) => setTimeout(r, 300));
    }
    archiver.stop();
    await running;
    expect(written).toBeGreaterThan(0n);
    for (const sample of samples) {
      expect(available - sample.written).toBeGreaterThan(24n * BigInt(MB)); // far more was available...
      expect(sample.sent - sample.written).toBeLessThan(20n * BigInt(MB)); // ...but the server could not send it
      expect(sample.arrayBuffers - baseline.arrayBuffers).toBeLessThan(24 * MB);
    }
  });
});
