/**
 * `receive --verify`: each segment checked (walker.ts) as soon as it is archived, read back from the
 * sink, one at a time and off the streaming path. At most one segment waits while another is being
 * checked; one arriving when both places are taken replaces the waiting one, which is reported as
 * skipped (so a slow disk never builds a queue). Consecutive segments share the record chain, so
 * prev-links and records crossing a segment boundary are checked as in `walstream verify`.
 */
import type { WalSink } from '../archive/sink.js';
import { decompressFile } from '../archive/codec.js';
import { formatLsn } from '../lsn.js';
import type { CompletedSegment } from '../segments.js';
import { type ChainState, type WalkContext, walkSegment } from './walker.js';

/** The outcome for one archived segment. */
export interface SegmentVerdict {
  name: string;
  /** True when sound (and when skipped: nothing was found wrong). */
  ok: boolean;
  /** What is wrong, one line each. */
  problems: string[];
  /** Not checked: another segment was waiting already when a newer one arrived. */
  skipped: boolean;
}

export class LiveVerifier {
  private running = false;
  private waiting: CompletedSegment | null = null;
  private chain: ChainState | null = null;
  private readonly shared: Omit<WalkContext, 'credit'> = {};
  private idle: Promise<void> = Promise.resolve();
  private settle: () => void = () => {};

  /**
   * `sink`: where segments are read back from; `suffix`: the compression suffix archived files carry
   * ('' for none); `report`: called once per segment offered.
   */
  constructor(private readonly sink: WalSink, private readonly suffix: string, private readonly report: (verdict: SegmentVerdict) => void) {}

  /** Check `segment` when the one in progress is done; never waits, never throws. */
  offer(segment: CompletedSegment): void {
    if (!this.running) {
      this.running = true;
      this.idle = new Promise((resolve) => { this.settle = resolve; });
      void this.drain(segment);
      return;
    }
    if (this.waiting) this.report({ name: this.waiting.name, ok: true, problems: [], skipped: true });
    this.waiting = segment;
  }

  /** Resolves once nothing is being checked or waiting (tests, shutdown). */
  whenIdle(): Promise<void> {
    return this.idle;
  }

  private async drain(first: CompletedSegment): Promise<void> {
    let segment: CompletedSegment | null = first;
    while (segment) {
      this.report(await this.check(segment));
      segment = this.waiting;
      this.waiting = null;
    }
    this.running = false;
    this.settle();
  }

  private async check(segment: CompletedSegment): Promise<SegmentVerdict> {
    const fileName = segment.name + this.suffix;
    const verdict = (problems: string[]): SegmentVerdict => ({ name: segment.name, ok: problems.length === 0, problems, skipped: false });
    try {
      const raw = this.sink.readFile ? await this.sink.readFile(fileName) : await this.sink.readHead(fileName, Number(segment.endLsn - segment.startLsn));
      if (!raw) return verdict([`${fileName} could not be read back from the archive`]);
      const data = await decompressFile(fileName, Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength));
      const segmentSize = Number(segment.endLsn - segment.startLsn);
      const ctx: WalkContext = { ...this.shared, credit: () => {} };
      const walked = walkSegment({ fileName, timeline: segment.timeline, segno: segment.startLsn / BigInt(segmentSize), segmentSize, data, partial: false }, ctx, this.chain);
      Object.assign(this.shared, { systemId: ctx.systemId, magic: ctx.magic, blockSize: ctx.blockSize });
      this.chain = walked.state;
      return verdict(walked.problem ? [walked.problem] : []);
    } catch (err) {
      this.chain = null;
      return verdict([`${fileName} (${formatLsn(segment.startLsn)}): ${(err as Error).message}`]);
    }
  }
}
