/**
 * Model-based concurrency test (issue 10, "Widen the proof"): fast-check commands against the
 * real stack — nats-server, sshd serving simulated hosts whose agent takes a little while per
 * call, the service with every role in this process, Slack's Web API faked — driven through
 * every door at once: restart/stop/start over HTTP, the NATS micro service (ocp.api.*), NATS
 * commands (ocp.cmd.agent.*) and Slack slash commands; batch restarts over HTTP and NATS; retry,
 * subtask retry, skip, rollback and cancel over HTTP, NATS and Slack buttons (signed clicks).
 * Each command of a run is a group of such requests sent together, each request often sent
 * two or three times at once through different doors, on hosts, tasks and subtasks picked
 * among those that exist (mostly ones in a state where the operation applies, sometimes any),
 * with faults switched on hosts between groups so that tasks fail, get retried, skipped,
 * rolled back and canceled while others run.
 *
 * After each run the test waits (bounded) until everything has settled, then judges from what
 * a user or operator can see (test/helpers/model-invariants.ts): the run files every step leaves
 * on its host, the simulated agent's call log, the audit trail on OCP_EVENTS, the tasks as the
 * API answers them, the host-lock bucket and every answer given:
 *   1. never two tasks' steps on one host at once (nor a task's step while another task's
 *      chain holds the host, by that task's events);
 *   2. never a lock held by an ended task;
 *   3. no task RUNNING forever (all end within SETTLE_BOUND_SECONDS);
 *   4. no step launched by an error answer (and no skip, cancel, rollback or run again whose
 *      every request was refused).
 * "Pause" (SPEC §10) is not in the product yet, so it is not among the commands.
 *
 * One stack serves every run; between runs it is not restarted, only waited for to settle.
 * Runs are not shrunk (each costs seconds and timing is not replayable); a failure reports
 * fast-check's seed and path, the violations and the run's requests with their answers.
 * FUZZ_SCALE multiplies the runs; FUZZ_SEED (and FUZZ_PATH) replay a failure's choices, not its timing.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import fc from 'fast-check';
import type { NatsConnection } from 'nats';
import type { RequestEvent } from '../../src/contracts/events.js';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import type { TaskRecord } from '../../src/core/task-record.js';
import { ACTIONS } from '../../src/slack/render-blocks.js';
import { requestIdOf } from '../../src/slack/slack-app.js';
import type { FakeSlack } from '../helpers/fake-slack.js';
import { apiClient } from '../helpers/http.js';
import {
  type ActionKind,
  type AgentCall,
  type AnswerRecord,
  type Door,
  describeAnswer,
  type EventLite,
  judgeRun,
  parseCalls,
  parseRunKey,
  type RunFile,
  type TaskView,
} from '../helpers/model-invariants.js';
import { readEventStream } from '../helpers/requests.js';
import { type AgentCommand, clearFaults, type FaultKind, setFault, setStepDurations } from '../helpers/sim-agent.js';
import { blockActionPayload, interactionBody, postToSlackEndpoint } from '../helpers/slack-sign.js';
import { SLACK_CHANNEL, SLACK_USERS, startFakeSlackAndStack } from '../helpers/slack-stack.js';
import { SIGNING_SECRET, slackUser } from '../helpers/slack-user.js';
import { readTask, type Stack } from '../helpers/stack.js';

// ---------------------------------------------------------------- settings

const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
/** With FUZZ_SEED, FUZZ_PATH (fast-check's `path`) starts at the failing run's choices. */
const PATH = process.env.FUZZ_PATH;
/** Runs (× FUZZ_SCALE); each is a few seconds of requests, then the wait for it to settle. */
const RUNS = 8;
/** Commands per run after its opening group (a command is a group of requests sent together, or a wait). */
const MAX_COMMANDS = 8;
/** MODEL_VERBOSE=1 prints every run's requests and answers, not only a failing one's. */
const VERBOSE = process.env.MODEL_VERBOSE === '1';
const HOSTS = 5;
/** How long every task of a run gets to end after its last request (s): far above any task's own time. */
const SETTLE_BOUND_SECONDS = 60;
/** What one call of the simulated agent takes, in all (ms): steps overlap what the test sends. */
const DURATIONS = { status: 100, restart: 250, stop: 400, start: 400 } as const;
/** Hard bound for the whole property (ms): a run that hangs is a finding, not a reason to hang the suite. */
const PROPERTY_LIMIT_MS = Math.round(240_000 * Math.max(1, SCALE));

const MANAGER = SLACK_USERS.manager;
const CHANNEL = SLACK_CHANNEL;
const CREATOR = 'model';

