/**
 * The executor's handler for one "run this subtask" message.
 *
 * 1. Load the task. A redelivered message means its previous holder may have
 *    died between storing a change and announcing it: announce it again
 *    (deduplicated) before anything else.
 * 2. A subtask that has already ended only needs its follow-up: queue what is
 *    READY, free the host when the task has ended.
 * 3. Otherwise mark it RUNNING (compare-and-set), hold the host lock, render
 *    the step's script from the configured runbook (never from the record: see
 *    tasks/step-plans.ts), and run it on the host — or attach to the copy a
 *    dead executor started — heartbeating the message and the lock while it
 *    runs. A step whose configuration changed since the task was planned does
 *    not start: it fails "configuration changed".
 * 4. Store the log, mark the subtask SUCCESSFUL or FAILED, follow up, ack.
 */
import type { Logger } from 'pino';
import { WorkItem } from '../contracts/events.js';
import { completeSubtask, findSubtask, readySubtasks, startSubtask } from '../core/task.js';
import { hostsAtRest, type TaskRecord } from '../core/task-record.js';
import type { Metrics } from '../metrics.js';
import type { TaskDeps } from '../tasks/deps.js';
import { holderIsGone, releaseHosts, releaseIfAtRest } from '../tasks/host-claims.js';
import { type StepToRun, stepToRun } from '../tasks/step-plans.js';
import { KILL_AFTER_SECONDS, type StepResult, type StepRunner, targetOf } from './ports.js';
import type { WorkMessage } from './work-message.js';

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

