/**
 * Issue 4, acceptance 4: API documentation is generated from the types, with an example for every
 * exported class.
 */
import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('API documentation', () => {
  it('TypeDoc builds it from the types, with an example per class', async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'walstream-docs-'));
    try {
      await promisify(execFile)(process.execPath, [path.join(root, 'node_modules/typedoc/bin/typedoc'), '--out', out], { cwd: root });
      const classes = (await readdir(path.join(out, 'classes'))).sort();
      expect(classes).toEqual(['Archiver.html', 'BucketSink.html', 'DirectoryReader.html', 'DirectorySink.html', 'PgError.html', 'S3Store.html', 'WalReceiver.html', 'WalstreamError.html']);
      for (const page of classes) {
        const html = await readFile(path.join(out, 'classes', page), 'utf8');
        expect(html, page).toMatch(/<h4[^>]*>Example<\/h4>|id="example"/i);
      }
      const functions = await readdir(path.join(out, 'functions'));
      expect(functions).toEqual(expect.arrayContaining(['parseLsn.html', 'formatLsn.html', 'walFileName.html']));
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }, 120_000);
});
