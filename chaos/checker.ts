/**
 * The chaos soak's judge: pure functions from the evidence a soak leaves
 * behind — the simulated agents' call logs and run files, the task store, the
 * event stream, the Slack fake's threads, the requests sent and the fault plan
 * — to the list of broken promises (SPEC §7, §4, §5). No I/O: chaos/run.ts
 * gathers the evidence, test/unit/chaos-checker.test.ts feeds doctored copies.
 */
import type { OcpSubtask, OcpTask } from '../src/contracts/ocp-task.js';

// ------------------------------------------------------------------ promises

export const PROMISES = {
  outcome: 'every accepted request ended SUCCESSFUL or FAILED as its host faults dictate',
  'step-once': 'no step ran twice at once',
  'host-exclusive': 'no two operations overlapped on one host',
  'busy-refused': 'a request to a host whose task runs is refused',
  'dag-order': 'a subtask started only after its upstreams succeeded',
  events: 'every state change is on the stream once, in order',
  'slack-thread': "every task's events reached its Slack thread in order",
  settled: 'nothing left RUNNING',
  'no-crash': 'no service process died on its own',
  'login-once': "the login shell's start-up (~/.bashrc) ran once per SSH connection",
  'error-answer': 'nothing ran for a request or task operation answered with an error',
  'one-task': 'one request made at most one task',
  'locks-freed': 'no host lock is held by an ended task once everything settled',
  'batch-answer': 'a Slack batch confirmation never says "not started" for a batch that started',
} as const;
export type PromiseName = keyof typeof PROMISES;

export interface Breach {
  promise: PromiseName;
  message: string;
  taskId?: number;
  hostId?: number;
}

// ------------------------------------------------------------------ evidence

/** One ocp_agentctl invocation from a host's calls.log. */
export interface AgentCallRecord {
  pid: number;
  /** Session id of the caller: the step's wrapper (the run's .pid file), when the log says. */
  sid?: number;
  args: string;
  begin: number;
  /** Absent when the call never wrote its end line (hung, killed). */
  end?: number;
  exit?: number;
}

/** One run of a step on a host, from `<stateDir>/runs/<key>.*`. */
export interface RunRecord {
  key: string;
  epoch: string;
  taskId: number;
  subtaskId: number;
  runTime: number;
  /** The wrapper's pid = the step's session id (.pid file). */
  sid?: number;
  /** mtime of .claim (ms). */
  claimedAt: number;
  /** mtime of .rc (ms); absent while the step runs. */
  endedAt?: number;
  rc?: number;
  /** The wrapper's verdict: timeout, canceled, vanished, or empty. */
  why?: string;
}

export interface HostEvidence {
  hostId: number;
  calls: AgentCallRecord[];
  runs: RunRecord[];
}

export interface TaskEvidence {
  task: OcpTask;
  /** Hosts the task's subtasks ran on (record.steps[].hostId). */
  hostIds: number[];
  /** Subtask id -> host id. */
  hostOfSubtask: Record<string, number>;
  /** Where its Slack thread should be: the request's channel or slack.defaultChannel. */
  channel?: string;
  /** Subtask id -> why it failed (ocp_logs error), for FAILED subtasks. */
  errors: Record<string, string | undefined>;
  /** The record's eventSeq: how many events the task has produced (a batch: its head's own). */
  eventSeq: number;
  /** A batch stored per host chain: each chain's eventSeq, by chain (its events are numbered on their own). */
  chainEventSeqs?: Record<string, number>;
}

export interface EventRecord {
  seq: number;
  type: string;
  status: string;
  subtaskId?: number;
  /** A batch's chain event: numbered in that chain's own sequence. */
  chain?: number;
  /** The event's `at` (ms). */
  at?: number;
}

export interface SlackMessageView {
  ts: string;
  text: string;
  /** JSON of the blocks (what a user sees beside the text). */
  blocks: string;
  /** When Slack got the post (ms). */
  at?: number;
}

export interface SlackThreadEvidence {
  /** Top-level messages (not replies) that name the task, in posting order: its parent, once. */
  parents: SlackMessageView[];
  /**
   * Replies in the thread of the parent the notifier kept (the one with the
   * most replies; the first when none has any), in posting order.
   */
  replies: SlackMessageView[];
  /** Index in `parents` of the parent whose thread `replies` is (default 0). */
  threadOf?: number;
  /** Replies under any other parent: a thread split in two. */
  strayReplies?: SlackMessageView[];
}

export type AgentCommandName = 'status' | 'stop' | 'start' | 'restart';
export interface Fault {
  cmd: AgentCommandName;
  kind: 'slow' | 'fail' | 'hang';
  /** slow only. */
  seconds?: number;
}

/** The faults set on a host from `from` until `to` (ms); the plan is a list of these. */
export interface FaultWindow {
  hostId: number;
  from: number;
  to?: number;
  faults: Fault[];
}

export type Door = 'http' | 'nats' | 'nats-api' | 'slack';
export interface RequestRecord {
  id: string;
  door: Door;
  /** batchRestart: HTTP batchRestartAgents, ocp.api.agent.batchRestart, or Slack `restart h1,h2` and a Confirm click. */
  op: 'restart' | 'stop' | 'start' | 'batchRestart';
  /** The first (or only) host. */
  hostId: number;
  /** Every host of a batch. */
  hostIds?: number[];
  /** Its mark: the request's reason is `chaos <tag>`, so its task is known by it. */
  tag?: string;
  /**
   * The product answered it (HTTP status, NATS envelope, request entry, Slack
   * response): an error answer is then one that must leave nothing that runs.
   * Absent or false: no answer was seen (connection refused, timeout).
   */
  answered?: boolean;
  sentAt: number;
  /** When its answer (or, for NATS and Slack, its settled request entry) was seen. */
  answeredAt?: number;
  /** accepted: a task; busy: 40000; rejected: another refusal; error: no answer (NATS away…); lost: never heard of. */
  result: 'accepted' | 'busy' | 'rejected' | 'error' | 'lost';
  taskId?: number;
  detail?: string;
  /** Slack: texts posted to the command's response_url. */
  responses?: string[];
}

/** A service process of the soak (front or executor). */
export interface ProcessRecord {
  name: string;
  roles: string;
  pid: number;
  /** It said it was up (ready / executor started); one that exits before is a refused start. */
  started: boolean;
  /** The soak ended it (SIGKILL chaos, or a start that did not come up). */
  killedBySoak: boolean;
  exitedAt?: number;
  code?: number | null;
  signal?: string | null;
  /** The end of its output, when it exited. */
  tail?: string;
}

