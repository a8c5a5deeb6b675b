/**
 * A small HTTP server for monitoring an Archiver (`receive --metrics-port`): `/metrics` (Prometheus
 * text), `/status` (JSON), `/healthz` (200 while streaming, 503 once disconnected for longer than the
 * grace period). Read-only, GET and HEAD only; it shows no connection string, only host:port.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isHealthy, statusToJson } from './archiver-status.js';
import { type StatusSource, archiverRegistry } from './metrics.js';
import { formatDuration } from './units.js';

export interface MonitoringServerOptions {
  /** TCP port (0: any free one; see the returned address). */
  port: number;
  /** Address to listen on (default 127.0.0.1: local only). */
  host?: string;
  /** Seconds without a stream before /healthz answers 503 (default 30). */
  healthGraceSeconds?: number;
}

/** A running monitoring server. */
export interface MonitoringServer {
  /** Where it listens (host and the actual port). */
  address: { host: string; port: number };
  close(): Promise<void>;
}

/** Start serving `source`'s figures; resolves once listening, rejects when the port cannot be bound. */
export async function startMonitoringServer(source: StatusSource, options: MonitoringServerOptions): Promise<MonitoringServer> {
  const registry = archiverRegistry(source);
  const graceMs = (options.healthGraceSeconds ?? 30) * 1000;
  const server = http.createServer((req, res) => {
    const send = (code: number, type: string, body: string) => {
      res.writeHead(code, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'only GET and HEAD\n');
    const route = (req.url ?? '/').split('?')[0];
    if (route === '/metrics') {
      registry.metrics().then((text) => send(200, registry.contentType, text), (err) => send(500, 'text/plain', `${(err as Error).message}\n`));
    } else if (route === '/status') {
      send(200, 'application/json', JSON.stringify(statusToJson(source.status()), null, 2) + '\n');
    } else if (route === '/healthz') {
      const status = source.status();
      if (isHealthy(status, graceMs)) return send(200, 'text/plain', `ok: ${status.state}\n`);
      const since = status.disconnectedSince === null ? '' : ` for ${formatDuration((Date.now() - status.disconnectedSince) / 1000)}`;
      send(503, 'text/plain', `not streaming${since} (${status.state})${status.lastError ? `: ${status.lastError}` : ''}\n`);
    } else {
      send(404, 'text/plain', 'not found: try /metrics, /status or /healthz\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    address: { host: address.address, port: address.port },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
