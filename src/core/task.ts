/**
 * The task and subtask model in OCP's JSON shape, and its state machine.
 * Every function returns a new task; nothing here does I/O.
 */
import type { OcpSubtask, OcpTask, SubtaskStatus, TaskStatus } from '../contracts/ocp-task.js';
import { isAtRest, readySet } from './dag.js';
import { defaultClassName, type Runbook, type RunbookStep, renderScript } from './runbooks/runbook.js';
import { formatOcpTime } from './time.js';

export interface PlanHost {
  id: number;
  agentHome: string;
}

/** A runbook step made concrete for one host: its script with the host's values quoted in. */
export interface PlannedStep {
  hostId: number;
  script: string;
}

/**
 * Which step of the plan's runbook a subtask runs, on which host. The task
 * keeps this, never the script: the script is rendered from the configured
 * runbook when the step starts (SPEC §7, §9).
 */
export interface StepRef {
  hostId: number;
  /** Index of the step in the runbook. */
  step: number;
}

export interface TaskPlan {
  task: OcpTask;
  steps: Record<string, StepRef>;
}

export interface PlanInput {
  /** Task name; the runbook's name unless a batch says otherwise. */
  name?: string;
  runbook: Runbook;
  hosts: readonly PlanHost[];
  /** 1 + steps × hosts fresh ids: the task's, then each host's chain in order. */
  ids: readonly number[];
  creator: string;
  executor: string;
  now: Date;
  reason?: string;
  /** Chains (hosts) that may run at once; the rest wait PENDING. Default: all. */
  maxParallel?: number;
  /** More of `context.stringMap` (an operation of one's own: `operation` and its parameters). */
  stringMap?: Readonly<Record<string, string>>;
  /** The task cannot be rolled back (`prohibit_rollback` "true"). */
  prohibitRollback?: boolean;
}

/**
 * Render a runbook step for one host: its script with the host's values (and
 * the operation's parameters, already checked against their declaration)
 * shell-quoted in.
 */
export function planStep(
  step: RunbookStep,
  host: PlanHost,
  killGraceSeconds: number,
  params: Readonly<Record<string, string>> = {},
): PlannedStep {
  return {
    hostId: host.id,
    script: renderScript(step.command, {
      ...params,
      agentHome: host.agentHome,
      agentctl: `${host.agentHome}/bin/ocp_agentctl`,
      killGraceSeconds: String(killGraceSeconds),
    }),
  };
}

export function idsNeeded(runbook: Runbook, hostCount: number): number {
  return 1 + runbook.steps.length * hostCount;
}

/** A new task: RUNNING, each chain's first subtask READY and the rest PENDING. */
export function planTask(input: PlanInput): TaskPlan {
  const { runbook, hosts, ids, now } = input;
  if (hosts.length === 0) throw new Error('planTask: no hosts');
  if (ids.length < idsNeeded(runbook, hosts.length)) throw new Error('planTask: not enough ids');
  const parallel = hosts.length > 1;
  const at = formatOcpTime(now);
  const taskId = ids[0] as number;
  const subtasks: OcpSubtask[] = [];
  const steps: Record<string, StepRef> = {};
  hosts.forEach((host, h) => {
    const chain = runbook.steps.map((_, j) => ids[1 + h * runbook.steps.length + j] as number);
    runbook.steps.forEach((step, j) => {
      const id = chain[j] as number;
      subtasks.push({
        className: step.className ?? defaultClassName(step.name),
        description: step.description ?? step.name,
        downstreams: j + 1 < chain.length ? [chain[j + 1] as number] : [],
        id,
        name: step.name,
        nodeType: 'JAVA_TASK',
        operation: 'EXECUTE',
        parallelIdx: parallel ? h : -1,
        prohibitRollback: false,
        runTime: 1,
        seriesId: j,
        status: j === 0 && h < (input.maxParallel ?? Number.POSITIVE_INFINITY) ? 'READY' : 'PENDING',
        timeout: step.timeout,
        upstreams: j > 0 ? [chain[j - 1] as number] : [],
      });
      steps[String(id)] = { hostId: host.id, step: j };
    });
  });
  const first = hosts[0] as PlanHost;
  const stringMap: Record<string, string> = {
    ...input.stringMap,
    prohibit_rollback: input.prohibitRollback ? 'true' : 'false',
    host_id: String(first.id),
  };
  if (input.reason !== undefined && input.reason !== '') stringMap.reason = input.reason;
  const listMap: Record<string, string[]> = parallel ? { host_ids: hosts.map((h) => String(h.id)) } : {};
  return {
    task: {
      context: { listMap, parallel, parallelIdx: -1, stringMap },
      creator: input.creator,
      executor: input.executor,
      hostId: first.id,
      id: taskId,
      name: input.name ?? runbook.name,
      operation: 'EXECUTE',
      startTime: at,
      status: 'RUNNING',
      subtasks,
      taskDefinitionId: -1,
      type: 'MANUAL',
      createTime: at,
    },
    steps,
  };
}

