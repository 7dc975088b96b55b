/**
 * The notifier: a durable consumer of ocp.events.> that writes each task into
 * the Slack thread of its request (SPEC §4).
 *
 * 1. The first event of a task (seq 1) posts the parent message in the channel
 *    of the request (or slack.defaultChannel for HTTP and NATS tasks).
 * 2. Every subtask that ends gets a thread reply; the task's end gets a final
 *    reply, broadcast to the channel when it failed.
 * 3. The parent is kept current with chat.update: after each event at most
 *    about once a second, and every 30 s while the task runs.
 * 4. Events of one task are handled in seq order: an event whose predecessor
 *    has not been posted yet is put back for a moment — unless the task has no
 *    thread and its first event has passed for good (a channel configured, or
 *    the consumer made anew, while the task ran): then the thread starts from
 *    the stored task, its parent showing every subtask so far. What was posted is
 *    recorded per task (ocp_slack), so a restarted notifier posts nothing twice
 *    — unless it died between posting and recording.
 * 5. Slack's 429 beyond the Web API client's own retries puts the event back
 *    for Retry-After seconds; nothing is dropped.
 * 6. A refused request from Slack is answered ephemerally on its response_url.
 */
import type { WebClient } from '@slack/web-api';
import type { JsMsg, KV } from 'nats';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { RequestEvent, TaskEvent } from '../contracts/events.js';
import type { OcpTask } from '../contracts/ocp-task.js';
import type { TaskRecord } from '../core/task-record.js';
import { decodeJson, encodeJson, getLive, isCasConflict } from '../nats/kv-json.js';
import type { RequestLog, SubtaskLogs, TaskStore } from '../tasks/ports.js';
import { hostContext } from './host-context.js';
import { type Rendered, renderFinalReply, renderParent, renderSubtaskReply } from './render-blocks.js';

/** The part of Slack's Web API the notifier uses. */
export interface ChatApi {
  chat: Pick<WebClient['chat'], 'postMessage' | 'update'>;
}

export type PostToResponseUrl = (url: string, body: Record<string, unknown>) => Promise<void>;

export interface NotifierDeps {
  config: Config;
  store: TaskStore;
  logs: SubtaskLogs;
  requests: RequestLog;
  /** ocp_slack: per task, where its thread is and what was posted. */
  threads: KV;
  client: ChatApi;
  respond: PostToResponseUrl;
  /** Whether a task's first event has passed this notifier for good (see nats/event-history.ts). */
  firstEventPassed(taskId: number): Promise<boolean>;
  logger: Logger;
  now?: () => Date;
}

interface ThreadState {
  channel: string;
  parentTs?: string;
  /** seq of the last event handled (posted, or nothing to post). */
  lastSeq: number;
  /** The bot cannot post in the channel: the requester was told; nothing more is tried. */
  disabled?: boolean;
  /** seq of the event the parent was last shown ended for (an ended task's parent is finished once). */
  parentSeq?: number;
}

/** Least time between two updates of one parent (ms), and the refresh while a task runs. */
const UPDATE_MIN_MS = 1000;
const REFRESH_MS = 30_000;
/** Tries of a parent update that fails for a reason other than a rate limit. */
const PARENT_UPDATE_TRIES = 5;
/** Wait before retrying an event whose predecessor is not posted yet (ms). */
const GATE_RETRY_MS = 200;
/**
 * Tries to record a post that is out (ocp_slack) while NATS is away, about a
 * minute in all: a nats-server restart must not make the event come back and
 * be posted twice.
 */
const RECORD_TRIES = 40;
const RECORD_RETRY_MS = 1500;

const CANNOT_POST = new Set(['not_in_channel', 'channel_not_found', 'is_archived', 'restricted_action']);
/** Errors that asking again will not change. */
const PERMANENT = new Set([
  ...CANNOT_POST,
  'invalid_blocks',
  'invalid_auth',
  'account_inactive',
  'token_revoked',
  'msg_too_long',
  'msg_blocks_too_long',
  'no_text',
  'invalid_arguments',
]);

function slackError(err: unknown): { code?: string; retryAfter?: number } {
  const e = err as { code?: string; retryAfter?: number; data?: { error?: string } };
  if (e?.code === 'slack_webapi_rate_limited_error') return { code: 'ratelimited', retryAfter: e.retryAfter ?? 1 };
  return { code: e?.data?.error ?? e?.code };
}

