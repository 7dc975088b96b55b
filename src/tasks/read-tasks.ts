/**
 * Reading tasks: one task, a subtask's log, the listing (newest first, with
 * filters and pages), and the agent's status on a host, read over the step
 * runner. Errors are coded as SPEC §3 says: 20000 not found, 10002 host not in
 * the inventory.
 */
import { idText } from '../contracts/api.js';
import type { OcpTask } from '../contracts/ocp-task.js';
import { shellQuote } from '../core/runbooks/runbook.js';
import { CodedError, ErrorCode } from '../errors.js';
import { targetOf } from '../executor/ports.js';
import type { OperationDeps, TaskDeps } from './deps.js';
import { hostOrThrow, recordOrThrow, subtaskOrThrow } from './find-or-throw.js';
import type { SubtaskLog, TaskFilter, TaskSummary } from './ports.js';

/**
 * A task in OCP's shape, a batch assembled from its parts; `subtasks: false`
 * leaves the `subtasks` key out and reads only the task's head.
 */
export async function getTask(
  deps: TaskDeps,
  taskId: number,
  opts: { subtasks: boolean } = { subtasks: true },
): Promise<OcpTask | Omit<OcpTask, 'subtasks'>> {
  if (opts.subtasks) return (await recordOrThrow(deps, taskId)).task;
  const summary = await deps.store.summary(taskId);
  if (!summary) throw new CodedError(ErrorCode.taskNotFound, `task ${idText(taskId)} not found`, 'taskId');
  return summary;
}

export async function getSubtaskLog(deps: TaskDeps, taskId: number, subtaskId: number): Promise<SubtaskLog> {
  subtaskOrThrow(await recordOrThrow(deps, taskId), subtaskId);
  const log = await deps.logs.get(taskId, subtaskId);
  return log ?? { log: '', truncated: false };
}

export interface TaskQuery extends TaskFilter {
  page: number;
  size: number;
}

export interface TaskPage {
  contents: TaskSummary[];
  page: { number: number; size: number; totalElements: number; totalPages: number };
}

/**
 * Tasks matching the filters, newest first (ids grow), without subtasks: the
 * index says which, the store gives only the page's summaries. A task removed
 * between the two (retention) is left out of its page.
 */
export async function listTasks(deps: TaskDeps, q: TaskQuery): Promise<TaskPage> {
  const filter: TaskFilter = {
    ...(q.status === undefined ? {} : { status: q.status }),
    ...(q.hostId === undefined ? {} : { hostId: q.hostId }),
    ...(q.name === undefined ? {} : { name: q.name }),
    ...(q.creator === undefined ? {} : { creator: q.creator }),
  };
  const { ids, total } = await deps.index.list(filter, (q.page - 1) * q.size, q.size);
  // The head only: a batch's page entry needs none of its chains.
  const summaries = await Promise.all(ids.map((id) => deps.store.summary(id)));
  return {
    contents: summaries.filter((s): s is TaskSummary => s !== undefined),
    page: { number: q.page, size: q.size, totalElements: total, totalPages: Math.ceil(total / q.size) },
  };
}

export interface AgentStatus {
  hostId: number;
  name: string;
  /** The host's labels, its group's merged under its own (SPEC §9). */
  labels: Readonly<Record<string, string>>;
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
  return { hostId, name: host.name, labels: host.labels, installHome: host.agentHome, status, processes };
}