/** Faults a host can be given (sim-agent.ts): what they do to the default runbooks. */
const FAULTS = {
  none: [],
  /** "Restart pos proxy" fails: restarts and batches FAILED at their second step. */
  'fail-restart': [['restart', 'fail']],
  /** "Start all" fails: restarts, starts and rollbacks FAILED there, the agent left stopped. */
  'fail-start': [['start', 'fail']],
  /** "Stop all" takes 2 s more: something to cancel, and long-held hosts. */
  'slow-stop': [['stop', 'slow', 2]],
} as const satisfies Record<string, ReadonlyArray<readonly [AgentCommand, FaultKind, number?]>>;
type FaultName = keyof typeof FAULTS;

// ---------------------------------------------------------------- the commands

type TaskRef = { pick: number; fit: boolean; same: boolean };
/** A host by index; a host of the task last operated on; a host of a task that runs now. */
type HostRef = { index: number } | { ofTarget: number } | { ofRunning: number };
type Action =
  /** `delay`: ms after the group's start (0: with the others), e.g. just after an operation's answers. */
  | { kind: 'create'; op: 'restart' | 'stop' | 'start'; host: HostRef; doors: Door[]; delay: number }
  | { kind: 'batch'; hosts: number[]; doors: Door[] }
  | { kind: 'retry' | 'rollback' | 'retryOne' | 'skip' | 'cancel'; task: TaskRef; doors: Door[] }
  | { kind: 'fault'; host: number; fault: FaultName };
/** A pause: some ms, or until a task of the run changes (a subtask fails, a task ends) or a subtask runs. */
type Wait = { ms: number } | { until: 'changes' | 'runs' };

function showAction(a: Action): string {
  switch (a.kind) {
    case 'create':
      return `${a.op} ${'index' in a.host ? `host#${a.host.index}` : 'ofTarget' in a.host ? `host-of-target#${a.host.ofTarget}` : `host-of-running#${a.host.ofRunning}`} [${a.doors}]${a.delay ? ` after ${a.delay} ms` : ''}`;
    case 'batch':
      return `batch hosts#${a.hosts.join(',')} [${a.doors}]`;
    case 'fault':
      return `fault host#${a.host} ${a.fault}`;
    default:
      return `${a.kind} ${a.task.same ? 'same' : `${a.task.fit ? 'fit' : 'any'}#${a.task.pick}`} [${a.doors}]`;
  }
}

interface Model {
  groups: number;
}

/** A group of requests sent together, then a pause before the next group. */
class GroupCommand implements fc.AsyncCommand<Model, Driver> {
  constructor(
    readonly actions: Action[],
    readonly then: Wait,
  ) {}
  check(): boolean {
    return true;
  }
  async run(m: Model, d: Driver): Promise<void> {
    m.groups += 1;
    await d.group(this.actions);
    await d.waitFor(this.then);
  }
  toString(): string {
    const then = 'ms' in this.then ? `${this.then.ms} ms` : `until a task ${this.then.until}`;
    return `group(${this.actions.map(showAction).join('; ')}) then ${then}`;
  }
}

const faultArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant<FaultName>('none') },
  { weight: 3, arbitrary: fc.constant<FaultName>('fail-restart') },
  { weight: 1, arbitrary: fc.constant<FaultName>('fail-start') },
  { weight: 2, arbitrary: fc.constant<FaultName>('slow-stop') },
);
/** One to three copies of a request, each through its own door (the same door twice is allowed). */
const doorsOf = (...doors: Door[]) =>
  fc.oneof(
    { weight: 2, arbitrary: fc.array(fc.constantFrom(...doors), { minLength: 1, maxLength: 1 }) },
    { weight: 3, arbitrary: fc.array(fc.constantFrom(...doors), { minLength: 2, maxLength: 3 }) },
  );
