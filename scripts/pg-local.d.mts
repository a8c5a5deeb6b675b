/** Directory holding the PostgreSQL binaries ($PG_BIN, `pg_config --bindir`, or the highest /usr/lib/postgresql/<v>/bin). */
export function findPgBin(): string;
/** The `postgres` OS user's uid/gid when running as root, else null. */
export function serverUser(): { uid: number; gid: number } | null;
/** Whether `pid` is a live process (zombies count as dead). */
export function pidAlive(pid: number): boolean;
/** SIGQUIT a postmaster, wait up to waitMs (default 5000) for it to exit, then SIGKILL; synchronous, never throws. */
export function quitServerSync(pid: number, waitMs?: number): void;
