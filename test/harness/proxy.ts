/**
 * A TCP fault-injecting proxy for the integration-test harness: put it between a client and a server
 * (PostgreSQL, or anything else) and make the network misbehave on demand: stall every connection
 * without the peers noticing, accept connections that never get an answer, or cut every wire at once.
 * Plain sockets only, nothing is mocked; the proxy is tracked, so destroyAll() closes it.
 */
import net from 'node:net';
import { type Resource, type ServerLifecycle, serverLifecycle } from './cleanup.js';

/** How the proxy treats traffic; see FaultProxy.setMode. */
export type ProxyMode = 'forward' | 'stall' | 'silent';

/** A running proxy from startFaultProxy(); destroy() is close(), destroySync() destroys everything at once. */
export interface FaultProxy extends Resource {
  /** The port it listens on, on 127.0.0.1 (a free port chosen by the kernel). */
  readonly port: number;
  /** Always '127.0.0.1'. */
  readonly host: string;
  /**
   * forward: pipe both ways (half-closes are passed on).
   * stall: stop moving bytes in both directions on every open connection (and on new ones, which get
   * no upstream connection until the stall ends), without closing anything: both sockets are paused,
   * so the kernel buffers fill and TCP flow control stalls the senders, and bytes already read are held
   * in the proxy, as a network that silently drops everything would look. Leaving the stall (for any
   * other mode) resumes and delivers what was held, in order.
   * silent: new connections are accepted but nothing is ever forwarded or answered, and no upstream
   * connection is made, as a server that hangs during start-up; they stay silent until they close.
   * Connections opened earlier keep forwarding.
   */
  setMode(mode: ProxyMode): void;
  /** Destroy every open connection at once (a cut wire): RST via socket.resetAndDestroy() where possible, else destroy(). */
  cutAll(): void;
  /** Connections accepted so far (counts reconnects). */
  readonly accepted: number;
  /** Connections currently open (from accept until both of its sockets have closed). */
  readonly open: number;
  /** Bytes forwarded so far from upstream to client (held bytes count once they are passed on). */
  readonly bytesDown: number;
  /** Destroy every socket and close the listener; idempotent, never waits for a peer. */
  close(): Promise<void>;
}

/** One direction of one connection: bytes read from `from`, written to `to` (the upstream end is undefined until it exists). */
interface Direction {
  from: net.Socket | undefined;
  to: net.Socket | undefined;
  /** Read while stalled (or before `to` existed), not written yet; passed on first when released. */
  held: Buffer[];
  /** `from` ended while its bytes were held: end `to` once they are written. */
  eof: boolean;
  /** `from` is paused until `to` drains. */
  waitingDrain: boolean;
  readonly counted: (bytes: number) => void;
}

interface Connection {
  readonly client: net.Socket;
  upstream: net.Socket | undefined;
  /** Accepted in silent mode: never forwarded. */
  readonly silent: boolean;
  readonly up: Direction;
  readonly down: Direction;
  /** Both sockets are corked by a stall (so their unsent write buffers are held too). */
  corked: boolean;
}

function cut(socket: net.Socket | undefined): void {
  if (!socket || socket.destroyed) return;
  try {
    // resetAndDestroy() (Node >= 16.17) sends RST; it needs a connected TCP handle.
    if (typeof socket.resetAndDestroy === 'function' && !socket.connecting) socket.resetAndDestroy();
    else socket.destroy();
  } catch {
    socket.destroy();
  }
}

/**
 * Start a proxy on 127.0.0.1 (a free port) to `upstream`, in `mode` (default 'forward'), and register
 * it for destroyAll(). Resolves once it listens.
 */
