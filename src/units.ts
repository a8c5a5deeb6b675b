/**
 * Sizes and durations as people write them on a command line, and bytes as short human figures.
 * Size units are 1024-based, as in PostgreSQL ("16MB" is 16 MiB).
 */
import { WalstreamError } from './errors.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Bytes as a short human figure ("512 KiB", "1.5 MiB", "2.00 GiB"). */
export function formatBytes(bytes: number | bigint): string {
  const n = Number(bytes);
  if (n >= GiB) return `${(n / GiB).toFixed(2)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  return `${(n / KiB).toFixed(0)} KiB`;
}

const SIZE_UNITS: Record<string, number> = { b: 1, k: KiB, kb: KiB, kib: KiB, m: MiB, mb: MiB, mib: MiB, g: GiB, gb: GiB, gib: GiB, t: 1024 * GiB, tb: 1024 * GiB, tib: 1024 * GiB };

/**
 * "2GB", "512MB", "100 MiB", "1e9", "1073741824" → bytes, a positive integer; throws
 * WalstreamError('BAD_OPTION') naming `flag` otherwise.
 */
export function parseByteSize(text: string, flag: string): number {
  const match = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*(B|K|kB|KB|KiB|M|MB|MiB|G|GB|GiB|T|TB|TiB)?\s*$/i.exec(text);
  const bytes = match ? Math.floor(Number(match[1]) * SIZE_UNITS[(match[2] ?? 'b').toLowerCase()]!) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new WalstreamError('BAD_OPTION', `invalid size "${text}" for ${flag}: give a positive size such as 2GB, 512MB or 1073741824`);
  }
  return bytes;
}

const DURATION_UNITS: Record<string, number> = { ms: 0.001, s: 1, sec: 1, m: 60, min: 60, h: 3600, d: 86400 };

/** "90", "90s", "15m", "2h", "1d", "500ms" → seconds (a positive number); throws WalstreamError('BAD_OPTION') naming `flag`. */
export function parseDuration(text: string, flag: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d)?\s*$/i.exec(text);
  const seconds = match ? Number(match[1]) * DURATION_UNITS[(match[2] ?? 's').toLowerCase()]! : NaN;
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new WalstreamError('BAD_OPTION', `invalid duration "${text}" for ${flag}: give a positive duration such as 90s, 15m, 2h or 1d`);
  }
  return seconds;
}

/** A duration in seconds as a short figure ("45 s", "12 min", "3.5 h", "2.0 d"). */
export function formatDuration(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

/** A whole number from `min` to `max` given for `flag`; BAD_OPTION, one line, otherwise. */
export function wholeNumber(text: string, flag: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new WalstreamError('BAD_OPTION', `invalid ${flag} "${text}": give a whole number from ${min} to ${max}`);
  return n;
}
