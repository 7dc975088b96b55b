/**
 * Wires the roles of one process from its configuration: NATS topology, task
 * store, the executor's consumers, the HTTP port. main.ts calls it; so do the
 * tests and benchmarks, with their own config and, where they must, their own
 * step runner.
 */
import type { AddressInfo } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import type { NatsConnection } from 'nats';
import type { Logger } from 'pino';
import { type Config, durationMs } from './config.js';
import type { StepRunner } from './executor/ports.js';
import { createSubtaskHandler } from './executor/run-subtask.js';
import { type Sweeper, startSweeper } from './executor/sweeper.js';
import { createHttpServer } from './http/server.js';
import { createMetrics, type Metrics } from './metrics.js';
import { startApiService } from './nats/api-service.js';
import { connectNats } from './nats/connect.js';
import { createFirstEventCheck } from './nats/event-history.js';
import { createHostLocks } from './nats/host-locks.js';
import { createIdAllocator, storeEpoch } from './nats/id-allocator.js';
import { type PullWorkers, startPullWorkers } from './nats/pull-workers.js';
import { CONSUMERS, ensureTopology, STREAMS } from './nats/streams.js';
import { createSubtaskLogs } from './nats/subtask-logs.js';
import { createTaskIndex } from './nats/task-index.js';
import { createTaskStore } from './nats/task-store.js';
import { unavailableOf } from './nats/unavailable.js';
import { createWorkQueue } from './nats/work-queue.js';
import type { SlackFrontDoor } from './slack/slack-app.js';
import { createSshStepRunner } from './ssh/ssh-step-runner.js';
import { createCommandIntake } from './tasks/command-intake.js';
import type { OperationDeps } from './tasks/task-operations.js';

export interface ServiceOptions {
  config: Config;
  logger: Logger;
  natsUrl: string;
  /** User and password for NATS instead of NATS_USER / NATS_PASSWORD (the embedded server's own). */
  natsAuth?: { user: string; password: string };
  /** Swap the SSH runner (benchmarks); default: SSH with the configured key. */
  runner?: StepRunner;
}

export interface Service {
  nc: NatsConnection;
  deps: OperationDeps;
  metrics: Metrics;
  /** Port the HTTP server listens on, when this process serves HTTP. */
  httpPort?: number;
  /** Drain: stop pulling, finish what is in hand, close connections. */
  stop(): Promise<void>;
}

/** This process's address as OCP shows it (`server`, `executor`): its first non-loopback IPv4, else 127.0.0.1. */
export function processAddress(): string {
  const all = Object.values(networkInterfaces()).flatMap((list) => list ?? []);
  return all.find((a) => a.family === 'IPv4' && !a.internal)?.address ?? '127.0.0.1';
}

/** Leases between two sweeps for tasks left RUNNING with nothing queued. */
const SWEEP_LEASES = 2;

/** Notifier loops per process: events of one task stay in order whatever this is. */
const NOTIFIER_CONCURRENCY = 4;

/** Answer on a Slack response_url (ephemeral messages, replacing a confirmation). */
async function postToResponseUrl(url: string, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`response_url answered ${res.status}`);
}

/** Intake loops per process: creating a task is a few KV round trips. */
const INTAKE_CONCURRENCY = 8;
/** The same for the Slack door's requests (people typing: fewer at once). */
const DOOR_INTAKE_CONCURRENCY = 2;

