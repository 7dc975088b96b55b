/**
 * Composition root: configuration → logger → NATS (embedded when none is
 * configured) → roles. SIGTERM and SIGINT drain; SIGHUP re-reads the inventory.
 */
import type { ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { ConfigError, loadConfig } from './config.js';
import { createConfigReloader } from './config-reload.js';
import { createConfigSource } from './config-source.js';
import { createLogger } from './logger.js';
import { DEFAULT_NATS_URL, withoutCredentials } from './nats/connect.js';
import {
  findNatsServer,
  listening,
  type NatsCredentials,
  readEmbeddedCredentials,
  startEmbeddedNats,
} from './nats/embedded-server.js';
import { startService } from './service.js';

async function main(): Promise<void> {
  let loaded: ReturnType<typeof loadConfig>;
  try {
    loaded = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ocp-chatops: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const { config, warning } = loaded;
  const logger = createLogger(config.env.LOG_LEVEL);
  if (warning) logger.warn(warning);
  logger.info({ config: config.source, roles: config.env.ROLES, hosts: config.hosts.length }, 'starting');
  if (!config.env.SLACK_BOT_TOKEN || !(config.env.SLACK_SIGNING_SECRET || config.env.SLACK_APP_TOKEN)) {
    logger.info('Slack is off: set SLACK_BOT_TOKEN with SLACK_SIGNING_SECRET (HTTP) or SLACK_APP_TOKEN (Socket Mode)');
  }

  let embedded: ChildProcess | undefined;
  let natsUrl = config.env.NATS_URL ?? DEFAULT_NATS_URL;
  /** The embedded server's own credentials (./.data), for it and the service's other processes beside it. */
  let natsAuth: NatsCredentials | undefined;
  if (!config.env.NATS_URL) {
    const dataDir = resolve('.data');
    if (await listening('127.0.0.1', 4222)) {
      // Another process of the service here may have embedded it: use its credentials.
      if (!config.env.NATS_USER && !config.env.NATS_CREDS) natsAuth = readEmbeddedCredentials(dataDir);
    } else {
      const binary = findNatsServer();
      if (!binary) {
        logger.fatal(
          'NATS_URL is unset and nothing listens on 127.0.0.1:4222. Set NATS_URL, or install nats-server ' +
            '(Debian: apt-get install nats-server) so that npm start runs an embedded one.',
        );
        process.exit(69); // EX_UNAVAILABLE
      }
      const started = await startEmbeddedNats({ binary, dataDir, logger });
      embedded = started.child;
      natsAuth = started.credentials;
      natsUrl = started.url;
    }
  }

  const source = createConfigSource(config);
  const service = await startService({ config, source, logger, natsUrl, ...(natsAuth ? { natsAuth } : {}) });
  // The inventory follows the file (SPEC §9): on SIGHUP, and when the file changes.
  const reloader = createConfigReloader({ source, env: process.env, logger });
  process.on('SIGHUP', () => reloader.reload('SIGHUP'));
  logger.info({ nats: withoutCredentials(natsUrl), httpPort: service.httpPort }, 'ready');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining');
    reloader.stop();
    const force = setTimeout(() => process.exit(1), 30_000);
    force.unref();
    await service.stop();
    embedded?.kill('SIGTERM');
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err) => {
  process.stderr.write(`ocp-chatops: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
