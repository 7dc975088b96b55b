/**
 * Queue what a task has READY, the one way every use case does it (creating
 * a task, reopening one, following up a subtask, the sweeper). The work queue
 * deduplicates per run, so queueing a run twice is harmless.
 */
import { readySubtasks } from '../core/task.js';
import type { TaskRecord } from '../core/task-record.js';
import type { TaskDeps } from './deps.js';

/**
 * Queue the READY subtasks of `record` — only those in `only` when given —
 * side by side (a fleet's first steps: one round trip in all). Resolves with
 * how many were queued, once every item is durable.
 */
export async function queueReady(
  deps: Pick<TaskDeps, 'enqueue'>,
  record: Pick<TaskRecord, 'task' | 'traceId'>,
  only?: ReadonlySet<number>,
): Promise<number> {
  const ready = readySubtasks(record.task).filter((s) => !only || only.has(s.id));
  await Promise.all(
    ready.map((s) => deps.enqueue({ taskId: record.task.id, subtaskId: s.id, runTime: s.runTime }, record.traceId)),
  );
  return ready.length;
}
