/**
 * The judge of the model-based concurrency test (test/integration/model-concurrency.test.ts):
 * pure functions from what a run left behind that a user or an operator can see — the run
 * files each step leaves on its host, the simulated agent's call log, the audit trail on
 * OCP_EVENTS, the tasks as the API answers them, the host-lock bucket, and every answer the
 * doors gave — to the promises of SPEC §7 that were broken. No I/O here, so that
 * test/unit/model-invariants.test.ts can feed it doctored evidence.
 *
 * The four invariants (issue 10, "Widen the proof"):
 * 1. never two tasks' steps on one host at once — `overlap` (two step runs, or two agentctl
 *    calls of different steps, at the same time on a host) and `interleaved` (a step of
 *    another task on a host while the audit trail shows a task's chain there between its
 *    first READY and its rest: the host is promised to that task for the whole stretch);
 * 2. never a lock held by an ended task — `lock`;
 * 3. no task RUNNING forever — `running`;
 * 4. no step launched by an error answer — `error-answer`: every task that ran a step (or
 *    was stored) was handed out by an answer that accepted it, and every effect of a task
 *    operation (a run again, a skip, a rollback, a cancel) had an answer that did not refuse it.
 */

export type Door = 'http' | 'nats-api' | 'nats-cmd' | 'slack';
export type ActionKind = 'create' | 'batch' | 'retry' | 'retryOne' | 'skip' | 'rollback' | 'cancel';

/** One request sent by the test and how it was answered. */
export interface AnswerRecord {
  /** Order of sending within the run. */
  n: number;
  door: Door;
  action: ActionKind;
  /** create: restart | stop | start */
  op?: string;
  hostIds?: number[];
  taskId?: number;
  subtaskId?: number;
  /**
   * ok: accepted (2xx, a successful envelope, an `accepted` request event, a click nobody
   * answered with a warning); error: refused; unknown: no answer came (so either may be true).
   */
  outcome: 'ok' | 'error' | 'unknown';
  /** The task a create's accepting answer named. */
  createdTaskId?: number;
  code?: number;
  detail?: string;
  sentAt: number;
}

/** One run of a step, from `<stateDir>/runs/<key>.*` on the host (src/ssh/remote-step.ts). */
export interface RunFile {
  hostId: number;
  key: string;
  taskId: number;
  subtaskId: number;
  runTime: number;
  /** The wrapper's pid, which is the step's session id (.pid). */
  sid?: number;
  /** mtime of .claim, ms. */
  from: number;
  /** mtime of .rc, ms; Infinity while nothing recorded its end. */
  to: number;
  /** The wrapper's verdict (.why): timeout, canceled, vanished, or empty. */
  why?: string;
}

/** One ocp_agentctl invocation from a host's calls.log. */
export interface AgentCall {
  hostId: number;
  pid: number;
  /** Session of the caller: a step's session is its run's sid. */
  sid?: number;
  args: string;
  begin: number;
  /** Infinity when the call never wrote its end line. */
  end: number;
}

/** A task event from OCP_EVENTS, reduced to what the judge reads. */
export interface EventLite {
  taskId: number;
  seq: number;
  type: string;
  status: string;
  subtaskId?: number;
  /** The change's time (the event's `at`), ms. */
  at: number;
}

/** A task as GET /api/v2/tasks/instances/{id} answers it, reduced. */
export interface TaskView {
  id: number;
  status: string;
  operation: string;
  hostId: number;
  parallel: boolean;
  /** context.listMap.host_ids of a batch (chain i runs on hostIds[i]). */
  hostIds: number[];
  subtasks: Array<{
    id: number;
    parallelIdx: number;
    status: string;
    operation: string;
    runTime: number;
    name: string;
  }>;
}

export interface RunEvidence {
  /** Runs whose files appeared during this run. */
  runs: RunFile[];
  /** agentctl calls that began during this run. */
  calls: AgentCall[];
  /** This run's tasks' events, per task in seq order. */
  events: Record<string, EventLite[]>;
  /** Every task stored during this run, as the API shows it after the run settled. */
  tasks: TaskView[];
  /** Ids of tasks stored before this run began (earlier runs). */
  earlierTaskIds: ReadonlySet<number>;
  /** ocp_host_locks after the run settled. */
  locks: Array<{ hostId: number; holder: number }>;
  /** Status of every lock holder, as the API answers it (undefined: no such task). */
  holderStatus: Record<string, string | undefined>;
  answers: AnswerRecord[];
  /** Tasks still RUNNING when the bounded wait for the run to settle ran out. */
  stillRunning: number[];
  /** How long the test waited for every task to end, seconds. */
  settleBoundSeconds: number;
}

