/**
 * The Slack notifier: writes each task into the Slack thread of its request
 * (SPEC §4). It is the TaskNotifier that ordered delivery
 * (notify/ordered-delivery.ts) feeds: that module handles the events of a
 * task in seq order, once, and records what was posted; this one renders and
 * calls Slack's Web API.
 *
 * 1. A task's summary is its parent message, in the channel of the request
 *    (or slack.defaultChannel for HTTP and NATS tasks).
 * 2. Every subtask that ends gets a thread reply; the task's end gets a final
 *    reply, broadcast to the channel when it failed.
 * 3. The parent is kept current with chat.update: after each event at most
 *    about once a second, and every 30 s while the task runs.
 * 4. A channel the bot cannot post in gets the requester an ephemeral
 *    explanation, and the task no thread there.
 * 5. Slack's 429 beyond the Web API client's own retries asks for the event
 *    to be put back for Retry-After seconds; nothing is dropped.
 * 6. A refused request from Slack is answered ephemerally on its response_url.
 * 7. A batch stored as parts (SPEC §10 "Slack, for a batch") has a thread
 *    of its own kind, written from its head and progress at the notifier's
 *    own pace — one live parent, replies for the canary, grouped failures and
 *    the end only: batch-threads.ts. Its chain events only say it moved.
 */
import type { WebClient } from '@slack/web-api';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { TaskEvent } from '../contracts/events.js';
import type { Origin } from '../contracts/origin.js';
import type { TaskRecord } from '../core/task-record.js';
import type { TaskNotifier } from '../notify/ports.js';
import type { SubtaskLogs, TaskStore } from '../tasks/ports.js';
import { createBatchThreads } from './batch-threads.js';
import { hostContext } from './host-context.js';
import type { BatchPostsStore } from './ports.js';
import { type Rendered, renderFinalReply, renderParent, renderSubtaskReply } from './render-blocks.js';
import { CANNOT_POST, classifySlackError, PERMANENT, slackError } from './slack-errors.js';

export { classifySlackError } from './slack-errors.js';

/** The part of Slack's Web API the notifier uses. */
export interface ChatApi {
  chat: Pick<WebClient['chat'], 'postMessage' | 'update'>;
}

export type PostToResponseUrl = (url: string, body: Record<string, unknown>) => Promise<void>;

export interface SlackNotifierDeps {
  config: Config;
  /**
   * Read again for each parent update: the parent shows the task as it is
   * now. A batch: its head and progress (`glance`), and the chains of the
   * failed hosts it names (`chain`).
   */
  store: Pick<TaskStore, 'get' | 'glance' | 'chain'>;
  /** What was posted in a batch's thread on its own. */
  batchPosts: BatchPostsStore;
  logs: Pick<SubtaskLogs, 'get'>;
  client: ChatApi;
  respond: PostToResponseUrl;
  logger: Logger;
  now?: () => Date;
}

/** Where a task's thread is (stored per task in ocp_slack, beside what delivery keeps). */
export interface SlackThread {
  channel: string;
  parentTs?: string;
}

/** Least time between two updates of one parent (ms), and the refresh while a task runs. */
const UPDATE_MIN_MS = 1000;
const REFRESH_MS = 30_000;
/** Tries of a parent update that fails for a reason other than a rate limit. */
const PARENT_UPDATE_TRIES = 5;

/** The Slack origin of a request, if it came through the Slack door. */
const slackOrigin = (origin: Origin | undefined) => (origin?.door === 'slack' ? origin : undefined);

