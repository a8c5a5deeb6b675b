/**
 * One stream session into the archive: pulls each batch from the session and hands its WAL to the
 * SegmentConsumer; in synchronous mode flushes and reports after every batch (what a synchronous
 * standby's commit waits for), otherwise when the server asks. Socket to file is: ReplicationConnection
 * (frames) → StreamSession (batches) → here → SegmentConsumer (segments) → WalSink (files).
 */
import type { SegmentConsumer } from './segments.js';
import type { StreamOutcome, StreamSession, WalBatch } from './stream.js';

export interface ArchiveSessionOptions {
  /** Flush and report after every batch of WAL (a synchronous standby). */
  synchronous: boolean;
  /** The flush position is reported (a slot or synchronous mode): flush before answering the server. */
  reportFlush: boolean;
  /** Called with each batch before its WAL is written (monitoring: bytes received, the server's WAL end). */
  onBatch?: (batch: WalBatch) => void;
}

/**
 * Stream until the session ends; the consumer is flushed before the final status update, so a slot's
 * restart_lsn reflects what is durable. Resolves with how the session ended; rejects when the stream
 * or the archive failed (the connection is then dropped without a final status update).
 */
export async function archiveSession(session: StreamSession, consumer: SegmentConsumer, options: ArchiveSessionOptions): Promise<StreamOutcome> {
  try {
    for await (const batch of session) {
      options.onBatch?.(batch);
      for (const piece of batch.pieces) {
        const wrote = consumer.onData(piece.walStart, piece.data);
        if (wrote) await wrote; // the sink is busy: the socket rests until it is done
      }
      if (options.synchronous && batch.pieces.length > 0) {
        // Like pg_receivewal --synchronous: fsync right after the batch, then report. WAL arriving
        // meanwhile waits in the socket and makes the next batch (a natural group commit).
        if (!consumer.flushNow()) await consumer.flush();
        session.sendStatus();
      } else if (batch.replyRequested) {
        // receivelog.c ProcessKeepaliveMsg: flush first when the flush position is reported.
        if (options.reportFlush) await consumer.flush();
        session.sendStatus();
      }
    }
    await consumer.flush();
    return await session.finish();
  } finally {
    session.dispose();
  }
}
