/**
 * The receive path does not load `pg` (#19): walstream opens its connections itself (connection.ts,
 * protocol/startup.ts), and `require('pg')` alone cost ~14.5 MiB of RSS and ~17 ms on Node 20, plus
 * Node's bundled fetch (undici) that pg's Cloudflare probe loaded when `navigator` is absent. Only
 * `walstream demo` still uses pg. node:tls (~1.4 MiB) loads only once a server agrees to TLS. Runs in a fresh process on the built modules (npm test builds
 * first), as a user's process would.
 */
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execFileSync } from 'node:child_process';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dist = (file: string) => JSON.stringify(pathToFileURL(path.join(root, 'dist', file)).href);

interface Loaded {
  pg: string[];
  undici: boolean;
  /** node:tls, loaded only once a server agrees to TLS. */
  tls: boolean;
}

/** Run `body` (ESM) in a fresh process, then list the pg modules in the CommonJS cache and whether undici and tls loaded. */
function loadedAfter(body: string): Loaded {
  const script = `
    import { createRequire } from 'node:module';
    ${body}
    const cache = Object.keys(createRequire(import.meta.url).cache);
    const pg = cache.filter((k) => /[\\\\/]node_modules[\\\\/](pg|pg-[a-z-]+|pgpass)[\\\\/]/.test(k));
    process.stdout.write('\\n@@loaded ' + JSON.stringify({ pg, undici: process.moduleLoadList.some((m) => m.includes('undici')), tls: process.moduleLoadList.includes('NativeModule tls') }) + '\\n');`;
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
  const line = out.split('\n').find((l) => l.startsWith('@@loaded '));
  expect(line, out).toBeDefined();
  return JSON.parse(line!.slice('@@loaded '.length)) as Loaded;
}

describe('the receive path does not load pg', () => {
  it('the connection, the slot probe and the library entry point', () => {
    const loaded = loadedAfter(`await import(${dist('connection.js')}); await import(${dist('slot-probe.js')});`);
    expect(loaded.pg).toEqual([]);
    expect(loaded.undici).toBe(false);
    expect(loaded.tls).toBe(false);
    // The whole library still loads no pg. (Not undici: from Node 22 on, node:http, which the metrics
    // server imports, loads Node's bundled undici itself.)
    expect(loadedAfter(`await import(${dist('index.js')});`).pg).toEqual([]);
  });

  it('`walstream receive` (the CLI program with the receive command)', () => {
    const loaded = loadedAfter(`const { runProgram } = await import(${dist('cli/program.js')}); await runProgram(['node', 'walstream', 'receive']); // no -D: a usage error, after the receive command's modules loaded`);
    expect(loaded.pg).toEqual([]);
    expect(loaded.undici).toBe(false);
    expect(loaded.tls).toBe(false);
  });

  it('(the check itself sees pg when it is loaded)', () => {
    expect(loadedAfter(`await import('pg');`).pg.length).toBeGreaterThan(0);
  });
});
