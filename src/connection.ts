/**
 * One replication connection: connect and authenticate through `pg` (SCRAM, MD5, TLS), run
 * replication commands over the simple query protocol, and carry the copy-both stream.
 * The connection knows nothing of files; the receiver decides what the bytes mean.
 */
import pg from 'pg';
import { PgError, WalstreamError } from './errors.js';
import { type ConnectionTarget, describeTarget, sslFallbackOrder, toPgClientConfig } from './conninfo.js';
import {
  type SlotPosition, type SystemIdentity, type TimelineEnd, type TimelineHistoryFile,
  createSlotCommand, decodeIdentifySystem, decodeReadReplicationSlot, decodeTimelineEnd,
  decodeTimelineHistory, dropSlotCommand, readSlotCommand, timelineHistoryCommand,
} from './protocol/commands.js';
import { parseSizeSetting } from './lsn.js';

type Row = Record<string, unknown>;

/** Handlers for the copy-both phase of START_REPLICATION. */
export interface StreamHandlers {
  /** One CopyData payload. The buffer may be reused by the parser after this returns: copy what you keep. */
  onCopyData(payload: Buffer): void;
  /** The server ended the copy (end of timeline): answer with endCopy() to get the next-timeline result. */
  onCopyDone(): void;
}

/** Turn what `pg` throws into a PgError (server said it) or a WalstreamError (client side), one line each. */
export function toWalstreamError(err: unknown, context: string): Error {
  if (err instanceof PgError || err instanceof WalstreamError) return err;
  const e = err as { code?: string; message?: string; detail?: string; hint?: string; severity?: string; routine?: string };
  if (e && typeof e.code === 'string' && /^[0-9A-Z]{5}$/.test(e.code) && e.severity) {
    return new PgError({ message: e.message ?? 'server error', code: e.code, severity: e.severity, detail: e.detail, hint: e.hint });
  }
  const message = e?.message ?? String(err);
  return new WalstreamError('CONNECT_FAILED', `${context}: ${message}`, { cause: err });
}

/** A physical replication connection (startup parameter replication=true). */
export class ReplicationConnection {
  private readonly client: pg.Client;
  readonly target: ConnectionTarget;
  private closed = false;
  /** Set when the connection is lost or errors; later calls fail with it. */
  private failure: Error | undefined;

  private constructor(client: pg.Client, target: ConnectionTarget) {
    this.client = client;
    this.target = target;
    client.on('error', (err) => { this.failure ??= toWalstreamError(err, `connection to ${describeTarget(target)} lost`); });
  }

  /**
   * Connect to one target, trying TLS and plain in the order its sslmode asks (libpq's prefer/allow).
   * Rejects with PgError for the server's refusals (authentication, pg_hba.conf, not a replication role)
   * and WalstreamError('CONNECT_FAILED') when the host cannot be reached.
   */
  static async open(target: ConnectionTarget): Promise<ReplicationConnection> {
    const attempts = sslFallbackOrder(target);
    let lastError: unknown;
    for (const ssl of attempts) {
      const config = { ...toPgClientConfig(target), ssl, replication: 'true' } as pg.ClientConfig & { replication: string };
      const client = new pg.Client(config);
      client.on('error', () => { /* handled through the failing call */ });
      try {
        await client.connect();
        return new ReplicationConnection(client, target);
      } catch (err) {
        lastError = err;
        await client.end().catch(() => {});
        const message = (err as Error)?.message ?? '';
        // Only an SSL negotiation refusal moves on to the next attempt (as libpq does for prefer/allow).
        if (!/SSL|ssl/.test(message) || err instanceof PgError) break;
      }
    }
    const error = toWalstreamError(lastError, `could not connect to ${describeTarget(target)}`);
    const errno = (lastError as NodeJS.ErrnoException | undefined)?.code;
    if (error instanceof WalstreamError && (errno === 'ECONNREFUSED' || errno === 'ENOENT')) {
      // Nothing listens there: say what to check rather than only the socket error.
      throw new WalstreamError('CONNECT_FAILED', `${error.message}; is the server running on that host and accepting connections on that port? Check -h/-p (or host/port in -d)`, { cause: lastError });
    }
    throw error;
  }

  /** Run one replication or SQL command over the simple protocol; rows as objects. */
  async command(text: string): Promise<Row[]> {
    if (this.failure) throw this.failure;
    try {
      const result = await this.client.query(text);
      return (Array.isArray(result) ? result[result.length - 1]?.rows : result.rows) ?? [];
    } catch (err) {
      throw toWalstreamError(err, `${text.split(' ')[0]} failed on ${describeTarget(this.target)}`);
    }
  }

