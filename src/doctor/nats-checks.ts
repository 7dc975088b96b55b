/**
 * The doctor's look at NATS: reachable with the service's credentials,
 * JetStream on, and the streams and buckets the service makes (SPEC §5) there
 * with `nats.replicas` replicas. A missing stream or bucket is a warning: the
 * service makes them at start.
 */

import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { connect, credsAuthenticator, type NatsConnection } from 'nats';
import type { Config } from '../config.js';
import { DEFAULT_NATS_URL, withoutCredentials } from '../nats/connect.js';
import { readEmbeddedCredentials } from '../nats/embedded-server.js';
import { BUCKETS, STREAMS } from '../nats/streams.js';
import { type Finding, finding } from './report.js';

const T = 'nats';

/** Where the service would connect and with what, as main.ts decides (the embedded server's credentials from ./.data). */
function settingsOf(config: Config, cwd: string) {
  const env = config.env;
  const url = env.NATS_URL ?? DEFAULT_NATS_URL;
  const embedded =
    !env.NATS_URL && !env.NATS_USER && !env.NATS_CREDS ? readEmbeddedCredentials(resolve(cwd, '.data')) : undefined;
  return {
    url,
    ...(env.NATS_CREDS ? { authenticator: credsAuthenticator(readFileSync(env.NATS_CREDS)) } : {}),
    ...(env.NATS_USER ? { user: env.NATS_USER, pass: env.NATS_PASSWORD } : {}),
    ...(embedded ? { user: embedded.user, pass: embedded.password } : {}),
  };
}

export async function checkNats(config: Config, opts: { cwd: string; timeoutMs: number }): Promise<Finding[]> {
  let settings: ReturnType<typeof settingsOf>;
  try {
    settings = settingsOf(config, opts.cwd);
  } catch (err) {
    return [finding(T, 'credentials', 'fail', (err as Error).message, 'Fix NATS_CREDS, or the file it names.')];
  }
  const { url, ...auth } = settings;
  const shown = withoutCredentials(url);
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: url.split(','),
      ...auth,
      ...(url.startsWith('tls://') ? { tls: {} } : {}),
      timeout: opts.timeoutMs,
      reconnect: false,
      name: 'ocp-chatops doctor',
    });
  } catch (err) {
    const message = (err as Error).message;
    const refused = /authorization|authentication/i.test(message);
    return [
      finding(
        T,
        'reach',
        'fail',
        `cannot connect to ${shown}: ${message}`,
        refused
          ? 'Give the service its NATS user: NATS_USER and NATS_PASSWORD, or NATS_CREDS.'
          : config.env.NATS_URL
            ? `Start nats-server with JetStream (nats-server -js) at ${shown}, or correct NATS_URL.`
            : 'Set NATS_URL, or let npm start run an embedded nats-server (apt-get install nats-server).',
      ),
    ];
  }
  try {
    const found: Finding[] = [finding(T, 'reach', 'ok', `${shown} (nats-server ${nc.info?.version ?? '?'})`)];
    let jsm: Awaited<ReturnType<NatsConnection['jetstreamManager']>>;
    try {
      jsm = await nc.jetstreamManager({ timeout: opts.timeoutMs });
      const account = await jsm.getAccountInfo();
      found.push(finding(T, 'jetstream', 'ok', `on: ${account.streams} streams in the account`));
    } catch (err) {
      found.push(
        finding(
          T,
          'jetstream',
          'fail',
          `JetStream is not available: ${(err as Error).message}`,
          'Run nats-server with JetStream (nats-server -js, or jetstream { store_dir: … } in its config) and give the account JetStream.',
        ),
      );
      return found;
    }
    const replicas = config.nats.replicas;
    if (replicas > 1 && !nc.info?.cluster) {
      found.push(
        finding(
          T,
          'replicas',
          'fail',
          `nats.replicas is ${replicas} but ${shown} is not in a cluster`,
          'Set nats.replicas: 1 for a single server, or connect to a cluster of at least that many servers.',
        ),
      );
    }
    const names = [...Object.values(STREAMS), ...BUCKETS.map((b) => `KV_${b}`)];
    const infos = await Promise.all(
      names.map((name) =>
        jsm.streams.info(name).then(
          (info) => ({ name, replicas: info.config.num_replicas }),
          () => ({ name, replicas: undefined }),
        ),
      ),
    );
    const missing = infos.filter((i) => i.replicas === undefined).map((i) => i.name);
    const off = infos.filter((i) => i.replicas !== undefined && i.replicas !== replicas);
    if (missing.length === names.length) {
      found.push(
        finding(
          T,
          'streams',
          'warn',
          "none of the service's streams and buckets exist yet",
          'None: the service makes them when it starts.',
        ),
      );
    } else if (missing.length > 0) {
      found.push(
        finding(T, 'streams', 'warn', `missing: ${missing.join(', ')}`, 'The service makes them at start: restart it.'),
      );
    } else {
      found.push(finding(T, 'streams', 'ok', `${names.length} streams and buckets present`));
    }
    if (off.length > 0) {
      found.push(
        finding(
          T,
          'stream replicas',
          'warn',
          `${off.map((i) => `${i.name} has ${i.replicas}`).join(', ')}; nats.replicas is ${replicas}`,
          'The service sets them to nats.replicas at start: restart it.',
        ),
      );
    } else if (missing.length < names.length) {
      found.push(finding(T, 'stream replicas', 'ok', `${replicas} each`));
    }
    return found;
  } finally {
    await nc.close().catch(() => undefined);
  }
}
