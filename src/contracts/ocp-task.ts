/**
 * The task as OCP shows it (seed: restart-ocp-agent-api.md), field for field.
 * OCP's optional fields (createTime, finishTime, a subtask's startTime, finishTime,
 * executor) are present once known.
 */
import { z } from 'zod';

export const TaskStatus = z.enum(['RUNNING', 'FAILED', 'SUCCESSFUL']);
export type TaskStatus = z.infer<typeof TaskStatus>;

export const SubtaskStatus = z.enum(['PENDING', 'READY', 'RUNNING', 'CANCELING', 'FAILED', 'SUCCESSFUL']);
export type SubtaskStatus = z.infer<typeof SubtaskStatus>;

export const Operation = z.enum(['EXECUTE', 'RETRY', 'ROLLBACK', 'SKIP', 'CANCEL']);
export type Operation = z.infer<typeof Operation>;

/** Positive integer id, at most 2^53 - 1 (JSON-safe "Long"). */
export const Id = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);

export const OcpSubtask = z.object({
  className: z.string(),
  description: z.string(),
  downstreams: z.array(Id),
  id: Id,
  name: z.string(),
  nodeType: z.literal('JAVA_TASK'),
  operation: Operation,
  parallelIdx: z.number().int(),
  prohibitRollback: z.boolean(),
  runTime: z.number().int().positive(),
  seriesId: z.number().int().nonnegative(),
  status: SubtaskStatus,
  timeout: z.number().int().positive(),
  upstreams: z.array(Id),
  startTime: z.string().optional(),
  finishTime: z.string().optional(),
  executor: z.string().optional(),
});
export type OcpSubtask = z.infer<typeof OcpSubtask>;

export const OcpTask = z.object({
  context: z.object({
    listMap: z.record(z.string(), z.array(z.string())),
    parallel: z.boolean(),
    parallelIdx: z.number().int(),
    stringMap: z.record(z.string(), z.string()),
  }),
  creator: z.string(),
  executor: z.string(),
  hostId: Id,
  id: Id,
  name: z.string(),
  operation: Operation,
  startTime: z.string(),
  status: TaskStatus,
  subtasks: z.array(OcpSubtask),
  taskDefinitionId: z.number().int(),
  type: z.literal('MANUAL'),
  createTime: z.string().optional(),
  finishTime: z.string().optional(),
});
export type OcpTask = z.infer<typeof OcpTask>;