const taskRefArb: fc.Arbitrary<TaskRef> = fc.record({
  pick: fc.nat(999),
  fit: fc.oneof({ weight: 5, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  same: fc.oneof({ weight: 2, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
});
/** Most creates aim at a host that should be taken: the last target's, or a running task's. */
const hostRefArb: fc.Arbitrary<HostRef> = fc.oneof(
  fc.record({ index: fc.nat(HOSTS - 1) }),
  fc.record({ ofTarget: fc.nat(9) }),
  fc.record({ ofRunning: fc.nat(99) }),
);
const ALL_DOORS: Door[] = ['http', 'nats-api', 'nats-cmd', 'slack'];
const API_DOORS: Door[] = ['http', 'nats-api'];
const BUTTON_DOORS: Door[] = ['http', 'nats-api', 'slack'];
const batchOf = (maxHosts: number) =>
  fc.record({
    kind: fc.constant('batch' as const),
    hosts: fc.uniqueArray(fc.nat(HOSTS - 1), { minLength: 2, maxLength: maxHosts }),
    doors: doorsOf(...API_DOORS),
  });
/** A batch later in a run: two or three hosts, so that it finds them free now and then. */
const batchArb = batchOf(3);
const taskOp = (kind: 'retry' | 'rollback' | 'retryOne' | 'skip' | 'cancel', doors: Door[]) =>
  fc.record({ kind: fc.constant(kind), task: taskRefArb, doors: doorsOf(...doors) });
const actionArb: fc.Arbitrary<Action> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('create' as const),
      op: fc.constantFrom('restart' as const, 'restart' as const, 'stop' as const, 'start' as const),
      host: hostRefArb,
      doors: doorsOf(...ALL_DOORS),
      delay: fc.oneof(fc.constant(0), fc.integer({ min: 20, max: 800 })),
    }),
  },
  { weight: 2, arbitrary: batchArb },
  { weight: 3, arbitrary: taskOp('retry', BUTTON_DOORS) },
  { weight: 1, arbitrary: taskOp('retryOne', API_DOORS) },
  { weight: 3, arbitrary: taskOp('skip', BUTTON_DOORS) },
  { weight: 1, arbitrary: taskOp('rollback', BUTTON_DOORS) },
  { weight: 2, arbitrary: taskOp('cancel', BUTTON_DOORS) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('fault' as const), host: fc.nat(HOSTS - 1), fault: faultArb }),
  },
);
const waitArb: fc.Arbitrary<Wait> = fc.oneof(
  { weight: 3, arbitrary: fc.integer({ min: 50, max: 1200 }).map((ms) => ({ ms })) },
  { weight: 2, arbitrary: fc.constant({ until: 'changes' as const }) },
  { weight: 1, arbitrary: fc.constant({ until: 'runs' as const }) },
);
const groupArb = fc
  .tuple(fc.array(actionArb, { minLength: 1, maxLength: 4 }), waitArb)
  .map(([a, w]) => new GroupCommand(a, w));
const createArb = fc.record({
  kind: fc.constant('create' as const),
  op: fc.constantFrom('restart' as const, 'restart' as const, 'stop' as const, 'start' as const),
  host: fc.record({ index: fc.nat(HOSTS - 1) }),
  doors: doorsOf(...ALL_DOORS),
  delay: fc.constant(0),
});
const runArb = fc.record({
  faults: fc.array(faultArb, { minLength: HOSTS, maxLength: HOSTS }),
  /** A first group of creates, so that a run has tasks to operate on from the start. */
  opening: fc
    .tuple(
      fc.oneof(
        { weight: 3, arbitrary: fc.array(createArb, { minLength: 2, maxLength: HOSTS }) },
        {
          weight: 2,
          arbitrary: fc
            .tuple(batchOf(HOSTS), fc.array(createArb, { maxLength: 2 }))
            .map(([b, creates]) => [b as Action, ...creates]),
        },
      ),
      waitArb,
    )
    .map(([a, w]) => new GroupCommand(a, w)),
  commands: fc.commands([groupArb], { maxCommands: MAX_COMMANDS, size: 'max' }),
});

// ---------------------------------------------------------------- the driver

interface Envelope {
  successful: boolean;
  data?: { id?: number };
  error?: { code: number; message: string };
}

interface Target {
  taskId: number;
  subtaskId?: number;
  hostIds: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const encoder = new TextEncoder();

/** Hosts whose chains a task runs on (from its stored steps). */
function hostsOfRecord(r: TaskRecord): number[] {
  return [...new Set(Object.values(r.steps).map((s) => s.hostId))];
}

interface World {
  stack: Stack;
  fake: FakeSlack;
  port: number;
  eventsUrl: string;
  /** Request events seen on ocp.events.request.>, by request id. */
  requestEvents: Map<string, RequestEvent[]>;
}

/** One fast-check run: sends the requests, records the answers, then gathers the evidence. */
class Driver {
  readonly answers: Array<AnswerRecord & { requestId?: string; responseUrl?: string; pending?: 'event' | 'click' }> =
    [];
  readonly timeline: string[] = [];
  private lastTarget: Target | undefined;
  private readonly api: ReturnType<typeof apiClient>;
  private readonly slack: ReturnType<typeof slackUser>;

  constructor(
    private readonly w: World,
    readonly startedAt: number,
    readonly earlier: ReadonlySet<number>,
    private readonly runKeysBefore: ReadonlyMap<number, ReadonlySet<string>>,
    readonly eventsFrom: number,
  ) {
    this.api = apiClient(w.port);
    this.slack = slackUser(w.fake, w.eventsUrl);
  }

  private get nc(): NatsConnection {
    return this.w.stack.nc;
  }

  private note(line: string): void {
    this.timeline.push(`+${String(Date.now() - this.startedAt).padStart(5)} ms ${line}`);
  }

