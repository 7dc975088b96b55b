/** The rolling rules (core/rolling.ts): which chains of a batch may start next, and when it has ended. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BatchOptionsInput } from '../../src/contracts/batch-options.js';
import type { OcpSubtask, OcpTask } from '../../src/contracts/ocp-task.js';
import {
  type BatchOptions,
  batchOver,
  endStopped,
  failureLimit,
  firstOpening,
  holdOf,
  openUpTo,
  type RollingState,
  resolveBatchOptions,
} from '../../src/core/rolling.js';
import { emptyBits, type Progress, rollingStateOf, withBits } from '../../src/core/task-layout.js';

const state = (s: Partial<RollingState>): RollingState => ({
  chains: 10,
  opened: 0,
  rested: 0,
  failed: 0,
  canaryFailed: false,
  canaryRested: true,
  paused: false,
  canceled: false,
  rollingBack: false,
  ...s,
});

describe('openUpTo: how far chains may open', () => {
  const cases: Array<[string, BatchOptions, Partial<RollingState>, number]> = [
    ['maxParallel slots', { maxParallel: 3 }, { opened: 3, rested: 1 }, 4],
    ['never past the batch', { maxParallel: 5 }, { opened: 8, rested: 8 }, 10],
    ['no maxParallel: all', {}, { opened: 2, rested: 2 }, 10],
    ['canary open first, alone', { maxParallel: 5, canary: 2 }, { opened: 0, canaryRested: false }, 2],
    ['canary bounded by maxParallel', { maxParallel: 1, canary: 3 }, { opened: 0, canaryRested: false }, 1],
    [
      'a canary still running: nothing past it',
      { maxParallel: 5, canary: 2 },
      { opened: 2, rested: 1, canaryRested: false },
      2,
    ],
    [
      'every canary succeeded: the rest',
      { maxParallel: 5, canary: 2 },
      { opened: 2, rested: 2, canaryRested: true },
      7,
    ],
    [
      'a canary failed: nothing',
      { maxParallel: 5, canary: 2 },
      { opened: 2, rested: 2, failed: 1, canaryFailed: true },
      2,
    ],
    ['paused: nothing', { maxParallel: 5 }, { opened: 5, rested: 5, paused: true }, 5],
    ['canceled: nothing', { maxParallel: 5 }, { opened: 5, rested: 5, canceled: true }, 5],
    ['at the failure limit: on', { maxParallel: 2, maxFailures: 1 }, { opened: 2, rested: 2, failed: 1 }, 4],
    ['past the failure limit: nothing', { maxParallel: 2, maxFailures: 1 }, { opened: 2, rested: 2, failed: 2 }, 2],
    ['a rollback opens nothing new', { maxParallel: 2 }, { opened: 2, rested: 2, rollingBack: true }, 2],
  ];
  for (const [name, options, s, expected] of cases) {
    test(name, () => assert.equal(openUpTo(options, state(s)), expected));
  }

  test('firstOpening: the canary, or maxParallel', () => {
    assert.equal(firstOpening({ maxParallel: 20 }, 6), 6);
    assert.equal(firstOpening({ maxParallel: 20, canary: 2 }, 6), 2);
    assert.equal(firstOpening({ maxParallel: 3 }, 100), 3);
  });
});

describe('failureLimit and holdOf', () => {
  test('a count, or a share rounded down', () => {
    assert.equal(failureLimit(undefined, 10), Number.POSITIVE_INFINITY);
    assert.equal(failureLimit(3, 10), 3);
    assert.equal(failureLimit('10%', 10), 1);
    assert.equal(failureLimit('5%', 19), 0);
    assert.equal(failureLimit('5%', 20), 1);
    assert.equal(failureLimit('0%', 20), 0);
    assert.equal(failureLimit('100%', 7), 7);
    assert.equal(failureLimit('33.4%', 3), 1);
  });

  test('the stops come before a pause', () => {
    assert.equal(holdOf({}, state({ paused: true, canceled: true })), 'canceled');
    assert.equal(holdOf({ maxFailures: 0 }, state({ paused: true, failed: 1 })), 'maxFailures');
    assert.equal(holdOf({}, state({ paused: true })), 'paused');
    assert.equal(holdOf({}, state({})), undefined);
  });
});

describe('batchOver', () => {
  test('every chain at rest', () => assert.equal(batchOver({}, state({ opened: 10, rested: 10 })), true));
  test('stopped with nothing running: over, the rest never started', () => {
    assert.equal(batchOver({ maxFailures: 0 }, state({ opened: 3, rested: 3, failed: 1 })), true);
    assert.equal(batchOver({ maxFailures: 0 }, state({ opened: 3, rested: 2, failed: 1 })), false, 'one runs');
  });
  test('paused with nothing running: not over, it waits', () => {
    assert.equal(batchOver({}, state({ opened: 3, rested: 3, paused: true })), false);
  });
});

describe('rollingStateOf: the progress read', () => {
  test('canary bits and counts', () => {
    const p: Progress = {
      opened: 3,
      rested: withBits(
        emptyBits(6),
        new Map([
          [0, true],
          [2, true],
        ]),
      ),
      failed: withBits(emptyBits(6), new Map([[2, true]])),
      paused: true,
    };
    const head = { chains: 6, options: { canary: 2 }, task: { operation: 'EXECUTE' } } as never;
    const s = rollingStateOf(head, p);
    assert.deepEqual(
      { rested: s.rested, failed: s.failed, canaryRested: s.canaryRested, canaryFailed: s.canaryFailed },
      { rested: 2, failed: 1, canaryRested: false, canaryFailed: false },
    );
    assert.equal(s.paused, true);
  });
});

describe('resolveBatchOptions', () => {
  test('the request over the defaults', () => {
    const r = resolveBatchOptions({ maxParallel: 20, canary: 0 }, { canary: 2, maxFailures: '5%' }, 6);
    assert.deepEqual(r, { ok: true, options: { maxParallel: 20, canary: 2, maxFailures: '5%' } });
  });
  test('a canary larger than the batch, named', () => {
    const r = resolveBatchOptions({ maxParallel: 20 }, { canary: 7 }, 6);
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.problem.field, 'canary');
      assert.match(r.problem.message, /canary: 7 is more than the batch's 6 hosts/);
    }
  });
  test('a configured canary larger than a small batch makes all its hosts canaries', () => {
    assert.deepEqual(resolveBatchOptions({ canary: 5 }, undefined, 3), { ok: true, options: { canary: 3 } });
  });
});

describe('BatchOptionsInput: the fields as requests give them', () => {
  const ok: Array<[unknown, unknown]> = [
    [{ canary: '2' }, { canary: 2 }],
    [{ maxFailures: 3 }, { maxFailures: 3 }],
    [{ maxFailures: '3' }, { maxFailures: 3 }],
    [{ maxFailures: '5%' }, { maxFailures: '5%' }],
    [{ maxFailures: '05.0%' }, { maxFailures: '5%' }],
    [{ maxParallel: 2000 }, { maxParallel: 2000 }],
  ];
  for (const [input, output] of ok)
    test(`takes ${JSON.stringify(input)}`, () => {
      assert.deepEqual(BatchOptionsInput.parse(input), output);
    });
  const bad: Array<[unknown, string]> = [
    [{ maxFailures: '120%' }, 'maxFailures'],
    [{ maxFailures: '-1' }, 'maxFailures'],
    [{ maxFailures: 1.5 }, 'maxFailures'],
    [{ canary: -1 }, 'canary'],
    [{ canary: 'two' }, 'canary'],
    [{ maxParallel: 0 }, 'maxParallel'],
    [{ maxParallel: 2001 }, 'maxParallel'],
  ];
  for (const [input, field] of bad)
    test(`refuses ${JSON.stringify(input)}, naming ${field}`, () => {
      const r = BatchOptionsInput.safeParse(input);
      assert.equal(r.success, false);
      assert.deepEqual(r.error?.issues[0]?.path, [field]);
    });
});

describe('endStopped', () => {
  const sub = (id: number, status: OcpSubtask['status'], operation: OcpSubtask['operation'] = 'EXECUTE') =>
    ({ id, status, operation }) as OcpSubtask;
  const task = (subtasks: OcpSubtask[], operation: OcpTask['operation'] = 'EXECUTE') =>
    ({ id: 1, status: 'RUNNING', operation, subtasks }) as unknown as OcpTask;
  const now = new Date('2026-01-01T00:00:00Z');
  test('FAILED, the hosts never started left PENDING', () => {
    const t = endStopped(task([sub(2, 'FAILED'), sub(3, 'PENDING')]), now);
    assert.equal(t.status, 'FAILED');
    assert.equal(t.subtasks[1]?.status, 'PENDING');
    assert.ok(t.finishTime);
  });
  test('a rollback that repaired every failed host: SUCCESSFUL', () => {
    const t = endStopped(
      task([sub(2, 'FAILED'), sub(3, 'PENDING'), sub(9, 'SUCCESSFUL', 'ROLLBACK')], 'ROLLBACK'),
      now,
    );
    assert.equal(t.status, 'SUCCESSFUL');
  });
});
