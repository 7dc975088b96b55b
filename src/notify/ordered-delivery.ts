/**
 * Ordered, once-per-record delivery of task events to a notifier (ports.ts):
 * a durable consumer of ocp.events.> hands every message to `handle`, and the
 * notifier (Slack today) only renders and sends. SPEC §4.
 *
 * 1. Events of one task are handled in seq order: an event whose predecessor
 *    has not been handled yet is put back for a moment. Two deliveries of one
 *    task's events never run at once in this process.
 * 2. The first event puts the task's summary out (Slack: the parent message);
 *    each later one is delivered into it. A task with no summary yet whose
 *    first event has passed for good (a target configured, or the consumer
 *    made anew, while the task ran) starts from the stored task instead of
 *    waiting for events that will never come.
 * 3. What was handled is recorded per task by compare-and-set, so a restarted
 *    notifier delivers nothing twice — unless it died between delivering and
 *    recording. A record NATS cannot take now is tried again, the message kept.
 * 4. A rate-limited target puts the event back for as long as it asks; a
 *    permanent refusal is recorded and skipped, so later events are not held
 *    up behind it forever.
 * 5. An ended task's last event shows the end on the summary before it is
 *    acknowledged; a delivery again finishes what a dead notifier left.
 * 6. A rejected request is passed to the notifier to answer its requester.
 * 7. A batch's chain event that the notifier takes only as "the batch moved"
 *    (Slack: it writes a batch from the store at its own pace) is delivered as
 *    it comes, unordered and unrecorded, one read of the batch's head each.
 */
import type { Logger } from 'pino';
import { RequestEvent, TaskEvent } from '../contracts/events.js';
import type { TaskRecord } from '../core/task-record.js';
import type {
  DeliveryFailure,
  DeliveryState,
  DeliveryStates,
  EventMessage,
  FirstEventPassed,
  RejectedOrigin,
  TaskNotifier,
  TaskReader,
} from './ports.js';

export interface OrderedDeliveryDeps<T extends object> {
  notifier: TaskNotifier<T>;
  /** Per task, how far delivery got (Slack: ocp_slack). */
  states: DeliveryStates<T>;
  tasks: TaskReader;
  firstEventPassed: FirstEventPassed;
  rejectedOrigin: RejectedOrigin;
  logger: Logger;
}

export interface OrderedDelivery {
  /** Handle one message of ocp.events.>: acks, naks or terminates it, or throws to have it delivered again. */
  handle(msg: EventMessage): Promise<void>;
  stop(): void | Promise<void>;
}

/** How long a batch's head and delivery state, as its chain events read them, are used again (ms). */
const MOVED_FRESH_MS = 1000;
/** Batches whose head and state are kept so. */
const MOVED_KEPT = 256;
/** Wait before retrying an event whose predecessor is not handled yet (ms). */
const GATE_RETRY_MS = 200;
/**
 * Tries to record a delivery that is out while NATS is away, about a minute in
 * all: a nats-server restart must not make the event come back and be
 * delivered twice.
 */
const RECORD_TRIES = 40;
const RECORD_RETRY_MS = 1500;

type Refusal = Extract<DeliveryFailure, { kind: 'refused' }>;

