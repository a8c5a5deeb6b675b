/**
 * Issue 4, acceptance 4: the README's library examples run as written, against a real cluster.
 * Each ```js block after a `<!-- readme-example: NAME -->` marker is saved inside the package (so
 * `import 'pg-walstream'` resolves to this package) and run with node.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { destroyAll, lsnToBigInt, runTool, startCluster, tempDir, type Cluster } from '../harness/cluster.js';

afterAll(destroyAll);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const MB = 1 << 20;

async function readmeExamples(): Promise<Map<string, string>> {
  const text = await readFile(path.join(root, 'README.md'), 'utf8');
  const examples = new Map<string, string>();
  for (const match of text.matchAll(/<!-- readme-example: (\S+) -->\s*```js\n([\s\S]*?)```/g)) examples.set(match[1], match[2]);
  return examples;
}

async function runExample(name: string, code: string, env: Record<string, string>) {
  const dir = path.join(root, '.tmp');
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `readme-${name}.mjs`);
  await writeFile(file, code);
  try {
    return await runTool(process.execPath, [file], { env, timeoutMs: 60_000 });
  } finally {
    await rm(file, { force: true });
  }
}

describe('README library examples', () => {
  let cluster: Cluster;
  let env: Record<string, string>;

  async function freshWal(slot: string) {
    await cluster.createSlot(slot);
    await cluster.generateWal(2 * MB + MB / 4);
    const end = await cluster.currentLsn();
    await cluster.generateWal(MB / 8);
    return end;
  }

  it('has the three examples', async () => {
    expect([...(await readmeExamples()).keys()]).toEqual(['archiver', 'receiver', 'sink']);
    cluster = await startCluster({ segmentSizeMB: 1 });
    env = { PGHOST: cluster.host, PGPORT: String(cluster.port), PGUSER: 'postgres' };
  });

  it('archiver: archives to END_LSN and reports each segment', async () => {
    await cluster.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots`);
    const end = await freshWal('backup');
    const archive = await tempDir('readme-');
    const result = await runExample('archiver', (await readmeExamples()).get('archiver')!, { ...env, ARCHIVE: archive, END_LSN: end });
    expect(result.code, result.stderr).toBe(0);
    const complete = (await readdir(archive)).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
    expect(complete.length).toBeGreaterThanOrEqual(2);
    expect(result.stdout.trim().split('\n')).toEqual(complete.map((n) => `archived ${n} (timeline 1)`));
  });

  it('receiver: streams to END_LSN and moves the slot', async () => {
    await cluster.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots`);
    const end = await freshWal('backup');
    const result = await runExample('receiver', (await readmeExamples()).get('receiver')!, { ...env, END_LSN: end });
    expect(result.code, result.stderr).toBe(0);
    const bytes = Number(/received (\d+) bytes/.exec(result.stdout)?.[1]);
    expect(bytes).toBeGreaterThan(2 * MB);
    expect(lsnToBigInt((await cluster.slotRestartLsn('backup'))!)).toBeGreaterThanOrEqual(lsnToBigInt(end));
  });

  it('sink: uploads every completed segment', async () => {
    await cluster.query(`select pg_drop_replication_slot(slot_name) from pg_replication_slots`);
    const end = await freshWal('backup');
    const spool = await tempDir('readme-spool-');
    const bucket = await tempDir('readme-bucket-');
    const result = await runExample('sink', (await readmeExamples()).get('sink')!, { ...env, ARCHIVE: spool, UPLOAD_DIR: bucket, END_LSN: end });
    expect(result.code, result.stderr).toBe(0);
    const spooled = (await readdir(spool)).filter((n) => /^[0-9A-F]{24}$/.test(n)).sort();
    const uploaded = (await readdir(bucket)).sort();
    expect(spooled.length).toBeGreaterThanOrEqual(2);
    expect(uploaded).toEqual(spooled);
    expect(result.stdout.trim().split('\n')).toEqual(spooled.map((n) => `uploaded ${n}`));
  });
});