  /** This run's tasks as stored now (to pick targets among those that exist). */
  async tasksNow(): Promise<TaskRecord[]> {
    const kv = await this.w.stack.js.views.kv('ocp_tasks');
    const ids: number[] = [];
    for await (const k of await kv.keys('task.*')) {
      const id = Number(k.slice('task.'.length));
      if (!this.earlier.has(id)) ids.push(id);
    }
    // As the store reads them: a batch's head and chains assembled.
    const records = await Promise.all(ids.map((id) => readTask(this.w.stack.nc, id)));
    return records.filter((r): r is TaskRecord => r !== undefined).sort((a, b) => a.task.id - b.task.id);
  }

  async waitFor(w: Wait): Promise<void> {
    if ('ms' in w) {
      await sleep(w.ms);
      return;
    }
    // bounded: the condition may never come (nothing left running)
    const state = (tasks: TaskRecord[]) =>
      tasks.map((r) => `${r.task.id}:${r.task.status}:${r.task.subtasks.filter((s) => s.status === 'FAILED').length}`);
    const first = state(await this.tasksNow()).join(' ');
    const deadline = Date.now() + 6000;
    while (Date.now() < deadline) {
      await sleep(100);
      const tasks = await this.tasksNow();
      const hit =
        w.until === 'changes'
          ? state(tasks).join(' ') !== first
          : tasks.some((r) => r.task.subtasks.some((s) => s.status === 'RUNNING'));
      if (hit) return;
    }
  }

  /** Resolve a task operation's target among the tasks that exist; undefined when there are none. */
  private target(kind: ActionKind, ref: TaskRef, tasks: TaskRecord[]): Target | undefined {
    const needsSubtask = kind === 'retryOne' || kind === 'skip' || kind === 'cancel';
    const wanted = kind === 'cancel' ? 'RUNNING' : 'FAILED';
    if (ref.same && this.lastTarget) {
      const last = this.lastTarget;
      if (!needsSubtask || last.subtaskId !== undefined) return last;
      const rec = tasks.find((r) => r.task.id === last.taskId);
      const s =
        rec?.task.subtasks.find((x) => x.status === wanted) ?? rec?.task.subtasks[ref.pick % rec.task.subtasks.length];
      return s ? { ...last, subtaskId: s.id } : last;
    }
    if (tasks.length === 0) return undefined;
    if (!needsSubtask) {
      const fit = tasks.filter((r) => r.task.status === 'FAILED');
      const pool = ref.fit && fit.length > 0 ? fit : tasks;
      const r = pool[ref.pick % pool.length] as TaskRecord;
      return { taskId: r.task.id, hostIds: hostsOfRecord(r) };
    }
    const pairs = tasks.flatMap((r) => r.task.subtasks.map((s) => ({ r, s })));
    const fit = pairs.filter((p) => p.s.status === wanted);
    const pool = ref.fit && fit.length > 0 ? fit : pairs;
    const p = pool[ref.pick % pool.length] as (typeof pool)[number];
    return { taskId: p.r.task.id, subtaskId: p.s.id, hostIds: hostsOfRecord(p.r) };
  }

  /** Send a group's requests all at once. */
  async group(actions: Action[]): Promise<void> {
    const tasks = await this.tasksNow();
    const hosts = this.w.stack.sshd.hosts;
    const sends: Array<() => Promise<void>> = [];
    // task operations first, so a create in the same group may aim at their hosts
    const ordered = [...actions.filter((a) => 'task' in a), ...actions.filter((a) => !('task' in a))];
    for (const a of ordered) {
      if (a.kind === 'fault') {
        const host = hosts[a.host] as (typeof hosts)[number];
        applyFault(host.agentHome, a.fault);
        this.note(`fault ${a.fault} on host ${host.id}`);
        continue;
      }
      if (a.kind === 'create') {
        const running = tasks.filter((r) => r.task.status === 'RUNNING').flatMap(hostsOfRecord);
        const hostId =
          'index' in a.host
            ? (hosts[a.host.index]?.id as number)
            : 'ofTarget' in a.host
              ? (this.lastTarget?.hostIds[a.host.ofTarget % this.lastTarget.hostIds.length] ??
                (hosts[a.host.ofTarget % hosts.length]?.id as number))
              : (running[a.host.ofRunning % Math.max(1, running.length)] ??
                (hosts[a.host.ofRunning % hosts.length]?.id as number));
        for (const door of a.doors) {
          sends.push(async () => {
            if (a.delay > 0) await sleep(a.delay);
            await this.create(door, a.op, hostId);
          });
        }
        continue;
      }
      if (a.kind === 'batch') {
        const hostIds = a.hosts.map((i) => hosts[i]?.id as number);
        for (const door of a.doors) sends.push(() => this.batch(door, hostIds));
        continue;
      }
      const target = this.target(a.kind, a.task, tasks);
      if (!target) {
        this.note(`${a.kind}: no task yet`);
        continue;
      }
      this.lastTarget = target;
      for (const door of a.doors) sends.push(() => this.operate(door, a.kind, target));
    }
    await Promise.all(sends.map((s) => s()));
    this.resolveLateAnswers(false);
  }