export type Invariant = 'overlap' | 'interleaved' | 'lock' | 'running' | 'error-answer';

export interface Violation {
  invariant: Invariant;
  message: string;
}

/**
 * File times come from the kernel's coarse clock (a jiffy, up to 4 ms behind), the
 * audit trail's from Date.now() truncated to ms: two intervals meet only when they
 * share more than this (ms). Real overlaps of two steps last hundreds of ms.
 */
export const TOLERANCE_MS = 5;

interface Span {
  from: number;
  to: number;
}
const shared = (a: Span, b: Span) => Math.min(a.to, b.to) - Math.max(a.from, b.from);
const meet = (a: Span, b: Span) => shared(a, b) > TOLERANCE_MS;
const t = (ms: number) => (Number.isFinite(ms) ? new Date(ms).toISOString().slice(11, 23) : '∞');
const span = (s: Span) => `${t(s.from)}–${t(s.to)}`;

/** `<epoch>-<taskId>-<subtaskId>-<runTime>` (src/executor/run-subtask.ts). */
export function parseRunKey(key: string): { taskId: number; subtaskId: number; runTime: number } | undefined {
  const m = /^[0-9a-f]+-([0-9]+)-([0-9]+)-([0-9]+)$/.exec(key);
  return m ? { taskId: Number(m[1]), subtaskId: Number(m[2]), runTime: Number(m[3]) } : undefined;
}

/**
 * calls.log of the simulated agent (test/helpers/sim-agent.ts): `begin <ms> <pid> <args…>`,
 * `sess <pid> <sid>`, `end <ms> <pid> <exit> <args…>`; a begin is closed by the next end of its pid.
 */
export function parseCalls(hostId: number, text: string): AgentCall[] {
  const calls: AgentCall[] = [];
  const open = new Map<number, AgentCall>();
  for (const line of text.split('\n')) {
    const parts = line.split(' ');
    if (parts[0] === 'begin') {
      const call: AgentCall = {
        hostId,
        pid: Number(parts[2]),
        begin: Number(parts[1]),
        end: Number.POSITIVE_INFINITY,
        args: parts.slice(3).join(' '),
      };
      calls.push(call);
      open.set(call.pid, call);
    } else if (parts[0] === 'sess') {
      const call = open.get(Number(parts[1]));
      if (call) call.sid = Number(parts[2]);
    } else if (parts[0] === 'end') {
      const call = open.get(Number(parts[2]));
      if (call) {
        call.end = Number(parts[1]);
        open.delete(call.pid);
      }
    }
  }
  return calls;
}

// ------------------------------------------------------------------ holds

export interface Hold extends Span {
  taskId: number;
  hostId: number;
}

const ACTIVE = new Set(['READY', 'RUNNING', 'CANCELING']);

/** The host a subtask's chain runs on: a batch's chain i on its i-th host, a single task's on its host. */
function chainHost(task: TaskView, parallelIdx: number): number | undefined {
  if (!task.parallel) return task.hostId;
  const h = task.hostIds[parallelIdx];
  return h === undefined ? undefined : h;
}

/**
 * When each task had each of its hosts, from the audit trail: a host chain holds its host
 * from the change that made one of its subtasks READY until the change that left none of
 * them READY, RUNNING or CANCELING. The product takes the host before such a change is
 * stored and frees it only after the change that ends the chain, so a correct product's
 * lock covers every hold. Holds that touch (the two events of one change) are one.
 */
export function holdsOf(task: TaskView, events: readonly EventLite[]): Hold[] {
  const chainOf = new Map(task.subtasks.map((s) => [s.id, s.parallelIdx]));
  const status = new Map<number, string>();
  const openSince = new Map<number, number>();
  const holds: Hold[] = [];
  const chains = [...new Set(task.subtasks.map((s) => s.parallelIdx))];
  const activeChains = () =>
    new Set(
      [...status].filter(([id, st]) => ACTIVE.has(st) && chainOf.has(id)).map(([id]) => chainOf.get(id) as number),
    );
  for (const ev of [...events].sort((a, b) => a.seq - b.seq)) {
    if (ev.subtaskId !== undefined && ev.type.startsWith('subtask.')) status.set(ev.subtaskId, ev.status);
    const active = activeChains();
    for (const c of chains) {
      const since = openSince.get(c);
      if (active.has(c) && since === undefined) openSince.set(c, ev.at);
      if (!active.has(c) && since !== undefined) {
        const hostId = chainHost(task, c);
        if (hostId !== undefined) holds.push({ taskId: task.id, hostId, from: since, to: ev.at });
        openSince.delete(c);
      }
    }
  }
  for (const [c, since] of openSince) {
    const hostId = chainHost(task, c);
    if (hostId !== undefined) holds.push({ taskId: task.id, hostId, from: since, to: Number.POSITIVE_INFINITY });
  }
  // merge holds of one host that touch
  const merged: Hold[] = [];
  for (const h of holds.sort((a, b) => a.hostId - b.hostId || a.from - b.from)) {
    const last = merged[merged.length - 1];
    if (last && last.hostId === h.hostId && h.from <= last.to) last.to = Math.max(last.to, h.to);
    else merged.push({ ...h });
  }
  return merged;
}

