/**
 * The demo's built-in load: one client inserting ~1 kB rows in batches until the server has written
 * the asked-for amount of WAL.
 */
import type pg from 'pg';

/** Rows per INSERT: about 2 MiB of WAL each, so the live line moves smoothly. */
const BATCH = 2000;

export interface LoadProgress {
  /** The server's pg_current_wal_lsn() after the latest batch. */
  serverLsn: bigint;
  /** WAL written since the load began. */
  walBytes: number;
  rows: number;
}

function lsn(text: string): bigint {
  const [hi, lo] = text.split('/');
  return (BigInt('0x' + hi) << 32n) | BigInt('0x' + lo);
}

/** Create the demo's table (idempotent). */
export async function createLoadTable(client: pg.Client): Promise<void> {
  await client.query('create table if not exists demo_rows (id bigserial primary key, payload text not null)');
}

/**
 * Insert rows into demo_rows until pg_current_wal_lsn() has moved `bytes` past where it was at the
 * start, calling `onProgress` after each batch; resolves the rows inserted. Stops early (resolving what
 * was inserted) once `signal` is aborted.
 */
export async function runLoad(client: pg.Client, bytes: number, signal: AbortSignal, onProgress: (p: LoadProgress) => void): Promise<number> {
  const current = async () => lsn((await client.query('select pg_current_wal_lsn()::text as l')).rows[0].l as string);
  const start = await current();
  let rows = 0;
  for (let walBytes = 0; walBytes < bytes && !signal.aborted; ) {
    await client.query(`insert into demo_rows (payload) select md5(g::text) || repeat('x', 960) from generate_series(1, ${BATCH}) g`);
    rows += BATCH;
    const serverLsn = await current();
    walBytes = Number(serverLsn - start);
    onProgress({ serverLsn, walBytes, rows });
  }
  return rows;
}
