/**
 * Task records in KV, changed only by compare-and-set. Every change publishes
 * its events on ocp.events.task.<id> (deduplicated by event seq), in order.
 */
import { randomBytes } from 'node:crypto';
import type { JetStreamClient, JetStreamManager, KV } from 'nats';
import { headers as natsHeaders } from 'nats';
import { withCurrentOrigin } from '../contracts/origin.js';
import { outboxEvents, recordChange, type TaskRecord } from '../core/task-record.js';
import {
  StoredNotAnnounced,
  type StoredTask,
  StoreOutcomeUnknown,
  type TaskChange,
  TaskIdTaken,
  type TaskStore,
} from '../tasks/ports.js';
import { JS_ERR, jetStreamErrCode } from './jetstream-errors.js';
import { decodeJson, encodeJson, encodeJsonCompact, getLive, isCasConflict } from './kv-json.js';
import { STREAMS, SUBJECTS } from './streams.js';

const key = (taskId: number) => `task.${taskId}`;

/** How long a write whose answer was lost is looked for (and sent again) before its outcome is called unknown (ms). */
const WRITE_RESOLVE_MS = 10_000;
/**
 * Whether a failed write may have landed: no answer came (a timeout, a
 * connection lost). An answer that refused it (a JetStream API error: the
 * stream full, a limit) says it did not.
 */
function answerLost(err: unknown): boolean {
  return !isCasConflict(err) && !(err as { api_error?: unknown }).api_error;
}

/** Pause before asking NATS again about a write whose answer was lost (ms): 200, 400, … up to 2 s. */
const retryPause = (attempt: number) => new Promise((r) => setTimeout(r, Math.min(2000, 100 * 2 ** attempt)));
/** Tokens of the latest writes a record keeps (see resolveLostWrite). */
const WRITES_KEPT = 8;

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
      if (jetStreamErrCode(err) === JS_ERR.noMessageFound) return 0;
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
    return entry ? { record: withCurrentOrigin(decodeJson<TaskRecord>(entry)), revision: entry.revision } : undefined;
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

  /**
   * After an update whose answer never came: the revision it made if it
   * landed (now, or by being sent again), undefined if the task moved on
   * without it (it never will land: it expected an older revision). Throws
   * StoreOutcomeUnknown if NATS does not say within WRITE_RESOLVE_MS.
   */
  async function resolveLostWrite(
    taskId: number,
    bytes: Uint8Array,
    expected: number,
    token: string,
    cause: unknown,
  ): Promise<number | undefined> {
    const deadline = Date.now() + WRITE_RESOLVE_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        const stored = await get(taskId);
        if (!stored) return undefined;
        if (stored.record.writes?.includes(token)) return stored.revision;
        if (stored.revision !== expected) return undefined;
        return await kv.update(key(taskId), bytes, expected);
      } catch (err) {
        if (!isCasConflict(err)) cause = err; // else: someone wrote meanwhile; read again
      }
      if (Date.now() >= deadline) throw new StoreOutcomeUnknown(taskId, cause as Error);
      await retryPause(attempt);
    }
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
        let written = record;
        if (record !== stored.record) {
          // A token of this write, kept in the record for the next few writes: if
          // NATS's answer is lost, reading the task tells whether the write landed.
          const token = randomBytes(6).toString('base64url');
          written = { ...record, writes: [...(record.writes ?? []).slice(1 - WRITES_KEPT), token] };
          const bytes = encodeJsonCompact(written);
          let revision: number | undefined;
          try {
            revision = await kv.update(key(taskId), bytes, stored.revision);
          } catch (err) {
            if (answerLost(err)) revision = await resolveLostWrite(taskId, bytes, stored.revision, token, err);
            else if (!isCasConflict(err)) throw err; // refused: the write did not land
          }
          if (revision === undefined) {
            lastWritten.delete(taskId);
            stored = await get(taskId);
            fresh = true;
            continue;
          }
          remember({ record: written, revision });
          try {
            await publishEvents(written);
          } catch (err) {
            throw new StoredNotAnnounced(written, err as Error);
          }
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
      const bytes = encodeJsonCompact(record);
      const deadline = Date.now() + WRITE_RESOLVE_MS;
      for (let attempt = 1; ; attempt++) {
        try {
          const revision = await kv.create(key(draft.task.id), bytes);
          published.set(draft.task.id, 0); // we just created it: nothing of it is on the stream yet
          remember({ record, revision });
          return record;
        } catch (err) {
          if (!answerLost(err) && !isCasConflict(err)) throw err; // refused: nothing was stored
          if (isCasConflict(err)) {
            const stored = await get(draft.task.id);
            // Ours: an earlier attempt of this very request (a redelivery, or a write whose answer was lost).
            if (stored?.record.requestId === draft.requestId) return stored.record;
            if (stored) throw new TaskIdTaken(draft.task.id, stored.record.requestId);
            throw err;
          }
          // No answer: the write may or may not have landed. The same create again
          // tells which (it lands now, or finds the first one) once NATS answers.
          if (Date.now() >= deadline) throw new StoreOutcomeUnknown(draft.task.id, err as Error);
          await retryPause(attempt);
        }
      }
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
    publishOutbox: publishEvents,
    async remove(taskId) {
      const stored = await get(taskId);
      if (!stored || stored.record.task.status === 'RUNNING') return; // retried meanwhile: it stays
      try {
        await kv.delete(key(taskId), { previousSeq: stored.revision });
      } catch (err) {
        if (!isCasConflict(err)) throw err;
      }
      lastWritten.delete(taskId);
      published.delete(taskId);
    },
  };
}
