/**
 * The API's operations, one table for both front doors: HTTP routes (SPEC §3)
 * and the NATS micro service on ocp.api.<name> (SPEC §5). Each names its
 * permission and its input schema; `run` does the work.
 */
import { randomUUID } from 'node:crypto';
import type { z } from 'zod';
import { AgentInput, BatchInput, HostInput, ListInput, SubtaskInput, TaskInput } from '../contracts/api.js';
import type { Permission } from '../contracts/roles.js';
import { CodedError, describeZodError, ErrorCode } from '../errors.js';
import { createTask, type TaskKind } from '../tasks/create-task.js';
import {
  agentStatus,
  cancel,
  getSubtaskLog,
  getTask,
  listTasks,
  type OperationDeps,
  retry,
  retryOne,
  rollback,
  skip,
} from '../tasks/task-operations.js';

export type { Permission } from '../contracts/roles.js';

/** Who is asking: the Basic user, or `nats:<creator>` on the NATS service. */
export interface Caller {
  name: string;
  traceId: string;
}

export interface Operation<S extends z.ZodType = z.ZodType> {
  /** `ocp.api.<name>` on NATS. */
  name: string;
  permission: Permission;
  input: S;
  run(deps: OperationDeps, input: z.output<S>, caller: Caller): Promise<unknown>;
}

function op<S extends z.ZodType>(o: Operation<S>): Operation {
  return o as unknown as Operation;
}

function agentOperation(kind: Exclude<TaskKind, 'batchRestart'>): Operation {
  return op({
    name: `agent.${kind}`,
    permission: 'HOST_MANAGER',
    input: AgentInput,
    async run(deps, input, caller) {
      const { record } = await createTask(deps, {
        kind,
        hostIds: [input.hostId],
        creator: caller.name,
        requestId: `api-${randomUUID()}`,
        traceId: caller.traceId,
        ...(input.reason ? { reason: input.reason } : {}),
      });
      return record.task;
    },
  });
}

export const OPERATIONS: readonly Operation[] = [
  agentOperation('restart'),
  agentOperation('stop'),
  agentOperation('start'),
  op({
    name: 'agent.batchRestart',
    permission: 'HOST_MANAGER',
    input: BatchInput,
    async run(deps, input, caller) {
      const { record } = await createTask(deps, {
        kind: 'batchRestart',
        hostIds: input.hostIds,
        creator: caller.name,
        requestId: `api-${randomUUID()}`,
        traceId: caller.traceId,
        ...(input.reason ? { reason: input.reason } : {}),
      });
      return record.task;
    },
  }),
  op({
    name: 'agent.status',
    permission: 'HOST_VIEWER',
    input: HostInput,
    run: (deps, input) => agentStatus(deps, input.hostId),
  }),
  op({
    name: 'task.list',
    permission: 'TASK_VIEWER',
    input: ListInput,
    run: (deps, input) => listTasks(deps, input),
  }),
  op({ name: 'task.get', permission: 'TASK_VIEWER', input: TaskInput, run: (deps, i) => getTask(deps, i.taskId) }),
  op({ name: 'task.retry', permission: 'TASK_MANAGER', input: TaskInput, run: (deps, i) => retry(deps, i.taskId) }),
  op({
    name: 'task.rollback',
    permission: 'TASK_MANAGER',
    input: TaskInput,
    run: (deps, i) => rollback(deps, i.taskId),
  }),
  op({
    name: 'subtask.retry',
    permission: 'TASK_MANAGER',
    input: SubtaskInput,
    run: (deps, i) => retryOne(deps, i.taskId, i.subtaskId),
  }),
  op({
    name: 'subtask.skip',
    permission: 'TASK_MANAGER',
    input: SubtaskInput,
    run: (deps, i) => skip(deps, i.taskId, i.subtaskId),
  }),
  op({
    name: 'subtask.cancel',
    permission: 'TASK_MANAGER',
    input: SubtaskInput,
    run: (deps, i) => cancel(deps, i.taskId, i.subtaskId),
  }),
  op({
    name: 'subtask.log',
    permission: 'TASK_VIEWER',
    input: SubtaskInput,
    async run(deps, i) {
      const { log, truncated } = await getSubtaskLog(deps, i.taskId, i.subtaskId);
      return { log, truncated };
    },
  }),
];

export function operation(name: string): Operation {
  const found = OPERATIONS.find((o) => o.name === name);
  if (!found) throw new Error(`no operation ${name}`);
  return found;
}

/** Parse an operation's input; a bad one is 400 / 10001 naming the field. */
export function parseInput(o: Operation, raw: unknown): unknown {
  const parsed = o.input.safeParse(raw);
  if (parsed.success) return parsed.data;
  const { message, field } = describeZodError(parsed.error);
  throw new CodedError(ErrorCode.badRequest, message, field);
}