export type OperationName = 'retry' | 'rollback' | 'skip' | 'cancel' | 'subtask-retry';

/** A task operation the soak sent (HTTP, ocp.api, or a Slack button click), often several at once. */
export interface OperationRecord {
  id: string;
  /** Operations sent at once on one task share a group. */
  group: number;
  door: 'http' | 'nats-api' | 'slack';
  op: OperationName;
  taskId: number;
  subtaskId?: number;
  /** Slack: who clicked. */
  user?: string;
  sentAt: number;
  answeredAt?: number;
  /**
   * ok: answered with the task; refused: answered with an error (HTTP non-2xx,
   * NATS error envelope, a Slack warning on the click's response_url); none: no
   * answer seen (no connection, timeout; a click that worked gets no answer).
   */
  result: 'ok' | 'refused' | 'none';
  detail?: string;
}

export interface RequestEventRecord {
  type: string;
  taskId?: number;
}

export interface ChaosEvidence {
  hosts: HostEvidence[];
  tasks: TaskEvidence[];
  /** Task id -> its events on OCP_EVENTS, in stream order. */
  events: Record<string, EventRecord[]>;
  /** Request id -> its events on ocp.events.request.<id>, in stream order. */
  requestEvents: Record<string, RequestEventRecord[]>;
  /** Task id -> its Slack thread. */
  slack: Record<string, SlackThreadEvidence>;
  faults: FaultWindow[];
  requests: RequestRecord[];
  /** Seconds a "Stop all" waits before kill -9 (ssh.killGraceSeconds). */
  killGraceSeconds: number;
  processes?: ProcessRecord[];
  /**
   * Every run of the hosts' ~/.bashrc, with the SSH_CONNECTION it served
   * ("client-ip client-port server-ip server-port"; absent with --no-bashrc).
   */
  bashrcRuns?: Array<{ connection: string; shlvl: string; pid: number }>;
  /** Task operations sent (retry, skip, rollback, cancel). */
  operations?: OperationRecord[];
  /** ocp_host_locks once everything settled: host -> the task holding it. */
  locks?: Array<{ hostId: number; taskId: number }>;
}

export interface ChaosVerdict {
  breaches: Breach[];
  stats: {
    tasks: number;
    byStatus: Record<string, number>;
    /** Tasks whose expected outcome was known and compared. */
    judged: number;
    /** Tasks whose host faults changed during them (or too close to a timeout to say). */
    unjudged: number;
    /** Tasks in the store no request of the soak got an answer for (an answer lost to a NATS restart). */
    unannounced: number;
    calls: number;
    runs: number;
    /** From a step's exit code on the host to its subtask's finishTime in the store (ms). */
    recordLag: { p50: number; p95: number; max: number };
    /** Tasks set running again (task.running after the first event). */
    reopens: number;
    /** Slack posts made twice because a notifier died between posting and recording (allowed). */
    slackRepeats: number;
    /** Host locks held by a task that was never stored (a create cut short; replaced once older than the lease). */
    orphanLocks: number;
  };
}

// ------------------------------------------------------------------ parsing

/**
 * calls.log of the simulated agent: `begin <ms> <pid> <args…>`, `sess <pid> <sid>`,
 * `end <ms> <pid> <exit> <args…>`. A begin is closed by the next end of its pid.
 */
export function parseAgentLog(text: string): AgentCallRecord[] {
  const calls: AgentCallRecord[] = [];
  const open = new Map<number, AgentCallRecord>();
  for (const line of text.split('\n')) {
    const parts = line.split(' ');
    const [phase] = parts;
    if (phase === 'begin') {
      const call: AgentCallRecord = { pid: Number(parts[2]), begin: Number(parts[1]), args: parts.slice(3).join(' ') };
      calls.push(call);
      open.set(call.pid, call);
    } else if (phase === 'sess') {
      const call = open.get(Number(parts[1]));
      if (call) call.sid = Number(parts[2]);
    } else if (phase === 'end') {
      const pid = Number(parts[2]);
      const call = open.get(pid);
      if (call) {
        call.end = Number(parts[1]);
        call.exit = Number(parts[3]);
        open.delete(pid);
      }
    }
  }
  return calls;
}

/** `<epoch>-<taskId>-<subtaskId>-<runTime>` (src/executor/run-subtask.ts). */
export function parseRunKey(key: string): Pick<RunRecord, 'epoch' | 'taskId' | 'subtaskId' | 'runTime'> | undefined {
  const m = /^([0-9a-f]+)-([0-9]+)-([0-9]+)-([0-9]+)$/.exec(key);
  if (!m) return undefined;
  return { epoch: m[1]!, taskId: Number(m[2]), subtaskId: Number(m[3]), runTime: Number(m[4]) };
}

// ------------------------------------------------------------------ expected outcome

type OnFail = 'ignore' | 'fail' | 'loop';
interface CallPlan {
  cmd: AgentCommandName;
  onFail: OnFail;
}

/**
 * What each default step (src/core/runbooks/builtin.ts) asks of ocp_agentctl,
 * and what a failing call does to it: ignored (Prepare keeps status output
 * whatever its exit; "Stop all" goes on to wait and kill -9), fails the step,
 * or is polled until it succeeds (Start all waits for status to exit 0).
 */
function stepPlan(runbook: string, step: string): CallPlan[] | undefined {
  if (step.startsWith('Prepare ')) return [{ cmd: 'status', onFail: 'ignore' }];
  switch (step) {
    case 'Restart pos proxy':
      return [{ cmd: 'restart', onFail: 'fail' }];
    case 'Stop all OCP agent processes':
      return [{ cmd: 'stop', onFail: 'ignore' }];
    case 'Start all OCP agent processes':
      return [
        { cmd: 'start', onFail: 'fail' },
        { cmd: 'status', onFail: 'loop' },
        { cmd: 'status', onFail: 'fail' },
      ];
    case 'Finish OCP agent operation':
      // After a stop, Finish reads status and only fails on a process still running.
      return [{ cmd: 'status', onFail: runbook === 'Stop OCP agent' ? 'ignore' : 'fail' }];
    default:
      return undefined;
  }
}

export type Expected =
  | { status: 'SUCCESSFUL' }
  | { status: 'FAILED'; subtask: string; reason: 'timeout' | 'exit' }
  | { status: 'unknown'; why: string };

/** A chain task's subtasks in run order. */
function chainOrder(task: OcpTask): OcpSubtask[] {
  return [...task.subtasks].sort((a, b) => a.seriesId - b.seriesId);
}

