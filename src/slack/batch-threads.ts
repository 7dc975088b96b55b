/**
 * A batch's Slack thread (SPEC §10 "Slack, for a batch"), for the notifier
 * (notifier.ts): written from the store at its own pace, never reply by reply.
 *
 * 1. The parent shows counts per state, a progress bar, the time left and the
 *    first 20 failed hosts, read from the batch's head and progress (two
 *    reads whatever its size) and the failed hosts' chains and logs (once
 *    each while they stay failed); updated at most every BATCH_UPDATE_MS,
 *    one chat.update for every event meanwhile, and every 30 s while it runs.
 * 2. Thread replies: the canary's outcome, failed hosts grouped by error (at
 *    most one reply every 10 s; those left at the end go into the end reply)
 *    and the end, broadcast when FAILED — never one per host.
 * 3. What it posts on its own is recorded (BatchPostsStore) as soon as it is
 *    out, so a restarted notifier posts it once; the end reply answers the
 *    head's end event, which ordered delivery records.
 * 4. One write to a batch's thread at a time; a rate limit puts the update
 *    off for Retry-After, the end's back to delivery; nothing is lost.
 *
 * The decisions are pure (batch-thread.ts); this file does the I/O.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { TaskEvent } from '../contracts/events.js';
import type { Origin } from '../contracts/origin.js';
import { bitOf } from '../core/task-layout.js';
import type { TaskRecord } from '../core/task-record.js';
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
import type { ChatApi, SlackThread } from './notifier.js';
import type { BatchPostsStore } from './ports.js';
import {
  type FailedHost,
  renderBatchEnd,
  renderBatchParent,
  renderCanaryReply,
  renderFailureReply,
} from './render-batch.js';
import type { Rendered } from './render-blocks.js';
import { classifySlackError, slackError } from './slack-errors.js';

export interface BatchThreadsDeps {
  /** The inventory of the moment names the failed hosts. */
  config: Config;
  store: Pick<TaskStore, 'glance' | 'chain'>;
  batchPosts: BatchPostsStore;
  logs: Pick<SubtaskLogs, 'get'>;
  client: ChatApi;
  logger: Logger;
  now: () => Date;
}

export interface BatchThreads {
  /** Post the batch's parent as it stands; resolves with its ts. */
  start(record: TaskRecord, thread: SlackThread): Promise<string>;
  /** An event of the batch: its end gets the end reply; any other only says it moved. */
  deliver(event: TaskEvent, record: TaskRecord, thread: SlackThread): Promise<void>;
  /** Show the batch's end on its parent, and stop keeping it current. */
  finish(record: TaskRecord, thread: SlackThread): Promise<void>;
  /** Whether this process keeps the batch's thread current. */
  has(taskId: number): boolean;
  /** Bring the thread up to date, at most every BATCH_UPDATE_MS. */
  keepCurrent(taskId: number): void;
  /** The refresh while batches run: every one brought up to date. */
  refresh(): void;
  /** Stop the timers, and let what is being written finish (a post out and not recorded would be posted again). */
  stop(): Promise<void>;
}

/** Tries of a parent update that fails for a reason other than a rate limit. */
const PARENT_UPDATE_TRIES = 5;

/** The Slack origin of a request, if it came through the Slack door. */
const slackOrigin = (origin: Origin | undefined) => (origin?.door === 'slack' ? origin : undefined);

export function createBatchThreads(deps: BatchThreadsDeps): BatchThreads {
  const { logger, now } = deps;
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
    const names = missing.length > 0 ? new Map(deps.config.hosts.map((h) => [h.id, h.name])) : undefined;
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
    const { publicUrl } = deps.config.web;
    return renderBatchParent(
      { ...view, ...(prohibit ? { prohibitRollback: true } : {}), ...(publicUrl ? { publicUrl } : {}) },
      now().getTime(),
    );
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

  return {
    start: startBatch,
    deliver: deliverToBatch,
    async finish(record, thread) {
      try {
        await finishBatch(record, thread);
      } catch (err) {
        if (classifySlackError(err).kind === 'refused') forgetBatch(record.task.id);
        throw err;
      }
      forgetBatch(record.task.id);
    },
    has: (taskId) => batches.has(taskId),
    keepCurrent: (taskId) => scheduleBatch(taskId),
    refresh() {
      for (const taskId of batches.keys()) scheduleBatch(taskId);
    },
    async stop() {
      for (const b of batches.values()) clearTimeout(b.timer);
      await Promise.all([...batches.values()].map((b) => b.turn));
    },
  };
}
