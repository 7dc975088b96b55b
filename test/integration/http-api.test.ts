/**
 * The OCP-compatible HTTP API against the real stack (nats-server, sshd hosts):
 * the seed's answer shape, SPEC §3's error table and check order, and the
 * task operations in allowed and refused states.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import { apiClient } from '../helpers/http.js';
import { taskEvents } from '../helpers/requests.js';
import {
  clearFaults,
  overlappingCalls,
  processesMatching,
  readCalls,
  regexEscape,
  setFault,
} from '../helpers/sim-agent.js';
import { type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

/** The seed page's example answer, parsed from its fenced block. */
function seedAnswer(): { data: Record<string, unknown> } & Record<string, unknown> {
  const page = readFileSync(new URL('../fixtures/restart-ocp-agent-api.md', import.meta.url), 'utf8');
  const block = /```unknow\n([\s\S]*?)```/.exec(page)?.[1];
  assert.ok(block, 'the seed page has its example answer');
  return JSON.parse(block);
}

const jsonType = (v: unknown) => (Array.isArray(v) ? 'array' : v === null ? 'null' : typeof v);

/** Every field of `seed` exists in `ours` with the same JSON type, recursively; arrays by their first element. */
function assertSameShape(seed: unknown, ours: unknown, path: string): void {
  assert.equal(jsonType(ours), jsonType(seed), `${path}: JSON type`);
  if (Array.isArray(seed) && Array.isArray(ours)) {
    if (seed.length > 0 && ours.length > 0) for (const o of ours) assertSameShape(seed[0], o, `${path}[]`);
    return;
  }
  if (jsonType(seed) === 'object') {
    const s = seed as Record<string, unknown>;
    const o = ours as Record<string, unknown>;
    // stringMap/listMap are maps: their keys are values, checked by the value rules
    if (path.endsWith('.listMap')) return;
    for (const key of Object.keys(s)) {
      assert.ok(key in o, `${path}.${key} is present`);
      assertSameShape(s[key], o[key], `${path}.${key}`);
    }
  }
}

