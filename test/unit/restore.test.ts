import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { serverUser } from '../harness/tools.js';
import { restoreMain } from '../../src/cli/restore.js';
import { WalstreamError } from '../../src/errors.js';
import { restoreWalFile } from '../../src/restore.js';

const SEGMENT = '000000010000000000000003';
const MB = 1 << 20;
/** The built CLI (npm test builds first). */
const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/cli/main.js');

let root: string;
let archive: string;
let pgwal: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'walstream-restore-'));
  archive = join(root, 'archive');
  pgwal = join(root, 'pg_wal');
  await mkdir(archive);
  await mkdir(pgwal);
});

afterEach(async () => {
  vi.restoreAllMocks();
  await rm(root, { recursive: true, force: true });
});

/** Everything in pg_wal: proves no DEST and no temp file was left behind. */
async function pgwalEntries(): Promise<string[]> {
  return (await readdir(pgwal)).sort();
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<WalstreamError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WalstreamError);
  expect((err as WalstreamError).code).toBe(code);
  return err as WalstreamError;
}

describe('restoreWalFile', () => {
  it('restores a plain segment byte for byte', async () => {
    const data = randomBytes(MB);
    await writeFile(join(archive, SEGMENT), data);
    const dest = join(pgwal, 'RECOVERYXLOG');
    await expect(restoreWalFile({ archiveDir: archive, walFileName: SEGMENT, destination: dest })).resolves.toBe('restored');
    expect((await readFile(dest)).equals(data)).toBe(true);
    expect(await pgwalEntries()).toEqual(['RECOVERYXLOG']);
  });

  it('restores a .gz segment as its decompressed bytes', async () => {
    const data = randomBytes(2 * MB);
    await writeFile(join(archive, SEGMENT + '.gz'), gzipSync(data));
    const dest = join(pgwal, 'RECOVERYXLOG');
    await expect(restoreWalFile({ archiveDir: archive, walFileName: SEGMENT, destination: dest })).resolves.toBe('restored');
    expect((await readFile(dest)).equals(data)).toBe(true);
    expect(await pgwalEntries()).toEqual(['RECOVERYXLOG']);
  });

  it('prefers the plain file over the .gz one', async () => {
    const plain = randomBytes(MB);
    await writeFile(join(archive, SEGMENT), plain);
    await writeFile(join(archive, SEGMENT + '.gz'), gzipSync(randomBytes(MB)));
    const dest = join(pgwal, 'RECOVERYXLOG');
    await restoreWalFile({ archiveDir: archive, walFileName: SEGMENT, destination: dest });
    expect((await readFile(dest)).equals(plain)).toBe(true);
  });

  it('replaces an existing destination', async () => {
    const data = randomBytes(MB);
    await writeFile(join(archive, SEGMENT), data);
    const dest = join(pgwal, 'RECOVERYXLOG');
    await writeFile(dest, 'stale');
    await restoreWalFile({ archiveDir: archive, walFileName: SEGMENT, destination: dest });
    expect((await readFile(dest)).equals(data)).toBe(true);
  });

  it("returns 'missing' and creates nothing when the file is not archived", async () => {
    const dest = join(pgwal, 'RECOVERYHISTORY');
    await expect(restoreWalFile({ archiveDir: archive, walFileName: '00000002.history', destination: dest })).resolves.toBe('missing');
    await expect(restoreWalFile({ archiveDir: archive, walFileName: SEGMENT, destination: dest })).resolves.toBe('missing');
    expect(await pgwalEntries()).toEqual([]);
  });

  it('restores a history file of any size', async () => {
    const history = '1\t0/3000000\tno recovery target specified\n';
    await writeFile(join(archive, '00000002.history'), history);
    const dest = join(pgwal, 'RECOVERYHISTORY');
    await expect(restoreWalFile({ archiveDir: archive, walFileName: '00000002.history', destination: dest })).resolves.toBe('restored');
    expect(await readFile(dest, 'utf8')).toBe(history);
  });

  it('restores a .gz history file, and .partial and .backup names without a size check', async () => {
    await writeFile(join(archive, '00000003.history.gz'), gzipSync('2\t0/5000000\tbefore 2000-01-01\n'));
    await restoreWalFile({ archiveDir: archive, walFileName: '00000003.history', destination: join(pgwal, 'H') });
    expect(await readFile(join(pgwal, 'H'), 'utf8')).toBe('2\t0/5000000\tbefore 2000-01-01\n');

    await writeFile(join(archive, SEGMENT + '.partial'), 'short');
    await expect(
      restoreWalFile({ archiveDir: archive, walFileName: SEGMENT + '.partial', destination: join(pgwal, 'P') }),
    ).resolves.toBe('restored');
    const backup = `${SEGMENT}.00000028.backup`;
    await writeFile(join(archive, backup), 'START WAL LOCATION: 0/3000028\n');
    await expect(restoreWalFile({ archiveDir: archive, walFileName: backup, destination: join(pgwal, 'B') })).resolves.toBe('restored');
    expect(await readFile(join(pgwal, 'B'), 'utf8')).toBe('START WAL LOCATION: 0/3000028\n');
  });

  it('rejects a segment of the wrong size as ARCHIVE_DAMAGED, leaving no DEST and no temp file', async () => {
    await writeFile(join(archive, SEGMENT), randomBytes(MB - 8192));
    const dest = join(pgwal, 'RECOVERYXLOG');
    const err = await expectCode(restoreWalFile({ archiveDir: archive, walFileName: SEGMENT, destination: dest }), 'ARCHIVE_DAMAGED');
    expect(err.message).toContain(SEGMENT);
    expect(err.message).toContain(String(MB - 8192));
    expect(await pgwalEntries()).toEqual([]);
  });

  it('rejects an empty segment and a wrong-size .gz segment as ARCHIVE_DAMAGED', async () => {
    await writeFile(join(archive, SEGMENT), '');
    await expectCode(restoreWalFile({ archiveDir: archive, walFileName: SEGMENT, destination: join(pgwal, 'X') }), 'ARCHIVE_DAMAGED');
    const other = '000000010000000000000004';
    await writeFile(join(archive, other + '.gz'), gzipSync(randomBytes(3 * MB)));
    await expectCode(restoreWalFile({ archiveDir: archive, walFileName: other, destination: join(pgwal, 'X') }), 'ARCHIVE_DAMAGED');
    expect(await pgwalEntries()).toEqual([]);
  });

  it('rejects a segment name impossible for its size as ARCHIVE_DAMAGED', async () => {
    // With 16 MB segments the last 8 digits stop at 000000FF; a 16 MB file named ...00000100 is not a segment.
    const name = '000000010000000000000100';
    await writeFile(join(archive, name), Buffer.alloc(16 * MB));
    await expectCode(restoreWalFile({ archiveDir: archive, walFileName: name, destination: join(pgwal, 'X') }), 'ARCHIVE_DAMAGED');
    expect(await pgwalEntries()).toEqual([]);
  });

  it('rejects corrupt and truncated gzip as ARCHIVE_DAMAGED, leaving no DEST and no temp file', async () => {
    const dest = join(pgwal, 'RECOVERYXLOG');
    await writeFile(join(archive, SEGMENT + '.gz'), randomBytes(4096));
    let err = await expectCode(restoreWalFile({ archiveDir: archive, walFileName: SEGMENT, destination: dest }), 'ARCHIVE_DAMAGED');
    expect(err.message).toContain(SEGMENT + '.gz');
    expect(err.message).toContain('gzip');
    expect(await pgwalEntries()).toEqual([]);

    const gz = gzipSync(randomBytes(MB));
    await writeFile(join(archive, SEGMENT + '.gz'), gz.subarray(0, gz.length - 100));
    err = await expectCode(restoreWalFile({ archiveDir: archive, walFileName: SEGMENT, destination: dest }), 'ARCHIVE_DAMAGED');
    expect(await pgwalEntries()).toEqual([]);

    // A corrupt non-segment (history) file is damaged too.
    await writeFile(join(archive, '00000002.history.gz'), 'not gzip at all');
    await expectCode(
      restoreWalFile({ archiveDir: archive, walFileName: '00000002.history', destination: join(pgwal, 'RECOVERYHISTORY') }),
      'ARCHIVE_DAMAGED',
    );
    expect(await pgwalEntries()).toEqual([]);
  });

  it('throws ARCHIVE_MISSING for a missing archive directory', async () => {
    const err = await expectCode(
      restoreWalFile({ archiveDir: join(root, 'nope'), walFileName: SEGMENT, destination: join(pgwal, 'X') }),
      'ARCHIVE_MISSING',
    );
    expect(err.message).toContain(join(root, 'nope'));
    await writeFile(join(root, 'file'), 'x');
    await expectCode(restoreWalFile({ archiveDir: join(root, 'file'), walFileName: SEGMENT, destination: join(pgwal, 'X') }), 'ARCHIVE_MISSING');
    expect(await pgwalEntries()).toEqual([]);
  });

  it('refuses file names that are not plain names', async () => {
    await expectCode(restoreWalFile({ archiveDir: archive, walFileName: '../etc/passwd', destination: join(pgwal, 'X') }), 'BAD_OPTION');
    await expectCode(restoreWalFile({ archiveDir: archive, walFileName: '', destination: join(pgwal, 'X') }), 'BAD_OPTION');
  });

  it('fails with ARCHIVE_IO when the destination directory does not exist, leaving nothing', async () => {
    await writeFile(join(archive, SEGMENT), randomBytes(MB));
    await expectCode(
      restoreWalFile({ archiveDir: archive, walFileName: SEGMENT, destination: join(root, 'no-such-dir', 'RECOVERYXLOG') }),
      'ARCHIVE_IO',
    );
    expect(existsSync(join(root, 'no-such-dir'))).toBe(false);
  });
});