export async function startService(opts: ServiceOptions): Promise<Service> {
  const { config, logger } = opts;
  const roles = new Set(config.env.ROLES);
  const nc = await connectNats(
    {
      url: opts.natsUrl,
      creds: opts.natsAuth ? undefined : config.env.NATS_CREDS,
      user: opts.natsAuth?.user ?? config.env.NATS_USER,
      password: opts.natsAuth?.password ?? config.env.NATS_PASSWORD,
      name: `ocp-chatops ${[...roles].join(',')} ${hostname()}:${process.pid}`,
    },
    logger,
  );
  let streamsReady = false;
  const buckets = await ensureTopology(nc, {
    replicas: config.nats.replicas,
    leaseSeconds: config.executor.leaseSeconds,
    retention: { tasksMs: durationMs(config.retention.tasks), eventsMs: durationMs(config.retention.events) },
  });
  streamsReady = true;
  const js = nc.jetstream();
  const metrics = createMetrics();
  const runner =
    opts.runner ??
    createSshStepRunner({
      privateKeyPath: config.ssh.privateKeyPath,
      knownHostsPath: config.ssh.knownHostsPath,
      connectTimeoutSeconds: config.ssh.connectTimeoutSeconds,
      logger: logger.child({ component: 'ssh' }),
    });
  const deps: OperationDeps = {
    config,
    store: createTaskStore({ kv: buckets.tasks, js }),
    // Listings need every task; a process that only sweeps keeps the running ones.
    index: createTaskIndex({
      kv: buckets.tasks,
      ...(roles.has('api') || roles.has('slack') ? {} : { keep: (t) => t.status === 'RUNNING' }),
    }),
    locks: createHostLocks(buckets.locks),
    ids: createIdAllocator(buckets.ids),
    epoch: await storeEpoch(buckets.ids),
    maxPayload: nc.info?.max_payload ?? 1024 * 1024,
    requests: buckets.requests,
    logs: createSubtaskLogs(buckets.logs),
    enqueue: createWorkQueue(js),
    address: processAddress(),
    logger,
    now: () => new Date(),
    runner,
  };

  const workers: PullWorkers[] = [];
  const sweepers: Sweeper[] = [];
  if (roles.has('executor')) {
    workers.push(
      startPullWorkers({
        js,
        stream: STREAMS.cmd,
        durable: CONSUMERS.intake,
        concurrency: INTAKE_CONCURRENCY,
        logger: logger.child({ component: 'intake' }),
        handle: createCommandIntake({ ...deps, js }),
      }),
      startPullWorkers({
        js,
        stream: STREAMS.door,
        durable: CONSUMERS.doorIntake,
        concurrency: DOOR_INTAKE_CONCURRENCY,
        logger: logger.child({ component: 'intake' }),
        handle: createCommandIntake({ ...deps, js }),
      }),
      startPullWorkers({
        js,
        stream: STREAMS.work,
        durable: CONSUMERS.executor,
        concurrency: config.executor.concurrency,
        logger: logger.child({ component: 'executor' }),
        handle: createSubtaskHandler({ ...deps, metrics }),
      }),
    );
    sweepers.push(
      startSweeper(deps, {
        everyMs: SWEEP_LEASES * config.executor.leaseSeconds * 1000,
        logger,
        keptMs: durationMs(config.retention.tasks),
      }),
    );
    logger.info({ concurrency: config.executor.concurrency, hosts: config.hosts.length }, 'executor started');
  }

  let slack: SlackFrontDoor | undefined;
  const notifiers: Array<{ stop(): void }> = [];
  const slackEnv = config.env;
  const slackOn = Boolean(slackEnv.SLACK_BOT_TOKEN && (slackEnv.SLACK_SIGNING_SECRET || slackEnv.SLACK_APP_TOKEN));
  if (slackOn && (roles.has('slack') || roles.has('notifier'))) {
    // Loaded only where Slack is on: Bolt and the Web API client are ~37 MB an
    // executor process has no use for.
    const [{ WebClient }, { SLACK_RETRY, startSlackApp }, { createNotifier }, { createSlackRoles }] = await Promise.all(
      [
        import('@slack/web-api'),
        import('./slack/slack-app.js'),
        import('./slack/notifier.js'),
        import('./slack/slack-roles.js'),
      ],
    );
    const token = slackEnv.SLACK_BOT_TOKEN as string;
    const webOptions = {
      slackApiUrl: slackEnv.SLACK_API_URL,
      retryConfig: SLACK_RETRY,
    };
    if (roles.has('slack')) {
      slack = await startSlackApp({
        ops: deps,
        js,
        roles: createSlackRoles({ config, client: new WebClient(token, webOptions), logger }),
        pending: buckets.slack,
        logger,
        signingSecret: slackEnv.SLACK_SIGNING_SECRET ?? '',
        botToken: token,
        ...(slackEnv.SLACK_APP_TOKEN ? { appToken: slackEnv.SLACK_APP_TOKEN } : {}),
        apiUrl: slackEnv.SLACK_API_URL,
      });
      logger.info({ mode: slackEnv.SLACK_APP_TOKEN ? 'socket' : 'http', command: config.slack.command }, 'Slack on');
    }
    if (roles.has('notifier')) {
      // 429s surface at once and the event is put back for Retry-After: durable, in order.
      const client = new WebClient(token, { ...webOptions, rejectRateLimitedCalls: true });
      const notifier = createNotifier({
        config,
        store: deps.store,
        logs: deps.logs,
        requests: buckets.requests,
        threads: buckets.slack,
        client,
        respond: postToResponseUrl,
        firstEventPassed: createFirstEventCheck(await nc.jetstreamManager(), CONSUMERS.notifier),
        logger: logger.child({ component: 'notifier' }),
      });
      notifiers.push(notifier);
      workers.push(
        startPullWorkers({
          js,
          stream: STREAMS.events,
          durable: CONSUMERS.notifier,
          concurrency: NOTIFIER_CONCURRENCY,
          logger: logger.child({ component: 'notifier' }),
          handle: notifier.handle,
        }),
      );
    }
  }

  let connected = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') connected = false;
      if (s.type === 'reconnect') {
        connected = true;
        metrics.natsReconnects.inc();
      }
    }
  })();

  const apiService = roles.has('api')
    ? await startApiService(nc, deps, logger.child({ component: 'nats-api' }), deps.address)
    : undefined;

  let http: ReturnType<typeof createHttpServer> | undefined;
  let httpPort: number | undefined;
  if (roles.has('api') || roles.has('slack')) {
    http = createHttpServer({
      config,
      deps,
      metrics,
      logger: logger.child({ component: 'http' }),
      adapterFailures: unavailableOf,
      extra: slack ? [(req, res) => (slack as SlackFrontDoor).handleHttp(req, res)] : [],
      ready: () => {
        const reasons: string[] = [];
        if (nc.isClosed()) reasons.push('NATS connection closed');
        else if (!connected) reasons.push('NATS disconnected');
        if (!streamsReady) reasons.push('streams not ready');
        return { ok: reasons.length === 0, reasons };
      },
    });
    await new Promise<void>((resolve, reject) => {
      http?.once('error', reject);
      http?.listen(config.env.HTTP_PORT, config.env.HTTP_HOST, () => resolve());
    });
    httpPort = (http.address() as AddressInfo).port;
    logger.info({ port: httpPort }, 'HTTP listening');
  }

  return {
    nc,
    deps,
    metrics,
    ...(httpPort === undefined ? {} : { httpPort }),
    async stop() {
      await apiService?.stop().catch(() => undefined);
      for (const s of sweepers) s.stop();
      await Promise.all(workers.map((w) => w.stop()));
      for (const n of notifiers) n.stop();
      deps.index.close();
      await slack?.stop();
      await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
      await runner.close();
      await nc.drain().catch(() => nc.close());
    },
  };
}
