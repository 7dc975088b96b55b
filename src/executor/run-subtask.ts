/**
 * The executor's handler for one "run this subtask" message.
 *
 * 1. Load the task (`loadRun`). A redelivered message means its previous
 *    holder may have died between storing a change and announcing it:
 *    announce it again (deduplicated) before anything else.
 * 2. A subtask that has already ended only needs its follow-up: queue what is
 *    READY, free the host when the task has ended.
 * 3. Otherwise hold the host lock (`holdHost`), mark the subtask RUNNING
 *    (`markRunning`, compare-and-set), render the step's script from the
 *    configured runbook (never from the record: see tasks/step-plans.ts), and
 *    run it on the host — or attach to the copy a dead executor started —
 *    heartbeating the message and the lock while it runs (`runStep`). A step
 *    whose configuration changed since the task was planned does not start:
 *    it fails "configuration changed". A host that could not be reached is
 *    attached to again later (`mayStillRun`), until the step must have ended.
 * 4. Store the log, mark the subtask SUCCESSFUL or FAILED, follow up, ack
 *    (`finish`).
 *
 * Every decision on a failure reads its kind (step-failure.ts), never its text.
 */
import type { Logger } from 'pino';
import { WorkItem } from '../contracts/events.js';
import type { OcpSubtask } from '../contracts/ocp-task.js';
import { completeSubtask, findSubtask, readySubtasks, startSubtask } from '../core/task.js';
import { hostsAtRest, type StoredStep, type TaskRecord } from '../core/task-record.js';
import type { Metrics } from '../metrics.js';
import type { TaskDeps } from '../tasks/deps.js';
import { holderIsGone, releaseHosts, releaseIfAtRest } from '../tasks/host-claims.js';
import type { DeliveredMessage } from '../tasks/ports.js';
import { queueReady } from '../tasks/queue-ready.js';
import { type StepToRun, stepToRun } from '../tasks/step-plans.js';
import { KILL_AFTER_SECONDS, runKeyOf, type StepResult, type StepRunner, type StepSpec, targetOf } from './ports.js';
import { asStepError, failureOfResult, finalMessage, type StepFailure, stepFailure } from './step-failure.js';

