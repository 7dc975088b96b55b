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
 * 7. A batch (stored as parts: SPEC §10 "Slack, for a batch") is written
 *    from its head and progress, never its every chain, at the notifier's own
 *    pace: one parent with counts (updated at most every 2 s however many
 *    events came), replies for the canary's outcome, for failed hosts grouped
 *    by error (at most one every 10 s) and for the end — none per host. Its
 *    chain events only say it moved; what it posted on its own is recorded
 *    (task.<id>.posts) so a restarted notifier posts it once. The decisions
 *    are pure, in batch-thread.ts.
 */
import type { WebClient } from '@slack/web-api';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { TaskEvent } from '../contracts/events.js';
import type { Origin } from '../contracts/origin.js';
import { bitOf } from '../core/task-layout.js';
import type { TaskRecord } from '../core/task-record.js';
import type { DeliveryFailure, TaskNotifier } from '../notify/ports.js';
import type { BatchGlance, SubtaskLogs, TaskStore } from '../tasks/ports.js';
import {
  afterPosts,
  BATCH_UPDATE_MS,
  type BatchPosts,
  batchView,
  type DuePosts,
  duePosts,
  NO_POSTS,
  PARENT_FAILED,
  postsChanged,
  setBits,
  updateDelay,
} from './batch-thread.js';
import { hostContext } from './host-context.js';
import type { BatchPostsStore } from './ports.js';
import {
  type FailedHost,
  renderBatchEnd,
  renderBatchParent,
  renderCanaryReply,
  renderFailureReply,
} from './render-batch.js';
import { type Rendered, renderFinalReply, renderParent, renderSubtaskReply } from './render-blocks.js';

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

