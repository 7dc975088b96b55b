/**
 * Operations of one's own (SPEC §8), added in the config file and nowhere
 * else, driven through every door against the real stack (nats-server, sshd
 * hosts running the simulated agent, a fake Slack Web API): HTTP, NATS
 * commands, the NATS API and Slack. The operations are the two examples that
 * ship in config/example.yml, read from it, so what the example promises is
 * what is tested.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import type { RequestEvent } from '../../src/contracts/events.js';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import type { FakeSlack } from '../helpers/fake-slack.js';
import { apiClient } from '../helpers/http.js';
import { accepted, newRequestId, request } from '../helpers/requests.js';
import { agentProcessPids, clearFaults, readCalls, setFault } from '../helpers/sim-agent.js';
import { SLACK_CHANNEL, SLACK_USERS, startFakeSlackAndStack } from '../helpers/slack-stack.js';
import { slackUser, taskIdOf, textOf } from '../helpers/slack-user.js';
import { readTask, type Stack, waitFor, waitForTask } from '../helpers/stack.js';

/** The operations config/example.yml ships. */
const EXAMPLE_OPERATIONS = (
  parseYaml(readFileSync(new URL('../../config/example.yml', import.meta.url), 'utf8')) as { operations: unknown[] }
).operations;

interface Described {
  name: string;
  title: string;
  role: string;
  rollback: boolean;
  exclusive: boolean;
  paramsSchema: { properties?: Record<string, { enum?: string[]; pattern?: string }>; required?: string[] };
  doors: { http: string; natsCommand: string; natsApi: string; slack: string };
}

