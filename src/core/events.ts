/**
 * Task events are derived, not written by hand: the difference between two
 * versions of a task is the list of what changed. A new task announces itself
 * first; otherwise subtask changes come before the task's own.
 */
import type { TaskEvent } from '../contracts/events.js';
import type { OcpTask } from '../contracts/ocp-task.js';

export function diffEvents(
  before: OcpTask | undefined,
  after: OcpTask,
  meta: { at: string; traceId: string; lastSeq: number },
): TaskEvent[] {
  type Change = { subtaskId?: number; status: TaskEvent['status']; kind: 'task' | 'subtask' };
  const changes: Change[] = [];
  const old = new Map(before?.subtasks.map((s) => [s.id, s]) ?? []);
  for (const s of after.subtasks) {
    const prev = old.get(s.id);
    if (!before && s.status === 'PENDING') continue; // a new task's PENDING nodes are not news
    if (prev && prev.status === s.status && prev.runTime === s.runTime) continue;
    changes.push({ kind: 'subtask', subtaskId: s.id, status: s.status });
  }
  if (!before || before.status !== after.status) {
    const change: Change = { kind: 'task', status: after.status };
    if (!before) changes.unshift(change);
    else changes.push(change);
  }
  return changes.map((c, i) => ({
    type: `${c.kind}.${c.status.toLowerCase()}`,
    taskId: after.id,
    ...(c.subtaskId === undefined ? {} : { subtaskId: c.subtaskId }),
    status: c.status,
    at: meta.at,
    traceId: meta.traceId,
    seq: meta.lastSeq + i + 1,
    task: after,
  }));
}
