/** Types of scripts/s3-servers.mjs (real S3 servers on 127.0.0.1 for the tests and the bench). */

/** Region every server answers for. */
export const S3_REGION: string;
/** The bucket start*() creates unless told otherwise ('walstream'). */
export const DEFAULT_BUCKET: string;
/** Access key of the RGW user startRgw() creates. */
export const RGW_ACCESS_KEY: string;
/** Secret key of the RGW user startRgw() creates. */
export const RGW_SECRET_KEY: string;

/** A running S3 server on 127.0.0.1. */
export interface S3Server {
  readonly kind: 's3rver' | 'rgw';
  readonly host: '127.0.0.1';
  readonly port: number;
  /** 'http://127.0.0.1:PORT' */
  readonly endpoint: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** A bucket created at start (through the SDK). */
  readonly bucket: string;
  /** The temp dir holding the server's data (removed by stop()). */
  readonly dir: string;
  /** Create another bucket through the SDK (an existing one of ours is fine). */
  createBucket(name: string): Promise<void>;
  /** Stop the server (daemons: SIGTERM, SIGKILL after a short wait, reaped) and remove its dir; idempotent. */
  stop(): Promise<void>;
  /** Kill at once (SIGKILL) and remove the dir, synchronously: exit-time cleanup. */
  stopSync(): void;
}

/** A running one-node Ceph cluster with its RADOS Gateway. */
export interface RgwServer extends S3Server {
  readonly kind: 'rgw';
  readonly store: 'memstore' | 'bluestore';
  /** The daemons' log files (mon.a.log, osd.0.log, client.rgw.a.log); inside dir. */
  readonly logDir: string;
  /** Milliseconds from the start of startRgw() to each start-up step. */
  readonly timings: Record<string, number>;
  /** PIDs of the daemons still running (monitor, OSD, gateway). */
  pids(): number[];
}

/** S3Client configuration for a server: endpoint, region, forcePathStyle, credentials, checksums only when required. */
export interface S3ClientOptions {
  endpoint: string;
  region: string;
  forcePathStyle: true;
  credentials: { accessKeyId: string; secretAccessKey: string };
  requestChecksumCalculation: 'WHEN_REQUIRED';
  responseChecksumValidation: 'WHEN_REQUIRED';
}

/** The S3Client config for `server`; spread it and override (e.g. endpoint) as needed. */
export function s3ClientOptions(server: {
  endpoint: string;
  region?: string;
  accessKeyId: string;
  secretAccessKey: string;
}): S3ClientOptions;

/** Start s3rver in this process on a free port, data in a temp dir under `dir`, bucket `bucket` created. */
export function startS3rver(opts?: { dir?: string; bucket?: string }): Promise<S3Server>;

/** null when Ceph's programs are installed, else a one-line reason (for skipping). */
export function rgwAvailable(): string | null;

/** Start a one-node Ceph cluster and radosgw on free ports, data in a temp dir under `dir`, bucket created. */
export function startRgw(opts?: {
  store?: 'memstore' | 'bluestore';
  dir?: string;
  bucket?: string;
  /** memstore capacity (default 2 GiB; RAM is used at ~2x the data stored). */
  memstoreBytes?: number;
  /** Size of the sparse BlueStore block file (default 8 GiB). */
  bluestoreBytes?: number;
  /** osd memory target for BlueStore (default 1 GiB). */
  osdMemoryTarget?: number;
  /** Time limit for the whole start (default 60 s). */
  timeoutMs?: number;
}): Promise<RgwServer>;
