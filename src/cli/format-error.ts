/** One line for an error: what failed and what to change; never a stack trace, never a password. */
import { PgError, WalstreamError, joinLines } from '../errors.js';

/** Render any thrown value as a single line for stderr. */
export function formatError(err: unknown): string {
  if (err instanceof PgError) {
    const hint = err.hint ? ` (${err.hint})` : '';
    return oneLine(`server: ${err.message}${hint}`);
  }
  if (err instanceof WalstreamError) return oneLine(err.message);
  if (err instanceof Error) return oneLine(err.message);
  return oneLine(String(err));
}

function oneLine(text: string): string {
  return joinLines(text).trim();
}
