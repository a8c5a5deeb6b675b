/**
 * The server's refusals that operators meet first, each turned into one line that says what to change.
 *
 * The advice is chosen by SQLSTATE (PgError.code), which the server sends untranslated whatever its
 * lc_messages. Where one SQLSTATE covers several cases, a tie-breaker decides; it may veto advice, but
 * the case we advise on never needs the English text:
 * - the function that raised the error (the ErrorResponse's R field, untranslated) when the error
 *   carries it as `routine`;
 * - otherwise the message: file names (pg_wal/…, NNNNNNNN.history) are never translated, English
 *   phrases only ever veto (they name a different case with the same SQLSTATE).
 * The exception is XX000: an ereport(ERROR) without errcode() gets ERRCODE_INTERNAL_ERROR, shared by
 * every internal error, so the WAL-position refusals below need the routine or the English text.
 *
 * The SQLSTATE and routine of each entry are the server's (paths in postgres/postgres) and were
 * checked against PostgreSQL 15.18, which reported each with that code, routine and file.
 */
import { PgError } from './errors.js';

/** What the tie-breakers may look at. */
interface ServerErrorView {
  message: string;
  detail?: string;
  /** The server function that raised the error (R field), when known. */
  routine?: string;
}

interface Advice {
  /** SQLSTATE (5 characters), as the server sends it. */
  code: string;
  /** For a SQLSTATE shared with other cases: is this error the one the advice is for? */
  applies?: (e: ServerErrorView) => boolean;
  advice: string;
}

/** A path under the server's WAL directory: file names and directories are never translated. */
const WAL_PATH = /\bpg_(?:wal|xlog)\//;

const WAL_REMOVED = 'the server recycled WAL the archive still needs: the archive has a gap. Use a replication slot (--slot) or a larger wal_keep_size so it cannot happen again, then take a new base backup and restart with --start-at-server-position (the archive keeps a gap before it)';

