/**
 * Tasks in KV, changed only by compare-and-set. Every change publishes its
 * events on ocp.events.task.<id> (deduplicated by message id), in order.
 *
 * Two layouts, read by one code path (docs/ARCHITECTURE.md, "Batches of any
 * size"): a single-host task (and every record of an older version) is one
 * record at `task.<id>`; a batch is a head at `task.<id>`, its progress at
 * `task.<id>.p` and one record per host chain at `task.<id>.c.<idx>`, so that a
 * change on one host writes only that host's part. `get` assembles a batch
 * into the same TaskRecord a single record is.
 */
import type { JetStreamClient, JetStreamManager, KV, KvEntry } from 'nats';
import { headers as natsHeaders } from 'nats';
import type { TaskEvent } from '../contracts/events.js';
import type { OcpTask } from '../contracts/ocp-task.js';
import { withCurrentOrigin } from '../contracts/origin.js';
import { batchOver, endStopped, firstOpening, openUpTo } from '../core/rolling.js';
import { settle } from '../core/task.js';
import {
  assemble,
  type ChainDraft,
  type ChainRecord,
  chainAtRest,
  chainChange,
  chainEvents,
  chainFailed,
  chainPartOf,
  chainScoped,
  emptyBits,
  eventMsgId,
  headChange,
  headEvents,
  isHead,
  type Progress,
  rollingStateOf,
  splitDraft,
  type TaskHead,
  withBits,
} from '../core/task-layout.js';
import { type Draft, outboxEvents, recordChange, type TaskRecord } from '../core/task-record.js';
import {
  type ChainRested,
  type NewTaskRecord,
  StoredNotAnnounced,
  type StoredTask,
  type TaskChange,
  TaskIdTaken,
  type TaskStore,
  type TaskSummary,
} from '../tasks/ports.js';
import { type CasKeys, createCasKeys, type Versioned } from './cas-keys.js';
import { JS_ERR, jetStreamErrCode } from './jetstream-errors.js';
import { decodeJson, encodeJson, encodeJsonCompact, isCasConflict, readLive } from './kv-json.js';
import { STREAMS, SUBJECTS } from './streams.js';

const headKey = (taskId: number) => `task.${taskId}`;
const progressKey = (taskId: number) => `task.${taskId}.p`;
const chainKey = (taskId: number, idx: number) => `task.${taskId}.c.${idx}`;
const taskIdOf = (key: string) => Number(key.split('.')[1]);

/** Running tasks (and chains) whose last write a process remembers (the oldest are forgotten first). */
const REMEMBERED = 1024;
/** Parts of a batch written or read side by side. */
const PARTS_AT_ONCE = 256;
/**
 * An outbox event of a batch older than this is taken as published: its
 * writer's work item was acknowledged only after publishing it, and a repeat
 * past the stream's duplicate window (10 min) would be stored twice.
 */
const PUBLISHED_AFTER_MS = 8 * 60_000;

/** The head (or single record) as stored: either layout. */
type Top = TaskRecord | TaskHead;

/** A batch's parts as read together. */
interface Parts {
  head: Versioned<TaskHead>;
  progress: Versioned<Progress> | undefined;
  chains: Map<number, Versioned<ChainRecord>>;
}

function ocpTimeMs(at: string): number {
  const ms = Date.parse(at.replace(' ', 'T'));
  return Number.isFinite(ms) ? ms : Date.now();
}

async function inGroups<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += PARTS_AT_ONCE) await Promise.all(items.slice(i, i + PARTS_AT_ONCE).map(fn));
}

