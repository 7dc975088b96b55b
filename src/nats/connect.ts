/**
 * The NATS connection: unlimited reconnects, credentials from the environment,
 * TLS as the URL says.
 */
import { readFileSync } from 'node:fs';
import { type ConnectionOptions, connect, credsAuthenticator, type NatsConnection } from 'nats';
import type { Logger } from 'pino';

export interface NatsSettings {
  url: string;
  creds?: string | undefined;
  user?: string | undefined;
  password?: string | undefined;
  name: string;
}

export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

export async function connectNats(settings: NatsSettings, logger: Logger): Promise<NatsConnection> {
  const opts: ConnectionOptions = {
    servers: settings.url.split(','),
    name: settings.name,
    maxReconnectAttempts: -1, // never give up: requests are durable, we wait for the server
    reconnectTimeWait: 250, // ms between attempts
    waitOnFirstConnect: false,
    pingInterval: 10_000,
  };
  if (settings.url.startsWith('tls://')) opts.tls = {};
  if (settings.creds) opts.authenticator = credsAuthenticator(readFileSync(settings.creds));
  if (settings.user) {
    opts.user = settings.user;
    opts.pass = settings.password;
  }
  const nc = await connect(opts);
  void watchStatus(nc, logger);
  return nc;
}

async function watchStatus(nc: NatsConnection, logger: Logger): Promise<void> {
  for await (const s of nc.status()) {
    if (s.type === 'reconnect') logger.info({ server: String(s.data) }, 'NATS reconnected');
    else if (s.type === 'disconnect') logger.warn({ server: String(s.data) }, 'NATS disconnected; reconnecting');
    else if (s.type === 'error') logger.error({ err: s.data }, 'NATS error');
  }
}
