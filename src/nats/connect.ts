/**
 * The NATS connection: unlimited reconnects (the first connection, too, waits
 * for a server, saying so), credentials from the environment, TLS as the URL
 * says; NATS_URL may list a cluster's servers, comma-separated.
 * A request that finds no responder (a stream or consumer whose leader died,
 * while its replicas elect another) is sent again until one answers.
 */
import { readFileSync } from 'node:fs';
import {
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  delay,
  ErrorCode,
  type NatsConnection,
  NatsError,
  type Payload,
  type RequestOptions,
} from 'nats';
import type { Logger } from 'pino';

export interface NatsSettings {
  url: string;
  creds?: string | undefined;
  user?: string | undefined;
  password?: string | undefined;
  name: string;
}

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/**
 * A NATS URL may carry `user:password@` or a token on each of its comma-separated servers:
 * never log those. Everything before a server's last `@` (after its `scheme://`) is
 * credentials. Not `new URL()`: a URL parser ends the authority at the first `/`, so a
 * password with a raw `/` would have its tail read as a path and printed; a server URL has no
 * path, so its last `@` is always where the credentials end. (A raw `,` cannot be in a
 * password: NATS_URL is split into servers on it; percent-encode it as `%2C`.)
 */
export function withoutCredentials(url: string): string {
  return url
    .split(',')
    .map((server) => {
      const at = server.lastIndexOf('@');
      if (at < 0) return server;
      const sep = server.indexOf('://');
      // `ops:a://b@host` or `ops:////@host` has no scheme, but credentials that look like one
      const start = sep >= 0 && sep < at && SCHEMES.has(server.slice(0, sep).toLowerCase()) ? sep + 3 : 0;
      return server.slice(0, start) + server.slice(at + 1);
    })
    .join(',');
}

/** The schemes a NATS server URL is written with; anything else before `://` is part of the credentials. */
const SCHEMES = new Set(['nats', 'tls', 'ws', 'wss']);

/** While the first connection waits for a server: the first notice (ms), then one every… (ms). */
const FIRST_NOTICE_MS = 1000;
const NOTICE_EVERY_MS = 15_000;

/**
 * nats.js rejects every answered request's promise once more, already settled,
 * with a new "Cancelled" NatsError — a stack trace captured that nobody sees
 * (it is made only there). At a dozen requests per subtask that was ~10% of an
 * executor's CPU (bench throughput profile); one shared instance serves.
 */
function shareCancelledError(): void {
  const make = NatsError.errorForCode;
  if ((make as { shared?: true }).shared) return;
  const cancelled = make(ErrorCode.Cancelled);
  const shared = (code: string, chained?: Error) =>
    code === ErrorCode.Cancelled && !chained ? cancelled : make(code, chained);
  NatsError.errorForCode = Object.assign(shared, { shared: true as const });
}

export async function connectNats(settings: NatsSettings, logger: Logger): Promise<NatsConnection> {
  const opts: ConnectionOptions = {
    servers: settings.url.split(','),
    name: settings.name,
    maxReconnectAttempts: -1, // never give up: requests are durable, we wait for the server
    reconnectTimeWait: 250, // ms between attempts
    // A server not up yet is waited for, as one that goes away later is: a
    // process started during an outage serves once NATS is back.
    waitOnFirstConnect: true,
    pingInterval: 10_000,
    // nats.js captures a stack trace per request to name what timed out; at a
    // dozen requests per subtask that was the client's biggest CPU cost.
    noAsyncTraces: true,
  };
  if (settings.url.startsWith('tls://')) opts.tls = {};
  if (settings.creds) opts.authenticator = credsAuthenticator(readFileSync(settings.creds));
  if (settings.user) {
    opts.user = settings.user;
    opts.pass = settings.password;
  }
  shareCancelledError();
  const nc = await whileWaiting(connect(opts), () =>
    logger.warn({ nats: withoutCredentials(settings.url) }, 'NATS not reachable yet; waiting for it'),
  );
  retryNoResponders(nc, logger);
  void watchStatus(nc, logger);
  return nc;
}

