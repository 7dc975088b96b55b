/**
 * The service's one HTTP port (SPEC §3): the OCP-compatible API, /healthz,
 * /readyz and /metrics. Checks run in SPEC §3's order: credentials, input,
 * permission, existence, state.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { type AdapterFailures, toCodedFailure } from '../api/answer-error.js';
import { type EnvelopeMeta, failure, success } from '../api/envelope.js';
import { type Caller, findApiOperation, parseInput } from '../api/operations.js';
import type { Config } from '../config.js';
import { CodedError, ErrorCode, TooManySignInsError } from '../errors.js';
import type { Metrics } from '../metrics.js';
import type { OperationDeps } from '../tasks/deps.js';
import { newTraceId, traceIdFrom } from '../trace-id.js';
import { allows, createAuthenticator, type Principal } from './auth.js';
import { matchRoute, operationOfRoute } from './routes.js';

export interface HttpDeps {
  config: Config;
  deps: OperationDeps;
  metrics: Metrics;
  logger: Logger;
  /** The NATS adapter's reading of its errors (NATS away: 503), as the NATS API uses it too. */
  adapterFailures: AdapterFailures;
  /** Whether to take traffic, and which inventory is live (config-source.ts). */
  ready(): { ok: boolean; reasons: string[]; inventory?: unknown };
  /** Extra handlers tried before the API (Slack's /slack/events); return true when handled. */
  extra?: Array<(req: IncomingMessage, res: ServerResponse) => Promise<boolean>>;
  /**
   * The web page (web/web-door.ts): the API's routes also under `/ui` + path,
   * called with the page's session (and its CSRF token on a change) instead of Basic.
   */
  web?: { prefix: string; principalOf(req: IncomingMessage, method: string): Principal };
}

/** Largest request body read (bytes). */
const MAX_BODY = 64 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        reject(new CodedError(ErrorCode.badRequest, `body: larger than ${MAX_BODY} bytes`, 'body'));
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody(text: string): Record<string, unknown> {
  if (text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CodedError(ErrorCode.badRequest, 'body: malformed JSON', 'body');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CodedError(ErrorCode.badRequest, 'body: must be a JSON object', 'body');
  }
  return value as Record<string, unknown>;
}

export function createHttpServer(h: HttpDeps): Server {
  const { logger, metrics } = h;
  const authenticate = createAuthenticator(h.config);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const startedAt = performance.now();
    // Joined, not resolved: a path starting with // is a path here, not a host.
    const url = new URL(`http://localhost${req.url ?? '/'}`);
    const method = req.method ?? 'GET';
    const traceId = traceIdFrom(req.headers['x-trace-id'] as string | undefined);
    const meta: EnvelopeMeta = { startedAt, traceId, server: h.deps.address };
    let routeLabel = 'unknown';

    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-trace-id': traceId, ...headers });
      res.end(JSON.stringify(body));
      metrics.httpRequests.inc({ route: routeLabel, method, status: String(status) });
    };

    if (method === 'GET' && url.pathname === '/healthz') {
      routeLabel = '/healthz';
      return send(200, { status: 'ok' });
    }
    if (method === 'GET' && url.pathname === '/readyz') {
      routeLabel = '/readyz';
      const r = h.ready();
      return send(r.ok ? 200 : 503, {
        status: r.ok ? 'ready' : 'not ready',
        reasons: r.reasons,
        ...(r.inventory ? { inventory: r.inventory } : {}),
      });
    }
    if (method === 'GET' && url.pathname === '/metrics') {
      routeLabel = '/metrics';
      const text = await metrics.registry.metrics();
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      res.end(text);
      metrics.httpRequests.inc({ route: routeLabel, method, status: '200' });
      return;
    }
    for (const extra of h.extra ?? []) if (await extra(req, res)) return;

    // From the web page: its session, and the API's path without the page's prefix.
    const viaPage = h.web !== undefined && url.pathname.startsWith(h.web.prefix);
    const path = viaPage ? url.pathname.slice('/ui'.length) : url.pathname;
    try {
      const principal =
        viaPage && h.web
          ? h.web.principalOf(req, method)
          : await authenticate(req.headers.authorization, req.socket.remoteAddress);
      const match = matchRoute(method, path);
      if (!match) throw new CodedError(ErrorCode.notFound, `no route for ${method} ${path}`);
      routeLabel = match.route.path;
      const named = operationOfRoute(match);
      // The registry of the moment: operations follow the configuration file (SPEC §9).
      const op = findApiOperation(h.deps.config, named.operation);
      if (!op) throw new CodedError(ErrorCode.notFound, `unknown operation ${match.params.name}`, 'name');
      let raw: Record<string, unknown> = {};
      if (match.route.from === 'query') {
        raw = Object.fromEntries([...url.searchParams].filter(([, v]) => v !== ''));
      } else if (method === 'POST') {
        raw = parseBody(await readBody(req));
      }
      // A task's creator is the Basic user; a listing may still filter by creator.
      if (op.creates && 'creator' in raw) {
        throw new CodedError(
          ErrorCode.badRequest,
          'creator: not taken over HTTP (the Basic user is the creator)',
          'creator',
        );
      }
      const input = parseInput(op, { ...raw, ...named.params });
      if (op.permission && !allows(principal, op.permission)) {
        throw new CodedError(ErrorCode.forbidden, `user ${principal.username} lacks the ${op.permission} permission`);
      }
      const caller: Caller = { name: principal.username, traceId };
      const data = await op.run(h.deps, input, caller);
      send(200, success(data, 200, meta));
    } catch (err) {
      const { coded, status, unexpected } = toCodedFailure(err, h.adapterFailures);
      if (unexpected) logger.error({ err, traceId, path: url.pathname }, 'request failed');
      // No Basic challenge to the page: the browser would ask for a password itself.
      const headers: Record<string, string> =
        status === 401 && !viaPage
          ? { 'www-authenticate': 'Basic realm="ocp-chatops", charset="UTF-8"' }
          : coded instanceof TooManySignInsError
            ? { 'retry-after': String(coded.retryAfterSeconds) }
            : {};
      send(status, failure(coded, status, meta), headers);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      logger.error({ err }, 'HTTP handler crashed');
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  // Requests Node refuses before we see them (bad header syntax, headers over
  // 16 KiB) still get an error envelope (headers only, for a HEAD request).
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket) => {
    if (!socket.writable) return;
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    const meta = { startedAt: performance.now(), traceId: newTraceId(), server: h.deps.address };
    const body = JSON.stringify(
      failure(new CodedError(ErrorCode.badRequest, `malformed request: ${err.code ?? err.message}`), status, meta),
    );
    const head = err.rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD ';
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
        `content-type: application/json\r\nx-trace-id: ${meta.traceId}\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
        `connection: close\r\n\r\n${head ? '' : body}`,
    );
  });
  return server;
}
