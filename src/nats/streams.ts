/**
 * Streams, consumers and KV buckets, created idempotently at start-up.
 *
 * | name            | holds                                                        |
 * |-----------------|--------------------------------------------------------------|
 * | OCP_CMD         | ocp.cmd.>: requests of operations (deduplicated)             |
 * | OCP_DOOR        | ocp.door.>: requests of the service's own front doors (Slack)|
 * |                 | — a stream of its own, so that publishers of ocp.cmd.>, who  |
 * |                 | share OCP_CMD's Nats-Msg-Id window, cannot claim their ids   |
 * | OCP_EVENTS      | ocp.events.>: request outcomes and task events (audit trail) |
 * | OCP_WORK        | ocp.work.>: one message per subtask run (work queue)         |
 * | ocp_tasks (KV)  | task.<id>: the task record, changed by compare-and-set       |
 * | ocp_requests    | req.<requestId>: which task a request made, or its rejection |
 * | ocp_host_locks  | host.<id>: the task holding the host; freed by it, or taken  |
 * |                 | over once that task has ended (no max age)                   |
 * | ocp_logs        | log.<taskId>.<subtaskId>: a subtask's output tail            |
 * | ocp_ids         | next: the id counter, handed out in blocks                   |
 * | ocp_slack       | task.<id>: the task's Slack thread and what was posted there |
 */
import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  DiscardPolicy,
  type JetStreamManager,
  type KV,
  type NatsConnection,
  nanos,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from 'nats';
import { JS_ERR, jetStreamErrCode } from './jetstream-errors.js';

export const STREAMS = { cmd: 'OCP_CMD', door: 'OCP_DOOR', events: 'OCP_EVENTS', work: 'OCP_WORK' } as const;
/** The KV buckets ensureTopology makes (each the stream `KV_<name>`). */
export const BUCKETS = ['ocp_tasks', 'ocp_requests', 'ocp_host_locks', 'ocp_logs', 'ocp_ids', 'ocp_slack'] as const;
export const CONSUMERS = {
  intake: 'intake',
  doorIntake: 'intake-door',
  executor: 'executor',
  notifier: 'notifier',
} as const;
export const SUBJECTS = {
  /** OCP's agent operations, as the first round named them: restart, stop, start. */
  cmd: (op: string) => `ocp.cmd.agent.${op}`,
  /** Any operation of the registry (SPEC §8). */
  opCmd: (name: string) => `ocp.cmd.op.${name}`,
  /** The Slack front door's requests: not for publishers (docs/SECURITY.md). */
  slackDoor: (name: string) => `ocp.door.slack.op.${name}`,
  requestEvent: (requestId: string) => `ocp.events.request.${requestId}`,
  taskEvent: (taskId: number) => `ocp.events.task.${taskId}`,
  work: 'ocp.work.subtask',
} as const;

export interface Buckets {
  tasks: KV;
  requests: KV;
  locks: KV;
  logs: KV;
  ids: KV;
  slack: KV;
}

export interface TopologyOptions {
  replicas: number;
  leaseSeconds: number;
  /** Ms kept: `tasks` for what belongs to a finished task, `events` for the command and audit streams. */
  retention: { tasksMs: number; eventsMs: number };
}

/** Messages deduplicated by Nats-Msg-Id within this window (ms). */
const DUPLICATE_WINDOW_MS = 10 * 60_000;

async function ensureStream(jsm: JetStreamManager, config: Partial<StreamConfig> & { name: string }): Promise<void> {
  try {
    await jsm.streams.info(config.name);
    await jsm.streams.update(config.name, config);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.streams.add(config);
  }
}

function isNotFound(err: unknown): boolean {
  const code = jetStreamErrCode(err);
  return code === JS_ERR.streamNotFound || code === JS_ERR.consumerNotFound;
}