/**
 * The outcome a single-host task must have on a host with these faults. A slow
 * step whose added delay comes within 40 % of its timeout is too close to call.
 */
export function expectedOutcome(task: OcpTask, faults: Fault[], killGraceSeconds = 0): Expected {
  if (task.context.parallel) return { status: 'unknown', why: 'batch tasks are not modelled' };
  const fault = (cmd: AgentCommandName, kind: Fault['kind']) => faults.find((f) => f.cmd === cmd && f.kind === kind);
  for (const s of chainOrder(task)) {
    const plan = stepPlan(task.name, s.name);
    if (!plan) return { status: 'unknown', why: `step "${s.name}" is not modelled` };
    let delay = s.name === 'Stop all OCP agent processes' && fault('stop', 'fail') ? killGraceSeconds : 0;
    for (const call of plan) {
      if (fault(call.cmd, 'hang')) return { status: 'FAILED', subtask: s.name, reason: 'timeout' };
      delay += fault(call.cmd, 'slow')?.seconds ?? 0;
      if (fault(call.cmd, 'fail')) {
        if (call.onFail === 'fail') return { status: 'FAILED', subtask: s.name, reason: 'exit' };
        if (call.onFail === 'loop') return { status: 'FAILED', subtask: s.name, reason: 'timeout' };
      }
    }
    if (delay >= s.timeout) return { status: 'FAILED', subtask: s.name, reason: 'timeout' };
    if (delay > s.timeout * 0.6) return { status: 'unknown', why: `"${s.name}" slowed ${delay} s of ${s.timeout} s` };
  }
  return { status: 'SUCCESSFUL' };
}

// ------------------------------------------------------------------ the checks

const num = (n: number | undefined) => (n === undefined ? '∞' : String(n));

function describeFaults(faults: Fault[]): string {
  return faults.length === 0
    ? 'no faults'
    : faults.map((f) => `${f.kind}-${f.cmd}${f.seconds !== undefined ? `(${f.seconds}s)` : ''}`).join(', ');
}

interface Interval {
  from: number;
  to: number;
}
const overlaps = (a: Interval, b: Interval) => a.from < b.to && b.from < a.to;

/** Calls with their end known: a call killed mid-way (no end line) ends when its run ended. */
function callIntervals(host: HostEvidence): Array<{ call: AgentCallRecord; run?: RunRecord } & Interval> {
  const runBySid = new Map<number, RunRecord>();
  for (const r of host.runs) if (r.sid !== undefined) runBySid.set(r.sid, r);
  return host.calls.map((call) => {
    const run = call.sid === undefined ? undefined : runBySid.get(call.sid);
    const to = call.end ?? run?.endedAt ?? Number.POSITIVE_INFINITY;
    return { call, ...(run ? { run } : {}), from: call.begin, to };
  });
}

/** Whether the subtask of a run ended FAILED at that run: its chain came to rest and its host was freed. */
function runFailed(task: OcpTask | undefined, r: RunRecord): boolean {
  const s = task?.subtasks.find((x) => x.id === r.subtaskId);
  if (!s) return r.rc !== undefined && r.rc !== 0;
  if (r.runTime < s.runTime) return true; // it ran again: it had failed
  return s.status === 'FAILED' || s.operation === 'SKIP';
}

/**
 * A stretch in which a task held a host: from its first step there to the end of
 * the step after which its chain came to rest (a FAILED subtask). A retry, skip
 * or rollback takes the host again: a new hold.
 */
export interface Hold {
  taskId: number;
  hostId: number;
  from: number;
  to: number;
  /** The task's first hold of this host (it was taken when the task was created). */
  first: boolean;
}

export function holdsOnHost(host: HostEvidence, tasksById: ReadonlyMap<number, TaskEvidence>): Hold[] {
  const byTask = new Map<number, RunRecord[]>();
  for (const r of host.runs) byTask.set(r.taskId, [...(byTask.get(r.taskId) ?? []), r]);
  const holds: Hold[] = [];
  for (const [taskId, runs] of byTask) {
    const task = tasksById.get(taskId)?.task;
    let current: Hold | undefined;
    for (const r of [...runs].sort((a, b) => a.claimedAt - b.claimedAt)) {
      const to = r.endedAt ?? Number.POSITIVE_INFINITY;
      if (current) {
        current.to = Math.max(current.to, to);
      } else {
        current = {
          taskId,
          hostId: host.hostId,
          from: r.claimedAt,
          to,
          first: holds.every((h) => h.taskId !== taskId),
        };
        holds.push(current);
      }
      if (runFailed(task, r)) current = undefined;
    }
  }
  return holds;
}

