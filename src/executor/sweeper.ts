/**
 * The safety net for a task that would otherwise stay RUNNING forever: a
 * process that stored a change (a retry, a new batch from HTTP) and died — or
 * lost NATS — before queueing its READY subtasks or announcing its events.
 * Every executor looks over the running tasks now and then and queues their
 * READY subtasks again; work item ids and announced events are deduplicated,
 * and a second item for a subtask already running only attaches to its run.
 * Every RETENTION_EVERY_MS a sweep also removes the tasks that ended longer
 * ago than retention.tasks.
 */
import type { Logger } from 'pino';
import { hostsStillToRun } from '../core/task-record.js';
import { followBatch } from '../tasks/control-batch.js';
import type { TaskDeps } from '../tasks/deps.js';
import { queueReady } from '../tasks/queue-ready.js';
import { removeExpiredTasks } from '../tasks/retention.js';

/** How often a sweep also removes finished tasks past retention.tasks (ms). */
const RETENTION_EVERY_MS = 10 * 60_000;

export interface Sweeper {
  /** One pass; resolves with how many subtasks were queued again. */
  sweep(): Promise<number>;
  stop(): void;
}

export function startSweeper(
  deps: TaskDeps,
  opts: { everyMs: number; logger: Logger /** retention.tasks (ms) */; keptMs: number },
): Sweeper {
  let sweeping = false;
  let lastRetention = Date.now();
  async function sweep(): Promise<number> {
    if (sweeping) return 0;
    sweeping = true;
    let queued = 0;
    try {
      // Only the running ones are read in full: the index knows every task's status.
      for (const id of await deps.index.running()) {
        const stored = await deps.store.get(id);
        if (stored?.record.task.status !== 'RUNNING') continue;
        const { record } = stored;
        if (record.layout === 'chains' || record.outbox.length > 0) await deps.store.publishOutbox(record);
        queued += await queueReady(deps, record);
        // A batch whose last chain's executor died between its progress and its end.
        if (record.layout === 'chains' && hostsStillToRun(record).length === 0) await deps.store.endBatch(id);
        // A batch stopped (canceled, a canary failed, too many failures) whose process died before it
        // ended it, or one resumed whose chains were not opened: judged again. A paused one waits.
        else if (record.layout === 'chains') await followBatch(deps, id, record.traceId, await deps.store.advance(id));
      }
      // A pass over the whole bucket: not every sweep.
      if (Date.now() - lastRetention >= RETENTION_EVERY_MS) {
        lastRetention = Date.now();
        await removeExpiredTasks(deps, opts.keptMs);
      }
    } finally {
      sweeping = false;
    }
    return queued;
  }
  // Jittered, so executors started together do not sweep together.
  const timer = setInterval(
    () => {
      sweep().catch((err) => opts.logger.warn({ err: err.message }, 'sweep failed; next time'));
    },
    opts.everyMs + Math.floor(Math.random() * opts.everyMs * 0.2),
  );
  timer.unref();
  return { sweep, stop: () => clearInterval(timer) };
}
