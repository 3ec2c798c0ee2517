/**
 * The worker's HTTP endpoints: /healthz (the process runs), /readyz (listening, and hearing
 * everything, on the masters where its partitions live, and holding its share), /metrics (Prometheus text), /lookup/<key> (where a key
 * lives, JSON; the key URL-encoded).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logger.js';
import { createMetrics } from './metrics.js';
import type { WorkerView } from './worker-view.js';

export interface HttpServer {
  port: number;
  close(): Promise<void>;
}

export async function startHttpServer(worker: WorkerView, port: number, host: string, logger: Logger): Promise<HttpServer> {
  const registry = createMetrics(worker);
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://worker');
    const send = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    void (async () => {
      if (url.pathname === '/healthz') return send(200, 'ok\n');
      if (url.pathname === '/readyz') return worker.ready() ? send(200, 'ready\n') : send(503, 'not ready\n');
      if (url.pathname === '/metrics') return send(200, await registry.metrics(), registry.contentType);
      if (url.pathname.startsWith('/lookup/')) {
        const key = decodeURIComponent(url.pathname.slice('/lookup/'.length));
        if (key === '') return send(400, 'usage: /lookup/<url-encoded key>\n');
        return send(200, `${JSON.stringify(await worker.lookup(key))}\n`, 'application/json');
      }
      return send(404, 'not found: try /healthz, /readyz, /metrics or /lookup/<key>\n');
    })().catch((err: unknown) => {
      // The detail goes to the log, not to whoever asked.
      logger.warn('http request failed', { path: url.pathname, err: String(err) });
      if (!res.headersSent) send(500, 'internal error\n');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const { address, port: actual } = server.address() as AddressInfo;
  logger.info('http listening', { host: address, port: actual });
  return {
    port: actual,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