function checkHosts(e: ChaosEvidence, breaches: Breach[]): void {
  const tasksById = new Map(e.tasks.map((t) => [t.task.id, t]));
  for (const host of e.hosts) {
    const hostId = host.hostId;
    const intervals = callIntervals(host);

    // no two agentctl calls at once on one host
    const sorted = [...intervals].sort((a, b) => a.from - b.from);
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length; j++) {
        const a = sorted[i]!;
        const b = sorted[j]!;
        if (b.from >= a.to) break;
        if (!overlaps(a, b)) continue;
        // Within one run (one step's own calls) calls are sequential by construction; two runs at once is the breach.
        breaches.push({
          promise: 'host-exclusive',
          hostId,
          ...(a.run ? { taskId: a.run.taskId } : {}),
          message:
            `host ${hostId}: "${a.call.args}" (pid ${a.call.pid}, ${a.run?.key ?? `session ${num(a.call.sid)}`}, ` +
            `${a.from}–${a.call.end ?? `${num(Number.isFinite(a.to) ? Math.round(a.to) : undefined)} (no end line; its run's end)`}) overlaps "${b.call.args}" (pid ${b.call.pid}, ${b.run?.key ?? `session ${num(b.call.sid)}`}, ` +
            `${b.from}–${b.call.end ?? `${num(Number.isFinite(b.to) ? Math.round(b.to) : undefined)} (no end line; its run's end)`})`,
        });
      }
    }

    // no two tasks' operations interleaved on one host: a task holds the host from
    // its first step there to the end of the step after which its chain came to rest
    const holds = holdsOnHost(host, tasksById);
    const byStart = [...holds].sort((a, b) => a.from - b.from);
    for (let i = 0; i < byStart.length; i++) {
      for (let j = i + 1; j < byStart.length; j++) {
        const a = byStart[i]!;
        const b = byStart[j]!;
        if (b.from >= a.to) break;
        if (a.taskId === b.taskId) continue;
        breaches.push({
          promise: 'host-exclusive',
          hostId,
          taskId: b.taskId,
          message: `host ${hostId}: task ${b.taskId} ran steps (${b.from}–${num(b.to)}) while task ${a.taskId} was still at work (${a.from}–${num(a.to)})`,
        });
      }
    }

    // one launch per step run; runs of one subtask never at once
    const sessionsOfRun = new Map<string, Set<number>>();
    const runOfSid = new Map<number, RunRecord>();
    for (const r of host.runs) if (r.sid !== undefined) runOfSid.set(r.sid, r);
    for (const { call } of intervals) {
      if (call.sid === undefined) continue;
      const run = runOfSid.get(call.sid);
      if (!run) continue;
      const set = sessionsOfRun.get(run.key) ?? new Set<number>();
      set.add(call.sid);
      sessionsOfRun.set(run.key, set);
    }
    for (const [key, sids] of sessionsOfRun) {
      if (sids.size > 1) {
        const run = host.runs.find((r) => r.key === key);
        breaches.push({
          promise: 'step-once',
          hostId,
          ...(run ? { taskId: run.taskId } : {}),
          message: `host ${hostId}: run ${key} was launched in ${sids.size} sessions (${[...sids].join(', ')})`,
        });
      }
    }
    const runsOfSubtask = new Map<string, RunRecord[]>();
    for (const r of host.runs) {
      const k = `${r.taskId}/${r.subtaskId}`;
      runsOfSubtask.set(k, [...(runsOfSubtask.get(k) ?? []), r]);
    }
    for (const [k, runs] of runsOfSubtask) {
      for (let i = 0; i < runs.length; i++) {
        for (let j = i + 1; j < runs.length; j++) {
          const a = runs[i]!;
          const b = runs[j]!;
          const ia = { from: a.claimedAt, to: a.endedAt ?? Number.POSITIVE_INFINITY };
          const ib = { from: b.claimedAt, to: b.endedAt ?? Number.POSITIVE_INFINITY };
          if (overlaps(ia, ib)) {
            breaches.push({
              promise: 'step-once',
              hostId,
              taskId: a.taskId,
              message: `host ${hostId}: subtask ${k} ran as ${a.key} and ${b.key} at the same time`,
            });
          }
        }
      }
    }

    // a call from a session that is not a step of the product: something ran agentctl behind its back
    for (const { call, run } of intervals) {
      if (call.sid !== undefined && !run) {
        breaches.push({
          promise: 'host-exclusive',
          hostId,
          message: `host ${hostId}: "${call.args}" at ${call.begin} came from session ${call.sid}, which is no step run`,
        });
      }
    }
  }
}

/** The one fault window covering every instant of [from, to] on the host; undefined when several did. */
function windowFor(e: ChaosEvidence, hostId: number, from: number, to: number): FaultWindow | undefined | 'none' {
  const ws = e.faults.filter((w) => w.hostId === hostId && w.from <= to && (w.to ?? Number.POSITIVE_INFINITY) >= from);
  if (ws.length === 0) return 'none';
  if (ws.length > 1) return undefined;
  const w = ws[0]!;
  return w.from <= from && (w.to ?? Number.POSITIVE_INFINITY) >= to ? w : undefined;
}

/** Whether an operator acted on the task (its outcome is then no longer the faults' alone). */
function operatedOn(e: ChaosEvidence, task: OcpTask): boolean {
  return (
    task.operation !== 'EXECUTE' ||
    task.subtasks.some((s) => s.operation !== 'EXECUTE' || s.runTime > 1) ||
    (e.operations ?? []).some((o) => o.taskId === task.id)
  );
}

