/**
 * Wires the roles of one process from its configuration: NATS topology, task
 * store, the executor's consumers, the HTTP port. main.ts calls it; so do the
 * tests and benchmarks, with their own config and, where they must, their own
 * step runner.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { hostname, networkInterfaces } from 'node:os';
import type { JetStreamClient, NatsConnection } from 'nats';
import type { Logger } from 'pino';
import type { FrontDoor } from './api/ports.js';
import { type Config, durationMs } from './config.js';
import { type ConfigSource, createConfigSource } from './config-source.js';
import type { StepRunner } from './executor/ports.js';
import { createSubtaskHandler } from './executor/run-subtask.js';
import { startSweeper } from './executor/sweeper.js';
import { createHttpServer } from './http/server.js';
import { createMetrics, type Metrics } from './metrics.js';
import { startApiService } from './nats/api-service.js';
import { createCommandIntake } from './nats/command-intake.js';
import { connectNats } from './nats/connect.js';
import { createBatchPostsStore, createDeliveryStates } from './nats/delivery-states.js';
import { createFirstEventCheck } from './nats/event-history.js';
import { createHostLocks } from './nats/host-locks.js';
import { createIdAllocator, storeEpoch } from './nats/id-allocator.js';
import { createPendingBatches } from './nats/pending-batches.js';
import { startPullWorkers } from './nats/pull-workers.js';
import { createRequestLog } from './nats/request-log.js';
import { createDoorPublisher } from './nats/slack-door.js';
import { type Buckets, CONSUMERS, ensureTopology, STREAMS } from './nats/streams.js';
import { createSubtaskLogs } from './nats/subtask-logs.js';
import { createTaskEventFeed } from './nats/task-event-feed.js';
import { createTaskIndex } from './nats/task-index.js';
import { createTaskStore } from './nats/task-store.js';
import { unavailableOf } from './nats/unavailable.js';
import { createWorkQueue } from './nats/work-queue.js';
import { createOrderedDelivery } from './notify/ordered-delivery.js';
import type { ChatApi } from './slack/notifier.js';
import type { SlackFrontDoor } from './slack/slack-app.js';
import { createSshStepRunner } from './ssh/ssh-step-runner.js';
import type { OperationDeps } from './tasks/deps.js';
import { createWebDoor, PAGE_API_PREFIX } from './web/web-door.js';

export interface ServiceOptions {
  /** The configuration at start; `source` when it is re-read while the service runs (main.ts). */
  config: Config;
  source?: ConfigSource;
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
  /** The configuration as it is now (the inventory follows the file; see config-source.ts). */
  source: ConfigSource;
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

/** What a started role leaves to stop. */
interface Running {
  stop(): void | Promise<void>;
}

/** What every role is started from. */
interface Wiring {
  /** The configuration at start: what is fixed for the process's life (the inventory: deps.config). */
  config: Config;
  source: ConfigSource;
  logger: Logger;
  roles: ReadonlySet<string>;
  nc: NatsConnection;
  js: JetStreamClient;
  buckets: Buckets;
  deps: OperationDeps;
  metrics: Metrics;
}

export async function startService(opts: ServiceOptions): Promise<Service> {
  const { config, logger } = opts;
  const source = opts.source ?? createConfigSource(config);
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
  // Streams, consumers and buckets exist before any role starts (or start-up fails).
  const buckets = await ensureTopology(nc, {
    replicas: config.nats.replicas,
    leaseSeconds: config.executor.leaseSeconds,
    retention: { tasksMs: durationMs(config.retention.tasks), eventsMs: durationMs(config.retention.events) },
  });
  const metrics = createMetrics();
  const runner = opts.runner ?? sshRunner(config, logger);
  const deps = await wireDeps(source, logger, roles, nc, buckets, runner);
  const w: Wiring = { config, source, logger, roles, nc, js: nc.jetstream(), buckets, deps, metrics };

  const executor = roles.has('executor') ? startExecutorRole(w) : [];
  const slack = await startSlackRoles(w);
  const connected = followConnection(nc, metrics);
  const natsApi = roles.has('api') ? await startNatsApi(w) : undefined;
  const http = roles.has('api') || roles.has('slack') ? await startHttp(w, slack.door, connected) : undefined;

  return {
    nc,
    deps,
    metrics,
    source,
    ...(http ? { httpPort: http.port } : {}),
    async stop() {
      // New requests first, then the work in hand, then the connections.
      await natsApi?.stop();
      // Pull loops finish what they hold, side by side; then what they fed.
      await Promise.all([...executor, ...slack.loops].map((r) => r.stop()));
      for (const r of slack.after) await r.stop();
      deps.index.close();
      await slack.door?.stop();
      await http?.stop();
      await runner.close();
      await nc.drain().catch(() => nc.close());
    },
  };
}

