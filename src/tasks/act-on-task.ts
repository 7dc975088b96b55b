/**
 * What an operator does to a task: retry it, retry, skip or cancel one of its
 * subtasks, roll it back. Each checks that the state allows it (409 / 20003),
 * takes the hosts that will run again (409 / 40000 when another task holds
 * one), stores the change by compare-and-set and queues what became READY.
 */
import { findRunbook } from '../config.js';
import { idText } from '../contracts/api.js';
import type { OcpTask } from '../contracts/ocp-task.js';
import { defaultClassName } from '../core/runbooks/runbook.js';
import { findSubtask } from '../core/task.js';
import {
  cancelSubtask,
  chainsToRollBack,
  IllegalOperationError,
  retrySubtask,
  retryTask,
  rollbackTask,
  skipSubtask,
} from '../core/task-actions.js';
import { addSteps, type Draft, hostsAtRest, hostsStillToRun, type TaskRecord } from '../core/task-record.js';
import { CodedError, ErrorCode } from '../errors.js';
import { runKeyOf, targetOf } from '../executor/ports.js';
import { operationOfTask } from '../operations/registry.js';
import { followBatch } from './control-batch.js';
import type { OperationDeps, TaskDeps } from './deps.js';
import { hostOrThrow, recordOrThrow, subtaskOrThrow } from './find-or-throw.js';
import { claimHosts, releaseClaims } from './host-claims.js';
import { StoredNotAnnounced, StoreOutcomeUnknown } from './ports.js';
import { queueReady } from './queue-ready.js';
import { paramsOfTask, planReopened, planSteps } from './step-plans.js';

function asStateError(err: unknown): unknown {
  return err instanceof IllegalOperationError ? new CodedError(ErrorCode.illegalState, err.message) : err;
}

/**
 * Apply an operation that sets a task running again: check it is allowed,
 * take the hosts that will run (all or none), store it by compare-and-set,
 * queue what is READY. What the reopened hosts have still to run is planned
 * again with the configuration of this moment (Retry takes the new
 * configuration, SPEC §9).
 */
async function reopen(deps: TaskDeps, taskId: number, operation: (r: TaskRecord) => Draft): Promise<OcpTask> {
  const change = (r: TaskRecord): Draft => planReopened(deps.config, r, operation(r));
  const current = await recordOrThrow(deps, taskId);
  let preview: Draft;
  try {
    preview = change(current);
  } catch (err) {
    throw asStateError(err);
  }
  const hosts = hostsStillToRun({ ...current, ...preview }).map((id) => hostOrThrow(deps, id));
  // Only what this call takes is its to free: hosts whose chains run already stay held.
  // A task whose operation is not exclusive holds no host.
  const claims = current.shared ? [] : await claimHosts(deps, hosts, taskId, { reopening: true });
  let updated: TaskRecord | undefined;
  try {
    updated = await deps.store.update(taskId, change);
  } catch (err) {
    // Stored, only not announced: the operation is done (the outbox waits for the sweeper).
    if (err instanceof StoredNotAnnounced) updated = err.record;
    else {
      // When the outcome is unknown the change may be stored and run: its hosts stay held.
      if (!(err instanceof StoreOutcomeUnknown)) {
        await releaseClaims(deps, claims, taskId).catch((e) =>
          deps.logger.warn({ taskId, err: (e as Error).message }, 'could not free the hosts of a refused operation'),
        );
      }
      throw asStateError(err);
    }
  }
  if (!updated) throw new CodedError(ErrorCode.taskNotFound, `task ${idText(taskId)} not found`, 'taskId');
  try {
    await queueReady(deps, updated);
    // A batch's progress opens its chains (core/rolling.ts): a Retry resumes the hosts never
    // started, once what it reopened lets the rules open them; a Skip may end a stopped batch.
    if (updated.layout === 'chains') await followBatch(deps, taskId, updated.traceId, await deps.store.advance(taskId));
  } catch (err) {
    // Stored: the sweeper queues what is READY. An error answer now would be for a change that runs.
    deps.logger.warn({ taskId, err: (err as Error).message }, 'operation stored; queueing left to the sweeper');
  }
  // Taken for a chain that the stored change (applied to the latest record) left at rest after all.
  const atRest = new Set(hostsAtRest(updated));
  await releaseClaims(
    deps,
    claims.filter((c) => atRest.has(c.hostId)),
    taskId,
  ).catch((err) =>
    // The host stays held (refused with this task's id) until the task ends and frees it.
    deps.logger.warn({ taskId, err: (err as Error).message }, 'could not free a host the operation did not need'),
  );
  deps.logger.info({ taskId, operation: updated.task.operation, traceId: updated.traceId }, 'task reopened');
  return updated.task;
}

export function retry(deps: TaskDeps, taskId: number): Promise<OcpTask> {
  return reopen(deps, taskId, (r) => ({ ...r, task: retryTask(r.task) }));
}

