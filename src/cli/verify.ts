/**
 * `walstream verify -D ARCHIVE [--from SEGMENT] [--all] [--json]`: every record of every segment
 * checked (src/walfile/verify-archive.ts). One line per fault, `FILE: what is wrong`, on stdout;
 * a summary line; exit 1 when anything is wrong (process.exitCode: the program's error boundary
 * turns usage errors into one `walstream: ...` line and exit 1 too).
 */
import { Command, InvalidArgumentError } from 'commander';
import { verifyArchive, type VerifyResult } from '../walfile/verify-archive.js';
import { formatBytes, ProgressLine } from './progress.js';
import { type SourceFlags, addS3Options, archiveFromFlags } from './bucket-flags.js';

interface VerifyFlags extends SourceFlags {
  from?: string;
  all?: boolean;
  json?: boolean;
  jobs?: number;
}

/** The result as JSON for machines: counts, the watermark, and each file with its problems. */
function toJson(result: VerifyResult): string {
  return JSON.stringify({
    ok: result.ok, segments: result.segments, records: result.records, bytes: result.bytes,
    startedAfter: result.startedAfter, watermark: result.watermark, systemId: result.systemId,
    problems: result.files.flatMap((f) => f.problems.map((problem) => ({ file: f.file, problem }))),
    files: result.files, skipped: result.skipped,
  }, null, 2);
}

async function verify(flags: VerifyFlags): Promise<void> {
  let done = 0;
  let total = 0;
  let bytes = 0;
  const progress = new ProgressLine(!flags.json, () => BigInt(bytes), (rate) => `  verified ${done}/${total} segments  ${formatBytes(bytes)}  ${rate}`);
  const archive = archiveFromFlags(flags); // bad flags: one line, before any progress is drawn
  progress.begin();
  let result: VerifyResult;
  try {
    result = await verifyArchive({
      archive, from: flags.from, all: flags.all, jobs: flags.jobs,
      onProgress: (p) => { done = p.filesDone; total = p.filesTotal; bytes = p.bytes; },
    });
  } finally {
    progress.end();
    await archive.close?.();
  }
  if (flags.json) {
    process.stdout.write(toJson(result) + '\n');
  } else {
    for (const f of result.files) for (const problem of f.problems) process.stdout.write(`${f.file}: ${problem}\n`);
    const after = result.startedAfter ? ` after ${result.startedAfter} (the watermark; --all to re-check it)` : '';
    const faults = result.files.filter((f) => f.problems.length > 0).length;
    process.stdout.write(`${result.ok ? 'ok' : `FAILED: ${faults} file${faults === 1 ? '' : 's'} with faults`}: ${result.segments} segments${after}, ${result.records} records, ${formatBytes(result.bytes)}; verified up to ${result.watermark ?? 'nothing yet'}\n`);
  }
  if (!result.ok) process.exitCode = 1;
}

/** The `verify` command definition. */
export function verifyCommand(): Command {
  return addS3Options(new Command('verify')
    .description('check every WAL record in an archive (page headers, CRC-32C, prev-links, gaps, timeline history)')
    .option('-D, --directory <ARCHIVE>', 'the archive directory')
    .option('--source <s3://bucket/prefix>', 'check this bucket instead of a directory (what receive --target uploads; the watermark is an object there too; segments are read and checked in this process, not in worker threads)'))
    .option('--from <SEGMENT>', 'start at this segment (e.g. 000000010000000000000003) instead of after the watermark; the watermark is left as it is')
    .option('--all', 're-check every segment, ignoring the watermark')
    .option('--json', 'print the result as JSON (and no progress line)')
    .option('-j, --jobs <N>', 'worker threads reading and checking segments in parallel (default: one fewer than the processors, at least 1; 1: none, this thread checks them)', (value: string) => {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1 || n > 256) throw new InvalidArgumentError('a whole number from 1 to 256');
      return n;
    })
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'walstream verify: ')) })
    .addHelpText('after', `
Checks what PostgreSQL's own reader checks, for every segment (NAME, NAME.gz, NAME.lz4, NAME.zst):
page headers (magic, timeline, page address, the system identifier and segment size), every record's
length, CRC-32C and prev-link across pages and segments, segments missing between others, and history
files against the WAL (each timeline switch where the records end). The .partial being written is
skipped; an old timeline's last .partial is checked. ARCHIVE/walstream.verified records how far the
archive is verified: the next run checks only newer segments.

Exit status: 0 everything sound; 1 a fault (one line each: FILE: what is wrong) or a usage error.`)
    .action(async (flags: VerifyFlags) => {
      await verify(flags);
    });
}
