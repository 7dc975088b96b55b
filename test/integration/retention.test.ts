/**
 * retention.* (SPEC §10): every stream and bucket says how long it keeps what
 * it holds, and finished tasks past retention.tasks leave the store, while a
 * running task stays however old. Real nats-server and sshd hosts.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DiscardPolicy, nanos } from 'nats';
import { parse, stringify } from 'yaml';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import type { Service } from '../../src/service.js';
import { removeExpiredTasks } from '../../src/tasks/retention.js';
import { apiClient } from '../helpers/http.js';
import { clearFaults, setFault } from '../helpers/sim-agent.js';
import { type Stack, startStack, waitForTask } from '../helpers/stack.js';

const DAY_MS = 86_400_000;

describe('retention', () => {
  let stack: Stack;
  let svc: Service;
  let api: ReturnType<typeof apiClient>;
  before(async () => {
    stack = await startStack({ hosts: 2 });
    const config = parse(readFileSync(stack.configPath, 'utf8'));
    writeFileSync(stack.configPath, stringify({ ...config, retention: { tasks: '2d', events: '30d' } }));
    svc = await stack.startService();
    api = apiClient(svc.httpPort as number);
  });
  after(async () => stack?.stop());

  it('gives every stream and bucket its configured max age, none where nothing may age out, and no dropping when full', async () => {
    const jsm = await stack.nc.jetstreamManager();
    const maxAge = async (stream: string) => (await jsm.streams.info(stream)).config.max_age;
    assert.equal(await maxAge('OCP_CMD'), nanos(30 * DAY_MS));
    assert.equal(await maxAge('OCP_DOOR'), nanos(30 * DAY_MS));
    assert.equal(await maxAge('OCP_EVENTS'), nanos(30 * DAY_MS));
    assert.equal(await maxAge('OCP_WORK'), 0, 'a work item leaves when done, never by age');
    for (const bucket of ['ocp_logs', 'ocp_requests', 'ocp_slack']) {
      assert.equal(await maxAge(`KV_${bucket}`), nanos(2 * DAY_MS), bucket);
    }
    for (const bucket of ['ocp_tasks', 'ocp_ids', 'ocp_host_locks']) {
      assert.equal(await maxAge(`KV_${bucket}`), 0, `${bucket} never ages out by itself`);
    }
    // Given a byte limit, each refuses what is new rather than drop what is old (SPEC §10).
    const streams = ['OCP_CMD', 'OCP_DOOR', 'OCP_EVENTS', 'OCP_WORK'];
    const buckets = ['ocp_tasks', 'ocp_requests', 'ocp_host_locks', 'ocp_logs', 'ocp_ids', 'ocp_slack'];
    for (const name of [...streams, ...buckets.map((b) => `KV_${b}`)]) {
      assert.equal((await jsm.streams.info(name)).config.discard, DiscardPolicy.New, name);
    }
  });

  it('removes finished tasks past retention.tasks and keeps a running one however old', async () => {
    const [quick, slow] = stack.sshd.hosts as [(typeof stack.sshd.hosts)[0], (typeof stack.sshd.hosts)[0]];
    const done = await api<OcpTask>('POST', `/compute/hosts/${quick.id}/agent/restart`);
    await waitForTask(stack.nc, done.body.data.id);
    setFault(slow.agentHome, 'stop', 'slow', 6);
    const running = await api<OcpTask>('POST', `/compute/hosts/${slow.id}/agent/restart`);

    // A process that only runs steps keeps the running tasks in memory, not the finished ones...
    const executor = await stack.startService('executor');
    const held = await executor.deps.index.list({}, 0, 100);
    assert.deepEqual(held, { ids: [running.body.data.id], total: 1 });
    assert.deepEqual(await executor.deps.index.running(), [running.body.data.id]);
    // ...and its retention pass still finds them. Three days on, with two kept:
    const later = { ...executor.deps, now: () => new Date(Date.now() + 3 * DAY_MS) };
    assert.equal(await removeExpiredTasks(later, 2 * DAY_MS), 1);
    const gone = await api('GET', `/api/v2/tasks/instances/${done.body.data.id}`, { user: 'viewer' });
    assert.equal(gone.status, 404);
    const listed = await api<{ contents: OcpTask[] }>('GET', '/api/v2/tasks/instances?size=100', { user: 'viewer' });
    assert.deepEqual(
      listed.body.data.contents.map((t) => t.id),
      [running.body.data.id],
    );
    // The same day: nothing is old enough.
    assert.equal(await removeExpiredTasks(svc.deps, 2 * DAY_MS), 0);
    const end = await waitForTask(stack.nc, running.body.data.id, undefined, 40_000);
    await executor.stop();
    clearFaults(slow.agentHome);
    assert.equal(end.status, 'SUCCESSFUL');
    // Ended now, it goes three days on too, found by the index of a process that lists (every task).
    assert.equal(await removeExpiredTasks({ ...svc.deps, now: later.now }, 2 * DAY_MS), 1);
    const none = await api<{ contents: OcpTask[]; page: { totalElements: number } }>('GET', '/api/v2/tasks/instances', {
      user: 'viewer',
    });
    assert.deepEqual([none.body.data.contents, none.body.data.page.totalElements], [[], 0]);
  });
});
