/**
 * Reading tasks and operating on them: retry, rollback, subtask retry, skip
 * and cancel; the agent's status on a host. Errors are coded as SPEC §3 says:
 * 20000 not found, 20003 not allowed in this state, 40000 host held by another
 * task, 10002 host not in the inventory.
 */
import { findHost, findRunbook, type HostConfig } from '../config.js';
import { idText } from '../contracts/api.js';
import type { OcpTask } from '../contracts/ocp-task.js';
import { defaultClassName, shellQuote } from '../core/runbooks/runbook.js';
import { findSubtask, readySubtasks } from '../core/task.js';
import {
  cancelSubtask,
  chainsToRollBack,
  IllegalOperationError,
  retrySubtask,
  retryTask,
  rollbackTask,
  skipSubtask,
} from '../core/task-operations.js';
import { addSteps, type Draft, hostsAtRest, hostsStillToRun, type TaskRecord } from '../core/task-record.js';
import { CodedError, ErrorCode } from '../errors.js';
import { runKeyOf, type StepRunner, targetOf } from '../executor/ports.js';
import { operationOfTask } from '../operations/registry.js';
import type { TaskDeps } from './deps.js';
import { claimHosts, releaseClaims } from './host-claims.js';
import { StoredNotAnnounced, StoreOutcomeUnknown, type SubtaskLog } from './ports.js';
import { paramsOfTask, planReopened, planSteps } from './step-plans.js';

export interface OperationDeps extends TaskDeps {
  runner: StepRunner;
}

function hostOrThrow(deps: TaskDeps, hostId: number): HostConfig {
  const host = findHost(deps.config, hostId);
  if (!host) throw new CodedError(ErrorCode.notFound, `host ${idText(hostId)} is not in the inventory`, 'hostId');
  return host;
}

async function recordOrThrow(deps: TaskDeps, taskId: number): Promise<TaskRecord> {
  const stored = await deps.store.get(taskId);
  if (!stored) throw new CodedError(ErrorCode.taskNotFound, `task ${idText(taskId)} not found`, 'taskId');
  return stored.record;
}

function subtaskOrThrow(record: TaskRecord, subtaskId: number) {
  const s = findSubtask(record.task, subtaskId);
  if (!s) {
    throw new CodedError(
      ErrorCode.taskNotFound,
      `task ${record.task.id} has no subtask ${idText(subtaskId)}`,
      'subtaskId',
    );
  }
  return s;
}

function asStateError(err: unknown): unknown {
  return err instanceof IllegalOperationError ? new CodedError(ErrorCode.illegalState, err.message) : err;
}

export async function getTask(deps: TaskDeps, taskId: number): Promise<OcpTask> {
  return (await recordOrThrow(deps, taskId)).task;
}

export async function getSubtaskLog(deps: TaskDeps, taskId: number, subtaskId: number): Promise<SubtaskLog> {
  subtaskOrThrow(await recordOrThrow(deps, taskId), subtaskId);
  const log = await deps.logs.get(taskId, subtaskId);
  return log ?? { log: '', truncated: false };
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
  const claims = current.shared ? [] : await claimHosts(deps, hosts, taskId);
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
    for (const s of readySubtasks(updated.task)) {
      await deps.enqueue({ taskId, subtaskId: s.id, runTime: s.runTime }, updated.traceId);
    }
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
  return reopen(deps, taskId, (r) => ({ ...r, task: skipSubtask(r.task, subtaskId, deps.now(), r.maxParallel) }));
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

export interface TaskQuery {
  status?: OcpTask['status'];
  hostId?: number;
  name?: string;
  page: number;
  size: number;
}

export interface TaskPage {
  contents: Array<Omit<OcpTask, 'subtasks'>>;
  page: { number: number; size: number; totalElements: number; totalPages: number };
}

/** Tasks matching the filters, newest first (ids grow), without subtasks. */
export async function listTasks(deps: TaskDeps, q: TaskQuery): Promise<TaskPage> {
  const matching = (await deps.index.all())
    .sort((a, b) => b.id - a.id)
    .filter((t) => q.status === undefined || t.status === q.status)
    .filter((t) => q.name === undefined || t.name === q.name)
    .filter(
      (t) =>
        q.hostId === undefined ||
        t.hostId === q.hostId ||
        (t.context.listMap.host_ids ?? []).includes(String(q.hostId)),
    );
  const start = (q.page - 1) * q.size;
  return {
    contents: matching.slice(start, start + q.size),
    page: {
      number: q.page,
      size: q.size,
      totalElements: matching.length,
      totalPages: Math.ceil(matching.length / q.size),
    },
  };
}

export interface AgentStatus {
  hostId: number;
  installHome: string;
  status: 'STARTED' | 'STOPPED' | 'PARTIAL';
  processes: Array<{ name: string; pid: number | null; status: 'RUNNING' | 'STOPPED' }>;
}

/** `<name> <pid or -> running|stopped`, one line per process (SPEC §2). */
const STATUS_LINE = /^(\S+)\s+(\d+|-)\s+(running|stopped)\s*$/;

/** `<agentHome>/bin/ocp_agentctl status`, the path quoted for the host's shell. */
export function agentStatusCommand(agentHome: string): string {
  return `${shellQuote(`${agentHome}/bin/ocp_agentctl`)} status`;
}

export async function agentStatus(deps: OperationDeps, hostId: number): Promise<AgentStatus> {
  const host = hostOrThrow(deps, hostId);
  const res = await deps.runner.exec(targetOf(host), agentStatusCommand(host.agentHome), 30);
  const processes = res.stdout
    .split('\n')
    .map((l) => STATUS_LINE.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({
      name: m[1] as string,
      pid: m[2] === '-' ? null : Number(m[2]),
      status: m[3] === 'running' ? ('RUNNING' as const) : ('STOPPED' as const),
    }));
  if (processes.length === 0 && res.exitCode !== 0) {
    throw new CodedError(
      ErrorCode.internal,
      `ocp_agentctl status on host ${hostId} exited ${res.exitCode}: ${res.stderr.trim().slice(0, 300)}`,
    );
  }
  const running = processes.filter((p) => p.status === 'RUNNING').length;
  const status = running === processes.length && res.exitCode === 0 ? 'STARTED' : running === 0 ? 'STOPPED' : 'PARTIAL';
  return { hostId, installHome: host.agentHome, status, processes };
}