export function createTaskStore(deps: { kv: KV; js: JetStreamClient; now?: () => Date }): TaskStore {
  const { kv, js } = deps;
  const now = deps.now ?? (() => new Date());

  /** Highest event seq this process saw the stream accept, per running task (`<id>`) or chain (`<id>.c<idx>`). */
  const published = new Map<string, number>();
  const streamOf = (taskId: number, chain?: number) => (chain === undefined ? `${taskId}` : `${taskId}.c${chain}`);

  let jsm: JetStreamManager | undefined;
  /** seq of a single-record task's last event on the stream (only one this service published counts). */
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

  /**
   * Publish events of one sequence, oldest first, one at a time (sent back to
   * back, an event lost with a dropped connection could be overtaken by the next).
   */
  async function publishSequence(stream: string, events: TaskEvent[], ended: boolean): Promise<void> {
    for (const event of events) {
      const h = natsHeaders();
      h.set('X-Trace-Id', event.traceId);
      await js.publish(SUBJECTS.taskEvent(event.taskId), encodeJson(event), { msgID: eventMsgId(event), headers: h });
      published.set(stream, Math.max(published.get(stream) ?? 0, event.seq));
    }
    if (ended) published.delete(stream);
  }

  async function publishRecord(record: TaskRecord): Promise<void> {
    const id = record.task.id;
    const stream = streamOf(id);
    let events = outboxEvents(record).filter((e) => e.seq > (published.get(stream) ?? 0));
    // An outbox this process never saw published may be old — past the stream's
    // duplicate window a repeat would be stored twice — so ask the stream.
    if (events.length > 0 && !published.has(stream)) {
      const last = await lastOnStream(id);
      events = events.filter((e) => e.seq > last);
    }
    await publishSequence(stream, events, record.task.status !== 'RUNNING');
  }

  /** Events of a batch's part not known to be published (see PUBLISHED_AFTER_MS). */
  function unpublished(stream: string, events: TaskEvent[]): TaskEvent[] {
    const known = published.get(stream);
    if (known !== undefined) return events.filter((e) => e.seq > known);
    const cutoff = Date.now() - PUBLISHED_AFTER_MS;
    return events.filter((e) => ocpTimeMs(e.at) >= cutoff);
  }

  async function publishHead(head: TaskHead): Promise<void> {
    const stream = streamOf(head.task.id);
    await publishSequence(stream, unpublished(stream, headEvents(head)), head.task.status !== 'RUNNING');
  }

  async function publishChain(head: Pick<TaskHead, 'task'>, chain: ChainRecord): Promise<void> {
    const stream = streamOf(chain.taskId, chain.idx);
    await publishSequence(stream, unpublished(stream, chainEvents(head, chain)), chainAtRest(chain.subtasks));
  }

  // ---- the keys ------------------------------------------------------------

  /** Heads of batches, as last read or written here (their plans and summary rarely change). */
  const heads = new Map<number, Versioned<TaskHead>>();
  function knowHead(v: Versioned<TaskHead>): void {
    heads.delete(v.value.task.id);
    heads.set(v.value.task.id, v);
    if (heads.size > REMEMBERED) heads.delete(heads.keys().next().value as number);
  }

  const tops: CasKeys<Top> = createCasKeys<Top>({
    kv,
    decode: (e) => {
      const v = decodeJson<Top>(e);
      return isHead(v) ? v : withCurrentOrigin(v);
    },
    keep: (v) => v.task.status === 'RUNNING',
    async after(_key, v) {
      try {
        if (isHead(v)) await publishHead(v);
        else await publishRecord(v);
      } catch (err) {
        const record = isHead(v) ? assemble(v, []) : v;
        throw new StoredNotAnnounced(record, err as Error);
      }
    },
    idOf: taskIdOf,
    remembered: REMEMBERED,
  });

  const chains: CasKeys<ChainRecord> = createCasKeys<ChainRecord>({
    kv,
    decode: (e) => decodeJson<ChainRecord>(e),
    keep: (c) => !chainAtRest(c.subtasks),
    async after(_key, c) {
      const head = heads.get(c.taskId)?.value ?? (await headOf(c.taskId))?.value;
      if (!head) return;
      try {
        await publishChain(head, c);
      } catch (err) {
        throw new StoredNotAnnounced(chainScoped(head, c), err as Error);
      }
    },
    idOf: taskIdOf,
    remembered: REMEMBERED,
  });

  const progresses: CasKeys<Progress & { writes?: string[] }> = createCasKeys<Progress & { writes?: string[] }>({
    kv,
    decode: (e: KvEntry) => decodeJson<Progress & { writes?: string[] }>(e),
    keep: () => false,
    after: async () => {},
    idOf: taskIdOf,
    remembered: 0,
  });

  async function headOf(taskId: number): Promise<Versioned<TaskHead> | undefined> {
    const top = await tops.get(headKey(taskId));
    if (!top || !isHead(top.value)) return undefined;
    const v = { value: top.value, revision: top.revision };
    knowHead(v);
    return v;
  }

  /** A head's latest, from this process's memory when it holds the plan asked for. */
  async function headFor(taskId: number, planIndex = -1): Promise<TaskHead | undefined> {
    const known = heads.get(taskId);
    if (known && planIndex < known.value.plans.length) return known.value;
    return (await headOf(taskId))?.value;
  }

  /** Every chain of a batch, read by one ordered consumer. */
  async function readChains(taskId: number): Promise<Map<number, Versioned<ChainRecord>>> {
    const found = new Map<number, Versioned<ChainRecord>>();
    for (const e of await readLive(kv, `task.${taskId}.c.*`)) {
      const c = decodeJson<ChainRecord>(e);
      found.set(c.idx, { value: c, revision: e.revision });
    }
    return found;
  }

  async function readParts(taskId: number, head?: Versioned<TaskHead>): Promise<Parts | undefined> {
    const h = head ?? (await headOf(taskId));
    if (!h) return undefined;
    const [progress, chainMap] = await Promise.all([progresses.get(progressKey(taskId)), readChains(taskId)]);
    return { head: h, progress, chains: chainMap };
  }

  function assembled(p: Parts): TaskRecord {
    const record = assemble(
      p.head.value,
      [...p.chains.values()].map((c) => c.value),
      p.progress?.value,
    );
    return { ...record, layout: 'chains' };
  }

  async function get(taskId: number): Promise<StoredTask | undefined> {
    const top = await tops.get(headKey(taskId));
    if (!top) return undefined;
    if (!isHead(top.value)) return { record: top.value, revision: top.revision };
    const head = { value: top.value, revision: top.revision };
    knowHead(head);
    const parts = await readParts(taskId, head);
    return parts && { record: assembled(parts), revision: top.revision };
  }

  // ---- creating --------------------------------------------------------------

  function onTopTaken(draft: NewTaskRecord) {
    return (stored: Versioned<Top> | undefined, err: unknown): Top => {
      // Ours: an earlier attempt of this very request (a redelivery, or a write whose answer was lost).
      if (stored?.value.requestId === draft.requestId) return stored.value;
      if (stored) throw new TaskIdTaken(draft.task.id, stored.value.requestId);
      throw err;
    };
  }

  async function createBatch(draft: NewTaskRecord): Promise<TaskRecord> {
    const taskId = draft.task.id;
    const maxParallel = draft.maxParallel;
    const split = splitDraft(draft, draft.options ?? (maxParallel === undefined ? {} : { maxParallel }));
    const existing = await tops.get(headKey(taskId));
    if (existing) {
      const standing = onTopTaken(draft)(existing, new Error('taken'));
      return (await get(taskId))?.record ?? (standing as TaskRecord);
    }
    const meta = { now: now(), traceId: draft.traceId };
    const first = split.chains[0]?.subtasks[0]?.id ?? taskId + 1;
    const stride = (split.chains[1]?.subtasks[0]?.id ?? first) - first;
    const head = headChange(undefined, { ...split.head, chainStart: first, chainStride: stride }, meta.now);
    const written: ChainRecord[] = [];
    // The chains first, the head last: a head names a batch whose parts are all there.
    await inGroups(split.chains, async (c) => {
      const value = chainChange(undefined, c, meta);
      const v = await chains.create(chainKey(taskId, c.idx), value, (stored, err) => {
        // An earlier attempt of this request wrote it (its head was not written yet): it stands.
        if (stored) return stored.value;
        throw err;
      });
      written.push(v.value);
      published.set(streamOf(taskId, c.idx), 0);
    });
    const opened = firstOpening(split.head.options, split.chains.length);
    const progress: Progress = { opened, rested: emptyBits(split.chains.length), failed: emptyBits(0) };
    await progresses.create(progressKey(taskId), progress, (stored) => stored?.value ?? progress);
    const top = await tops.create(headKey(taskId), head, onTopTaken(draft));
    if (!isHead(top.value)) return top.value;
    published.set(streamOf(taskId), 0);
    knowHead({ value: top.value, revision: top.revision });
    const record: TaskRecord = {
      ...assemble(top.value, written, progress),
      layout: 'chains',
    };
    fresh.set(record, { head: top.value, chains: written });
    return record;
  }

  /** Parts of a record this process just created, so that announcing it reads nothing again. */
  const fresh = new WeakMap<TaskRecord, { head: TaskHead; chains: ChainRecord[] }>();

  // ---- changing a whole batch (an operator's operation) --------------------------

  /** Whether two chains differ in what a change may touch. */
  function chainDiffers(a: ChainDraft, b: ChainDraft): boolean {
    return (
      JSON.stringify(a.subtasks) !== JSON.stringify(b.subtasks) ||
      JSON.stringify(a.plans) !== JSON.stringify(b.plans) ||
      a.hostDigest !== b.hostDigest
    );
  }

  /**
   * Apply a change of the whole task to a batch: read its parts, apply, and
   * write what changed — the progress first (a chain reopened is no longer at
   * rest), then the chains, then the head — each by compare-and-set, the whole
   * judged again after a conflict.
   */
  async function updateBatch(taskId: number, change: TaskChange): Promise<TaskRecord | undefined> {
    for (let attempt = 0; ; attempt++) {
      const parts = await readParts(taskId);
      if (!parts) return undefined;
      const before = assembled(parts);
      const draft = change(before);
      if (!draft) return before;
      const head = parts.head.value;
      const split = splitDraft({ ...draft, task: draft.task }, head.options);
      const shown = new Map(splitDraft(before, head.options).chains.map((c) => [c.idx, c] as const));
      const rollingBack = draft.task.operation === 'ROLLBACK';
      const changed = split.chains.filter((c) => {
        const old = shown.get(c.idx);
        return !old || chainDiffers(old, c);
      });
      try {
        if (changed.length > 0 && parts.progress) {
          const bits = new Map(changed.map((c) => [c.idx, chainAtRest(c.subtasks)] as const));
          const fails = new Map(
            changed.map((c) => [c.idx, chainAtRest(c.subtasks) && chainFailed(c.subtasks, rollingBack)] as const),
          );
          const p = parts.progress.value;
          const started = Math.max(
            p.opened,
            ...changed.filter((c) => c.subtasks.some((s) => s.status !== 'PENDING')).map((c) => c.idx + 1),
          );
          const next: Progress = {
            ...p,
            opened: started,
            rested: withBits(p.rested, bits),
            failed: withBits(p.failed, fails),
            rollingBack,
          };
          // Set running again after it ended (Retry, Rollback): a pause or cancel of its last run is over.
          if (before.task.status !== 'RUNNING' && draft.task.status === 'RUNNING') {
            delete next.paused;
            delete next.canceled;
          }
          await kv.update(progressKey(taskId), encodeJsonCompact(next), parts.progress.revision);
        }
        const meta = { now: now(), traceId: draft.traceId };
        const after = new Map([...parts.chains].map(([i, c]) => [i, c.value] as const));
        for (const c of changed) {
          const old = parts.chains.get(c.idx);
          const value = chainChange(
            old?.value,
            { ...c, taskId },
            {
              ...meta,
              knownPublished: published.get(streamOf(taskId, c.idx)) ?? 0,
            },
          );
          const bytes = encodeJsonCompact(value);
          const revision = old
            ? await kv.update(chainKey(taskId, c.idx), bytes, old.revision)
            : await kv.create(chainKey(taskId, c.idx), bytes);
          chains.remember(chainKey(taskId, c.idx), { value, revision });
          after.set(c.idx, value);
        }
        let newHead = head;
        const headDraft = {
          ...split.head,
          chainStart: head.chainStart,
          chainStride: head.chainStride,
          chains: Math.max(head.chains, split.head.chains),
          ...(head.pauseRev === undefined ? {} : { pauseRev: head.pauseRev }),
        };
        if (
          JSON.stringify(headDraft.task) !== JSON.stringify(head.task) ||
          JSON.stringify(headDraft.plans) !== JSON.stringify(head.plans)
        ) {
          newHead = headChange(
            head,
            { ...headDraft, writes: head.writes },
            meta.now,
            published.get(streamOf(taskId)) ?? 0,
          );
          const revision = await kv.update(headKey(taskId), encodeJsonCompact(newHead), parts.head.revision);
          knowHead({ value: newHead, revision });
          tops.remember(headKey(taskId), { value: newHead, revision });
        }
        const record: TaskRecord = { ...assemble(newHead, [...after.values()]), layout: 'chains' };
        try {
          for (const c of changed) await publishChain(newHead, after.get(c.idx) as ChainRecord);
          if (newHead !== head) await publishHead(newHead);
        } catch (err) {
          throw new StoredNotAnnounced(record, err as Error);
        }
        return record;
      } catch (err) {
        if (isCasConflict(err) && attempt < 20) continue;
        throw err;
      }
    }
  }

  // ---- one chain (the executor) ------------------------------------------------

  async function chainOf(taskId: number, idx: number, fromMemory: boolean): Promise<StoredTask | undefined> {
    const c = fromMemory ? await chains.peek(chainKey(taskId, idx)) : await chains.get(chainKey(taskId, idx));
    if (!c) return undefined;
    const head = await headFor(taskId, Math.max(-1, ...c.value.plans));
    if (!head) return undefined;
    return { record: { ...chainScoped(head, c.value), layout: 'chains', chain: idx }, revision: c.revision };
  }

  async function updateChain(taskId: number, idx: number, change: TaskChange): Promise<TaskRecord | undefined> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const h = attempt === 0 ? await headFor(taskId) : (await headOf(taskId))?.value;
      if (!h) return undefined;
      try {
        const result = await chains.update(chainKey(taskId, idx), (current) => {
          // A plan this head does not hold yet (a rollback added it): read the head again.
          if (Math.max(-1, ...current.plans) >= h.plans.length) throw new HeadUnknown();
          const draft = change({ ...chainScoped(h, current), layout: 'chains', chain: idx });
          if (!draft) return undefined;
          const part = chainPartOf(draft, taskId, idx, draft.task.subtasks);
          return chainChange(
            current,
            { ...part, ...(current.writes ? { writes: current.writes } : {}) },
            { now: now(), traceId: h.traceId, knownPublished: published.get(streamOf(taskId, idx)) ?? 0 },
          );
        });
        return result && { ...chainScoped(h, result.value), layout: 'chains', chain: idx };
      } catch (err) {
        if (!(err instanceof HeadUnknown) || attempt > 0) throw err;
      }
    }
    return undefined;
  }

  /** Host ids of a batch's chains from `from` on (never started, when it ended stopped), in chain order. */
  function hostsFrom(head: TaskHead, from: number): number[] {
    return (head.task.context.listMap.host_ids ?? []).slice(from).map(Number);
  }

  /**
   * The end of a batch (read now, every chain): every chain at rest, or —
   * stopped (canceled, a canary failed, too many failures, a rollback) —
   * every chain that opened at rest, those never started left PENDING
   * (core/rolling.ts). The head SUCCESSFUL or FAILED. Undefined when it has
   * not ended (a chain runs still) or had ended already.
   */
  async function endOf(taskId: number): Promise<{ summary: TaskSummary; unstarted: number[] } | undefined> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const parts = await readParts(taskId);
      if (parts?.head.value.task.status !== 'RUNNING') return undefined;
      const head = parts.head.value;
      if (parts.chains.size < head.chains) return undefined;
      // The chains' own state, whatever the progress (a dead writer's) says.
      const p = parts.progress?.value ?? { opened: head.chains, rested: emptyBits(head.chains), failed: emptyBits(0) };
      const rollingBack = head.task.operation === 'ROLLBACK';
      const rests = new Map<number, boolean>();
      const fails = new Map<number, boolean>();
      for (const c of parts.chains.values()) {
        const atRest = chainAtRest(c.value.subtasks);
        rests.set(c.value.idx, atRest);
        fails.set(c.value.idx, atRest && chainFailed(c.value.subtasks, rollingBack));
      }
      const truth: Progress = { ...p, rested: withBits(p.rested, rests), failed: withBits(p.failed, fails) };
      const state = rollingStateOf(head, truth);
      if (!batchOver(head.options, state)) {
        if (parts.progress && (truth.rested !== p.rested || truth.failed !== p.failed)) {
          await kv
            .update(progressKey(taskId), encodeJsonCompact(truth), parts.progress.revision)
            .catch(() => undefined);
        }
        return undefined;
      }
      const whole = assembled(parts);
      const stopped = state.rested < state.chains;
      const ended = stopped ? endStopped(whole.task, now()) : settle(whole.task, now());
      if (ended.status === 'RUNNING') return undefined;
      const { subtasks: _s, ...summary } = ended;
      // An ended batch is not paused (its progress keeps the flag until a Retry).
      const { paused: _p, ...stringMap } = summary.context.stringMap;
      summary.context = { ...summary.context, stringMap };
      const next = headChange(head, { ...head, task: summary }, now(), published.get(streamOf(taskId)) ?? 0);
      try {
        const revision = await kv.update(headKey(taskId), encodeJsonCompact(next), parts.head.revision);
        knowHead({ value: next, revision });
        tops.forget(headKey(taskId));
      } catch (err) {
        if (isCasConflict(err)) continue;
        throw err;
      }
      try {
        await publishHead(next);
      } catch (err) {
        throw new StoredNotAnnounced(assemble(next, []), err as Error);
      }
      return { summary, unstarted: stopped ? hostsFrom(head, p.opened) : [] };
    }
    return undefined;
  }

  async function endBatch(taskId: number): Promise<TaskSummary | undefined> {
    return (await endOf(taskId))?.summary;
  }

  /**
   * Apply the rolling rules to a batch's progress by compare-and-set (`mark`:
   * a chain that came to rest first), and end it when they say it is over.
   */
  async function judge(taskId: number, mark?: { idx: number; failed: boolean }): Promise<ChainRested> {
    const head = await headFor(taskId);
    if (!head) return { open: [] };
    let opened: [number, number] = [0, 0];
    let over = false;
    await progresses.update(progressKey(taskId), (p) => {
      const next = mark
        ? {
            ...p,
            rested: withBits(p.rested, new Map([[mark.idx, true]])),
            failed: withBits(p.failed, new Map([[mark.idx, mark.failed]])),
          }
        : p;
      const state = rollingStateOf(head, next);
      const upTo = openUpTo(head.options, state);
      opened = [p.opened, upTo];
      over = batchOver(head.options, { ...state, opened: upTo });
      if (next.rested === p.rested && next.failed === p.failed && upTo === p.opened) return undefined;
      return { ...next, opened: upTo };
    });
    const open: ChainRested['open'] = [];
    for (let j = opened[0]; j < opened[1]; j++) {
      open.push({ chain: j, subtaskId: (head.chainStart ?? 0) + j * (head.chainStride ?? 0), runTime: 1 });
    }
    const ended = over ? await endOf(taskId) : undefined;
    return {
      open,
      ...(ended ? { ended: ended.summary } : {}),
      ...(ended && ended.unstarted.length > 0 ? { unstarted: ended.unstarted } : {}),
    };
  }

  function chainRested(taskId: number, idx: number, failed: boolean): Promise<ChainRested> {
    return judge(taskId, { idx, failed });
  }

  /**
   * Pause or resume: the progress first (from then on no chain opens, or
   * they may again), then the head shows it — unless a later pause or resume
   * (a higher `pauseRev`) has already written it, so racing operators leave
   * progress and head agreeing with the last one recorded.
   */
  async function setPaused(taskId: number, paused: boolean): Promise<TaskRecord | undefined> {
    let rev = 0;
    const p = await progresses.update(progressKey(taskId), (current) => {
      rev = (current.pauseRev ?? 0) + 1;
      const next: Progress & { writes?: string[] } = { ...current, pauseRev: rev };
      if (paused) next.paused = true;
      else delete next.paused;
      return next;
    });
    if (!p) return undefined;
    for (let attempt = 0; attempt < 20; attempt++) {
      const h = await headOf(taskId);
      if (!h) return undefined;
      const head = h.value;
      if (head.task.status !== 'RUNNING' || (head.pauseRev ?? 0) >= rev) break;
      const { paused: was, ...rest } = head.task.context.stringMap;
      const stringMap = paused ? { ...rest, paused: 'true' } : rest;
      const note = (was === 'true') === paused ? undefined : paused ? 'task.paused' : 'task.resumed';
      const next = headChange(
        head,
        { ...head, task: { ...head.task, context: { ...head.task.context, stringMap } }, pauseRev: rev },
        now(),
        published.get(streamOf(taskId)) ?? 0,
        note,
      );
      try {
        const revision = await kv.update(headKey(taskId), encodeJsonCompact(next), h.revision);
        knowHead({ value: next, revision });
        tops.remember(headKey(taskId), { value: next, revision });
      } catch (err) {
        if (isCasConflict(err)) continue;
        throw err;
      }
      try {
        await publishHead(next);
      } catch (err) {
        throw new StoredNotAnnounced(assemble(next, []), err as Error);
      }
      break;
    }
    return (await get(taskId))?.record;
  }

  async function stopBatch(taskId: number): Promise<boolean> {
    const p = await progresses.update(progressKey(taskId), (current) =>
      current.canceled ? undefined : { ...current, canceled: true },
    );
    return p !== undefined;
  }

  return {
    get,
    async peek(taskId) {
      const top = await tops.peek(headKey(taskId));
      if (top && !isHead(top.value)) return { record: top.value, revision: top.revision };
      return get(taskId);
    },
    async top(taskId) {
      const top = await tops.get(headKey(taskId));
      if (!top) return undefined;
      if (!isHead(top.value)) return { record: top.value, revision: top.revision };
      knowHead({ value: top.value, revision: top.revision });
      return { record: { ...assemble(top.value, []), layout: 'chains' }, revision: top.revision };
    },
    async glance(taskId) {
      const [top, progress] = await Promise.all([tops.get(headKey(taskId)), progresses.get(progressKey(taskId))]);
      if (!top || !isHead(top.value)) return undefined;
      const head = top.value;
      knowHead({ value: head, revision: top.revision });
      return {
        record: { ...assemble(head, []), layout: 'chains' },
        hosts: head.chains,
        options: head.options,
        progress: progress && {
          opened: progress.value.opened,
          rested: progress.value.rested,
          failed: progress.value.failed,
        },
      };
    },
    async summary(taskId) {
      const top = await tops.get(headKey(taskId));
      if (!top) return undefined;
      const { subtasks: _subtasks, ...summary } = top.value.task as OcpTask;
      return summary;
    },
    async create(draft) {
      if (draft.task.context.parallel) return createBatch(draft);
      const record = recordChange(undefined, draft, now());
      const v = await tops.create(headKey(draft.task.id), record, onTopTaken(draft));
      if (v.value === record) published.set(streamOf(draft.task.id), 0); // nothing of it is on the stream yet
      return isHead(v.value) ? ((await get(draft.task.id))?.record as TaskRecord) : v.value;
    },
    async update(taskId, change) {
      const top = await tops.peek(headKey(taskId));
      if (top && isHead(top.value)) return updateBatch(taskId, change);
      let batch = false;
      const result = await tops.update(headKey(taskId), (current) => {
        if (isHead(current)) {
          batch = true;
          return undefined;
        }
        const draft: Draft | undefined = change(current);
        return draft && recordChange(current, draft, now(), published.get(streamOf(taskId)));
      });
      if (batch) return updateBatch(taskId, change);
      return result && (result.value as TaskRecord);
    },
    chain(taskId, chain, fromMemory = false) {
      if (chain === undefined) return fromMemory ? this.peek(taskId) : get(taskId);
      return chainOf(taskId, chain, fromMemory);
    },
    updateChain(taskId, chain, change) {
      if (chain === undefined) return this.update(taskId, change);
      return updateChain(taskId, chain, change);
    },
    chainRested,
    endBatch,
    advance: (taskId) => judge(taskId),
    setPaused,
    stopBatch,
    async publishOutbox(record) {
      if (record.layout !== 'chains') return publishRecord(record);
      const parts = fresh.get(record);
      if (parts) {
        await publishHead(parts.head);
        for (const c of parts.chains) if (c.outbox.length > 0) await publishChain(parts.head, c);
        return;
      }
      const head = await headFor(record.task.id);
      if (!head) return;
      if (record.chain !== undefined) {
        const c = await chains.get(chainKey(record.task.id, record.chain));
        if (c) await publishChain(head, c.value);
        return;
      }
      await publishHead(head);
      // A chain at rest had its events published before its work item was
      // acknowledged (or its redelivery publishes them): only the active ones
      // may hold what a dead writer left.
      const all = await readChains(record.task.id);
      for (const c of all.values()) {
        if (c.value.outbox.length > 0 && !chainAtRest(c.value.subtasks)) await publishChain(head, c.value);
      }
    },
    async remove(taskId) {
      const top = await tops.get(headKey(taskId));
      if (!top || top.value.task.status === 'RUNNING') return; // retried meanwhile: it stays
      try {
        await kv.delete(headKey(taskId), { previousSeq: top.revision });
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        return;
      }
      if (isHead(top.value)) {
        const n = top.value.chains;
        await inGroups(
          Array.from({ length: n }, (_, i) => i),
          async (i) => {
            await kv.purge(chainKey(taskId, i));
          },
        );
        await kv.purge(progressKey(taskId));
        heads.delete(taskId);
      }
      tops.forget(headKey(taskId));
      published.delete(streamOf(taskId));
    },
  };
}

/** A chain's head is not in this process's memory yet. */
class HeadUnknown extends Error {}
