/**
 * The notifier records each post in ocp_slack. When NATS cannot take that
 * record (a nats-server restart: the KV write times out), the post is out
 * already, so the record is tried again rather than the event put back — a
 * redelivery would post it a second time (found by `npm run chaos`: a second
 * parent message, repeated thread replies). And a parent update that cannot
 * read the task is tried again soon, not at the next 30 s refresh.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type KV, type KvEntry, NatsError } from 'nats';
import pino from 'pino';
import type { Config } from '../../src/config.js';
import type { TaskEvent } from '../../src/contracts/events.js';
import { builtinRunbooks, RESTART } from '../../src/core/runbooks/builtin.js';
import type { Runbook } from '../../src/core/runbooks/runbook.js';
import { planTask } from '../../src/core/task.js';
import { addSteps, type TaskRecord } from '../../src/core/task-record.js';
import { createBatchPostsStore, createDeliveryStates } from '../../src/nats/delivery-states.js';
import { createOrderedDelivery } from '../../src/notify/ordered-delivery.js';
import { type ChatApi, createSlackNotifier } from '../../src/slack/notifier.js';
import type { TaskStore } from '../../src/tasks/ports.js';

const CHANNEL = 'C0DEF';

function record(): TaskRecord {
  const plan = planTask({
    runbook: builtinRunbooks.find((r) => r.name === RESTART) as Runbook,
    hosts: [{ id: 101, agentHome: '/h/ocp_agent' }],
    ids: [1, 2, 3, 4, 5, 6],
    creator: 'nats:chaos',
    executor: '127.0.0.1',
    now: new Date(),
  });
  return {
    task: plan.task,
    ...addSteps(
      { steps: {} },
      Object.fromEntries(
        Object.entries(plan.steps).map(([id, r]) => [
          id,
          { hostId: r.hostId, plan: { runbook: RESTART, step: r.step, digest: 'd' } },
        ]),
      ),
      { '101': 'h' },
    ),
    requestId: 'r1',
    traceId: '0123456789abcdef',
    eventSeq: 2,
    publishedSeq: 2,
    outbox: [],
  };
}

/** The task as it ends SUCCESSFUL, after 11 events. */
function endedRecord(): TaskRecord {
  const r = record();
  return {
    ...r,
    task: {
      ...r.task,
      status: 'SUCCESSFUL',
      subtasks: r.task.subtasks.map((s) => ({ ...s, status: 'SUCCESSFUL' as const })),
    },
    eventSeq: 12,
    publishedSeq: 12,
  };
}

/** ocp_slack in memory; the first `failures` writes time out as they do while nats-server is down. */
function threadsKv(failures: number) {
  const values = new Map<string, { value: Uint8Array; revision: number }>();
  let revision = 0;
  let failing = failures;
  const entry = (key: string): KvEntry | null => {
    const v = values.get(key);
    return v ? ({ key, value: v.value, revision: v.revision, operation: 'PUT' } as unknown as KvEntry) : null;
  };
  const write = (key: string, value: Uint8Array, expected: number | undefined) => {
    if (failing > 0) {
      failing -= 1;
      throw new Error('TIMEOUT');
    }
    const current = values.get(key)?.revision;
    if (expected === undefined ? current !== undefined : current !== expected) {
      // as nats.js raises it: the server's JetStream code in api_error
      throw Object.assign(new NatsError('wrong last sequence', '400'), {
        api_error: { code: 400, err_code: 10071, description: 'wrong last sequence' },
      });
    }
    revision += 1;
    values.set(key, { value, revision });
    return revision;
  };
  const kv = {
    get: async (key: string) => entry(key),
    create: async (key: string, value: Uint8Array) => write(key, value, undefined),
    update: async (key: string, value: Uint8Array, rev: number) => write(key, value, rev),
  };
  return { kv: kv as unknown as KV, values };
}