/** Allowed subtask status changes (SPEC §2 and OCP's rules). */
const SUBTASK_TRANSITIONS: Record<SubtaskStatus, readonly SubtaskStatus[]> = {
  PENDING: ['READY'],
  READY: ['RUNNING'],
  RUNNING: ['SUCCESSFUL', 'FAILED', 'CANCELING'],
  CANCELING: ['FAILED'],
  FAILED: ['READY', 'SUCCESSFUL'], // retry; skip
  SUCCESSFUL: [],
};

const TASK_TRANSITIONS: Record<TaskStatus, readonly TaskStatus[]> = {
  RUNNING: ['SUCCESSFUL', 'FAILED'],
  FAILED: ['RUNNING'], // retry, rollback
  SUCCESSFUL: [],
};

export function canMoveSubtask(from: SubtaskStatus, to: SubtaskStatus): boolean {
  return SUBTASK_TRANSITIONS[from].includes(to);
}

export function canMoveTask(from: TaskStatus, to: TaskStatus): boolean {
  return TASK_TRANSITIONS[from].includes(to);
}

export class IllegalTransitionError extends Error {
  constructor(what: string, from: string, to: string) {
    super(`${what} cannot go from ${from} to ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

export function findSubtask(task: OcpTask, subtaskId: number): OcpSubtask | undefined {
  return task.subtasks.find((s) => s.id === subtaskId);
}

function withSubtask(task: OcpTask, subtaskId: number, change: (s: OcpSubtask) => OcpSubtask): OcpTask {
  const current = findSubtask(task, subtaskId);
  if (!current) throw new Error(`task ${task.id} has no subtask ${subtaskId}`);
  const next = change(current);
  if (next.status !== current.status && !canMoveSubtask(current.status, next.status)) {
    throw new IllegalTransitionError(`subtask ${subtaskId}`, current.status, next.status);
  }
  return { ...task, subtasks: task.subtasks.map((s) => (s.id === subtaskId ? next : s)) };
}

/** READY → RUNNING, by the executor at `executor`. */
export function startSubtask(task: OcpTask, subtaskId: number, executor: string, now: Date): OcpTask {
  return withSubtask(task, subtaskId, (s) => ({
    ...s,
    status: 'RUNNING',
    startTime: formatOcpTime(now),
    executor,
  }));
}

/** RUNNING (or CANCELING) → SUCCESSFUL or FAILED, then let the task move on. */
export function completeSubtask(
  task: OcpTask,
  subtaskId: number,
  outcome: 'SUCCESSFUL' | 'FAILED',
  now: Date,
  maxParallel = Number.POSITIVE_INFINITY,
): OcpTask {
  const done = withSubtask(task, subtaskId, (s) => ({ ...s, status: outcome, finishTime: formatOcpTime(now) }));
  return settle(done, now, maxParallel);
}

/**
 * Mark whatever may start now READY — a chain (a host of a batch, by
 * parallelIdx) not yet started only while fewer than `maxParallel` chains are
 * under way. When nothing can move any more, the task ends: SUCCESSFUL when
 * every subtask is (during a rollback: every rollback subtask), FAILED otherwise.
 */
export function settle(task: OcpTask, now: Date, maxParallel = Number.POSITIVE_INFINITY): OcpTask {
  if (task.status !== 'RUNNING') return task;
  const chains = new Map<number, OcpSubtask[]>();
  for (const s of task.subtasks) chains.set(s.parallelIdx, [...(chains.get(s.parallelIdx) ?? []), s]);
  const started = new Set([...chains].filter(([, c]) => c.some((s) => s.status !== 'PENDING')).map(([idx]) => idx));
  let slots = maxParallel - [...started].filter((idx) => !isAtRest(chains.get(idx) ?? [])).length;
  const ready = new Set<number>();
  for (const id of readySet(task.subtasks)) {
    const s = findSubtask(task, id) as OcpSubtask;
    if (!started.has(s.parallelIdx)) {
      if (slots <= 0) continue;
      slots -= 1;
      started.add(s.parallelIdx);
    }
    ready.add(id);
  }
  const subtasks = task.subtasks.map((s) => (ready.has(s.id) ? { ...s, status: 'READY' as const } : s));
  if (!isAtRest(subtasks)) return { ...task, subtasks };
  const judged = task.operation === 'ROLLBACK' ? subtasks.filter((s) => s.operation === 'ROLLBACK') : subtasks;
  const status: TaskStatus = judged.every((s) => s.status === 'SUCCESSFUL') ? 'SUCCESSFUL' : 'FAILED';
  return { ...task, subtasks, status, finishTime: formatOcpTime(now) };
}

export function isFinished(task: OcpTask): boolean {
  return task.status !== 'RUNNING';
}

/** Subtasks that an executor should be running now. */
export function readySubtasks(task: OcpTask): OcpSubtask[] {
  return task.status === 'RUNNING' ? task.subtasks.filter((s) => s.status === 'READY') : [];
}