function checkTasks(e: ChaosEvidence, breaches: Breach[], stats: ChaosVerdict['stats']): void {
  const runsByTask = new Map<number, RunRecord[]>();
  const callsByTask = new Map<number, AgentCallRecord[]>();
  for (const host of e.hosts) {
    for (const r of host.runs) runsByTask.set(r.taskId, [...(runsByTask.get(r.taskId) ?? []), r]);
    for (const { call, run } of callIntervals(host)) {
      if (run) callsByTask.set(run.taskId, [...(callsByTask.get(run.taskId) ?? []), call]);
    }
  }
  const stored = new Set(e.tasks.map((t) => t.task.id));
  const announced = new Set<number>();
  for (const r of e.requests) {
    if (r.result !== 'accepted' || r.taskId === undefined) continue;
    announced.add(r.taskId);
    if (!stored.has(r.taskId)) {
      breaches.push({
        promise: 'outcome',
        taskId: r.taskId,
        hostId: r.hostId,
        message: `request ${r.id} (${r.door}) was accepted as task ${r.taskId}, which is not in the store`,
      });
    }
  }

  for (const t of e.tasks) {
    const task = t.task;
    stats.byStatus[task.status] = (stats.byStatus[task.status] ?? 0) + 1;
    if (!announced.has(task.id)) stats.unannounced += 1;
    const hostId = t.hostIds[0] ?? task.hostId;

    // settled
    if (task.status === 'RUNNING') {
      breaches.push({
        promise: 'settled',
        taskId: task.id,
        hostId,
        message: `task ${task.id} (${task.name}, host ${hostId}) is still RUNNING: ${task.subtasks.map((s) => `${s.name}=${s.status}`).join(', ')}`,
      });
    } else {
      const busy = task.subtasks.filter(
        (s) => s.status === 'RUNNING' || s.status === 'CANCELING' || s.status === 'READY',
      );
      if (busy.length > 0) {
        breaches.push({
          promise: 'settled',
          taskId: task.id,
          hostId,
          message: `task ${task.id} ended ${task.status} with subtasks still ${busy.map((s) => `${s.name}=${s.status}`).join(', ')}`,
        });
      }
    }
    const runs = runsByTask.get(task.id) ?? [];
    for (const r of runs) {
      if (r.endedAt === undefined) {
        breaches.push({
          promise: 'settled',
          taskId: task.id,
          hostId,
          message: `run ${r.key} on host ${hostId} has no exit code: the step still runs (or vanished without a trace)`,
        });
      }
    }

    // the store agrees with the host: a SUCCESSFUL subtask's step exited 0 there
    const latestRun = (s: OcpSubtask) =>
      runs.filter((r) => r.subtaskId === s.id && r.runTime === s.runTime).sort((a, b) => b.claimedAt - a.claimedAt)[0];
    for (const s of task.subtasks) {
      if (s.status !== 'SUCCESSFUL' || s.operation === 'SKIP') continue;
      const r = latestRun(s);
      if (!r) {
        breaches.push({
          promise: 'outcome',
          taskId: task.id,
          hostId,
          message: `task ${task.id}: "${s.name}" is SUCCESSFUL but its step never ran on host ${hostId}`,
        });
      } else if (r.rc !== undefined && r.rc !== 0) {
        breaches.push({
          promise: 'outcome',
          taskId: task.id,
          hostId,
          message: `task ${task.id}: "${s.name}" is SUCCESSFUL but its step exited ${r.rc} (${r.why || 'no verdict'}) on host ${hostId}`,
        });
      }
    }

    // DAG order: each run began after its upstreams' runs ended, and they had succeeded
    for (const s of task.subtasks) {
      const r = latestRun(s);
      if (!r) continue;
      for (const upId of s.upstreams) {
        const up = task.subtasks.find((x) => x.id === upId);
        const upRun = up ? latestRun(up) : undefined;
        if (up && up.status !== 'SUCCESSFUL') {
          breaches.push({
            promise: 'dag-order',
            taskId: task.id,
            hostId,
            message: `task ${task.id}: "${s.name}" ran though its upstream "${up.name}" is ${up.status}`,
          });
        } else if (upRun && (upRun.endedAt === undefined || upRun.endedAt > r.claimedAt)) {
          breaches.push({
            promise: 'dag-order',
            taskId: task.id,
            hostId,
            message: `task ${task.id}: "${s.name}" began at ${r.claimedAt}, before its upstream "${up?.name}" ended (${num(upRun.endedAt)})`,
          });
        }
      }
    }

    // outcome as the faults dictate — unless an operator stepped in (retry, skip, rollback, cancel)
    if (task.status === 'RUNNING') continue;
    if (operatedOn(e, task)) {
      stats.unjudged += 1;
      continue;
    }
    const calls = callsByTask.get(task.id) ?? [];
    const from = calls.length > 0 ? Math.min(...calls.map((c) => c.begin)) : Date.parse(task.startTime);
    const to =
      calls.length > 0 ? Math.max(...calls.map((c) => c.begin)) : Date.parse(task.finishTime ?? task.startTime);
    const w = windowFor(e, hostId, from, to);
    if (w === undefined) {
      stats.unjudged += 1;
      continue;
    }
    const faults = w === 'none' ? [] : w.faults;
    const expected = expectedOutcome(task, faults, e.killGraceSeconds);
    if (expected.status === 'unknown') {
      stats.unjudged += 1;
      continue;
    }
    stats.judged += 1;
    const failed = chainOrder(task).find((s) => s.status === 'FAILED');
    const why = `host ${hostId} had ${describeFaults(faults)}`;
    if (expected.status === 'SUCCESSFUL') {
      if (task.status !== 'SUCCESSFUL') {
        const err = failed ? t.errors[String(failed.id)] : undefined;
        breaches.push({
          promise: 'outcome',
          taskId: task.id,
          hostId,
          message: `task ${task.id} (${task.name}) ended ${task.status}${failed ? ` at "${failed.name}"${err ? ` (${err})` : ''}` : ''}; ${why}, so it should have succeeded`,
        });
      }
      continue;
    }
    if (task.status !== 'FAILED') {
      breaches.push({
        promise: 'outcome',
        taskId: task.id,
        hostId,
        message: `task ${task.id} (${task.name}) ended ${task.status}; ${why}, so "${expected.subtask}" should have failed (${expected.reason})`,
      });
      continue;
    }
    if (failed?.name !== expected.subtask) {
      breaches.push({
        promise: 'outcome',
        taskId: task.id,
        hostId,
        message: `task ${task.id} (${task.name}) failed at "${failed?.name ?? '?'}"; ${why}, so it should have failed at "${expected.subtask}"`,
      });
      continue;
    }
    const err = t.errors[String(failed.id)] ?? '';
    const matches = expected.reason === 'timeout' ? /timed out/.test(err) : /exit code/.test(err);
    if (!matches) {
      breaches.push({
        promise: 'outcome',
        taskId: task.id,
        hostId,
        message: `task ${task.id}: "${failed.name}" failed with "${err}"; ${why}, so it should have failed with ${expected.reason === 'timeout' ? '"timed out"' : 'an exit code'}`,
      });
    }
  }
}

/**
 * An accepted request whose host was held by another task from before the
 * request was sent until after its acceptance was seen: it should have been
 * refused (SPEC §7: at most one agent operation per host at a time). A task
 * holds a host from its creation (or the retry, skip or rollback that took the
 * host again) until its chain there came to rest; a batch frees each host as
 * its chain ends.
 */
function checkBusyRefused(e: ChaosEvidence, breaches: Breach[]): void {
  const tasksById = new Map(e.tasks.map((t) => [t.task.id, t]));
  const holdsByHost = new Map<number, Hold[]>();
  for (const host of e.hosts) holdsByHost.set(host.hostId, holdsOnHost(host, tasksById));
  // A task that never ran a step on one of its hosts held it from its start to its end.
  for (const t of e.tasks) {
    for (const h of t.hostIds) {
      const list = holdsByHost.get(h) ?? [];
      if (list.some((x) => x.taskId === t.task.id)) continue;
      const from = Date.parse(t.task.startTime);
      const to = t.task.finishTime ? Date.parse(t.task.finishTime) : Number.POSITIVE_INFINITY;
      holdsByHost.set(h, [...list, { taskId: t.task.id, hostId: h, from, to, first: true }]);
    }
  }
  for (const r of e.requests) {
    if (r.result !== 'accepted' || r.taskId === undefined || r.answeredAt === undefined) continue;
    for (const hostId of r.hostIds ?? [r.hostId]) {
      for (const hold of holdsByHost.get(hostId) ?? []) {
        if (hold.taskId === r.taskId) continue;
        const other = tasksById.get(hold.taskId)?.task;
        const began = hold.first && other ? Math.min(Date.parse(other.startTime), hold.from) : hold.from;
        if (began < r.sentAt && hold.to > r.answeredAt) {
          breaches.push({
            promise: 'busy-refused',
            taskId: r.taskId,
            hostId,
            message:
              `request ${r.id} (${r.door}, sent ${r.sentAt}) was accepted as task ${r.taskId} on host ${hostId}, ` +
              `while task ${hold.taskId} ran there (${began}–${num(Number.isFinite(hold.to) ? hold.to : undefined)})`,
          });
        }
      }
    }
  }
}

