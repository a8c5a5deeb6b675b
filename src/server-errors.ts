/**
 * The server's refusals that operators meet first, each turned into one line that says what to change.
 * Message texts are the server's (replication/walsender.c, libpq/auth.c, replication/slot.c).
 */
import { PgError } from './errors.js';

interface Advice {
  match: RegExp;
  advice: string;
}

const ADVICE: Advice[] = [
  { match: /must be superuser or replication role|permission denied to start WAL sender|must have the REPLICATION attribute/i,
    advice: 'grant it with ALTER ROLE … REPLICATION, or connect as a role that has it' },
  { match: /no pg_hba\.conf entry for replication connection/i,
    advice: 'add a "host replication <user> <address> scram-sha-256" line to pg_hba.conf and reload the server' },
  { match: /password authentication failed/i,
    advice: 'check the password (PGPASSWORD, ~/.pgpass or the connection string)' },
  { match: /number of requested standby connections exceeds max_wal_senders|too many clients/i,
    advice: 'raise max_wal_senders on the server or stop another replication client' },
  { match: /replication slot .* does not exist/i,
    advice: 'create it with --create-slot (or CREATE_REPLICATION_SLOT), or omit --slot' },
  { match: /replication slot .* is active/i,
    advice: 'another client is streaming from this slot: stop it, or use another slot' },
  { match: /requested starting point .* is ahead of the WAL flush position/i,
    advice: 'the archive is ahead of this server (a restored or different server?): archive it into a new directory, or remove the newest segments from the archive if they are known bad' },
  { match: /requested starting point .* is not in this server's history|requested timeline .* is not in this server's history|not a child of this server's history/i,
    advice: 'the archive followed another timeline than this server (failover or PITR): archive this server into a new directory' },
  { match: /requested WAL segment .* has already been removed/i,
    advice: 'the server recycled WAL the archive still needs: the archive has a gap. Use a replication slot (--slot) or a larger wal_keep_size so it cannot happen again, then take a new base backup and restart with --start-at-server-position (the archive keeps a gap before it)' },
];

/** Add what to change to a known server refusal; anything else is returned as it is. */
export function explainServerError(err: unknown): unknown {
  if (!(err instanceof PgError)) return err;
  const found = ADVICE.find((a) => a.match.test(err.message));
  if (!found || err.message.includes(found.advice)) return err;
  return new PgError({ message: `${err.message}: ${found.advice}`, code: err.code, severity: err.severity, detail: err.detail, hint: err.hint });
}