export async function startFaultProxy(upstream: { host: string; port: number }, mode: ProxyMode = 'forward'): Promise<FaultProxy> {
  const host = '127.0.0.1';
  const connections = new Set<Connection>();
  let current: ProxyMode = mode;
  let accepted = 0;
  let bytesDown = 0;
  let life: ServerLifecycle | undefined;

  const stalled = () => current === 'stall';

  function send(d: Direction, chunk: Buffer): void {
    d.counted(chunk.length);
    if (d.to!.write(chunk) || d.waitingDrain) return;
    d.waitingDrain = true;
    d.from?.pause();
    d.to!.once('drain', () => {
      d.waitingDrain = false;
      if (!stalled()) d.from?.resume();
    });
  }

  function onData(d: Direction, chunk: Buffer): void {
    if (stalled() || !d.to || d.held.length > 0) {
      d.held.push(chunk);
      d.from?.pause();
    } else {
      send(d, chunk);
    }
  }

  function onEnd(d: Direction): void {
    if (stalled() || !d.to || d.held.length > 0) d.eof = true;
    else d.to.end();
  }

  /** Write what `d` held, pass on a held end, and read again (unless `to` must drain first). */
  function release(d: Direction): void {
    if (!d.to) return;
    for (const chunk of d.held.splice(0)) send(d, chunk);
    if (d.eof) {
      d.eof = false;
      d.to.end();
    }
    if (!d.waitingDrain) d.from?.resume();
  }

  function settle(conn: Connection): void {
    if (conn.client.destroyed && (!conn.upstream || conn.upstream.destroyed)) connections.delete(conn);
  }

  function connectUpstream(conn: Connection): void {
    const socket = net.connect({ host: upstream.host, port: upstream.port, allowHalfOpen: true });
    socket.setNoDelay(true);
    conn.upstream = socket;
    conn.up.to = socket;
    conn.down.from = socket;
    socket.on('data', (chunk: Buffer) => onData(conn.down, chunk));
    socket.on('end', () => onEnd(conn.down));
    socket.on('error', () => undefined); // 'close' follows with hadError
    socket.on('close', (hadError) => {
      if (hadError) conn.client.destroy();
      settle(conn);
    });
  }

  function stall(conn: Connection): void {
    conn.client.pause();
    conn.upstream?.pause();
    if (!conn.corked) {
      conn.corked = true;
      conn.client.cork();
      conn.upstream?.cork();
    }
  }

  function unstall(conn: Connection): void {
    if (conn.client.destroyed) return;
    if (conn.corked) {
      conn.corked = false;
      conn.client.uncork();
      conn.upstream?.uncork();
    }
    if (!conn.upstream) connectUpstream(conn);
    // Upstream-to-client first: those bytes were already on their way when the stall began.
    release(conn.down);
    release(conn.up);
  }

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    if (life?.closing) {
      client.destroy();
      return;
    }
    accepted++;
    client.setNoDelay(true);
    const silent = current === 'silent';
    const conn: Connection = {
      client,
      upstream: undefined,
      silent,
      corked: false,
      up: { from: client, to: undefined, held: [], eof: false, waitingDrain: false, counted: () => undefined },
      down: { from: undefined, to: client, held: [], eof: false, waitingDrain: false, counted: (n) => (bytesDown += n) },
    };
    connections.add(conn);
    client.on('error', () => undefined); // 'close' follows with hadError
    client.on('close', (hadError) => {
      if (hadError) conn.upstream?.destroy();
      settle(conn);
    });
    if (silent) {
      // A hung server: read (so the client's writes do not block) and drop everything, never answer.
      client.on('data', () => undefined);
      return;
    }
    client.on('data', (chunk: Buffer) => onData(conn.up, chunk));
    client.on('end', () => onEnd(conn.up));
    if (stalled()) stall(conn);
    else connectUpstream(conn);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as net.AddressInfo;

  const destroySockets = () => {
    for (const conn of connections) {
      conn.client.destroy();
      conn.upstream?.destroy();
    }
    connections.clear();
  };

  life = serverLifecycle(server, destroySockets);
  const proxy: FaultProxy = {
    port,
    host,
    setMode(mode: ProxyMode) {
      const wasStalled = stalled();
      current = mode;
      for (const conn of connections) {
        if (conn.silent) continue;
        if (mode === 'stall') stall(conn);
        else if (wasStalled) unstall(conn);
      }
    },
    cutAll() {
      for (const conn of connections) {
        cut(conn.client);
        cut(conn.upstream);
      }
    },
    get accepted() {
      return accepted;
    },
    get open() {
      return connections.size;
    },
    get bytesDown() {
      return bytesDown;
    },
    close: () => life!.close(),
    destroy: () => life!.close(),
    destroySync: () => life!.destroySync(),
  };
  return proxy;
}
