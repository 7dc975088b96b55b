/**
 * The web page's door on the service's port (SPEC §12):
 *
 * 1. `GET /ui/…` (any page) answers the page's shell, signed out (200 HTML,
 *    nothing secret in it); the script asks for its data and shows the
 *    sign-in when there is no session.
 * 2. `POST /ui/api/session` signs in against access.users, as HTTP Basic
 *    does (the same scrypt check and throttle, http/auth.ts), and sets the
 *    session cookie (HttpOnly, SameSite=Lax so that a link from Slack opens
 *    signed in, Path=/, expiring); `GET` tells who is signed in and the
 *    session's CSRF token; `POST /ui/api/session/logout` ends it.
 * 3. `/ui/api/v2/…` is the HTTP API itself (http/server.ts), its caller the
 *    session's user, every change carrying the CSRF token (`principalOf`):
 *    the same operations and role checks as the API, nothing of its own.
 * 4. `GET /ui/api/tasks/{id}/events`: the task's events as server-sent
 *    events, from JetStream, resuming after Last-Event-ID.
 * 5. `GET /ui/assets/…`: the page's script and style (web/ at the repo root).
 */
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { type AdapterFailures, toCodedFailure } from '../api/answer-error.js';
import { type EnvelopeMeta, failure, success } from '../api/envelope.js';
import type { Config } from '../config.js';
import { IdParam } from '../contracts/api.js';
import { CodedError, ErrorCode, TooManySignInsError } from '../errors.js';
import { allows, createAuthenticator, type Principal } from '../http/auth.js';
import type { TaskDeps } from '../tasks/deps.js';
import { getTask } from '../tasks/read-tasks.js';
import { traceIdFrom } from '../trace-id.js';
import type { TaskEventFeed } from './ports.js';
import { cookieValue, createSessions, csrfMatches, type Session } from './sessions.js';

export const SESSION_COOKIE = 'ocp_session';
export const CSRF_HEADER = 'x-csrf-token';
/** The API's routes as the page calls them: `/ui` + the API's path. */
export const PAGE_API_PREFIX = '/ui/api/v2/';

/** The page's files: web/ at the repository's root (from src/web/ and dist/web/ alike). */
const ASSETS_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** The page loads nothing but the service's own address, and runs no inline script. */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
};

/** Largest sign-in body read (bytes). */
const MAX_SIGN_IN_BODY = 4096;
/** A comment line this often keeps proxies from closing a quiet event stream (ms). */
const PING_MS = 15_000;
/** How soon a browser reconnects a dropped event stream (ms; SSE `retry:`). */
const RECONNECT_MS = 1000;

export interface WebDoorDeps {
  config: Config;
  deps: TaskDeps & { address: string };
  feed: TaskEventFeed;
  logger: Logger;
  adapterFailures: AdapterFailures;
}

export interface WebDoor {
  /** Serves what is the page's own; false for anything else (the API's routes under /ui/api/v2/ included). */
  handle(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
  /**
   * The session's user for a call of the API from the page: 401 (30000)
   * without a live session, 403 (30014) for a change without the session's
   * CSRF token.
   */
  principalOf(req: IncomingMessage, method: string): Principal;
}

function loadAssets(): Map<string, { body: Buffer; type: string }> {
  const assets = new Map<string, { body: Buffer; type: string }>();
  for (const name of readdirSync(ASSETS_DIR)) {
    const type = TYPES[extname(name)];
    if (type) assets.set(name, { body: readFileSync(join(ASSETS_DIR, name)), type });
  }
  return assets;
}

function readSmallBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) {
        reject(new CodedError(ErrorCode.badRequest, `body: larger than ${max} bytes`, 'body'));
        req.resume();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** `{username, password}` as JSON: a form of another site cannot send that without the browser asking us first. */
function signInBody(req: IncomingMessage, text: string): { username: string; password: string } {
  if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
    throw new CodedError(ErrorCode.badRequest, 'body: must be JSON (content-type application/json)', 'body');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CodedError(ErrorCode.badRequest, 'body: malformed JSON', 'body');
  }
  const v = value as { username?: unknown; password?: unknown } | null;
  if (typeof v?.username !== 'string' || v.username === '' || v.username.includes(':')) {
    throw new CodedError(ErrorCode.badRequest, 'username: required, without ":"', 'username');
  }
  if (typeof v.password !== 'string') throw new CodedError(ErrorCode.badRequest, 'password: required', 'password');
  return { username: v.username, password: v.password };
}

