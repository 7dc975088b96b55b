/**
 * `npm run chaos -- --seconds N` (default 180): a soak against the real stack.
 *
 * It starts a nats-server, sshd serving simulated hosts (default 22), a Slack
 * fake, a service process with the front doors and the notifier
 * (ROLES=api,slack,notifier; "the front") and several executor processes
 * (ROLES=executor), then for N seconds:
 *
 * - sends a steady stream of restart, stop and start requests over HTTP, NATS
 *   (ocp.cmd.agent.* and the ocp.api micro service) and signed Slack slash
 *   commands — sometimes two at once to one host, so some are refused as busy;
 *   every request's reason is `chaos <tag>`, so its task is known by it;
 * - sends batch restarts of 2-5 hosts: HTTP batchRestartAgents,
 *   ocp.api.agent.batchRestart, and Slack `restart h1,h2,…` followed by a click
 *   on the confirmation's Confirm button (sometimes double-clicked, or Confirm
 *   then Cancel at once);
 * - operates on tasks as operators do: on a failed task Retry, Skip, Rollback
 *   or a subtask's retry, on a running one Cancel — by Slack buttons on the
 *   task's parent message, HTTP and ocp.api, often two or three at once on one
 *   task (two users clicking the same button among them);
 * - SIGKILLs the front at random moments (at least twice a minute-long run's
 *   worth: seconds/60, at least 2) and starts it again: alone (requests meanwhile
 *   get no answer) or after starting a second one beside it;
 * - sets faults on idle hosts (slow, failing and hanging agentctl commands),
 *   recording when each host had which faults: that is the fault plan;
 * - SIGKILLs an executor process at random moments (at least every 15 s) and
 *   starts a new one;
 * - restarts nats-server (SIGKILL or SIGTERM, down for a few seconds), at least
 *   twice in 3 minutes;
 * - cuts SSH connections: SIGKILLs the sshd session processes serving a host,
 *   or resets its connections (TCP RST with `ss -K`).
 *
 * The hosts' user has a slow, chatty ~/.bashrc (150 ms, prints a line,
 * exports variables, as a pyenv or conda init does), whose runs are counted:
 * the checker holds that it ran once per SSH connection.
 *
 * Then it stops injecting, lets everything settle (bounded), gathers the
 * evidence (agents' call logs and run files, the task store, the event stream,
 * the Slack fake) and has chaos/checker.ts judge every promise. It prints a
 * table and a one-line verdict last; it exits non-zero on any breach, or when
 * fewer faults than the minimums were injected.
 *
 * The evidence also holds the task operations sent, the host locks left once
 * everything settled, each event's time and each Slack post's time (a post
 * repeated is allowed only across a notifier death).
 *
 * Flags: --seconds N, --hosts N (20..60), --executors N (≥ 2), --rate R
 * (requests per second), --nats-down-min/--nats-down-max S (a crashed
 * nats-server stays down between them, default 0.5..2 s; longer outages, past
 * the 4 s lease, once let host locks lapse: docs/RELIABILITY.md),
 * --no-busy-probes (send no requests to hosts in the middle of a task),
 * --no-bashrc (hosts without the slow ~/.bashrc),
 * --keep (keep the run folder even on a pass),
 * --recheck <evidence.json> (judge saved evidence again, start nothing).
 * Everything listens on 127.0.0.0/8. The run folder (/tmp/ocp-chaos-*) holds
 * every process's log, the agents' call logs and evidence.json.
 */
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KV, NatsConnection } from 'nats';
import type { OcpTask } from '../src/contracts/ocp-task.js';
import { createTaskStore } from '../src/nats/task-store.js';
import { requestIdOf } from '../src/slack/slack-app.js';
import { type FakeSlack, startFakeSlack } from '../test/helpers/fake-slack.js';
import { readEventStream } from '../test/helpers/requests.js';
import { clearFaults, setFault } from '../test/helpers/sim-agent.js';
import { blockActionPayload, interactionBody, slackSignature, slashCommandBody } from '../test/helpers/slack-sign.js';
import { buttonValue, SIGNING_SECRET } from '../test/helpers/slack-user.js';
import { basicAuth, type ChildService, type Stack, startStack } from '../test/helpers/stack.js';
import {
  type AgentCallRecord,
  breachesByPromise,
  type ChaosEvidence,
  checkChaos,
  type Door,
  type EventRecord,
  type Fault,
  type FaultWindow,
  type OperationName,
  type OperationRecord,
  PROMISES,
  type ProcessRecord,
  parseAgentLog,
  parseRunKey,
  type RequestEventRecord,
  type RequestRecord,
  type RunRecord,
  type SlackThreadEvidence,
  type TaskEvidence,
} from './checker.js';

// ------------------------------------------------------------------ options

interface Options {
  seconds: number;
  hosts: number;
  executors: number;
  rate: number;
  keep: boolean;
  /** Shortest and longest a crashed nats-server stays down (s). */
  natsDownMin: number;
  natsDownMax: number;
  /** Send requests to hosts in the middle of a task (they must be refused). */
  busyProbes: boolean;
  /** The hosts' user has a slow, chatty, counted ~/.bashrc. */
  bashrc: boolean;
  recheck?: string;
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    seconds: 180,
    hosts: 22,
    executors: 4,
    rate: 2,
    keep: false,
    natsDownMin: 0.5,
    natsDownMax: 2,
    busyProbes: true,
    bashrc: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v as string;
    };
    const number = (min: number, max: number) => {
      const n = Number(value());
      if (!Number.isFinite(n) || n < min || n > max) usage(`${a} must be a number in ${min}..${max}`);
      return n;
    };
    if (a === '--seconds') o.seconds = number(10, 3600);
    else if (a === '--hosts') o.hosts = Math.floor(number(20, 60));
    else if (a === '--executors') o.executors = Math.floor(number(2, 8));
    else if (a === '--rate') o.rate = number(0.2, 20);
    else if (a === '--keep') o.keep = true;
    else if (a === '--nats-down-max') o.natsDownMax = number(0.5, 60);
    else if (a === '--nats-down-min') o.natsDownMin = number(0, 60);
    else if (a === '--no-busy-probes') o.busyProbes = false;
    else if (a === '--no-bashrc') o.bashrc = false;
    else if (a === '--recheck') o.recheck = value();
    else if (a === '--help' || a === '-h') usage();
    else usage(`unknown option ${a}`);
  }
  return o;
}

function usage(problem?: string): never {
  if (problem) console.error(`chaos: ${problem}`);
  console.error(
    'usage: npm run chaos -- [--seconds N] [--hosts N] [--executors N] [--rate R] [--nats-down-min S] [--nats-down-max S] [--no-busy-probes] [--no-bashrc] [--keep] [--recheck evidence.json]',
  );
  process.exit(problem ? 2 : 0);
}

// ------------------------------------------------------------------ tunables

const LEASE_SECONDS = 4;
/** Every runbook step's timeout: a hang ends in this many seconds. */
const STEP_TIMEOUT_SECONDS = 10;
const KILL_GRACE_SECONDS = 2;
/** The longest a "slow" fault makes one agentctl call (s). */
const MAX_SLOW_SECONDS = 2;
/** An executor is killed at least this often (ms), counting from the start of the chaos. */
const KILL_EVERY_MAX_MS = 15_000;
const SLACK_USER = 'U0CHAOS';
/** A second operator: two users clicking one button at once. */
const SLACK_USER_2 = 'U0CHAOS2';
const SLACK_CHANNEL = 'C0OPS';
const DEFAULT_CHANNEL = 'C0CHAOS';
/** Bounded waits of the settling phase (ms). */
const SETTLE_TASKS_MS = 150_000;
const SETTLE_SLACK_MS = 60_000;

const rand = (min: number, max: number) => min + Math.random() * (max - min);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;
function weighted<T>(choices: Array<[T, number]>): T {
  const total = choices.reduce((n, [, w]) => n + w, 0);
  let r = Math.random() * total;
  for (const [v, w] of choices) {
    r -= w;
    if (r < 0) return v;
  }
  return choices[choices.length - 1]![0];
}

// ------------------------------------------------------------------ the run

const opts = parseOptions(process.argv.slice(2));
if (opts.recheck) {
  const evidence = JSON.parse(readFileSync(opts.recheck, 'utf8')) as ChaosEvidence;
  const verdict = checkChaos(evidence);
  for (const b of verdict.breaches) console.log(`BREACH [${b.promise}] ${b.message}`);
  const counts = breachesByPromise(verdict.breaches);
  console.log(JSON.stringify({ stats: verdict.stats, breaches: counts }, null, 2));
  console.log(
    verdict.breaches.length === 0
      ? 'VERDICT: PASS — 0 breaches (recheck)'
      : `VERDICT: FAIL — ${verdict.breaches.length} breaches (recheck)`,
  );
  process.exit(verdict.breaches.length === 0 ? 0 : 1);
}