export async function retryOne(deps: TaskDeps, taskId: number, subtaskId: number): Promise<OcpTask> {
  subtaskOrThrow(await recordOrThrow(deps, taskId), subtaskId);
  return reopen(deps, taskId, (r) => ({ ...r, task: retrySubtask(r.task, subtaskId) }));
}

export async function skip(deps: TaskDeps, taskId: number, subtaskId: number): Promise<OcpTask> {
  subtaskOrThrow(await recordOrThrow(deps, taskId), subtaskId);
  // A batch stored in parts opens its chains by its progress, never by settle (maxParallel 0).
  return reopen(deps, taskId, (r) => ({
    ...r,
    task: skipSubtask(r.task, subtaskId, deps.now(), r.layout === 'chains' ? 0 : r.maxParallel),
  }));
}

/**
 * The steps a Rollback of this task runs on each failed host: its operation's
 * rollback plan (SPEC §2, §8), by step name, with their index in the runbook.
 * None: the task prohibits rollback (409 / 20003).
 */
function rollbackSteps(deps: TaskDeps, task: OcpTask) {
  const plan = operationOfTask(deps.config.operations, task)?.rollback;
  if (!plan || task.context.stringMap.prohibit_rollback === 'true') {
    throw new CodedError(ErrorCode.illegalState, `task ${task.id} prohibits rollback`);
  }
  const runbook = findRunbook(deps.config, plan.runbook);
  const names = plan.steps ?? runbook.steps.map((s) => s.name);
  return names.map((name) => {
    const step = runbook.steps.findIndex((s) => s.name === name);
    if (step < 0)
      throw new CodedError(ErrorCode.internal, `runbook ${plan.runbook} has no step "${name}" to roll back with`);
    return { runbook: plan.runbook, step, def: runbook.steps[step] as (typeof runbook.steps)[number] };
  });
}

export async function rollback(deps: TaskDeps, taskId: number): Promise<OcpTask> {
  const current = await recordOrThrow(deps, taskId);
  const steps = rollbackSteps(deps, current.task);
  const chains = chainsToRollBack(current.task);
  const ids = await deps.ids.take(Math.max(1, chains.length * steps.length));
  return reopen(deps, taskId, (r) => {
    const task = rollbackTask(
      r.task,
      steps.map(({ def }) => ({
        name: def.name,
        description: def.description ?? def.name,
        className: def.className ?? defaultClassName(def.name),
        timeout: def.timeout,
      })),
      ids,
    );
    // The host of each chain, from the chain's existing subtasks; each added
    // subtask runs its rollback step (they were appended in plan order).
    const hostOfChain = new Map(r.task.subtasks.map((s) => [s.parallelIdx, r.steps[String(s.id)]?.hostId]));
    const added = task.subtasks.filter((s) => !r.steps[String(s.id)]);
    const params = paramsOfTask(deps.config, r.task);
    if ('missing' in params) throw new CodedError(ErrorCode.illegalState, `${params.missing}: start a new task`);
    const { planned, hostDigests } = planSteps(
      deps.config,
      Object.fromEntries(
        added.map((s, i) => {
          const { runbook, step } = steps[i % steps.length] as (typeof steps)[number];
          return [
            String(s.id),
            { hostId: hostOrThrow(deps, hostOfChain.get(s.parallelIdx) as number).id, runbook, step },
          ];
        }),
      ),
      params,
    );
    return { ...r, task, ...addSteps(r, planned, hostDigests) };
  });
}

/** End a RUNNING subtask's process group on the host; it ends FAILED, "canceled". */
export async function cancel(deps: OperationDeps, taskId: number, subtaskId: number): Promise<OcpTask> {
  const current = await recordOrThrow(deps, taskId);
  const before = subtaskOrThrow(current, subtaskId);
  let updated: TaskRecord | undefined = current;
  // Marked CANCELING first, so the executor ends it FAILED whatever the step's
  // exit; a cancel whose kill failed can be sent again while it is CANCELING.
  if (before.status !== 'CANCELING') {
    try {
      updated = await deps.store.update(taskId, (r) => ({ ...r, task: cancelSubtask(r.task, subtaskId) }));
    } catch (err) {
      throw asStateError(err);
    }
  }
  if (!updated) throw new CodedError(ErrorCode.taskNotFound, `task ${idText(taskId)} not found`, 'taskId');
  const s = findSubtask(updated.task, subtaskId);
  const hostId = updated.steps[String(subtaskId)]?.hostId;
  if (s && hostId !== undefined) {
    const host = hostOrThrow(deps, hostId);
    await deps.runner.cancel(targetOf(host), runKeyOf(deps.epoch, { taskId, subtaskId, runTime: s.runTime }));
  }
  deps.logger.info({ taskId, subtaskId, traceId: updated.traceId }, 'subtask canceled');
  return updated.task;
}