export function createSubtaskHandler(deps: ExecutorDeps) {
  const { config, store, locks, logger } = deps;
  const leaseMs = config.executor.leaseSeconds * 1000;
  const launchWindowSeconds = config.executor.leaseSeconds + LAUNCH_MARGIN_SECONDS;
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
    for (const s of readySubtasks(record.task)) {
      if (own && !own.opened.has(s.id)) continue;
      await deps.enqueue({ taskId: record.task.id, subtaskId: s.id, runTime: s.runTime }, record.traceId);
    }
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
   * Steps 1-3 up to the run: the subtask marked RUNNING and the host ours, or
   * undefined when the message has been answered (acked, naked, termed). The
   * task record stays in here: a step may run for minutes, and a thousand of
   * them in flight should not each hold a copy of their task.
   */
  async function prepare(msg: WorkMessage, item: WorkItem): Promise<Prepared | undefined> {
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
    let record = stored.record;
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

    // The host must be ours. Another holder (there should be none while this
    // task runs) is waited for unless it is gone; never overlapped. A task of
    // an operation that is not exclusive holds no host.
    const lock = record.shared ? { ok: true as const } : await locks.hold(step.hostId, item.taskId, leaseMs / 3);
    if (!lock.ok) {
      if (!(await holderIsGone(deps, lock.holder, lock.at))) {
        log.warn({ hostId: step.hostId, holder: lock.holder }, 'host held by another task; waiting');
        msg.nak(Math.min(leaseMs, 5000));
        return undefined;
      }
      if (!(await locks.replace(step.hostId, item.taskId, lock.revision))) {
        msg.nak(500);
        return undefined;
      }
    }

    if (subtask.status === 'READY') {
      const started = await store.update(item.taskId, (r) => {
        const s = findSubtask(r.task, item.subtaskId);
        if (r.task.status !== 'RUNNING' || s?.status !== 'READY' || s.runTime !== item.runTime) return undefined;
        return { ...r, task: startSubtask(r.task, item.subtaskId, deps.address, deps.now()) };
      });
      if (!started) {
        msg.term();
        return undefined;
      }
      record = started;
      if (findSubtask(record.task, item.subtaskId)?.status !== 'RUNNING') {
        msg.ack(); // someone else moved it on (cancel, skip) meanwhile
        return undefined;
      }
    } else {
      log.info({ hostId: step.hostId, status: subtask.status }, 'taking over a subtask left running');
    }

    const began = Date.parse(findSubtask(record.task, item.subtaskId)?.startTime ?? '') || Date.now();
    const toRun = stepToRun(config, record, item.subtaskId) ?? {
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

  return async function handle(msg: WorkMessage): Promise<void> {
    const parsed = WorkItem.safeParse(msg.json());
    if (!parsed.success) {
      logger.error({ subject: msg.subject }, 'malformed work item dropped');
      msg.term();
      return;
    }
    const item = parsed.data;
    const prepared = await prepare(msg, item);
    if (!prepared) return;
    const { subtask, hostId, toRun, takeover, began, log } = prepared;

    const host = toRun.host;
    // The work item is the lease: keep it while the step runs.
    const beat = setInterval(() => msg.working(), beatMs);
    /** `final`: nothing was launched, and nothing will be: no point attaching again. */
    let result: StepResult | { error: string; final?: boolean };
    const startedAt = performance.now();
    deps.metrics?.subtasksInFlight.inc();
    try {
      if (!toRun.ok && !(takeover && host)) {
        // Not started: the configuration changed since the task was planned.
        result = { error: toRun.reason, final: true };
      } else {
        if (!host) throw new Error(`host ${hostId} is no longer in the inventory`);
        result = await deps.runner.run({
          target: targetOf(host),
          runKey: `${deps.epoch}-${item.taskId}-${item.subtaskId}-${item.runTime}`,
          // Taken over with a changed configuration: wait for what the dead
          // executor launched, but launch nothing of the new configuration.
          ...(toRun.ok ? { script: toRun.script } : { script: '', attachOnly: true }),
          timeoutSeconds: subtask.timeout,
          launchBy: Math.floor(began / 1000) + launchWindowSeconds,
        });
      }
    } catch (err) {
      result = { error: (err as Error).message };
    } finally {
      clearInterval(beat);
      deps.metrics?.subtasksInFlight.dec();
    }

    // A lost connection says nothing about the step: it may run on, detached,
    // on the host. Until it must have ended — launched at the latest by the end
    // of its launch window, then its timeout, the kill grace and a margin for
    // the host's clock — come back and attach again rather than call it failed
    // and free the host under it. A refused host key never connected, and a
    // state folder that cannot be made never launched anything.
    if ('error' in result && !result.final && host && !/known_hosts|host key|cannot create/i.test(result.error)) {
      const mustHaveEnded =
        began + (launchWindowSeconds + subtask.timeout + KILL_AFTER_SECONDS + UNREACHABLE_MARGIN_SECONDS) * 1000;
      if (Date.now() < mustHaveEnded) {
        log.warn({ hostId: host.id, err: result.error }, 'host unreachable; will attach to the step again');
        msg.nak(UNREACHABLE_RETRY_MS);
        return;
      }
      result = { error: `host unreachable: ${result.error}` };
    }

    const ok = !('error' in result) && result.exitCode === 0;
    const error =
      'error' in result
        ? result.error
        : result.notLaunched
          ? toRun.ok
            ? 'not launched'
            : toRun.reason
          : result.timedOut
            ? `timed out after ${subtask.timeout} s`
            : result.canceled
              ? 'canceled'
              : result.notStarted
                ? `not started: the host could not be reached within ${launchWindowSeconds} s of the subtask's start (Retry runs it)`
                : result.exitCode !== 0
                  ? `exit code ${result.exitCode}`
                  : undefined;
    // The reason of a failure ends the log, so whoever reads only the log sees it too.
    const output = 'error' in result ? '' : result.output;
    await deps.logs.put(item.taskId, item.subtaskId, {
      log: error ? `${output}${output === '' || output.endsWith('\n') ? '' : '\n'}[ocp-chatops] ${error}\n` : output,
      truncated: 'error' in result ? false : result.truncated,
      ...('error' in result ? {} : { exitCode: result.exitCode }),
      ...(error ? { error } : {}),
    });
    let endedTask = false;
    let opened: Set<number> | undefined;
    const done = await store.update(item.taskId, (r) => {
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
    deps.metrics?.subtaskSeconds.observe(
      { name: subtask.name, status: ok ? 'SUCCESSFUL' : 'FAILED' },
      (performance.now() - startedAt) / 1000,
    );
    if (done && endedTask) deps.metrics?.tasksFinished.inc({ runbook: done.task.name, status: done.task.status });
    if (ok) log.info({ hostId }, 'subtask succeeded');
    else log.warn({ hostId, error }, 'subtask failed');
    // Only what this change opened: whatever else is READY was queued by whoever opened it.
    if (done) await followUp(done, opened && { opened, hostId });
    msg.ack();
  };
}
