/**
 * Task records in KV, changed only by compare-and-set. Every change publishes
 * its events on ocp.events.task.<id> (deduplicated by event seq), in order.
 */
import type { JetStreamClient, JetStreamManager, KV } from 'nats';
import { headers as natsHeaders } from 'nats';
import { outboxEvents, recordChange, type TaskRecord } from '../core/task-record.js';
import { decodeJson, encodeJson, encodeJsonCompact, getLive, isCasConflict } from './kv-json.js';
import { STREAMS, SUBJECTS } from './streams.js';

export interface StoredTask {
  record: TaskRecord;
  revision: number;
}

/** Return the changed record, or undefined to leave it as it is. */
export type TaskChange = (record: TaskRecord) => Omit<TaskRecord, 'eventSeq' | 'publishedSeq' | 'outbox'> | undefined;

export interface TaskStore {
  get(taskId: number): Promise<StoredTask | undefined>;
  /**
   * The task as this process last wrote it, if it did and the task was still
   * running then; else as stored. It may be stale: good for a judgement that
   * a compare-and-set confirms, not for one that ends in doing nothing.
   */
  peek(taskId: number): Promise<StoredTask | undefined>;
  /** Store a new task; if it exists already (a redelivered request), keep the stored one. */
  create(record: Omit<TaskRecord, 'eventSeq' | 'publishedSeq' | 'outbox'>): Promise<TaskRecord>;
  /**
   * Apply `change` by compare-and-set, retrying on conflict; publishes the
   * change's events. Resolves with the record as this change left it (later
   * changes stored in the same write may have followed it); a change that
   * throws rejects only its own caller.
   */
  update(taskId: number, change: TaskChange): Promise<TaskRecord | undefined>;
  /** Publish the outbox of the stored record again (after a takeover); duplicates are dropped. */
  republish(record: TaskRecord): Promise<void>;
}

const key = (taskId: number) => `task.${taskId}`;

interface Waiter {
  change: TaskChange;
  resolve(record: TaskRecord | undefined): void;
  reject(err: unknown): void;
}

type Outcome = { record: TaskRecord } | { error: unknown };

/** Running tasks whose last write a process remembers (the oldest are forgotten first). */
const REMEMBERED_TASKS = 256;

