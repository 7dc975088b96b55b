/**
 * Task records in KV, changed only by compare-and-set. Every change publishes
 * its events on ocp.events.task.<id> (deduplicated by event seq), in order.
 */
import type { JetStreamClient, JetStreamManager, KV } from 'nats';
import { headers as natsHeaders } from 'nats';
import { outboxEvents, recordChange, type TaskRecord } from '../core/task-record.js';
import { decodeJson, encodeJson, getLive, isCasConflict } from './kv-json.js';
import { STREAMS, SUBJECTS } from './streams.js';

export interface StoredTask {
  record: TaskRecord;
  revision: number;
}

/** Return the changed record, or undefined to leave it as it is. */
export type TaskChange = (record: TaskRecord) => Omit<TaskRecord, 'eventSeq' | 'publishedSeq' | 'outbox'> | undefined;

export interface TaskStore {
  get(taskId: number): Promise<StoredTask | undefined>;
  /** Store a new task; if it exists already (a redelivered request), keep the stored one. */
  create(record: Omit<TaskRecord, 'eventSeq' | 'publishedSeq' | 'outbox'>): Promise<TaskRecord>;
  /** Apply `change` by compare-and-set, retrying on conflict; publishes the change's events. */
  update(taskId: number, change: TaskChange): Promise<TaskRecord | undefined>;
  /** Ids of every stored task. */
  ids(): Promise<number[]>;
  /** Publish the outbox of the stored record again (after a takeover); duplicates are dropped. */
  republish(record: TaskRecord): Promise<void>;
}

const key = (taskId: number) => `task.${taskId}`;

export function createTaskStore(deps: { kv: KV; js: JetStreamClient; now?: () => Date }): TaskStore {
  const { kv, js } = deps;
  const now = deps.now ?? (() => new Date());

  /** Highest event seq this process saw the stream accept, per running task. */
  const published = new Map<number, number>();

  let jsm: JetStreamManager | undefined;
  /** seq of the task's last event on the stream; 0 when it has none. */
  async function lastOnStream(taskId: number): Promise<number> {
    jsm ??= await js.jetstreamManager();
    try {
      const m = await jsm.streams.getMessage(STREAMS.events, { last_by_subj: SUBJECTS.taskEvent(taskId) });
      return (m.json() as { seq?: number }).seq ?? 0;
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
    for (const event of events) {
      const h = natsHeaders();
      h.set('X-Trace-Id', event.traceId);
      await js.publish(SUBJECTS.taskEvent(event.taskId), encodeJson(event), {
        msgID: `task-${event.taskId}-event-${event.seq}`,
        headers: h,
      });
      published.set(event.taskId, Math.max(published.get(event.taskId) ?? 0, event.seq));
    }
    if (record.task.status !== 'RUNNING') published.delete(record.task.id);
  }

  async function get(taskId: number): Promise<StoredTask | undefined> {
    const entry = await getLive(kv, key(taskId));
    return entry ? { record: decodeJson<TaskRecord>(entry), revision: entry.revision } : undefined;
  }

  return {
    get,
    async create(draft) {
      const record = recordChange(undefined, draft, now());
      try {
        await kv.create(key(draft.task.id), encodeJson(record));
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        const stored = await get(draft.task.id);
        if (!stored) throw err;
        await publishEvents(stored.record);
        return stored.record;
      }
      published.set(draft.task.id, 0); // we just created it: nothing of it is on the stream yet
      await publishEvents(record);
      return record;
    },
    async update(taskId, change) {
      for (;;) {
        const stored = await get(taskId);
        if (!stored) return undefined;
        const draft = change(stored.record);
        if (!draft) return stored.record;
        const next = recordChange(stored.record, draft, now(), published.get(taskId));
        try {
          await kv.update(key(taskId), encodeJson(next), stored.revision);
        } catch (err) {
          if (isCasConflict(err)) continue;
          throw err;
        }
        await publishEvents(next);
        return next;
      }
    },
    republish: publishEvents,
    async ids() {
      const ids: number[] = [];
      for await (const k of await kv.keys('task.*')) ids.push(Number(k.slice('task.'.length)));
      return ids;
    },
  };
}
