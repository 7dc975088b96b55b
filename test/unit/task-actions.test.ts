/** Task operations in allowed and refused states, above all: never two steps on one host at once. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import { builtinRunbooks } from '../../src/core/runbooks/builtin.js';
import { completeSubtask, planTask, startSubtask } from '../../src/core/task.js';
import {
  cancelSubtask,
  IllegalOperationError,
  retrySubtask,
  retryTask,
  rollbackTask,
  skipSubtask,
} from '../../src/core/task-actions.js';

const now = new Date('2026-01-01T00:00:00Z');
const restart = builtinRunbooks[0]!;
const ROLLBACK_STEPS = restart.steps.slice(3).map((s) => ({
  name: s.name,
  description: s.name,
  className: 'x',
  timeout: s.timeout,
}));

function plan(hosts = 1): OcpTask {
  const ids = Array.from({ length: 1 + 5 * hosts }, (_, i) => i + 1);
  return planTask({
    runbook: restart,
    hosts: Array.from({ length: hosts }, (_, i) => ({ id: 100 + i, agentHome: '/a' })),
    ids,
    creator: 'c',
    executor: 'e',
    now,
  }).task;
}

/** Run subtask `id` to `outcome`. */
function run(task: OcpTask, id: number, outcome: 'SUCCESSFUL' | 'FAILED'): OcpTask {
  return completeSubtask(startSubtask(task, id, 'e', now), id, outcome, now);
}

const active = (t: OcpTask) => t.subtasks.filter((s) => ['READY', 'RUNNING'].includes(s.status)).map((s) => s.name);

describe('task operations', () => {
  it('retrying a failed rollback retries only the rollback, never Stop and Start together', () => {
    let t = plan();
    t = run(run(t, 2, 'SUCCESSFUL'), 3, 'SUCCESSFUL');
    t = run(t, 4, 'FAILED'); // Stop all fails
    assert.equal(t.status, 'FAILED');
    t = rollbackTask(t, ROLLBACK_STEPS, [7, 8]);
    t = run(t, 7, 'FAILED'); // the rollback's Start all fails too
    assert.deepEqual([t.status, t.operation], ['FAILED', 'ROLLBACK']);
    const retried = retryTask(t);
    assert.deepEqual(active(retried), ['Start all OCP agent processes']);
    assert.equal(retried.operation, 'ROLLBACK');
    assert.equal(retried.subtasks.find((s) => s.id === 4)!.status, 'FAILED', 'the failed Stop all stays as it was');
    const done = run(run(retried, 7, 'SUCCESSFUL'), 8, 'SUCCESSFUL');
    assert.deepEqual([done.status, done.operation], ['SUCCESSFUL', 'ROLLBACK']);
    assert.throws(() => retrySubtask(t, 4), IllegalOperationError, 'not a restart step during a rollback');
  });

  it('refuses to retry or skip a subtask of a task that ended SUCCESSFUL', () => {
    let t = plan();
    t = run(t, 2, 'SUCCESSFUL');
    t = run(t, 3, 'SUCCESSFUL');
    t = run(t, 4, 'FAILED');
    t = run(run(rollbackTask(t, ROLLBACK_STEPS, [7, 8]), 7, 'SUCCESSFUL'), 8, 'SUCCESSFUL');
    assert.equal(t.status, 'SUCCESSFUL');
    assert.throws(() => retrySubtask(t, 4), /ended SUCCESSFUL/);
    assert.throws(() => skipSubtask(t, 4, now), /ended SUCCESSFUL/);
  });

  it('lets a failed batch chain be retried while other chains run, but not a chain still running', () => {
    let t = plan(2);
    t = run(t, 2, 'SUCCESSFUL'); // host 100: prepare
    t = run(t, 7, 'FAILED'); // host 101: prepare fails
    assert.equal(t.status, 'RUNNING');
    const again = retrySubtask(t, 7);
    assert.equal(again.subtasks.find((s) => s.id === 7)!.status, 'READY');
    assert.throws(() => retrySubtask(t, 3), /FAILED/, 'a READY subtask is not retried');
  });

  it('a rollback step canceled, then Retry: the rollback runs again; nothing left RUNNING with nothing to run', () => {
    let t = plan();
    t = run(t, 2, 'SUCCESSFUL');
    t = run(t, 3, 'FAILED'); // Restart pos proxy fails
    t = rollbackTask(t, ROLLBACK_STEPS, [7, 8]);
    t = startSubtask(t, 7, 'e', now);
    t = cancelSubtask(t, 7);
    t = completeSubtask(t, 7, 'FAILED', now); // the executor ends a canceled step FAILED
    assert.deepEqual([t.status, t.operation], ['FAILED', 'ROLLBACK']);
    const retried = retryTask(t);
    assert.deepEqual(active(retried), ['Start all OCP agent processes']);
  });

  it('refuses a Retry that would leave a task RUNNING with nothing to run', () => {
    let t = plan();
    t = run(t, 2, 'SUCCESSFUL');
    t = run(t, 3, 'FAILED');
    const noneFailed = {
      ...t,
      subtasks: t.subtasks.map((s) => (s.status === 'FAILED' ? { ...s, status: 'PENDING' as const } : s)),
    };
    assert.throws(() => retryTask(noneFailed), IllegalOperationError);
  });
});