/** What a failed Web API call means for the event it was for. */
export function classifySlackError(err: unknown): DeliveryFailure {
  const { code, retryAfter = 1 } = slackError(err);
  if (code === 'ratelimited') return { kind: 'retryLater', afterMs: retryAfter * 1000 };
  if (code && PERMANENT.has(code)) return { kind: 'refused', closed: CANNOT_POST.has(code), reason: code };
  return { kind: 'transient' };
}

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

  // ---- batches (SPEC §10): written from head and progress, at our own pace ----

  /** Batches whose parent this process keeps current. */
  interface LiveBatch {
    channel: string;
    ts: string;
    lastUpdate: number;
    timer?: NodeJS.Timeout;
    failures?: number;
    /** One write to the thread at a time: an update, the replies due, the end. */
    turn: Promise<unknown>;
    /** Failed hosts read, by chain, kept while the chain stays failed. */
    failed: Map<number, FailedHost>;
  }
  const batches = new Map<number, LiveBatch>();
  /** Batches whose end this process showed on the parent (the latest, at most FINISHED_KEPT). */
  const finished = new Set<number>();
  const FINISHED_KEPT = 1024;

  const isBatch = (record: TaskRecord) => record.layout === 'chains';

  function liveBatch(taskId: number, thread: SlackThread, lastUpdate = 0): LiveBatch {
    let b = batches.get(taskId);
    if (!b) {
      b = {
        channel: thread.channel,
        ts: thread.parentTs as string,
        lastUpdate,
        turn: Promise.resolve(),
        failed: new Map(),
      };
      batches.set(taskId, b);
    }
    return b;
  }

  /** Run `fn` once the batch's earlier writes are done. */
  function inTurn<R>(b: LiveBatch, fn: () => Promise<R>): Promise<R> {
    const run = b.turn.then(fn, fn);
    b.turn = run.catch(() => undefined);
    return run;
  }

  function requesterOf(record: TaskRecord): string {
    const asker = slackOrigin(record.origin);
    return asker ? `<@${asker.user}>` : record.task.creator;
  }

  /** Tries to record what was posted in a batch's thread (a second post is what a lost record costs). */
  const RECORD_TRIES = 3;
  /** Failed hosts read at once (a chain and a log each). */
  const READS_AT_ONCE = 16;

  /** The failed hosts of these chains: the step that failed and why, read once per chain while it stays failed. */
  async function failedHosts(taskId: number, b: LiveBatch, chains: readonly number[]): Promise<FailedHost[]> {
    const missing = chains.filter((i) => !b.failed.has(i));
    const names = missing.length > 0 ? new Map(config.hosts.map((h) => [h.id, h.name])) : undefined;
    for (let k = 0; k < missing.length; k += READS_AT_ONCE) {
      await Promise.all(
        missing.slice(k, k + READS_AT_ONCE).map(async (idx) => {
          const chain = (await deps.store.chain(taskId, idx))?.record;
          if (!chain) return;
          const step = [...chain.task.subtasks].reverse().find((s) => s.status === 'FAILED');
          const hostId = chain.steps[String(chain.task.subtasks[0]?.id)]?.hostId ?? chain.task.hostId;
          const log = step ? await deps.logs.get(taskId, step.id) : undefined;
          const name = names?.get(hostId);
          b.failed.set(idx, {
            hostId,
            ...(name ? { name } : {}),
            error: log?.error ?? (step ? `${step.name} failed` : 'failed'),
            ...(step ? { subtaskId: step.id } : {}),
          });
        }),
      );
    }
    return chains.flatMap((i) => b.failed.get(i) ?? []);
  }

  /** The batch's parent as it stands. */
  async function batchParent(taskId: number, b: LiveBatch, g: BatchGlance): Promise<Rendered> {
    const failedBits = g.progress?.failed ?? '';
    // A host retried since it was read may fail otherwise: read again.
    for (const idx of b.failed.keys()) if (!bitOf(failedBits, idx)) b.failed.delete(idx);
    const shown = await failedHosts(taskId, b, setBits(failedBits, PARENT_FAILED));
    const view = batchView(
      { task: g.record.task, hosts: g.hosts, progress: g.progress },
      shown,
      requesterOf(g.record),
      now().getTime(),
    );
    const prohibit = g.record.task.context.stringMap.prohibit_rollback === 'true';
    return renderBatchParent(prohibit ? { ...view, prohibitRollback: true } : view, now().getTime());
  }

  /** Keep trying a record of what was posted: it stands between the thread and a second post. */
  async function recordPosts(
    taskId: number,
    posts: BatchPosts,
    revision: number | undefined,
  ): Promise<number | undefined> {
    for (let attempt = 1; attempt <= RECORD_TRIES; attempt++) {
      try {
        const saved = await deps.batchPosts.save(taskId, posts, revision);
        if (saved !== undefined) return saved;
        // Another notifier recorded this batch meanwhile: ours (what it had, and what we posted) goes on top.
        revision = (await deps.batchPosts.get(taskId))?.revision;
      } catch (err) {
        logger.warn(
          { taskId, attempt, err: (err as Error).message },
          'cannot record what was posted in the batch thread',
        );
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
    return revision;
  }

  /**
   * Post the replies due in the batch's thread — the canary's outcome, the
   * failed hosts not named yet, and (`end`) the end — each recorded as soon
   * as it is out. Rejects with Slack's error, having recorded what got out.
   */
  async function postDue(
    taskId: number,
    b: LiveBatch,
    g: BatchGlance,
    end?: { status: 'SUCCESSFUL' | 'FAILED' },
  ): Promise<void> {
    const stored = await deps.batchPosts.get(taskId);
    let posts = stored?.posts ?? NO_POSTS;
    let revision = stored?.revision;
    const progress = g.progress;
    const due = duePosts({
      running: g.record.task.status === 'RUNNING',
      ending: end !== undefined,
      now: Date.now(),
      hosts: g.hosts,
      canary: g.options.canary,
      progress,
      posts,
    });
    if (!progress) {
      if (end) await postEnd(taskId, b, g, end.status, [], 0);
      return;
    }
    const inThread = { channel: b.channel, thread_ts: b.ts };
    /** A reply of the batch's own; one Slack refuses for good is taken as done, not asked again every update. */
    const reply = async (r: Rendered) => {
      try {
        await deps.client.chat.postMessage({ ...inThread, text: r.text, blocks: r.blocks });
      } catch (err) {
        if (classifySlackError(err).kind !== 'refused') throw err;
        logger.warn(
          { taskId, code: slackError(err).code, text: r.text },
          'Slack refused a reply of the batch; skipped',
        );
      }
    };
    const done = async (step: DuePosts, ending: boolean) => {
      const next = afterPosts(posts, progress, step, Date.now(), ending);
      if (!postsChanged(posts, next)) return;
      revision = await recordPosts(taskId, next, revision);
      posts = next;
    };
    if (due.canary) {
      const failed = await failedHosts(taskId, b, due.canary.failed);
      await reply(renderCanaryReply({ canary: due.canary.canary, failed, rest: g.hosts - due.canary.canary }));
      await done({ canary: due.canary, name: [], more: 0 }, false);
    }
    if (end) {
      await postEnd(taskId, b, g, end.status, due.name, due.more);
      await done({ name: due.name, more: due.more }, true);
    } else if (due.name.length > 0) {
      await reply(renderFailureReply(await failedHosts(taskId, b, due.name)));
      await done({ name: due.name, more: 0 }, false);
    }
  }

  /** The thread's last reply: counts, and the failed hosts no reply named yet; broadcast when FAILED. */
  async function postEnd(
    taskId: number,
    b: LiveBatch,
    g: BatchGlance,
    status: 'SUCCESSFUL' | 'FAILED',
    unnamed: readonly number[],
    more: number,
  ): Promise<void> {
    const task = { ...g.record.task, status };
    const view = batchView({ task, hosts: g.hosts, progress: g.progress }, [], requesterOf(g.record), now().getTime());
    const r = renderBatchEnd(view, { unnamed: await failedHosts(taskId, b, unnamed), more });
    await deps.client.chat.postMessage({
      channel: b.channel,
      thread_ts: b.ts,
      text: r.text,
      blocks: r.blocks,
      reply_broadcast: status === 'FAILED',
    });
  }

  /** Bring a batch's thread up to date: the replies due, then the parent (one chat.update for every event since the last). */
  async function updateBatch(taskId: number): Promise<void> {
    const b = batches.get(taskId);
    if (!b) return;
    await inTurn(b, async () => {
      let g: BatchGlance | undefined;
      try {
        g = await deps.store.glance(taskId);
      } catch (err) {
        logger.warn({ taskId, err: (err as Error).message }, 'cannot read the batch for its parent; trying again');
        scheduleBatch(taskId, 2000);
        return;
      }
      // Gone, or its end is on the parent already (a late event of it came here).
      if (!g || (g.record.task.status !== 'RUNNING' && finished.has(taskId))) {
        forgetBatch(taskId);
        return;
      }
      try {
        if (g.record.task.status === 'RUNNING') await postDue(taskId, b, g);
        const r = await batchParent(taskId, b, g);
        await deps.client.chat.update({ channel: b.channel, ts: b.ts, text: r.text, blocks: r.blocks });
        b.failures = 0;
      } catch (err) {
        const failure = classifySlackError(err);
        if (failure.kind === 'retryLater') {
          scheduleBatch(taskId, failure.afterMs); // nothing recorded that did not get out: nothing lost
          return;
        }
        b.failures = (b.failures ?? 0) + 1;
        if (failure.kind === 'transient' && b.failures <= PARENT_UPDATE_TRIES) {
          scheduleBatch(taskId, 1000 * b.failures);
          return;
        }
        logger.warn({ taskId, code: slackError(err).code }, 'cannot update the batch’s Slack thread');
      }
      if (g.record.task.status !== 'RUNNING') forgetBatch(taskId);
    });
  }

  function scheduleBatch(taskId: number, delayMs?: number): void {
    const b = batches.get(taskId);
    if (!b || b.timer) return;
    b.timer = setTimeout(
      () => {
        b.timer = undefined;
        // Events from now on wait for the next update, BATCH_UPDATE_MS on.
        b.lastUpdate = Date.now();
        updateBatch(taskId).catch((err) => logger.warn({ taskId, err: err.message }, 'batch update failed'));
      },
      delayMs ?? updateDelay(b.lastUpdate, Date.now(), BATCH_UPDATE_MS),
    );
  }

  function forgetBatch(taskId: number): void {
    clearTimeout(batches.get(taskId)?.timer);
    batches.delete(taskId);
  }

  /** A batch's parent, posted: counts from its head and progress. */
  async function startBatch(record: TaskRecord, thread: SlackThread): Promise<string> {
    const taskId = record.task.id;
    const g = (await deps.store.glance(taskId)) ?? { record, hosts: 0, options: {}, progress: undefined };
    const scratch: LiveBatch = {
      channel: thread.channel,
      ts: '',
      lastUpdate: 0,
      turn: Promise.resolve(),
      failed: new Map(),
    };
    const r = await batchParent(taskId, scratch, g);
    const res = await deps.client.chat.postMessage({ channel: thread.channel, text: r.text, blocks: r.blocks });
    const ts = res.ts as string;
    const b = liveBatch(taskId, { channel: thread.channel, parentTs: ts }, Date.now());
    for (const [i, h] of scratch.failed) b.failed.set(i, h);
    return ts;
  }

  /** A batch's event: its end gets the end reply; any other only says the batch moved. */
  async function deliverToBatch(event: TaskEvent, record: TaskRecord, thread: SlackThread): Promise<void> {
    const ended = event.subtaskId === undefined && (event.status === 'SUCCESSFUL' || event.status === 'FAILED');
    // Events of an ended batch that come late: its finish shows it as it ended.
    if (!ended && record.task.status !== 'RUNNING') return;
    const b = liveBatch(record.task.id, thread);
    if (!ended) return;
    const status = event.status as 'SUCCESSFUL' | 'FAILED';
    await inTurn(b, async () => {
      const g = (await deps.store.glance(record.task.id)) ?? { record, hosts: 0, options: {}, progress: undefined };
      await postDue(record.task.id, b, g, { status });
    });
  }

  /** Show an ended batch's end on its parent. */
  async function finishBatch(record: TaskRecord, thread: SlackThread): Promise<void> {
    const b = liveBatch(record.task.id, thread);
    await inTurn(b, async () => {
      const g = (await deps.store.glance(record.task.id)) ?? { record, hosts: 0, options: {}, progress: undefined };
      const r = await batchParent(record.task.id, b, g);
      await deps.client.chat.update({ channel: b.channel, ts: b.ts, text: r.text, blocks: r.blocks });
      finished.delete(record.task.id);
      finished.add(record.task.id);
      if (finished.size > FINISHED_KEPT) finished.delete(finished.values().next().value as number);
    });
  }

  const refresher = setInterval(() => {
    for (const taskId of live.keys()) scheduleUpdate(taskId);
    for (const taskId of batches.keys()) scheduleBatch(taskId);
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
        if (isBatch(record)) return { channel: thread.channel, parentTs: await startBatch(record, thread) };
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
        await deliverToBatch(event, record, thread);
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
        try {
          await finishBatch(record, thread);
        } catch (err) {
          if (classifySlackError(err).kind === 'refused') forgetBatch(record.task.id);
          throw err;
        }
        forgetBatch(record.task.id);
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

    keepCurrent: (taskId) => (batches.has(taskId) ? scheduleBatch(taskId) : scheduleUpdate(taskId)),

    async rejected(origin, message) {
      await answer(origin, `:no_entry: Not done: ${message}`);
    },

    classify: classifySlackError,

    async stop() {
      clearInterval(refresher);
      for (const e of live.values()) clearTimeout(e.timer);
      for (const b of batches.values()) clearTimeout(b.timer);
      // A post out and not yet recorded would be posted again by the next notifier.
      await Promise.all([...batches.values()].map((b) => b.turn));
    },
  };
}
