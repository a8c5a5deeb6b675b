/**
 * An HTTP fault-injecting proxy in front of a real S3 endpoint (s3rver, Ceph RGW; see
 * scripts/s3-servers.mjs), for the object-storage tests (#17): point the S3 client at the proxy's
 * endpoint and make the server misbehave on demand: answer 500 InternalError, answer slowly, or be
 * down (connections refused). Nothing is mocked: in forward mode every request goes to the server as
 * sent, bodies streaming both ways. The proxy is tracked, so destroyAll() closes it.
 *
 * Signatures: the client signs for the proxy's host:port (the Host header is signed by SigV4) and the
 * proxy passes the Host header on unchanged, so the server verifies the signature against the Host it
 * received (RGW does; s3rver does not check SigV4 at all). Only unsigned hop-by-hop headers change:
 * the proxy answers `Expect: 100-continue` itself (Node's server sends 100 Continue) and forwards the
 * request without Expect, Connection and Keep-Alive; transfer-encoding is re-applied by Node.
 */
import http from 'node:http';
import type net from 'node:net';
import { type Resource, type ServerLifecycle, serverLifecycle } from './cleanup.js';

/** What the proxy does now; see the S3FaultProxy methods. */
export type S3ProxyMode =
  | { kind: 'forward' }
  | { kind: 'fail500'; remaining: number | 'all' }
  | { kind: 'slow'; ms: number }
  | { kind: 'down' };

/** One request the proxy saw, in arrival order. */
export interface S3ProxyRequest {
  method: string;
  /** Path and query as sent, e.g. '/walstream/key?uploadId=...&partNumber=1'. */
  url: string;
  /** The status the client got: the server's, 500 injected, 502 when the server could not be reached, undefined while in flight. */
  status: number | undefined;
  /** Whether the 500 was injected by the proxy (not forwarded). */
  injected: boolean;
}

/** A running proxy from startS3FaultProxy(). */
export interface S3FaultProxy extends Resource {
  /** Always '127.0.0.1'. */
  readonly host: string;
  /** Its port on 127.0.0.1 (kernel-chosen; kept while down, so the same endpoint comes back). */
  readonly port: number;
  /** 'http://127.0.0.1:PORT': give this to the S3 client instead of the server's endpoint. */
  readonly endpoint: string;
  /** The current mode (a copy). */
  readonly mode: S3ProxyMode;
  /** Forward every request unchanged (the default). Resolves once the proxy listens (after down). */
  forward(): Promise<void>;
  /**
   * Answer the next `n` requests (or all, until another mode is set) with 500 InternalError and an S3
   * XML error body, without forwarding them; the request body is read to its end first. After n, forward.
   */
  fail500(n: number | 'all'): Promise<void>;
  /** Forward, but hold each answer `ms` before passing it on (the request goes to the server at once). */
  slow(ms: number): Promise<void>;
  /** As a stopped server: stop listening (connections refused) and destroy every open connection. Another mode listens again on the same port. */
  down(): Promise<void>;
  /** Requests seen per HTTP method (injected failures included), e.g. { PUT: 3, GET: 1 }. */
  readonly counts: Readonly<Record<string, number>>;
  /** Every request seen, in arrival order. */
  readonly requests: readonly S3ProxyRequest[];
  /** Number of 500s injected so far. */
  readonly injected: number;
  /** Zero counts, requests and injected. */
  resetCounters(): void;
  /** Destroy every connection and close the listener; idempotent. */
  close(): Promise<void>;
}

/** Headers that describe one connection, not the request: not passed on (none of them is signed by SigV4). */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'expect', 'proxy-connection', 'te', 'trailer', 'upgrade']);

function forwardableHeaders(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  }
  return out;
}

function internalErrorXml(requestId: string, resource: string): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    '<Error><Code>InternalError</Code>' +
    '<Message>We encountered an internal error. Please try again. (injected by the test fault proxy)</Message>' +
    `<Resource>${resource.replace(/[<>&]/g, '')}</Resource><RequestId>${requestId}</RequestId></Error>`
  );
}

/**
 * Start a proxy on 127.0.0.1 (a free port) in forward mode to `upstream` (an endpoint URL such as
 * 'http://127.0.0.1:9000', or a server object with `endpoint`), and register it for destroyAll().
 * Resolves once it listens.
 */
