/**
 * Errors with stable codes. `WalstreamError` is the client's own (code is a stable string a caller can
 * switch on); `PgError` carries what the server said (SQLSTATE, message, detail, hint).
 */

/** Stable client error codes. */
export type WalstreamErrorCode =
  | 'BAD_LSN'
  | 'BAD_SEGMENT_SIZE'
  | 'BAD_OPTION'
  | 'BAD_CONNINFO'
  | 'CONNECT_FAILED'
  | 'NO_PASSWORD'
  | 'TIMEOUT'
  | 'PROTOCOL'
  | 'ARCHIVE_MISMATCH'
  | 'ARCHIVE_MISSING'
  | 'ARCHIVE_DAMAGED'
  | 'ARCHIVE_IO'
  | 'ARCHIVE_LOCKED'
  | 'SERVER_VERSION'
  | 'STOPPED';

/**
 * An error raised by walstream itself; `message` is one line saying what failed and what to change.
 *
 * @example
 * ```ts
 * try {
 *   parseLsn('nonsense');
 * } catch (err) {
 *   if (err instanceof WalstreamError && err.code === 'BAD_LSN') console.error(err.message);
 * }
 * ```
 */
export class WalstreamError extends Error {
  readonly code: WalstreamErrorCode;
  constructor(code: WalstreamErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WalstreamError';
    this.code = code;
  }
}

/**
 * An error reported by the PostgreSQL server (ErrorResponse), with its SQLSTATE.
 *
 * @example
 * ```ts
 * try {
 *   await archiver.run();
 * } catch (err) {
 *   if (err instanceof PgError && err.code === '28P01') console.error('wrong password');
 * }
 * ```
 */
export class PgError extends Error {
  /** SQLSTATE, e.g. '42710' for a duplicate slot. */
  readonly code: string;
  readonly severity?: string;
  readonly detail?: string;
  readonly hint?: string;
  constructor(fields: { message: string; code: string; severity?: string; detail?: string; hint?: string }) {
    super(fields.message);
    this.name = 'PgError';
    this.code = fields.code;
    this.severity = fields.severity;
    this.detail = fields.detail;
    this.hint = fields.hint;
  }
}

/** `text` with every line break (and the blanks around it) made one space: errors are one line on stderr. */
export function joinLines(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}

/** "no space left on device (ENOSPC)" from a Node system error; its message otherwise. */
export function describeErrno(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  const code = e?.code;
  const message = e?.message ?? String(err);
  if (!code) return message;
  // Node's system errors read "ENOSPC: no space left on device, write '/path'": keep the text, name the code.
  const text = message.startsWith(`${code}: `) ? message.slice(code.length + 2).replace(/, \w+( '.*')?$/s, '') : message;
  return `${text} (${code})`;
}