describe('HTTP API', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  let port: number;
  before(async () => {
    stack = await startStack({ hosts: 7, stepTimeouts: { 'Stop all OCP agent processes': 8 } });
    const svc = await stack.startService();
    port = svc.httpPort as number;
    api = apiClient(port);
  });
  after(async () => stack?.stop());
  const host = (i: number) => stack.sshd.hosts[i]!;
  const until = (taskId: number) => waitForTask(stack.nc, taskId);

  it('answers a restart in the seed’s shape, with the values SPEC §3 gives', async () => {
    const seed = seedAnswer();
    const a = await api<OcpTask>('POST', `/compute/hosts/${host(0).id}/agent/restart`);
    assert.equal(a.status, 200);
    assertSameShape(seed, a.body, 'answer');
    const t = a.body.data;
    assert.equal(a.body.successful, true);
    assert.equal(a.body.status, 200);
    assert.match(a.body.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d$/);
    assert.match(a.body.traceId, /^[0-9a-f]{16}$/);
    assert.ok(Number.isInteger(a.body.duration));
    assert.match(a.body.server, /^\d+\.\d+\.\d+\.\d+$/);
    assert.equal(a.body.data.executor, a.body.server);
    assert.equal(t.status, 'RUNNING');
    assert.equal(t.name, 'Restart OCP agent');
    assert.equal(t.creator, 'operator');
    assert.equal(t.hostId, host(0).id);
    assert.deepEqual(t.context, {
      listMap: {},
      parallel: false,
      parallelIdx: -1,
      stringMap: { prohibit_rollback: 'false', host_id: String(host(0).id) },
    });
    assert.deepEqual(
      t.subtasks.map((s) => s.status),
      ['READY', 'PENDING', 'PENDING', 'PENDING', 'PENDING'],
    );
    t.subtasks.forEach((s, i) => {
      assert.equal(s.seriesId, i);
      assert.deepEqual(s.upstreams, i === 0 ? [] : [t.subtasks[i - 1]!.id]);
      assert.deepEqual(s.downstreams, i === 4 ? [] : [t.subtasks[i + 1]!.id]);
    });
    const seedNames = new Set((seed.data.subtasks as Array<{ name: string }>).map((s) => s.name));
    assert.deepEqual(new Set(t.subtasks.map((s) => s.name)), seedNames);
    assert.equal((await until(t.id)).status, 'SUCCESSFUL');

    const again = await api<OcpTask>('POST', `/api/v2/compute/hosts/${host(0).id}/agent/restart`);
    assert.equal(again.status, 200, 'served under /api/v2 too');
    const ids = [again.body.data.id, ...again.body.data.subtasks.map((s) => s.id)];
    const old = new Set([t.id, ...t.subtasks.map((s) => s.id)]);
    assert.ok(
      ids.every((id) => !old.has(id)),
      'fresh ids',
    );
    await until(again.body.data.id);
  });

  it('answers every row of the error table with its status and code', async () => {
    const expect = async (
      p: Promise<{ status: number; body: { error: { code: number } } }>,
      status: number,
      code: number,
    ) => {
      const a = await p;
      assert.equal(a.status, status, JSON.stringify(a.body));
      assert.equal(a.body.error.code, code);
    };
    const restart = (id: string) => `/compute/hosts/${id}/agent/restart`;
    await expect(api('POST', restart(String(host(1).id)), { user: null }), 401, 30000);
    await expect(
      api('POST', restart(String(host(1).id)), {
        user: null,
        headers: { authorization: 'Basic b3BlcmF0b3I6d3Jvbmc=' },
      }),
      401,
      30000,
    );
    for (const bad of ['0', '-1', '0100', '+1', '1e3', '1.5', '%20', '9223372036854775808']) {
      await expect(api('POST', restart(bad)), 400, 10001);
    }
    await expect(api('POST', '/compute/hosts/batchRestartAgents', { rawBody: '{"hostIds": [1,' }), 400, 10001);
    await expect(api('POST', '/compute/hosts/batchRestartAgents', { body: { hostIds: 'x' } }), 400, 10001);
    // check order: a viewer with a bad id hears about the id, with a good one about the permission
    await expect(api('POST', restart('0'), { user: 'viewer' }), 400, 10001);
    await expect(api('POST', restart(String(host(1).id)), { user: 'viewer' }), 403, 30014);
    await expect(api('POST', restart('999')), 404, 10002);
    await expect(api('GET', '/compute/hosts/999/agent'), 404, 10002);
    await expect(api('GET', '/api/v2/nothing/here'), 404, 10002);
    await expect(api('GET', '/api/v2/tasks/instances/987654321'), 404, 20000);
    await expect(api('GET', '/api/v2/tasks/instances/9007199254740993'), 404, 20000);

    setFault(host(1).agentHome, 'restart', 'slow', 2);
    const first = await api<OcpTask>('POST', restart(String(host(1).id)));
    const busy = await api('POST', `/compute/hosts/${host(1).id}/agent/stop`);
    assert.equal(busy.status, 409);
    assert.equal(busy.body.error.code, 40000);
    assert.match(busy.body.error.message, new RegExp(`task ${first.body.data.id}\\b`));
    await until(first.body.data.id);
    clearFaults(host(1).agentHome);
    await expect(api('POST', `/api/v2/tasks/instances/${first.body.data.id}/retry`), 409, 20003);
    const subtask = first.body.data.subtasks[0]!.id;
    await expect(api('POST', `/api/v2/tasks/instances/${first.body.data.id}/subtasks/${subtask}/skip`), 409, 20003);
    await expect(api('POST', `/api/v2/tasks/instances/${first.body.data.id}/subtasks/${subtask}/cancel`), 409, 20003);
    await expect(api('POST', `/api/v2/tasks/instances/${first.body.data.id}/subtasks/123456789/retry`), 404, 20000);
    await expect(api('POST', `/api/v2/tasks/instances/${first.body.data.id}/rollback`), 409, 20003);
  });

  it('keeps a valid X-Trace-Id and carries it into the task’s events', async () => {
    const traceId = '0123456789abcdef';
    const a = await api<OcpTask>('POST', `/compute/hosts/${host(2).id}/agent/start`, {
      headers: { 'x-trace-id': traceId },
    });
    assert.equal(a.body.traceId, traceId);
    assert.equal(a.headers.get('x-trace-id'), traceId);
    await until(a.body.data.id);
    const events = await taskEvents(stack.nc, a.body.data.id);
    assert.ok(events.length > 0 && events.every((e) => e.traceId === traceId));
    const ignored = await api('GET', '/api/v2/tasks/instances', { headers: { 'x-trace-id': 'NOT-HEX' } });
    assert.notEqual(ignored.body.traceId, 'NOT-HEX');
    assert.match(ignored.body.traceId, /^[0-9a-f]{16}$/);
  });

  it('retries a failed task and a failed subtask; skips a failed subtask', async () => {
    const h = host(3);
    setFault(h.agentHome, 'restart', 'fail');
    const a = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    const failed = await until(a.body.data.id);
    assert.equal(failed.status, 'FAILED');
    const log = await api<{ log: string; truncated: boolean }>(
      'GET',
      `/api/v2/tasks/instances/${failed.id}/subtasks/${failed.subtasks[1]!.id}/log`,
    );
    assert.match(log.body.data.log, /simulated failure of restart/);
    assert.equal(log.body.data.truncated, false);

    // retry the task: still failing → FAILED again, runTime 2, operation RETRY
    const retried = await api<OcpTask>('POST', `/api/v2/tasks/instances/${failed.id}/retry`);
    assert.equal(retried.status, 200);
    assert.equal(retried.body.data.status, 'RUNNING');
    assert.equal(retried.body.data.operation, 'RETRY');
    const pos = retried.body.data.subtasks[1]!;
    assert.deepEqual([pos.status, pos.operation, pos.runTime], ['READY', 'RETRY', 2]);
    assert.equal((await until(failed.id)).status, 'FAILED');

    // retry the subtask with the fault gone → the task finishes
    clearFaults(h.agentHome);
    const one = await api<OcpTask>('POST', `/api/v2/tasks/instances/${failed.id}/subtasks/${pos.id}/retry`);
    assert.equal(one.status, 200);
    const done = await until(failed.id);
    assert.equal(done.status, 'SUCCESSFUL');
    assert.equal(done.subtasks[1]!.runTime, 3);

    // skip: a failing pos proxy restart is skipped and the rest runs
    setFault(h.agentHome, 'restart', 'fail');
    const b = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    const bFailed = await until(b.body.data.id);
    clearFaults(h.agentHome);
    const skipped = await api<OcpTask>(
      'POST',
      `/api/v2/tasks/instances/${bFailed.id}/subtasks/${bFailed.subtasks[1]!.id}/skip`,
    );
    assert.equal(skipped.status, 200);
    assert.deepEqual(
      [skipped.body.data.subtasks[1]!.status, skipped.body.data.subtasks[1]!.operation],
      ['SUCCESSFUL', 'SKIP'],
    );
    assert.equal((await until(bFailed.id)).status, 'SUCCESSFUL');
  });

  it('rolls back a failed "Start all" so the agent runs again', async () => {
    const h = host(4);
    setFault(h.agentHome, 'start', 'fail');
    const a = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    const failed = await until(a.body.data.id);
    assert.equal(failed.status, 'FAILED');
    assert.equal(failed.subtasks[3]!.status, 'FAILED');
    const stopped = await api<{ status: string }>('GET', `/compute/hosts/${h.id}/agent`, { user: 'viewer' });
    assert.equal(stopped.body.data.status, 'STOPPED');

    clearFaults(h.agentHome);
    const rb = await api<OcpTask>('POST', `/api/v2/tasks/instances/${failed.id}/rollback`);
    assert.equal(rb.status, 200);
    assert.equal(rb.body.data.operation, 'ROLLBACK');
    const added = rb.body.data.subtasks.filter((s) => s.operation === 'ROLLBACK');
    assert.deepEqual(
      added.map((s) => s.name),
      ['Start all OCP agent processes', 'Finish OCP agent operation'],
    );
    const done = await until(failed.id);
    assert.equal(done.status, 'SUCCESSFUL');
    assert.equal(done.operation, 'ROLLBACK');
    const agent = await api<{ status: string; processes: Array<{ status: string }>; installHome: string }>(
      'GET',
      `/compute/hosts/${h.id}/agent`,
      { user: 'viewer' },
    );
    assert.equal(agent.body.data.status, 'STARTED');
    assert.equal(agent.body.data.installHome, h.agentHome);
    assert.equal(agent.body.data.processes.length, 4);
  });

  it('cancels a running step: its processes end and the subtask is FAILED, canceled', async () => {
    const h = host(5);
    setFault(h.agentHome, 'stop', 'slow', 30);
    const a = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    const stopId = a.body.data.subtasks[2]!.id;
    await waitForTask(stack.nc, a.body.data.id, (t) => t.subtasks[2]!.status === 'RUNNING');
    await waitFor('stop to begin on the host', () =>
      readCalls(h.agentHome).some((c) => c.phase === 'begin' && c.args === 'stop'),
    );
    const c = await api<OcpTask>('POST', `/api/v2/tasks/instances/${a.body.data.id}/subtasks/${stopId}/cancel`);
    assert.equal(c.status, 200);
    assert.deepEqual([c.body.data.subtasks[2]!.status, c.body.data.subtasks[2]!.operation], ['CANCELING', 'CANCEL']);
    const done = await until(a.body.data.id);
    clearFaults(h.agentHome);
    assert.equal(done.status, 'FAILED');
    assert.equal(done.subtasks[2]!.status, 'FAILED');
    const log = await api<{ log: string }>('GET', `/api/v2/tasks/instances/${done.id}/subtasks/${stopId}/log`);
    assert.match(log.body.data.log, /canceled/);
    const stopPid = readCalls(h.agentHome).find((c) => c.args === 'stop')!.pid;
    assert.deepEqual(
      processesMatching(`${regexEscape(h.agentHome)}/bin/ocp_agentctl stop`).filter((p) => p === stopPid),
      [],
      'the stop call is gone',
    );
  });

  it('runs a batch of 5 in parallel; one failing host fails the task but not the others', async () => {
    const hosts = [0, 1, 2, 3, 4].map(host);
    setFault(hosts[2]!.agentHome, 'restart', 'fail');
    const before = new Map(hosts.map((h) => [h.id, readCalls(h.agentHome).length]));
    const a = await api<OcpTask>('POST', '/compute/hosts/batchRestartAgents', {
      body: { hostIds: hosts.map((h) => h.id) },
    });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    const t = a.body.data;
    assert.equal(t.name, 'Batch restart OCP agent');
    assert.equal(t.context.parallel, true);
    assert.deepEqual(
      t.context.listMap.host_ids,
      hosts.map((h) => String(h.id)),
    );
    assert.equal(t.hostId, hosts[0]!.id);
    assert.deepEqual([...new Set(t.subtasks.map((s) => s.parallelIdx))], [0, 1, 2, 3, 4]);
    const done = await until(t.id);
    clearFaults(hosts[2]!.agentHome);
    assert.equal(done.status, 'FAILED');
    for (const [i, h] of hosts.entries()) {
      const chain = done.subtasks.filter((s) => s.parallelIdx === i);
      const expected = i === 2 ? 'FAILED' : 'SUCCESSFUL';
      assert.equal(chain.some((s) => s.status === 'FAILED') ? 'FAILED' : 'SUCCESSFUL', expected, `host ${h.id}`);
      if (i !== 2) assert.ok(chain.every((s) => s.status === 'SUCCESSFUL'));
    }
    // the chains overlapped in time: each host's calls of this batch span an interval; all intervals intersect
    const spans = hosts.map((h) => {
      const calls = readCalls(h.agentHome).slice(before.get(h.id));
      assert.deepEqual(overlappingCalls(calls), []);
      return [calls[0]!.at, calls.at(-1)!.at] as const;
    });
    // The four chains that succeed all ran at one moment (the failing one ends early).
    const ok = spans.filter((_, i) => i !== 2);
    const latestStart = Math.max(...ok.map((s) => s[0]));
    const earliestEnd = Math.min(...ok.map((s) => s[1]));
    assert.ok(latestStart < earliestEnd, `chains ran in parallel (${JSON.stringify(spans)})`);
  });

  it('refuses a batch naming an unknown or busy host as a whole, before anything runs', async () => {
    const unknown = await api('POST', '/compute/hosts/batchRestartAgents', { body: { hostIds: [host(0).id, 999] } });
    assert.equal(unknown.status, 404);
    assert.match(unknown.body.error.message, /host 999/);
    setFault(host(6).agentHome, 'restart', 'slow', 2);
    const running = await api<OcpTask>('POST', `/compute/hosts/${host(6).id}/agent/restart`);
    const calls = readCalls(host(0).agentHome).length;
    const busy = await api('POST', '/compute/hosts/batchRestartAgents', {
      body: { hostIds: [host(0).id, host(6).id] },
    });
    assert.equal(busy.status, 409);
    assert.match(busy.body.error.message, new RegExp(`host ${host(6).id}.*task ${running.body.data.id}`));
    // host 0 was not left locked by the refused batch
    const ok = await api<OcpTask>('POST', `/compute/hosts/${host(0).id}/agent/start`);
    assert.equal(ok.status, 200);
    await until(ok.body.data.id);
    await until(running.body.data.id);
    clearFaults(host(6).agentHome);
    assert.ok(readCalls(host(0).agentHome).length > calls);
  });

  it('refuses a retry when another task now holds the host', async () => {
    const h = host(6);
    setFault(h.agentHome, 'restart', 'fail');
    const failed = await until((await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`)).body.data.id);
    setFault(h.agentHome, 'restart', 'slow', 2);
    const other = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    const retry = await api('POST', `/api/v2/tasks/instances/${failed.id}/retry`);
    assert.equal(retry.status, 409);
    assert.equal(retry.body.error.code, 40000);
    await until(other.body.data.id);
    clearFaults(h.agentHome);
  });

  it('lists tasks newest first with filters and pages', async () => {
    const all = await api<{ contents: OcpTask[]; page: Record<string, number> }>(
      'GET',
      '/api/v2/tasks/instances?size=2000',
      {
        user: 'viewer',
      },
    );
    const ids = all.body.data.contents.map((t) => t.id);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => b - a),
    );
    assert.ok(all.body.data.contents.every((t) => !('subtasks' in t)));
    const failed = await api<{ contents: OcpTask[]; page: Record<string, number> }>(
      'GET',
      `/api/v2/tasks/instances?status=FAILED&hostId=${host(3).id}&page=1&size=1&name=`,
      { user: 'viewer' },
    );
    assert.equal(failed.body.data.contents.length, 1);
    assert.equal(failed.body.data.contents[0]!.status, 'FAILED');
    assert.equal(failed.body.data.page.number, 1);
    assert.equal(failed.body.data.page.size, 1);
    assert.equal(failed.body.data.page.totalPages, failed.body.data.page.totalElements);
    const bad = await api('GET', '/api/v2/tasks/instances?size=2001', { user: 'viewer' });
    assert.equal(bad.status, 400);
  });

  it('answers on the NATS micro service like over HTTP', async () => {
    const first = (await api<{ contents: OcpTask[] }>('GET', '/api/v2/tasks/instances?size=1')).body.data.contents[0]!;
    const viaHttp = await api<OcpTask>('GET', `/api/v2/tasks/instances/${first.id}`);
    const reply = await stack.nc.request('ocp.api.task.get', JSON.stringify({ taskId: first.id }), { timeout: 5000 });
    const viaNats = reply.json<typeof viaHttp.body>();
    assert.equal(viaNats.successful, true);
    assert.deepEqual(viaNats.data, viaHttp.body.data);
    const missing = (await stack.nc.request('ocp.api.task.get', JSON.stringify({ taskId: 987654321 }))).json<{
      status: number;
      error: { code: number };
    }>();
    assert.deepEqual([missing.status, missing.error.code], [404, 20000]);
    const created = (
      await stack.nc.request('ocp.api.agent.start', JSON.stringify({ hostId: host(2).id, creator: 'bot' }), {
        timeout: 5000,
      })
    ).json<{ data: OcpTask }>();
    assert.equal(created.data.creator, 'nats:bot');
    await until(created.data.id);
    const noCreator = (await stack.nc.request('ocp.api.agent.start', JSON.stringify({ hostId: host(2).id }))).json<{
      error: { code: number; message: string };
    }>();
    assert.equal(noCreator.error.code, 10001);
    assert.match(noCreator.error.message, /creator/);
    // discoverable, with stats, through the standard $SRV subjects
    const client = stack.nc.services.client();
    const infos = [];
    for await (const i of await client.info('ocp-api')) infos.push(i);
    assert.ok(infos[0]?.endpoints.some((e) => e.subject === 'ocp.api.task.get'));
    const stats = [];
    for await (const s of await client.stats('ocp-api')) stats.push(s);
    const get = stats[0]?.endpoints?.find((e) => e.subject === 'ocp.api.task.get');
    assert.ok((get?.num_requests ?? 0) >= 2);
  });

  it('serves Prometheus metrics', async () => {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(
      text,
      /ocp_http_requests_total\{route="\/compute\/hosts\/:hostId\/agent\/restart",method="POST",status="200"\} \d+/,
    );
    assert.match(text, /ocp_tasks_finished_total\{runbook="Restart OCP agent",status="SUCCESSFUL"\} \d+/);
    assert.match(text, /ocp_tasks_finished_total\{runbook="Batch restart OCP agent",status="FAILED"\} 1/);
    assert.match(text, /ocp_subtask_duration_seconds_bucket\{le="1",name="Restart pos proxy",status="SUCCESSFUL"\}/);
    assert.match(text, /ocp_subtasks_in_flight 0/);
    assert.match(text, /ocp_nats_reconnects_total 0/);
  });

  it('answers 503 / 10000 while NATS is unreachable', async () => {
    await stack.nats.kill();
    try {
      const a = await api('GET', '/api/v2/tasks/instances/1');
      assert.equal(a.status, 503);
      assert.equal(a.body.error.code, 10000);
      assert.match(a.body.error.message, /NATS/);
    } finally {
      await stack.nats.restart();
    }
  });
});
