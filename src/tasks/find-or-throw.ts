/**
 * What a use case looks up by id (or a selector), or the coded error a door answers with:
 * 10002 for a host not in the inventory or a selector matching none, 20000 for a task or subtask not found.
 */
import { findHost, type HostConfig } from '../config.js';
import { idText } from '../contracts/api.js';
import { type Selector, selectHosts, selectorText } from '../contracts/selector.js';
import { findSubtask } from '../core/task.js';
import type { TaskRecord } from '../core/task-record.js';
import { CodedError, ErrorCode } from '../errors.js';
import type { TaskDeps } from './deps.js';

export function hostOrThrow(deps: Pick<TaskDeps, 'config'>, hostId: number): HostConfig {
  const host = findHost(deps.config, hostId);
  if (!host) throw new CodedError(ErrorCode.notFound, `host ${idText(hostId)} is not in the inventory`, 'hostId');
  return host;
}

/** The hosts of the inventory of the moment that a selector matches, in inventory order; none is 404 / 10002. */
export function hostsMatchingOrThrow(deps: Pick<TaskDeps, 'config'>, selector: Selector): HostConfig[] {
  const hosts = selectHosts(deps.config.hosts, selector);
  if (hosts.length === 0) {
    const what = selector === 'all' ? 'the inventory has no hosts' : `no host has the labels ${selectorText(selector)}`;
    throw new CodedError(ErrorCode.notFound, `selector ${selectorText(selector)} matches no host: ${what}`, 'selector');
  }
  return hosts;
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