  private record(
    a: Omit<AnswerRecord, 'n'> & { requestId?: string; responseUrl?: string; pending?: 'event' | 'click' },
  ) {
    const rec = { n: this.answers.length + 1, ...a };
    this.answers.push(rec);
    return rec;
  }

  private finish(rec: AnswerRecord, outcome: AnswerRecord['outcome'], extra: Partial<AnswerRecord> = {}): void {
    Object.assign(rec, { outcome }, extra);
    this.note(describeAnswer(rec));
  }

  /** An envelope from HTTP or the NATS service, into an outcome. */
  private fromEnvelope(rec: AnswerRecord, status: number, body: Envelope, creates: boolean): void {
    if (body.successful && status >= 200 && status < 300) {
      this.finish(rec, 'ok', creates && typeof body.data?.id === 'number' ? { createdTaskId: body.data.id } : {});
    } else {
      this.finish(rec, 'error', {
        ...(body.error ? { code: body.error.code, detail: body.error.message } : { detail: `HTTP ${status}` }),
      });
    }
  }

  private async natsApi(name: string, payload: unknown): Promise<Envelope> {
    const m = await this.nc.request(`ocp.api.${name}`, encoder.encode(JSON.stringify(payload)), { timeout: 30_000 });
    return m.json<Envelope>();
  }

  private async create(door: Door, op: 'restart' | 'stop' | 'start', hostId: number): Promise<void> {
    const rec = this.record({ door, action: 'create', op, hostIds: [hostId], outcome: 'unknown', sentAt: Date.now() });
    try {
      if (door === 'http') {
        const prefix = Math.random() < 0.5 ? '' : '/api/v2';
        const a = await this.api<{ id: number }>('POST', `${prefix}/compute/hosts/${hostId}/agent/${op}`);
        this.fromEnvelope(rec, a.status, a.body as Envelope, true);
      } else if (door === 'nats-api') {
        this.fromEnvelope(rec, 200, await this.natsApi(`agent.${op}`, { hostId, creator: CREATOR }), true);
      } else if (door === 'nats-cmd') {
        const requestId = `model-${randomUUID()}`;
        Object.assign(rec, { requestId, pending: 'event' });
        const payload = { hostId, creator: CREATOR, requestId, reason: 'model test' };
        await this.w.stack.js.publish(`ocp.cmd.agent.${op}`, encoder.encode(JSON.stringify(payload)), {
          msgID: requestId,
        });
        this.note(`${describeAnswer(rec)} (published ${requestId})`);
      } else {
        const triggerId = `${Date.now()}.${randomUUID().slice(0, 8)}`;
        const res = await this.slack.command(`${op} ${hostId} model test`, {
          user: MANAGER,
          channel: CHANNEL,
          triggerId,
        });
        Object.assign(rec, { requestId: requestIdOf(triggerId), responseUrl: res.responseUrl, pending: 'event' });
        if (res.status !== 200) this.finish(rec, 'error', { detail: `HTTP ${res.status}`, code: res.status });
        else this.note(`${describeAnswer(rec)} (acknowledged, ${requestIdOf(triggerId)})`);
      }
    } catch (err) {
      this.finish(rec, 'unknown', { detail: (err as Error).message });
    }
  }

  private async batch(door: Door, hostIds: number[]): Promise<void> {
    const rec = this.record({ door, action: 'batch', hostIds, outcome: 'unknown', sentAt: Date.now() });
    try {
      if (door === 'http') {
        const a = await this.api('POST', '/compute/hosts/batchRestartAgents', { body: { hostIds } });
        this.fromEnvelope(rec, a.status, a.body as Envelope, true);
      } else {
        this.fromEnvelope(rec, 200, await this.natsApi('agent.batchRestart', { hostIds, creator: CREATOR }), true);
      }
    } catch (err) {
      this.finish(rec, 'unknown', { detail: (err as Error).message });
    }
  }

