/** The version line `-V/--version` prints. */
import { createRequire } from 'node:module';

/** "walstream (pg-walstream) X.Y.Z", from package.json. */
export function packageVersion(): string {
  const require = createRequire(import.meta.url);
  const { version } = require('../../package.json') as { version: string };
  return `walstream (pg-walstream) ${version}`;
}