/** `notice` after FIRST_NOTICE_MS and every NOTICE_EVERY_MS until `pending` settles. */
async function whileWaiting<T>(pending: Promise<T>, notice: () => void): Promise<T> {
  let timer = setTimeout(function tick() {
    notice();
    timer = setTimeout(tick, NOTICE_EVERY_MS);
  }, FIRST_NOTICE_MS);
  try {
    return await pending;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * How long a request that found no responder is sent again (ms). In a cluster,
 * a stream's or consumer's subjects have no responder from its leader's death
 * until its replicas elect another — nats-server's election takes up to about
 * 10 s. Nothing received such a request, so sending it again is always safe;
 * without this, every KV change and publish of that window fails (an HTTP
 * request answers 503 after taking half its steps, an executor puts its work
 * back) although the cluster is about to serve it.
 */
export const NO_RESPONDERS_RETRY_MS = 15_000;

function isNoResponders(err: unknown): boolean {
  return err instanceof NatsError && err.code === ErrorCode.NoResponders;
}

/**
 * Every request of this connection — JetStream publishes, KV operations and
 * JetStream API calls all are requests — retries "no responders" with a short
 * backoff for up to NO_RESPONDERS_RETRY_MS. A timeout is not retried here: the
 * request may have been received, and the callers' own idempotence handles it.
 *
 * Order is kept per subject: a request that must be sent again gets in line
 * behind the earlier ones of its subject (a task's events, one key's changes),
 * and so does every later request of that subject until the line is empty; if
 * one in the line gives up, those behind it give up too rather than overtake.
 */
function retryNoResponders(nc: NatsConnection, logger: Logger): void {
  const request = nc.request.bind(nc);
  /** Per subject, the last request in line to be sent again: true once answered, false if it gave up. */
  const lines = new Map<string, Promise<boolean>>();

  async function resend(
    subject: string,
    payload: Payload | undefined,
    opts: RequestOptions | undefined,
    firstError: NatsError | undefined,
  ) {
    const deadline = Date.now() + NO_RESPONDERS_RETRY_MS;
    const ahead = lines.get(subject);
    let settle!: (answered: boolean) => void;
    const mine = new Promise<boolean>((resolve) => {
      settle = resolve;
    });
    lines.set(subject, mine);
    let lastError = firstError;
    const giveUp = () => lastError ?? NatsError.errorForCode(ErrorCode.NoResponders);
    try {
      if (ahead && !(await ahead)) throw giveUp();
      for (let attempt = 0; ; attempt++) {
        if (nc.isClosed() || Date.now() >= deadline) throw giveUp();
        if (lastError) await delay(Math.min(1000, 100 * 2 ** attempt));
        try {
          const answer = await request(subject, payload, opts);
          settle(true);
          if (firstError) logger.info({ subject, attempts: attempt + 2 }, 'NATS request answered after no responders');
          return answer;
        } catch (err) {
          if (!isNoResponders(err)) throw err;
          lastError = err as NatsError;
        }
      }
    } finally {
      settle(false); // no-op once answered
      if (lines.get(subject) === mine) lines.delete(subject);
    }
  }

  nc.request = async (subject, payload, opts) => {
    if (lines.has(subject)) return resend(subject, payload, opts, undefined);
    try {
      return await request(subject, payload, opts);
    } catch (err) {
      if (!isNoResponders(err) || nc.isClosed()) throw err;
      logger.warn({ subject }, 'NATS request found no responders; sending it again');
      return resend(subject, payload, opts, err as NatsError);
    }
  };
}

async function watchStatus(nc: NatsConnection, logger: Logger): Promise<void> {
  for await (const s of nc.status()) {
    if (s.type === 'reconnect') logger.info({ server: String(s.data) }, 'NATS reconnected');
    else if (s.type === 'disconnect') logger.warn({ server: String(s.data) }, 'NATS disconnected; reconnecting');
    else if (s.type === 'error') logger.error({ err: s.data }, 'NATS error');
  }
}