function checkEvents(e: ChaosEvidence, breaches: Breach[]): void {
  for (const t of e.tasks) {
    const task = t.task;
    const all = e.events[String(task.id)] ?? [];
    // A batch numbers each chain's events on their own: each sequence is checked alone.
    for (const [chain, n] of Object.entries(t.chainEventSeqs ?? {})) {
      const seqs = all.filter((ev) => ev.chain === Number(chain)).map((ev) => ev.seq);
      const expected = Array.from({ length: n }, (_, i) => i + 1);
      if (seqs.join(',') !== expected.join(',')) {
        breaches.push({
          promise: 'events',
          taskId: task.id,
          message: `task ${task.id} chain ${chain}: stream holds events ${compact(seqs)} of ${n}`,
        });
      }
    }
    const events = all.filter((ev) => ev.chain === undefined);
    const seqs = events.map((ev) => ev.seq);
    const expectedSeqs = Array.from({ length: t.eventSeq }, (_, i) => i + 1);
    if (seqs.join(',') !== expectedSeqs.join(',')) {
      const dup = seqs.filter((s, i) => seqs.indexOf(s) !== i);
      const missing = expectedSeqs.filter((s) => !seqs.includes(s));
      const outOfOrder = seqs.some((s, i) => i > 0 && s < seqs[i - 1]!);
      breaches.push({
        promise: 'events',
        taskId: task.id,
        message:
          `task ${task.id}: stream holds events ${compact(seqs)} of ${t.eventSeq}` +
          `${dup.length ? `; twice: ${compact(dup)}` : ''}${missing.length ? `; missing: ${compact(missing)}` : ''}${outOfOrder ? '; out of order' : ''}`,
      });
      continue;
    }
    const last = events.at(-1);
    if (task.status !== 'RUNNING' && (last?.subtaskId !== undefined || last?.status !== task.status)) {
      breaches.push({
        promise: 'events',
        taskId: task.id,
        message: `task ${task.id} is ${task.status} but its last event is ${last?.type ?? 'none'}`,
      });
    }
  }
  for (const r of e.requests) {
    if (r.door !== 'nats' && r.door !== 'slack') continue;
    // A Slack batch is created by its Confirm click, answered on the click's response_url.
    if (r.op === 'batchRestart') continue;
    if (r.result !== 'accepted' && r.result !== 'busy' && r.result !== 'rejected') continue;
    const evs = e.requestEvents[r.id] ?? [];
    const want = r.result === 'accepted' ? 'accepted' : 'rejected';
    if (evs.length !== 1 || evs[0]?.type !== want || (want === 'accepted' && evs[0]?.taskId !== r.taskId)) {
      breaches.push({
        promise: 'events',
        ...(r.taskId !== undefined ? { taskId: r.taskId } : {}),
        hostId: r.hostId,
        message: `request ${r.id} (${r.door}) was ${r.result} but ocp.events.request.${r.id} holds ${evs.length === 0 ? 'nothing' : evs.map((x) => `${x.type}${x.taskId ? ` ${x.taskId}` : ''}`).join(', ')}`,
      });
    }
  }
}

/** What the reply for an event must say, or undefined when the event gets no reply. */
function replyFor(task: OcpTask, ev: EventRecord): { label: string; test(text: string): boolean } | undefined {
  if (ev.status !== 'SUCCESSFUL' && ev.status !== 'FAILED') return undefined;
  if (ev.subtaskId === undefined) {
    return {
      label: `final ${ev.status}`,
      test: (text) => text.includes(`${task.name} ${ev.status}`),
    };
  }
  const s = task.subtasks.find((x) => x.id === ev.subtaskId);
  const name = s?.name ?? `subtask ${ev.subtaskId}`;
  // A skipped subtask's SUCCESSFUL is told as "skipped" (a skipped one never runs again).
  const skipped = s?.operation === 'SKIP' && ev.status === 'SUCCESSFUL';
  return {
    label: `${name} ${skipped ? 'skipped' : ev.status}`,
    test: (text) => text.includes(`*${name}`) && text.includes(skipped ? ' skipped' : ` ${ev.status}`),
  };
}

/** The parent's head shows the task's state (render-blocks: TASK_EMOJI) and a running task's Cancel button goes. */
const STATUS_EMOJI: Record<string, string> = { SUCCESSFUL: ':white_check_mark:', FAILED: ':x:' };

/**
 * When notifier processes died (ms): each may have posted one message of a
 * task and died before recording it, so a live notifier posted it again (SPEC §4).
 */
function notifierDeaths(e: ChaosEvidence): number[] {
  return (e.processes ?? [])
    .filter((p) => p.roles.split(',').includes('notifier') && p.exitedAt !== undefined)
    .map((p) => p.exitedAt as number)
    .sort((a, b) => a - b);
}

