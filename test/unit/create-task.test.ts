/**
 * Creating a task, on in-memory ports (test/helpers/memory-ports.ts): what a
 * requester hears when the store never says whether their task was stored,
 * and when their request is sent again.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/config.js';
import { ErrorCode } from '../../src/errors.js';
import { type CreateTaskInput, createTask, RepeatedRejection } from '../../src/tasks/create-task.js';
import { StoreOutcomeUnknown } from '../../src/tasks/ports.js';
import { memoryDeps } from '../helpers/memory-ports.js';

const config = parseConfig(
  { hosts: [{ id: 101, name: 'h1', address: '127.0.0.1', agentHome: '/home/admin/ocp_agent' }] },
  {},
  'test.yml',
  '/tmp',
);

const request = (requestId: string): CreateTaskInput => ({
  operation: 'restart',
  hostIds: [101],
  creator: 'nats:ops',
  requestId,
  traceId: '0123456789abcdef',
});

describe('createTask', () => {
  test('a task whose storing was never confirmed keeps its host; the same request sent again makes that task', async () => {
    const { deps, queued } = memoryDeps(config);
    const create = deps.store.create;
    let answersLost = 1;
    deps.store = {
      ...deps.store,
      create: (record) =>
        answersLost-- > 0
          ? Promise.reject(new StoreOutcomeUnknown(record.task.id, new Error('TIMEOUT')))
          : create(record),
    };

    const unknown = await createTask(deps, request('req-a')).then(
      () => assert.fail('the store never answered: no task to show'),
      (err: unknown) => err,
    );
    assert.ok(unknown instanceof StoreOutcomeUnknown);
    // It may exist and run: the host is not given to anyone else meanwhile.
    await assert.rejects(
      createTask(deps, request('req-b')),
      (err: { code?: number; message: string }) =>
        err.code === ErrorCode.hostBusy && err.message.endsWith(`host 101 (h1): task ${unknown.taskId}`),
    );
    const again = await createTask(deps, request('req-a'));
    assert.equal(again.record.task.id, unknown.taskId, 'the ids the request reserved the first time');
    assert.equal(again.repeated, false);
    assert.deepEqual(
      queued.map((w) => w.taskId),
      [unknown.taskId],
      'its first step is queued',
    );
  });

  test('a request refused for a busy host is refused again when sent again, even once the host is free', async () => {
    const { deps } = memoryDeps(config);
    const first = await createTask(deps, request('req-a'));
    const refusal = /an agent operation already runs on host 101 \(h1\): task \d+/;
    await assert.rejects(createTask(deps, request('req-b')), refusal);
    await deps.locks.release(101, first.record.task.id);
    await assert.rejects(
      createTask(deps, request('req-b')),
      (err: Error & { code?: number }) =>
        err instanceof RepeatedRejection && err.code === ErrorCode.hostBusy && refusal.test(err.message),
    );
  });
});
