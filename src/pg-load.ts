/**
 * Imported just before `pg`, to spare every walstream process ~18 ms of start-up on Node 20.
 *
 * When pg/lib/stream.js loads it asks whether it runs in a Cloudflare Worker: if `navigator` is
 * absent it constructs a `Response`, which on Node 20 loads the whole bundled undici (fetch) first.
 * Measured here: `require('pg')` takes 34 ms with the probe and 17 ms without it. Node 21 and later
 * define `navigator` (userAgent "Node.js/21…"), so there the probe is already cheap; on Node 20 a
 * stand-in with Node's own userAgent is defined while pg loads and removed right after
 * (`endPgLoad`, called by connection.ts once its imports have run), so nothing else ever sees it.
 */
const globals = globalThis as { navigator?: unknown };
let standIn: object | null = null;
if (globals.navigator === undefined) {
  standIn = { userAgent: `Node.js/${process.versions.node.split('.')[0]}` };
  globals.navigator = standIn;
}

/** Remove the stand-in `navigator`, if this module defined it and nobody has replaced it since. */
export function endPgLoad(): void {
  if (standIn !== null && globals.navigator === standIn) delete globals.navigator;
  standIn = null;
}
