/**
 * Ordered delivery with a notifier that is not Slack: what reaches the
 * notifier, in which order, and what happens to each message (acked, put
 * back for how long). The Slack notifier's own cases are in
 * slack-notifier-record.test.ts and the Slack integration tests.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import type { RequestEvent, TaskEvent } from '../../src/contracts/events.js';
import type { Origin } from '../../src/contracts/origin.js';
import { builtinRunbooks, RESTART } from '../../src/core/runbooks/builtin.js';
import type { Runbook } from '../../src/core/runbooks/runbook.js';
import { planTask } from '../../src/core/task.js';
import type { TaskRecord } from '../../src/core/task-record.js';
import { createOrderedDelivery } from '../../src/notify/ordered-delivery.js';
import type { DeliveryFailure, DeliveryState, TaskNotifier } from '../../src/notify/ports.js';

interface Page {
  page: string;
  summary?: string;
}

/** A task of 11 events (restart: 5 subtasks), RUNNING. */
function record(): TaskRecord {
  const plan = planTask({
    runbook: builtinRunbooks.find((r) => r.name === RESTART) as Runbook,
    hosts: [{ id: 101, agentHome: '/h/ocp_agent' }],
    ids: [1, 2, 3, 4, 5, 6],
    creator: 'web:alice',
    executor: '127.0.0.1',
    now: new Date(),
  });
  return {
    task: plan.task,
    steps: {},
    requestId: 'r1',
    traceId: '0123456789abcdef',
    eventSeq: 11,
    publishedSeq: 11,
    outbox: [],
  };
}

class Refused extends Error {}
class Closed extends Error {}
class RateLimited extends Error {}

function setup(opts: { firstEventPassed?: boolean; origin?: Origin; eachChainEvent?: boolean } = {}) {
  const rec = record();
  /** What the notifier was asked to do, in order. */
  const seen: string[] = [];
  /** Failures the next calls throw, first first. */
  const failures: Error[] = [];
  const fail = () => {
    const err = failures.shift();
    if (err) throw err;
  };
  const notifier: TaskNotifier<Page> = {
    target: () => ({ page: 'p1' }),
    started: (t) => t.summary !== undefined,
    async start(r, t) {
      fail();
      seen.push(`start ${r.task.id}`);
      return { ...t, summary: 's1' };
    },
    async deliver(event, _r, t) {
      fail();
      seen.push(`deliver ${event.seq}`);
      return t;
    },
    async finish() {
      fail();
      seen.push('finish');
    },
    keepCurrent: () => undefined,
    ...(opts.eachChainEvent === undefined ? {} : { eachChainEvent: () => opts.eachChainEvent as boolean }),
    async rejected(origin, message) {
      seen.push(`rejected ${origin.user}: ${message}`);
    },
    classify(err): DeliveryFailure {
      if (err instanceof RateLimited) return { kind: 'retryLater', afterMs: 3000 };
      if (err instanceof Refused || err instanceof Closed) return { kind: 'refused', closed: err instanceof Closed };
      return { kind: 'transient' };
    },
    stop: () => undefined,
  };
  const states = new Map<number, { state: DeliveryState<Page>; revision: number }>();
  const chains = new Map<string, { lastSeq: number; revision: number }>();
  const delivery = createOrderedDelivery<Page>({
    notifier,
    states: {
      get: async (id) => states.get(id),
      async save(id, state, revision) {
        if (states.get(id)?.revision !== revision) return undefined;
        states.set(id, { state, revision: (revision ?? 0) + 1 });
        return (revision ?? 0) + 1;
      },
      getChain: async (id, chain) => chains.get(`${id}.${chain}`),
      async saveChain(id, chain, lastSeq, revision) {
        if (chains.get(`${id}.${chain}`)?.revision !== revision) return undefined;
        chains.set(`${id}.${chain}`, { lastSeq, revision: (revision ?? 0) + 1 });
        return (revision ?? 0) + 1;
      },
    },
    tasks: { top: async () => ({ record: rec, revision: 1 }) },
    firstEventPassed: async () => opts.firstEventPassed ?? false,
    rejectedOrigin: async () => opts.origin,
    logger: pino({ level: 'silent' }),
  });
  const event = (seq: number): TaskEvent => ({
    type: seq === 1 ? 'task.running' : 'subtask.successful',
    taskId: rec.task.id,
    ...(seq === 1 ? {} : { subtaskId: 2 }),
    status: seq === 1 ? 'RUNNING' : 'SUCCESSFUL',
    at: rec.task.startTime,
    traceId: rec.traceId,
    seq,
    task: rec.task,
  });
  /** Hand one message over; what became of it ('ack', 'nak 200', …). */
  async function send(subject: string, payload: unknown): Promise<string[]> {
    const fate: string[] = [];
    const msg = {
      subject,
      json: () => payload,
      ack: () => fate.push('ack'),
      nak: (ms?: number) => fate.push(`nak ${ms}`),
      term: () => fate.push('term'),
      working: () => fate.push('working'),
    };
    await delivery.handle(msg as unknown as Parameters<typeof delivery.handle>[0]);
    return fate;
  }
  const deliver = (seq: number) => send(`ocp.events.task.${rec.task.id}`, event(seq));
  const deliverInChain = (chain: number, seq: number) =>
    send(`ocp.events.task.${rec.task.id}`, { ...event(seq), type: 'subtask.successful', subtaskId: 2, chain });
  return { delivery, seen, failures, states, chains, deliver, deliverInChain, send, taskId: rec.task.id };
}