function fakeMsg(event: TaskEvent) {
  const seen: string[] = [];
  const msg = {
    subject: `ocp.events.task.${event.taskId}`,
    json: () => event,
    ack: () => seen.push('ack'),
    nak: () => seen.push('nak'),
    term: () => seen.push('term'),
    working: () => seen.push('working'),
  };
  return { msg: msg as unknown as Parameters<ReturnType<typeof createOrderedDelivery>['handle']>[0], seen };
}

function setup(opts: { threadFailures?: number; ended?: boolean; updateFailures?: number } = {}) {
  let updateFailures = opts.updateFailures ?? 0;
  const rec = opts.ended ? endedRecord() : record();
  const storeFailures = { left: 0 };
  const get = async () => {
    if (storeFailures.left > 0) {
      storeFailures.left -= 1;
      throw new Error('TIMEOUT');
    }
    return { record: rec, revision: 1 };
  };
  // A single-host task: one record, whichever way it is read.
  const store = { get, top: get } as unknown as TaskStore;
  const posts: Array<Record<string, unknown>> = [];
  const updates: Array<Record<string, unknown>> = [];
  const client: ChatApi = {
    chat: {
      postMessage: (async (args: Record<string, unknown>) => {
        posts.push(args);
        return { ok: true, ts: `1.${posts.length}` };
      }) as unknown as ChatApi['chat']['postMessage'],
      update: (async (args: Record<string, unknown>) => {
        if (updateFailures > 0) {
          updateFailures -= 1;
          throw new Error('socket hang up');
        }
        updates.push(args);
        return { ok: true };
      }) as unknown as ChatApi['chat']['update'],
    },
  };
  const threads = threadsKv(opts.threadFailures ?? 0);
  const config = {
    slack: { command: '/ocp-agent', defaultChannel: CHANNEL },
    web: {},
    env: { SLACK_API_URL: 'https://slack.com/api/' },
    hosts: [{ id: 101, name: 'sim-host-101' }],
  } as unknown as Config;
  const logger = pino({ level: 'silent' });
  const notifier = createOrderedDelivery({
    notifier: createSlackNotifier({
      config,
      store,
      batchPosts: createBatchPostsStore(threads.kv),
      logs: { get: async () => undefined },
      client,
      respond: async () => undefined,
      logger,
    }),
    states: createDeliveryStates(threads.kv),
    tasks: store,
    firstEventPassed: async () => false,
    rejectedOrigin: async () => undefined,
    logger,
  });
  const event: TaskEvent = {
    type: 'task.running',
    taskId: rec.task.id,
    status: 'RUNNING',
    at: rec.task.startTime,
    traceId: rec.traceId,
    seq: 1,
    task: rec.task,
  };
  return { notifier, posts, updates, threads, event, storeFailures };
}