export async function startS3FaultProxy(upstream: string | { endpoint: string }): Promise<S3FaultProxy> {
  const target = new URL(typeof upstream === 'string' ? upstream : upstream.endpoint);
  if (target.protocol !== 'http:') throw new Error(`S3 fault proxy: only http:// upstreams, not ${target.href}`);
  const upstreamHost = target.hostname;
  const upstreamPort = Number(target.port || 80);
  const host = '127.0.0.1';
  const agent = new http.Agent({ keepAlive: true });
  const sockets = new Set<net.Socket>();
  let mode: S3ProxyMode = { kind: 'forward' };
  let counts: Record<string, number> = {};
  let requests: S3ProxyRequest[] = [];
  let injected = 0;
  let life: ServerLifecycle | undefined;

  function inject(req: http.IncomingMessage, res: http.ServerResponse, record: S3ProxyRequest): void {
    injected++;
    record.injected = true;
    const body = internalErrorXml(`walstream-fault-proxy-${injected}`, req.url ?? '/');
    // Read the body to its end (as a server that fails after reading it), then answer.
    req.resume();
    const answer = () => {
      if (res.headersSent || res.destroyed) return;
      record.status = 500;
      res.writeHead(500, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (req.complete) answer();
    else req.once('end', answer);
  }

  function forwardTo(req: http.IncomingMessage, res: http.ServerResponse, record: S3ProxyRequest, holdMs: number): void {
    const upstreamReq = http.request({
      host: upstreamHost,
      port: upstreamPort,
      method: req.method,
      path: req.url,
      headers: forwardableHeaders(req.headers), // Host included, as the client sent (and signed) it
      agent,
    });
    upstreamReq.on('response', (upstreamRes) => {
      const pass = () => {
        if (res.destroyed) {
          upstreamRes.destroy();
          return;
        }
        record.status = upstreamRes.statusCode;
        const headers = forwardableHeaders(upstreamRes.headers);
        delete headers['transfer-encoding']; // Node re-applies chunking when there is no content-length
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, headers);
        upstreamRes.pipe(res);
      };
      if (holdMs > 0) setTimeout(pass, holdMs);
      else pass();
    });
    upstreamReq.on('error', (err) => {
      if (!res.headersSent && !res.destroyed) {
        record.status = 502;
        const body = `S3 fault proxy: upstream ${upstreamHost}:${upstreamPort}: ${err.message}\n`;
        res.writeHead(502, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body), connection: 'close' });
        res.end(body);
      } else {
        res.destroy();
      }
    });
    // The client went away: abandon the upstream request too.
    res.on('close', () => {
      if (!res.writableFinished) upstreamReq.destroy();
    });
    req.pipe(upstreamReq);
  }

  const server = http.createServer((req, res) => {
    if (life?.closing || mode.kind === 'down') {
      req.socket.destroy();
      return;
    }
    const method = req.method ?? 'GET';
    counts[method] = (counts[method] ?? 0) + 1;
    const record: S3ProxyRequest = { method, url: req.url ?? '/', status: undefined, injected: false };
    requests.push(record);
    req.on('error', () => undefined); // the client reset: 'close' cleans up
    res.on('error', () => undefined);
    if (mode.kind === 'fail500') {
      if (mode.remaining !== 'all') {
        mode.remaining--;
        if (mode.remaining <= 0) mode = { kind: 'forward' };
      }
      inject(req, res, record);
      return;
    }
    forwardTo(req, res, record, mode.kind === 'slow' ? mode.ms : 0);
  });
  server.on('connection', (socket: net.Socket) => {
    if (life?.closing || mode.kind === 'down') {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('clientError', (_err, socket) => socket.destroy());

  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
  await listen(0);
  const { port } = server.address() as net.AddressInfo;

  const destroySockets = () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    agent.destroy();
  };
  life = serverLifecycle(server, destroySockets);

  /** Set `next`; when leaving down, listen again on the same port first. */
  async function setMode(next: S3ProxyMode): Promise<void> {
    if (life!.closing) throw new Error('S3 fault proxy: closed');
    const wasDown = mode.kind === 'down';
    mode = next;
    if (next.kind === 'down') {
      if (server.listening) {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          for (const socket of sockets) socket.destroy();
          sockets.clear();
          agent.destroy();
        });
      }
      return;
    }
    if (wasDown && !server.listening) {
      try {
        await listen(port);
      } catch (err) {
        mode = { kind: 'down' };
        throw new Error(`S3 fault proxy: cannot listen again on ${host}:${port}: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  const proxy: S3FaultProxy = {
    host,
    port,
    endpoint: `http://${host}:${port}`,
    get mode() {
      return { ...mode };
    },
    forward: () => setMode({ kind: 'forward' }),
    fail500(n) {
      if (n !== 'all' && !(Number.isInteger(n) && n > 0)) throw new Error(`S3 fault proxy: fail500 needs a positive integer or 'all', not ${n}`);
      return setMode({ kind: 'fail500', remaining: n });
    },
    slow(ms) {
      if (!(ms >= 0)) throw new Error(`S3 fault proxy: slow needs ms >= 0, not ${ms}`);
      return setMode({ kind: 'slow', ms });
    },
    down: () => setMode({ kind: 'down' }),
    get counts() {
      return { ...counts };
    },
    get requests() {
      return requests;
    },
    get injected() {
      return injected;
    },
    resetCounters() {
      counts = {};
      requests = [];
      injected = 0;
    },
    close: () => life!.close(),
    destroy: () => life!.close(),
    destroySync: () => life!.destroySync(),
  };
  return proxy;
}