describe('ordered delivery', () => {
  test('an event ahead of its predecessor waits; each is delivered once, in order', async () => {
    const d = setup();
    assert.deepEqual(await d.deliver(2), ['nak 200'], 'put back: event 1 not handled yet');
    assert.deepEqual(await d.deliver(1), ['ack']);
    assert.deepEqual(await d.deliver(2), ['ack']);
    assert.deepEqual(await d.deliver(2), ['ack'], 'a redelivery is only acknowledged');
    assert.deepEqual(d.seen, ['start 1', 'deliver 2']);
  });

  test('a rate-limited event goes back for as long as the target asks, and is delivered after', async () => {
    const d = setup();
    await d.deliver(1);
    d.failures.push(new RateLimited());
    assert.deepEqual(await d.deliver(2), ['nak 3000']);
    assert.deepEqual(await d.deliver(2), ['ack']);
    assert.deepEqual(d.seen, ['start 1', 'deliver 2']);
  });

  test('an event refused for good is skipped; the next ones are not held up', async () => {
    const d = setup();
    await d.deliver(1);
    d.failures.push(new Refused());
    assert.deepEqual(await d.deliver(2), ['ack']);
    assert.deepEqual(await d.deliver(3), ['ack']);
    assert.deepEqual(d.seen, ['start 1', 'deliver 3']);
  });

  test('a target shut to us is not tried again for that task', async () => {
    const d = setup();
    d.failures.push(new Closed());
    assert.deepEqual(await d.deliver(1), ['ack']);
    assert.deepEqual(await d.deliver(2), ['ack']);
    assert.deepEqual(d.seen, []);
    assert.equal(d.states.get(d.taskId)?.state.disabled, true);
  });

  test('a transient failure is thrown, so the message is delivered again', async () => {
    const d = setup();
    d.failures.push(new Error('socket hang up'));
    await assert.rejects(d.deliver(1), /socket hang up/);
    assert.deepEqual(await d.deliver(1), ['ack']);
    assert.deepEqual(d.seen, ['start 1']);
  });

  test('a task met in the middle, its first event gone for good, starts from the stored task', async () => {
    const d = setup({ firstEventPassed: true });
    assert.deepEqual(await d.deliver(5), ['nak 0'], 'taken again at once as the next event');
    assert.deepEqual(await d.deliver(5), ['ack']);
    assert.deepEqual(d.seen, ['start 1', 'deliver 5']);
  });

  test('a batch’s chain events wait for their predecessor in the chain, each delivered once', async () => {
    const d = setup();
    await d.deliver(1);
    assert.deepEqual(await d.deliverInChain(3, 2), ['nak 200']);
    assert.deepEqual(await d.deliverInChain(3, 1), ['ack']);
    assert.deepEqual(await d.deliverInChain(3, 2), ['ack']);
    assert.deepEqual(await d.deliverInChain(3, 2), ['ack']);
    assert.deepEqual(d.seen, ['start 1', 'deliver 1', 'deliver 2']);
    assert.equal(d.chains.get(`${d.taskId}.3`)?.lastSeq, 2);
  });

  test('a notifier that writes batches from the store gets their chain events as they come, nothing recorded', async () => {
    const d = setup({ eachChainEvent: false });
    await d.deliver(1);
    assert.deepEqual(await d.deliverInChain(3, 2), ['ack'], 'not held back for its predecessor');
    assert.deepEqual(await d.deliverInChain(3, 1), ['ack']);
    assert.deepEqual(await d.deliverInChain(4, 1), ['ack']);
    assert.deepEqual(d.seen, ['start 1', 'deliver 2', 'deliver 1', 'deliver 1']);
    assert.equal(d.chains.size, 0, 'no place kept per chain');
    d.failures.push(new RateLimited());
    assert.deepEqual(await d.deliverInChain(4, 2), ['nak 3000'], 'a rate limit still puts it back');
  });

  test('a chain event that comes before its batch’s summary is out is dropped: the summary shows the batch as it stands', async () => {
    const d = setup({ eachChainEvent: false });
    assert.deepEqual(await d.deliverInChain(3, 1), ['ack']);
    assert.deepEqual(d.seen, []);
  });

  test('a rejected request is passed on with its origin', async () => {
    const d = setup({ origin: { door: 'web', user: 'alice' } });
    const rejected: RequestEvent = { type: 'rejected', requestId: 'r9', error: { code: 40000, message: 'host busy' } };
    assert.deepEqual(await d.send('ocp.events.request.r9', rejected), ['ack']);
    assert.deepEqual(d.seen, ['rejected alice: host busy']);
  });

  test('a payload that is no event is terminated, never redelivered', async () => {
    const d = setup();
    assert.deepEqual(await d.send(`ocp.events.task.${d.taskId}`, { seq: 'one' }), ['term']);
    assert.deepEqual(d.seen, []);
  });
});
