/**
 * What an operator may do to a task (SPEC §2 and OCP's rules), as pure
 * functions: each returns the new task or throws IllegalOperationError saying
 * why not, which front doors answer as 409 / 20003.
 */
import type { OcpSubtask, OcpTask } from '../contracts/ocp-task.js';
import { findSubtask, settle } from './task.js';
import { formatOcpTime } from './time.js';

export class IllegalOperationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IllegalOperationError';
  }
}

function subtaskOrThrow(task: OcpTask, subtaskId: number): OcpSubtask {
  const s = findSubtask(task, subtaskId);
  if (!s) throw new RangeError(`task ${task.id} has no subtask ${subtaskId}`);
  return s;
}

function replace(task: OcpTask, changed: ReadonlyMap<number, OcpSubtask>): OcpTask {
  return { ...task, subtasks: task.subtasks.map((s) => changed.get(s.id) ?? s) };
}

/**
 * A run that starts afresh: READY, runTime + 1, no times of the last run;
 * operation RETRY — except a rollback step, which stays ROLLBACK so the task is
 * still judged by its rollback.
 */
const toRetry = ({ startTime: _s, finishTime: _f, executor: _e, ...s }: OcpSubtask): OcpSubtask => ({
  ...s,
  status: 'READY',
  operation: s.operation === 'ROLLBACK' ? 'ROLLBACK' : 'RETRY',
  runTime: s.runTime + 1,
});

const ACTIVE = new Set(['READY', 'RUNNING', 'CANCELING']);

/**
 * A FAILED subtask may run again (retry) or be passed over (skip) when nothing
 * else could then run on its host at once: the task has ended, or — in a
 * running batch — its own chain has; and during a rollback only rollback steps.
 */
function assertMayReopen(task: OcpTask, s: OcpSubtask, verb: string): void {
  if (s.status !== 'FAILED') {
    throw new IllegalOperationError(`subtask ${s.id} is ${s.status}; only a FAILED subtask can be ${verb}`);
  }
  if (task.status === 'SUCCESSFUL') throw new IllegalOperationError(`task ${task.id} has ended SUCCESSFUL`);
  const chainBusy = task.subtasks.some((o) => o.parallelIdx === s.parallelIdx && ACTIVE.has(o.status));
  if (chainBusy) throw new IllegalOperationError(`host chain of subtask ${s.id} is still running; wait for it to end`);
  if (task.operation === 'ROLLBACK' && s.operation !== 'ROLLBACK') {
    throw new IllegalOperationError(`task ${task.id} was rolled back; only its rollback steps can be ${verb}`);
  }
}

/** The task running again: no finishTime. */
function reopened({ finishTime: _f, ...task }: OcpTask, operation: OcpTask['operation']): OcpTask {
  return { ...task, status: 'RUNNING', operation };
}

/** A FAILED task runs again from its FAILED subtasks (READY, operation RETRY, runTime + 1). */
export function retryTask(task: OcpTask): OcpTask {
  if (task.status !== 'FAILED')
    throw new IllegalOperationError(`task ${task.id} is ${task.status}; only a FAILED task can be retried`);
  // After a failed rollback, retrying means retrying the rollback: running the
  // failed restart steps too would put a stop and a start on one host at once.
  const rollingBack = task.operation === 'ROLLBACK';
  const failed = task.subtasks.filter((s) => s.status === 'FAILED' && (!rollingBack || s.operation === 'ROLLBACK'));
  // Running again with nothing to run would stay RUNNING for ever.
  if (failed.length === 0) throw new IllegalOperationError(`task ${task.id} has no FAILED subtask to retry`);
  return replace(reopened(task, rollingBack ? 'ROLLBACK' : 'RETRY'), new Map(failed.map((s) => [s.id, toRetry(s)])));
}

