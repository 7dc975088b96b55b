/**
 * The executor's handler for one work item: "run this host chain, from this
 * run of this subtask" (docs/ARCHITECTURE.md, "One work item per host chain").
 *
 * 1. Load the chain (`loadChain`): a batch's chain record, or the whole task
 *    when it is one record. A redelivered message means its previous holder
 *    may have died between storing a change and announcing it: announce it
 *    again (deduplicated) before anything else.
 * 2. Pick the chain's subtask to run: one left RUNNING (a takeover: attach to
 *    its run), else one READY (or a batch's chain not started yet, whose work
 *    item is its READY). None: the chain has come to rest — follow up (free the
 *    host; a batch's progress opens the next chains and ends the task) and ack.
 * 3. Hold the host lock (`holdHost`, once per item), mark the subtask RUNNING
 *    (compare-and-set), render the step's script from the configured runbook
 *    (never from the record: see tasks/step-plans.ts), and run it on the host —
 *    or attach to the copy a dead executor started — heartbeating the message
 *    while it runs (`runStep`). A step whose configuration changed since the
 *    task was planned does not start: it fails "configuration changed". A host
 *    that could not be reached is attached to again later (`mayStillRun`),
 *    until the step must have ended.
 * 4. Store the log (when there is one), end the subtask SUCCESSFUL or FAILED
 *    and start the chain's next in the same compare-and-set (`complete`), and
 *    go on with it (back to 3) until the chain rests.
 *
 * Every decision on a failure reads its kind (step-failure.ts), never its text.
 */
import type { Logger } from 'pino';
import { WorkItem } from '../contracts/events.js';
import type { OcpSubtask } from '../contracts/ocp-task.js';
import { completeSubtask, findSubtask, readySubtasks, startSubtask } from '../core/task.js';
import { chainAtRest, chainFailed } from '../core/task-layout.js';
import { hostsAtRest, type TaskRecord } from '../core/task-record.js';
import type { Metrics } from '../metrics.js';
import { followBatch } from '../tasks/control-batch.js';
import type { TaskDeps } from '../tasks/deps.js';
import { holderIsGone, releaseHosts, releaseIfAtRest } from '../tasks/host-claims.js';
import type { DeliveredMessage } from '../tasks/ports.js';
import { queueReady } from '../tasks/queue-ready.js';
import { type StepToRun, stepToRun } from '../tasks/step-plans.js';
import { KILL_AFTER_SECONDS, runKeyOf, type StepResult, type StepRunner, type StepSpec, targetOf } from './ports.js';
import { asStepError, failureOfResult, finalMessage, type StepFailure, stepFailure } from './step-failure.js';

/** What a handler keeps while its step runs. */
interface Prepared {
  /** The run: which subtask, which run of it. */
  run: { taskId: number; subtaskId: number; runTime: number };
  subtask: { name: string; timeout: number };
  hostId: number;
  /** The script to run, rendered from the configuration now; or why the step may not run. */
  toRun: StepToRun;
  /** The subtask was RUNNING already: a dead executor may have launched its step. */
  takeover: boolean;
  /** When the subtask started (epoch ms). */
  began: number;
  log: Logger;
}

/** What running the step came to: how it ended on the host, or why no end was heard. */
type Ran = { result: StepResult } | { failure: StepFailure };

export interface ExecutorDeps extends TaskDeps {
  runner: StepRunner;
  metrics?: Metrics;
}

/**
 * How long after a subtask began its step may still be launched on the host,
 * beyond the lease (a takeover comes within the lease) (s): a host out of
 * reach longer than that never starts it (the launch refuses, and claims the
 * run so that no later attempt starts it either), so an executor knows by when
 * nothing of it can run, and only then frees the host.
 */
const LAUNCH_MARGIN_SECONDS = 30;
/** Slack for the host's clock against ours, and for the last answer (s). */
const UNREACHABLE_MARGIN_SECONDS = 30;
/** Pause before attaching again to a step whose host did not answer (ms). */
const UNREACHABLE_RETRY_MS = 5000;

/** The message's work item; a malformed one is dropped (termed), logged. */
function workItemOf(msg: DeliveredMessage, logger: Logger): WorkItem | undefined {
  const parsed = WorkItem.safeParse(msg.json());
  if (parsed.success) return parsed.data;
  logger.error({ subject: msg.subject }, 'malformed work item dropped');
  msg.term();
  return undefined;
}

