/**
 * writeToSocketNow on real loopback sockets: bytes go out at once when nothing is queued, and it
 * declines (so the caller writes through the stream) whenever writing now could reorder bytes.
 */
import { afterEach, describe, expect, it } from 'vitest';
import * as net from 'node:net';
import { PassThrough } from 'node:stream';
import { writeToSocketNow } from '../../src/socket-write.js';

interface Pair { client: net.Socket; server: net.Socket; received: () => Buffer; close: () => void }

const open: Pair[] = [];
afterEach(() => { for (const p of open.splice(0)) p.close(); });

async function socketPair(): Promise<Pair> {
  const listener = net.createServer();
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((resolve) => listener.once('connection', resolve));
  const client = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const server = await accepted;
  const chunks: Buffer[] = [];
  server.on('data', (c: Buffer) => chunks.push(c));
  const pair = { client, server, received: () => Buffer.concat(chunks), close: () => { client.destroy(); server.destroy(); listener.close(); } };
  open.push(pair);
  return pair;
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in 5 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('writeToSocketNow', () => {
  it('writes the first `length` bytes at once, so the frame may be reused right after', async () => {
    const { client, received } = await socketPair();
    const frame = Buffer.from('hello, world');
    expect(writeToSocketNow(client, frame, 5)).toBe(true);
    frame.fill(0x78); // reused by the caller: what was sent must not change
    expect(writeToSocketNow(client, Buffer.from('!'), 1)).toBe(true);
    await until(() => received().length >= 6);
    expect(received().toString()).toBe('hello!');
  });

  it('declines while the stream holds unsent bytes (corked), and order is kept through the stream', async () => {
    const { client, received } = await socketPair();
    client.cork();
    client.write('first ');
    expect(writeToSocketNow(client, Buffer.from('second'), 6)).toBe(false);
    client.write('second');
    client.uncork();
    await until(() => received().length >= 12);
    expect(received().toString()).toBe('first second');
  });

  it('declines while earlier writes wait for a full socket buffer', async () => {
    const { client, server, received } = await socketPair();
    server.pause();
    const big = Buffer.alloc(32 << 20, 0x61);
    client.write(big); // far more than the kernel buffers take: the rest waits in the stream
    expect(client.writableLength).toBeGreaterThan(0);
    expect(writeToSocketNow(client, Buffer.from('z'), 1)).toBe(false);
    client.write('z');
    server.resume();
    await until(() => received().length >= big.length + 1);
    const all = received();
    expect(all.subarray(all.length - 1).toString()).toBe('z');
    expect(all.subarray(0, big.length).every((b) => b === 0x61)).toBe(true);
  });

  it('declines for a stream without a socket descriptor', () => {
    expect(writeToSocketNow(new PassThrough(), Buffer.from('x'), 1)).toBe(false);
  });
});