/** What the page learns of its session: never the session id, which stays in the HttpOnly cookie. */
function sessionView(s: Session) {
  return {
    username: s.principal.username,
    roles: s.principal.roles,
    csrfToken: s.csrfToken,
    expiresAt: new Date(s.expiresAt).toISOString(),
  };
}

export function createWebDoor(w: WebDoorDeps): WebDoor {
  const { logger } = w;
  const assets = loadAssets();
  const found = assets.get('index.html');
  if (!found) throw new Error(`web page missing: ${join(ASSETS_DIR, 'index.html')}`);
  const shell = found;
  const ttlMs = w.config.web.sessionMinutes * 60_000;
  const sessions = createSessions({ ttlMs });
  const authenticate = createAuthenticator(w.config);
  const secure = w.config.web.publicUrl?.startsWith('https://') ? '; Secure' : '';
  const cookie = (value: string, maxAgeSeconds: number) =>
    `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Lax; Path=/; Max-Age=${maxAgeSeconds}${secure}`;
  const sessionOf = (req: IncomingMessage) => sessions.get(cookieValue(req.headers.cookie, SESSION_COOKIE));

  function principalOf(req: IncomingMessage, method: string): Principal {
    const session = sessionOf(req);
    if (!session) throw new CodedError(ErrorCode.unauthorized, 'not signed in, or the session ended: sign in again');
    if (method !== 'GET' && method !== 'HEAD' && !csrfMatches(session, header(req, CSRF_HEADER))) {
      throw new CodedError(ErrorCode.forbidden, `missing or wrong CSRF token (the ${CSRF_HEADER} header)`);
    }
    return session.principal;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const url = new URL(`http://localhost${req.url ?? '/'}`);
    const path = url.pathname;
    if (path !== '/ui' && !path.startsWith('/ui/')) return false;
    if (path.startsWith(PAGE_API_PREFIX)) return false; // the API's own routes: http/server.ts
    const method = req.method ?? 'GET';
    const traceId = traceIdFrom(header(req, 'x-trace-id'));
    const meta: EnvelopeMeta = { startedAt: performance.now(), traceId, server: w.deps.address };
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, {
        'content-type': 'application/json',
        'cache-control': 'no-store',
        'x-trace-id': traceId,
        ...headers,
      });
      res.end(JSON.stringify(body));
    };

    try {
      if (path.startsWith('/ui/assets/')) {
        const asset = method === 'GET' ? assets.get(path.slice('/ui/assets/'.length)) : undefined;
        if (!asset) throw new CodedError(ErrorCode.notFound, `no such file ${path}`);
        res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache', ...PAGE_HEADERS });
        res.end(asset.body);
        return true;
      }
      if (path === '/ui/api/session') {
        if (method === 'GET') {
          const s = sessionOf(req);
          if (!s) throw new CodedError(ErrorCode.unauthorized, 'not signed in');
          send(200, success(sessionView(s), 200, meta));
          return true;
        }
        if (method === 'POST') {
          const { username, password } = signInBody(req, await readSmallBody(req, MAX_SIGN_IN_BODY));
          const basic = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
          const principal = await authenticate(basic, req.socket.remoteAddress);
          const old = sessionOf(req);
          if (old) sessions.delete(old.id);
          const s = sessions.create(principal);
          logger.info({ user: principal.username }, 'web sign-in');
          send(200, success(sessionView(s), 200, meta), { 'set-cookie': cookie(s.id, Math.floor(ttlMs / 1000)) });
          return true;
        }
      }
      if (path === '/ui/api/session/logout' && method === 'POST') {
        const s = sessionOf(req);
        if (s) {
          principalOf(req, method); // the CSRF token: another site cannot sign anyone out
          sessions.delete(s.id);
        }
        send(200, success({ signedOut: true }, 200, meta), { 'set-cookie': cookie('', 0) });
        return true;
      }
      const events = /^\/ui\/api\/tasks\/([^/]+)\/events$/.exec(path);
      if (events && method === 'GET') {
        await followTask(req, res, events[1] as string, send, meta);
        return true;
      }
      if (path.startsWith('/ui/api/')) throw new CodedError(ErrorCode.notFound, `no route for ${method} ${path}`);
      if (method !== 'GET' && method !== 'HEAD')
        throw new CodedError(ErrorCode.notFound, `no route for ${method} ${path}`);
      if (path === '/ui') {
        res.writeHead(308, { location: `/ui/${url.search}` });
        res.end();
        return true;
      }
      // Every page is the same shell: its script reads the path and asks for the data.
      res.writeHead(200, { 'content-type': shell.type, 'cache-control': 'no-store', ...PAGE_HEADERS });
      res.end(method === 'HEAD' ? undefined : shell.body);
      return true;
    } catch (err) {
      const { coded, status, unexpected } = toCodedFailure(err, w.adapterFailures);
      if (unexpected) logger.error({ err, traceId, path }, 'web request failed');
      if (res.headersSent) {
        res.end();
        return true;
      }
      send(
        status,
        failure(coded, status, meta),
        coded instanceof TooManySignInsError ? { 'retry-after': String(coded.retryAfterSeconds) } : {},
      );
      return true;
    }
  }

  /**
   * The task's events as server-sent events. Without Last-Event-ID the stream
   * opens with the task as stored (`snapshot`, its id the sequence of the
   * last event stored before it was read), then every later event (`task`,
   * its id its stream sequence); a browser reconnecting sends the last id it
   * saw and gets what followed, so none is missed. An event may repeat what
   * the snapshot shows already: applied again, it changes nothing.
   */
  async function followTask(
    req: IncomingMessage,
    res: ServerResponse,
    idText: string,
    send: (status: number, body: unknown) => void,
    meta: EnvelopeMeta,
  ): Promise<void> {
    const principal = principalOf(req, 'GET');
    const parsed = IdParam.safeParse(idText);
    if (!parsed.success) throw new CodedError(ErrorCode.badRequest, 'taskId: must be a positive integer id', 'taskId');
    if (!allows(principal, 'TASK_VIEWER')) {
      throw new CodedError(ErrorCode.forbidden, `user ${principal.username} lacks the TASK_VIEWER permission`);
    }
    const taskId = parsed.data;
    const resumeFrom = header(req, 'last-event-id');
    const after =
      resumeFrom !== undefined && /^(0|[1-9][0-9]{0,15})$/.test(resumeFrom) ? Number(resumeFrom) : undefined;
    let snapshot: string | undefined;
    let from = after;
    if (from === undefined) {
      from = await w.feed.lastSeq(taskId);
      snapshot = JSON.stringify(await getTask(w.deps, taskId));
    } else if (!(await w.deps.store.summary(taskId))) {
      send(404, failure(new CodedError(ErrorCode.taskNotFound, `task ${taskId} not found`, 'taskId'), 404, meta));
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    let open = true;
    const write = async (text: string) => {
      if (open && !res.write(text)) await Promise.race([once(res, 'drain'), once(res, 'close')]);
    };
    await write(`retry: ${RECONNECT_MS}\n\n`);
    if (snapshot !== undefined) await write(`id: ${from}\nevent: snapshot\n${dataLines(snapshot)}\n\n`);
    const followed = await w.feed.follow(taskId, from, (e) =>
      write(`id: ${e.seq}\nevent: task\n${dataLines(e.json)}\n\n`),
    );
    const ping = setInterval(() => {
      // A session that ended ends its streams too.
      if (!sessionOf(req)) followed.stop();
      else res.write(': ping\n\n');
    }, PING_MS);
    const close = () => {
      open = false;
      clearInterval(ping);
      followed.stop();
    };
    res.on('close', close);
    try {
      await followed.done;
    } catch (err) {
      logger.warn({ err, taskId }, 'following a task for the web page failed');
    } finally {
      close();
      res.end();
    }
  }

  return { handle, principalOf };
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** An SSE `data:` field of any text: a line of its own per line. */
function dataLines(text: string): string {
  return `data: ${text.split('\n').join('\ndata: ')}`;
}
