/**
 * What a use case looks up by id, or the coded error a door answers with:
 * 10002 for a host not in the inventory, 20000 for a task or subtask not found.
 */
import { findHost, type HostConfig } from '../config.js';
import { idText } from '../contracts/api.js';
import { findSubtask } from '../core/task.js';
import type { TaskRecord } from '../core/task-record.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { TaskDeps } from './deps.js';

export function hostOrThrow(deps: Pick<TaskDeps, 'config'>, hostId: number): HostConfig {
  const host = findHost(deps.config, hostId);
  if (!host) throw new CodedError(ErrorCode.notFound, `host ${idText(hostId)} is not in the inventory`, 'hostId');
  return host;
}

export async function recordOrThrow(deps: TaskDeps, taskId: number): Promise<TaskRecord> {
  const stored = await deps.store.get(taskId);
  if (!stored) throw new CodedError(ErrorCode.taskNotFound, `task ${idText(taskId)} not found`, 'taskId');
  return stored.record;
}

export function subtaskOrThrow(record: TaskRecord, subtaskId: number) {
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