export async function ensureTopology(nc: NatsConnection, opts: TopologyOptions): Promise<Buckets> {
  const jsm = await nc.jetstreamManager();
  const common = {
    num_replicas: opts.replicas,
    storage: StorageType.File,
    duplicate_window: nanos(DUPLICATE_WINDOW_MS),
    // A stream given a byte limit (by an operator, or one met by the server's
    // storage) refuses new messages rather than dropping old ones: nothing
    // goes before its retention, and a refused write answers 503 (SPEC §10).
    // The KV buckets discard new already (nats.js, on servers since 2.7.2).
    discard: DiscardPolicy.New,
  };
  // Every stream says how long it keeps what it holds (retention.events for the
  // requests, both doors', and the audit trail); work items leave when done, never by age: an
  // item of a running task must not vanish.
  const eventsAge = nanos(opts.retention.eventsMs);
  await ensureStream(jsm, {
    ...common,
    name: STREAMS.cmd,
    subjects: ['ocp.cmd.>'],
    retention: RetentionPolicy.Limits,
    max_age: eventsAge,
  });
  await ensureStream(jsm, {
    ...common,
    name: STREAMS.door,
    subjects: ['ocp.door.>'],
    retention: RetentionPolicy.Limits,
    max_age: eventsAge,
  });
  await ensureStream(jsm, {
    ...common,
    name: STREAMS.events,
    subjects: ['ocp.events.>'],
    retention: RetentionPolicy.Limits,
    max_age: eventsAge,
  });
  await ensureStream(jsm, {
    ...common,
    name: STREAMS.work,
    subjects: ['ocp.work.>'],
    retention: RetentionPolicy.Workqueue,
    max_age: 0,
  });

  // A message not acknowledged (nor marked working) within half the lease goes to
  // another executor, so takeover happens within the lease.
  const ackWait = nanos(Math.max(1000, (opts.leaseSeconds * 1000) / 2));
  // Replicated like their streams (said, not left to the server's default).
  await ensureConsumer(jsm, STREAMS.cmd, {
    num_replicas: opts.replicas,
    durable_name: CONSUMERS.intake,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: ackWait,
    max_ack_pending: 1000,
  });
  await ensureConsumer(jsm, STREAMS.door, {
    num_replicas: opts.replicas,
    durable_name: CONSUMERS.doorIntake,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: ackWait,
    max_ack_pending: 1000,
  });
  // The notifier starts with the events after its creation: a new deployment
  // does not replay an old audit trail into Slack.
  await ensureConsumer(jsm, STREAMS.events, {
    num_replicas: opts.replicas,
    durable_name: CONSUMERS.notifier,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.New,
    filter_subject: 'ocp.events.>',
    ack_wait: nanos(30_000),
    max_ack_pending: 1000,
  });
  await ensureConsumer(jsm, STREAMS.work, {
    num_replicas: opts.replicas,
    durable_name: CONSUMERS.executor,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: ackWait,
    max_ack_pending: 10_000,
  });

  const js = nc.jetstream();
  // nats.js applies the options only when it creates a bucket: an existing one
  // keeps its old replicas and max age unless told, so follow the configuration
  // (a deployment moving from one server to a cluster gets replicated buckets).
  const kv = async (name: string, extra: { ttl?: number } = {}): Promise<KV> => {
    const bucket = await js.views.kv(name, { replicas: opts.replicas, history: 1, ...extra });
    const stream = `KV_${name}`;
    const { config } = await jsm.streams.info(stream);
    const maxAge = extra.ttl === undefined ? config.max_age : nanos(extra.ttl);
    if (config.num_replicas !== opts.replicas || config.max_age !== maxAge) {
      await jsm.streams.update(stream, { ...config, num_replicas: opts.replicas, max_age: maxAge });
    }
    return bucket;
  };
  // No max age: a lock is judged by its holder's task, never by its age alone
  // (an older deployment's bucket with a max age is set to none); the id counter
  // must never go back; a running task's record is never dropped (finished ones
  // are removed after retention.tasks by the sweeper: see tasks/retention.ts).
  // What belongs to a finished task elsewhere ages out with retention.tasks.
  const kept = opts.retention.tasksMs;
  return {
    tasks: await kv('ocp_tasks', { ttl: 0 }),
    requests: await kv('ocp_requests', { ttl: kept }),
    locks: await kv('ocp_host_locks', { ttl: 0 }),
    logs: await kv('ocp_logs', { ttl: kept }),
    ids: await kv('ocp_ids', { ttl: 0 }),
    slack: await kv('ocp_slack', { ttl: kept }),
  };
}

async function ensureConsumer(
  jsm: JetStreamManager,
  stream: string,
  config: Partial<ConsumerConfig> & { durable_name: string },
): Promise<void> {
  try {
    await jsm.consumers.info(stream, config.durable_name);
    await jsm.consumers.update(stream, config.durable_name, config);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.consumers.add(stream, config);
  }
}
