/**
 * An operator's hold on a running batch (SPEC §10): pause it (no new host
 * starts, what runs finishes, it stays RUNNING with `stringMap.paused`),
 * resume it, or cancel it (no new host starts, the steps that run are
 * stopped on their hosts, and it ends FAILED with the hosts never started
 * left PENDING). And what follows whenever a batch's progress is judged
 * again (`followBatch`): the chains it opened are queued, the hosts it never
 * started are freed.
 *
 * A task that is not a batch, or a batch that has ended: 409 / 20003.
 */
import { idText } from '../contracts/api.js';
import type { OcpTask } from '../contracts/ocp-task.js';
import { cancelSubtask } from '../core/task-actions.js';
import type { TaskRecord } from '../core/task-record.js';
import { formatOcpTime } from '../core/time.js';
import { CodedError, ErrorCode } from '../errors.js';
import { runKeyOf, targetOf } from '../executor/ports.js';
import type { OperationDeps, TaskDeps } from './deps.js';
import { hostOrThrow } from './find-or-throw.js';
import { releaseIfAtRest } from './host-claims.js';
import { type ChainRested, StoredNotAnnounced } from './ports.js';

/** Queue the chains a judgement of the batch opened; free the hosts it ended without starting. */
export async function followBatch(deps: TaskDeps, taskId: number, traceId: string, rested: ChainRested): Promise<void> {
  await Promise.all(rested.open.map((o) => deps.enqueue({ taskId, ...o }, traceId)));
  if (rested.unstarted && rested.unstarted.length > 0) await releaseIfAtRest(deps, taskId, rested.unstarted);
}

/** The batch (its head only), or why it cannot be held: 404 / 20000, 409 / 20003. */
async function runningBatchOrThrow(deps: TaskDeps, taskId: number, verb: string): Promise<Omit<OcpTask, 'subtasks'>> {
  const task = await deps.store.summary(taskId);
  if (!task) throw new CodedError(ErrorCode.taskNotFound, `task ${idText(taskId)} not found`, 'taskId');
  if (!task.context.parallel) {
    throw new CodedError(ErrorCode.illegalState, `task ${taskId} is not a batch; only a batch can be ${verb}`);
  }
  if (task.status !== 'RUNNING') {
    throw new CodedError(
      ErrorCode.illegalState,
      `task ${taskId} has ended ${task.status}; only a RUNNING batch can be ${verb}`,
    );
  }
  return task;
}

/** A batch's record as stored, or 404 when it went meanwhile (retention). */
function storedOrThrow(record: TaskRecord | undefined, taskId: number): TaskRecord {
  if (!record) throw new CodedError(ErrorCode.taskNotFound, `task ${idText(taskId)} not found`, 'taskId');
  return record;
}

/**
 * Pause a running batch: no chain opens from now on; what runs finishes. A
 * batch paused already stays paused (and is answered as it stands).
 */
export async function pause(deps: TaskDeps, taskId: number): Promise<OcpTask> {
  await runningBatchOrThrow(deps, taskId, 'paused');
  const record = storedOrThrow(await deps.store.setPaused(taskId, true), taskId);
  deps.logger.info({ taskId, traceId: record.traceId }, 'batch paused');
  return record.task;
}

/** Resume a paused batch: the chains the rules allow start now. Resuming one not paused changes nothing. */
export async function resume(deps: TaskDeps, taskId: number): Promise<OcpTask> {
  await runningBatchOrThrow(deps, taskId, 'resumed');
  const resumed = storedOrThrow(await deps.store.setPaused(taskId, false), taskId);
  const rested = await deps.store.advance(taskId);
  await followBatch(deps, taskId, resumed.traceId, rested);
  deps.logger.info({ taskId, opened: rested.open.length, traceId: resumed.traceId }, 'batch resumed');
  if (rested.open.length === 0 && !rested.ended) return resumed.task;
  return storedOrThrow((await deps.store.get(taskId))?.record, taskId).task;
}

/**
 * A batch's steps stopped: RUNNING ones CANCELING (the executor ends them
 * FAILED once their process group is gone), READY ones — queued, not
 * started — FAILED at once, operation CANCEL.
 */
function cancelSteps(task: OcpTask, now: Date): OcpTask {
  let next = task;
  for (const s of task.subtasks) {
    if (s.status === 'RUNNING') next = cancelSubtask(next, s.id);
  }
  const at = formatOcpTime(now);
  return {
    ...next,
    subtasks: next.subtasks.map((s) =>
      s.status === 'READY' ? { ...s, status: 'FAILED' as const, operation: 'CANCEL' as const, finishTime: at } : s,
    ),
  };
}

/**
 * Cancel a running batch: its progress opens no chain again, its steps are
 * stopped (see cancelSteps) and killed on their hosts; it ends FAILED once
 * none runs, the hosts never started left PENDING (Retry resumes them).
 */
export async function cancelBatch(deps: OperationDeps, taskId: number): Promise<OcpTask> {
  await runningBatchOrThrow(deps, taskId, 'canceled');
  await deps.store.stopBatch(taskId);
  let updated: TaskRecord | undefined;
  try {
    updated = await deps.store.update(taskId, (r) => {
      if (r.task.status !== 'RUNNING') return undefined;
      const task = cancelSteps(r.task, deps.now());
      return task === r.task ? undefined : { ...r, task };
    });
  } catch (err) {
    if (!(err instanceof StoredNotAnnounced)) throw err;
    updated = err.record;
  }
  const record = storedOrThrow(updated, taskId);
  // Every step marked CANCELING is killed on its host (sent again for one CANCELING already).
  const stopping = record.task.subtasks.filter((s) => s.status === 'CANCELING');
  await Promise.all(
    stopping.map(async (s) => {
      const hostId = record.steps[String(s.id)]?.hostId;
      if (hostId === undefined) return;
      const run = { taskId, subtaskId: s.id, runTime: s.runTime };
      await deps.runner.cancel(targetOf(hostOrThrow(deps, hostId)), runKeyOf(deps.epoch, run)).catch((err) => {
        deps.logger.warn({ taskId, subtaskId: s.id, err: (err as Error).message }, 'could not stop a step on its host');
      });
    }),
  );
  // Nothing running: it ends now; else the last step to stop ends it.
  const rested = await deps.store.advance(taskId);
  await followBatch(deps, taskId, record.traceId, rested);
  deps.logger.info({ taskId, stopping: stopping.length, traceId: record.traceId }, 'batch canceled');
  return storedOrThrow((await deps.store.get(taskId))?.record, taskId).task;
}