  /** IDENTIFY_SYSTEM: system identifier, current timeline, current WAL position. */
  async identifySystem(): Promise<SystemIdentity> {
    return decodeIdentifySystem(await this.command('IDENTIFY_SYSTEM'));
  }

  /** server_version_num, e.g. 150004. */
  async serverVersion(): Promise<number> {
    const rows = await this.command('SHOW server_version_num');
    return Number(Object.values(rows[0] ?? {})[0]);
  }

  /** wal_segment_size in bytes. */
  async segmentSize(): Promise<number> {
    const rows = await this.command('SHOW wal_segment_size');
    return parseSizeSetting(String(Object.values(rows[0] ?? {})[0]));
  }

  /** READ_REPLICATION_SLOT (PG ≥ 15). */
  async readSlot(slot: string): Promise<SlotPosition> {
    return decodeReadReplicationSlot(await this.command(readSlotCommand(slot)));
  }

  /** CREATE_REPLICATION_SLOT … PHYSICAL RESERVE_WAL; with ifNotExists a duplicate (42710) is not an error. */
  async createSlot(slot: string, ifNotExists: boolean): Promise<'created' | 'exists'> {
    try {
      await this.command(createSlotCommand(slot));
      return 'created';
    } catch (err) {
      if (ifNotExists && err instanceof PgError && err.code === '42710') return 'exists';
      throw err;
    }
  }

  /** DROP_REPLICATION_SLOT. */
  async dropSlot(slot: string): Promise<void> {
    await this.command(dropSlotCommand(slot));
  }

  /** TIMELINE_HISTORY n: the history file of timeline n (n ≥ 2). */
  async timelineHistory(timeline: number): Promise<TimelineHistoryFile> {
    return decodeTimelineHistory(await this.command(timelineHistoryCommand(timeline)));
  }

  /**
   * Send START_REPLICATION and stay in copy-both until the stream ends. Resolves with the next
   * timeline when the server ends the timeline (CopyDone, then the next_tli result set), or null when
   * the client ended the copy (endCopy). Rejects with PgError/WalstreamError when the server refuses
   * or the connection fails.
   */
  async startStreaming(commandText: string, handlers: StreamHandlers): Promise<TimelineEnd | null> {
    if (this.failure) throw this.failure;
    const connection = (this.client as unknown as { connection: NodeJS.EventEmitter }).connection;
    const onCopyData = (msg: { chunk: Buffer }) => handlers.onCopyData(msg.chunk);
    const onCopyDone = () => handlers.onCopyDone();
    connection.on('copyData', onCopyData);
    connection.on('copyDone', onCopyDone);
    try {
      const result = (await this.client.query(commandText)) as unknown as pg.QueryResult | pg.QueryResult[];
      const sets = Array.isArray(result) ? result : [result];
      const end = sets.find((s) => s.fields?.some((f) => f.name === 'next_tli'));
      return end && end.rows.length > 0 ? decodeTimelineEnd(end.rows[0]) : null;
    } catch (err) {
      throw toWalstreamError(this.failure ?? err, `streaming from ${describeTarget(this.target)} failed`);
    } finally {
      connection.off('copyData', onCopyData);
      connection.off('copyDone', onCopyDone);
    }
  }

  /** Send one CopyData message (a status update) during copy-both. */
  sendCopyData(payload: Buffer): void {
    if (this.closed || this.failure) return;
    (this.client as unknown as { connection: { sendCopyFromChunk(b: Buffer): void } }).connection.sendCopyFromChunk(payload);
  }

  /** Send CopyDone: ask the server to end streaming; startStreaming then resolves. */
  endCopy(): void {
    if (this.closed || this.failure) return;
    (this.client as unknown as { connection: { endCopyFrom(): void } }).connection.endCopyFrom();
  }

  /** Stop reading from the socket (backpressure); the server blocks once the TCP window fills. */
  pause(): void {
    this.socket()?.pause();
  }

  /** Resume reading from the socket. */
  resume(): void {
    this.socket()?.resume();
  }

  private socket(): NodeJS.ReadableStream | undefined {
    return (this.client as unknown as { connection: { stream?: NodeJS.ReadableStream } }).connection.stream;
  }

  /** Close the connection (Terminate). Safe to call twice. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.end().catch(() => {});
  }

  /** Destroy the socket at once, without a goodbye (used when the server stops answering). */
  destroy(): void {
    this.closed = true;
    const stream = this.socket() as unknown as { destroy?: () => void } | undefined;
    stream?.destroy?.();
  }
}
