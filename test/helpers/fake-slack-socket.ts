/**
 * A local stand-in for Slack's Socket Mode, for tests, beside the fake Web API
 * (fake-slack.ts), the way Slack documents it (docs.slack.dev, "Using Socket
 * Mode") and @slack/socket-mode speaks it:
 *
 * 1. The app calls `apps.connections.open` on the Web API with its app-level
 *    token (`Authorization: Bearer xapp-…`); the answer is
 *    `{ ok: true, url: "ws://127.0.0.1:<port>/link/?ticket=…" }`, a ticket good
 *    for one connection.
 * 2. The app opens a WebSocket there; the first message is `{ type: "hello", … }`,
 *    after which the client counts as connected.
 * 3. Slack sends envelopes `{ envelope_id, type, payload, accepts_response_payload }`
 *    (`slash_commands`: the command's fields; `interactive`: a block_actions
 *    payload) and the app acknowledges each with `{ envelope_id, payload? }`
 *    within 3 s. The payload of an ack is what an HTTP answer's body would be.
 * 4. When the link drops (`drop()` here; Slack also asks for it every few
 *    hours with a `disconnect` message), the app opens a new connection
 *    through `apps.connections.open`.
 */
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FakeSlack } from './fake-slack.js';
import { acceptWebSocket, refuseUpgrade, type WebSocketConnection } from './websocket-server.js';

/** An acknowledgement the app sent back over the socket. */
export interface SocketAck {
  envelope_id: string;
  payload?: Record<string, unknown>;
  /** ms after the envelope was sent */
  ms: number;
}

export type EnvelopeType = 'slash_commands' | 'interactive';

export interface FakeSlackSocket {
  /** The app-level token apps.connections.open accepts. */
  appToken: string;
  /** WebSocket connections the app has opened (each was sent `hello`). */
  opened(): number;
  /** Connections open now. */
  open(): number;
  /** Every acknowledgement, in arrival order. */
  acks: SocketAck[];
  /** Messages from the app that were no acknowledgement of an envelope sent. */
  strays: string[];
  /** How each connection ended, in order: `clean` when both close frames went across. */
  closes: Array<{ code?: number; clean: boolean }>;
  /** Resolves once the app has opened `count` connections in all and holds one open. */
  waitForConnection(count?: number, timeoutMs?: number): Promise<void>;
  /** Send an envelope on the newest open connection; resolves with its ack, rejects if none comes within 3 s, as Slack gives up. */
  send(type: EnvelopeType, payload: Record<string, unknown>): Promise<SocketAck>;
  /** Cut the newest open connection without a close frame, as a dropped link does. */
  drop(): void;
  /** The next `calls` calls of apps.connections.open answer HTTP 503, as when Slack or a proxy in between is down. */
  unavailable(calls: number): void;
  stop(): Promise<void>;
}

/** Slack waits this long (ms) for an envelope's acknowledgement. */
const ACK_TIMEOUT_MS = 3000;
const APP_ID = 'A0FAKE';

export async function startFakeSlackSocket(
  fake: FakeSlack,
  opts: { appToken?: string } = {},
): Promise<FakeSlackSocket> {
  const appToken = opts.appToken ?? 'xapp-1-A0FAKE-fake-ocp-chatops';
  const tickets = new Set<string>();
  const connections: WebSocketConnection[] = [];
  const waiting = new Map<string, { sentAt: number; resolve: (a: SocketAck) => void }>();
  const acks: SocketAck[] = [];
  const strays: string[] = [];
  const closes: FakeSlackSocket['closes'] = [];
  let outages = 0;

  const server = createServer((_req, res) => {
    res.writeHead(426, { 'content-type': 'text/plain' }).end('WebSocket only');
  });
  server.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const ticket = url.searchParams.get('ticket') ?? '';
    if (url.pathname !== '/link/' || !tickets.delete(ticket)) {
      refuseUpgrade(socket, 401, 'Unauthorized');
      return;
    }
    const conn = acceptWebSocket(req, socket, head);
    if (!conn) return;
    connections.push(conn);
    conn.onClose((info) => closes.push(info));
    conn.onMessage((text) => {
      let msg: { envelope_id?: unknown; payload?: unknown };
      try {
        msg = JSON.parse(text) as typeof msg;
      } catch {
        strays.push(text);
        return;
      }
      const w = typeof msg.envelope_id === 'string' ? waiting.get(msg.envelope_id) : undefined;
      if (!w) {
        strays.push(text);
        return;
      }
      waiting.delete(msg.envelope_id as string);
      const ack: SocketAck = {
        envelope_id: msg.envelope_id as string,
        ...(msg.payload && typeof msg.payload === 'object' ? { payload: msg.payload as Record<string, unknown> } : {}),
        ms: Date.now() - w.sentAt,
      };
      acks.push(ack);
      w.resolve(ack);
    });
    conn.send(
      JSON.stringify({
        type: 'hello',
        num_connections: connections.filter((c) => !c.closed).length,
        debug_info: { host: 'applink-fake', build_number: 1, approximate_connection_time: 3600 },
        connection_info: { app_id: APP_ID },
      }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  fake.serve('apps.connections.open', ({ token }) => {
    if (outages > 0) {
      outages -= 1;
      return { status: 503, body: { ok: false, error: 'service_unavailable' } };
    }
    if (token === undefined) return { status: 200, body: { ok: false, error: 'not_authed' } };
    if (token !== appToken) return { status: 200, body: { ok: false, error: 'invalid_auth' } };
    const ticket = randomUUID();
    tickets.add(ticket);
    return { status: 200, body: { ok: true, url: `ws://127.0.0.1:${port}/link/?ticket=${ticket}` } };
  });

  const newestOpen = () => [...connections].reverse().find((c) => !c.closed);

  return {
    appToken,
    opened: () => connections.length,
    open: () => connections.filter((c) => !c.closed).length,
    acks,
    strays,
    closes,
    async waitForConnection(count = 1, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      while (!(connections.length >= count && newestOpen())) {
        if (Date.now() > deadline) {
          throw new Error(
            `the app did not open connection #${count} in ${timeoutMs} ms (opened ${connections.length})`,
          );
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    send(type, payload) {
      const conn = newestOpen();
      if (!conn) return Promise.reject(new Error('no open Socket Mode connection'));
      const envelope_id = randomUUID();
      return new Promise<SocketAck>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiting.delete(envelope_id);
          reject(new Error(`envelope ${type} not acknowledged within ${ACK_TIMEOUT_MS} ms`));
        }, ACK_TIMEOUT_MS);
        waiting.set(envelope_id, {
          sentAt: Date.now(),
          resolve: (a) => {
            clearTimeout(timer);
            resolve(a);
          },
        });
        conn.send(JSON.stringify({ envelope_id, type, payload, accepts_response_payload: type === 'slash_commands' }));
      });
    },
    drop() {
      newestOpen()?.drop();
    },
    unavailable(calls) {
      outages = calls;
    },
    async stop() {
      for (const c of connections) c.drop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
