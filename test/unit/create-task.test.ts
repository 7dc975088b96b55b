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

  describe('by a selector (SPEC §10)', () => {
    const host = (id: number, labels: Record<string, string>) => ({
      id,
      name: `h${id}`,
      address: '127.0.0.1',
      labels,
    });
    const inventory = (...hosts: ReturnType<typeof host>[]) => parseConfig({ hosts }, {}, 'test.yml', '/tmp');
    const fleet = inventory(
      host(103, { cluster: 'ob1', zone: 'z2' }),
      host(101, { cluster: 'ob1', zone: 'z1' }),
      host(102, { cluster: 'ob2', zone: 'z1' }),
      host(104, { cluster: 'ob1', zone: 'z1' }),
    );
    const bySelector = (requestId: string, selector: CreateTaskInput['selector']): CreateTaskInput => ({
      operation: 'restart',
      selector: selector as never,
      creator: 'nats:ops',
      requestId,
      traceId: '0123456789abcdef',
    });

    test('runs on the matching hosts, in inventory order, and records the selector', async () => {
      const { deps } = memoryDeps(fleet);
      const { record } = await createTask(deps, bySelector('req-s', { cluster: 'ob1', zone: 'z1' }));
      assert.equal(record.task.name, 'Batch restart OCP agent');
      assert.deepEqual(record.task.context.listMap.host_ids, ['101', '104']);
      assert.equal(record.task.context.stringMap.selector, 'cluster=ob1,zone=z1');
      await assert.rejects(
        createTask(deps, bySelector('req-all', 'all')),
        (err: { code?: number; message: string }) =>
          err.code === ErrorCode.hostBusy && /101 \(h101\): task \d+, 104 \(h104\): task \d+/.test(err.message),
        'all takes in the hosts the first holds: busy',
      );
    });

    test('one matching host makes a task of the runbook, the selector recorded', async () => {
      const { deps } = memoryDeps(fleet);
      const { record } = await createTask(deps, bySelector('req-1', { cluster: 'ob2' }));
      assert.equal(record.task.name, 'Restart OCP agent');
      assert.equal(record.task.hostId, 102);
      assert.equal(record.task.context.stringMap.selector, 'cluster=ob2');
    });

    test('no match: 404 / 10002 naming selector, and nothing reserved', async () => {
      const { deps, requests } = memoryDeps(fleet);
      await assert.rejects(
        createTask(deps, bySelector('req-none', { cluster: 'ob9' })),
        (err: { code?: number; target?: string; message: string }) =>
          err.code === ErrorCode.notFound &&
          err.target === 'selector' &&
          err.message === 'selector cluster=ob9 matches no host: no host has the labels cluster=ob9',
      );
      assert.equal(await requests.get('req-none'), undefined);
    });

    test('resolved against the inventory of the moment; a request handled again runs on what it first matched', async () => {
      const { deps } = memoryDeps(fleet);
      const create = deps.store.create;
      let failures = 1;
      deps.store = {
        ...deps.store,
        create: (record) => (failures-- > 0 ? Promise.reject(new Error('refused')) : create(record)),
      };
      await assert.rejects(createTask(deps, bySelector('req-r', { zone: 'z1' })), /refused/);
      // The inventory changes before the request comes again: one more host matches.
      deps.config = inventory(
        ...fleet.hosts.map((h) => host(h.id, { ...h.labels })),
        host(105, { cluster: 'ob3', zone: 'z1' }),
      );
      const again = await createTask(deps, bySelector('req-r', { zone: 'z1' }));
      assert.deepEqual(again.record.task.context.listMap.host_ids, ['101', '102', '104']);
      // A new request matches the new inventory.
      const fresh = await createTask(deps, bySelector('req-new', { cluster: 'ob3' }));
      assert.equal(fresh.record.task.hostId, 105);
    });
  });
});