const t0 = Date.now();
const runDir = mkdtempSync(join(tmpdir(), 'ocp-chaos-'));
const say = (msg: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s] ${msg}`);

interface Counters {
  kills: number[];
  natsRestarts: Array<{ at: number; how: string; downMs: number }>;
  /** processes: sshd processes killed (kill) or connections reset (reset). */
  sshCuts: Array<{ at: number; how: 'kill' | 'reset'; hostIds: number[]; processes: number }>;
  faultsSet: Record<Fault['kind'], number>;
  executorsStarted: number;
  /** Executors that exited at start (NATS away) and were started again. */
  executorRespawns: number;
  /** From spawn to "executor started", per executor (ms). */
  startupMs: number[];
}
const counters: Counters = {
  kills: [],
  natsRestarts: [],
  sshCuts: [],
  faultsSet: { slow: 0, fail: 0, hang: 0 },
  executorsStarted: 0,
  executorRespawns: 0,
  startupMs: [],
};
const requests: RequestRecord[] = [];
const windows: FaultWindow[] = [];

let stack: Stack | undefined;
let fake: FakeSlack | undefined;

async function main(): Promise<number> {
  say(
    `chaos soak: ${opts.seconds} s, ${opts.hosts} hosts${opts.bashrc ? ' (slow, chatty ~/.bashrc)' : ''}, ${opts.executors} executors, ~${opts.rate} requests/s; run folder ${runDir}`,
  );
  fake = await startFakeSlack();
  fake.addChannel(SLACK_CHANNEL);
  fake.addChannel(DEFAULT_CHANNEL);
  stack = await startStack({
    hosts: opts.hosts,
    leaseSeconds: LEASE_SECONDS,
    stepTimeout: STEP_TIMEOUT_SECONDS,
    killGraceSeconds: KILL_GRACE_SECONDS,
    ...(opts.bashrc ? { bashrc: {} } : {}),
    slack: {
      apiUrl: fake.apiUrl,
      botToken: fake.token,
      signingSecret: SIGNING_SECRET,
      defaultChannel: DEFAULT_CHANNEL,
      access: {
        HOST_MANAGER: { users: [SLACK_USER, SLACK_USER_2] },
        TASK_MANAGER: { users: [SLACK_USER, SLACK_USER_2] },
      },
    },
  });
  const s = stack;
  const f = fake;
  for (const h of s.sshd.hosts) windows.push({ hostId: h.id, from: 0, faults: [] });

  // ---------------------------------------------------------------- processes
  /** Every service process, how it ended, and whether the soak ended it. */
  const procs = new Map<ChildService, ProcessRecord>();
  let onCrash: (c: ChildService, rec: ProcessRecord) => void = () => undefined;
  const spawnLogged = (roles: string, name: string): ChildService => {
    const child = s.spawnService(roles);
    const rec: ProcessRecord = { name, roles, pid: child.child.pid ?? 0, started: false, killedBySoak: false };
    procs.set(child, rec);
    const out = createWriteStream(join(runDir, `${name}.log`));
    child.child.stdout?.on('data', (c: Buffer) => out.write(c));
    child.child.stderr?.on('data', (c: Buffer) => out.write(c));
    child.child.once('exit', (code, signal) => {
      out.end();
      Object.assign(rec, { exitedAt: Date.now(), code, signal, tail: child.output().slice(-1500) });
      if (rec.started && !rec.killedBySoak) onCrash(child, rec);
    });
    return child;
  };
  const killBySoak = async (c: ChildService, signal: NodeJS.Signals) => {
    const rec = procs.get(c);
    if (rec) rec.killedBySoak = true;
    await c.kill(signal);
  };
  const waitOutput = async (c: ChildService, text: string, what: string, ms = 60_000) => {
    const deadline = Date.now() + ms;
    while (!c.output().includes(text)) {
      if (c.child.exitCode !== null || c.child.signalCode !== null) throw new Error(`${what} exited:\n${c.output()}`);
      if (Date.now() > deadline) throw new Error(`${what} not up in ${ms} ms:\n${c.output().slice(-3000)}`);
      await sleep(100);
    }
  };

  /** The front processes (api, slack, notifier) and where each serves HTTP. */
  const fronts: Array<{ child: ChildService; base: string }> = [];
  let frontsStarted = 0;
  let lastBase = '';
  const frontAlive = (c: ChildService) => c.child.exitCode === null && c.child.signalCode === null;
  const liveFronts = () => fronts.filter((x) => frontAlive(x.child));
  /** Where a request goes: a live front, or — none up — the last one's address (refused: no answer). */
  const frontBase = () => {
    const live = liveFronts();
    return live.length > 0 ? pick(live).base : lastBase;
  };
  const startFront = async (): Promise<ChildService> => {
    for (let attempt = 1; ; attempt++) {
      frontsStarted += 1;
      const c = spawnLogged('api,slack,notifier', `front-${frontsStarted}`);
      try {
        await waitOutput(c, '"msg":"ready"', `front ${frontsStarted}`);
        (procs.get(c) as ProcessRecord).started = true;
        const port = Number(/"httpPort":(\d+)/.exec(c.output())?.[1]);
        if (!port) throw new Error(`no HTTP port in the front's output:\n${c.output()}`);
        lastBase = `http://127.0.0.1:${port}`;
        fronts.push({ child: c, base: lastBase });
        return c;
      } catch (err) {
        await killBySoak(c, 'SIGKILL');
        if (attempt >= 30) throw err;
        await sleep(1000);
      }
    }
  };
  await startFront();

  const executors: ChildService[] = [];
  /**
   * Like a supervisor: a process that cannot start (it exits, or is not up in 60 s) is
   * started again. One started while NATS is away waits for it.
   */
  const startExecutor = async (): Promise<ChildService> => {
    for (let attempt = 1; ; attempt++) {
      counters.executorsStarted += 1;
      const n = counters.executorsStarted;
      const spawnedAt = Date.now();
      const e = spawnLogged('executor', `executor-${n}`);
      try {
        await waitOutput(e, 'executor started', `executor ${n}`);
        (procs.get(e) as ProcessRecord).started = true;
        counters.startupMs.push(Date.now() - spawnedAt);
        executors.push(e);
        return e;
      } catch (err) {
        await killBySoak(e, 'SIGKILL');
        if (attempt >= 30) throw err;
        counters.executorRespawns += 1;
        await sleep(1000);
      }
    }
  };
  await Promise.all(Array.from({ length: opts.executors }, startExecutor));
  // A process that dies on its own is a breach (the checker says so); an executor is replaced, as a supervisor would.
  onCrash = (c, rec) => {
    say(
      `${rec.name} (pid ${rec.pid}) died on its own: ${rec.code ?? rec.signal}; ${rec.tail?.trim().split('\n').slice(-12, -11)[0] ?? ''}`,
    );
    const i = executors.indexOf(c);
    if (i >= 0) {
      executors.splice(i, 1);
      void startExecutor().catch((err) => say(`executor failed to start: ${(err as Error).message}`));
    }
    const k = fronts.findIndex((x) => x.child === c);
    if (k >= 0) {
      fronts.splice(k, 1);
      if (liveFronts().length === 0) {
        void startFront().catch((err) => say(`front failed to start: ${(err as Error).message}`));
      }
    }
  };
  say(`stack up: front on ${lastBase}, ${executors.length} executors, nats ${s.nats.url}`);

  const nc: NatsConnection = s.nc;
  const js = s.js;
  const kvOf = async (name: string): Promise<KV> => js.views.kv(name);
  let kvs: { tasks: KV; requests: KV; locks: KV } | undefined;
  const kv = async () => {
    kvs ??= {
      tasks: await kvOf('ocp_tasks'),
      requests: await kvOf('ocp_requests'),
      locks: await kvOf('ocp_host_locks'),
    };
    return kvs;
  };
  await kv();
  const dec = new TextDecoder();
  const readJson = async <T>(bucket: KV, key: string): Promise<T | undefined> => {
    const e = await bucket.get(key);
    return e && e.operation === 'PUT' ? (JSON.parse(dec.decode(e.value)) as T) : undefined;
  };
  // As the store reads them: a batch's head and chains assembled.
  const readTaskRecord = async (id: number) =>
    (await createTaskStore({ kv: (await kv()).tasks, js: nc.jetstream() }).get(id))?.record;

  // ---------------------------------------------------------------- phases
  // The chaos runs for --seconds from here, once the stack is up.
  const tChaos = Date.now();
  const chaosEnds = tChaos + opts.seconds * 1000;
  let requesting = true;
  let injecting = true;
  const chaosOn = () => injecting && Date.now() < chaosEnds;

  // ---------------------------------------------------------------- requests
  let nextSlot = Date.now();
  const pace = async () => {
    const at = Math.max(Date.now(), nextSlot);
    nextSlot = at + 1000 / opts.rate;
    await sleep(at - Date.now());
  };
  let seq = 0;

  /** Polls ocp_requests until the request is settled (accepted / rejected) or the deadline passes. */
  const settledRequest = async (requestId: string, ms: number) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      try {
        const e = await readJson<{ state: string; taskId?: number; error?: { code: number; message: string } }>(
          (await kv()).requests,
          `req.${requestId}`,
        );
        if (e && e.state !== 'pending') return e;
      } catch {
        // NATS away: ask again
      }
      await sleep(300);
    }
    return undefined;
  };

  /** Accepted tasks the operators may act on: when seen, and where their Slack parent is. */
  const known: Array<{ taskId: number; channel: string; at: number }> = [];
  const accepted = (r: RequestRecord, channel: string) => {
    if (r.result === 'accepted' && r.taskId !== undefined) known.push({ taskId: r.taskId, channel, at: Date.now() });
  };

  const send = async (door: Door, op: Exclude<RequestRecord['op'], 'batchRestart'>, hostId: number) => {
    seq += 1;
    const tag = `chaos-${seq}`;
    const reason = `chaos ${tag}`;
    const r: RequestRecord = { id: tag, door, op, hostId, tag, sentAt: Date.now(), result: 'lost' };
    requests.push(r);
    try {
      if (door === 'http') {
        const res = await fetch(`${frontBase()}/compute/hosts/${hostId}/agent/${op}`, {
          method: 'POST',
          headers: { authorization: basicAuth('operator'), 'content-type': 'application/json' },
          body: JSON.stringify({ reason }),
          signal: AbortSignal.timeout(20_000),
        });
        const body = (await res.json()) as { data?: OcpTask; error?: { code: number; message: string } };
        r.answered = true;
        if (res.status === 200 && body.data) Object.assign(r, { result: 'accepted', taskId: body.data.id });
        else if (body.error?.code === 40000) Object.assign(r, { result: 'busy', detail: body.error.message });
        else if (res.status === 503) Object.assign(r, { result: 'error', detail: `503 ${body.error?.message}` });
        else Object.assign(r, { result: 'rejected', detail: `${res.status} ${JSON.stringify(body.error)}` });
      } else if (door === 'nats-api') {
        const m = await nc.request(`ocp.api.agent.${op}`, JSON.stringify({ hostId, creator: 'chaos', reason }), {
          timeout: 15_000,
        });
        const body = m.json<{ successful: boolean; data?: OcpTask; error?: { code: number; message: string } }>();
        r.answered = true;
        if (body.successful && body.data) Object.assign(r, { result: 'accepted', taskId: body.data.id });
        else if (body.error?.code === 40000) Object.assign(r, { result: 'busy', detail: body.error.message });
        else if (body.error?.code === 10000) Object.assign(r, { result: 'error', detail: body.error.message });
        else Object.assign(r, { result: 'rejected', detail: JSON.stringify(body.error) });
      } else {
        let requestId = r.id;
        let responseUrl: string | undefined;
        let publishError: string | undefined;
        if (door === 'nats') {
          try {
            await js.publish(`ocp.cmd.agent.${op}`, JSON.stringify({ hostId, creator: 'chaos', requestId, reason }), {
              msgID: requestId,
              timeout: 10_000,
            });
          } catch (err) {
            publishError = (err as Error).message; // it may be stored all the same: look for its answer
          }
        } else {
          const triggerId = `${Date.now()}.${seq}.chaos`;
          requestId = requestIdOf(triggerId);
          r.id = requestId;
          responseUrl = f.responseUrl();
          slackResponseUrls.set(requestId, [responseUrl]);
          const body = slashCommandBody({
            command: '/ocp-agent',
            text: `${op} ${hostId} ${reason}`,
            user_id: SLACK_USER,
            channel_id: SLACK_CHANNEL,
            trigger_id: triggerId,
            response_url: responseUrl,
          });
          try {
            const res = await slackPost(`${frontBase()}/slack/events`, body);
            if (res.status !== 200) publishError = `slash command answered ${res.status}: ${res.text.slice(0, 200)}`;
          } catch (err) {
            publishError = `slash command not delivered: ${(err as Error).message}`;
          }
        }
        const e = await settledRequest(requestId, publishError ? 20_000 : 40_000);
        if (e) r.answered = true;
        if (e?.state === 'accepted') Object.assign(r, { result: 'accepted', taskId: e.taskId });
        else if (e?.state === 'rejected' && e.error?.code === 40000)
          Object.assign(r, { result: 'busy', detail: e.error.message });
        else if (e?.state === 'rejected') Object.assign(r, { result: 'rejected', detail: JSON.stringify(e.error) });
        else {
          const warned = responseUrl
            ? f.responses.find((x) => x.url === responseUrl && /warning/.test(String(x.body.text)))
            : undefined;
          // A Slack warning is the product's answer: the request did not go through.
          if (warned) r.answered = true;
          Object.assign(r, {
            result: publishError || warned ? 'error' : 'lost',
            detail: publishError ?? (warned ? String(warned.body.text) : 'no answer'),
          });
        }
      }
    } catch (err) {
      Object.assign(r, { result: 'error', detail: (err as Error).message });
    }
    r.answeredAt = Date.now();
    accepted(r, door === 'slack' ? SLACK_CHANNEL : DEFAULT_CHANNEL);
    return r;
  };

  /** When a request's fate is unknown, its host may still get a task: leave its faults alone until then. */
  const unsureUntil = new Map<number, number>();
  const hostIdle = async (hostId: number): Promise<boolean> => {
    if ((unsureUntil.get(hostId) ?? 0) > Date.now()) return false;
    try {
      const lock = await readJson<{ taskId: number }>((await kv()).locks, `host.${hostId}`);
      if (!lock) return true;
      const holder = await readTaskRecord(lock.taskId);
      return holder !== undefined && holder.task.status !== 'RUNNING';
    } catch {
      return false;
    }
  };

  const setHostFaults = (hostId: number, agentHome: string, faults: Fault[]) => {
    const current = windows.filter((w) => w.hostId === hostId).at(-1);
    if (current) current.to = Date.now();
    clearFaults(agentHome);
    for (const fl of faults) setFault(agentHome, fl.cmd, fl.kind, fl.seconds);
    windows.push({ hostId, from: Date.now(), faults });
    for (const fl of faults) counters.faultsSet[fl.kind] += 1;
  };

  const pickFaults = (): Fault[] => {
    const cmd = pick(['status', 'stop', 'start', 'restart'] as const);
    return weighted<Fault[]>([
      [[], 4],
      [[{ cmd, kind: 'slow', seconds: Math.round(rand(0.5, MAX_SLOW_SECONDS) * 10) / 10 }], 3],
      [[{ cmd, kind: 'fail' }], 2],
      [[{ cmd, kind: 'hang' }], 1],
    ]);
  };

  let ended = 0;
  /** Per host: the tasks its loop waits for, and requests sent to it in the middle of one. */
  const inflight = new Map<number, Set<number>>(s.sshd.hosts.map((h) => [h.id, new Set<number>()]));
  const intruders = new Map<number, Array<Promise<void>>>(s.sshd.hosts.map((h) => [h.id, []]));
  let intrusions = 0;
  /**
   * A request to a host in the middle of its task: it must be refused as busy.
   * (Should it be accepted — a lock lapsed while NATS was away — the host's loop
   * waits for that task too, and the checker sees whether the two overlapped.)
   */
  const intrude = (hostId: number, delayMs: number): void => {
    const tasks = inflight.get(hostId);
    if (!tasks || tasks.size === 0) return;
    const p = (async () => {
      await sleep(delayMs);
      if (tasks.size === 0) return;
      intrusions += 1;
      const door = pick(['http', 'nats', 'nats-api', 'slack'] as const);
      const r = await send(door, pick(['restart', 'stop', 'start'] as const), hostId);
      // Accepted only if the host's task had ended meanwhile — the checker (busy-refused) knows.
      if (r.result === 'accepted' && r.taskId !== undefined) tasks.add(r.taskId);
      if (r.result === 'error' || r.result === 'lost') unsureUntil.set(hostId, Date.now() + 30_000);
    })();
    intruders.get(hostId)?.push(p);
  };

  const hostLoop = async (hostId: number, agentHome: string) => {
    const tasks = inflight.get(hostId) as Set<number>;
    const pending = intruders.get(hostId) as Array<Promise<void>>;
    await sleep(rand(0, 4000));
    while (requesting && Date.now() < chaosEnds) {
      if (!(await hostIdle(hostId))) {
        await sleep(1000);
        continue;
      }
      if (Math.random() < 0.45) setHostFaults(hostId, agentHome, pickFaults());
      const op = weighted<'restart' | 'stop' | 'start'>([
        ['restart', 6],
        ['stop', 2],
        ['start', 2],
      ]);
      const doors: Door[] = [
        weighted<Door>([
          ['http', 3],
          ['nats', 3],
          ['nats-api', 1],
          ['slack', 3],
        ]),
      ];
      if (Math.random() < 0.25) doors.push(pick(['http', 'nats', 'slack'] as const));
      const sent = await Promise.all(
        doors.map(async (door, i) => {
          await pace();
          if (i > 0) await sleep(rand(0, 400));
          return send(door, i === 0 ? op : pick(['restart', 'stop', 'start'] as const), hostId);
        }),
      );
      if (sent.some((r) => r.result === 'error' || r.result === 'lost')) unsureUntil.set(hostId, Date.now() + 30_000);
      for (const r of sent) if (r.result === 'accepted' && r.taskId !== undefined) tasks.add(r.taskId);
      if (opts.busyProbes && Math.random() < 0.2) intrude(hostId, rand(500, 6000));
      // Until every task of this host (intruders' included) has ended, or 3 minutes.
      const giveUp = Date.now() + 180_000;
      while ((tasks.size > 0 || pending.length > 0) && Date.now() < giveUp) {
        if (pending.length > 0) await Promise.all(pending.splice(0));
        for (const id of [...tasks]) {
          try {
            const t = (await readTaskRecord(id))?.task;
            if (t && t.status !== 'RUNNING') {
              tasks.delete(id);
              ended += 1;
            }
          } catch {
            // NATS away
          }
        }
        if (tasks.size > 0) await sleep(500);
      }
      tasks.clear();
      await sleep(rand(300, 2500));
    }
  };

  // ---------------------------------------------------------------- injectors
  const alive = () => executors.filter((e) => e.child.exitCode === null && e.child.signalCode === null);
  /** Executors alive right after each kill: at least 2 were always at work. */
  const leftAfterKill: number[] = [];
  const killer = async () => {
    let last = Date.now();
    while (chaosOn()) {
      // Early enough that a slow replacement or the driver starved of CPU for a few
      // seconds (a loaded machine) still keeps the gap under KILL_EVERY_MAX_MS.
      const due = last + rand(3000, KILL_EVERY_MAX_MS - 7000);
      while (chaosOn() && Date.now() < due) await sleep(200);
      // Rather kill when a replacement is up, so two or more keep working — but
      // never let more than KILL_EVERY_MAX_MS pass without a kill.
      while (chaosOn() && alive().length < 3 && Date.now() - last < KILL_EVERY_MAX_MS - 5000) await sleep(100);
      if (!chaosOn()) break;
      const live = alive();
      if (live.length < 2) {
        await sleep(200); // never the last one: wait for a replacement to come up
        continue;
      }
      const victim = pick(live);
      await killBySoak(victim, 'SIGKILL');
      executors.splice(executors.indexOf(victim), 1);
      last = Date.now();
      counters.kills.push(last);
      leftAfterKill.push(alive().length);
      say(`SIGKILL executor pid ${victim.child.pid} (${counters.kills.length} kills, ${alive().length} left)`);
      void startExecutor().catch((err) => say(`executor failed to start: ${(err as Error).message}`));
    }
  };

  const natsRestarts = opts.seconds >= 90 ? Math.max(2, Math.round(opts.seconds / 60)) : 1;
  const restarter = async () => {
    const span = opts.seconds * 1000;
    for (let i = 0; i < natsRestarts; i++) {
      const at = tChaos + ((i + 0.5) * span) / natsRestarts + rand(-0.15, 0.15) * (span / natsRestarts);
      while (chaosOn() && Date.now() < at) await sleep(200);
      if (!chaosOn()) break;
      // Alternately a crash (SIGKILL, down a few seconds) and a clean restart (SIGTERM, up again at once).
      const how = i % 2 === 0 ? 'SIGKILL' : 'SIGTERM';
      const began = Date.now();
      if (how === 'SIGKILL') {
        await s.nats.kill();
        await sleep(rand(opts.natsDownMin * 1000, Math.max(opts.natsDownMin, opts.natsDownMax) * 1000));
      }
      await s.nats.restart();
      counters.natsRestarts.push({ at: began, how, downMs: Date.now() - began });
      // Host locks live in a bucket whose max age is the lease: after an outage
      // longer than that, ask busy hosts again — they must still be refused.
      const busy = opts.busyProbes ? [...inflight].filter(([, t]) => t.size > 0).map(([h]) => h) : [];
      for (const h of busy.sort(() => Math.random() - 0.5).slice(0, 4)) intrude(h, rand(0, 1500));
      say(`nats-server restarted (${how}, down ${((Date.now() - began) / 1000).toFixed(1)} s)`);
    }
  };

  const sshPort = s.sshd.hosts[0]!.port;
  const listenerPids = () =>
    readdirSync(s.sshd.dir)
      .filter((n) => /^sshd-\d+\.pid$/.test(n))
      .map((n) => Number(readFileSync(join(s.sshd.dir, n), 'utf8').trim()));
  const cutter = async () => {
    while (chaosOn()) {
      const due = Date.now() + rand(3000, 9000);
      while (chaosOn() && Date.now() < due) await sleep(200);
      if (!chaosOn()) break;
      const victims = Array.from({ length: Math.ceil(rand(0, 3)) }, () => pick(s.sshd.hosts));
      const addresses = victims.map((h) => h.address);
      // Alternately the server goes away (its sessions SIGKILLed: the client sees the
      // connection close) and the connection is reset (TCP RST, as a firewall or a
      // rebooted host does: the client sees ECONNRESET).
      const how = counters.sshCuts.length % 2 === 0 ? 'kill' : 'reset';
      const n = how === 'kill' ? cutSsh(addresses, sshPort, listenerPids()) : resetSsh(addresses, sshPort);
      counters.sshCuts.push({ at: Date.now(), how, hostIds: victims.map((h) => h.id), processes: n });
    }
  };

  // ---------------------------------------------------------------- batches
  /** Waits for what a response_url received (Slack's answers to commands and clicks), bounded. */
  const responsesTo = async (url: string, done: (bodies: Array<Record<string, unknown>>) => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    for (;;) {
      const bodies = f.responses.filter((x) => x.url === url).map((x) => x.body);
      if (done(bodies) || Date.now() >= deadline) return bodies;
      await sleep(200);
    }
  };
  const batchStats = { twoConfirms: 0, confirmAndCancel: 0, confirmations: 0 };
  /** A batch restart of these hosts: HTTP, ocp.api, or Slack's command and a Confirm click. */
  const sendBatch = async (door: 'http' | 'nats-api' | 'slack', hostIds: number[]): Promise<RequestRecord> => {
    seq += 1;
    const tag = `chaos-${seq}`;
    const reason = `chaos ${tag}`;
    const r: RequestRecord = {
      id: tag,
      door,
      op: 'batchRestart',
      hostId: hostIds[0] as number,
      hostIds,
      tag,
      sentAt: Date.now(),
      result: 'lost',
    };
    requests.push(r);
    const answer = (status: number, body: { data?: OcpTask; error?: { code: number; message: string } }) => {
      r.answered = true;
      if (status === 200 && body.data) Object.assign(r, { result: 'accepted', taskId: body.data.id });
      else if (body.error?.code === 40000) Object.assign(r, { result: 'busy', detail: body.error.message });
      else if (status === 503 || body.error?.code === 10000)
        Object.assign(r, { result: 'error', detail: `${status} ${body.error?.message}` });
      else Object.assign(r, { result: 'rejected', detail: `${status} ${JSON.stringify(body.error)}` });
    };
    try {
      if (door === 'http') {
        const res = await fetch(`${frontBase()}/compute/hosts/batchRestartAgents`, {
          method: 'POST',
          headers: { authorization: basicAuth('operator'), 'content-type': 'application/json' },
          body: JSON.stringify({ hostIds, reason }),
          signal: AbortSignal.timeout(20_000),
        });
        answer(res.status, (await res.json()) as Parameters<typeof answer>[1]);
      } else if (door === 'nats-api') {
        const m = await nc.request(
          'ocp.api.agent.batchRestart',
          JSON.stringify({ hostIds, creator: 'chaos', reason }),
          {
            timeout: 15_000,
          },
        );
        const body = m.json<{ successful: boolean; data?: OcpTask; error?: { code: number; message: string } }>();
        answer(body.successful ? 200 : 409, body);
      } else {
        const commandUrl = f.responseUrl();
        const urls = [commandUrl];
        slackResponseUrls.set(tag, urls);
        const res = await slackPost(
          `${frontBase()}/slack/events`,
          slashCommandBody({
            command: '/ocp-agent',
            text: `restart ${hostIds.join(',')} ${reason}`,
            user_id: SLACK_USER,
            channel_id: SLACK_CHANNEL,
            trigger_id: `${Date.now()}.${seq}.batch`,
            response_url: commandUrl,
          }),
        );
        if (res.status !== 200) throw new Error(`slash command answered ${res.status}`);
        const asked = await responsesTo(commandUrl, (bs) => bs.length > 0, 15_000);
        const question = asked.find((b) => buttonValue(b, 'batch_confirm') !== undefined);
        if (!question) {
          if (asked.length > 0) Object.assign(r, { answered: true, result: 'error', detail: String(asked[0]?.text) });
          else r.detail = 'no confirmation asked';
        } else {
          batchStats.confirmations += 1;
          const value = buttonValue(question, 'batch_confirm') as string;
          // The question is ephemeral (its requester's alone): one Confirm, a double click on
          // Confirm, or Confirm then Cancel in quick succession.
          const how = weighted<'one' | 'two' | 'cancel'>([
            ['one', 5],
            ['two', 3],
            ['cancel', 2],
          ]);
          if (how === 'two') batchStats.twoConfirms += 1;
          if (how === 'cancel') batchStats.confirmAndCancel += 1;
          const clicks: Array<[string, string]> = [['batch_confirm', SLACK_USER]];
          if (how === 'two') clicks.push(['batch_confirm', SLACK_USER]);
          if (how === 'cancel') clicks.push(['batch_cancel', SLACK_USER]);
          const clickUrls = clicks.map(() => f.responseUrl());
          urls.push(...clickUrls);
          await Promise.all(
            clicks.map(async ([actionId, user], i) => {
              if (i > 0) await sleep(rand(0, 60));
              const payload = blockActionPayload({
                user_id: user,
                channel_id: SLACK_CHANNEL,
                action_id: actionId,
                value,
                response_url: clickUrls[i] as string,
                trigger_id: `${Date.now()}.${seq}.${i}.confirm`,
              });
              await slackPost(`${frontBase()}/slack/events`, interactionBody(payload)).catch(() => undefined);
            }),
          );
          const answers = await Promise.all(clickUrls.map((u) => responsesTo(u, (bs) => bs.length > 0, 25_000)));
          const texts = answers.flat().map((b) => String(b.text ?? ''));
          const started = texts.map((t) => /started: task (\d+)/.exec(t)).find(Boolean);
          if (texts.length > 0) r.answered = true;
          if (started) Object.assign(r, { result: 'accepted', taskId: Number(started[1]) });
          else if (texts.some((t) => /already runs/.test(t)))
            Object.assign(r, { result: 'busy', detail: texts.find((t) => /already runs/.test(t)) });
          else if (texts.length > 0) Object.assign(r, { result: 'rejected', detail: texts.join(' / ').slice(0, 300) });
          else r.detail = 'no answer to the Confirm click';
        }
      }
    } catch (err) {
      Object.assign(r, { result: 'error', detail: (err as Error).message });
    }
    r.answeredAt = Date.now();
    accepted(r, door === 'slack' ? SLACK_CHANNEL : DEFAULT_CHANNEL);
    return r;
  };

  const batchLoop = async () => {
    await sleep(rand(3000, 8000));
    while (requesting && Date.now() < chaosEnds) {
      const k = 2 + Math.floor(Math.random() * 4);
      // Mostly hosts that are free (no lock held by a running task); now and then any (a busy one refuses the whole batch).
      const shuffled = [...s.sshd.hosts].sort(() => Math.random() - 0.5);
      let hostIds: number[] = [];
      if (Math.random() < 0.8) {
        for (const h of shuffled.slice(0, 14)) {
          if (hostIds.length >= k) break;
          if (inflight.get(h.id)?.size === 0 && (await hostIdle(h.id))) hostIds.push(h.id);
        }
      }
      if (hostIds.length < 2) hostIds = shuffled.slice(0, k).map((h) => h.id);
      const door = weighted<'http' | 'nats-api' | 'slack'>([
        ['http', 4],
        ['nats-api', 2],
        ['slack', 4],
      ]);
      const r = await sendBatch(door, hostIds);
      if (r.result === 'error' || r.result === 'lost') for (const h of hostIds) unsureUntil.set(h, Date.now() + 30_000);
      await sleep(rand(1500, 4000));
    }
  };

  // ---------------------------------------------------------------- task operations
  const operations: OperationRecord[] = [];
  /** Click operations: the response_url each click carried (a refusal is a warning there). */
  const clickUrls = new Map<string, string>();
  let opSeq = 0;
  let opGroups = 0;
  const opGroupSizes: number[] = [];
  const ACTION_OF: Partial<Record<OperationName, string>> = {
    retry: 'task_retry',
    skip: 'subtask_skip',
    rollback: 'task_rollback',
    cancel: 'subtask_cancel',
  };
  const parentOf = (channel: string, taskId: number) =>
    f
      .channel(channel)
      .find((m) => m.thread_ts === undefined && JSON.stringify(m.blocks ?? []).includes(`Task *${taskId}*`));

  /** One operation, by one door; a click without its button on the parent goes over HTTP instead. */
  const operate = async (
    group: number,
    door: OperationRecord['door'],
    op: OperationName,
    taskId: number,
    subtaskId: number | undefined,
    channel: string,
    user: string,
  ): Promise<void> => {
    opSeq += 1;
    let value: string | undefined;
    let parentTs: string | undefined;
    if (door === 'slack') {
      const action = ACTION_OF[op];
      const parent = action ? parentOf(channel, taskId) : undefined;
      value = parent && action ? buttonValue(parent, action) : undefined;
      parentTs = parent?.ts;
      if (value === undefined) door = 'http';
    }
    if (value) subtaskId = (JSON.parse(value) as { subtaskId?: number }).subtaskId;
    const rec: OperationRecord = {
      id: `op-${opSeq}`,
      group,
      door,
      op,
      taskId,
      ...(subtaskId !== undefined ? { subtaskId } : {}),
      ...(door === 'slack' ? { user } : {}),
      sentAt: Date.now(),
      result: 'none',
    };
    operations.push(rec);
    const verb = op === 'subtask-retry' ? 'retry' : op;
    try {
      if (door === 'http') {
        const path =
          op === 'retry' || op === 'rollback'
            ? `/api/v2/tasks/instances/${taskId}/${op}`
            : `/api/v2/tasks/instances/${taskId}/subtasks/${subtaskId}/${verb}`;
        const res = await fetch(`${frontBase()}${path}`, {
          method: 'POST',
          headers: { authorization: basicAuth('operator') },
          signal: AbortSignal.timeout(20_000),
        });
        const body = (await res.json()) as { error?: { code: number; message: string } };
        rec.result = res.status === 200 ? 'ok' : 'refused';
        if (body.error) rec.detail = `${res.status} ${body.error.code} ${body.error.message}`;
      } else if (door === 'nats-api') {
        const subject = op === 'retry' || op === 'rollback' ? `ocp.api.task.${op}` : `ocp.api.subtask.${verb}`;
        const payload = op === 'retry' || op === 'rollback' ? { taskId } : { taskId, subtaskId };
        const m = await nc.request(subject, JSON.stringify(payload), { timeout: 15_000 });
        const body = m.json<{ successful: boolean; error?: { code: number; message: string } }>();
        rec.result = body.successful ? 'ok' : 'refused';
        if (body.error) rec.detail = `${body.error.code} ${body.error.message}`;
      } else {
        const url = f.responseUrl();
        clickUrls.set(rec.id, url);
        const payload = blockActionPayload({
          user_id: user,
          channel_id: channel,
          action_id: ACTION_OF[op] as string,
          value: value as string,
          response_url: url,
          trigger_id: `${Date.now()}.${opSeq}.click`,
          ...(parentTs ? { message_ts: parentTs } : {}),
        });
        const res = await slackPost(`${frontBase()}/slack/events`, interactionBody(payload));
        if (res.status !== 200) rec.detail = `click answered ${res.status}`;
        // A click that worked gets no answer; a refused one a warning on its response_url.
        const said = await responsesTo(url, (bs) => bs.length > 0, 6000);
        if (said.length > 0) Object.assign(rec, { result: 'refused', detail: String(said[0]?.text).slice(0, 200) });
      }
    } catch (err) {
      rec.detail = (err as Error).message;
    }
    rec.answeredAt = Date.now();
  };

  /** Tasks an operator has chosen to leave alone (so some failures are still judged by their faults). */
  const spared = new Set<number>();
  const groupsOn = new Map<number, number>();
  const inFlightGroups = new Set<Promise<void>>();
  const opsLoop = async () => {
    await sleep(rand(4000, 7000));
    while (requesting && Date.now() < chaosEnds) {
      await sleep(rand(800, 2000));
      if (inFlightGroups.size >= 3) continue;
      const recent = known.filter(
        (k) => Date.now() - k.at < 120_000 && !spared.has(k.taskId) && (groupsOn.get(k.taskId) ?? 0) < 3,
      );
      const sample = [...recent].sort(() => Math.random() - 0.5).slice(0, 12);
      const failed: Array<{ t: OcpTask; channel: string }> = [];
      const running: Array<{ t: OcpTask; channel: string }> = [];
      const batchFailed: Array<{ t: OcpTask; channel: string; subtaskId: number }> = [];
      for (const k of sample) {
        const t = (await readTaskRecord(k.taskId).catch(() => undefined))?.task;
        if (!t) continue;
        if (t.status === 'FAILED') {
          // On first sight, an operator leaves about a third of the failures alone.
          if (!groupsOn.has(t.id) && Math.random() < 0.35) {
            spared.add(t.id);
            continue;
          }
          failed.push({ t, channel: k.channel });
        } else if (t.status === 'RUNNING') {
          if (t.subtasks.some((x) => x.status === 'RUNNING')) running.push({ t, channel: k.channel });
          if (t.context.parallel) {
            const active = new Set(
              t.subtasks.filter((x) => ['READY', 'RUNNING', 'CANCELING'].includes(x.status)).map((x) => x.parallelIdx),
            );
            const rest = t.subtasks.find((x) => x.status === 'FAILED' && !active.has(x.parallelIdx));
            if (rest) batchFailed.push({ t, channel: k.channel, subtaskId: rest.id });
          }
        }
      }
      const what = weighted<'failed' | 'cancel' | 'batch' | 'none'>([
        ['failed', failed.length > 0 ? 5 : 0],
        ['cancel', running.length > 0 ? 1 : 0],
        ['batch', batchFailed.length > 0 ? 3 : 0],
        ['none', failed.length + running.length + batchFailed.length === 0 ? 1 : 0],
      ]);
      if (what === 'none') continue;
      const plan: Array<{ door: OperationRecord['door']; op: OperationName; subtaskId?: number }> = [];
      let target: { t: OcpTask; channel: string };
      const size = weighted<number>([
        [1, 3],
        [2, 5],
        [3, 2],
      ]);
      const door = () =>
        weighted<OperationRecord['door']>([
          ['slack', 4],
          ['http', 3],
          ['nats-api', 3],
        ]);
      if (what === 'failed') {
        const c = pick(failed);
        target = c;
        const firstFailed = c.t.subtasks.find((x) => x.status === 'FAILED');
        const choices: Array<[OperationName, number]> = [
          ['retry', 4],
          ['skip', 2],
          ['rollback', c.t.context.stringMap.prohibit_rollback === 'true' ? 0 : 3],
          ['subtask-retry', 1],
        ];
        const main = weighted(choices);
        for (let i = 0; i < size; i++) {
          const op = i === 0 || Math.random() < 0.7 ? main : weighted(choices);
          plan.push({ door: door(), op, ...(firstFailed ? { subtaskId: firstFailed.id } : {}) });
        }
        // Often two people see the same failure and click the same button at once.
        if (size >= 2 && main !== 'subtask-retry' && Math.random() < 0.5) {
          plan[0] = { ...plan[0]!, door: 'slack', op: main };
          plan[1] = { ...plan[1]!, door: 'slack', op: main };
        }
      } else if (what === 'cancel') {
        const c = pick(running);
        target = c;
        const run = c.t.subtasks.find((x) => x.status === 'RUNNING');
        const both = Math.random() < 0.4;
        for (let i = 0; i < Math.min(size, 2); i++) {
          plan.push({ door: both ? 'slack' : door(), op: 'cancel', ...(run ? { subtaskId: run.id } : {}) });
        }
        // Now and then someone presses Retry on it meanwhile: refused while it runs.
        if (Math.random() < 0.2) plan.push({ door: pick(['http', 'nats-api'] as const), op: 'retry' });
      } else {
        const c = pick(batchFailed);
        target = c;
        const op = pick(['skip', 'subtask-retry'] as const);
        for (let i = 0; i < Math.max(2, size); i++) {
          plan.push({
            door: pick(['http', 'nats-api'] as const),
            op: Math.random() < 0.75 ? op : pick(['skip', 'subtask-retry'] as const),
            subtaskId: c.subtaskId,
          });
        }
      }
      opGroups += 1;
      const group = opGroups;
      opGroupSizes.push(plan.length);
      groupsOn.set(target.t.id, (groupsOn.get(target.t.id) ?? 0) + 1);
      let clickN = 0;
      const p = Promise.all(
        plan.map(async (x, i) => {
          if (i > 0) await sleep(rand(0, 80));
          const user = x.door === 'slack' && clickN++ % 2 === 1 ? SLACK_USER_2 : SLACK_USER;
          await operate(group, x.door, x.op, target.t.id, x.subtaskId, target.channel, user);
        }),
      ).then(() => undefined);
      inFlightGroups.add(p);
      void p.finally(() => inFlightGroups.delete(p));
    }
    await Promise.all([...inFlightGroups]);
  };

  // ---------------------------------------------------------------- front kills
  const frontKills: Array<{ at: number; how: 'alone' | 'beside'; downMs: number }> = [];
  const frontKillCount = opts.seconds >= 60 ? Math.max(2, Math.round(opts.seconds / 60)) : 1;
  const frontKiller = async () => {
    const span = opts.seconds * 1000;
    for (let i = 0; i < frontKillCount; i++) {
      const at = tChaos + ((i + 0.35) * span) / frontKillCount + rand(-0.15, 0.15) * (span / frontKillCount);
      while (chaosOn() && Date.now() < at) await sleep(200);
      if (!chaosOn()) break;
      // Alternately the only front dies (nothing answers until it is back), and a
      // second front is started beside it first (the survivor carries on).
      const how = i % 2 === 0 ? 'alone' : 'beside';
      if (how === 'beside') await startFront();
      const live = liveFronts();
      const victim = how === 'beside' && live.length > 1 ? live[0]! : pick(live);
      if (!victim) continue;
      await killBySoak(victim.child, 'SIGKILL');
      fronts.splice(fronts.indexOf(victim), 1);
      const killedAt = Date.now();
      say(`SIGKILL front pid ${victim.child.child.pid} (${how}; ${liveFronts().length} left)`);
      let downMs = 0;
      if (liveFronts().length === 0) {
        await sleep(rand(500, 3000));
        await startFront();
        downMs = Date.now() - killedAt;
      }
      frontKills.push({ at: killedAt, how, downMs });
    }
  };

  const progress = async () => {
    while (requesting) {
      await sleep(15_000);
      if (!requesting) break;
      const by = (res: string) => requests.filter((r) => r.result === res).length;
      say(
        `requests ${requests.length} (accepted ${by('accepted')}, busy ${by('busy')}, errors ${by('error') + by('lost')}), ` +
          `tasks ended ${ended}, kills ${counters.kills.length}, nats restarts ${counters.natsRestarts.length}, ` +
          `ssh cuts ${counters.sshCuts.length}, executors ${executors.length}, ` +
          `batches ${requests.filter((r) => r.op === 'batchRestart').length}, task operations ${operations.length}, front kills ${frontKills.length}`,
      );
    }
  };

  const loops = [...s.sshd.hosts.map((h) => hostLoop(h.id, h.agentHome)), batchLoop(), opsLoop()];
  const injectors = [killer(), restarter(), cutter(), frontKiller()];
  const progressLoop = progress();
  // The driver's own health: a blocked event loop would stall every request and injector.
  let tick = Date.now();
  const stalls: number[] = [];
  const stallWatch = setInterval(() => {
    const lag = Date.now() - tick - 500;
    if (lag > 2000) {
      stalls.push(lag);
      say(`the driver itself stalled for ${(lag / 1000).toFixed(1)} s`);
    }
    tick = Date.now();
  }, 500);
  await Promise.all(injectors);
  injecting = false;
  clearInterval(stallWatch);
  say('chaos over: no more kills, restarts, cuts; waiting for the requests in flight');

  // ---------------------------------------------------------------- settle
  requesting = false;
  const settleBy = Date.now() + SETTLE_TASKS_MS;
  await Promise.race([Promise.all(loops), sleep(SETTLE_TASKS_MS)]);
  await progressLoop;
  while (executors.length < opts.executors) await startExecutor();
  if (liveFronts().length === 0) await startFront();
  let running: number[] = [];
  while (Date.now() < settleBy) {
    running = [];
    try {
      const t = (await kv()).tasks;
      for (const id of await taskIds(nc)) {
        const rec = await readJson<{ task: { id: number; status: string } }>(t, `task.${id}`);
        if (rec?.task.status === 'RUNNING') running.push(rec.task.id);
      }
      if (running.length === 0) break;
    } catch {
      // ask again
    }
    await sleep(1000);
  }
  say(running.length === 0 ? 'every task has ended' : `still RUNNING after the settle wait: ${running.join(', ')}`);
  const jsm = await nc.jetstreamManager();
  const slackBy = Date.now() + SETTLE_SLACK_MS;
  let quietSince = 0;
  while (Date.now() < slackBy) {
    try {
      const info = await jsm.consumers.info('OCP_EVENTS', 'notifier');
      if (info.num_pending === 0 && info.num_ack_pending === 0) {
        quietSince ||= Date.now();
        if (Date.now() - quietSince > 3000) break;
      } else quietSince = 0;
    } catch {
      quietSince = 0;
    }
    await sleep(250);
  }
  // Host locks: an ended task frees its hosts in its follow-up, which a killed executor's
  // successor repeats after the ack wait; give that a moment before calling a lock left behind.
  const locksBy = Date.now() + 20_000;
  let locks: Array<{ hostId: number; taskId: number }> = [];
  while (Date.now() < locksBy) {
    try {
      locks = await readLocks(nc);
      const ended = [];
      for (const l of locks) {
        const t = (await readTaskRecord(l.taskId))?.task;
        if (t && t.status !== 'RUNNING') ended.push(l);
      }
      if (ended.length === 0) break;
    } catch {
      // ask again
    }
    await sleep(1000);
  }
  say('notifier caught up; gathering the evidence');

  // ---------------------------------------------------------------- evidence
  const evidence = await gatherEvidence(s, f, nc);
  evidence.processes = [...procs.values()];
  evidence.locks = locks;
  // A click refused late (its warning after the soak stopped waiting) is refused all the same.
  for (const o of operations) {
    const url = clickUrls.get(o.id);
    const said = url ? f.responses.find((x) => x.url === url) : undefined;
    if (said && o.result !== 'refused')
      Object.assign(o, { result: 'refused', detail: String(said.body.text).slice(0, 200) });
  }
  evidence.operations = operations;
  if (opts.bashrc) evidence.bashrcRuns = s.sshd.bashrcRuns();
  writeFileSync(join(runDir, 'evidence.json'), JSON.stringify(evidence));
  mkdirSync(join(runDir, 'calls'), { recursive: true });
  for (const h of s.sshd.hosts) {
    const src = join(h.agentHome, 'calls.log');
    if (existsSync(src)) copyFileSync(src, join(runDir, 'calls', `${h.id}.log`));
  }
  const verdict = checkChaos(evidence);
  writeFileSync(join(runDir, 'breaches.json'), JSON.stringify(verdict.breaches, null, 2));

  // ---------------------------------------------------------------- report
  const wall = (Date.now() - t0) / 1000;
  const byDoor = (door: Door) => {
    const rs = requests.filter((r) => r.door === door);
    const n = (res: string) => rs.filter((r) => r.result === res).length;
    return `${rs.length} (accepted ${n('accepted')}, busy ${n('busy')}, rejected ${n('rejected')}, no answer ${n('error') + n('lost')})`;
  };
  const gaps = [tChaos, ...counters.kills, Math.min(chaosEnds, Date.now())].map((v, i, a) =>
    i === 0 ? 0 : v - a[i - 1]!,
  );
  const maxGap = Math.max(...gaps) / 1000;
  const cutsWithEffect = counters.sshCuts.filter((c) => c.processes > 0);
  const kills = counters.sshCuts.filter((c) => c.how === 'kill');
  const resets = counters.sshCuts.filter((c) => c.how === 'reset');
  const tasksUnder = (kind: Fault['kind']) =>
    evidence.tasks.filter((t) => {
      const from = Date.parse(t.task.startTime);
      return windows.some(
        (w) =>
          w.hostId === t.hostIds[0] &&
          w.faults.some((x) => x.kind === kind) &&
          w.from <= from &&
          (w.to ?? Number.POSITIVE_INFINITY) >= from,
      );
    }).length;

  const batches = requests.filter((r) => r.op === 'batchRestart');
  const clicks = operations.filter((o) => o.door === 'slack');
  /** Groups in which two users clicked the same button at once. */
  const twoUsersOneButton = new Set(
    clicks
      .filter((a) => clicks.some((b) => b !== a && b.group === a.group && b.op === a.op && b.user !== a.user))
      .map((a) => a.group),
  ).size;
  const tally = <T>(xs: T[], key: (x: T) => string) => {
    const m = new Map<string, number>();
    for (const x of xs) m.set(key(x), (m.get(key(x)) ?? 0) + 1);
    return [...m].map(([k, n]) => `${k} ${n}`).join(', ');
  };
  const byResult = (rs: RequestRecord[]) => {
    const n = (res: string) => rs.filter((r) => r.result === res).length;
    return `accepted ${n('accepted')}, busy ${n('busy')}, refused ${n('rejected')}, no answer ${n('error') + n('lost')}`;
  };
  const opResults = (os: OperationRecord[]) => {
    const n = (res: string) => os.filter((o) => o.result === res).length;
    return `ok ${n('ok')}, refused ${n('refused')}, no answer ${n('none')}`;
  };
  const minimums = {
    'executor kills': { got: counters.kills.length, need: Math.floor(opts.seconds / 15) },
    'longest time without a kill (s)': { got: maxGap, need: KILL_EVERY_MAX_MS / 1000, atMost: true },
    'nats-server restarts': { got: counters.natsRestarts.length, need: opts.seconds >= 180 ? 2 : 1 },
    'SSH cuts (connections killed)': { got: cutsWithEffect.length, need: 1 },
    'slow faults': { got: counters.faultsSet.slow, need: 1 },
    'fail faults': { got: counters.faultsSet.fail, need: 1 },
    'hang faults': { got: counters.faultsSet.hang, need: 1 },
    'executor processes at once': { got: opts.executors, need: 2 },
    'front/notifier kills': { got: frontKills.length, need: frontKillCount },
    'batches accepted': { got: batches.filter((r) => r.result === 'accepted').length, need: 1 },
    'button clicks': { got: clicks.length, need: 1 },
    'operations sent at once on one task (groups of 2+)': { got: opGroupSizes.filter((n) => n >= 2).length, need: 1 },
    'simulated hosts': { got: opts.hosts, need: 20 },
  } as Record<string, { got: number; need: number; atMost?: boolean }>;
  const short = Object.entries(minimums).filter(([, m]) => (m.atMost ? m.got > m.need : m.got < m.need));

  const counts = breachesByPromise(verdict.breaches);
  const ms = (v: number) => `${(v / 1000).toFixed(1)} s`;
  const logText = readdirSync(runDir)
    .filter((n) => n.startsWith('executor-') && n.endsWith('.log'))
    .map((n) => readFileSync(join(runDir, n), 'utf8'))
    .join('\n');
  const logged = (text: string) => logText.split(text).length - 1;
  const rows: Array<[string, string]> = [
    ['wall time', `${wall.toFixed(0)} s (chaos ${opts.seconds} s, then settling)`],
    [
      'hosts / executors',
      `${opts.hosts} simulated hosts behind sshd; ${opts.executors} executor processes + 1 front/notifier (2 while one is replaced)`,
    ],
    ['requests', `${requests.length} total`],
    ['  http', byDoor('http')],
    ['  nats (ocp.cmd)', byDoor('nats')],
    ['  nats (ocp.api)', byDoor('nats-api')],
    ['  slack (signed)', byDoor('slack')],
    [
      '  to busy hosts',
      `${intrusions} sent to a host in the middle of a task (refused unless it ended meanwhile: busy-refused judges)`,
    ],
    [
      'batches (2-5 hosts)',
      `${batches.length} (${tally(batches, (r) => r.door)}; ${byResult(batches)}); Slack confirmations ${batchStats.confirmations}: ` +
        `${batchStats.twoConfirms} Confirm double-clicked, ${batchStats.confirmAndCancel} Confirm then Cancel at once`,
    ],
    [
      'button clicks',
      `${clicks.length} (${tally(clicks, (o) => o.op) || 'none'}; ${opResults(clicks)}); ` +
        `${twoUsersOneButton} times two users clicked one button at once`,
    ],
    [
      'task operations',
      `${operations.length} in ${opGroups} groups on one task at once (sizes ${tally(opGroupSizes, String)}); ` +
        `${tally(operations, (o) => o.op)}; by ${tally(operations, (o) => o.door)}; ${opResults(operations)}; ` +
        `tasks set running again ${verdict.stats.reopens}`,
    ],
    [
      'front/notifier kills',
      `${frontKills.length} SIGKILL (${frontKills.map((k) => (k.how === 'alone' ? `alone, down ${(k.downMs / 1000).toFixed(1)} s` : 'beside a new one')).join('; ')}); ` +
        `${frontsStarted} fronts started in all; Slack posts repeated across a notifier death ${verdict.stats.slackRepeats}`,
    ],
    [
      'host locks after settling',
      `${evidence.locks?.length ?? 0} held (${verdict.stats.orphanLocks} by a task never stored; locks-freed judges the rest)`,
    ],
    [
      'tasks',
      `${verdict.stats.tasks} (${Object.entries(verdict.stats.byStatus)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}); outcome judged ${verdict.stats.judged}, unjudged ${verdict.stats.unjudged}; ` +
        `created without an answer seen ${verdict.stats.unannounced}`,
    ],
    [
      'executor kills',
      `${counters.kills.length} SIGKILL (longest gap ${maxGap.toFixed(1)} s, fewest left running ${Math.min(...leftAfterKill, opts.executors)}); ` +
        `${counters.executorsStarted} executors started in all, ` +
        `start-up ${(Math.min(...counters.startupMs) / 1000).toFixed(1)}–${(Math.max(...counters.startupMs) / 1000).toFixed(1)} s`,
    ],
    [
      'nats-server restarts',
      `${counters.natsRestarts.length} (${counters.natsRestarts.map((r) => `${r.how} ${(r.downMs / 1000).toFixed(1)} s`).join(', ')})`,
    ],
    [
      'SSH cuts',
      `${counters.sshCuts.length}: ${kills.length} times sshd sessions SIGKILLed (${kills.reduce((n, c) => n + c.processes, 0)} processes), ` +
        `${resets.length} times connections reset (${resets.reduce((n, c) => n + c.processes, 0)} RSTs)`,
    ],
    [
      'faults injected',
      `slow ${counters.faultsSet.slow}, fail ${counters.faultsSet.fail}, hang ${counters.faultsSet.hang} ` +
        `(tasks started under them: slow ${tasksUnder('slow')}, fail ${tasksUnder('fail')}, hang ${tasksUnder('hang')})`,
    ],
    ['agent calls / step runs', `${verdict.stats.calls} / ${verdict.stats.runs}`],
    [
      '~/.bashrc runs',
      evidence.bashrcRuns
        ? `${evidence.bashrcRuns.length} for ${new Set(evidence.bashrcRuns.map((r) => r.connection)).size} SSH connections (login-once judges)`
        : 'none (--no-bashrc)',
    ],
    [
      'step end → stored',
      `p50 ${ms(verdict.stats.recordLag.p50)}, p95 ${ms(verdict.stats.recordLag.p95)}, max ${ms(verdict.stats.recordLag.max)} ` +
        `(from the step's exit code on the host to its subtask's finishTime in the store)`,
    ],
    [
      'recoveries in the logs',
      `${logged('taking over a subtask left running')} takeovers of a running step, ` +
        `${logged('SSH step attempt failed')} SSH retries and ${logged('will attach to the step again')} re-attaches after a lost connection, ` +
        `${counters.executorRespawns} executor starts that failed and were retried`,
    ],
    [
      'the driver',
      stalls.length === 0
        ? 'never stalled (event loop lag < 2 s)'
        : `stalled ${stalls.length} times, longest ${(Math.max(...stalls) / 1000).toFixed(1)} s`,
    ],
    ['breaches by promise', ''],
    ...Object.entries(counts).map(
      ([p, n]) => [`  ${p}`, `${n}  — ${PROMISES[p as keyof typeof PROMISES]}`] as [string, string],
    ),
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log('');
  for (const b of verdict.breaches.slice(0, 40)) console.log(`BREACH [${b.promise}] ${b.message}`);
  if (verdict.breaches.length > 40) console.log(`… ${verdict.breaches.length - 40} more in ${runDir}/breaches.json`);
  for (const [name, m] of short) {
    console.log(`MINIMUM NOT MET: ${name}: ${m.got} (${m.atMost ? 'at most' : 'at least'} ${m.need})`);
  }
  console.log('');
  console.log(`${'─'.repeat(width + 2)}┬${'─'.repeat(60)}`);
  for (const [k, v] of rows) console.log(` ${k.padEnd(width)} │ ${v}`);
  console.log(`${'─'.repeat(width + 2)}┴${'─'.repeat(60)}`);
  const pass = verdict.breaches.length === 0 && short.length === 0;
  const keep = !pass || opts.keep;
  console.log(keep ? `run folder: ${runDir}` : `run folder removed (--keep keeps it)`);
  const summary =
    `${verdict.breaches.length} breaches, ${verdict.stats.tasks} tasks, ${requests.length} requests ` +
    `(${batches.length} batches), ${clicks.length} clicks, ${operations.length} task operations, ` +
    `${counters.kills.length} kills, ${frontKills.length} front kills, ${counters.natsRestarts.length} nats restarts, ` +
    `${counters.sshCuts.length} SSH cuts, ${counters.faultsSet.slow + counters.faultsSet.fail + counters.faultsSet.hang} faults`;
  const shortText = short.length > 0 ? `; minimums not met: ${short.map(([n]) => n).join(', ')}` : '';
  // Cleanup before the verdict, so the verdict is the last line.
  onCrash = () => undefined;
  for (const rec of procs.values()) rec.killedBySoak = true;
  await s.stop().catch(() => undefined);
  stack = undefined;
  await f.stop().catch(() => undefined);
  fake = undefined;
  if (!keep) rmSync(runDir, { recursive: true, force: true });
  console.log(pass ? `VERDICT: PASS — ${summary}` : `VERDICT: FAIL — ${summary}${shortText}`);
  return pass ? 0 : 1;
}