function checkSlack(e: ChaosEvidence, breaches: Breach[], stats: ChaosVerdict['stats']): void {
  const deaths = notifierDeaths(e);
  for (const t of e.tasks) {
    const task = t.task;
    if (!t.channel) continue;
    const thread = e.slack[String(task.id)];
    const events = e.events[String(task.id)] ?? [];
    if (!thread || thread.parents.length === 0) {
      breaches.push({
        promise: 'slack-thread',
        taskId: task.id,
        message: `task ${task.id}: no parent message in ${t.channel}`,
      });
      continue;
    }
    // A post repeated is allowed once per notifier death between the two posts, and only so.
    const unused = [...deaths];
    const explained = (first?: SlackMessageView, again?: SlackMessageView): boolean => {
      if (first?.at === undefined || again?.at === undefined) return false;
      const i = unused.findIndex((d) => d >= first.at! && d <= again.at!);
      if (i < 0) return false;
      unused.splice(i, 1);
      stats.slackRepeats += 1;
      return true;
    };
    const unexplainedParents = thread.parents.filter((p, i) => i > 0 && !explained(thread.parents[i - 1], p));
    if (unexplainedParents.length > 0) {
      breaches.push({
        promise: 'slack-thread',
        taskId: task.id,
        message: `task ${task.id}: ${thread.parents.length} parent messages in ${t.channel} (${thread.parents.map((p) => p.ts).join(', ')})`,
      });
    }
    if ((thread.strayReplies ?? []).length > 0) {
      breaches.push({
        promise: 'slack-thread',
        taskId: task.id,
        message: `task ${task.id}: its thread is split: ${thread.strayReplies!.length} replies under another parent (${thread.strayReplies!.map((r) => r.text.slice(0, 60)).join(' | ')})`,
      });
    }
    const expected = events.flatMap((ev) => {
      const r = replyFor(task, ev);
      return r ? [r] : [];
    });
    const replies = thread.replies;
    const show = () => `thread: [${replies.map((r) => r.text.replace(/^:[a-z_]+: /, '').slice(0, 60)).join(' | ')}]`;
    let j = 0;
    let broken = false;
    for (let i = 0; i < replies.length; i++) {
      const want = expected[j];
      const got = replies[i]!;
      if (want?.test(got.text)) {
        j += 1;
        continue;
      }
      // The reply for the event before, again: a notifier died after posting it, before recording it.
      const again = j > 0 && expected[j - 1]!.test(got.text);
      if (again && explained(replies[i - 1], got)) continue;
      breaches.push({
        promise: 'slack-thread',
        taskId: task.id,
        message:
          `task ${task.id}: thread reply ${i + 1} is "${got.text.slice(0, 120)}"` +
          `${again ? ' (a repeat of the one before)' : ''}, expected ${want ? want.label : 'nothing more'}; ${show()}`,
      });
      broken = true;
      break;
    }
    if (!broken && j < expected.length) {
      breaches.push({
        promise: 'slack-thread',
        taskId: task.id,
        message: `task ${task.id}: thread reply ${replies.length + 1} is missing, expected ${expected[j]!.label}; ${show()}`,
      });
    }
    if (task.status !== 'RUNNING') {
      const parent = thread.parents[thread.threadOf ?? 0] ?? thread.parents[0]!;
      const emoji = STATUS_EMOJI[task.status] ?? '';
      const head = /"text":"([^"]*)"/.exec(parent.blocks)?.[1] ?? parent.text;
      if (!head.startsWith(emoji) || parent.blocks.includes('"subtask_cancel"')) {
        breaches.push({
          promise: 'slack-thread',
          taskId: task.id,
          message: `task ${task.id} is ${task.status} but its parent message still shows "${head.slice(0, 100)}"${parent.blocks.includes('"subtask_cancel"') ? ' with a Cancel button' : ''}`,
        });
      }
    }
  }
  for (const r of e.requests) {
    if (r.door !== 'slack' || r.result !== 'busy') continue;
    if (!(r.responses ?? []).some((text) => /already runs/.test(text))) {
      breaches.push({
        promise: 'slack-thread',
        hostId: r.hostId,
        message: `Slack request ${r.id} was refused (host ${r.hostId} busy) but its requester was not told: responses ${JSON.stringify(r.responses ?? [])}`,
      });
    }
  }
}

/** A task's mark: the soak's requests give the reason `chaos <tag>`. */
function tagOf(task: OcpTask): string | undefined {
  return /^chaos (\S+)$/.exec(task.context.stringMap.reason ?? '')?.[1];
}

/**
 * SPEC §7: a request answered with an error leaves nothing behind that runs
 * later. A request refused (HTTP non-2xx, a NATS rejection, a Slack warning) has
 * no task that ran a step; a task is set running again (task.running after its
 * first event) no more often than operations on it were not refused.
 */
function checkErrorAnswers(e: ChaosEvidence, breaches: Breach[], stats: ChaosVerdict['stats']): void {
  const runsByTask = new Map<number, RunRecord[]>();
  for (const h of e.hosts) for (const r of h.runs) runsByTask.set(r.taskId, [...(runsByTask.get(r.taskId) ?? []), r]);
  const tasksByTag = new Map<string, TaskEvidence[]>();
  for (const t of e.tasks) {
    const tag = tagOf(t.task);
    if (tag) tasksByTag.set(tag, [...(tasksByTag.get(tag) ?? []), t]);
  }
  for (const r of e.requests) {
    if (!r.answered || r.result === 'accepted' || !r.tag) continue;
    for (const t of tasksByTag.get(r.tag) ?? []) {
      const runs = runsByTask.get(t.task.id) ?? [];
      if (runs.length === 0) continue;
      breaches.push({
        promise: 'error-answer',
        taskId: t.task.id,
        hostId: r.hostId,
        message:
          `request ${r.id} (${r.door} ${r.op}, tag ${r.tag}) was answered with an error (${r.result}: ${(r.detail ?? '').slice(0, 160)}), ` +
          `yet its task ${t.task.id} ran ${runs.length} steps (${runs
            .slice(0, 3)
            .map((x) => x.key)
            .join(', ')}${runs.length > 3 ? ', …' : ''})`,
      });
    }
  }
  // A step for a task the store does not hold: launched for something no answer stands for.
  const stored = new Set(e.tasks.map((t) => t.task.id));
  for (const [taskId, runs] of runsByTask) {
    if (stored.has(taskId)) continue;
    breaches.push({
      promise: 'error-answer',
      taskId,
      message: `task ${taskId} is not in the store, yet ${runs.length} steps of it ran on hosts (${runs
        .slice(0, 3)
        .map((x) => x.key)
        .join(', ')}${runs.length > 3 ? ', …' : ''})`,
    });
  }
  const opsByTask = new Map<number, OperationRecord[]>();
  for (const o of e.operations ?? []) opsByTask.set(o.taskId, [...(opsByTask.get(o.taskId) ?? []), o]);
  for (const t of e.tasks) {
    const events = e.events[String(t.task.id)] ?? [];
    const reopens = events.filter((ev) => ev.seq > 1 && ev.subtaskId === undefined && ev.status === 'RUNNING').length;
    stats.reopens += reopens;
    if (reopens === 0) continue;
    const ops = opsByTask.get(t.task.id) ?? [];
    const notRefused = ops.filter((o) => o.op !== 'cancel' && o.result !== 'refused');
    if (reopens > notRefused.length) {
      breaches.push({
        promise: 'error-answer',
        taskId: t.task.id,
        message:
          `task ${t.task.id} was set running again ${reopens} times, but only ${notRefused.length} operations on it were not refused ` +
          `(${ops.map((o) => `${o.op}/${o.door}=${o.result}${o.detail ? ` ${o.detail.slice(0, 60)}` : ''}`).join('; ') || 'none sent'})`,
      });
    }
  }
}

/** One request (its tag) made at most one task: a double click or a redelivery makes none more. */
function checkOneTask(e: ChaosEvidence, breaches: Breach[]): void {
  const byTag = new Map<string, number[]>();
  for (const t of e.tasks) {
    const tag = tagOf(t.task);
    if (tag) byTag.set(tag, [...(byTag.get(tag) ?? []), t.task.id]);
  }
  for (const [tag, ids] of byTag) {
    if (ids.length <= 1) continue;
    const r = e.requests.find((x) => x.tag === tag);
    breaches.push({
      promise: 'one-task',
      taskId: ids[1]!,
      ...(r ? { hostId: r.hostId } : {}),
      message: `request ${r ? `${r.id} (${r.door} ${r.op})` : `tagged ${tag}`} made ${ids.length} tasks: ${ids.join(', ')}`,
    });
  }
}

