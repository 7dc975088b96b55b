/**
 * What the task use cases need of storage, declared here beside them; the
 * NATS adapters in nats/ implement these, and the composition root
 * (service.ts) passes them in. The error classes are the ones a use case must
 * tell apart: an adapter throws them, a use case recognises them.
 */
import type { WorkItem } from '../contracts/events.js';
import type { OcpTask } from '../contracts/ocp-task.js';
import type { Origin } from '../contracts/origin.js';
import type { BatchOptions, Progress } from '../core/task-layout.js';
import type { TaskRecord } from '../core/task-record.js';
import type { ErrorBody } from '../errors.js';

// ---- Tasks ----------------------------------------------------------------

export interface StoredTask {
  record: TaskRecord;
  /** The store's revision of this record: what a compare-and-set expects. */
  revision: number;
}

/** A task record as a use case drafts it: the store keeps its events' sequence and outbox. */
export type NewTaskRecord = Omit<TaskRecord, 'eventSeq' | 'publishedSeq' | 'outbox'>;

/** Return the changed record, or undefined to leave it as it is. */
export type TaskChange = (record: TaskRecord) => NewTaskRecord | undefined;

export interface TaskStore {
  /** The task as stored; undefined when there is none. */
  get(taskId: number): Promise<StoredTask | undefined>;
  /**
   * The task as this process last wrote it, if it did and the task was still
   * running then; else as stored. It may be stale: good for a judgement that
   * a compare-and-set confirms, not for one that ends in doing nothing.
   */
  peek(taskId: number): Promise<StoredTask | undefined>;
  /**
   * Store a new task, not yet announced (its events wait in the outbox: see
   * `publishOutbox`). If this request stored it already (a redelivery, or a
   * write whose answer was lost), resolves with the stored one. Rejects with
   * TaskIdTaken when another request's task has the id, and with
   * StoreOutcomeUnknown when the store did not answer in time (the task may
   * exist); any other rejection: nothing was stored.
   */
  create(record: NewTaskRecord): Promise<TaskRecord>;
  /**
   * Apply `change` by compare-and-set, judging it again on the stored record
   * after each conflict; publishes the change's events. Resolves with the
   * record as this change left it (later changes stored in the same write may
   * have followed it), or undefined when the task is not stored; a change
   * that throws rejects only its own caller. A write whose answer was lost is
   * resolved before this settles (the record tells whether it landed; it is
   * sent again if it did not), so a change is stored at most once: if the
   * store cannot tell in time, rejects with StoreOutcomeUnknown (the change
   * may be stored). Rejects with StoredNotAnnounced when the change is stored
   * but its events are not published yet.
   */
  update(taskId: number, change: TaskChange): Promise<TaskRecord | undefined>;
  /**
   * Publish the record's outbox: a new task's first events, or those a writer
   * that died (or lost the store) left unpublished; repeats are dropped by id.
   */
  publishOutbox(record: TaskRecord): Promise<void>;
  /** Remove a task that ended, if it still has not changed since (see tasks/retention.ts). */
  remove(taskId: number): Promise<void>;
  /**
   * The task without its subtasks, as listings show it: one read of its head,
   * whatever the task's size. Undefined when there is none.
   */
  summary(taskId: number): Promise<TaskSummary | undefined>;
  /**
   * The task as one read of it gives it: a single-host task whole; a batch's
   * head alone — its record without subtasks (`layout` 'chains'), the origin,
   * event sequence and outbox of its head. Undefined when there is none.
   */
  top(taskId: number): Promise<StoredTask | undefined>;
  /**
   * A batch at a glance: its head and its progress, two reads whatever its
   * size. Undefined when there is no such task or it is not a batch.
   */
  glance(taskId: number): Promise<BatchGlance | undefined>;
  /**
   * One host chain of a task, as a record of its own: a batch's chain `chain`
   * (its `task.subtasks` only that chain's), or — `chain` undefined — the
   * whole task when it is one record. `fromMemory`: as `peek`.
   */
  chain(taskId: number, chain: number | undefined, fromMemory?: boolean): Promise<StoredTask | undefined>;
  /**
   * Change one chain by compare-and-set (as `update`, writing only that
   * chain's record of a batch; the change sees the chain as `chain` gives it).
   * Task-level changes it makes to a batch's chain (its end) are not stored:
   * see `chainRested`.
   */
  updateChain(taskId: number, chain: number | undefined, change: TaskChange): Promise<TaskRecord | undefined>;
  /**
   * A batch's chain came to rest: recorded in its progress, which opens the
   * next chains (maxParallel) — their work items are the caller's to queue —
   * and, the last chain at rest, ends the task.
   */
  chainRested(taskId: number, chain: number, failed: boolean): Promise<ChainRested>;
  /** End a batch whose chains are all at rest (the sweeper's safety net); its summary if this ended it. */
  endBatch(taskId: number): Promise<TaskSummary | undefined>;
  /**
   * Judge a batch's progress again (core/rolling.ts): open the chains that
   * may start now — their work items are the caller's to queue — or end the
   * batch when it will start no more chains and none runs. After Resume,
   * Retry, Skip, Cancel, and by the sweeper.
   */
  advance(taskId: number): Promise<ChainRested>;
  /**
   * Pause or resume a batch: recorded in its progress (no chain opens while
   * paused) and shown in its head (`context.stringMap.paused`, with a
   * task.paused or task.resumed event). Of pauses and resumes racing, the
   * last one recorded is what both show. Resolves with the batch as it then
   * stands; undefined when it is not stored.
   */
  setPaused(taskId: number, paused: boolean): Promise<TaskRecord | undefined>;
  /** Cancel a batch: no chain of it opens again (Retry lifts it). False when it is not stored. */
  stopBatch(taskId: number): Promise<boolean>;
}