export function createNotifier(deps: NotifierDeps) {
  const { config, logger } = deps;
  const now = deps.now ?? (() => new Date());
  const key = (taskId: number) => `task.${taskId}`;

  /** Parents this process keeps current: last update time, pending timer. */
  const live = new Map<
    number,
    { channel: string; ts: string; lastUpdate: number; timer?: NodeJS.Timeout; failures?: number }
  >();

  const ctxOf = (record: TaskRecord) => hostContext(config, record.steps);

  function renderParentOf(record: TaskRecord): Rendered {
    const reason = record.task.context.stringMap.reason;
    return renderParent(record.task, {
      now: now(),
      ...ctxOf(record),
      requester: record.origin ? `<@${record.origin.user}>` : record.task.creator,
      ...(reason ? { reason } : {}),
    });
  }

  async function updateParent(taskId: number): Promise<void> {
    const entry = live.get(taskId);
    if (!entry) return;
    let stored: Awaited<ReturnType<TaskStore['get']>>;
    try {
      stored = await deps.store.get(taskId);
    } catch (err) {
      // NATS away: the task's latest state is rendered once it is back (an ended
      // task's last update would otherwise wait for the 30 s refresh).
      logger.warn({ taskId, err: (err as Error).message }, 'cannot read the task for its parent; trying again');
      scheduleUpdate(taskId, 2000);
      return;
    }
    if (!stored) return;
    const r = renderParentOf(stored.record);
    entry.lastUpdate = Date.now();
    try {
      await deps.client.chat.update({ channel: entry.channel, ts: entry.ts, text: r.text, blocks: r.blocks });
      entry.failures = 0;
    } catch (err) {
      const { code, retryAfter } = slackError(err);
      if (code === 'ratelimited') {
        scheduleUpdate(taskId, (retryAfter ?? 1) * 1000); // the latest state is rendered then: nothing lost
        return;
      }
      // A transient failure (network, 5xx) of the last update would leave a finished
      // task's parent showing Cancel: try again a few times before giving up.
      entry.failures = (entry.failures ?? 0) + 1;
      if (!(code && PERMANENT.has(code)) && entry.failures <= PARENT_UPDATE_TRIES) {
        scheduleUpdate(taskId, 1000 * entry.failures);
        return;
      }
      logger.warn({ taskId, code }, 'cannot update the Slack parent message');
    }
    if (stored.record.task.status !== 'RUNNING') {
      clearTimeout(entry.timer);
      live.delete(taskId);
    }
  }

  function scheduleUpdate(taskId: number, delayMs?: number): void {
    const entry = live.get(taskId);
    if (!entry || entry.timer) return;
    const wait = delayMs ?? Math.max(0, entry.lastUpdate + UPDATE_MIN_MS - Date.now());
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      updateParent(taskId).catch((err) => logger.warn({ taskId, err: err.message }, 'parent update failed'));
    }, wait);
  }

  const refresher = setInterval(() => {
    for (const taskId of live.keys()) scheduleUpdate(taskId);
  }, REFRESH_MS);

  async function saveState(taskId: number, state: ThreadState, revision: number | undefined): Promise<number> {
    if (revision === undefined) return deps.threads.create(key(taskId), encodeJson(state));
    return deps.threads.update(key(taskId), encodeJson(state), revision);
  }

  /**
   * Record what was just posted. Slack has it already: failing here would put
   * the event back and post it again, so a record NATS cannot take now (a
   * server restart) is tried again, keeping the message's lease meanwhile. A
   * compare-and-set conflict means another notifier recorded this task (or
   * our own earlier try got through unanswered): its record stands.
   */
  async function recordPosted(
    msg: JsMsg,
    taskId: number,
    state: ThreadState,
    revision: number | undefined,
  ): Promise<number | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await saveState(taskId, state, revision);
      } catch (err) {
        if (isCasConflict(err)) return undefined;
        if (attempt >= RECORD_TRIES) throw err;
        if (attempt === 1) logger.warn({ taskId, err: (err as Error).message }, 'cannot record a Slack post yet');
        try {
          msg.working();
        } catch {
          // disconnected: the lease is kept by the retries' pace (well inside the ack wait)
        }
        await new Promise((r) => setTimeout(r, RECORD_RETRY_MS));
      }
    }
  }

  /**
   * A response_url from a NATS payload is only trusted on Slack's own hooks
   * host, or on the origin of SLACK_API_URL (a test double, a proxy).
   */
  const apiOrigin = new URL(config.env.SLACK_API_URL).origin;
  const trusted = (url: string | undefined): string | undefined =>
    url && (url.startsWith('https://hooks.slack.com/') || new URL(url).origin === apiOrigin) ? url : undefined;

  async function tellRequester(record: TaskRecord, text: string): Promise<void> {
    const url = trusted(record.origin?.replyTo);
    if (url) await deps.respond(url, { response_type: 'ephemeral', replace_original: false, text });
    else logger.warn({ taskId: record.task.id }, text);
  }

  /** Post what one task event means; returns the new thread state. */
  async function post(event: TaskEvent, record: TaskRecord, state: ThreadState): Promise<ThreadState> {
    const task: OcpTask = record.task;
    if (event.seq === 1 || !state.parentTs) {
      const r = renderParentOf(record);
      try {
        const res = await deps.client.chat.postMessage({ channel: state.channel, text: r.text, blocks: r.blocks });
        const ts = res.ts as string;
        live.set(task.id, { channel: state.channel, ts, lastUpdate: Date.now() });
        return { ...state, parentTs: ts, lastSeq: event.seq };
      } catch (err) {
        const { code } = slackError(err);
        if (code && CANNOT_POST.has(code)) {
          await tellRequester(
            record,
            `I cannot post in <#${state.channel}> (${code}), so task ${task.id} runs without a thread there. ` +
              `Invite me with \`/invite @ocp-chatops\` in that channel, then follow it with \`${config.slack.command} status ${task.id}\`.`,
          );
          return { ...state, disabled: true, lastSeq: event.seq };
        }
        throw err;
      }
    }
    if (!live.has(task.id) && task.status === 'RUNNING') {
      live.set(task.id, { channel: state.channel, ts: state.parentTs, lastUpdate: 0 });
    }
    const thread = { channel: state.channel, thread_ts: state.parentTs };
    if (event.subtaskId !== undefined && (event.status === 'SUCCESSFUL' || event.status === 'FAILED')) {
      const log = event.status === 'FAILED' ? await deps.logs.get(task.id, event.subtaskId) : undefined;
      // Render the subtask as this event saw it, even if the task has moved on since.
      const atEvent = {
        ...task,
        subtasks: task.subtasks.map((s) =>
          s.id === event.subtaskId ? { ...s, status: event.status as typeof s.status } : s,
        ),
      };
      const r = renderSubtaskReply(atEvent, event.subtaskId, { ...ctxOf(record), ...(log ? { log } : {}) });
      await deps.client.chat.postMessage({ ...thread, text: r.text, blocks: r.blocks });
    } else if (event.subtaskId === undefined && (event.status === 'SUCCESSFUL' || event.status === 'FAILED')) {
      const r = renderFinalReply({ ...task, status: event.status }, { now: now() });
      await deps.client.chat.postMessage({
        ...thread,
        text: r.text,
        blocks: r.blocks,
        reply_broadcast: event.status === 'FAILED',
      });
      if (!live.has(task.id)) live.set(task.id, { channel: state.channel, ts: state.parentTs, lastUpdate: 0 });
    }
    return { ...state, lastSeq: event.seq };
  }

  /**
   * Tasks with an event in hand here. Another delivery for one of them waits:
   * a nats-server that crashed may deliver again an event whose first delivery
   * is still recording its post (the record retried while NATS was away), and
   * that second delivery, finding no record yet, would post it twice (found
   * by the soak with 7-9 s outages).
   */
  const inHand = new Set<number>();

  async function handleTaskEvent(msg: JsMsg, event: TaskEvent): Promise<void> {
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

  async function handleTaskEventInHand(msg: JsMsg, event: TaskEvent): Promise<void> {
    const stored = await deps.store.get(event.taskId);
    const record = stored?.record;
    const channel = record?.origin?.channel ?? config.slack.defaultChannel;
    if (!record || !channel) {
      msg.ack(); // nowhere to write
      return;
    }
    const entry = await getLive(deps.threads, key(event.taskId));
    const state: ThreadState = entry ? decodeJson<ThreadState>(entry) : { channel, lastSeq: 0 };
    if (state.disabled || event.seq <= state.lastSeq) {
      // Posted before (a redelivery), or the channel is closed to us. A notifier
      // that died after recording an ended task's last event, before showing
      // its end on the parent, left that to this delivery.
      if (!state.disabled && event.seq === state.lastSeq && parentBehind(state, record, event)) {
        await finishParent(msg, event.taskId, state, record, entry?.revision);
        return;
      }
      msg.ack();
      return;
    }
    if (event.seq > state.lastSeq + 1) {
      if (!entry && (await deps.firstEventPassed(event.taskId))) {
        await startFromStore(msg, event, record, channel);
        return;
      }
      msg.nak(GATE_RETRY_MS); // an earlier event of this task is not posted yet
      return;
    }
    let next: ThreadState;
    try {
      next = await post(event, record, state);
    } catch (err) {
      if (putBackIfRateLimited(msg, err, event)) return;
      const { code } = slackError(err);
      if (!code || !PERMANENT.has(code)) throw err; // transient: redelivered
      // Slack will answer the same however often we ask: record it and move on,
      // so later events of the task are not held up behind this one forever.
      logger.warn({ taskId: event.taskId, seq: event.seq, code }, 'Slack refused a post for good; skipped');
      next = { ...state, lastSeq: event.seq, ...(CANNOT_POST.has(code) ? { disabled: true } : {}) };
    }
    const revision = await recordPosted(msg, event.taskId, next, entry?.revision);
    if (parentBehind(next, record, event)) {
      await finishParent(msg, event.taskId, next, record, revision);
      return;
    }
    scheduleUpdate(event.taskId);
    msg.ack();
  }

  /** Slack's 429: the event goes back for Retry-After (nothing is lost); true when it did. */
  function putBackIfRateLimited(msg: JsMsg, err: unknown, event?: TaskEvent): boolean {
    const { code, retryAfter = 1 } = slackError(err);
    if (code !== 'ratelimited') return false;
    if (event) logger.info({ taskId: event.taskId, seq: event.seq, retryAfter }, 'Slack rate limit: event put back');
    msg.nak(retryAfter * 1000);
    return true;
  }

  /**
   * `event` is an ended task's last, and its parent has not been shown ended
   * yet. (Earlier events of a task that ended meanwhile leave it to the last.)
   */
  function parentBehind(state: ThreadState, record: TaskRecord, event: TaskEvent): boolean {
    return (
      record.task.status !== 'RUNNING' &&
      event.seq >= record.eventSeq &&
      state.parentTs !== undefined &&
      (state.parentSeq ?? 0) < state.lastSeq
    );
  }

  /**
   * Show an ended task's end on its parent before its last event is acked,
   * and record that it was: a notifier killed in between leaves the event to be
   * delivered again, which finishes this (never the timer of a dead process).
   */
  async function finishParent(
    msg: JsMsg,
    taskId: number,
    state: ThreadState,
    record: TaskRecord,
    /** The thread record's revision as `state` was read or written; unknown: read it again. */
    revision: number | undefined,
  ): Promise<void> {
    const r = renderParentOf(record);
    try {
      await deps.client.chat.update({
        channel: state.channel,
        ts: state.parentTs as string,
        text: r.text,
        blocks: r.blocks,
      });
    } catch (err) {
      if (putBackIfRateLimited(msg, err)) return;
      const { code } = slackError(err);
      if (!code || !PERMANENT.has(code)) throw err; // transient: delivered again
      logger.warn({ taskId, code }, 'cannot show the end on the Slack parent message');
    }
    const shown = live.get(taskId);
    if (shown) clearTimeout(shown.timer);
    live.delete(taskId);
    let current = { state, revision };
    if (revision === undefined) {
      const entry = await getLive(deps.threads, key(taskId));
      current = { state: entry ? decodeJson<ThreadState>(entry) : state, revision: entry?.revision };
    }
    if ((current.state.parentSeq ?? 0) < state.lastSeq) {
      await recordPosted(msg, taskId, { ...current.state, parentSeq: state.lastSeq }, current.revision);
    }
    msg.ack();
  }

  /**
   * The earlier events will never come: post the parent as the task stands,
   * record it as covering everything before this event, and take this event
   * again at once as the next one.
   */
  async function startFromStore(msg: JsMsg, event: TaskEvent, record: TaskRecord, channel: string): Promise<void> {
    logger.info({ taskId: event.taskId, seq: event.seq }, 'thread started from the stored task');
    let next: ThreadState;
    try {
      // With no parent in the state, post() posts the parent as the task stands.
      next = { ...(await post(event, record, { channel, lastSeq: 0 })), lastSeq: event.seq - 1 };
    } catch (err) {
      if (putBackIfRateLimited(msg, err, event)) return;
      throw err;
    }
    await recordPosted(msg, event.taskId, next, undefined);
    msg.nak(0);
  }

  async function handleRequestEvent(msg: JsMsg, event: RequestEvent): Promise<void> {
    if (event.type === 'rejected') {
      const entry = await deps.requests.get(event.requestId);
      const origin = entry?.state === 'rejected' ? entry.origin : undefined;
      const url = trusted(origin?.replyTo);
      if (url) {
        await deps.respond(url, {
          response_type: 'ephemeral',
          replace_original: false,
          text: `:no_entry: Not done: ${event.error.message}`,
        });
      }
    }
    msg.ack();
  }

  return {
    async handle(msg: JsMsg): Promise<void> {
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
    stop(): void {
      clearInterval(refresher);
      for (const e of live.values()) clearTimeout(e.timer);
    },
  };
}
