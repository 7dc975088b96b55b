/**
 * The task index and listing as they were before issue 13's history work
 * (src/nats/task-index.ts and listTasks at f3152ba), frozen here as the
 * baseline bench/history.ts measures in the same run: every task's summary
 * (the task without its subtasks) in memory from a watch on the task bucket,
 * each listing a sort and filter of them all. Not used by the product.
 */
import type { KV, KvEntry } from 'nats';
import type { TaskRecord } from '../../src/core/task-record.js';
import { decodeJsonBytes } from '../../src/nats/kv-json.js';
import type { TaskFilter, TaskSummary } from '../../src/tasks/ports.js';

function summaryOf(e: KvEntry): TaskSummary {
  const { subtasks: _subtasks, ...summary } = decodeJsonBytes<TaskRecord>(e.value).task;
  return summary;
}

const CATCH_UP_MS = 2000;

export function createSummaryIndexBefore(kv: KV): { all(): Promise<TaskSummary[]>; close(): void } {
  const tasks = new Map<number, TaskSummary>();
  const unread = new Map<number, KvEntry>();
  let applied = 0;
  let started: Promise<void> | undefined;
  let stop: (() => void) | undefined;

  function read(): void {
    for (const [id, e] of unread) {
      if (e.operation !== 'PUT') {
        tasks.delete(id);
        continue;
      }
      try {
        tasks.set(id, summaryOf(e));
      } catch {
        // not a task record
      }
    }
    unread.clear();
  }

  function start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      kv.watch({ key: 'task.*', initializedFn: () => resolve() })
        .then(async (iter) => {
          stop = () => iter.stop();
          for await (const e of iter) {
            applied = Math.max(applied, e.revision);
            const id = Number(e.key.slice('task.'.length));
            if (Number.isSafeInteger(id)) unread.set(id, e);
          }
        })
        .catch(reject);
    });
  }

  return {
    async all() {
      started ??= start();
      await started;
      const last = (await kv.status()).streamInfo.state.last_seq;
      const deadline = Date.now() + CATCH_UP_MS;
      while (applied < last && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      read();
      return [...tasks.values()];
    },
    close() {
      stop?.();
    },
  };
}

/** listTasks as it was: sort and filter every summary, then slice the page. */
export async function listBefore(
  index: { all(): Promise<TaskSummary[]> },
  q: TaskFilter & { page: number; size: number },
): Promise<{ contents: TaskSummary[]; total: number }> {
  const matching = (await index.all())
    .sort((a, b) => b.id - a.id)
    .filter((t) => q.status === undefined || t.status === q.status)
    .filter((t) => q.name === undefined || t.name === q.name)
    .filter(
      (t) =>
        q.hostId === undefined ||
        t.hostId === q.hostId ||
        (t.context.listMap.host_ids ?? []).includes(String(q.hostId)),
    );
  const start = (q.page - 1) * q.size;
  return { contents: matching.slice(start, start + q.size), total: matching.length };
}