/** A batch as two reads show it (TaskStore.glance). */
export interface BatchGlance {
  /** The head's record, without subtasks (as `top` gives it). */
  record: TaskRecord;
  /** How many hosts (chains). */
  hosts: number;
  options: BatchOptions;
  /** Which chains were opened, are at rest, failed; undefined in a batch written before progress records. */
  progress: Progress | undefined;
}

/** What a chain coming to rest (or a batch judged again) leads to. */
export interface ChainRested {
  /** Chains opened by it: queue a work item for each. */
  open: Array<{ chain: number; subtaskId: number; runTime: number }>;
  /** The task, if this ended it. */
  ended?: TaskSummary;
  /** It ended with these hosts never started (canceled, a canary failed, too many failures): free them. */
  unstarted?: number[];
}

/** The change is stored, but announcing its events failed: they wait in the outbox for the next writer or the sweeper. */
export class StoredNotAnnounced extends Error {
  constructor(
    readonly record: TaskRecord,
    cause: Error,
  ) {
    super(`task ${record.task.id} stored; announcing its events failed: ${cause.message}`);
    this.name = 'StoredNotAnnounced';
  }
}

/** The id belongs to another request's task (the id counter went back: a reset bucket). */
export class TaskIdTaken extends Error {
  constructor(
    readonly taskId: number,
    readonly owner: string,
  ) {
    super(`task id ${taskId} is taken by request ${owner}`);
    this.name = 'TaskIdTaken';
  }
}

/** NATS never answered whether the task was stored: it may exist, and if it does it will run. */
export class StoreOutcomeUnknown extends Error {
  constructor(
    readonly taskId: number,
    cause: Error,
  ) {
    super(`NATS unreachable: whether task ${taskId} was stored is not known (${cause.message})`);
    this.name = 'StoreOutcomeUnknown';
  }
}

/** A task without its subtasks, as listings show it. */
export type TaskSummary = Omit<OcpTask, 'subtasks'>;

/** What a listing filters on: every field given must match. */
export interface TaskFilter {
  status?: OcpTask['status'];
  /** The task's host, or one of its batch's. */
  hostId?: number;
  /** The task's name, exactly. */
  name?: string;
  /** Who asked for it, exactly (`alice`, `slack:U…`, `nats:…`). */
  creator?: string;
}

/**
 * Which tasks there are, by what listings filter and order on (not their
 * content: a listing reads its page's summaries from the store). Every call
 * that answers from the index first waits (briefly) until it has seen the
 * store's writes made before the call, so a caller reads its own writes.
 */
export interface TaskIndex {
  /**
   * The ids of the tasks matching `filter`, newest first (ids grow): `limit`
   * of them from `offset`, and how many match in all.
   */
  list(filter: TaskFilter, offset: number, limit: number): Promise<{ ids: number[]; total: number }>;
  /** The ids of the running tasks. */
  running(): Promise<number[]>;
  /**
   * The ids of the tasks that ended before `cutoffMs` (epoch ms), whatever
   * this index keeps (a process that keeps only running tasks looks through
   * the store): retention.tasks.
   */
  endedBefore(cutoffMs: number): Promise<number[]>;
  close(): void;
}

// ---- Hosts and ids --------------------------------------------------------

export type AcquireResult =
  | {
      ok: true;
      /** Revision of the lock as this call left it. */
      revision: number;
      /** Taken by this call (created, or replaced); false when the task held it already. */
      fresh: boolean;
    }
  | {
      ok: false;
      holder: number;
      revision: number;
      /** When the holder took or last refreshed it (epoch ms; 0 when unknown). */
      at: number;
      /** Taken by a Retry, Skip or Rollback setting its ended task running again. */
      reopening: boolean;
    };

