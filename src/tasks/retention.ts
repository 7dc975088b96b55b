/**
 * retention.tasks (SPEC §10): a task that ended longer ago than that is
 * removed from the store, and so from listings and history. A running task is
 * never removed, however old; nor are the id counter and the host locks. The
 * task's logs, Slack thread and request entry age out in their own buckets
 * (their max age is the same retention).
 */
import type { TaskDeps } from './deps.js';

/** Remove the tasks that ended more than `keptMs` before now; resolves with how many. */
export async function removeExpiredTasks(
  deps: Pick<TaskDeps, 'index' | 'store' | 'logger' | 'now'>,
  keptMs: number,
): Promise<number> {
  const expired = await deps.index.endedBefore(deps.now().getTime() - keptMs);
  // The store removes a task only if it has not run again since (a Retry).
  for (const id of expired) await deps.store.remove(id);
  if (expired.length > 0) {
    deps.logger.info({ removed: expired.length, keptMs }, 'finished tasks past retention.tasks removed');
  }
  return expired.length;
}
