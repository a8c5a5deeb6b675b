/**
 * Shared by the other conninfo modules: libpq's compiled-in defaults, Unix-socket host detection
 * and the BAD_CONNINFO error helper. Imports no sibling, so pgpass.ts and resolve.ts need not import each other.
 */
import { WalstreamError } from '../errors.js';

/** The socket directory libpq uses when no host is given (Debian/Ubuntu/RHEL packages' DEFAULT_PGSOCKET_DIR). */
export const DEFAULT_SOCKET_DIR = '/var/run/postgresql';
/** libpq's DEF_PGPORT. */
export const DEFAULT_PORT = 5432;
/** application_name used by resolveTargets() when the caller gives no defaultApplicationName. */
export const DEFAULT_APPLICATION_NAME = 'pg-walstream';

export function badConninfo(message: string): WalstreamError {
  return new WalstreamError('BAD_CONNINFO', message);
}

/** libpq's is_unixsock_path(): an absolute path (or, on Linux, '@' for the abstract namespace). */
export function isUnixSocketHost(host: string): boolean {
  return host.startsWith('/') || host.startsWith('@');
}