describe('restoreMain (walstream restore)', () => {
  function capture() {
    const out: string[] = [];
    const err: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      out.push(String(chunk));
      return true;
    });
    vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      err.push(String(chunk));
      return true;
    });
    return { out, err };
  }

  it('exits 0 and writes nothing when the file is restored', async () => {
    const data = randomBytes(MB);
    await writeFile(join(archive, SEGMENT), data);
    const dest = join(pgwal, 'RECOVERYXLOG');
    const io = capture();
    expect(await restoreMain([SEGMENT, dest, '-D', archive])).toBe(0);
    vi.restoreAllMocks();
    expect(io.out.join('')).toBe('');
    expect(io.err.join('')).toBe('');
    expect((await readFile(dest)).equals(data)).toBe(true);
  });

  it('accepts --directory ARCHIVE, --directory=ARCHIVE, -DARCHIVE and options before the arguments', async () => {
    await writeFile(join(archive, '00000002.history'), 'h');
    const io = capture();
    expect(await restoreMain(['--directory', archive, '00000002.history', join(pgwal, 'a')])).toBe(0);
    expect(await restoreMain(['00000002.history', join(pgwal, 'b'), `--directory=${archive}`])).toBe(0);
    expect(await restoreMain([`-D${archive}`, '00000002.history', join(pgwal, 'c')])).toBe(0);
    vi.restoreAllMocks();
    expect(io.err.join('')).toBe('');
    expect(await pgwalEntries()).toEqual(['a', 'b', 'c']);
  });

  it('exits 1 silently when the file is not in the archive', async () => {
    const io = capture();
    expect(await restoreMain(['00000002.history', join(pgwal, 'RECOVERYHISTORY'), '-D', archive])).toBe(1);
    vi.restoreAllMocks();
    expect(io.out.join('')).toBe('');
    expect(io.err.join('')).toBe('');
    expect(await pgwalEntries()).toEqual([]);
  });

  it('exits 126 with one stderr line for a damaged file', async () => {
    await writeFile(join(archive, SEGMENT + '.gz'), 'garbage');
    const io = capture();
    expect(await restoreMain([SEGMENT, join(pgwal, 'RECOVERYXLOG'), '-D', archive])).toBe(126);
    vi.restoreAllMocks();
    expect(io.out.join('')).toBe('');
    const lines = io.err.join('').split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^walstream restore: .*000000010000000000000003\.gz.*; /);
    expect(await pgwalEntries()).toEqual([]);
  });

  it('exits 126 with one stderr line for a missing archive directory', async () => {
    const io = capture();
    expect(await restoreMain([SEGMENT, join(pgwal, 'RECOVERYXLOG'), '-D', join(root, 'nope')])).toBe(126);
    vi.restoreAllMocks();
    const lines = io.err.join('').split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^walstream restore: archive directory ".*nope" does not exist; /);
  });

  it('exits 126 for an unreadable archive directory', async () => {
    await writeFile(join(archive, SEGMENT), randomBytes(MB));
    await chmod(archive, 0o000);
    try {
      const user = serverUser();
      if (!user) {
        const io = capture();
        expect(await restoreMain([SEGMENT, join(pgwal, 'RECOVERYXLOG'), '-D', archive])).toBe(126);
        vi.restoreAllMocks();
        expect(io.err.join('')).toMatch(/^walstream restore: .*; .*\n$/);
        return;
      }
      // As root every directory is readable: run the built CLI as the server's OS user instead, which
      // is who runs restore_command. The temp directory must let that user reach the archive path.
      await chmod(root, 0o755);
      const run = spawnSync(process.execPath, [CLI, 'restore', SEGMENT, join(pgwal, 'RECOVERYXLOG'), '-D', archive], { uid: user.uid, gid: user.gid, encoding: 'utf8' });
      expect(run.stderr).toMatch(/^walstream restore: .*EACCES.*; .*\n$/);
      expect(run.status).toBe(126);
      expect(await pgwalEntries()).toEqual([]);
    } finally {
      await chmod(archive, 0o755);
    }
  });

  it.each([
    [[SEGMENT, 'dest'], /no archive directory given; add -D ARCHIVE/],
    [[SEGMENT, '-D', '/tmp'], /expected 2 arguments \(WALFILE DEST\), got 1; /],
    [['a', 'b', 'c', '-D', '/tmp'], /expected 2 arguments \(WALFILE DEST\), got 3; /],
    [[SEGMENT, 'dest', '-D'], /option -D needs a value; /],
    [[SEGMENT, 'dest', '--directory='], /option --directory needs a value; /],
    [[SEGMENT, 'dest', '-D', '/tmp', '--verbose'], /unknown option "--verbose"; /],
  ])('exits 126 with one stderr line for bad usage %j', async (argv, pattern) => {
    const io = capture();
    expect(await restoreMain(argv)).toBe(126);
    vi.restoreAllMocks();
    expect(io.out.join('')).toBe('');
    const lines = io.err.join('').split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]!.startsWith('walstream restore: ')).toBe(true);
    expect(lines[0]).toMatch(pattern);
  });

  it('prints usage on -h and --help and exits 0', async () => {
    const io = capture();
    expect(await restoreMain(['-h'])).toBe(0);
    expect(await restoreMain(['--help'])).toBe(0);
    vi.restoreAllMocks();
    expect(io.out.join('')).toContain('Usage: walstream restore WALFILE DEST -D ARCHIVE');
    expect(io.err.join('')).toBe('');
  });
});

describe('walstream restore start-up cost', () => {
  it('src/cli/restore.ts imports only node built-ins and a few small modules', async () => {
    const srcDir = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');
    const seen = new Set<string>();
    const external: string[] = [];
    const visit = async (file: string): Promise<void> => {
      if (seen.has(file)) return;
      seen.add(file);
      const text = await readFile(file, 'utf8');
      // What loads at run time: type-only imports are erased.
      for (const match of text.matchAll(/^\s*(?:import|export)\s(?!type\s)[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
        const spec = match[1]!;
        if (spec.startsWith('.')) await visit(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
        else external.push(spec);
      }
    };
    await visit(join(srcDir, 'cli/restore.ts'));
    expect(external.every((spec) => spec.startsWith('node:'))).toBe(true);
    expect([...seen].map((f) => f.slice(srcDir.length + 1)).sort()).toEqual([
      'archive/codec.ts', 'archive/reader.ts', 'archive/scan.ts', 'cli/restore.ts', 'errors.ts', 'lsn.ts', 'page-check.ts', 'restore.ts',
      'restore/helper-process.ts', 'restore/partial.ts', 'restore/prefetch-call.ts', 'restore/spool.ts',
    ]);
  });
});