// ------------------------------------------------------------------ the judge

function answersFor(e: RunEvidence, pred: (a: AnswerRecord) => boolean): AnswerRecord[] {
  return e.answers.filter(pred);
}
const notRefused = (a: AnswerRecord) => a.outcome !== 'error';
const describe = (a: AnswerRecord) =>
  `#${a.n} ${a.action}${a.op ? ` ${a.op}` : ''} via ${a.door}${a.hostIds ? ` hosts ${a.hostIds.join(',')}` : ''}` +
  `${a.taskId !== undefined ? ` task ${a.taskId}` : ''}${a.subtaskId !== undefined ? `/${a.subtaskId}` : ''} → ${a.outcome}` +
  `${a.code !== undefined ? ` ${a.code}` : ''}${a.createdTaskId !== undefined ? ` task ${a.createdTaskId}` : ''}`;

function checkOverlaps(e: RunEvidence, out: Violation[]): void {
  const hosts = [...new Set([...e.runs.map((r) => r.hostId), ...e.calls.map((c) => c.hostId)])];
  for (const hostId of hosts) {
    const runs = e.runs.filter((r) => r.hostId === hostId).sort((a, b) => a.from - b.from);
    for (let i = 0; i < runs.length; i++) {
      for (let j = i + 1; j < runs.length; j++) {
        const a = runs[i]!;
        const b = runs[j]!;
        if (b.from >= a.to) break;
        if (!meet(a, b)) continue;
        out.push({
          invariant: 'overlap',
          message:
            `host ${hostId}: step ${a.key} (task ${a.taskId}, ${span(a)}) and step ${b.key} (task ${b.taskId}, ${span(b)}) ` +
            `ran at the same time${a.taskId === b.taskId ? ' (one task)' : ''}`,
        });
      }
    }
    // the agent's own log: calls of two different steps at once
    const runOfSid = new Map(runs.filter((r) => r.sid !== undefined).map((r) => [r.sid as number, r]));
    // a call killed mid-way (a cancel, a timeout) wrote no end line: it ended when its run did
    const calls = e.calls
      .filter((c) => c.hostId === hostId)
      .map((c) => {
        const run = c.sid === undefined ? undefined : runOfSid.get(c.sid);
        return Number.isFinite(c.end) || !run ? c : { ...c, end: run.to };
      })
      .sort((a, b) => a.begin - b.begin);
    for (let i = 0; i < calls.length; i++) {
      for (let j = i + 1; j < calls.length; j++) {
        const a = calls[i]!;
        const b = calls[j]!;
        if (b.begin >= a.end) break;
        if (a.sid !== undefined && a.sid === b.sid) continue;
        const ra = a.sid === undefined ? undefined : runOfSid.get(a.sid);
        const rb = b.sid === undefined ? undefined : runOfSid.get(b.sid);
        // two runs that overlap are reported above already
        if (ra && rb && meet(ra, rb)) continue;
        if (!meet({ from: a.begin, to: a.end }, { from: b.begin, to: b.end })) continue;
        out.push({
          invariant: 'overlap',
          message:
            `host ${hostId}: agentctl "${a.args}" (${ra ? `step ${ra.key}` : `session ${a.sid ?? '?'}`}, ${t(a.begin)}–${t(a.end)}) ` +
            `and "${b.args}" (${rb ? `step ${rb.key}` : `session ${b.sid ?? '?'}`}, ${t(b.begin)}–${t(b.end)}) ran at the same time`,
        });
      }
    }
  }
}

function checkInterleaving(e: RunEvidence, out: Violation[]): void {
  for (const task of e.tasks) {
    for (const hold of holdsOf(task, e.events[String(task.id)] ?? [])) {
      for (const r of e.runs) {
        if (r.hostId !== hold.hostId || r.taskId === task.id || !meet(r, hold)) continue;
        out.push({
          invariant: 'interleaved',
          message:
            `host ${hold.hostId}: step ${r.key} of task ${r.taskId} (${span(r)}) ran while task ${task.id} ` +
            `had the host (its chain there READY/RUNNING ${span(hold)} by its events)`,
        });
      }
    }
  }
}

