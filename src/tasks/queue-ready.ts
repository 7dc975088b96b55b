/**
 * Queue what a task has READY, the one way every use case does it (creating
 * a task, reopening one, following up a subtask, the sweeper). The work queue
 * deduplicates per run, so queueing a run twice is harmless.
 */
import { readySubtasks } from '../core/task.js';
import type { TaskRecord } from '../core/task-record.js';
import type { TaskDeps } from './deps.js';

/** Work items published side by side. */
const QUEUED_AT_ONCE = 256;

/**
 * Queue the READY subtasks of `record` — only those in `only` when given —
 * side by side (a fleet's first steps: one round trip in all). Resolves with
 * how many were queued, once every item is durable.
 */
export async function queueReady(
  deps: Pick<TaskDeps, 'enqueue'>,
  record: Pick<TaskRecord, 'task' | 'traceId' | 'layout'>,
  only?: ReadonlySet<number>,
): Promise<number> {
  const ready = readySubtasks(record.task).filter((s) => !only || only.has(s.id));
  // A batch's chain is a record of its own: its work item names it.
  const chainOf = (s: { parallelIdx: number }) => (record.layout === 'chains' ? { chain: s.parallelIdx } : {});
  for (let i = 0; i < ready.length; i += QUEUED_AT_ONCE) {
    await Promise.all(
      ready
        .slice(i, i + QUEUED_AT_ONCE)
        .map((s) =>
          deps.enqueue({ taskId: record.task.id, subtaskId: s.id, runTime: s.runTime, ...chainOf(s) }, record.traceId),
        ),
    );
  }
  return ready.length;
}
