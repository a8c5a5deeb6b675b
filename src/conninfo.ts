/**
 * Connection parameters, interpreted the way libpq (PostgreSQL 15, fe-connect.c) and pg_receivewal
 * (streamutil.c GetConnection) interpret them: a keyword/value string or a postgres:// URI, explicit
 * fields (the CLI's -h/-p/-U), the PG* environment variables, compiled-in defaults and the password
 * file. The result is a list of fully resolved targets, one per host, tried in order by the caller.
 *
 * Passwords never appear in error messages, in describeTarget() or in an enumerable property of a
 * target (ConnectionTarget.password is non-enumerable, so JSON.stringify / console.log / spreading
 * a target do not show it).
 */
export { DEFAULT_APPLICATION_NAME, DEFAULT_PORT, DEFAULT_SOCKET_DIR, isUnixSocketHost } from './conninfo/common.js';
export { parseConnectionString, redactConnectionString } from './conninfo/parse.js';
export { lookupPgpass } from './conninfo/pgpass.js';
export { type ConnectionOptions, type ConnectionTarget, describeTarget, resolveTargets, type SslMode, targetsFor } from './conninfo/resolve.js';
export { noPasswordError, sslFallbackOrder } from './conninfo/tls.js';