const ADVICE: Advice[] = [
  // src/backend/utils/init/postinit.c, InitPostgres(): errcode(ERRCODE_INSUFFICIENT_PRIVILEGE)
  // "must be superuser or replication role to start walsender" (up to 15), "permission denied to start
  // WAL sender" + "Only roles with the REPLICATION attribute may start a WAL sender process." (16 on).
  // errcode_for_file_access() also gives 42501 for EACCES on a WAL file: that names a pg_wal path.
  { code: '42501',
    applies: (e) => (e.routine !== undefined ? e.routine === 'InitPostgres' : !WAL_PATH.test(e.message)),
    advice: 'grant it with ALTER ROLE … REPLICATION, or connect as a role that has it' },
  // src/backend/libpq/auth.c, ClientAuthentication(), case uaImplicitReject:
  // errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION) "no pg_hba.conf entry for replication
  // connection from host …". 28000 is shared with other refusals that changing pg_hba.conf does not
  // fix: a role that does not exist or may not log in (utils/init/miscinit.c,
  // InitializeSessionUserId()) and ident/peer/cert failures (auth.c, auth_failed()); an explicit
  // "reject" line (auth.c, ClientAuthentication(), uaReject) is left without advice as before.
  { code: '28000',
    applies: (e) => (e.routine !== undefined
      ? e.routine === 'ClientAuthentication'
      : !/does not exist|not permitted to log in|authentication failed|rejects/i.test(e.message)),
    advice: 'add a "host replication <user> <address> scram-sha-256" line to pg_hba.conf and reload the server' },
  // src/backend/libpq/auth.c, auth_failed(): ERRCODE_INVALID_PASSWORD only for the password, md5 and
  // scram-sha-256 methods, "password authentication failed for user …".
  { code: '28P01',
    advice: 'check the password (PGPASSWORD, ~/.pgpass or the connection string)' },
  // errcode(ERRCODE_TOO_MANY_CONNECTIONS): "number of requested standby connections exceeds
  // max_wal_senders (currently %d)" from src/backend/storage/lmgr/proc.c, InitProcess() (12 on;
  // replication/walsender.c, InitWalSenderSlot() before), and "sorry, too many clients already"
  // (proc.c, InitProcess(); postmaster/postmaster.c for CAC_TOOMANY). Also 53300, but not about WAL
  // senders: a role's or database's CONNECTION LIMIT (miscinit.c, InitializeSessionUserId();
  // postinit.c, CheckMyDatabase()) and the superuser-reserved slots (postinit.c, InitPostgres()).
  { code: '53300',
    applies: (e) => (e.routine !== undefined
      ? !['InitializeSessionUserId', 'CheckMyDatabase', 'InitPostgres'].includes(e.routine)
      : !/for role|for database|reserved/i.test(e.message)),
    advice: 'raise max_wal_senders on the server or stop another replication client' },
  // src/backend/replication/slot.c, ReplicationSlotAcquire() (also reached from
  // ReplicationSlotDrop()): errcode(ERRCODE_UNDEFINED_OBJECT) "replication slot \"%s\" does not exist".
  // SHOW of an unknown setting is 42704 too (utils/misc/guc.c, find_option()).
  { code: '42704',
    applies: (e) => (e.routine !== undefined
      ? e.routine.startsWith('ReplicationSlot')
      : !/configuration parameter/i.test(e.message)),
    advice: 'create it with --create-slot (or CREATE_REPLICATION_SLOT), or omit --slot' },
  // src/backend/replication/slot.c, ReplicationSlotAcquire(): errcode(ERRCODE_OBJECT_IN_USE)
  // "replication slot \"%s\" is active for PID %d".
  { code: '55006',
    advice: 'another client is streaming from this slot: stop it, or use another slot' },
  // src/backend/replication/walsender.c, WalSndSegmentOpen() (XLogRead() before 12): on ENOENT,
  // errcode_for_file_access() = ERRCODE_UNDEFINED_FILE, "requested WAL segment %s has already been
  // removed". TIMELINE_HISTORY of a missing file is 58P01 too (walsender.c, SendTimeLineHistory(),
  // "could not open file \"pg_wal/NNNNNNNN.history\"").
  { code: '58P01',
    applies: (e) => (e.routine !== undefined ? e.routine !== 'SendTimeLineHistory' : !/\.history\b/.test(e.message)),
    advice: WAL_REMOVED },
  // src/backend/access/transam/xlog.c, CheckXLogRemoved() (the segment went while being read): the same
  // message, but errcode_for_file_access() of a stale errno, most often ERRCODE_INTERNAL_ERROR.
  { code: 'XX000',
    applies: (e) => (e.routine !== undefined ? e.routine === 'CheckXLogRemoved' : /requested WAL segment .* has already been removed/i.test(e.message)),
    advice: WAL_REMOVED },
  // src/backend/replication/walsender.c, StartReplication(): ereport(ERROR) without errcode (XX000)
  // "requested starting point %X/%X is ahead of the WAL flush position of this server %X/%X", no detail.
  { code: 'XX000',
    applies: (e) => (e.routine !== undefined
      ? e.routine === 'StartReplication' && e.detail === undefined
      : /requested starting point .* is ahead of the WAL flush position/i.test(e.message)),
    advice: 'the archive is ahead of this server (a restored or different server?): archive it into a new directory, or remove the newest segments from the archive if they are known bad' },
  // XX000 (no errcode): src/backend/replication/walsender.c, StartReplication() "requested starting
  // point %X/%X on timeline %u is not in this server's history" with the detail "This server's history
  // forked from timeline %u at %X/%X."; src/backend/access/transam/timeline.c, tliSwitchPoint()
  // "requested timeline %u is not in this server's history".
  { code: 'XX000',
    applies: (e) => (e.routine !== undefined
      ? e.routine === 'tliSwitchPoint' || (e.routine === 'StartReplication' && e.detail !== undefined)
      : /requested starting point .* is not in this server's history|requested timeline .* is not in this server's history|not a child of this server's history/i.test(e.message)),
    advice: 'the archive followed another timeline than this server (failover or PITR): archive this server into a new directory' },
];

/** The advice for a server error, or undefined when it is not a refusal we know. */
function adviceFor(err: PgError): string | undefined {
  const routine = (err as PgError & { routine?: unknown }).routine;
  const view: ServerErrorView = {
    message: err.message,
    detail: err.detail,
    routine: typeof routine === 'string' && routine !== '' ? routine : undefined,
  };
  return ADVICE.find((a) => a.code === err.code && (a.applies?.(view) ?? true))?.advice;
}

/** Add what to change to a known server refusal; anything else is returned as it is. */
export function explainServerError(err: unknown): unknown {
  if (!(err instanceof PgError)) return err;
  const advice = adviceFor(err);
  if (advice === undefined || err.message.includes(advice)) return err;
  return new PgError({ message: `${err.message}: ${advice}`, code: err.code, severity: err.severity, detail: err.detail, hint: err.hint });
}