export function createTaskStore(deps: { kv: KV; js: JetStreamClient; now?: () => Date }): TaskStore {
  const { kv, js } = deps;
  const now = deps.now ?? (() => new Date());

  /** Highest event seq this process saw the stream accept, per running task. */
  const published = new Map<number, number>();

  let jsm: JetStreamManager | undefined;
  /**
   * seq of the task's last event on the stream; 0 when it has none. Only an
   * event this service published counts (its message id says its seq): where
   * publishers share the service's NATS account, one can put a message of its
   * choosing on the subject (a JetStream ack sent to the reply subject it
   * chose), and a seq read from that would keep the real events off the audit
   * trail. Then the outbox is published again, its repeats dropped by id.
   */
  async function lastOnStream(taskId: number): Promise<number> {
    jsm ??= await js.jetstreamManager();
    try {
      const m = await jsm.streams.getMessage(STREAMS.events, { last_by_subj: SUBJECTS.taskEvent(taskId) });
      const seq = (m.json() as { seq?: unknown }).seq;
      const ours = typeof seq === 'number' && m.header?.get('Nats-Msg-Id') === `task-${taskId}-event-${seq}`;
      return ours ? seq : 0;
    } catch (err) {
      if (err instanceof Error && /no message found/i.test(err.message)) return 0;
      throw err;
    }
  }

  async function publishEvents(record: TaskRecord): Promise<void> {
    const id = record.task.id;
    let events = outboxEvents(record).filter((e) => e.seq > (published.get(id) ?? 0));
    // An outbox this process never saw published may be old — past the stream's
    // duplicate window a repeat would be stored twice — so ask the stream.
    if (events.length > 0 && !published.has(id)) {
      const last = await lastOnStream(id);
      events = events.filter((e) => e.seq > last);
    }
    // One at a time: sent back to back, an event lost with a dropped
    // connection could be overtaken by the next, sent after the reconnect.
    for (const event of events) {
      const h = natsHeaders();
      h.set('X-Trace-Id', event.traceId);
      await js.publish(SUBJECTS.taskEvent(event.taskId), encodeJson(event), {
        msgID: `task-${event.taskId}-event-${event.seq}`,
        headers: h,
      });
      published.set(id, Math.max(published.get(id) ?? 0, event.seq));
    }
    if (record.task.status !== 'RUNNING') published.delete(record.task.id);
  }

  async function get(taskId: number): Promise<StoredTask | undefined> {
    const entry = await getLive(kv, key(taskId));
    return entry ? { record: decodeJson<TaskRecord>(entry), revision: entry.revision } : undefined;
  }

  /**
   * Group commit: changes to one task made while its previous write is under
   * way wait in a queue, then go in together as one compare-and-set. A batch's
   * chains would otherwise race each other for the same key, each conflict a
   * re-read of the whole task.
   */
  const queued = new Map<number, Waiter[]>();
  const draining = new Set<number>();
  /** What this process last wrote of each running task: the next write starts from it. */
  const lastWritten = new Map<number, StoredTask>();

  function remember(stored: StoredTask): void {
    const id = stored.record.task.id;
    lastWritten.delete(id); // re-inserted last: the Map's order is the recency order
    if (stored.record.task.status !== 'RUNNING') return;
    lastWritten.set(id, stored);
    // Bounded: with 1,000 tasks in flight the copies were most of the executor's memory.
    if (lastWritten.size > REMEMBERED_TASKS) lastWritten.delete(lastWritten.keys().next().value as number);
  }

  async function drain(taskId: number): Promise<void> {
    draining.add(taskId);
    try {
      for (let batch = queued.get(taskId); batch; batch = queued.get(taskId)) {
        queued.delete(taskId);
        await commit(taskId, batch);
      }
    } finally {
      draining.delete(taskId);
    }
  }

  /** Apply each waiter's change in turn; each learns the record its own change made. */
  function applyAll(start: TaskRecord, batch: Waiter[]): { record: TaskRecord; outcomes: Outcome[]; sure: boolean } {
    let record = start;
    let sure = true;
    const outcomes = batch.map((w): Outcome => {
      try {
        const draft = w.change(record);
        if (!draft) {
          sure = false;
          return { record };
        }
        record = recordChange(record, draft, now(), published.get(start.task.id));
        return { record };
      } catch (error) {
        sure = false;
        return { error };
      }
    });
    return { record, outcomes, sure };
  }

  async function commit(taskId: number, batch: Waiter[]): Promise<void> {
    try {
      let stored = lastWritten.get(taskId);
      let fresh = false;
      if (!stored) {
        stored = await get(taskId);
        fresh = true;
      }
      for (;;) {
        if (!stored) {
          for (const w of batch) w.resolve(undefined);
          return;
        }
        const { record, outcomes, sure } = applyAll(stored.record, batch);
        // A change declined or refused on a remembered copy may have judged old
        // news: judge it again on the stored task.
        if (!sure && !fresh) {
          stored = await get(taskId);
          fresh = true;
          continue;
        }
        if (record !== stored.record) {
          try {
            const revision = await kv.update(key(taskId), encodeJsonCompact(record), stored.revision);
            remember({ record, revision });
          } catch (err) {
            if (!isCasConflict(err)) throw err;
            lastWritten.delete(taskId);
            stored = await get(taskId);
            fresh = true;
            continue;
          }
          await publishEvents(record);
        }
        batch.forEach((w, i) => {
          const o = outcomes[i] as Outcome;
          if ('error' in o) w.reject(o.error);
          else w.resolve(o.record);
        });
        return;
      }
    } catch (err) {
      lastWritten.delete(taskId);
      for (const w of batch) w.reject(err);
    }
  }

  return {
    get,
    async peek(taskId) {
      return lastWritten.get(taskId) ?? get(taskId);
    },
    async create(draft) {
      const record = recordChange(undefined, draft, now());
      let revision: number;
      try {
        revision = await kv.create(key(draft.task.id), encodeJsonCompact(record));
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        const stored = await get(draft.task.id);
        if (!stored) throw err;
        await publishEvents(stored.record);
        return stored.record;
      }
      published.set(draft.task.id, 0); // we just created it: nothing of it is on the stream yet
      remember({ record, revision });
      await publishEvents(record);
      return record;
    },
    update(taskId, change) {
      return new Promise((resolve, reject) => {
        const waiter = { change, resolve, reject };
        const q = queued.get(taskId);
        if (q) q.push(waiter);
        else queued.set(taskId, [waiter]);
        if (!draining.has(taskId)) void drain(taskId);
      });
    },
    republish: publishEvents,
  };
}