/** What a handler keeps while its step runs. */
interface Prepared {
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

export function createSubtaskHandler(deps: ExecutorDeps) {
  // No `config` kept: the inventory is read from deps.config when a step starts (SPEC §9);
  // executor.leaseSeconds is fixed for the process's life.
  const { store, locks, logger } = deps;
  const leaseMs = deps.config.executor.leaseSeconds * 1000;
  const launchWindowSeconds = deps.config.executor.leaseSeconds + LAUNCH_MARGIN_SECONDS;
  /** Heartbeat period: three per ack wait (half the lease). */
  const beatMs = Math.max(200, Math.floor(leaseMs / 6));

  /**
   * Queue what is READY and free the hosts whose chain has come to rest (a
   * batch frees each host when its chain ends, not when the slowest one does).
   * After a change of its own, a handler passes what that change touched:
   * what it made READY and its host, so a batch's follow-ups stay O(1) each;
   * without it (a redelivery, a recovery) everything is looked at.
   */
  async function followUp(record: TaskRecord, own?: { opened: ReadonlySet<number>; hostId: number }): Promise<void> {
    await queueReady(deps, record, own?.opened);
    const atRest = hostsAtRest(record);
    if (own && record.task.status === 'RUNNING') {
      await releaseHosts(
        deps,
        atRest.filter((h) => h === own.hostId),
        record.task.id,
      );
    } else {
      // The task has ended (as this handler saw it): a Retry, Skip or Rollback may
      // have set it running again since, its hosts taken anew — keep those.
      await releaseIfAtRest(deps, record.task.id, atRest);
    }
  }

  /**
   * Steps 1-2: the task, and the subtask still to run (READY, or RUNNING for a
   * takeover); undefined when the message has been answered (acked, termed).
   */
  async function loadRun(
    msg: DeliveredMessage,
    item: WorkItem,
  ): Promise<{ record: TaskRecord; subtask: OcpSubtask; step: StoredStep; log: Logger } | undefined> {
    // The usual case, a READY subtask to start, may be judged on this process's
    // own last write (the compare-and-set that starts it confirms it); anything
    // else is judged on the stored task.
    const mayStart = (r: TaskRecord) =>
      r.task.status === 'RUNNING' &&
      findSubtask(r.task, item.subtaskId)?.status === 'READY' &&
      findSubtask(r.task, item.subtaskId)?.runTime === item.runTime;
    let stored = msg.redelivered ? undefined : await store.peek(item.taskId);
    if (!stored || !mayStart(stored.record)) stored = await store.get(item.taskId);
    if (!stored) {
      msg.term();
      return undefined;
    }
    if (msg.redelivered) await store.publishOutbox(stored.record);
    const record = stored.record;
    const log = logger.child({ taskId: item.taskId, subtaskId: item.subtaskId, traceId: record.traceId });
    const subtask = findSubtask(record.task, item.subtaskId);
    const step = record.steps[String(item.subtaskId)];
    if (!subtask || !step || subtask.runTime !== item.runTime || subtask.status === 'PENDING') {
      msg.ack(); // a stale run (retried since) or an unknown subtask
      return undefined;
    }
    if (subtask.status === 'SUCCESSFUL' || subtask.status === 'FAILED' || record.task.status !== 'RUNNING') {
      await followUp(record);
      msg.ack();
      return undefined;
    }
    return { record, subtask, step, log };
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

  /** Step 3: a READY subtask marked RUNNING; undefined when it may not start (the message answered). */
  async function markRunning(msg: DeliveredMessage, item: WorkItem): Promise<TaskRecord | undefined> {
    const started = await store.update(item.taskId, (r) => {
      const s = findSubtask(r.task, item.subtaskId);
      if (r.task.status !== 'RUNNING' || s?.status !== 'READY' || s.runTime !== item.runTime) return undefined;
      return { ...r, task: startSubtask(r.task, item.subtaskId, deps.address, deps.now()) };
    });
    if (!started) {
      msg.term();
      return undefined;
    }
    if (findSubtask(started.task, item.subtaskId)?.status !== 'RUNNING') {
      msg.ack(); // someone else moved it on (cancel, skip) meanwhile
      return undefined;
    }
    return started;
  }

  /**
   * Steps 1-3 up to the run: the subtask marked RUNNING and the host ours, or
   * undefined when the message has been answered (acked, naked, termed). The
   * task record stays in here: a step may run for minutes, and a thousand of
   * them in flight should not each hold a copy of their task.
   */
  async function prepare(msg: DeliveredMessage, item: WorkItem): Promise<Prepared | undefined> {
    const found = await loadRun(msg, item);
    if (!found) return undefined;
    const { subtask, step, log } = found;
    // A task of an operation that is not exclusive holds no host.
    if (!found.record.shared && !(await holdHost(msg, step.hostId, item.taskId, log))) return undefined;
    let record = found.record;
    if (subtask.status === 'READY') {
      const started = await markRunning(msg, item);
      if (!started) return undefined;
      record = started;
    } else {
      log.info({ hostId: step.hostId, status: subtask.status }, 'taking over a subtask left running');
    }

    const began = Date.parse(findSubtask(record.task, item.subtaskId)?.startTime ?? '') || Date.now();
    // Rendered from the configuration of this moment (SPEC §9); what runs keeps what it began with.
    const toRun = stepToRun(deps.config, record, item.subtaskId) ?? {
      ok: false,
      reason: `task ${item.taskId} has no step for subtask ${item.subtaskId}`,
    };
    // A configured step runs with its configured timeout, whatever the record says.
    const timeout = toRun.ok ? toRun.timeout : subtask.timeout;
    return {
      subtask: { name: subtask.name, timeout },
      hostId: step.hostId,
      toRun,
      takeover: subtask.status !== 'READY',
      began,
      log,
    };
  }

  /** What to run where; or, the configuration having changed, why nothing starts. */
  function stepSpecOf(item: WorkItem, p: Prepared): StepSpec | StepFailure {
    const { toRun } = p;
    const run = {
      runKey: runKeyOf(deps.epoch, item),
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
  async function runStep(msg: DeliveredMessage, item: WorkItem, p: Prepared): Promise<Ran> {
    const spec = stepSpecOf(item, p);
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

  /** The step's output, ended by the reason of its failure, so whoever reads only the log sees it too. */
  async function storeLog(item: WorkItem, ran: Ran, error: string | undefined): Promise<void> {
    const output = 'result' in ran ? ran.result.output : '';
    await deps.logs.put(item.taskId, item.subtaskId, {
      log: error ? `${output}${output === '' || output.endsWith('\n') ? '' : '\n'}[ocp-chatops] ${error}\n` : output,
      truncated: 'result' in ran ? ran.result.truncated : false,
      ...('result' in ran ? { exitCode: ran.result.exitCode } : {}),
      ...(error ? { error } : {}),
    });
  }

  /**
   * The subtask marked SUCCESSFUL or FAILED: the task as stored after, whether
   * that ended it, and which subtasks it made READY — `opened` undefined when
   * the subtask had moved on meanwhile (a skip, a retry) and nothing was
   * changed here, so the follow-up looks at everything.
   */
  async function complete(
    item: WorkItem,
    ok: boolean,
  ): Promise<{ record: TaskRecord; endedTask: boolean; opened: Set<number> | undefined } | undefined> {
    let endedTask = false;
    let opened: Set<number> | undefined;
    const record = await store.update(item.taskId, (r) => {
      const s = findSubtask(r.task, item.subtaskId);
      endedTask = false;
      opened = undefined;
      if (!s || s.runTime !== item.runTime || (s.status !== 'RUNNING' && s.status !== 'CANCELING')) return undefined;
      // A subtask being canceled ends FAILED even if its step got to finish.
      const outcome = ok && s.status === 'RUNNING' ? 'SUCCESSFUL' : 'FAILED';
      const task = completeSubtask(r.task, item.subtaskId, outcome, deps.now(), r.maxParallel);
      endedTask = task.status !== 'RUNNING';
      const wasReady = new Set(readySubtasks(r.task).map((x) => x.id));
      opened = new Set(readySubtasks(task).flatMap((x) => (wasReady.has(x.id) ? [] : [x.id])));
      return { ...r, task };
    });
    return record && { record, endedTask, opened };
  }

  /** Step 4: log stored, subtask ended, what it opened queued, the message acked. */
  async function finish(
    msg: DeliveredMessage,
    item: WorkItem,
    p: Prepared,
    ran: Ran,
    startedAt: number,
  ): Promise<void> {
    const failure = failureOf(ran, p);
    const error = failure && finalMessage(failure);
    await storeLog(item, ran, error);
    const done = await complete(item, failure === undefined);
    const status = failure ? 'FAILED' : 'SUCCESSFUL';
    deps.metrics?.subtaskSeconds.observe({ name: p.subtask.name, status }, (performance.now() - startedAt) / 1000);
    if (done?.endedTask) {
      deps.metrics?.tasksFinished.inc({ runbook: done.record.task.name, status: done.record.task.status });
    }
    if (failure) p.log.warn({ hostId: p.hostId, kind: failure.kind, error }, 'subtask failed');
    else p.log.info({ hostId: p.hostId }, 'subtask succeeded');
    // Only what this change opened: whatever else is READY was queued by whoever opened it.
    if (done) await followUp(done.record, done.opened && { opened: done.opened, hostId: p.hostId });
    msg.ack();
  }

  return async function handle(msg: DeliveredMessage): Promise<void> {
    const item = workItemOf(msg, logger);
    if (!item) return;
    const prepared = await prepare(msg, item);
    if (!prepared) return;
    const startedAt = performance.now();
    const ran = await runStep(msg, item, prepared);
    if (mayStillRun(ran, prepared)) {
      const err = ran.failure.message;
      prepared.log.warn({ hostId: prepared.hostId, err }, 'host unreachable; will attach to the step again');
      msg.nak(UNREACHABLE_RETRY_MS);
      return;
    }
    await finish(msg, item, prepared, ran, startedAt);
  };
}
