/**
 * Every task without its subtasks, kept in memory from a watch on the task
 * bucket, for listings (`GET /api/v2/tasks/instances`, Slack `list` and
 * `history`): reading every record for every listing cost a KV consumer and a
 * get per task per call. Started on first use; a listing first waits (briefly)
 * until the index has seen the bucket's last write, so a caller reads its own
 * writes. Entries are decoded when a listing asks, only the latest per task:
 * a running fleet task rewrites its record (hundreds of KB) on every change,
 * and an executor, whose sweeper lists once per two leases, should not decode
 * every one of those writes.
 */
import type { KV, KvEntry } from 'nats';
import type { TaskRecord } from '../core/task-record.js';
import type { TaskIndex, TaskSummary } from '../tasks/ports.js';
import { decodeJsonBytes } from './kv-json.js';

/** A task record's summary: the task without its subtasks. */
function summaryOf(e: KvEntry): TaskSummary {
  const { subtasks: _subtasks, ...summary } = decodeJsonBytes<TaskRecord>(e.value).task;
  return summary;
}

/** Longest a listing waits for the index to catch up with the bucket (ms). */
const CATCH_UP_MS = 2000;

/**
 * `keep` chooses what stays in memory: a process that serves listings keeps
 * every task (as many as retention.tasks lets the store hold); one that only
 * sweeps keeps the running ones, so its memory follows the work in flight.
 */
export function createTaskIndex(deps: { kv: KV; keep?: (task: TaskSummary) => boolean }): TaskIndex {
  const keep = deps.keep ?? (() => true);
  const tasks = new Map<number, TaskSummary>();
  /** The latest entry of each task written since the last listing, not decoded yet. */
  const unread = new Map<number, KvEntry>();
  /** Stream sequence of the last entry seen. */
  let applied = 0;
  let started: Promise<void> | undefined;
  let stop: (() => void) | undefined;

  function apply(e: KvEntry): void {
    applied = Math.max(applied, e.revision);
    const id = Number(e.key.slice('task.'.length));
    if (Number.isSafeInteger(id)) unread.set(id, e);
  }

  function read(): void {
    for (const [id, e] of unread) {
      if (e.operation !== 'PUT') {
        tasks.delete(id);
        continue;
      }
      try {
        const summary = summaryOf(e);
        if (keep(summary)) tasks.set(id, summary);
        else tasks.delete(id);
      } catch {
        // not a task record: nothing to list
      }
    }
    unread.clear();
  }

  function start(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      deps.kv
        .watch({ key: 'task.*', initializedFn: () => resolve() })
        .then(async (iter) => {
          stop = () => iter.stop();
          for await (const e of iter) apply(e);
          started = undefined; // ended (closed, or the watch failed): start again on next use
        })
        .catch((err) => {
          started = undefined;
          reject(err);
        });
    });
  }

  async function caughtUp(): Promise<void> {
    const last = (await deps.kv.status()).streamInfo.state.last_seq;
    const deadline = Date.now() + CATCH_UP_MS;
    while (applied < last && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  }

  return {
    async all() {
      started ??= start();
      await started;
      await caughtUp();
      read();
      return [...tasks.values()];
    },
    async scan(visit) {
      const iter = await deps.kv.watch({ key: 'task.*', ignoreDeletes: true, initializedFn: () => iter.stop() });
      for await (const e of iter) {
        if (e.operation !== 'PUT') continue;
        try {
          visit(summaryOf(e));
        } catch {
          // not a task record
        }
      }
    },
    close() {
      stop?.();
    },
  };
}