/** One FAILED subtask runs again. */
export function retrySubtask(task: OcpTask, subtaskId: number): OcpTask {
  const s = subtaskOrThrow(task, subtaskId);
  assertMayReopen(task, s, 'retried');
  const operation = task.status === 'FAILED' && task.operation !== 'ROLLBACK' ? 'RETRY' : task.operation;
  return replace(reopened(task, operation), new Map([[s.id, toRetry(s)]]));
}

/** A FAILED subtask counts as SUCCESSFUL (operation SKIP) and its downstreams may run. */
export function skipSubtask(task: OcpTask, subtaskId: number, now: Date, maxParallel?: number): OcpTask {
  const s = subtaskOrThrow(task, subtaskId);
  assertMayReopen(task, s, 'skipped');
  const skipped: OcpSubtask = { ...s, status: 'SUCCESSFUL', operation: 'SKIP', finishTime: formatOcpTime(now) };
  return settle(replace(reopened(task, task.operation), new Map([[s.id, skipped]])), now, maxParallel);
}

/** A RUNNING subtask becomes CANCELING; the executor ends it FAILED once its process group is gone. */
export function cancelSubtask(task: OcpTask, subtaskId: number): OcpTask {
  const s = subtaskOrThrow(task, subtaskId);
  if (s.status !== 'RUNNING')
    throw new IllegalOperationError(`subtask ${subtaskId} is ${s.status}; only a RUNNING subtask can be canceled`);
  // A rollback step keeps ROLLBACK (as a retried one does): the task is still
  // judged by its rollback, and Retry runs the rollback again.
  const operation = s.operation === 'ROLLBACK' ? 'ROLLBACK' : 'CANCEL';
  return replace(task, new Map([[s.id, { ...s, status: 'CANCELING', operation }]]));
}

/** A rollback step to append, for one host chain. */
export interface RollbackStep {
  name: string;
  description: string;
  className: string;
  timeout: number;
}

/** Hosts (chains, by parallelIdx) of a FAILED task that a rollback must repair: those with a FAILED subtask. */
export function chainsToRollBack(task: OcpTask): number[] {
  return [...new Set(task.subtasks.filter((s) => s.status === 'FAILED').map((s) => s.parallelIdx))];
}

/**
 * Roll back a FAILED task: on each chain that failed, append the rollback steps
 * (Start all, then Finish) with operation ROLLBACK; the task RUNNING with
 * operation ROLLBACK. `ids` must hold steps × chains fresh ids, chain by chain.
 */
export function rollbackTask(task: OcpTask, steps: readonly RollbackStep[], ids: readonly number[]): OcpTask {
  if (task.status !== 'FAILED') {
    throw new IllegalOperationError(`task ${task.id} is ${task.status}; only a FAILED task can be rolled back`);
  }
  if (task.context.stringMap.prohibit_rollback === 'true' || task.subtasks.some((s) => s.prohibitRollback)) {
    throw new IllegalOperationError(`task ${task.id} prohibits rollback`);
  }
  const chains = chainsToRollBack(task);
  if (ids.length < chains.length * steps.length) throw new RangeError('rollbackTask: not enough ids');
  const seriesBase = Math.max(...task.subtasks.map((s) => s.seriesId)) + 1;
  const added: OcpSubtask[] = chains.flatMap((parallelIdx, c) => {
    const chainIds = steps.map((_, j) => ids[c * steps.length + j] as number);
    return steps.map((step, j) => ({
      className: step.className,
      description: step.description,
      downstreams: j + 1 < chainIds.length ? [chainIds[j + 1] as number] : [],
      id: chainIds[j] as number,
      name: step.name,
      nodeType: 'JAVA_TASK' as const,
      operation: 'ROLLBACK' as const,
      parallelIdx,
      prohibitRollback: false,
      runTime: 1,
      seriesId: seriesBase + j,
      status: j === 0 ? ('READY' as const) : ('PENDING' as const),
      timeout: step.timeout,
      upstreams: j > 0 ? [chainIds[j - 1] as number] : [],
    }));
  });
  const next = reopened(task, 'ROLLBACK');
  return { ...next, subtasks: [...next.subtasks, ...added] };
}
