/**
 * The harness's fault-injecting TCP proxy (test/harness/proxy.ts) against tiny loopback servers
 * started here (an echo server and an endless streaming server): no PostgreSQL needed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { destroyAll } from '../harness/cleanup.js';
import { startFaultProxy, type FaultProxy } from '../harness/proxy.js';

// ---------------------------------------------------------------------------------------------
// Helpers

interface TestServer {
  port: number;
  /** Connections the server accepted so far. */
  accepted: number;
  /** Server-side sockets, in accept order. */
  sockets: net.Socket[];
  close(): void;
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  // Bounded, so a proxy whose close() hangs fails its own test instead of stalling the hook.
  for (const fn of cleanups.splice(0).reverse()) await Promise.race([fn(), sleep(2000)]);
  await destroyAll();
});

async function startServer(onConnection: (socket: net.Socket) => void): Promise<TestServer> {
  const server = net.createServer();
  const result: TestServer = {
    port: 0,
    accepted: 0,
    sockets: [],
    close: () => {
      for (const s of result.sockets) s.destroy();
      server.close();
    },
  };
  server.on('connection', (socket) => {
    result.accepted++;
    result.sockets.push(socket);
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  result.port = (server.address() as net.AddressInfo).port;
  cleanups.push(() => result.close());
  return result;
}

/** Writes back everything it reads. */
const echoServer = () => startServer((socket) => socket.pipe(socket));

/** Sends byte i = i % 251 forever, as fast as the client takes it. */
const streamingServer = () =>
  startServer((socket) => {
    let sent = 0;
    const pump = () => {
      while (!socket.destroyed) {
        const chunk = Buffer.alloc(16 * 1024);
        for (let i = 0; i < chunk.length; i++) chunk[i] = (sent + i) % 251;
        sent += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
    };
    pump();
  });

interface Client {
  socket: net.Socket;
  received: () => Buffer;
  closed: boolean;
  ended: boolean;
  error: NodeJS.ErrnoException | undefined;
  /** Resolves on 'close'. */
  closedPromise: Promise<void>;
}

async function connect(port: number): Promise<Client> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  const client: Client = {
    socket,
    received: () => Buffer.concat(chunks),
    closed: false,
    ended: false,
    error: undefined,
    closedPromise: new Promise((resolve) => socket.once('close', () => resolve())),
  };
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('end', () => (client.ended = true));
  socket.on('close', () => (client.closed = true));
  socket.on('error', (err) => (client.error = err));
  cleanups.push(() => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return client;
}

async function until(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until `value()` has not changed for 100 ms (at most 3 s). */
async function quiet(value: () => number): Promise<void> {
  const deadline = Date.now() + 3000;
  let last = value();
  let since = Date.now();
  while (Date.now() - since < 100 && Date.now() < deadline) {
    await sleep(10);
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
}

async function roundTrip(client: Client, text: string): Promise<void> {
  const before = client.received().length;
  client.socket.write(text);
  await until(`echo of ${text}`, () => client.received().length >= before + text.length);
  expect(client.received().subarray(before).toString()).toBe(text);
}

async function proxyTo(server: TestServer, mode?: 'forward' | 'stall' | 'silent'): Promise<FaultProxy> {
  const proxy = await startFaultProxy({ host: '127.0.0.1', port: server.port }, mode);
  cleanups.push(() => proxy.close());
  return proxy;
}

/** Whether a fresh connection to `port` is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

// ---------------------------------------------------------------------------------------------

describe('fault proxy', () => {
  it('forward: round-trips bytes through an echo server and counts them', async () => {
    const echo = await echoServer();
    const proxy = await proxyTo(echo);
    expect(proxy.host).toBe('127.0.0.1');
    expect(proxy.port).not.toBe(echo.port);
    const client = await connect(proxy.port);
    await roundTrip(client, 'hello through the proxy');
    await roundTrip(client, 'and again');
    expect(echo.accepted).toBe(1);
    expect(proxy.bytesDown).toBe('hello through the proxy'.length + 'and again'.length);
    expect(proxy.open).toBe(1);
  });

  it('stall: 1 MB written while stalled is not echoed, and arrives whole and in order after forward', async () => {
    const echo = await echoServer();
    const proxy = await proxyTo(echo);
    const client = await connect(proxy.port);
    await roundTrip(client, 'before');
    const base = client.received().length;

    proxy.setMode('stall');
    const payload = randomBytes(1024 * 1024);
    client.socket.write(payload);
    await sleep(500);
    expect(client.received().length).toBe(base);
    // Nothing was closed on either side.
    expect(client.closed).toBe(false);
    expect(client.ended).toBe(false);
    expect(client.error).toBeUndefined();
    expect(echo.sockets[0]!.destroyed).toBe(false);
    expect(proxy.open).toBe(1);

    proxy.setMode('forward');
    await until('the whole 1 MB echo', () => client.received().length >= base + payload.length, 10_000);
    expect(client.received().subarray(base).equals(payload)).toBe(true);
    expect(client.closed).toBe(false);
    expect(echo.accepted).toBe(1);
    await roundTrip(client, 'after');
  });

  it('stall: stops reading, so TCP flow control blocks a client writing 16 MB; forward delivers it all', async () => {
    const echo = await echoServer();
    const proxy = await proxyTo(echo);
    const client = await connect(proxy.port);
    proxy.setMode('stall');
    const payload = randomBytes(16 * 1024 * 1024);
    client.socket.write(payload);
    await sleep(500);
    // Kernel buffers hold a few MB at most: the rest must still be queued in the client.
    expect(client.socket.writableLength).toBeGreaterThan(0);
    expect(client.received().length).toBe(0);
    proxy.setMode('forward');
    await until('the whole 16 MB echo', () => client.received().length >= payload.length, 20_000);
    expect(client.received().equals(payload)).toBe(true);
    expect(proxy.bytesDown).toBe(payload.length);
  });

  it('stall: holds the upstream-to-client stream too, then resumes it without a gap', async () => {
    const stream = await streamingServer();
    const proxy = await proxyTo(stream);
    const client = await connect(proxy.port);
    await until('some streamed bytes', () => client.received().length > 100_000);

    proxy.setMode('stall');
    // Bytes already in the kernel's buffers may still land; wait until nothing moves for 100 ms.
    await quiet(() => client.received().length + stream.sockets[0]!.bytesWritten);
    const during = client.received().length;
    const downDuring = proxy.bytesDown;
    const sentDuring = stream.sockets[0]!.bytesWritten;
    await sleep(500);
    expect(client.received().length).toBe(during);
    expect(proxy.bytesDown).toBe(downDuring);
    // TCP flow control stopped the server: the proxy stopped reading rather than buffering without end.
    expect(stream.sockets[0]!.bytesWritten).toBe(sentDuring);
    expect(client.closed).toBe(false);

    proxy.setMode('forward');
    await until('the stream to resume', () => client.received().length > during + 1_000_000, 10_000);
    const got = client.received();
    let bad = -1;
    for (let i = 0; i < got.length; i++) {
      if (got[i] !== i % 251) {
        bad = i;
        break;
      }
    }
    expect(bad).toBe(-1);
  });

  it('stall: a connection opened during the stall reaches upstream only after forward', async () => {
    const echo = await echoServer();
    const proxy = await proxyTo(echo, 'stall');
    const client = await connect(proxy.port);
    client.socket.write('early bytes');
    await sleep(300);
    expect(echo.accepted).toBe(0);
    expect(client.received().length).toBe(0);
    proxy.setMode('forward');
    await until('the held bytes echoed', () => client.received().length >= 'early bytes'.length);
    expect(client.received().toString()).toBe('early bytes');
    expect(echo.accepted).toBe(1);
  });

  it('silent: accepts, answers nothing, and never connects upstream', async () => {
    const echo = await echoServer();
    const proxy = await proxyTo(echo, 'silent');
    const client = await connect(proxy.port);
    client.socket.write('anyone there?');
    await sleep(500);
    expect(client.received().length).toBe(0);
    expect(client.closed).toBe(false);
    expect(echo.accepted).toBe(0);
    expect(proxy.accepted).toBe(1);
    expect(proxy.open).toBe(1);

    // A connection made after switching back to forward works; the silent one stays silent.
    proxy.setMode('forward');
    const second = await connect(proxy.port);
    await roundTrip(second, 'hi');
    await sleep(100);
    expect(client.received().length).toBe(0);
    expect(echo.accepted).toBe(1);
  });

  it('cutAll: the client sees close (or ECONNRESET) promptly, and both sides are gone', async () => {
    const echo = await echoServer();
    const proxy = await proxyTo(echo);
    const client = await connect(proxy.port);
    await roundTrip(client, 'ping');
    const t0 = Date.now();
    proxy.cutAll();
    await Promise.race([client.closedPromise, sleep(1000)]);
    expect(client.closed).toBe(true);
    expect(Date.now() - t0).toBeLessThan(1000);
    if (client.error) expect(client.error.code).toBe('ECONNRESET');
    await until('upstream socket closed', () => echo.sockets[0]!.destroyed, 2000);
    await until('proxy.open 0', () => proxy.open === 0, 2000);
  });

  it('accepted counts each connection, reconnects included; open counts the live ones', async () => {
    const echo = await echoServer();
    const proxy = await proxyTo(echo);
    const first = await connect(proxy.port);
    await roundTrip(first, 'one');
    first.socket.destroy();
    await until('the first connection to go', () => proxy.open === 0, 2000);
    const second = await connect(proxy.port);
    await roundTrip(second, 'two');
    expect(proxy.accepted).toBe(2);
    expect(proxy.open).toBe(1);
    expect(echo.accepted).toBe(2);
  });

  it('close() resolves promptly with connections open (forwarding, stalled and silent ones)', async () => {
    const echo = await echoServer();
    const proxy = await proxyTo(echo, 'silent');
    const silent = await connect(proxy.port);
    proxy.setMode('forward');
    const forwarding = await connect(proxy.port);
    await roundTrip(forwarding, 'x');
    proxy.setMode('stall');
    forwarding.socket.write(randomBytes(256 * 1024));
    const stalled = await connect(proxy.port);
    stalled.socket.write(randomBytes(256 * 1024));
    await until('three open connections', () => proxy.open === 3, 2000);

    const result = await Promise.race([proxy.close().then(() => 'closed'), sleep(2000).then(() => 'hung')]);
    expect(result).toBe('closed');
    await Promise.race([Promise.all([forwarding.closedPromise, stalled.closedPromise, silent.closedPromise]), sleep(1000)]);
    expect([forwarding.closed, stalled.closed, silent.closed]).toEqual([true, true, true]);
    expect(proxy.open).toBe(0);
    expect(await refused(proxy.port)).toBe(true);
    await proxy.close(); // idempotent
  });

  it('is tracked: destroyAll() closes it', async () => {
    const echo = await echoServer();
    const proxy = await startFaultProxy({ host: '127.0.0.1', port: echo.port });
    const client = await connect(proxy.port);
    await roundTrip(client, 'y');
    await destroyAll();
    await until('the client to be closed', () => client.closed, 2000);
    expect(await refused(proxy.port)).toBe(true);
  });
});
