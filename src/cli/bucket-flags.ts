/**
 * The object-storage flags shared by the commands (--target for receive, --source for restore; both
 * with --s3-endpoint and --s3-path-style), turned into library options with one-line errors.
 */
import type { Command } from 'commander';
import type { BucketArchiveOptions } from '../archiver.js';
import { S3Store, isS3Url, parseS3Url } from '../archive/s3-store.js';
import type { S3StoreOptions } from '../archive/s3-store.js';
import { type ArchiveReader, DirectoryReader } from '../archive/reader.js';
import { WalstreamError } from '../errors.js';
import { wholeNumber } from '../units.js';

export interface S3Flags {
  s3Endpoint?: string;
  s3PathStyle?: boolean;
}

export interface TargetFlags extends S3Flags {
  target?: string;
  keepLocal?: string;
  flushAfterUpload?: boolean;
  uploadPartialEvery?: string;
  uploadConcurrency: string;
}

/** --s3-endpoint and --s3-path-style, for any command that reaches a bucket. */
export function addS3Options(command: Command): Command {
  return command
    .option('--s3-endpoint <url>', 'endpoint of an S3-compatible store (MinIO, Ceph RGW, R2), e.g. http://127.0.0.1:9000 (default: AWS, or AWS_ENDPOINT_URL_S3)')
    .option('--s3-path-style', 'address the bucket as ENDPOINT/BUCKET (MinIO, Ceph RGW) instead of BUCKET.ENDPOINT');
}

/** receive's object-storage flags. */
export function addTargetOptions(command: Command): Command {
  return addS3Options(command
    .optionsGroup('Object storage options:')
    .option('--target <s3://bucket/prefix>', 'also archive into this bucket: -D becomes the local spool (fsynced first), each finished segment and history file is then uploaded (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, ...; region from AWS_REGION)')
    .option('--flush-after-upload', 'report WAL as flushed (so the slot releases it) only once the bucket holds it; default: once fsynced locally (faster; a lost machine then loses what was not uploaded)')
    .option('--upload-partial-every <seconds>', 'also upload the segment in progress as NAME.partial this often, so the bucket is never further behind the server')
    .option('--keep-local <n>', 'keep only the newest N (1 or more) complete segments in the spool once the bucket has them (default: keep all)')
    .option('--upload-concurrency <n>', 'uploads at once', '4'));
}

/** How to reach the store, from --s3-endpoint/--s3-path-style (the SDK's environment does the rest). */
export function s3StoreOptions(flags: S3Flags): S3StoreOptions {
  // The SDK warns on Node 20 in several lines on stderr (its releases from 2027 need Node 22); the
  // CLI keeps its one-line output and the README says so. A library user's process decides for itself.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const options: S3StoreOptions = {};
  if (flags.s3Endpoint !== undefined) {
    if (!/^https?:\/\/[^/\s]+/i.test(flags.s3Endpoint)) {
      throw new WalstreamError('BAD_OPTION', `invalid --s3-endpoint "${flags.s3Endpoint}": give a URL such as http://127.0.0.1:9000`);
    }
    options.endpoint = flags.s3Endpoint;
  }
  if (flags.s3PathStyle) options.forcePathStyle = true;
  return options;
}

/**
 * The Archiver's `bucket` option from receive's flags; undefined without --target. `warn` gets a line
 * for a combination that works but is rarely meant.
 */
export function bucketFromFlags(flags: TargetFlags & { synchronous?: boolean }, warn: (line: string) => void = () => {}): BucketArchiveOptions | undefined {
  const needsTarget = ['keepLocal', 'flushAfterUpload', 'uploadPartialEvery'] as const;
  if (flags.target === undefined) {
    const stray = needsTarget.find((k) => flags[k] !== undefined);
    if (stray) throw new WalstreamError('BAD_OPTION', `--${stray.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} needs --target s3://BUCKET/PREFIX`);
    return undefined;
  }
  if (!isS3Url(flags.target)) throw new WalstreamError('BAD_OPTION', `invalid --target "${flags.target}": give s3://BUCKET/PREFIX`);
  parseS3Url(flags.target);
  if (flags.synchronous && flags.flushAfterUpload && flags.uploadPartialEvery === undefined) {
    // The flush position would then move only when a whole segment is in the bucket.
    warn('--synchronous with --flush-after-upload reports WAL flushed only once its segment is uploaded: commits waiting on this standby wait for a whole segment; add --upload-partial-every SECONDS');
  }
  return {
    url: flags.target,
    ...s3StoreOptions(flags),
    flushAfterUpload: Boolean(flags.flushAfterUpload),
    uploadPartialEverySeconds: flags.uploadPartialEvery !== undefined ? wholeNumber(flags.uploadPartialEvery, '--upload-partial-every', 1, 86_400) : undefined,
    // At least one: resuming reads the newest complete segment's header, which must not need the store.
    keepLocal: flags.keepLocal !== undefined ? wholeNumber(flags.keepLocal, '--keep-local', 1, 1_000_000) : undefined,
    concurrency: wholeNumber(flags.uploadConcurrency, '--upload-concurrency', 1, 64),
  };
}

/** A command's archive flags: -D DIR or --source s3://… (with the S3 flags). */
export interface SourceFlags extends S3Flags {
  directory?: string;
  source?: string;
}

/**
 * The archive a reading command (restore, cleanup, status, verify) names: a DirectoryReader for -D, an
 * S3Store (not yet contacted; close it when done) for --source. BAD_OPTION, one line, for neither, both,
 * a malformed --source, or S3 flags without --source.
 */
export function archiveFromFlags(flags: SourceFlags): ArchiveReader & { close?: () => Promise<void> } {
  if (flags.source === undefined) {
    // Commander's words for a missing required option: -D was required before --source existed.
    if (!flags.directory) throw new WalstreamError('BAD_OPTION', "required option '-D, --directory <ARCHIVE>' not specified (or give --source s3://BUCKET/PREFIX)");
    const s3Flag = flags.s3Endpoint !== undefined ? '--s3-endpoint' : flags.s3PathStyle ? '--s3-path-style' : null;
    if (s3Flag) throw new WalstreamError('BAD_OPTION', `${s3Flag} needs --source s3://BUCKET/PREFIX`);
    return new DirectoryReader(flags.directory);
  }
  if (flags.directory !== undefined) throw new WalstreamError('BAD_OPTION', `give either -D ARCHIVE or --source ${flags.source}, not both`);
  if (!isS3Url(flags.source)) throw new WalstreamError('BAD_OPTION', `invalid --source "${flags.source}": give s3://BUCKET/PREFIX`);
  return new S3Store(flags.source, s3StoreOptions(flags));
}