  private async operate(door: Door, kind: ActionKind, t: Target): Promise<void> {
    const rec = this.record({
      door,
      action: kind,
      taskId: t.taskId,
      ...(t.subtaskId !== undefined && kind !== 'retry' && kind !== 'rollback' ? { subtaskId: t.subtaskId } : {}),
      outcome: 'unknown',
      sentAt: Date.now(),
    });
    const s = rec.subtaskId;
    try {
      if (door === 'http') {
        const base = `/api/v2/tasks/instances/${t.taskId}`;
        const path =
          kind === 'retry'
            ? `${base}/retry`
            : kind === 'rollback'
              ? `${base}/rollback`
              : `${base}/subtasks/${s}/${kind === 'retryOne' ? 'retry' : kind}`;
        const a = await this.api('POST', path);
        this.fromEnvelope(rec, a.status, a.body as Envelope, false);
      } else if (door === 'nats-api') {
        const name =
          kind === 'retry'
            ? 'task.retry'
            : kind === 'rollback'
              ? 'task.rollback'
              : `subtask.${kind === 'retryOne' ? 'retry' : kind}`;
        const payload =
          kind === 'retry' || kind === 'rollback' ? { taskId: t.taskId } : { taskId: t.taskId, subtaskId: s };
        this.fromEnvelope(rec, 200, await this.natsApi(name, payload), false);
      } else {
        const actionId =
          kind === 'retry'
            ? ACTIONS.retry
            : kind === 'rollback'
              ? ACTIONS.rollback
              : kind === 'skip'
                ? ACTIONS.skip
                : ACTIONS.cancel;
        const responseUrl = this.w.fake.responseUrl();
        const value = JSON.stringify(s === undefined ? { taskId: t.taskId } : { taskId: t.taskId, subtaskId: s });
        const payload = blockActionPayload({
          user_id: MANAGER,
          channel_id: CHANNEL,
          action_id: actionId,
          value,
          response_url: responseUrl,
          trigger_id: `${Date.now()}.${randomUUID().slice(0, 8)}`,
          message_ts: '1700000000.000100',
        });
        const res = await postToSlackEndpoint(this.w.eventsUrl, SIGNING_SECRET, interactionBody(payload));
        Object.assign(rec, { responseUrl, pending: 'click' });
        if (res.status !== 200) this.finish(rec, 'error', { detail: `HTTP ${res.status}`, code: res.status });
        else this.note(`${describeAnswer(rec)} (click acknowledged)`);
      }
    } catch (err) {
      this.finish(rec, 'unknown', { detail: (err as Error).message });
    }
  }

  /**
   * Answers that come later: a NATS command's or Slack command's request event (or, for a
   * Slack command refused before it was published, the ephemeral answer on its response_url);
   * a click is refused when a warning came to its response_url, else it was taken.
   */
  resolveLateAnswers(final: boolean): number {
    let open = 0;
    for (const rec of this.answers) {
      if (!rec.pending) continue;
      if (rec.pending === 'event') {
        const ev = rec.requestId ? this.w.requestEvents.get(rec.requestId)?.[0] : undefined;
        const response = rec.responseUrl && this.w.fake.responses.find((r) => r.url === rec.responseUrl);
        if (ev?.type === 'accepted') this.finish(rec, 'ok', { createdTaskId: ev.taskId });
        else if (ev?.type === 'rejected') this.finish(rec, 'error', { code: ev.error.code, detail: ev.error.message });
        else if (response) this.finish(rec, 'error', { detail: String(response.body.text ?? '').slice(0, 120) });
        else if (!final) {
          open += 1;
          continue;
        }
      } else if (final) {
        const response = this.w.fake.responses.find((r) => r.url === rec.responseUrl);
        if (response) this.finish(rec, 'error', { detail: String(response.body.text ?? '').slice(0, 120) });
        else this.finish(rec, 'ok', { detail: 'no warning came back' });
      } else {
        continue;
      }
      delete rec.pending;
    }
    return open;
  }

  /**
   * Wait until the run has settled: every late answer in, every task ended, the work queue
   * and the command intake empty (a work item is acknowledged only after its follow-up —
   * queueing, freeing the host — is done). Bounded; returns the tasks still RUNNING.
   */
  async settle(): Promise<number[]> {
    const jsm = await this.nc.jetstreamManager();
    const deadline = Date.now() + SETTLE_BOUND_SECONDS * 1000;
    let running: number[] = [];
    for (;;) {
      const open = this.resolveLateAnswers(false);
      running = (await this.tasksNow()).filter((r) => r.task.status === 'RUNNING').map((r) => r.task.id);
      const work = (await jsm.streams.info('OCP_WORK')).state.messages;
      const intake = await jsm.consumers.info('OCP_CMD', 'intake');
      const busy = work + intake.num_pending + intake.num_ack_pending;
      if (open === 0 && running.length === 0 && busy === 0) break;
      if (Date.now() > deadline) break;
      await sleep(200);
    }
    // let the last Slack clicks' warnings, if any, arrive (they follow the click's work at once)
    await sleep(300);
    this.resolveLateAnswers(true);
    return running;
  }