describe('operations of one’s own, from the config file, on every door', () => {
  let stack: Stack;
  let fake: FakeSlack;
  let api: ReturnType<typeof apiClient>;
  let user: ReturnType<typeof slackUser>;
  before(async () => {
    ({ fake, stack } = await startFakeSlackAndStack({
      hosts: 4,
      managers: [SLACK_USERS.manager],
      viewers: [SLACK_USERS.viewer],
      options: { operations: EXAMPLE_OPERATIONS, stepTimeouts: { 'Stop all OCP agent processes': 8 } },
    }));
    const svc = await stack.startService();
    api = apiClient(svc.httpPort as number);
    user = slackUser(fake, `http://127.0.0.1:${svc.httpPort}/slack/events`);
  });
  after(async () => {
    await stack?.stop();
    await fake?.stop();
  });
  const host = (i: number) => stack.sshd.hosts[i]!;
  const pidOf = (i: number, process: string) => {
    const text = readFileSync(`${host(i).agentHome}/run/${process}.pid`, 'utf8');
    return Number(text.trim());
  };

  it('lists every operation with its role, parameters (as JSON Schema) and doors', async () => {
    const a = await api<Described[]>('GET', '/api/v2/ocp-chatops/operations', { user: 'viewer' });
    assert.equal(a.status, 200);
    assert.deepEqual(
      a.body.data.map((o) => o.name),
      ['restart', 'stop', 'start', 'restart-process', 'agent-logs'],
    );
    const rp = a.body.data.find((o) => o.name === 'restart-process')!;
    assert.equal(rp.title, 'Restart one OCP agent process');
    assert.equal(rp.role, 'HOST_MANAGER');
    assert.equal(rp.rollback, true);
    assert.deepEqual(rp.paramsSchema.properties?.process?.enum, [
      'ocp_agentd',
      'ocp_mgragent',
      'ocp_monagent',
      'pos_proxy',
    ]);
    assert.deepEqual(rp.paramsSchema.required, ['process']);
    assert.equal(rp.doors.http, 'POST /api/v2/ocp-chatops/operations/restart-process');
    assert.equal(rp.doors.natsCommand, 'ocp.cmd.op.restart-process');
    const logs = a.body.data.find((o) => o.name === 'agent-logs')!;
    assert.equal(logs.exclusive, false);
    assert.equal(logs.rollback, false);
  });

  it('HTTP: restarts the one process named, and only it; the task names the operation and its parameter', async () => {
    const before = { monagent: pidOf(0, 'ocp_monagent'), agentd: pidOf(0, 'ocp_agentd') };
    const a = await api<OcpTask>('POST', '/api/v2/ocp-chatops/operations/restart-process', {
      body: { hostId: host(0).id, params: { process: 'ocp_monagent' }, reason: 'monagent leaks memory' },
    });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    const t = a.body.data;
    assert.equal(t.name, 'Restart one OCP agent process');
    assert.equal(t.taskDefinitionId, -1);
    assert.equal(t.type, 'MANUAL');
    assert.deepEqual(
      { ...t.context.stringMap },
      {
        operation: 'restart-process',
        process: 'ocp_monagent',
        prohibit_rollback: 'false',
        host_id: String(host(0).id),
        reason: 'monagent leaks memory',
      },
    );
    assert.deepEqual(
      t.subtasks.map((s) => [s.name, s.className]),
      [['Restart the process', 'com.alipay.ocp.service.task.business.obagent.RestartTheProcessTask']],
    );
    const done = await waitForTask(stack.nc, t.id);
    assert.equal(done.status, 'SUCCESSFUL');
    assert.ok(
      readCalls(host(0).agentHome).some((c) => c.phase === 'begin' && c.args === 'restart ocp_monagent'),
      'agentctl restart ocp_monagent ran',
    );
    assert.notEqual(pidOf(0, 'ocp_monagent'), before.monagent, 'ocp_monagent was restarted');
    assert.equal(pidOf(0, 'ocp_agentd'), before.agentd, 'the other processes were left alone');
  });

  it('HTTP: a bad, missing or unknown parameter is 400 naming it; an unknown operation 404; the role is checked', async () => {
    const post = (name: string, body: unknown, u: 'operator' | 'viewer' = 'operator') =>
      api('POST', `/api/v2/ocp-chatops/operations/${name}`, { body, user: u });
    const hostId = host(1).id;
    const bad = await post('restart-process', { hostId, params: { process: "ocp_agentd'; touch /tmp/x; '" } });
    assert.deepEqual([bad.status, bad.body.error.code, bad.body.error.target], [400, 10001, 'params.process']);
    assert.match(bad.body.error.message, /params\.process: must be one of ocp_agentd, ocp_mgragent/);
    const missing = await post('restart-process', { hostId });
    assert.deepEqual([missing.status, missing.body.error.target], [400, 'params']);
    const none = await post('restart-process', { hostId, params: {} });
    assert.deepEqual([none.status, none.body.error.target], [400, 'params.process']);
    const unknown = await post('restart-process', { hostId, params: { process: 'pos_proxy', force: 'yes' } });
    assert.deepEqual([unknown.status, unknown.body.error.code], [400, 10001]);
    assert.match(unknown.body.error.message, /force: unknown field/);
    const pattern = await post('agent-logs', { hostId, params: { lines: '10; reboot' } });
    assert.deepEqual([pattern.status, pattern.body.error.target], [400, 'params.lines']);
    const noOp = await post('reboot', { hostId });
    assert.deepEqual([noOp.status, noOp.body.error.code], [404, 10002]);
    assert.match(noOp.body.error.message, /unknown operation reboot/);
    const viewer = await post('restart-process', { hostId, params: { process: 'pos_proxy' } }, 'viewer');
    assert.deepEqual([viewer.status, viewer.body.error.code], [403, 30014]);
    assert.match(viewer.body.error.message, /lacks the HOST_MANAGER permission/);
    assert.equal(readCalls(host(1).agentHome).filter((c) => c.phase === 'begin').length, 0, 'nothing ran on the host');
  });

  it('HTTP: a viewer collects the agent’s log lines, kept as the subtask’s log, beside a restart that holds the host', async () => {
    setFault(host(2).agentHome, 'stop', 'slow', 3);
    const restart = await api<OcpTask>('POST', `/compute/hosts/${host(2).id}/agent/restart`);
    assert.equal(restart.status, 200);
    try {
      const a = await api<OcpTask>('POST', '/api/v2/ocp-chatops/operations/agent-logs', {
        user: 'viewer',
        body: { hostId: host(2).id, params: { lines: '5' } },
      });
      assert.equal(a.status, 200, 'not exclusive: accepted while a restart holds the host');
      const done = await waitForTask(stack.nc, a.body.data.id);
      assert.equal(done.status, 'SUCCESSFUL');
      assert.equal((await readTask(stack.nc, restart.body.data.id))?.task.status, 'RUNNING', 'the restart still ran');
      const log = await api<{ log: string }>(
        'GET',
        `/api/v2/tasks/instances/${done.id}/subtasks/${done.subtasks[0]!.id}/log`,
      );
      assert.match(log.body.data.log, /==> .*\/log\/ocp_monagent\.log <==/);
      assert.match(log.body.data.log, /\[ocp_monagent\] started, pid \d+/);
      const rollback = await api('POST', `/api/v2/tasks/instances/${done.id}/rollback`);
      assert.deepEqual([rollback.status, rollback.body.error.code], [409, 20003], 'no rollback: prohibited');
      assert.equal(done.context.stringMap.prohibit_rollback, 'true');
    } finally {
      clearFaults(host(2).agentHome);
      await waitForTask(stack.nc, restart.body.data.id);
    }
  });

  it('a failed operation is rolled back with its own rollback steps', async () => {
    setFault(host(3).agentHome, 'restart', 'fail');
    const a = await api<OcpTask>('POST', '/api/v2/ocp-chatops/operations/restart-process', {
      body: { hostId: host(3).id, params: { process: 'pos_proxy' } },
    });
    const failed = await waitForTask(stack.nc, a.body.data.id);
    assert.equal(failed.status, 'FAILED');
    clearFaults(host(3).agentHome);
    const r = await api<OcpTask>('POST', `/api/v2/tasks/instances/${failed.id}/rollback`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const done = await waitForTask(stack.nc, failed.id);
    assert.equal(done.status, 'SUCCESSFUL');
    assert.equal(done.operation, 'ROLLBACK');
    assert.deepEqual(
      done.subtasks.filter((s) => s.operation === 'ROLLBACK').map((s) => [s.name, s.status]),
      [['Start all OCP agent processes', 'SUCCESSFUL']],
    );
    assert.ok(agentProcessPids(host(3).agentHome).length === 4, 'every agent process runs again');
  });

  it('NATS: ocp.cmd.op.<name> with hostIds makes a batch; a bad parameter or operation is rejected naming it', async () => {
    const ids = [host(0).id, host(1).id];
    const ok = accepted(
      await request(stack.nc, stack.js, 'op.restart-process', {
        hostIds: ids,
        params: { process: 'ocp_mgragent' },
        creator: 'ci-bot',
        requestId: newRequestId(),
      }),
    );
    assert.equal(ok.task.name, 'Batch restart one OCP agent process');
    assert.equal(ok.task.creator, 'nats:ci-bot');
    assert.deepEqual(ok.task.context.listMap.host_ids, ids.map(String));
    const done = await waitForTask(stack.nc, ok.taskId);
    assert.equal(done.status, 'SUCCESSFUL');
    for (const i of [0, 1]) {
      assert.ok(readCalls(host(i).agentHome).some((c) => c.phase === 'begin' && c.args === 'restart ocp_mgragent'));
    }

    const bad = (await request(stack.nc, stack.js, 'op.restart-process', {
      hostId: host(0).id,
      params: { process: 'sshd' },
      creator: 'ci-bot',
      requestId: newRequestId(),
    })) as Extract<RequestEvent, { type: 'rejected' }>;
    assert.equal(bad.type, 'rejected');
    assert.equal(bad.error.code, 10001);
    assert.match(bad.error.message, /params\.process/);
    const unknown = (await request(stack.nc, stack.js, 'op.reboot', {
      hostId: host(0).id,
      creator: 'ci-bot',
      requestId: newRequestId(),
    })) as Extract<RequestEvent, { type: 'rejected' }>;
    assert.deepEqual([unknown.type, unknown.error.code], ['rejected', 10002]);
  });

  it('NATS: a publisher on ocp.cmd.op.<name> cannot pose as a Slack user nor bring parameters the operation lacks', async () => {
    const taskKeys = async () => {
      const keys = new Set<string>();
      for await (const k of await (await stack.nc.jetstream().views.kv('ocp_tasks')).keys()) keys.add(k);
      return keys;
    };
    const known = await taskKeys();
    const posing = (await request(stack.nc, stack.js, 'op.agent-logs', {
      hostId: host(0).id,
      params: { lines: '5' },
      creator: 'ci-bot',
      requestId: newRequestId(),
      origin: { kind: 'slack', channelId: 'C0OPS', userId: SLACK_USERS.manager },
    })) as Extract<RequestEvent, { type: 'rejected' }>;
    assert.deepEqual([posing.type, posing.error.code], ['rejected', 10001]);
    assert.match(posing.error.message, /origin/);
    const extra = (await request(stack.nc, stack.js, 'op.agent-logs', {
      hostId: host(0).id,
      params: { lines: '5', file: '/etc/shadow' },
      creator: 'ci-bot',
      requestId: newRequestId(),
    })) as Extract<RequestEvent, { type: 'rejected' }>;
    assert.deepEqual([extra.type, extra.error.code], ['rejected', 10001]);
    assert.match(extra.error.message, /params\.file: unknown field/);
    const made = [...(await taskKeys())].filter((k) => !known.has(k));
    assert.deepEqual(made, [], 'no task was made');
  });

  it('NATS API: ocp.api.op.<name> answers with the HTTP envelope', async () => {
    const reply = await stack.nc.request(
      'ocp.api.op.agent-logs',
      new TextEncoder().encode(JSON.stringify({ hostId: host(1).id, params: { lines: '3' }, creator: 'ci-bot' })),
      { timeout: 10_000 },
    );
    const body = reply.json<{ successful: boolean; status: number; data: OcpTask }>();
    assert.equal(body.successful, true, JSON.stringify(body));
    assert.equal(body.data.name, 'Collect recent OCP agent log lines');
    assert.equal(body.data.creator, 'nats:ci-bot');
    assert.equal((await waitForTask(stack.nc, body.data.id)).status, 'SUCCESSFUL');
    const bad = await stack.nc.request(
      'ocp.api.op.agent-logs',
      new TextEncoder().encode(JSON.stringify({ hostId: host(1).id, params: { lines: '0' }, creator: 'ci-bot' })),
      { timeout: 10_000 },
    );
    const refused = bad.json<{ status: number; error: { code: number; target: string } }>();
    assert.deepEqual([refused.status, refused.error.code, refused.error.target], [400, 10001, 'params.lines']);
  });

  it('Slack: the verb, its parameters and its help come from the registry', async () => {
    const help = await user.command('help', { user: SLACK_USERS.viewer });
    const helpText = String(
      (await waitFor('help', () => fake.responses.find((r) => r.url === help.responseUrl)?.body))?.text,
    );
    assert.match(
      helpText,
      /agent-logs &lt;host&gt;\[,&lt;host&gt;…\]\|&lt;selector&gt; lines=&lt;\[1-9\]\[0-9\]\{0,3\}&gt;/,
    );
    assert.doesNotMatch(helpText, /restart-process/, 'a viewer is not shown what needs HOST_MANAGER');

    const refused = await user.command(`restart-process ${host(1).id} process=sshd`);
    assert.match(refused.text, /`process=sshd`: process=&lt;ocp_agentd\|ocp_mgragent/);

    await user.command(`restart-process ${host(1).name} process=pos_proxy after the upgrade`);
    const parent = await waitFor('parent message', () =>
      fake
        .channel(SLACK_CHANNEL)
        .find(
          (m) => !m.thread_ts && /Restart one OCP agent process/.test(textOf(m)) && /after the upgrade/.test(textOf(m)),
        ),
    );
    const task = await waitForTask(stack.nc, taskIdOf(parent));
    assert.equal(task.status, 'SUCCESSFUL');
    assert.equal(task.creator, `slack:${SLACK_USERS.manager}`);
    assert.deepEqual(
      [task.context.stringMap.operation, task.context.stringMap.process],
      ['restart-process', 'pos_proxy'],
    );
    assert.equal(task.context.stringMap.reason, 'after the upgrade');
  });
});