// ------------------------------------------------------------------ SSH cuts

/** /proc/net/tcp's form of an IPv4 address: the bytes in host (little-endian) order, hex. */
function procAddress(ip: string): string {
  return ip
    .split('.')
    .reverse()
    .map((b) => Number(b).toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
}

/**
 * Reset (TCP RST, `ss -K`) the established SSH connections to these host
 * addresses: the client reads ECONNRESET. Returns how many were reset.
 */
function resetSsh(addresses: string[], port: number): number {
  let n = 0;
  for (const a of addresses) {
    const r = spawnSync('ss', ['-K', '-t', 'state', 'established', 'src', a, 'sport', '=', `:${port}`], {
      encoding: 'utf8',
      timeout: 5000,
    });
    n += Math.max(0, r.stdout.trim().split('\n').length - 1);
  }
  return n;
}

/**
 * SIGKILL the sshd processes holding established connections to these host
 * addresses (never the listeners): the executor's SSH connection to the host
 * drops in the middle of whatever it was doing. Returns how many were killed.
 */
function cutSsh(addresses: string[], port: number, listeners: number[]): number {
  const wanted = new Set(addresses.map((a) => `${procAddress(a)}:${port.toString(16).padStart(4, '0').toUpperCase()}`));
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 9 && wanted.has(f[1]!) && f[3] === '01') inodes.add(f[9]!);
  }
  if (inodes.size === 0) return 0;
  const victims: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (listeners.includes(pid)) continue;
    try {
      if (!readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('sshd')) continue;
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m && inodes.has(m[1]!)) {
          victims.push(pid);
          break;
        }
      }
    } catch {
      // gone meanwhile
    }
  }
  for (const pid of victims) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  return victims.length;
}