  async evidence(stillRunning: number[]) {
    const { stack } = this.w;
    const runs: RunFile[] = [];
    const calls: AgentCall[] = [];
    for (const h of stack.sshd.hosts) {
      const dir = join(h.agentHome, '.ocp-chatops', 'runs');
      const before = this.runKeysBefore.get(h.id) ?? new Set<string>();
      if (existsSync(dir)) {
        for (const f of readdirSync(dir)) {
          if (!f.endsWith('.claim')) continue;
          const key = f.slice(0, -'.claim'.length);
          const parsed = parseRunKey(key);
          if (!parsed || before.has(key)) continue;
          const p = (ext: string) => join(dir, `${key}.${ext}`);
          const text = (ext: string) => (existsSync(p(ext)) ? readFileSync(p(ext), 'utf8').trim() : undefined);
          const sid = text('pid');
          const why = text('why');
          runs.push({
            hostId: h.id,
            key,
            ...parsed,
            ...(sid ? { sid: Number(sid) } : {}),
            from: statSync(p('claim')).mtimeMs,
            to: existsSync(p('rc')) ? statSync(p('rc')).mtimeMs : Number.POSITIVE_INFINITY,
            ...(why !== undefined ? { why } : {}),
          });
        }
      }
      const log = join(h.agentHome, 'calls.log');
      if (existsSync(log))
        calls.push(...parseCalls(h.id, readFileSync(log, 'utf8')).filter((c) => c.begin >= this.startedAt));
    }

    // the tasks, as the API answers them
    const ids = (await this.tasksNow()).map((r) => r.task.id);
    const get = async (id: number): Promise<OcpTask | undefined> => {
      const a = await this.api<OcpTask>('GET', `/api/v2/tasks/instances/${id}`);
      return a.status === 200 ? a.body.data : undefined;
    };
    const tasks: TaskView[] = [];
    for (const id of ids) {
      const task = await get(id);
      if (!task) continue;
      tasks.push({
        id: task.id,
        status: task.status,
        operation: task.operation,
        hostId: task.hostId,
        parallel: task.context.parallel,
        hostIds: (task.context.listMap.host_ids ?? []).map(Number),
        subtasks: task.subtasks.map((s) => ({
          id: s.id,
          parallelIdx: s.parallelIdx,
          status: s.status,
          operation: s.operation,
          runTime: s.runTime,
          name: s.name,
        })),
      });
    }

    // the audit trail
    const events: Record<string, EventLite[]> = {};
    await readEventStream(
      this.nc,
      (m) => {
        const ev = m.json<{
          taskId: number;
          seq: number;
          type: string;
          status: string;
          subtaskId?: number;
          at: string;
        }>();
        const list = events[String(ev.taskId)] ?? [];
        list.push({
          taskId: ev.taskId,
          seq: ev.seq,
          type: ev.type,
          status: ev.status,
          ...(ev.subtaskId !== undefined ? { subtaskId: ev.subtaskId } : {}),
          at: Date.parse(ev.at),
        });
        events[String(ev.taskId)] = list;
      },
      { filter: 'ocp.events.task.>', fromSeq: this.eventsFrom },
    );

    // the host locks, and their holders as the API answers them
    const locksKv = await stack.js.views.kv('ocp_host_locks');
    const locks: Array<{ hostId: number; holder: number }> = [];
    for await (const k of await locksKv.keys()) {
      const e = await locksKv.get(k);
      if (e?.operation !== 'PUT') continue;
      locks.push({ hostId: Number(k.replace('host.', '')), holder: (e.json() as { taskId: number }).taskId });
    }
    const holderStatus: Record<string, string | undefined> = {};
    for (const { holder } of locks) holderStatus[String(holder)] = (await get(holder))?.status;

    return {
      runs,
      calls,
      events,
      tasks,
      earlierTaskIds: this.earlier,
      locks,
      holderStatus,
      answers: this.answers,
      stillRunning,
      settleBoundSeconds: SETTLE_BOUND_SECONDS,
    };
  }
}

function applyFault(agentHome: string, fault: FaultName): void {
  clearFaults(agentHome);
  for (const [cmd, kind, seconds] of FAULTS[fault] as ReadonlyArray<readonly [AgentCommand, FaultKind, number?]>) {
    setFault(agentHome, cmd, kind, seconds);
  }
}

// ---------------------------------------------------------------- the property

describe('model-based concurrency: random interleavings through every door keep the SPEC §7 promises', () => {
  let world: World;
  const earlier = new Set<number>();
  const stats = { runs: 0, tasks: 0, steps: 0, answers: new Map<string, number>() };

  before(async () => {
    process.env.TEST_LOG_LEVEL ??= 'error';
    const { fake, stack } = await startFakeSlackAndStack({
      hosts: HOSTS,
      managers: [MANAGER],
      viewers: [],
      defaultChannel: CHANNEL,
      options: { stepTimeout: 15, maxParallel: 3 },
    });
    const svc = await stack.startService();
    const port = svc.httpPort as number;
    for (const h of stack.sshd.hosts) setStepDurations(h.agentHome, DURATIONS);
    const requestEvents = new Map<string, RequestEvent[]>();
    const sub = stack.nc.subscribe('ocp.events.request.>');
    void (async () => {
      for await (const m of sub) {
        const ev = m.json<RequestEvent>();
        requestEvents.set(ev.requestId, [...(requestEvents.get(ev.requestId) ?? []), ev]);
      }
    })();
    world = { stack, fake, port, eventsUrl: `http://127.0.0.1:${port}/slack/events`, requestEvents };
  });

  after(async () => {
    await world?.stack.stop();
    await world?.fake.stop();
  });

  async function beginRun(faults: FaultName[]): Promise<Driver> {
    const { stack } = world;
    for (const [i, h] of stack.sshd.hosts.entries()) applyFault(h.agentHome, faults[i] ?? 'none');
    const runKeysBefore = new Map<number, Set<string>>();
    for (const h of stack.sshd.hosts) {
      const dir = join(h.agentHome, '.ocp-chatops', 'runs');
      runKeysBefore.set(
        h.id,
        new Set(
          existsSync(dir)
            ? readdirSync(dir)
                .filter((f) => f.endsWith('.claim'))
                .map((f) => f.slice(0, -6))
            : [],
        ),
      );
    }
    const jsm = await stack.nc.jetstreamManager();
    const eventsFrom = (await jsm.streams.info('OCP_EVENTS')).state.last_seq + 1;
    return new Driver(world, Date.now(), new Set(earlier), runKeysBefore, eventsFrom);
  }

  it('never two tasks on a host, no lock of an ended task, none RUNNING forever, nothing run on an error answer', async (t: TestContext) => {
    const startedAt = Date.now();
    const property = fc.asyncProperty(runArb, async ({ faults, opening, commands }) => {
      const driver = await beginRun(faults);
      driver.timeline.push(`faults: ${faults.map((f, i) => `host#${i}=${f}`).join(' ')}`);
      let thrown: unknown;
      try {
        await opening.run({ groups: 0 }, driver);
        await fc.asyncModelRun(() => ({ model: { groups: 1 }, real: driver }), commands);
      } catch (err) {
        thrown = err; // judged below all the same, after the run has settled
      }
      const stillRunning = await driver.settle();
      const evidence = await driver.evidence(stillRunning);
      for (const id of evidence.tasks.map((x) => x.id)) earlier.add(id);
      stats.runs += 1;
      stats.tasks += evidence.tasks.length;
      stats.steps += evidence.runs.length;
      for (const a of driver.answers) {
        const key = `${a.action}/${a.door}/${a.outcome}`;
        stats.answers.set(key, (stats.answers.get(key) ?? 0) + 1);
      }
      const violations = judgeRun(evidence);
      if (VERBOSE) {
        console.error(
          [
            `run ${stats.runs}: ${evidence.tasks.length} tasks, ${evidence.runs.length} step runs`,
            ...driver.timeline,
          ].join('\n  '),
        );
      }
      if (violations.length > 0 || thrown) {
        throw new Error(
          [
            `${violations.length} violation(s):`,
            ...violations.slice(0, 25).map((v) => `  [${v.invariant}] ${v.message}`),
            ...(violations.length > 25 ? [`  … and ${violations.length - 25} more`] : []),
            ...(thrown ? [`the run itself failed: ${(thrown as Error).stack ?? String(thrown)}`] : []),
            `tasks: ${evidence.tasks.map((x) => `${x.id}${x.parallel ? `(batch ${x.hostIds.join(',')})` : `(host ${x.hostId})`} ${x.status}`).join(', ')}`,
            'timeline:',
            ...driver.timeline.map((l) => `  ${l}`),
          ].join('\n'),
        );
      }
    });
    const details = await fc.check(property, {
      numRuns: Math.max(1, Math.round(RUNS * SCALE)),
      ...(SEED === undefined ? {} : { seed: SEED }),
      ...(PATH === undefined ? {} : { path: PATH }),
      // each run costs seconds against a real stack, and its timing is not replayable: no shrinking
      endOnFailure: true,
      interruptAfterTimeLimit: PROPERTY_LIMIT_MS,
      markInterruptAsFailure: true,
    });
    const tally = [...stats.answers].sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}×${v}`);
    t.diagnostic(
      `${details.numRuns} runs, seed ${details.seed}, ${Date.now() - startedAt} ms; ${stats.tasks} tasks, ` +
        `${stats.steps} step runs; answers: ${tally.join(' ')}`,
    );
    if (details.failed) assert.fail((await fc.asyncDefaultReportMessage(details)) ?? 'property failed');
  });
});
