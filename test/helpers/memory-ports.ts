/**
 * In-memory fakes of the task ports (src/tasks/ports.ts), for use-case tests
 * that need no NATS. Each keeps the port's promises in one process: changes
 * by compare-and-set on a revision, locks that only their holder frees.
 */
import pino from 'pino';
import type { Config } from '../../src/config.js';
import type { WorkItem } from '../../src/contracts/events.js';
import { recordChange } from '../../src/core/task-record.js';
import type { TaskDeps } from '../../src/tasks/deps.js';
import {
  type HostLocks,
  type IdAllocator,
  type RequestEntry,
  type RequestLog,
  type StoredTask,
  type SubtaskLog,
  type SubtaskLogs,
  TaskIdTaken,
  type TaskIndex,
  type TaskStore,
} from '../../src/tasks/ports.js';

export function memoryTaskStore(now: () => Date = () => new Date()): TaskStore & { tasks: Map<number, StoredTask> } {
  const tasks = new Map<number, StoredTask>();
  let revision = 0;
  return {
    tasks,
    async get(taskId) {
      return tasks.get(taskId);
    },
    async peek(taskId) {
      return tasks.get(taskId);
    },
    async top(taskId) {
      return tasks.get(taskId);
    },
    // One record per task here: no batch is stored as parts.
    async glance() {
      return undefined;
    },
    async create(draft) {
      const stored = tasks.get(draft.task.id);
      if (stored?.record.requestId === draft.requestId) return stored.record;
      if (stored) throw new TaskIdTaken(draft.task.id, stored.record.requestId);
      const record = recordChange(undefined, draft, now());
      tasks.set(draft.task.id, { record, revision: ++revision });
      return record;
    },
    async update(taskId, change) {
      const stored = tasks.get(taskId);
      if (!stored) return undefined;
      const draft = change(stored.record);
      if (!draft) return stored.record;
      const record = recordChange(stored.record, draft, now());
      tasks.set(taskId, { record, revision: ++revision });
      return record;
    },
    async publishOutbox() {},
    async remove(taskId) {
      if (tasks.get(taskId)?.record.task.status !== 'RUNNING') tasks.delete(taskId);
    },
    // One record per task here, whatever its size: a chain is the whole task.
    async summary(taskId) {
      const stored = tasks.get(taskId);
      if (!stored) return undefined;
      const { subtasks: _subtasks, ...summary } = stored.record.task;
      return summary;
    },
    async chain(taskId) {
      return tasks.get(taskId);
    },
    updateChain(taskId, _chain, change) {
      return this.update(taskId, change);
    },
    async chainRested() {
      return { open: [] };
    },
    async endBatch() {
      return undefined;
    },
    async advance() {
      return { open: [] };
    },
    async setPaused(taskId) {
      return tasks.get(taskId)?.record;
    },
    async stopBatch(taskId) {
      return tasks.has(taskId);
    },
  };
}

export function memoryHostLocks(): HostLocks {
  const locks = new Map<number, { taskId: number; at: number; revision: number }>();
  let revision = 0;
  const acquire: HostLocks['acquire'] = async (hostId, taskId) => {
    const lock = locks.get(hostId);
    if (lock && lock.taskId !== taskId) {
      return { ok: false, holder: lock.taskId, revision: lock.revision, at: lock.at, reopening: false };
    }
    const next = { taskId, at: Date.now(), revision: ++revision };
    locks.set(hostId, next);
    return { ok: true, revision: next.revision, fresh: !lock };
  };
  return {
    acquire,
    hold: (hostId, taskId) => acquire(hostId, taskId),
    async replace(hostId, taskId, staleRevision) {
      if (locks.get(hostId)?.revision !== staleRevision) return false;
      locks.set(hostId, { taskId, at: Date.now(), revision: ++revision });
      return revision;
    },
    async release(hostId, taskId, rev) {
      const lock = locks.get(hostId);
      if (lock?.taskId === taskId && (rev === undefined || lock.revision === rev)) locks.delete(hostId);
    },
    async holder(hostId) {
      return locks.get(hostId)?.taskId;
    },
    async lockOf(hostId) {
      const lock = locks.get(hostId);
      return lock && { taskId: lock.taskId, revision: lock.revision };
    },
  };
}

export function memoryIds(): IdAllocator {
  let next = 1;
  return {
    async take(count) {
      const ids = Array.from({ length: count }, (_, i) => next + i);
      next += count;
      return ids;
    },
    async skipPast(id) {
      next = Math.max(next, id + 1);
    },
  };
}

export function memoryRequests(): RequestLog & { entries: Map<string, RequestEntry> } {
  const entries = new Map<string, RequestEntry>();
  return {
    entries,
    async get(requestId) {
      return entries.get(requestId);
    },
    async reserve(requestId, entry) {
      if (entries.has(requestId)) return false;
      entries.set(requestId, entry);
      return true;
    },
    async settle(requestId, entry) {
      entries.set(requestId, entry);
    },
    async forget(requestId) {
      entries.delete(requestId);
    },
  };
}

export function memoryLogs(): SubtaskLogs {
  const logs = new Map<string, SubtaskLog>();
  return {
    async put(taskId, subtaskId, log) {
      logs.set(`${taskId}.${subtaskId}`, log);
    },
    async get(taskId, subtaskId) {
      return logs.get(`${taskId}.${subtaskId}`);
    },
  };
}

export function memoryIndex(store: { tasks: Map<number, StoredTask> }): TaskIndex {
  const newestFirst = () => [...store.tasks.values()].map(({ record }) => record.task).sort((a, b) => b.id - a.id);
  return {
    async list(filter, offset, limit) {
      const matching = newestFirst().filter(
        (t) =>
          (filter.status === undefined || t.status === filter.status) &&
          (filter.name === undefined || t.name === filter.name) &&
          (filter.hostId === undefined ||
            t.hostId === filter.hostId ||
            (t.context.listMap.host_ids ?? []).includes(String(filter.hostId))),
      );
      return { ids: matching.slice(offset, offset + limit).map((t) => t.id), total: matching.length };
    },
    async running() {
      return newestFirst()
        .filter((t) => t.status === 'RUNNING')
        .map((t) => t.id);
    },
    async endedBefore(cutoffMs) {
      return newestFirst()
        .filter((t) => t.status !== 'RUNNING' && Date.parse(t.finishTime ?? t.createTime ?? t.startTime) < cutoffMs)
        .map((t) => t.id);
    },
    close() {},
  };
}

/** Task deps on in-memory ports; `queued` holds what was enqueued, in order. */
export function memoryDeps(config: Config) {
  const store = memoryTaskStore();
  const requests = memoryRequests();
  const queued: WorkItem[] = [];
  const deps: TaskDeps = {
    config,
    store,
    index: memoryIndex(store),
    locks: memoryHostLocks(),
    ids: memoryIds(),
    requests,
    logs: memoryLogs(),
    enqueue: async (item) => {
      queued.push(item);
    },
    epoch: 'test',
    maxPayload: 1024 * 1024,
    address: '127.0.0.1',
    logger: pino({ level: 'silent' }),
    now: () => new Date(),
  };
  return { deps, store, requests, queued };
}