// ------------------------------------------------------------------ evidence

/**
 * Every task id the soak can know of: the store's keys, the tasks named by the
 * event stream and the accepted answers. (nats.js's kv.keys() iterator ends
 * early when its consumer is slow: keys are read first, bodies after.)
 */
async function taskIds(nc: NatsConnection): Promise<number[]> {
  const ids = new Set<number>();
  const kv = await nc.jetstream().views.kv('ocp_tasks');
  const keys: string[] = [];
  for await (const k of await kv.keys('task.*')) keys.push(k);
  for (const k of keys) ids.add(Number(k.slice('task.'.length)));
  for (const r of requests) if (r.result === 'accepted' && r.taskId !== undefined) ids.add(r.taskId);
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info('OCP_EVENTS', { subjects_filter: 'ocp.events.task.>' });
  for (const subject of Object.keys(info.state.subjects ?? {})) ids.add(Number(subject.split('.').at(-1)));
  return [...ids].filter((n) => Number.isInteger(n) && n > 0).sort((a, b) => a - b);
}

/** ocp_host_locks: every host lock and the task it names. */
async function readLocks(nc: NatsConnection): Promise<Array<{ hostId: number; taskId: number }>> {
  const kv = await nc.jetstream().views.kv('ocp_host_locks');
  const keys: string[] = [];
  for await (const k of await kv.keys('host.*')) keys.push(k);
  const locks: Array<{ hostId: number; taskId: number }> = [];
  for (const k of keys) {
    const e = await kv.get(k);
    if (e?.operation !== 'PUT') continue;
    const v = JSON.parse(new TextDecoder().decode(e.value)) as { taskId: number };
    locks.push({ hostId: Number(k.slice('host.'.length)), taskId: v.taskId });
  }
  return locks;
}