function checkLocks(e: RunEvidence, out: Violation[]): void {
  for (const { hostId, holder } of e.locks) {
    const status = e.holderStatus[String(holder)];
    if (status === 'RUNNING') continue;
    out.push({
      invariant: 'lock',
      message: `host ${hostId} is locked by task ${holder}, which is ${status ?? 'not a task the API knows'}`,
    });
  }
}

function checkRunning(e: RunEvidence, out: Violation[]): void {
  for (const id of e.stillRunning) {
    const task = e.tasks.find((x) => x.id === id);
    const where = task?.subtasks
      .filter((s) => s.status !== 'PENDING' && s.status !== 'SUCCESSFUL')
      .map((s) => `${s.id} ${s.name} ${s.status}`)
      .join('; ');
    out.push({
      invariant: 'running',
      message: `task ${id} still RUNNING ${e.settleBoundSeconds} s after the last request (${where || 'nothing active'})`,
    });
  }
}

function checkErrorAnswers(e: RunEvidence, out: Violation[]): void {
  const accepted = new Set(
    e.answers.filter((a) => a.outcome === 'ok' && a.createdTaskId !== undefined).map((a) => a.createdTaskId as number),
  );
  const refusedOn = (hostId: number) =>
    e.answers
      .filter((a) => (a.action === 'create' || a.action === 'batch') && a.outcome === 'error')
      .filter((a) => a.hostIds?.includes(hostId))
      .map(describe);
  const reported = new Set<number>();
  for (const r of e.runs) {
    if (reported.has(r.taskId)) continue;
    if (e.earlierTaskIds.has(r.taskId)) {
      reported.add(r.taskId);
      out.push({
        invariant: 'error-answer',
        message: `host ${r.hostId}: step ${r.key} of task ${r.taskId}, an earlier run's task no request of this run named, ran`,
      });
    } else if (!accepted.has(r.taskId)) {
      reported.add(r.taskId);
      const refused = refusedOn(r.hostId);
      out.push({
        invariant: 'error-answer',
        message:
          `host ${r.hostId}: task ${r.taskId} ran step ${r.key}, but no answer accepted a task ${r.taskId}` +
          `${refused.length ? `; requests refused on that host: ${refused.join(' | ')}` : ''}`,
      });
    }
  }
  for (const task of e.tasks) {
    if (accepted.has(task.id) || reported.has(task.id)) continue;
    const unanswered = e.answers.some(
      (a) => (a.action === 'create' || a.action === 'batch') && a.outcome === 'unknown',
    );
    if (unanswered) continue; // a create whose answer never came may have made it
    out.push({ invariant: 'error-answer', message: `task ${task.id} was stored, but no answer accepted it` });
  }

  // every effect of a task operation had an answer that did not refuse it
  for (const task of e.tasks) {
    const mine = (kind: ActionKind, subtaskId?: number) =>
      answersFor(
        e,
        (a) =>
          a.action === kind &&
          a.taskId === task.id &&
          (subtaskId === undefined || a.subtaskId === subtaskId) &&
          notRefused(a),
      ).length;
    const runsOf = (subtaskId: number) => e.runs.filter((r) => r.taskId === task.id && r.subtaskId === subtaskId);
    for (const s of task.subtasks) {
      const runTime = Math.max(s.runTime, ...runsOf(s.id).map((r) => r.runTime));
      const retries = mine('retry') + mine('retryOne', s.id);
      if (runTime - 1 > retries) {
        out.push({
          invariant: 'error-answer',
          message: `task ${task.id} subtask ${s.id} (${s.name}) reached run ${runTime}, but only ${retries} retries were not refused`,
        });
      }
      if (s.operation === 'SKIP' && mine('skip', s.id) === 0) {
        out.push({
          invariant: 'error-answer',
          message: `task ${task.id} subtask ${s.id} (${s.name}) was skipped, but every skip of it was refused`,
        });
      }
      const canceled = runsOf(s.id).some((r) => r.why === 'canceled') || s.operation === 'CANCEL';
      if (canceled && mine('cancel', s.id) === 0) {
        out.push({
          invariant: 'error-answer',
          message: `task ${task.id} subtask ${s.id} (${s.name}) was canceled, but every cancel of it was refused`,
        });
      }
    }
    if (task.subtasks.some((s) => s.operation === 'ROLLBACK') && mine('rollback') === 0) {
      out.push({
        invariant: 'error-answer',
        message: `task ${task.id} has rollback steps, but every rollback of it was refused`,
      });
    }
  }
}

export function judgeRun(e: RunEvidence): Violation[] {
  const out: Violation[] = [];
  checkOverlaps(e, out);
  checkInterleaving(e, out);
  checkLocks(e, out);
  checkRunning(e, out);
  checkErrorAnswers(e, out);
  return out;
}

export { describe as describeAnswer };