/** How a lock is taken: `reopening`, by an operation setting an ended task running again. */
export interface LockIntent {
  reopening?: boolean;
}

/**
 * One agent operation per host. A lock is never judged by its age alone: it
 * goes when its holder frees it, or is replaced once the holder is found gone
 * (the caller judges that: see tasks/host-claims.ts).
 */
export interface HostLocks {
  /** Take the host for `taskId`; already ours counts as taken (and refreshes `at`). */
  acquire(hostId: number, taskId: number, intent?: LockIntent): Promise<AcquireResult>;
  /**
   * As acquire, but a lock this process took for `taskId` less than `freshMs`
   * ago counts as held without a round trip (only an ended holder is replaced,
   * and a handler looks at its task's state before asking).
   */
  hold(hostId: number, taskId: number, freshMs: number): Promise<AcquireResult>;
  /** Replace a holder found gone, if the lock is still that revision; the new revision, or false. */
  replace(hostId: number, taskId: number, staleRevision: number, intent?: LockIntent): Promise<number | false>;
  /**
   * Free the host if `taskId` holds it — with `revision`, only if the lock is
   * still as a caller took it: whoever touched it since (a concurrent
   * operation on the same task refreshing it) keeps it.
   */
  release(hostId: number, taskId: number, revision?: number): Promise<void>;
  holder(hostId: number): Promise<number | undefined>;
  /** The lock's holder and revision, if any. */
  lockOf(hostId: number): Promise<{ taskId: number; revision: number } | undefined>;
}

/** Ids unique across tasks, processes and restarts. */
export interface IdAllocator {
  /** `count` consecutive ids never handed out before. */
  take(count: number): Promise<number[]>;
  /** Never hand out `id` or anything below it again (the counter went back: a reset bucket). */
  skipPast(id: number): Promise<void>;
}

// ---- Requests -------------------------------------------------------------

/** What the request log remembers of a request. */
export type RequestEntry =
  /**
   * Ids reserved for the task; `hostIds`: the hosts a selector matched when the
   * request was first handled, which a redelivery runs on (the ids were counted for them).
   */
  | { state: 'pending'; ids: number[]; hostIds?: number[] }
  | { state: 'accepted'; taskId: number }
  | { state: 'rejected'; error: ErrorBody; origin?: Origin };

/**
 * Each request's answer, by requestId, so a request seen again (a
 * redelivery, a retried call) gets its first answer and its first ids.
 */
export interface RequestLog {
  /** The request's entry; undefined when it has none. */
  get(requestId: string): Promise<RequestEntry | undefined>;
  /**
   * Store a request's first entry unless it has one; false, writing nothing,
   * when it has (a concurrent delivery's came first: read that one).
   */
  reserve(requestId: string, entry: RequestEntry): Promise<boolean>;
  /** Record the request's answer, whatever its entry was. */
  settle(requestId: string, entry: RequestEntry): Promise<void>;
  /** Forget the request's entry: its next delivery starts afresh. */
  forget(requestId: string): Promise<void>;
}

// ---- Logs and work --------------------------------------------------------

/** A subtask's output tail (≤ 64 KiB) and, when it failed, why. */
export interface SubtaskLog {
  log: string;
  truncated: boolean;
  exitCode?: number;
  /** Why the subtask failed, in a sentence: "exit code 3", "timed out after 60 s", … */
  error?: string;
}

export interface SubtaskLogs {
  /** Replace the subtask's log (its latest run's). */
  put(taskId: number, subtaskId: number, log: SubtaskLog): Promise<void>;
  get(taskId: number, subtaskId: number): Promise<SubtaskLog | undefined>;
}

/**
 * Queue a run of a subtask; resolves once the item is durable. Deduplicated
 * per run (taskId, subtaskId, runTime) within the queue's duplicate window;
 * an item for a run that is stale or under way is only a no-op or an attach.
 */
export type EnqueueWork = (item: WorkItem, traceId: string) => Promise<void>;

/**
 * A message a durable queue delivered (a work item to the executor, an event
 * to the notifier), as its handler answers it: the part of a JetStream message
 * the handlers use, so no use case names a NATS type.
 */
export interface DeliveredMessage {
  readonly subject: string;
  /** Delivered before: its previous holder may have died with it in hand. */
  readonly redelivered: boolean;
  json<T = unknown>(): T;
  /** Done with it. */
  ack(): void;
  /** Deliver it again after `delayMs` (or at once). */
  nak(delayMs?: number): void;
  /** Never deliver it again. */
  term(): void;
  /** Still at it: keep the lease (the ack wait starts again). */
  working(): void;
}