async function gatherEvidence(s: Stack, f: FakeSlack, nc: NatsConnection): Promise<ChaosEvidence> {
  const js = nc.jetstream();
  const dec = new TextDecoder();
  const tasksKv = await js.views.kv('ocp_tasks');
  const store = createTaskStore({ kv: tasksKv, js });
  const logsKv = await js.views.kv('ocp_logs');

  const tasks: TaskEvidence[] = [];
  for (const id of await taskIds(nc)) {
    const rec = (await store.get(id))?.record;
    if (!rec) continue;
    // A batch's chains, raw: each numbers its events on its own.
    const chainEventSeqs: Record<string, number> = {};
    if (rec.layout === 'chains') {
      for (const chain of new Set(rec.task.subtasks.map((st) => st.parallelIdx))) {
        const c = await tasksKv.get(`task.${id}.c.${chain}`);
        if (c?.operation === 'PUT') chainEventSeqs[String(chain)] = (c.json() as { eventSeq: number }).eventSeq;
      }
    }
    const errors: Record<string, string | undefined> = {};
    for (const st of rec.task.subtasks) {
      if (st.status !== 'FAILED') continue;
      const l = await logsKv.get(`log.${rec.task.id}.${st.id}`);
      errors[String(st.id)] =
        l && l.operation === 'PUT' ? (JSON.parse(dec.decode(l.value)) as { error?: string }).error : undefined;
    }
    const hostOfSubtask: Record<string, number> = {};
    for (const [id, step] of Object.entries(rec.steps)) hostOfSubtask[id] = step.hostId;
    tasks.push({
      task: rec.task,
      hostIds: [...new Set(Object.values(rec.steps).map((st) => st.hostId))],
      hostOfSubtask,
      // HTTP and NATS tasks go to slack.defaultChannel, Slack ones to the command's channel.
      channel: rec.origin?.channel ?? DEFAULT_CHANNEL,
      errors,
      eventSeq: rec.eventSeq,
      ...(rec.layout === 'chains' ? { chainEventSeqs } : {}),
    });
  }
  tasks.sort((a, b) => a.task.id - b.task.id);

  // The whole event stream, in order.
  const events: Record<string, EventRecord[]> = {};
  const requestEvents: Record<string, RequestEventRecord[]> = {};
  await readEventStream(nc, (m) => {
    if (m.subject.startsWith('ocp.events.task.')) {
      const ev = m.json<{
        taskId: number;
        seq: number;
        type: string;
        status: string;
        subtaskId?: number;
        chain?: number;
        at?: string;
      }>();
      const list = events[String(ev.taskId)] ?? [];
      const at = ev.at ? Date.parse(ev.at) : Number.NaN;
      list.push({
        seq: ev.seq,
        type: ev.type,
        status: ev.status,
        ...(ev.subtaskId !== undefined ? { subtaskId: ev.subtaskId } : {}),
        ...(ev.chain !== undefined ? { chain: ev.chain } : {}),
        ...(Number.isFinite(at) ? { at } : {}),
      });
      events[String(ev.taskId)] = list;
    } else if (m.subject.startsWith('ocp.events.request.')) {
      const ev = m.json<{ type: string; requestId: string; taskId?: number }>();
      const list = requestEvents[ev.requestId] ?? [];
      list.push({ type: ev.type, ...(ev.taskId !== undefined ? { taskId: ev.taskId } : {}) });
      requestEvents[ev.requestId] = list;
    }
  });

  // The agents: call logs and run files.
  const hosts = s.sshd.hosts.map((h) => {
    const logFile = join(h.agentHome, 'calls.log');
    const calls: AgentCallRecord[] = existsSync(logFile) ? parseAgentLog(readFileSync(logFile, 'utf8')) : [];
    const runsDir = join(h.agentHome, '.ocp-chatops', 'runs');
    const runs: RunRecord[] = [];
    if (existsSync(runsDir)) {
      for (const file of readdirSync(runsDir)) {
        if (!file.endsWith('.claim')) continue;
        const key = file.slice(0, -'.claim'.length);
        const parsed = parseRunKey(key);
        if (!parsed) continue;
        const p = (ext: string) => join(runsDir, `${key}.${ext}`);
        const text = (ext: string) => (existsSync(p(ext)) ? readFileSync(p(ext), 'utf8').trim() : undefined);
        const sid = text('pid');
        const rc = text('rc');
        runs.push({
          key,
          ...parsed,
          ...(sid ? { sid: Number(sid) } : {}),
          claimedAt: statSync(p('claim')).mtimeMs,
          ...(rc !== undefined ? { endedAt: statSync(p('rc')).mtimeMs, rc: Number(rc) } : {}),
          ...(text('why') !== undefined ? { why: text('why') } : {}),
        });
      }
    }
    return { hostId: h.id, calls, runs };
  });

  // Slack: each task's parents, and the thread of the one the notifier kept (ocp_slack says which).
  const slack: Record<string, SlackThreadEvidence> = {};
  const postedAt = new Map<string, number>();
  for (const c of f.callsTo('chat.postMessage')) {
    const b = c.body as { ok?: boolean; ts?: string } | undefined;
    if (b?.ok && b.ts) postedAt.set(b.ts, c.at);
  }
  const view = (m: { ts: string; text?: string; blocks?: unknown[] }) => ({
    ts: m.ts,
    text: m.text ?? '',
    blocks: JSON.stringify(m.blocks ?? []),
    ...(postedAt.has(m.ts) ? { at: postedAt.get(m.ts) } : {}),
  });
  const threadsKv = await js.views.kv('ocp_slack');
  const channels = new Map<string, ReturnType<FakeSlack['channel']>>();
  for (const t of tasks) {
    if (!t.channel) continue;
    if (!channels.has(t.channel)) channels.set(t.channel, f.channel(t.channel));
    const marker = `Task *${t.task.id}*`;
    const parents = (channels.get(t.channel) ?? []).filter(
      (m) => m.thread_ts === undefined && JSON.stringify(m.blocks ?? []).includes(marker),
    );
    const threads = parents.map((p) => f.thread(t.channel as string, p.ts));
    let kept = -1;
    try {
      const e = await threadsKv.get(`task.${t.task.id}`);
      const ts =
        e?.operation === 'PUT' ? (JSON.parse(dec.decode(e.value)) as { parentTs?: string }).parentTs : undefined;
      kept = parents.findIndex((p) => p.ts === ts);
    } catch {
      // no record: judged by its replies
    }
    if (kept < 0) {
      kept = 0;
      threads.forEach((th, i) => {
        if (th.length > (threads[kept]?.length ?? 0)) kept = i;
      });
    }
    const stray = threads.flatMap((th, i) => (i === kept ? [] : th.map(view)));
    slack[String(t.task.id)] = {
      parents: parents.map(view),
      replies: (threads[kept] ?? []).map(view),
      threadOf: kept,
      ...(stray.length > 0 ? { strayReplies: stray } : {}),
    };
  }

  for (const r of requests) {
    if (r.door !== 'slack') continue;
    // The response_urls of a Slack request: its slash command's, and its clicks' for a batch.
    const urls = slackResponseUrls.get(r.id) ?? [];
    r.responses = f.responses.filter((x) => urls.includes(x.url)).map((x) => String(x.body.text ?? ''));
  }

  return {
    hosts,
    tasks,
    events,
    requestEvents,
    slack,
    faults: windows,
    requests,
    killGraceSeconds: KILL_GRACE_SECONDS,
  };
}

/** Slack requests: the response_urls of their slash command and of their clicks. */
const slackResponseUrls = new Map<string, string[]>();

/** POST a signed body to a Slack endpoint as Slack does, bounded in time. */
async function slackPost(url: string, body: string, ms = 20_000): Promise<{ status: number; text: string }> {
  const timestamp = Math.floor(Date.now() / 1000);
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': slackSignature(SIGNING_SECRET, timestamp, body),
      'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
    },
    body,
    signal: AbortSignal.timeout(ms),
  });
  return { status: res.status, text: await res.text() };
}

// ------------------------------------------------------------------ go

const watchdog = setTimeout(
  () => {
    console.log('VERDICT: FAIL — the soak itself did not finish in time (watchdog)');
    process.exit(3);
  },
  (opts.seconds + 600) * 1000,
);
watchdog.unref();

main()
  .then(async (code) => {
    process.exit(code);
  })
  .catch(async (err) => {
    console.error(err);
    await stack?.stop().catch(() => undefined);
    await fake?.stop().catch(() => undefined);
    console.log(`VERDICT: FAIL — the soak could not run: ${(err as Error).message.split('\n')[0]}`);
    process.exit(2);
  });