export function createSlackNotifier(deps: SlackNotifierDeps): TaskNotifier<SlackThread> {
  const { config, logger } = deps;
  const now = deps.now ?? (() => new Date());

  /** Parents this process keeps current: last update time, pending timer. */
  const live = new Map<
    number,
    { channel: string; ts: string; lastUpdate: number; timer?: NodeJS.Timeout; failures?: number }
  >();

  // The inventory of the moment (it is re-read while the service runs).
  const ctxOf = (record: TaskRecord) => hostContext(deps.config, record.steps);

  function renderParentOf(record: TaskRecord): Rendered {
    const reason = record.task.context.stringMap.reason;
    const asker = slackOrigin(record.origin);
    return renderParent(record.task, {
      now: now(),
      ...ctxOf(record),
      requester: asker ? `<@${asker.user}>` : record.task.creator,
      ...(reason ? { reason } : {}),
      ...(deps.config.web.publicUrl ? { publicUrl: deps.config.web.publicUrl } : {}),
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
    if (stored.record.task.status !== 'RUNNING') forget(taskId);
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

  /** Stop keeping a parent current. */
  function forget(taskId: number): void {
    clearTimeout(live.get(taskId)?.timer);
    live.delete(taskId);
  }

  const batchThreads = createBatchThreads({
    get config() {
      return deps.config;
    },
    store: deps.store,
    batchPosts: deps.batchPosts,
    logs: deps.logs,
    client: deps.client,
    logger,
    now,
  });
  const isBatch = (record: TaskRecord) => record.layout === 'chains';

  const refresher = setInterval(() => {
    for (const taskId of live.keys()) scheduleUpdate(taskId);
    batchThreads.refresh();
  }, REFRESH_MS);

  /**
   * A response_url from a NATS payload is only trusted on Slack's own hooks
   * host, or on the origin of SLACK_API_URL (a test double, a proxy).
   */
  const apiOrigin = new URL(config.env.SLACK_API_URL).origin;
  const trusted = (url: string | undefined): string | undefined =>
    url && (url.startsWith('https://hooks.slack.com/') || new URL(url).origin === apiOrigin) ? url : undefined;

  /** An ephemeral answer to the requester; false when they cannot be reached that way. */
  async function answer(origin: Origin | undefined, text: string): Promise<boolean> {
    const url = trusted(slackOrigin(origin)?.replyTo);
    if (!url) return false;
    await deps.respond(url, { response_type: 'ephemeral', replace_original: false, text });
    return true;
  }

  return {
    target(record) {
      const channel = slackOrigin(record.origin)?.channel ?? config.slack.defaultChannel;
      return channel ? { channel } : undefined;
    },

    started: (thread) => thread.parentTs !== undefined,

    async start(record, thread) {
      const task = record.task;
      try {
        if (isBatch(record)) return { channel: thread.channel, parentTs: await batchThreads.start(record, thread) };
        const r = renderParentOf(record);
        const res = await deps.client.chat.postMessage({ channel: thread.channel, text: r.text, blocks: r.blocks });
        const ts = res.ts as string;
        live.set(task.id, { channel: thread.channel, ts, lastUpdate: Date.now() });
        return { channel: thread.channel, parentTs: ts };
      } catch (err) {
        const { code } = slackError(err);
        if (code && CANNOT_POST.has(code)) {
          const text =
            `I cannot post in <#${thread.channel}> (${code}), so task ${task.id} runs without a thread there. ` +
            `Invite me with \`/invite @ocp-chatops\` in that channel, then follow it with \`${config.slack.command} status ${task.id}\`.`;
          if (!(await answer(record.origin, text))) logger.warn({ taskId: task.id }, text);
        }
        throw err; // refused for good: no thread, nothing more tried
      }
    },

    eachChainEvent: (record) => !isBatch(record),

    async deliver(event: TaskEvent, record, thread) {
      if (isBatch(record)) {
        await batchThreads.deliver(event, record, thread);
        return thread;
      }
      const task = record.task;
      const parentTs = thread.parentTs as string;
      if (!live.has(task.id) && task.status === 'RUNNING') {
        live.set(task.id, { channel: thread.channel, ts: parentTs, lastUpdate: 0 });
      }
      const inThread = { channel: thread.channel, thread_ts: parentTs };
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
        await deps.client.chat.postMessage({ ...inThread, text: r.text, blocks: r.blocks });
      } else if (event.subtaskId === undefined && (event.status === 'SUCCESSFUL' || event.status === 'FAILED')) {
        const r = renderFinalReply({ ...task, status: event.status }, { now: now() });
        await deps.client.chat.postMessage({
          ...inThread,
          text: r.text,
          blocks: r.blocks,
          reply_broadcast: event.status === 'FAILED',
        });
        if (!live.has(task.id)) live.set(task.id, { channel: thread.channel, ts: parentTs, lastUpdate: 0 });
      }
      return thread;
    },

    async finish(record, thread) {
      if (isBatch(record)) {
        await batchThreads.finish(record, thread);
        return;
      }
      const r = renderParentOf(record);
      try {
        await deps.client.chat.update({
          channel: thread.channel,
          ts: thread.parentTs as string,
          text: r.text,
          blocks: r.blocks,
        });
      } catch (err) {
        // Put back or delivered again: the next try finishes it. Refused for good: nothing more to show.
        if (classifySlackError(err).kind === 'refused') forget(record.task.id);
        throw err;
      }
      forget(record.task.id);
    },

    keepCurrent: (taskId) => (batchThreads.has(taskId) ? batchThreads.keepCurrent(taskId) : scheduleUpdate(taskId)),

    async rejected(origin, message) {
      await answer(origin, `:no_entry: Not done: ${message}`);
    },

    classify: classifySlackError,

    async stop() {
      clearInterval(refresher);
      for (const e of live.values()) clearTimeout(e.timer);
      await batchThreads.stop();
    },
  };
}