function sshRunner(config: Config, logger: Logger): StepRunner {
  return createSshStepRunner({
    ...(config.env.SSH_AUTH_SOCK === undefined ? {} : { agentSocket: config.env.SSH_AUTH_SOCK }),
    ...(config.env.SSH_KEY_PASSPHRASE === undefined ? {} : { passphrase: config.env.SSH_KEY_PASSPHRASE }),
    knownHostsPath: config.ssh.knownHostsPath,
    connectTimeoutSeconds: config.ssh.connectTimeoutSeconds,
    logger: logger.child({ component: 'ssh' }),
  });
}

/**
 * The use cases' ports, each with its NATS adapter; `config` is a getter onto
 * the source, so every use case reads the inventory of the moment.
 */
async function wireDeps(
  source: ConfigSource,
  logger: Logger,
  roles: ReadonlySet<string>,
  nc: NatsConnection,
  buckets: Buckets,
  runner: StepRunner,
): Promise<OperationDeps> {
  const js = nc.jetstream();
  return {
    get config() {
      return source.current();
    },
    store: createTaskStore({ kv: buckets.tasks, js }),
    // Listings need every task; a process that only sweeps keeps the running ones.
    index: createTaskIndex({ kv: buckets.tasks, keep: roles.has('api') || roles.has('slack') ? 'all' : 'running' }),
    locks: createHostLocks(buckets.locks),
    ids: createIdAllocator(buckets.ids),
    epoch: await storeEpoch(buckets.ids),
    maxPayload: nc.info?.max_payload ?? 1024 * 1024,
    requests: createRequestLog(buckets.requests),
    logs: createSubtaskLogs(buckets.logs),
    enqueue: createWorkQueue(js),
    address: processAddress(),
    logger,
    now: () => new Date(),
    runner,
  };
}

/** `deps` with more ports, keeping its getters (a spread would copy the config of the moment). */
function withDeps<T extends object, E extends object>(deps: T, extra: E): T & E {
  return Object.defineProperties(
    {},
    {
      ...Object.getOwnPropertyDescriptors(deps),
      ...Object.getOwnPropertyDescriptors(extra),
    },
  ) as T & E;
}

/** The intakes of both request streams, the executor's pull loops and the sweeper. */
function startExecutorRole({ config, logger, js, deps, metrics }: Wiring): Running[] {
  const intake = (stream: string, durable: string, concurrency: number) =>
    startPullWorkers({
      js,
      stream,
      durable,
      concurrency,
      logger: logger.child({ component: 'intake' }),
      handle: createCommandIntake(withDeps(deps, { js })),
    });
  const running: Running[] = [
    startSweeper(deps, {
      everyMs: SWEEP_LEASES * config.executor.leaseSeconds * 1000,
      logger,
      keptMs: durationMs(config.retention.tasks),
    }),
    intake(STREAMS.cmd, CONSUMERS.intake, INTAKE_CONCURRENCY),
    intake(STREAMS.door, CONSUMERS.doorIntake, DOOR_INTAKE_CONCURRENCY),
    startPullWorkers({
      js,
      stream: STREAMS.work,
      durable: CONSUMERS.executor,
      concurrency: config.executor.concurrency,
      logger: logger.child({ component: 'executor' }),
      handle: createSubtaskHandler(withDeps(deps, { metrics })),
    }),
  ];
  logger.info({ concurrency: config.executor.concurrency, hosts: config.hosts.length }, 'executor started');
  return running;
}

/** Slack's door and its notifier, where Slack is on and the process has those roles. */
async function startSlackRoles(w: Wiring): Promise<{ door?: SlackFrontDoor; loops: Running[]; after: Running[] }> {
  const { config, logger, roles, js, buckets, deps } = w;
  const env = config.env;
  const slackOn = Boolean(env.SLACK_BOT_TOKEN && (env.SLACK_SIGNING_SECRET || env.SLACK_APP_TOKEN));
  if (!slackOn || !(roles.has('slack') || roles.has('notifier'))) return { loops: [], after: [] };
  // Loaded only where Slack is on: Bolt and the Web API client are ~37 MB an
  // executor process has no use for.
  const [{ WebClient }, { SLACK_RETRY, startSlackApp }, { createSlackRoles }] = await Promise.all([
    import('@slack/web-api'),
    import('./slack/slack-app.js'),
    import('./slack/slack-roles.js'),
  ]);
  const token = env.SLACK_BOT_TOKEN as string;
  const webOptions = { slackApiUrl: env.SLACK_API_URL, retryConfig: SLACK_RETRY };
  let door: SlackFrontDoor | undefined;
  if (roles.has('slack')) {
    door = await startSlackApp({
      ops: deps,
      publishDoorCommand: createDoorPublisher(js),
      roles: createSlackRoles({ config, client: new WebClient(token, webOptions), logger }),
      pending: createPendingBatches(buckets.slack),
      logger,
      signingSecret: env.SLACK_SIGNING_SECRET ?? '',
      botToken: token,
      ...(env.SLACK_APP_TOKEN ? { appToken: env.SLACK_APP_TOKEN } : {}),
      apiUrl: env.SLACK_API_URL,
    });
    logger.info({ mode: env.SLACK_APP_TOKEN ? 'socket' : 'http', command: config.slack.command }, 'Slack on');
  }
  // 429s surface at once and the event is put back for Retry-After: durable, in order.
  const notifier = roles.has('notifier')
    ? await startSlackNotifier(w, new WebClient(token, { ...webOptions, rejectRateLimitedCalls: true }))
    : undefined;
  return {
    ...(door ? { door } : {}),
    loops: notifier ? [notifier.loops] : [],
    after: notifier ? [notifier.after] : [],
  };
}