/** The subtasks of `record` on the same host chain as `subtaskId`, in order; empty when it has none. */
function chainOfSubtask(record: TaskRecord, subtaskId: number): OcpSubtask[] {
  const s = findSubtask(record.task, subtaskId);
  if (!s) return [];
  return record.task.subtasks.filter((x) => x.parallelIdx === s.parallelIdx);
}

/**
 * The subtask of a chain to run now: one left RUNNING or CANCELING (taken
 * over), else one READY, else — a batch's chain never started, which only its
 * work item opens — its first, still PENDING.
 */
function nextOfChain(record: TaskRecord, chain: readonly OcpSubtask[]): OcpSubtask | undefined {
  if (record.task.status !== 'RUNNING') return undefined;
  const active = chain.find((s) => s.status === 'RUNNING' || s.status === 'CANCELING');
  if (active) return active;
  const ready = chain.find((s) => s.status === 'READY');
  if (ready) return ready;
  if (record.layout === 'chains' && chain.every((s) => s.status === 'PENDING')) {
    return chain.find((s) => s.upstreams.length === 0);
  }
  return undefined;
}

export function createSubtaskHandler(deps: ExecutorDeps) {
  // No `config` kept: the inventory is read from deps.config when a step starts (SPEC §9);
  // executor.leaseSeconds is fixed for the process's life.
  const { store, locks, logger } = deps;
  const leaseMs = deps.config.executor.leaseSeconds * 1000;
  const launchWindowSeconds = deps.config.executor.leaseSeconds + LAUNCH_MARGIN_SECONDS;
  /** Heartbeat period: three per ack wait (half the lease). */
  const beatMs = Math.max(200, Math.floor(leaseMs / 6));

  /**
   * A chain has come to rest (or its task ended): free its host, and queue
   * what became READY elsewhere. A batch stored in parts reports the chain to
   * its progress, which opens the next chains and ends the task after the
   * last. A whole record (a single host, or a batch of an older version) was
   * settled whole by the change that rested the chain: queue what it opened
   * (`opened`; undefined: look at everything) and free the hosts at rest.
   */
  async function followUp(record: TaskRecord, hostId: number, opened?: ReadonlySet<number>): Promise<void> {
    if (record.layout === 'chains' && record.chain !== undefined) {
      const chain = record.task.subtasks;
      if (!chainAtRest(chain)) return;
      const rested = await store.chainRested(
        record.task.id,
        record.chain,
        chainFailed(chain, record.task.operation === 'ROLLBACK'),
      );
      await followBatch(deps, record.task.id, record.traceId, rested);
      if (rested.ended) deps.metrics?.tasksFinished.inc({ runbook: rested.ended.name, status: rested.ended.status });
      if (!record.shared) await releaseHosts(deps, [hostId], record.task.id);
      return;
    }
    await queueReady(deps, record, opened);
    const atRest = hostsAtRest(record);
    if (opened && record.task.status === 'RUNNING') {
      await releaseHosts(
        deps,
        atRest.filter((h) => h === hostId),
        record.task.id,
      );
    } else {
      // The task has ended (as this handler saw it): a Retry, Skip or Rollback may
      // have set it running again since, its hosts taken anew — keep those.
      await releaseIfAtRest(deps, record.task.id, atRest);
    }
  }

  /**
   * Step 3: the host must be ours. Another holder (there should be none while
   * this task runs) is waited for unless it is gone; never overlapped. False
   * when the message has been answered (naked).
   */
  async function holdHost(msg: DeliveredMessage, hostId: number, taskId: number, log: Logger): Promise<boolean> {
    const lock = await locks.hold(hostId, taskId, leaseMs / 3);
    if (lock.ok) return true;
    if (!(await holderIsGone(deps, lock))) {
      log.warn({ hostId, holder: lock.holder }, 'host held by another task; waiting');
      msg.nak(Math.min(leaseMs, 5000));
      return false;
    }
    if (!(await locks.replace(hostId, taskId, lock.revision))) {
      msg.nak(500);
      return false;
    }
    return true;
  }

  /** A subtask of the chain marked RUNNING by this change (from READY, or PENDING for a batch chain's first). */
  function starting(r: TaskRecord, subtaskId: number): TaskRecord['task'] | undefined {
    const s = findSubtask(r.task, subtaskId);
    if (r.task.status !== 'RUNNING' || !s) return undefined;
    if (s.status === 'READY') return startSubtask(r.task, subtaskId, deps.address, deps.now());
    if (s.status === 'PENDING' && r.layout === 'chains' && s.upstreams.length === 0) {
      const ready = {
        ...r.task,
        subtasks: r.task.subtasks.map((x) => (x.id === subtaskId ? { ...x, status: 'READY' as const } : x)),
      };
      return startSubtask(ready, subtaskId, deps.address, deps.now());
    }
    return undefined;
  }

  /** What to run for a subtask RUNNING in `record` (rendered from the configuration now). */
  function prepareRun(record: TaskRecord, subtask: OcpSubtask, takeover: boolean, log: Logger): Prepared {
    const hostId = record.steps[String(subtask.id)]?.hostId as number;
    const began = Date.parse(subtask.startTime ?? '') || Date.now();
    // Rendered from the configuration of this moment (SPEC §9); what runs keeps what it began with.
    const toRun = stepToRun(deps.config, record, subtask.id) ?? {
      ok: false,
      reason: `task ${record.task.id} has no step for subtask ${subtask.id}`,
    };
    // A configured step runs with its configured timeout, whatever the record says.
    const timeout = toRun.ok ? toRun.timeout : subtask.timeout;
    return {
      run: { taskId: record.task.id, subtaskId: subtask.id, runTime: subtask.runTime },
      subtask: { name: subtask.name, timeout },
      hostId,
      toRun,
      takeover,
      began,
      log: log.child({ subtaskId: subtask.id }),
    };
  }

  /** What to run where; or, the configuration having changed, why nothing starts. */
  function stepSpecOf(p: Prepared): StepSpec | StepFailure {
    const { toRun } = p;
    const run = {
      runKey: runKeyOf(deps.epoch, p.run),
      timeoutSeconds: p.subtask.timeout,
      launchBy: Math.floor(p.began / 1000) + launchWindowSeconds,
    };
    if (toRun.ok) return { ...run, target: targetOf(toRun.host), script: toRun.script };
    // Taken over with a changed configuration: wait for what the dead executor
    // launched, but launch nothing of the new configuration.
    if (p.takeover && toRun.host) return { ...run, target: targetOf(toRun.host), script: '', attachOnly: true };
    return stepFailure('configChanged', toRun.reason);
  }

  /** Step 3: the step run (or attached to) on the host, the work item kept as its lease meanwhile. */
  async function runStep(msg: DeliveredMessage, p: Prepared): Promise<Ran> {
    const spec = stepSpecOf(p);
    if ('kind' in spec) return { failure: spec };
    const beat = setInterval(() => msg.working(), beatMs);
    deps.metrics?.subtasksInFlight.inc();
    try {
      return { result: await deps.runner.run(spec) };
    } catch (err) {
      return { failure: asStepError(err) };
    } finally {
      clearInterval(beat);
      deps.metrics?.subtasksInFlight.dec();
    }
  }

  /**
   * A lost connection says nothing about the step: it may run on, detached, on
   * the host. Until it must have ended — launched at the latest by the end of
   * its launch window, then its timeout, the kill grace and a margin for the
   * host's clock — come back and attach again rather than call it failed and
   * free the host under it. Only a `retryable` kind is attached to again: a
   * refused host key never connected, and a state folder that cannot be made
   * never launched anything.
   */
  function mayStillRun(ran: Ran, p: Prepared): ran is { failure: StepFailure } {
    if (!('failure' in ran) || !ran.failure.retryable) return false;
    const seconds = launchWindowSeconds + p.subtask.timeout + KILL_AFTER_SECONDS + UNREACHABLE_MARGIN_SECONDS;
    return Date.now() < p.began + seconds * 1000;
  }

  /** How the step failed, in the words its log ends with; undefined when it succeeded. */
  function failureOf(ran: Ran, p: Prepared): StepFailure | undefined {
    if ('failure' in ran) return ran.failure;
    return failureOfResult(ran.result, {
      timeoutSeconds: p.subtask.timeout,
      launchWindowSeconds,
      notLaunchedReason: p.toRun.ok ? 'not launched' : p.toRun.reason,
    });
  }

  /**
   * The step's output, ended by the reason of its failure, so whoever reads
   * only the log sees it too. A step that succeeded without a word stores none:
   * its log reads empty all the same.
   */
  async function storeLog(p: Prepared, ran: Ran, error: string | undefined): Promise<void> {
    const output = 'result' in ran ? ran.result.output : '';
    if (!error && output === '') return;
    await deps.logs.put(p.run.taskId, p.run.subtaskId, {
      log: error ? `${output}${output === '' || output.endsWith('\n') ? '' : '\n'}[ocp-chatops] ${error}\n` : output,
      truncated: 'result' in ran ? ran.result.truncated : false,
      ...('result' in ran ? { exitCode: ran.result.exitCode } : {}),
      ...(error ? { error } : {}),
    });
  }

  /**
   * Step 4: the subtask ended SUCCESSFUL or FAILED and, in the same
   * compare-and-set, the chain's next subtask started (RUNNING) when it may
   * start at once. `next`: that subtask; `opened`: what else the change made
   * READY (a whole record settled whole); undefined record: the task is gone.
   */
  async function complete(
    p: Prepared,
    ok: boolean,
    record: TaskRecord,
  ): Promise<{ record: TaskRecord; next?: number; opened?: Set<number>; moved: boolean } | undefined> {
    let next: number | undefined;
    let opened: Set<number> | undefined;
    let moved = false;
    const { subtaskId, runTime } = p.run;
    const chainIdx = record.layout === 'chains' ? record.chain : undefined;
    const updated = await store.updateChain(p.run.taskId, chainIdx, (r) => {
      const s = findSubtask(r.task, subtaskId);
      next = undefined;
      opened = undefined;
      moved = false;
      if (!s || s.runTime !== runTime || (s.status !== 'RUNNING' && s.status !== 'CANCELING')) return undefined;
      moved = true;
      // A subtask being canceled ends FAILED even if its step got to finish.
      const outcome = ok && s.status === 'RUNNING' ? 'SUCCESSFUL' : 'FAILED';
      const maxParallel = r.layout === 'chains' ? undefined : r.maxParallel;
      let task = completeSubtask(r.task, subtaskId, outcome, deps.now(), maxParallel);
      const wasReady = new Set(readySubtasks(r.task).map((x) => x.id));
      const successor = task.subtasks.find(
        (x) => x.status === 'READY' && x.parallelIdx === s.parallelIdx && x.upstreams.includes(subtaskId),
      );
      if (successor) {
        task = startSubtask(task, successor.id, deps.address, deps.now());
        next = successor.id;
      }
      opened = new Set(readySubtasks(task).flatMap((x) => (wasReady.has(x.id) ? [] : [x.id])));
      return { ...r, task };
    });
    return (
      updated && { record: updated, ...(next === undefined ? {} : { next }), ...(opened ? { opened } : {}), moved }
    );
  }

  /**
   * Steps 1-2: the chain as stored, and its subtask to run now; undefined
   * when the message has been answered (acked, termed).
   */
  async function loadChain(
    msg: DeliveredMessage,
    item: WorkItem,
  ): Promise<{ record: TaskRecord; subtask: OcpSubtask; log: Logger } | undefined> {
    // The usual case may be judged on this process's own last write (the
    // compare-and-set that starts it confirms it); a redelivery reads the store.
    let stored = await store.chain(item.taskId, item.chain, !msg.redelivered);
    let chain = stored ? chainOfSubtask(stored.record, item.subtaskId) : [];
    let subtask = stored && nextOfChain(stored.record, chain);
    if (stored && !msg.redelivered && subtask?.status !== 'READY' && subtask?.status !== 'PENDING') {
      stored = await store.chain(item.taskId, item.chain, false);
      chain = stored ? chainOfSubtask(stored.record, item.subtaskId) : [];
      subtask = stored && nextOfChain(stored.record, chain);
    }
    if (!stored) {
      msg.term();
      return undefined;
    }
    const record = stored.record;
    if (msg.redelivered) await store.publishOutbox(record);
    const log = logger.child({ taskId: item.taskId, chain: item.chain, traceId: record.traceId });
    const asked = findSubtask(record.task, item.subtaskId);
    if (!asked || asked.runTime < item.runTime) {
      msg.ack(); // an unknown subtask, or a run not stored (a store reset)
      return undefined;
    }
    if (!subtask) {
      // Nothing left to run here: what a dead holder left to follow up.
      await followUp(record, record.steps[String(item.subtaskId)]?.hostId as number);
      msg.ack();
      return undefined;
    }
    return { record, subtask, log };
  }

  /** Start `subtask` (READY, or a batch chain's first PENDING); what stands after, or undefined when answered. */
  async function start(
    msg: DeliveredMessage,
    item: WorkItem,
    subtask: OcpSubtask,
    hostId: number,
  ): Promise<{ record: TaskRecord; subtask: OcpSubtask; takeover: boolean } | undefined> {
    const id = subtask.id;
    let ours = false;
    const started = await store.updateChain(item.taskId, item.chain, (r) => {
      const task = starting(r, id);
      ours = task !== undefined;
      return task && { ...r, task };
    });
    if (!started) {
      msg.term();
      return undefined;
    }
    const s = findSubtask(started.task, id);
    if (ours && s?.status === 'RUNNING') return { record: started, subtask: s, takeover: false };
    // Someone else moved it on (cancel, skip, another executor) meanwhile: look again.
    const again = nextOfChain(started, chainOfSubtask(started, id));
    if (again && (again.status === 'RUNNING' || again.status === 'CANCELING')) {
      return { record: started, subtask: again, takeover: true };
    }
    if (!again) await followUp(started, hostId);
    msg.ack();
    return undefined;
  }

  return async function handle(msg: DeliveredMessage): Promise<void> {
    const item = workItemOf(msg, logger);
    if (!item) return;
    const found = await loadChain(msg, item);
    if (!found) return;
    let { record, subtask } = found;
    const { log } = found;
    const hostId = record.steps[String(subtask.id)]?.hostId as number;
    // A task of an operation that is not exclusive holds no host.
    if (!record.shared && !(await holdHost(msg, hostId, item.taskId, log))) return;
    /** Started by this handler's own write (else left RUNNING by someone: a takeover). */
    let mine = false;
    for (;;) {
      let takeover = false;
      if (subtask.status === 'READY' || subtask.status === 'PENDING') {
        const s = await start(msg, item, subtask, hostId);
        if (!s) return;
        ({ record, subtask, takeover } = s);
      } else if (!mine) {
        takeover = true;
        log.info({ hostId, subtaskId: subtask.id, status: subtask.status }, 'taking over a subtask left running');
      }
      const p = prepareRun(record, subtask, takeover, log);
      const startedAt = performance.now();
      const ran = await runStep(msg, p);
      if (mayStillRun(ran, p)) {
        p.log.warn({ hostId, err: ran.failure.message }, 'host unreachable; will attach to the step again');
        msg.nak(UNREACHABLE_RETRY_MS);
        return;
      }
      const failure = failureOf(ran, p);
      const error = failure && finalMessage(failure);
      await storeLog(p, ran, error);
      const done = await complete(p, failure === undefined, record);
      deps.metrics?.subtaskSeconds.observe(
        { name: p.subtask.name, status: failure ? 'FAILED' : 'SUCCESSFUL' },
        (performance.now() - startedAt) / 1000,
      );
      if (failure) p.log.warn({ hostId, kind: failure.kind, error }, 'subtask failed');
      else p.log.debug({ hostId }, 'subtask succeeded');
      if (!done) {
        msg.term();
        return;
      }
      if (done.moved && done.record.layout !== 'chains' && done.record.task.status !== 'RUNNING') {
        deps.metrics?.tasksFinished.inc({ runbook: done.record.task.name, status: done.record.task.status });
      }
      // A whole record settled whole: what this change opened on other chains is queued now.
      if (done.opened && done.opened.size > 0) await queueReady(deps, done.record, done.opened);
      const next = done.next === undefined ? undefined : findSubtask(done.record.task, done.next);
      record = done.record;
      if (next?.status === 'RUNNING') {
        // The chain's next subtask, started by the same write: run it now.
        subtask = next;
        mine = true;
        continue;
      }
      const left = nextOfChain(record, chainOfSubtask(record, subtask.id));
      if (!left) {
        await followUp(record, hostId, done.moved ? new Set() : undefined);
        msg.ack();
        return;
      }
      // Something of the chain is to run still (moved on by someone meanwhile): go on with it.
      subtask = left;
      mine = false;
    }
  };
}
