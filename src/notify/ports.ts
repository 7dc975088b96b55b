/**
 * What ordered delivery (ordered-delivery.ts) needs from the outside world:
 * the events as delivered, the notifier it feeds (Slack today, the web page
 * next) and the storage it keeps its place in. nats/ and slack/ implement
 * them; service.ts passes them in.
 */
import type { TaskEvent } from '../contracts/events.js';
import type { Origin } from '../contracts/origin.js';
import type { TaskRecord } from '../core/task-record.js';
import type { TaskStore } from '../tasks/ports.js';

/** A delivered message of ocp.events.>. */
export type { DeliveredMessage as EventMessage } from '../tasks/ports.js';

/**
 * What a failure of `start`, `deliver` or `finish` means for the event.
 * - `retryLater`: the target is rate limited; the event goes back for `afterMs`.
 * - `refused`: asking again will not change the answer; the event is recorded
 *   as handled and skipped. `closed`: nothing more can be delivered for this
 *   task (the target is shut to us), so nothing more is tried.
 * - `transient`: the event is delivered again later.
 */
export type DeliveryFailure =
  | { kind: 'retryLater'; afterMs: number }
  | { kind: 'refused'; closed: boolean; reason?: string }
  | { kind: 'transient' };

/**
 * A notifier that writes a task's events somewhere: a summary of the task
 * (Slack: the parent message, kept current) and a reply per event that calls
 * for one. `T` is what it keeps per task (Slack: the channel and the parent's
 * ts); it is stored, as plain JSON, beside what delivery keeps.
 */
export interface TaskNotifier<T extends object> {
  /** Where a task's events go before anything was delivered (Slack: the channel); undefined: nowhere, they are skipped. */
  target(record: TaskRecord): T | undefined;
  /** Whether the task's summary is out (Slack: its parent message was posted). */
  started(thread: T): boolean;
  /** Put the task's summary out as the record stands; it stands for every event so far. */
  start(record: TaskRecord, thread: T): Promise<T>;
  /** Deliver one event of a task whose summary is out. */
  deliver(event: TaskEvent, record: TaskRecord, thread: T): Promise<T>;
  /**
   * Whether a batch's chain events are delivered one by one, each in its
   * chain's order and recorded (default). False (Slack): the notifier writes
   * the batch from the store at its own pace, so a chain event only says the
   * batch moved — delivered as it comes, nothing recorded, never held back.
   */
  eachChainEvent?(record: TaskRecord): boolean;
  /** Show an ended task's end on its summary, and stop keeping it current. */
  finish(record: TaskRecord, thread: T): Promise<void>;
  /** The task's summary may be behind its events: bring it up to date, at the notifier's own pace. */
  keepCurrent(taskId: number): void;
  /** A request that made no task was refused: tell its requester, if this notifier can reach them. */
  rejected(origin: Origin, message: string): Promise<void>;
  classify(err: unknown): DeliveryFailure;
  /** Stop its timers, and let what it is writing now finish. */
  stop(): void | Promise<void>;
}

/**
 * Per task, how far delivery got, with what the notifier keeps (`T`) in the
 * same flat object. The names are those the Slack-only notifier stored, so its
 * records read the same.
 */
export type DeliveryState<T extends object> = T & {
  /** seq of the last event handled (delivered, or nothing to deliver). */
  lastSeq: number;
  /** Nothing more is tried for this task (its target is shut to us). */
  disabled?: boolean;
  /** seq of the event the summary was last shown ended for (an ended task's summary is finished once). */
  parentSeq?: number;
};

/** Where delivery records its place, by compare-and-set (Slack: ocp_slack). */
export interface DeliveryStates<T extends object> {
  get(taskId: number): Promise<{ state: DeliveryState<T>; revision: number } | undefined>;
  /** A batch's chain: how far delivery got in that chain's events (its own sequence). */
  getChain(taskId: number, chain: number): Promise<{ lastSeq: number; revision: number } | undefined>;
  /** As `save`, for a chain's place. */
  saveChain(taskId: number, chain: number, lastSeq: number, revision: number | undefined): Promise<number | undefined>;
  /**
   * Create (`revision` undefined) or update the task's state. Resolves with the
   * new revision, or undefined when another writer got there first (its state
   * stands). Throws when storage cannot take it now.
   */
  save(taskId: number, state: DeliveryState<T>, revision: number | undefined): Promise<number | undefined>;
}

/** The part of the task store delivery reads: one read per event (a batch's head, never its every chain). */
export type TaskReader = Pick<TaskStore, 'top'>;

/** Whether a task's first event has passed this consumer for good (see nats/event-history.ts). */
export type FirstEventPassed = (taskId: number) => Promise<boolean>;

/** The origin a rejected request was stored with, if any. */
export type RejectedOrigin = (requestId: string) => Promise<Origin | undefined>;