export function createOrderedDelivery<T extends object>(deps: OrderedDeliveryDeps<T>): OrderedDelivery {
  const { notifier, states, logger } = deps;
  type State = DeliveryState<T>;

  /**
   * Record what was just delivered. The target has it already: failing here
   * would put the event back and deliver it again, so a record NATS cannot
   * take now (a server restart) is tried again, keeping the message's lease
   * meanwhile. A compare-and-set conflict means another notifier recorded this
   * task (or our own earlier try got through unanswered): its record stands.
   */
  async function recordDelivered(
    msg: EventMessage,
    taskId: number,
    state: State,
    revision: number | undefined,
  ): Promise<number | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await states.save(taskId, state, revision);
      } catch (err) {
        if (attempt >= RECORD_TRIES) throw err;
        if (attempt === 1) logger.warn({ taskId, err: (err as Error).message }, 'cannot record a delivery yet');
        try {
          msg.working();
        } catch {
          // disconnected: the lease is kept by the retries' pace (well inside the ack wait)
        }
        await new Promise((r) => setTimeout(r, RECORD_RETRY_MS));
      }
    }
  }

  /** The event delivered: the summary put out if it is not yet, else the event itself. */
  async function deliver(event: TaskEvent, record: TaskRecord, state: State): Promise<State> {
    const thread = notifier.started(state)
      ? await notifier.deliver(event, record, state)
      : await notifier.start(record, state);
    return { ...state, ...thread, lastSeq: event.seq };
  }

  /**
   * A refusal for good, returned for the caller to record; otherwise the event
   * is put back for as long as the target asks (undefined), or `err` is thrown
   * so the message is delivered again.
   */
  function refusalOf(msg: EventMessage, err: unknown, event?: TaskEvent): Refusal | undefined {
    const failure = notifier.classify(err);
    if (failure.kind === 'transient') throw err;
    if (failure.kind === 'refused') return failure;
    if (event)
      logger.info({ taskId: event.taskId, seq: event.seq, afterMs: failure.afterMs }, 'rate limited: event put back');
    msg.nak(failure.afterMs);
    return undefined;
  }

  /**
   * Tasks with an event in hand here. Another delivery for one of them waits:
   * a nats-server that crashed may deliver again an event whose first delivery
   * is still recording its post (the record retried while NATS was away), and
   * that second delivery, finding no record yet, would post it twice (found
   * by the soak with 7-9 s outages).
   */
  const inHand = new Set<number>();

  async function handleTaskEvent(msg: EventMessage, event: TaskEvent): Promise<void> {
    if (event.chain !== undefined) {
      // A chain event that only says the batch moved records nothing, so it
      // takes no turn: a batch's thousands of them would hold up its own events.
      const seen = await batchAsSeen(event.taskId);
      if (seen.record && notifier.eachChainEvent?.(seen.record) === false) {
        await handleMoved(msg, event, seen.record, seen.entry);
        return;
      }
    }
    if (inHand.has(event.taskId)) {
      msg.nak(GATE_RETRY_MS);
      return;
    }
    inHand.add(event.taskId);
    try {
      await handleTaskEventInHand(msg, event);
    } finally {
      inHand.delete(event.taskId);
    }
  }

  /**
   * A batch's chain event: in order within its chain (the chain's own place,
   * `task.<id>.c.<idx>`), once the task's summary is out; chains are not
   * ordered among themselves (they run side by side).
   */
  async function handleChainEvent(msg: EventMessage, event: TaskEvent, chain: number): Promise<void> {
    const record = (await deps.tasks.top(event.taskId))?.record;
    const target = record && notifier.target(record);
    const entry = record && target ? await states.get(event.taskId) : undefined;
    if (!record || !target || entry?.state.disabled) {
      msg.ack(); // nowhere to write
      return;
    }
    if (!entry || !notifier.started(entry.state)) {
      msg.nak(GATE_RETRY_MS); // the summary is not out yet
      return;
    }
    const place = await states.getChain(event.taskId, chain);
    const lastSeq = place?.lastSeq ?? 0;
    if (event.seq <= lastSeq) {
      msg.ack();
      return;
    }
    if (event.seq > lastSeq + 1 && (place || !(await deps.firstEventPassed(event.taskId)))) {
      msg.nak(GATE_RETRY_MS); // an earlier event of this chain is not handled yet
      return;
    }
    try {
      await notifier.deliver(event, record, entry.state);
    } catch (err) {
      const refused = refusalOf(msg, err, event);
      if (!refused) return;
      logger.warn({ taskId: event.taskId, chain, seq: event.seq, reason: refused.reason }, 'delivery refused; skipped');
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await states.saveChain(event.taskId, chain, event.seq, place?.revision);
        break;
      } catch (err) {
        if (attempt >= RECORD_TRIES) throw err;
        await new Promise((r) => setTimeout(r, RECORD_RETRY_MS));
      }
    }
    notifier.keepCurrent(event.taskId);
    msg.ack();
  }

  /**
   * Batches as their chain events last read them: the head (tens of KiB for
   * thousands of hosts) and the delivery state, read again after
   * MOVED_FRESH_MS, not for each of the thousands of events a second.
   */
  const moved = new Map<number, { at: number; record?: TaskRecord; entry?: { state: State } }>();

  async function batchAsSeen(taskId: number): Promise<{ record?: TaskRecord; entry?: { state: State } }> {
    const known = moved.get(taskId);
    if (known && Date.now() - known.at < MOVED_FRESH_MS) return known;
    const record = (await deps.tasks.top(taskId))?.record;
    const entry = record && notifier.target(record) ? await states.get(taskId) : undefined;
    const seen = { at: Date.now(), ...(record ? { record } : {}), ...(entry ? { entry } : {}) };
    moved.delete(taskId);
    moved.set(taskId, seen);
    if (moved.size > MOVED_KEPT) moved.delete(moved.keys().next().value as number);
    return seen;
  }

  /**
   * A chain event that only says the batch moved (TaskNotifier.eachChainEvent):
   * delivered as it comes, nothing recorded. Before the summary is out it is
   * dropped: the summary shows the batch as it stands when it goes out.
   */
  async function handleMoved(
    msg: EventMessage,
    event: TaskEvent,
    record: TaskRecord,
    entry: { state: State } | undefined,
  ): Promise<void> {
    if (!entry || entry.state.disabled || !notifier.started(entry.state)) {
      msg.ack();
      return;
    }
    try {
      await notifier.deliver(event, record, entry.state);
    } catch (err) {
      const refused = refusalOf(msg, err, event);
      if (!refused) return;
    }
    notifier.keepCurrent(event.taskId);
    msg.ack();
  }

  async function handleTaskEventInHand(msg: EventMessage, event: TaskEvent): Promise<void> {
    if (event.chain !== undefined) {
      await handleChainEvent(msg, event, event.chain);
      return;
    }
    const record = (await deps.tasks.top(event.taskId))?.record;
    const target = record && notifier.target(record);
    if (!record || !target) {
      msg.ack(); // nowhere to write
      return;
    }
    const entry = await states.get(event.taskId);
    const state: State = entry?.state ?? { ...target, lastSeq: 0 };
    if (state.disabled || event.seq <= state.lastSeq) {
      // Handled before (a redelivery), or the target is shut to us. A notifier
      // that died after recording an ended task's last event, before showing
      // its end on the summary, left that to this delivery.
      if (!state.disabled && event.seq === state.lastSeq && summaryBehind(state, record, event)) {
        await finishSummary(msg, event.taskId, state, record, entry?.revision);
        return;
      }
      msg.ack();
      return;
    }
    if (event.seq > state.lastSeq + 1) {
      if (!entry && (await deps.firstEventPassed(event.taskId))) {
        await startFromStore(msg, event, record, target);
        return;
      }
      msg.nak(GATE_RETRY_MS); // an earlier event of this task is not handled yet
      return;
    }
    let next: State;
    try {
      next = await deliver(event, record, state);
    } catch (err) {
      const refused = refusalOf(msg, err, event);
      if (!refused) return;
      // The target will answer the same however often we ask: record it and move
      // on, so later events of the task are not held up behind this one forever.
      logger.warn(
        { taskId: event.taskId, seq: event.seq, reason: refused.reason },
        'delivery refused for good; skipped',
      );
      next = { ...state, lastSeq: event.seq, ...(refused.closed ? { disabled: true } : {}) };
    }
    const revision = await recordDelivered(msg, event.taskId, next, entry?.revision);
    if (summaryBehind(next, record, event)) {
      await finishSummary(msg, event.taskId, next, record, revision);
      return;
    }
    notifier.keepCurrent(event.taskId);
    msg.ack();
  }

  /**
   * `event` is an ended task's last, and its summary has not been shown ended
   * yet. (Earlier events of a task that ended meanwhile leave it to the last.)
   */
  function summaryBehind(state: State, record: TaskRecord, event: TaskEvent): boolean {
    return (
      record.task.status !== 'RUNNING' &&
      event.seq >= record.eventSeq &&
      notifier.started(state) &&
      (state.parentSeq ?? 0) < state.lastSeq
    );
  }

  /**
   * Show an ended task's end on its summary before its last event is acked,
   * and record that it was: a notifier killed in between leaves the event to
   * be delivered again, which finishes this (never the timer of a dead process).
   */
  async function finishSummary(
    msg: EventMessage,
    taskId: number,
    state: State,
    record: TaskRecord,
    /** The state's revision as `state` was read or written; unknown: read it again. */
    revision: number | undefined,
  ): Promise<void> {
    try {
      await notifier.finish(record, state);
    } catch (err) {
      const refused = refusalOf(msg, err);
      if (!refused) return;
      logger.warn({ taskId, reason: refused.reason }, 'cannot show the end on the summary');
    }
    let current = { state, revision };
    if (revision === undefined) {
      const entry = await states.get(taskId);
      current = { state: entry?.state ?? state, revision: entry?.revision };
    }
    if ((current.state.parentSeq ?? 0) < state.lastSeq) {
      await recordDelivered(msg, taskId, { ...current.state, parentSeq: state.lastSeq }, current.revision);
    }
    msg.ack();
  }

  /**
   * The earlier events will never come: put the summary out as the task
   * stands, record it as covering everything before this event, and take this
   * event again at once as the next one.
   */
  async function startFromStore(msg: EventMessage, event: TaskEvent, record: TaskRecord, target: T): Promise<void> {
    logger.info({ taskId: event.taskId, seq: event.seq }, 'thread started from the stored task');
    const fresh: State = { ...target, lastSeq: event.seq - 1 };
    let next: State;
    try {
      next = { ...fresh, ...(await notifier.start(record, fresh)), lastSeq: event.seq - 1 };
    } catch (err) {
      const refused = refusalOf(msg, err, event);
      if (!refused) return;
      // Recorded as covering what came before: this event, taken again, tries once more.
      logger.warn({ taskId: event.taskId, reason: refused.reason }, 'delivery refused for good; skipped');
      next = { ...fresh, ...(refused.closed ? { disabled: true } : {}) };
    }
    await recordDelivered(msg, event.taskId, next, undefined);
    msg.nak(0);
  }

  async function handleRequestEvent(msg: EventMessage, event: RequestEvent): Promise<void> {
    if (event.type === 'rejected') {
      const origin = await deps.rejectedOrigin(event.requestId);
      if (origin) await notifier.rejected(origin, event.error.message);
    }
    msg.ack();
  }

  return {
    async handle(msg) {
      let raw: unknown;
      try {
        raw = msg.json();
      } catch {
        msg.term();
        return;
      }
      if (msg.subject.startsWith('ocp.events.task.')) {
        const parsed = TaskEvent.safeParse(raw);
        if (!parsed.success) {
          msg.term();
          return;
        }
        await handleTaskEvent(msg, parsed.data);
      } else if (msg.subject.startsWith('ocp.events.request.')) {
        const parsed = RequestEvent.safeParse(raw);
        if (!parsed.success) {
          msg.term();
          return;
        }
        await handleRequestEvent(msg, parsed.data);
      } else {
        msg.ack();
      }
    },
    stop() {
      return notifier.stop();
    },
  };
}
