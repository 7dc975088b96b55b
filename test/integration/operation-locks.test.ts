/**
 * SPEC §7: "A failed or concurrent operation never frees a host that another
 * part of the task still holds; a request answered with an error leaves
 * nothing behind that runs later." Real stack: nats-server, sshd hosts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DiscardPolicy } from 'nats';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import { createLogger } from '../../src/logger.js';
import { type Service, startService } from '../../src/service.js';
import { apiClient } from '../helpers/http.js';
import { type ReplyDropper, startReplyDropper } from '../helpers/nats-reply-dropper.js';
import { taskEvents } from '../helpers/requests.js';
import { clearFaults, readCalls, setFault } from '../helpers/sim-agent.js';
import { type Stack, startStack, waitForTask } from '../helpers/stack.js';

describe('task operations and host locks', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  before(async () => {
    stack = await startStack({ hosts: 3, stepTimeouts: { 'Stop all OCP agent processes': 30 } });
    api = apiClient((await stack.startService()).httpPort as number);
  });
  after(async () => stack?.stop());
  const host = (i: number) => stack.sshd.hosts[i]!;

  it('concurrent skips of one failed chain leave the hosts still running locked', async () => {
    const [failing, busy] = [host(0), host(1)];
    setFault(failing.agentHome, 'restart', 'fail');
    setFault(busy.agentHome, 'stop', 'slow', 12);
    const batch = await api<OcpTask>('POST', '/compute/hosts/batchRestartAgents', {
      body: { hostIds: [failing.id, busy.id] },
    });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    const taskId = batch.body.data.id;
    const failedChain = (t: OcpTask) => t.subtasks.filter((s) => s.parallelIdx === 0);
    const busyStop = (t: OcpTask) =>
      t.subtasks.find((s) => s.parallelIdx === 1 && s.name === 'Stop all OCP agent processes');
    const running = await waitForTask(
      stack.nc,
      taskId,
      (t) => failedChain(t).some((s) => s.status === 'FAILED') && busyStop(t)?.status === 'RUNNING',
    );
    clearFaults(failing.agentHome);
    const failed = failedChain(running).find((s) => s.status === 'FAILED')!;

    // Several operators click Skip at the same moment: one wins, the others are told 409.
    const answers = await Promise.all(
      Array.from({ length: 6 }, () =>
        api<OcpTask>('POST', `/api/v2/tasks/instances/${taskId}/subtasks/${failed.id}/skip`),
      ),
    );
    assert.deepEqual(
      answers.map((a) => a.status).sort(),
      [200, 409, 409, 409, 409, 409],
      answers.map((a) => JSON.stringify(a.body.error ?? a.body.data.status)).join('\n'),
    );

    // The host whose "Stop all" still runs is still the batch's: a new request is refused, naming it.
    const intruder = await api<OcpTask>('POST', `/compute/hosts/${busy.id}/agent/restart`);
    assert.equal(intruder.status, 409, `a restart of a host mid-step was ${intruder.status}`);
    assert.equal(intruder.body.error.code, 40000);
    assert.match(intruder.body.error.message, new RegExp(`task ${taskId}`));

    clearFaults(busy.agentHome);
    assert.equal((await waitForTask(stack.nc, taskId, undefined, 60_000)).status, 'SUCCESSFUL');
  });
});

describe('a request whose announcement fails', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  before(async () => {
    stack = await startStack({ hosts: 1, leaseSeconds: 2 });
    api = apiClient((await stack.startService()).httpPort as number);
  });
  after(async () => stack?.stop());

  it('is either answered with its task, which runs, or refused with nothing left to run', async () => {
    const h = stack.sshd.hosts[0]!;
    const jsm = await stack.nc.jetstreamManager();
    // One event in the stream first, so that "as many as now" is a limit (0 would mean none).
    await stack.js.publish('ocp.events.request.warm-up', new TextEncoder().encode('{}'));
    const { config, state } = await jsm.streams.info('OCP_EVENTS');
    // The audit stream refuses every new event (full, discarding new), while the task bucket still takes writes.
    await jsm.streams.update('OCP_EVENTS', { ...config, max_msgs: state.messages, discard: DiscardPolicy.New });
    const a = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    await jsm.streams.update('OCP_EVENTS', config);

    if (a.status !== 200) {
      // Refused: nothing may run, not even later (the sweeper runs every two leases: wait for several).
      await new Promise((r) => setTimeout(r, 10_000));
      assert.deepEqual(
        readCalls(h.agentHome).map((c) => c.args),
        [],
        `answered ${a.status} ${a.body.error?.message}, yet the host ran steps`,
      );
      const again = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
      assert.equal(again.status, 200, 'the host was left free');
      await waitForTask(stack.nc, again.body.data.id);
      return;
    }
    // Accepted: the task runs to its end and its events are all on the audit stream, in order.
    const done = await waitForTask(stack.nc, a.body.data.id, undefined, 60_000);
    assert.equal(done.status, 'SUCCESSFUL');
    const events = await taskEvents(stack.nc, done.id);
    assert.equal(events[0]?.type, 'task.running');
    assert.deepEqual(
      events.map((e) => e.seq),
      events.map((_, i) => i + 1),
    );
  });

  it('a store that refuses writes (full) answers 503 at once and leaves the host free and nothing to run', async () => {
    const h = stack.sshd.hosts[0]!;
    const jsm = await stack.nc.jetstreamManager();
    const { config, state } = await jsm.streams.info('KV_ocp_tasks');
    assert.ok(state.messages > 0, 'the bucket holds a task already (the case above)');
    await jsm.streams.update('KV_ocp_tasks', { ...config, max_msgs: state.messages, discard: DiscardPolicy.New });
    const before = readCalls(h.agentHome).length;
    const refused = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    await jsm.streams.update('KV_ocp_tasks', config);
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 10000);
    // The host is free again, and the sweeper (every two leases) finds nothing of it to run.
    await new Promise((r) => setTimeout(r, 5000));
    assert.equal(readCalls(h.agentHome).length, before, 'nothing ran for the refused request');
    const next = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    assert.equal(next.status, 200, JSON.stringify(next.body.error));
    assert.equal((await waitForTask(stack.nc, next.body.data.id)).status, 'SUCCESSFUL');
  });
});

describe('a write whose answer is lost', () => {
  let stack: Stack;
  let dropper: ReplyDropper;
  let svc: Service;
  let api: ReturnType<typeof apiClient>;
  before(async () => {
    stack = await startStack({ hosts: 2 });
    dropper = await startReplyDropper(stack.nats.url);
    // The service talks to NATS through the proxy; the test reads the store directly.
    svc = await startService({ config: stack.config, logger: createLogger('warn'), natsUrl: dropper.url });
    api = apiClient(svc.httpPort as number);
  });
  after(async () => {
    await svc?.stop();
    await dropper?.stop();
    await stack?.stop();
  });

  it('creating a task: the answer is the task, stored once, and it runs', async () => {
    const h = stack.sshd.hosts[0]!;
    dropper.dropRepliesTo(/^\$KV\.ocp_tasks\.task\.\d+$/);
    const a = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    assert.deepEqual(dropper.dropped.length, 1, 'the store’s answer was lost');
    assert.equal(a.status, 200, JSON.stringify(a.body.error));
    assert.equal((await waitForTask(stack.nc, a.body.data.id)).status, 'SUCCESSFUL');
  });

  it('retrying a task: the answer is the task, retried once, and it runs', async () => {
    const h = stack.sshd.hosts[1]!;
    setFault(h.agentHome, 'restart', 'fail');
    const a = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    const failed = await waitForTask(stack.nc, a.body.data.id);
    assert.equal(failed.status, 'FAILED');
    clearFaults(h.agentHome);
    const before = dropper.dropped.length;
    dropper.dropRepliesTo(new RegExp(`^\\$KV\\.ocp_tasks\\.task\\.${failed.id}$`));
    const retried = await api<OcpTask>('POST', `/api/v2/tasks/instances/${failed.id}/retry`);
    assert.equal(dropper.dropped.length, before + 1, 'the store’s answer was lost');
    assert.equal(retried.status, 200, JSON.stringify(retried.body.error));
    const done = await waitForTask(stack.nc, failed.id);
    assert.equal(done.status, 'SUCCESSFUL');
    assert.deepEqual([done.operation, done.subtasks[1]!.runTime], ['RETRY', 2], 'retried once');
  });
});
