/** A batch in parts (core/task-layout.ts): split and assembled back, events per chain, bitmaps. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { builtinRunbooks, RESTART } from '../../src/core/runbooks/builtin.js';
import { completeSubtask, planTask, startSubtask } from '../../src/core/task.js';
import {
  assemble,
  bitOf,
  type ChainRecord,
  chainChange,
  chainScoped,
  countBits,
  emptyBits,
  headChange,
  splitDraft,
  withBits,
} from '../../src/core/task-layout.js';

const runbook = builtinRunbooks.find((r) => r.name === RESTART)!;
const now = new Date('2026-12-03T10:00:00Z');

function batch(hosts: number, maxParallel?: number) {
  const plan = planTask({
    runbook,
    hosts: Array.from({ length: hosts }, (_, k) => ({ id: 101 + k, agentHome: '/home/admin/ocp_agent' })),
    ids: Array.from({ length: 1 + hosts * runbook.steps.length }, (_, i) => 1000 + i),
    creator: 'ops',
    executor: '10.0.0.1',
    now,
    ...(maxParallel === undefined ? {} : { maxParallel }),
  });
  const steps = Object.fromEntries(
    Object.entries(plan.steps).map(([id, s]) => [id, { hostId: s.hostId, plan: s.step }]),
  );
  const plans = runbook.steps.map((_, step) => ({ runbook: RESTART, step, digest: `d${step}` }));
  const hostDigests = Object.fromEntries(Array.from({ length: hosts }, (_, k) => [String(101 + k), `h${k}`]));
  return { task: plan.task, steps, plans, hostDigests, requestId: 'r', traceId: 't' };
}

describe('a batch in parts', () => {
  it('splits into a head and one chain per host, and assembles back to the same record', () => {
    const draft = batch(4);
    const { head, chains } = splitDraft(draft, { maxParallel: 2 });
    assert.equal(head.chains, 4);
    assert.equal('subtasks' in head.task, false);
    assert.deepEqual(
      chains.map((c) => [c.idx, c.hostId, c.subtasks.length]),
      [
        [0, 101, 5],
        [1, 102, 5],
        [2, 103, 5],
        [3, 104, 5],
      ],
    );
    const h = headChange(undefined, head, now);
    const cs = chains.map((c) => chainChange(undefined, c, { now, traceId: 't' }));
    const whole = assemble(h, cs);
    assert.deepEqual(whole.task, draft.task);
    assert.deepEqual(whole.steps, draft.steps);
    assert.deepEqual(whole.hostDigests, draft.hostDigests);
  });

  it('numbers the head’s events and each chain’s on their own, with the chain named', () => {
    const { head, chains } = splitDraft(batch(2), {});
    const h = headChange(undefined, head, now);
    assert.deepEqual(
      h.outbox.map((e) => [e.seq, e.type]),
      [[1, 'task.running']],
    );
    const c0 = chainChange(undefined, chains[0]!, { now, traceId: 't' });
    assert.deepEqual(
      c0.outbox.map((e) => [e.seq, e.type, e.chain]),
      [[1, 'subtask.ready', 0]],
    );
    // The chain's executor ends its first subtask and starts the next in one change.
    const scoped = chainScoped(h, c0);
    const first = scoped.task.subtasks[0]!.id;
    let task = startSubtask(scoped.task, first, 'x', now);
    const running = chainChange(c0, { ...c0, subtasks: task.subtasks }, { now, traceId: 't' });
    task = completeSubtask(task, first, 'SUCCESSFUL', now);
    task = startSubtask(task, task.subtasks[1]!.id, 'x', now);
    const next = chainChange(running as ChainRecord, { ...running, subtasks: task.subtasks }, { now, traceId: 't' });
    assert.deepEqual(
      next.outbox.map((e) => [e.seq, e.type]),
      [
        [1, 'subtask.ready'],
        [2, 'subtask.running'],
        [3, 'subtask.successful'],
        [4, 'subtask.running'],
      ],
    );
  });

  it('shows an opened chain’s first subtask READY until an executor takes it', () => {
    const { head, chains } = splitDraft(batch(3, 1), { maxParallel: 1 });
    const h = headChange(undefined, head, now);
    const cs = chains.map((c) => chainChange(undefined, c, { now, traceId: 't' }));
    const progress = { opened: 2, rested: withBits(emptyBits(3), new Map([[0, true]])), failed: emptyBits(3) };
    const firsts = assemble(h, cs, progress).task.subtasks.filter((s) => s.seriesId === 0);
    assert.deepEqual(
      firsts.map((s) => s.status),
      ['READY', 'READY', 'PENDING'],
    );
  });

  it('keeps bitmaps of chains', () => {
    let bits = emptyBits(5000);
    bits = withBits(
      bits,
      new Map([
        [0, true],
        [4999, true],
        [17, true],
      ]),
    );
    assert.equal(countBits(bits), 3);
    assert.ok(bitOf(bits, 4999) && bitOf(bits, 17) && !bitOf(bits, 18));
    assert.equal(countBits(withBits(bits, new Map([[17, false]]))), 2);
  });
});