/**
 * A Slack batch asks for a Confirm click; a Cancel click answers "Batch restart
 * not started." — which must be true: a Confirm clicked just before it (or at
 * once) that started the batch makes it a lie the requester reads last.
 */
function checkBatchAnswers(e: ChaosEvidence, breaches: Breach[]): void {
  const stored = new Set(e.tasks.map((t) => t.task.id));
  for (const r of e.requests) {
    if (r.door !== 'slack' || r.op !== 'batchRestart') continue;
    const texts = r.responses ?? [];
    const started = texts
      .map((t) => /started: task (\d+)/.exec(t))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .filter((id) => stored.has(id));
    const denied = texts.filter((t) => /not started/.test(t));
    if (started.length > 0 && denied.length > 0) {
      breaches.push({
        promise: 'batch-answer',
        taskId: started[0]!,
        hostId: r.hostId,
        message: `Slack batch ${r.id} (hosts ${(r.hostIds ?? [r.hostId]).join(',')}) started as task ${started[0]}, yet its confirmation was answered ${JSON.stringify(denied[0])} (answers in order: ${texts.map((t) => JSON.stringify(t.slice(0, 60))).join(', ')})`,
      });
    }
  }
}

/** Once every task has ended, no host lock names an ended task (it frees its hosts as it ends). */
function checkLocks(e: ChaosEvidence, breaches: Breach[], stats: ChaosVerdict['stats']): void {
  const tasksById = new Map(e.tasks.map((t) => [t.task.id, t.task]));
  for (const l of e.locks ?? []) {
    const task = tasksById.get(l.taskId);
    if (!task) {
      stats.orphanLocks += 1;
      continue;
    }
    if (task.status !== 'RUNNING') {
      breaches.push({
        promise: 'locks-freed',
        taskId: task.id,
        hostId: l.hostId,
        message: `host ${l.hostId} is still locked by task ${task.id}, which ended ${task.status}${task.finishTime ? ` at ${task.finishTime}` : ''}`,
      });
    }
  }
}

function recordLag(e: ChaosEvidence): ChaosVerdict['stats']['recordLag'] {
  const finish = new Map<string, number>();
  for (const t of e.tasks) {
    for (const s of t.task.subtasks) {
      // A skipped subtask's finishTime is the Skip click's, not its step's record.
      if (s.finishTime && s.operation !== 'SKIP')
        finish.set(`${t.task.id}/${s.id}/${s.runTime}`, Date.parse(s.finishTime));
    }
  }
  const lags: number[] = [];
  for (const h of e.hosts) {
    for (const r of h.runs) {
      const f = finish.get(`${r.taskId}/${r.subtaskId}/${r.runTime}`);
      if (f !== undefined && r.endedAt !== undefined) lags.push(Math.max(0, f - r.endedAt));
    }
  }
  lags.sort((a, b) => a - b);
  const at = (q: number) => lags[Math.min(lags.length - 1, Math.floor(q * lags.length))] ?? 0;
  return { p50: at(0.5), p95: at(0.95), max: lags.at(-1) ?? 0 };
}

/** "1-5,7,9-10" */
function compact(ns: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ns.length; ) {
    let j = i;
    while (j + 1 < ns.length && ns[j + 1] === ns[j]! + 1) j++;
    out.push(j > i ? `${ns[i]}-${ns[j]}` : String(ns[i]));
    i = j + 1;
  }
  return out.join(',') || 'none';
}

export function checkChaos(e: ChaosEvidence): ChaosVerdict {
  const breaches: Breach[] = [];
  const stats: ChaosVerdict['stats'] = {
    tasks: e.tasks.length,
    byStatus: {},
    judged: 0,
    unjudged: 0,
    unannounced: 0,
    calls: e.hosts.reduce((n, h) => n + h.calls.length, 0),
    runs: e.hosts.reduce((n, h) => n + h.runs.length, 0),
    recordLag: recordLag(e),
    reopens: 0,
    slackRepeats: 0,
    orphanLocks: 0,
  };
  checkHosts(e, breaches);
  checkTasks(e, breaches, stats);
  checkBusyRefused(e, breaches);
  checkEvents(e, breaches);
  checkSlack(e, breaches, stats);
  checkLogins(e, breaches);
  checkErrorAnswers(e, breaches, stats);
  checkOneTask(e, breaches);
  checkLocks(e, breaches, stats);
  checkBatchAnswers(e, breaches);
  for (const p of e.processes ?? []) {
    if (!p.started || p.killedBySoak || p.exitedAt === undefined) continue;
    const last = (p.tail ?? '')
      .split('\n')
      .filter((l) => /Error|error/.test(l) && !l.startsWith('{'))
      .slice(0, 2)
      .join(' / ');
    breaches.push({
      promise: 'no-crash',
      message: `${p.name} (${p.roles}, pid ${p.pid}) exited on its own at ${p.exitedAt} (${p.code ?? p.signal})${last ? `: ${last.trim().slice(0, 300)}` : ''}`,
    });
  }
  return { breaches, stats };
}

/**
 * SPEC §9: the login shell's start-up runs once per connection — never again
 * for a step, a shell a step starts, a cancel or a status read. A connection
 * is its SSH_CONNECTION and the sshd process serving it: over a soak's
 * hundreds of connections a client port comes round again (one soak saw two
 * connections on 127.0.0.1:34738 to one host, each with its one run).
 */
function checkLogins(e: ChaosEvidence, breaches: Breach[]): void {
  const runs = new Map<string, Array<{ shlvl: string; pid: number }>>();
  for (const r of e.bashrcRuns ?? []) runs.set(r.connection, [...(runs.get(r.connection) ?? []), r]);
  for (const [connection, list] of runs) {
    if (list.length <= 1) continue;
    breaches.push({
      promise: 'login-once',
      message: `~/.bashrc ran ${list.length} times for the SSH connection ${connection} (pids ${list.map((r) => r.pid).join(', ')})`,
    });
  }
}

/** Breaches per promise, every promise listed (0 when kept). */
export function breachesByPromise(breaches: Breach[]): Record<PromiseName, number> {
  const counts = Object.fromEntries(Object.keys(PROMISES).map((p) => [p, 0])) as Record<PromiseName, number>;
  for (const b of breaches) counts[b.promise] += 1;
  return counts;
}
