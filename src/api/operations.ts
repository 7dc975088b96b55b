/**
 * The API's operations, one table for both front doors: HTTP routes (SPEC §3)
 * and the NATS micro service on ocp.api.<name> (SPEC §5). Each names its
 * permission and its input schema; `run` does the work. The operations that
 * create tasks are derived from the registry (SPEC §8): `op.<name>` for every
 * operation, and OCP's own `agent.restart|stop|start` and `agent.batchRestart`.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Config } from '../config.js';
import {
  AgentInput,
  BatchInput,
  HostInput,
  HostListInput,
  ListInput,
  operationInput,
  SubtaskInput,
  TaskGetInput,
  TaskInput,
} from '../contracts/api.js';
import { type BatchOptionsInput, batchRequestOf } from '../contracts/batch-options.js';
import { type RequestHosts, requestHosts } from '../contracts/host-list.js';
import type { Permission } from '../contracts/roles.js';
import { CodedError, describeZodError, ErrorCode } from '../errors.js';
import type { OperationDef } from '../operations/registry.js';
import { cancel, retry, retryOne, rollback, skip } from '../tasks/act-on-task.js';
import { cancelBatch, pause, resume } from '../tasks/control-batch.js';
import { createTask } from '../tasks/create-task.js';
import type { OperationDeps } from '../tasks/deps.js';
import { listHosts } from '../tasks/list-hosts.js';
import { agentStatus, getSubtaskLog, getTask, listTasks } from '../tasks/read-tasks.js';
import { describeOperation } from './describe-operation.js';

export type { Permission } from '../contracts/roles.js';

/** Who is asking: the Basic user, or `nats:<creator>` on the NATS service. */
export interface Caller {
  name: string;
  traceId: string;
}

export interface Operation<S extends z.ZodType = z.ZodType> {
  /** `ocp.api.<name>` on NATS. */
  name: string;
  /** Undefined: anyone signed in. */
  permission: Permission | undefined;
  input: S;
  /** It creates a task: over NATS it needs a `creator` (SPEC §5). */
  creates?: boolean;
  run(deps: OperationDeps, input: z.output<S>, caller: Caller): Promise<unknown>;
}

function op<S extends z.ZodType>(o: Operation<S>): Operation {
  return o as unknown as Operation;
}

/** A task of `def` on the request's hosts (ids, or a selector) for the caller; the API's answer is the task. */
async function runOperation(
  deps: OperationDeps,
  def: OperationDef,
  request: {
    hosts: RequestHosts;
    params?: Record<string, string>;
    reason?: string | undefined;
    batch?: BatchOptionsInput | undefined;
  },
  caller: Caller,
) {
  const { record } = await createTask(deps, {
    operation: def.name,
    ...request.hosts,
    ...(request.batch ? { batch: request.batch } : {}),
    ...(request.params ? { params: request.params } : {}),
    creator: caller.name,
    requestId: `api-${randomUUID()}`,
    traceId: caller.traceId,
    ...(request.reason ? { reason: request.reason } : {}),
  });
  return record.task;
}

/** The operations that create tasks: `op.<name>` per registry entry, and OCP's routes for the built-ins. */
function taskOperations(config: Config): Operation[] {
  return config.operations.flatMap((def) => {
    const ops: Operation[] = [
      op({
        name: `op.${def.name}`,
        permission: def.role,
        input: operationInput(def.params),
        creates: true,
        run: (deps, input, caller) =>
          runOperation(
            deps,
            def,
            {
              hosts: requestHosts(input),
              ...(input.params ? { params: input.params } : {}),
              reason: input.reason,
              batch: batchRequestOf(input),
            },
            caller,
          ),
      }),
    ];
    if (def.builtin) {
      ops.push(
        op({
          name: `agent.${def.name}`,
          permission: def.role,
          input: AgentInput,
          creates: true,
          run: (deps, input, caller) =>
            runOperation(deps, def, { hosts: { hostIds: [input.hostId] }, reason: input.reason }, caller),
        }),
      );
    }
    if (def.name === 'restart') {
      ops.push(
        op({
          name: 'agent.batchRestart',
          permission: def.role,
          input: BatchInput,
          creates: true,
          run: (deps, input, caller) =>
            runOperation(
              deps,
              def,
              { hosts: requestHosts(input), reason: input.reason, batch: batchRequestOf(input) },
              caller,
            ),
        }),
      );
    }
    return ops;
  });
}

/** Reading and operating on tasks and hosts: the same whatever the registry holds. */
const TASK_API: readonly Operation[] = [
  op({
    name: 'operation.list',
    permission: undefined,
    input: z.strictObject({}),
    run: async (deps) => deps.config.operations.map(describeOperation),
  }),
  op({
    name: 'host.list',
    permission: 'HOST_VIEWER',
    input: HostListInput,
    run: async (deps, input) => listHosts(deps, input.selector),
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
  op({
    name: 'task.get',
    permission: 'TASK_VIEWER',
    input: TaskGetInput,
    run: (deps, i) => getTask(deps, i.taskId, { subtasks: i.subtasks ?? true }),
  }),
  op({ name: 'task.retry', permission: 'TASK_MANAGER', input: TaskInput, run: (deps, i) => retry(deps, i.taskId) }),
  op({
    name: 'task.rollback',
    permission: 'TASK_MANAGER',
    input: TaskInput,
    run: (deps, i) => rollback(deps, i.taskId),
  }),
  // A batch held by an operator (SPEC §10): 409 / 20003 for a task that is not a running batch.
  op({ name: 'task.pause', permission: 'TASK_MANAGER', input: TaskInput, run: (deps, i) => pause(deps, i.taskId) }),
  op({ name: 'task.resume', permission: 'TASK_MANAGER', input: TaskInput, run: (deps, i) => resume(deps, i.taskId) }),
  op({
    name: 'task.cancel',
    permission: 'TASK_MANAGER',
    input: TaskInput,
    run: (deps, i) => cancelBatch(deps, i.taskId),
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

const byConfig = new WeakMap<Config, readonly Operation[]>();

/** Every operation of the API for this configuration: its registry's, then the task operations. */
export function apiOperations(config: Config): readonly Operation[] {
  let list = byConfig.get(config);
  if (!list) {
    list = [...taskOperations(config), ...TASK_API];
    byConfig.set(config, list);
  }
  return list;
}

/** The API operation `name`; undefined when there is none. */
export function findApiOperation(config: Config, name: string): Operation | undefined {
  return apiOperations(config).find((o) => o.name === name);
}

/** Parse an operation's input; a bad one is 400 / 10001 naming the field. */
export function parseInput(o: Operation, raw: unknown): unknown {
  const parsed = o.input.safeParse(raw);
  if (parsed.success) return parsed.data;
  const { message, field } = describeZodError(parsed.error);
  throw new CodedError(ErrorCode.badRequest, message, field);
}