/** The notifier: ordered, once-per-record delivery of task events (notify/), into Slack. */
async function startSlackNotifier(w: Wiring, client: ChatApi): Promise<{ loops: Running; after: Running }> {
  const { logger, nc, js, buckets, deps } = w;
  const { createSlackNotifier } = await import('./slack/notifier.js');
  const log = logger.child({ component: 'notifier' });
  const delivery = createOrderedDelivery({
    notifier: createSlackNotifier({
      get config() {
        return w.source.current();
      },
      store: deps.store,
      // ocp_slack/task.<id>.posts: what a batch's thread got besides its events' replies.
      batchPosts: createBatchPostsStore(buckets.slack),
      logs: deps.logs,
      client,
      respond: postToResponseUrl,
      logger: log,
    }),
    // ocp_slack/task.<id>: where each task's thread is and what was posted.
    states: createDeliveryStates(buckets.slack),
    tasks: deps.store,
    firstEventPassed: createFirstEventCheck(await nc.jetstreamManager(), CONSUMERS.notifier),
    rejectedOrigin: async (requestId) => {
      const entry = await deps.requests.get(requestId);
      return entry?.state === 'rejected' ? entry.origin : undefined;
    },
    logger: log,
  });
  const workers = startPullWorkers({
    js,
    stream: STREAMS.events,
    durable: CONSUMERS.notifier,
    concurrency: NOTIFIER_CONCURRENCY,
    logger: log,
    handle: delivery.handle,
  });
  return { loops: workers, after: delivery };
}

/** Whether the NATS connection is up now (and reconnections counted in the metrics). */
function followConnection(nc: NatsConnection, metrics: Metrics): () => boolean {
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
  return () => connected;
}

/** The API's operations as the NATS micro service `ocp-api` (ocp.api.<name>). */
async function startNatsApi({ nc, deps, source, logger }: Wiring): Promise<FrontDoor> {
  const service = await startApiService(nc, deps, logger.child({ component: 'nats-api' }), deps.address);
  // Operations added to the file get their endpoints (those removed answer "unknown operation").
  const unsubscribe = source.subscribe(() => service.addNewEndpoints());
  return {
    name: 'nats-api',
    async stop() {
      unsubscribe();
      await service.stop().catch(() => undefined);
    },
  };
}

/** The one HTTP port: the API, the web page (/ui/), Slack's /slack/events, /healthz, /readyz, /metrics. */
async function startHttp(
  { config, source, logger, nc, js, deps, metrics, roles }: Wiring,
  slack: SlackFrontDoor | undefined,
  connected: () => boolean,
): Promise<FrontDoor & { port: number }> {
  // The page where the API is: it is the API's operations, seen and done from a browser.
  const web = roles.has('api')
    ? createWebDoor({
        config,
        deps,
        feed: createTaskEventFeed(js, await nc.jetstreamManager()),
        logger: logger.child({ component: 'web' }),
        adapterFailures: unavailableOf,
      })
    : undefined;
  const server = createHttpServer({
    config,
    deps,
    metrics,
    logger: logger.child({ component: 'http' }),
    // Which outside failures are outages (NATS away: 503), told by the adapter that knows them.
    adapterFailures: unavailableOf,
    extra: [
      ...(slack ? [(req: IncomingMessage, res: ServerResponse) => slack.handleHttp(req, res)] : []),
      ...(web ? [web.handle] : []),
    ],
    ...(web ? { web: { prefix: PAGE_API_PREFIX, principalOf: web.principalOf } } : {}),
    ready: () => {
      const reasons: string[] = [];
      if (nc.isClosed()) reasons.push('NATS connection closed');
      else if (!connected()) reasons.push('NATS disconnected');
      return { ok: reasons.length === 0, reasons, inventory: source.inventory() };
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.env.HTTP_PORT, config.env.HTTP_HOST, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ port }, 'HTTP listening');
  return { name: 'http', port, stop: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
