/**
 * Loading the connection module (and with it `pg`) must not load Node's bundled fetch (undici): pg's
 * Cloudflare probe constructs a Response when `navigator` is absent (Node 20), ~18 ms of every
 * walstream start-up. And the stand-in `navigator` defined for that must be gone afterwards.
 * Runs in a fresh process on the built module (npm test builds first), as a user's process would.
 */
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { execFileSync } from 'node:child_process';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const connectionModule = pathToFileURL(path.join(root, 'dist/connection.js')).href;

function loadInFreshProcess(prelude = ''): { undici: boolean; navigator: string } {
  const script = `${prelude}
    await import(${JSON.stringify(connectionModule)});
    const undici = process.moduleLoadList.some((m) => m.includes('undici'));
    console.log(JSON.stringify({ undici, navigator: typeof navigator === 'undefined' ? 'undefined' : JSON.stringify(navigator.userAgent ?? navigator) }));`;
  return JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
}

describe('loading pg', () => {
  it('does not load undici, and leaves no navigator behind', () => {
    const before = JSON.parse(execFileSync(process.execPath, ['-p', "JSON.stringify(typeof navigator === 'undefined' ? 'undefined' : navigator.userAgent)"], { encoding: 'utf8' }));
    const loaded = loadInFreshProcess();
    expect(loaded.undici).toBe(false);
    // Node 20 has no navigator (and must still have none); Node 21+ keeps its own.
    expect(loaded.navigator).toBe(before === 'undefined' ? 'undefined' : JSON.stringify(before));
  });

  it('leaves a navigator that was already there alone', () => {
    const loaded = loadInFreshProcess("globalThis.navigator ??= { userAgent: 'mine' };");
    expect(loaded.navigator).not.toBe('undefined');
    expect(loaded.undici).toBe(false);
  });
});