describe('notifier: recording a post while NATS is away', () => {
  test('a record that times out is tried again; the event is not put back, nor posted twice', async () => {
    const { notifier, posts, threads, event } = setup({ threadFailures: 1 });
    try {
      const first = fakeMsg(event);
      await notifier.handle(first.msg);
      assert.equal(posts.length, 1, 'the parent is posted');
      assert.deepEqual(first.seen, ['working', 'ack'], 'kept its lease while retrying, then acknowledged');
      assert.equal(JSON.parse(new TextDecoder().decode(threads.values.get('task.1')?.value)).lastSeq, 1);

      // Had it been put back, the redelivery would find no record and post again.
      const again = fakeMsg(event);
      await notifier.handle(again.msg);
      assert.equal(posts.length, 1, 'posted once');
      assert.deepEqual(again.seen, ['ack']);
    } finally {
      notifier.stop();
    }
  });

  test('the same event delivered again while its post is still being recorded is not posted twice', async () => {
    // A nats-server that crashed may deliver an event again while the first
    // delivery still retries the record of its post.
    const { notifier, posts, event } = setup({ threadFailures: 1 });
    try {
      const first = fakeMsg(event);
      const handling = notifier.handle(first.msg);
      while (posts.length === 0) await new Promise((r) => setTimeout(r, 10));
      const again = fakeMsg(event);
      await notifier.handle(again.msg);
      assert.deepEqual(again.seen, ['nak'], 'put back while the first delivery is in hand');
      await handling;
      assert.equal(first.seen.at(-1), 'ack');
      const third = fakeMsg(event);
      await notifier.handle(third.msg);
      assert.deepEqual(third.seen, ['ack'], 'once recorded, a delivery is only acknowledged');
      assert.equal(posts.length, 1, 'posted once');
    } finally {
      notifier.stop();
    }
  });

  test('a record that got through unanswered (a conflict on the retry) counts as recorded', async () => {
    const { notifier, posts, threads, event } = setup();
    try {
      // The first write lands, but its answer is lost: the retry then conflicts.
      const create = threads.kv.create.bind(threads.kv);
      let calls = 0;
      threads.kv.create = (async (key: string, value: Uint8Array) => {
        calls += 1;
        const rev = await create(key, value);
        if (calls === 1) throw new Error('TIMEOUT');
        return rev;
      }) as KV['create'];
      const m = fakeMsg(event);
      await notifier.handle(m.msg);
      assert.equal(posts.length, 1);
      assert.equal(m.seen.at(-1), 'ack');
    } finally {
      notifier.stop();
    }
  });

  test('a parent update that cannot read the task is tried again within seconds', async () => {
    const { notifier, updates, event, storeFailures } = setup();
    try {
      await notifier.handle(fakeMsg(event).msg);
      // The update due about a second after the post cannot read the task (NATS away)…
      storeFailures.left = 1;
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(storeFailures.left, 0, 'the update tried to read the task');
      assert.equal(updates.length, 0);
      // …and is tried again 2 s later, not at the next 30 s refresh.
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(updates.length, 1, 'the parent was updated');
    } finally {
      notifier.stop();
    }
  });
});

describe('notifier: an ended task’s parent', () => {
  /** The thread as a notifier left it: parent posted, everything up to the final event recorded. */
  function threadSoFar(threads: ReturnType<typeof threadsKv>) {
    const state = { channel: CHANNEL, parentTs: '1.1', lastSeq: 11 };
    threads.values.set('task.1', { value: new TextEncoder().encode(JSON.stringify(state)), revision: 1 });
  }
  const finalEvent = (e: TaskEvent): TaskEvent => ({ ...e, type: 'task.successful', status: 'SUCCESSFUL', seq: 12 });
  const shownEnded = (u: Record<string, unknown> | undefined) => /SUCCESSFUL/.test(JSON.stringify(u ?? {}));

  test('shows the end before the final event is acknowledged: a notifier killed right after leaves nothing RUNNING', async () => {
    const { notifier, updates, posts, threads, event } = setup({ ended: true });
    threadSoFar(threads);
    const m = fakeMsg(finalEvent(event));
    await notifier.handle(m.msg);
    notifier.stop(); // killed: no timer of this process will ever fire
    assert.equal(posts.length, 1, 'the final reply');
    assert.ok(shownEnded(updates.at(-1)), 'the parent shows the end');
    assert.equal(m.seen.at(-1), 'ack');
  });

  test('an end not shown before a failure is shown by the next delivery of the final event, with no reply twice', async () => {
    const { notifier, updates, posts, threads, event } = setup({ ended: true, updateFailures: 1 });
    threadSoFar(threads);
    const first = fakeMsg(finalEvent(event));
    await assert.rejects(notifier.handle(first.msg), /socket hang up/, 'not acknowledged: delivered again');
    notifier.stop(); // and the process dies
    assert.equal(posts.length, 1, 'the final reply is out');
    assert.equal(updates.length, 0);

    const restarted = setup({ ended: true });
    restarted.threads.values.set('task.1', threads.values.get('task.1')!);
    const again = fakeMsg(finalEvent(event));
    await restarted.notifier.handle(again.msg);
    restarted.notifier.stop();
    assert.equal(restarted.posts.length, 0, 'the final reply is not posted twice');
    assert.ok(shownEnded(restarted.updates.at(-1)), 'the parent shows the end');
    assert.equal(again.seen.at(-1), 'ack');
  });
});
