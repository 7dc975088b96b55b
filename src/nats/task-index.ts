/**
 * Which tasks there are, kept from a watch on the task bucket in a compact
 * table (task-table.ts: per task its id, status, name, hosts and end time), for
 * listings (`GET /api/v2/tasks/instances`, Slack `list` and `history`), the
 * sweeper and retention. A listing takes its page's ids from here and reads
 * only those summaries from the store.
 *
 * Started on first use; a call first waits (briefly) until the index has seen
 * the bucket's last write, so a caller reads its own writes. The writes seen
 * are decoded in batches, only the latest per task: a running batch rewrites
 * its record on every change, and decoding each of those writes would cost
 * more than the listings that read them.
 */
import type { KV, KvEntry } from 'nats';
import type { TaskRecord } from '../core/task-record.js';
import type { TaskIndex } from '../tasks/ports.js';
import { decodeJsonBytes, latestOnce } from './kv-json.js';
import { type TaskRow, TaskTable } from './task-table.js';

/** Longest a call waits for the index to catch up with the bucket (ms). */
const CATCH_UP_MS = 2000;
/** Writes seen but not decoded are decoded once they hold this many bytes, or after FLUSH_MS. */
const PENDING_BYTES = 4 * 1024 * 1024;
const FLUSH_MS = 1000;

const KEY_PREFIX = 'task.';

/** The index's row of a stored record; undefined for what is not a task record. */
function rowOf(value: Uint8Array): TaskRow | undefined {
  let task: TaskRecord['task'];
  try {
    task = decodeJsonBytes<TaskRecord>(value).task;
  } catch {
    return undefined;
  }
  if (typeof task?.id !== 'number') return undefined;
  const hostIds = [task.hostId];
  for (const h of task.context?.listMap?.host_ids ?? []) {
    const n = Number(h);
    if (Number.isSafeInteger(n) && !hostIds.includes(n)) hostIds.push(n);
  }
  const ended = Date.parse(task.finishTime ?? task.createTime ?? task.startTime);
  return {
    id: task.id,
    status: task.status,
    name: task.name,
    ...(typeof task.creator === 'string' ? { creator: task.creator } : {}),
    hostIds,
    endedAt: task.status === 'RUNNING' || !Number.isFinite(ended) ? undefined : ended,
  };
}

function idOf(key: string): number | undefined {
  const id = Number(key.slice(KEY_PREFIX.length));
  return Number.isSafeInteger(id) ? id : undefined;
}

/**
 * `keep` chooses what stays in memory: a process that serves listings keeps
 * every task (as many as retention.tasks lets the store hold); one that only
 * sweeps keeps the running ones, so its memory follows the work in flight.
 */
export function createTaskIndex(deps: { kv: KV; keep?: 'all' | 'running' }): TaskIndex {
  const onlyRunning = deps.keep === 'running';
  let table = new TaskTable();
  /** The latest write of each task seen since the last flush, not decoded yet. */
  const pending = new Map<number, KvEntry>();
  let pendingBytes = 0;
  let flushTimer: NodeJS.Timeout | undefined;
  /** Stream sequence of the last write seen. */
  let applied = 0;
  let started: Promise<void> | undefined;
  let stop: (() => void) | undefined;

  function flush(): void {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = undefined;
    for (const [id, e] of pending) {
      const row = e.operation === 'PUT' ? rowOf(e.value) : undefined;
      if (row === undefined || row.id !== id || (onlyRunning && row.status !== 'RUNNING')) table.delete(id);
      else table.put(row);
    }
    pending.clear();
    pendingBytes = 0;
  }

  function seen(e: KvEntry, loading: boolean): void {
    applied = Math.max(applied, e.revision);
    const id = idOf(e.key);
    if (id === undefined) return;
    const before = pending.get(id);
    pendingBytes += e.value.length - (before?.value.length ?? 0);
    pending.set(id, e);
    if (loading || pendingBytes >= PENDING_BYTES) flush();
    else flushTimer ??= setTimeout(flush, FLUSH_MS).unref();
  }

  function start(): Promise<void> {
    // A new watch replays the bucket: start from an empty table.
    table = new TaskTable({ loading: true });
    pending.clear();
    pendingBytes = 0;
    let loading = true;
    return new Promise<void>((resolve, reject) => {
      deps.kv
        .watch({
          key: `${KEY_PREFIX}*`,
          initializedFn: () => {
            flush();
            table.loaded();
            loading = false;
            resolve();
          },
        })
        .then(async (iter) => {
          stop = () => iter.stop();
          for await (const e of iter) seen(e, loading);
          started = undefined; // ended (closed, or the watch failed): start again on next use
        })
        .catch((err) => {
          started = undefined;
          reject(err);
        });
    });
  }

  /** Started, caught up with the bucket's writes made before now, and those decoded. */
  async function ready(): Promise<TaskTable> {
    started ??= start();
    await started;
    const last = (await deps.kv.status()).streamInfo.state.last_seq;
    const deadline = Date.now() + CATCH_UP_MS;
    while (applied < last && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    flush();
    return table;
  }

  /**
   * Retention where only running tasks are kept: the keys whose last write is
   * older than the cutoff (a task ends with a write, so one written since
   * cannot have ended before), read one at a time.
   */
  async function scanEndedBefore(cutoffMs: number): Promise<number[]> {
    const old = new Set<number>();
    for await (const e of latestOnce(deps.kv, `${KEY_PREFIX}*`, { headersOnly: true })) {
      const id = idOf(e.key);
      if (id !== undefined && e.operation === 'PUT' && e.created.getTime() < cutoffMs) old.add(id);
    }
    const out: number[] = [];
    for (const id of old) {
      const e = await deps.kv.get(`${KEY_PREFIX}${id}`);
      const row = e?.operation === 'PUT' ? rowOf(e.value) : undefined;
      if (row?.endedAt !== undefined && row.endedAt < cutoffMs) out.push(id);
    }
    return out;
  }

  return {
    async list(filter, offset, limit) {
      return (await ready()).list(filter, offset, limit);
    },
    async running() {
      return (await ready()).running();
    },
    async endedBefore(cutoffMs) {
      if (onlyRunning) return scanEndedBefore(cutoffMs);
      return (await ready()).endedBefore(cutoffMs);
    },
    close() {
      stop?.();
      if (flushTimer) clearTimeout(flushTimer);
    },
  };
}
