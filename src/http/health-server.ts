/**
 * The service's HTTP port. This issue serves /healthz (the process answers)
 * and /readyz (NATS connected, streams ready); the OCP API joins it later.
 */
import { createServer, type Server } from 'node:http';

export interface HealthChecks {
  ready(): { ok: boolean; reasons: string[] };
}

export function createHttpServer(checks: HealthChecks): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && path === '/healthz') return send(200, { status: 'ok' });
    if (req.method === 'GET' && path === '/readyz') {
      const r = checks.ready();
      return send(r.ok ? 200 : 503, { status: r.ok ? 'ready' : 'not ready', reasons: r.reasons });
    }
    return send(404, { error: { code: 10002, message: `no route for ${req.method} ${path}` } });
  });
}
