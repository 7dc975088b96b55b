/**
 * What operators do to a store by hand — remove a task, reset the id counter —
 * must not wedge the service or make it answer with the wrong task. Real
 * nats-server and sshd hosts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import { apiClient } from '../helpers/http.js';
import { accepted, newRequestId, request } from '../helpers/requests.js';
import { clearCalls, readCalls } from '../helpers/sim-agent.js';
import { type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

describe('a store changed by hand', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ hosts: 2 });
  });
  after(async () => stack?.stop());
  const host = (i: number) => stack.sshd.hosts[i]!;

  // First, so that the counter, reset, hands out the old task's id again.
  it('after the id counter is reset, a new request gets a new task that runs, not an old one', async () => {
    const h = host(0);
    let svc = await stack.startService();
    let api = apiClient(svc.httpPort as number);
    const old = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    assert.equal(old.status, 200);
    await waitForTask(stack.nc, old.body.data.id);
    await svc.stop();

    // The id bucket is reset (deleted; the service makes it anew at start-up).
    const jsm = await stack.nc.jetstreamManager();
    await jsm.streams.delete('KV_ocp_ids');
    clearCalls(h.agentHome);
    svc = await stack.startService();
    api = apiClient(svc.httpPort as number);
    const fresh = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    assert.equal(fresh.status, 200, JSON.stringify(fresh.body.error));
    assert.equal(fresh.body.data.status, 'RUNNING', 'a new task, not an old one');
    assert.notEqual(fresh.body.data.id, old.body.data.id, 'a fresh id');
    const done = await waitForTask(stack.nc, fresh.body.data.id);
    assert.equal(done.status, 'SUCCESSFUL');
    assert.ok(
      readCalls(h.agentHome).some((c) => c.phase === 'begin' && c.args === 'restart pos_proxy'),
      'the host ran the new task',
    );
    await svc.stop();
  });

  it('a request seen again after its task was removed is settled, not redelivered forever', async () => {
    const svc = await stack.startService();
    const requestId = newRequestId();
    const first = accepted(
      await request(stack.nc, stack.js, 'restart', { hostId: host(0).id, creator: 'ops', requestId }),
    );
    await waitForTask(stack.nc, first.taskId);
    const tasks = await stack.js.views.kv('ocp_tasks');
    await tasks.delete(`task.${first.taskId}`);

    // The same request again (another message id, so the stream keeps it), then a new one behind it.
    await stack.js.publish('ocp.cmd.agent.restart', JSON.stringify({ hostId: host(0).id, creator: 'ops', requestId }), {
      msgID: `${requestId}-again`,
    });
    const next = accepted(
      await request(stack.nc, stack.js, 'restart', { hostId: host(1).id, creator: 'ops', requestId: newRequestId() }),
    );
    await waitForTask(stack.nc, next.taskId);
    const jsm = await stack.nc.jetstreamManager();
    const intake = await waitFor('the intake to settle every command', async () => {
      const info = await jsm.consumers.info('OCP_CMD', 'intake');
      return info.num_ack_pending === 0 && info.num_pending === 0 ? info : undefined;
    });
    assert.equal(intake.num_redelivered, 0, 'no command was delivered again');
    await svc.stop();
  });
});
