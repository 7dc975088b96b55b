/**
 * SPEC §7: at most one agent operation per host, a second request refused naming
 * the running task — however long the first waits. Host locks once lapsed after
 * the lease while their task waited (the chaos soak found two tasks' steps
 * interleaved on a host after a nats-server restart); now only the holder frees
 * a lock, or it is taken over once the holder has ended.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import { apiClient } from '../helpers/http.js';
import { type Stack, startStack, waitForTask } from '../helpers/stack.js';

const LEASE_SECONDS = 2;

describe('host lock', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ hosts: 1, leaseSeconds: LEASE_SECONDS });
  });
  after(async () => {
    await stack?.stop();
  });

  it('keeps a host for a task that waits longer than the lease, then frees it when the task ends', async () => {
    // The API alone: nothing runs the task yet, as when every executor is busy or away.
    const api = await stack.startService('api');
    const call = apiClient(api.httpPort as number);
    const hostId = stack.sshd.hosts[0]!.id;
    const first = await call<OcpTask>('POST', `/compute/hosts/${hostId}/agent/restart`);
    assert.equal(first.status, 200);

    await new Promise((r) => setTimeout(r, (LEASE_SECONDS * 2 + 1) * 1000));
    const second = await call('POST', `/compute/hosts/${hostId}/agent/stop`);
    assert.equal(second.body.error?.code, 40000, JSON.stringify(second.body));
    assert.match(second.body.error.message, new RegExp(`task ${first.body.data.id}\\b`));

    await stack.startService('executor');
    const task = await waitForTask(stack.nc, first.body.data.id);
    assert.equal(task.status, 'SUCCESSFUL');
    const third = await call<OcpTask>('POST', `/compute/hosts/${hostId}/agent/stop`);
    assert.equal(third.status, 200, JSON.stringify(third.body));
    assert.equal((await waitForTask(stack.nc, third.body.data.id)).status, 'SUCCESSFUL');
  });
});

describe('host lock of an ended task', () => {
  // A lease long enough that a loaded machine cannot outlast it between the
  // lock's write and the request that finds it (a 2 s one did, in CI).
  let stack: Stack;
  before(async () => {
    stack = await startStack({ hosts: 1, leaseSeconds: 30 });
  });
  after(async () => {
    await stack?.stop();
  });

  it('a task that has ended gives its host up at once; one being set running again keeps it', async () => {
    const api = await stack.startService('api');
    await stack.startService('executor');
    const call = apiClient(api.httpPort as number);
    const hostId = stack.sshd.hosts[0]!.id;
    const locks = await stack.nc.jetstream().views.kv('ocp_host_locks');
    const ended = await call<OcpTask>('POST', `/compute/hosts/${hostId}/agent/start`);
    assert.equal(ended.status, 200, JSON.stringify(ended.body));
    assert.equal((await waitForTask(stack.nc, ended.body.data.id)).status, 'SUCCESSFUL');

    // Its executor has stored the end and not yet freed the host (a moment, in
    // which a user who saw SUCCESSFUL asks again): the next request gets the host.
    await locks.put(`host.${hostId}`, JSON.stringify({ taskId: ended.body.data.id, at: Date.now() }));
    const next = await call<OcpTask>('POST', `/compute/hosts/${hostId}/agent/start`);
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.equal((await waitForTask(stack.nc, next.body.data.id)).status, 'SUCCESSFUL');

    // A Retry, Skip or Rollback takes an ended task's hosts before it stores its
    // change: the task keeps them meanwhile.
    await locks.put(`host.${hostId}`, JSON.stringify({ taskId: next.body.data.id, at: Date.now(), reopening: true }));
    const refused = await call('POST', `/compute/hosts/${hostId}/agent/stop`);
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.match(refused.body.error.message, new RegExp(`task ${next.body.data.id}\\b`));
    await locks.delete(`host.${hostId}`);
  });
});
