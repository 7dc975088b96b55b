/**
 * Host selectors (SPEC §10) through every door against the real stack
 * (nats-server, sshd hosts running the simulated agent, a fake Slack Web
 * API): the hosts preview over HTTP and NATS, a batch by selector over HTTP
 * that runs on exactly the matching hosts, the refusals (a selector beside
 * host ids, one matching nothing), NATS commands and the NATS API by
 * selector, and Slack's confirmation previewing what a selector matches
 * before it runs. Five hosts, listed out of id order (a selector's hosts
 * come in inventory order), one taking its cluster label from its group.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import type { HostList } from '../../src/tasks/list-hosts.js';
import type { FakeSlack } from '../helpers/fake-slack.js';
import { apiClient } from '../helpers/http.js';
import { accepted, newRequestId, request } from '../helpers/requests.js';
import { clearCalls, readCalls } from '../helpers/sim-agent.js';
import { SLACK_CHANNEL, SLACK_USERS, startFakeSlackAndStack } from '../helpers/slack-stack.js';
import { slackUser, taskIdOf, textOf } from '../helpers/slack-user.js';
import { type Stack, waitFor, waitForTask } from '../helpers/stack.js';

/** The labels of hosts 101…105; 105 takes its cluster from the group `edge`. */
const LABELS: Record<number, Record<string, string>> = {
  101: { cluster: 'obcluster1', zone: 'z1' },
  102: { cluster: 'obcluster1', zone: 'z2' },
  103: { cluster: 'obcluster1', zone: 'z1' },
  104: { cluster: 'obcluster2', zone: 'z1' },
  105: { zone: 'z2' },
};
/** The inventory's order, not the ids'. */
const ORDER = [103, 101, 102, 104, 105];
/** Steps run slowly on a machine shared with others; waiting long is not asserting speed. */
const TASK_WAIT_MS = 180_000;

describe('host selectors (SPEC §10) on every door', () => {
  let stack: Stack;
  let fake: FakeSlack;
  let api: ReturnType<typeof apiClient>;
  let user: ReturnType<typeof slackUser>;

  before(async () => {
    ({ fake, stack } = await startFakeSlackAndStack({
      hosts: 5,
      managers: [SLACK_USERS.manager],
      viewers: [SLACK_USERS.viewer],
      options: {
        // Room for a loaded machine: a step's timeout is not what these tests are about.
        stepTimeout: 120,
        editConfig: (file) => {
          const byId = new Map((file.hosts as Array<{ id: number }>).map((h) => [h.id, h]));
          return {
            ...file,
            groups: { edge: { labels: { cluster: 'obcluster2', zone: 'z9' } } },
            hosts: ORDER.map((id) => ({
              ...byId.get(id),
              labels: LABELS[id],
              ...(id === 105 ? { group: 'edge' } : {}),
            })),
          };
        },
      },
    }));
    const svc = await stack.startService();
    api = apiClient(svc.httpPort as number);
    user = slackUser(fake, `http://127.0.0.1:${svc.httpPort}/slack/events`);
  });
  after(async () => {
    await stack?.stop();
    await fake?.stop();
  });

  const agentHome = (id: number) => stack.sshd.hosts.find((h) => h.id === id)!.agentHome;
  /** Hosts whose agentctl was called since their calls were cleared. */
  const touched = () => ORDER.filter((id) => readCalls(agentHome(id)).length > 0).sort();
  const forgetCalls = () => {
    for (const id of ORDER) clearCalls(agentHome(id));
  };
  const hostIdsOf = (task: Pick<OcpTask, 'hostId' | 'context'>) =>
    task.context.listMap.host_ids ?? [String(task.hostId)];
  const taskCount = async () =>
    (await api<{ page: { totalElements: number } }>('GET', '/api/v2/tasks/instances?size=1')).body.data.page
      .totalElements;

  describe('the preview: GET /api/v2/ocp-chatops/hosts', () => {
    it('lists the hosts a selector matches, in inventory order, with their labels (a viewer may)', async () => {
      const a = await api<HostList>('GET', '/api/v2/ocp-chatops/hosts?selector=cluster=obcluster1,zone=z1', {
        user: 'viewer',
      });
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.equal(a.body.data.selector, 'cluster=obcluster1,zone=z1');
      assert.equal(a.body.data.total, 2);
      assert.deepEqual(
        a.body.data.contents.map((h) => [h.id, h.name, h.labels]),
        [
          [103, 'sim-host-103', LABELS[103]],
          [101, 'sim-host-101', LABELS[101]],
        ],
      );
      assert.match(a.body.data.contents[0]?.address ?? '', /^127\./);
    });

    it('matches the labels a host takes from its group, its own winning', async () => {
      const a = await api<HostList>('GET', '/api/v2/ocp-chatops/hosts?selector=cluster=obcluster2', { user: 'viewer' });
      assert.deepEqual(
        a.body.data.contents.map((h) => [h.id, h.labels]),
        [
          [104, LABELS[104]],
          [105, { cluster: 'obcluster2', zone: 'z2' }],
        ],
      );
      const z9 = await api('GET', '/api/v2/ocp-chatops/hosts?selector=zone=z9', { user: 'viewer' });
      assert.equal(z9.status, 404, 'the group’s zone is overridden by the host’s own');
    });

    it('without a selector, or with all: every host', async () => {
      for (const query of ['', '?selector=all']) {
        const a = await api<HostList>('GET', `/api/v2/ocp-chatops/hosts${query}`, { user: 'viewer' });
        assert.equal(a.status, 200);
        assert.equal(a.body.data.selector, 'all');
        assert.deepEqual(
          a.body.data.contents.map((h) => h.id),
          ORDER,
        );
      }
    });

    it('no credentials: 401; a selector matching nothing: 404 / 10002; a malformed one: 400 / 10001 naming it', async () => {
      const anonymous = await api('GET', '/api/v2/ocp-chatops/hosts?selector=zone=z1', { user: null });
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.error.code, 30000);
      const none = await api('GET', '/api/v2/ocp-chatops/hosts?selector=cluster=obcluster9', { user: 'viewer' });
      assert.equal(none.status, 404);
      assert.equal(none.body.error.code, 10002);
      assert.equal(none.body.error.target, 'selector');
      for (const bad of ['cluster=', 'cluster=a,cluster=b', 'all,zone=z1', '101']) {
        const a = await api('GET', `/api/v2/ocp-chatops/hosts?selector=${encodeURIComponent(bad)}`, { user: 'viewer' });
        assert.equal(a.status, 400, bad);
        assert.equal(a.body.error.code, 10001, bad);
        assert.equal(a.body.error.target, 'selector', bad);
        assert.match(a.body.error.message, /^selector: /, bad);
      }
    });

    it('over NATS: ocp.api.host.list, the text form or the object', async () => {
      for (const selector of ['zone=z2', { zone: 'z2' }]) {
        const m = await stack.nc.request('ocp.api.host.list', JSON.stringify({ selector }), { timeout: 15_000 });
        const answer = m.json<{ status: number; data: HostList }>();
        assert.equal(answer.status, 200);
        assert.deepEqual(
          answer.data.contents.map((h) => h.id),
          [102, 105],
        );
      }
    });
  });

  describe('HTTP', () => {
    it('a batch restart by selector runs on exactly the matching hosts, and records the selector', async () => {
      forgetCalls();
      const a = await api<OcpTask>('POST', '/compute/hosts/batchRestartAgents', {
        body: { selector: { cluster: 'obcluster1', zone: 'z1' }, reason: 'zone z1 upgrade' },
      });
      assert.equal(a.status, 200, JSON.stringify(a.body));
      const task = a.body.data;
      assert.equal(task.name, 'Batch restart OCP agent');
      assert.deepEqual(task.context.listMap.host_ids, ['103', '101'], 'inventory order');
      assert.equal(task.hostId, 103);
      assert.equal(task.context.stringMap.selector, 'cluster=obcluster1,zone=z1');
      assert.equal(task.context.stringMap.reason, 'zone z1 upgrade');
      const done = await waitForTask(stack.nc, task.id, undefined, TASK_WAIT_MS);
      assert.equal(done.status, 'SUCCESSFUL');
      assert.deepEqual(touched(), [101, 103], 'only the matching hosts’ agents were touched');
      for (const id of [101, 103]) {
        assert.ok(
          readCalls(agentHome(id)).some((c) => c.phase === 'end' && c.exit === 0 && c.args === 'start'),
          `host ${id} restarted`,
        );
      }
    });

    it('an operation by a selector matching one host makes a task of that host', async () => {
      const a = await api<OcpTask>('POST', '/api/v2/ocp-chatops/operations/start', {
        body: { selector: { cluster: 'obcluster2', zone: 'z2' } },
      });
      assert.equal(a.status, 200, JSON.stringify(a.body));
      assert.equal(a.body.data.name, 'Start OCP agent');
      assert.equal(a.body.data.hostId, 105);
      assert.equal(a.body.data.context.stringMap.selector, 'cluster=obcluster2,zone=z2');
      assert.equal((await waitForTask(stack.nc, a.body.data.id, undefined, TASK_WAIT_MS)).status, 'SUCCESSFUL');
    });

    it('a selector with host ids is 400 / 10001 naming selector; matching nothing is 404 / 10002; nothing is made', async () => {
      const before = await taskCount();
      const both = [
        ['/compute/hosts/batchRestartAgents', { selector: { zone: 'z1' }, hostIds: [101] }],
        ['/api/v2/ocp-chatops/operations/restart', { selector: 'all', hostIds: [101, 102] }],
        ['/api/v2/ocp-chatops/operations/stop', { selector: 'all', hostId: 101 }],
      ] as const;
      for (const [path, body] of both) {
        const a = await api('POST', path, { body });
        assert.equal(a.status, 400, `${path} ${JSON.stringify(body)}`);
        assert.equal(a.body.error.code, 10001);
        assert.equal(a.body.error.target, 'selector');
        assert.match(a.body.error.message, /^selector: never comes with host(Id|Ids)/);
      }
      for (const [path, body] of [
        ['/compute/hosts/batchRestartAgents', { selector: { cluster: 'obcluster9' } }],
        ['/api/v2/ocp-chatops/operations/restart', { selector: { cluster: 'obcluster1', zone: 'z3' } }],
      ] as const) {
        const a = await api('POST', path, { body });
        assert.equal(a.status, 404, `${path} ${JSON.stringify(body)}`);
        assert.equal(a.body.error.code, 10002);
        assert.equal(a.body.error.target, 'selector');
        assert.match(a.body.error.message, /matches no host/);
      }
      const malformed = await api('POST', '/api/v2/ocp-chatops/operations/restart', { body: { selector: {} } });
      assert.equal(malformed.status, 400);
      assert.match(malformed.body.error.message, /^selector: names no label/);
      // A viewer is refused for the permission, after the input was checked.
      const viewer = await api('POST', '/compute/hosts/batchRestartAgents', {
        user: 'viewer',
        body: { selector: { zone: 'z1' } },
      });
      assert.equal(viewer.status, 403);
      assert.equal(await taskCount(), before, 'no task was made');
    });
  });

  describe('NATS', () => {
    it('ocp.cmd.op.<name> by selector: accepted, on the matching hosts, the selector recorded', async () => {
      forgetCalls();
      const requestId = newRequestId();
      const ev = accepted(
        await request(stack.nc, stack.js, 'op.restart', {
          selector: { zone: 'z2' },
          creator: 'deploy-bot',
          requestId,
          reason: 'zone z2',
        }),
      );
      assert.deepEqual(hostIdsOf(ev.task), ['102', '105']);
      assert.equal(ev.task.context.stringMap.selector, 'zone=z2');
      assert.equal(ev.task.creator, 'nats:deploy-bot');
      assert.equal((await waitForTask(stack.nc, ev.taskId, undefined, TASK_WAIT_MS)).status, 'SUCCESSFUL');
      assert.deepEqual(touched(), [102, 105]);
    });

    it('ocp.cmd.agent.*: all runs on every host; a selector with ids or matching nothing is rejected', async () => {
      const all = accepted(
        await request(stack.nc, stack.js, 'start', { selector: 'all', creator: 'ops', requestId: newRequestId() }),
      );
      assert.deepEqual(hostIdsOf(all.task), ORDER.map(String));
      assert.equal(all.task.context.stringMap.selector, 'all');
      assert.equal((await waitForTask(stack.nc, all.taskId, undefined, TASK_WAIT_MS)).status, 'SUCCESSFUL');

      const mixed = await request(stack.nc, stack.js, 'stop', {
        selector: { zone: 'z1' },
        hostIds: [101],
        creator: 'ops',
        requestId: newRequestId(),
      });
      assert.equal(mixed.type, 'rejected');
      if (mixed.type === 'rejected') {
        assert.equal(mixed.error.code, 10001);
        assert.match(mixed.error.message, /selector: never comes with hostIds/);
      }
      const none = await request(stack.nc, stack.js, 'restart', {
        selector: { cluster: 'obcluster9' },
        creator: 'ops',
        requestId: newRequestId(),
      });
      assert.equal(none.type, 'rejected');
      if (none.type === 'rejected') {
        assert.equal(none.error.code, 10002);
        assert.match(none.error.message, /selector cluster=obcluster9 matches no host/);
      }
    });

    it('the NATS API (ocp.api.op.<name>, ocp.api.agent.batchRestart) takes a selector too', async () => {
      const m = await stack.nc.request(
        'ocp.api.agent.batchRestart',
        JSON.stringify({ selector: { cluster: 'obcluster2' }, creator: 'bot' }),
        { timeout: 15_000 },
      );
      const answer = m.json<{ status: number; data: OcpTask }>();
      assert.equal(answer.status, 200, JSON.stringify(answer));
      assert.deepEqual(answer.data.context.listMap.host_ids, ['104', '105']);
      assert.equal((await waitForTask(stack.nc, answer.data.id, undefined, TASK_WAIT_MS)).status, 'SUCCESSFUL');
      const bad = await stack.nc.request(
        'ocp.api.op.stop',
        JSON.stringify({ selector: 'cluster=obcluster2', creator: 'bot' }),
        { timeout: 15_000 },
      );
      const refused = bad.json<{ status: number; error: { code: number; target?: string } }>();
      assert.equal(refused.status, 400, 'in JSON a selector is "all" or an object');
      assert.equal(refused.error.target, 'selector');
    });
  });

  describe('Slack', () => {
    const responsesTo = (url: string) => fake.responses.filter((r) => r.url === url).map((r) => r.body);
    const parents = () => fake.channel(SLACK_CHANNEL).filter((m) => !m.thread_ts);

    it('a selector asks first, previewing what it matches, and runs on those hosts once confirmed', async () => {
      forgetCalls();
      const a = await user.command('restart cluster=obcluster1,zone=z1 rolling upgrade');
      assert.equal(a.status, 200);
      const confirm = (await waitFor('the confirmation', () => responsesTo(a.responseUrl)[0])) as {
        response_type?: string;
        text?: string;
        blocks?: unknown[];
      };
      assert.equal(confirm.response_type, 'ephemeral');
      assert.equal(confirm.text, 'Restart the OCP agent on 2 hosts in 1 cluster, 1 zone?');
      const shown = textOf(confirm);
      assert.match(shown, /`103` sim-host-103, `101` sim-host-101/);
      assert.match(shown, /selector `cluster=obcluster1,zone=z1` matches them now/);
      assert.match(shown, /reason: rolling upgrade/);
      assert.deepEqual(touched(), [], 'nothing runs before the click');

      const before = parents().length;
      await user.click(confirm, 'batch_confirm');
      const parent = await waitFor('the parent message', () => parents()[before]);
      const task = await waitForTask(stack.nc, taskIdOf(parent), undefined, TASK_WAIT_MS);
      assert.equal(task.status, 'SUCCESSFUL');
      assert.deepEqual(task.context.listMap.host_ids, ['103', '101']);
      assert.equal(task.context.stringMap.selector, 'cluster=obcluster1,zone=z1');
      assert.equal(task.context.stringMap.reason, 'rolling upgrade');
      assert.equal(task.creator, `slack:${SLACK_USERS.manager}`);
      assert.deepEqual(touched(), [101, 103]);
      const shownParent = await waitFor('the parent showing the selector', () => {
        const now = fake.channel(SLACK_CHANNEL).find((m) => m.ts === parent.ts);
        return now && /selector: `cluster=obcluster1,zone=z1`/.test(textOf(now)) ? now : undefined;
      });
      assert.ok(shownParent);
    });

    it('a selector matching one host still asks, and says so', async () => {
      const a = await user.command('start cluster=obcluster2,zone=z1');
      const confirm = (await waitFor('the confirmation', () => responsesTo(a.responseUrl)[0])) as { text?: string };
      assert.equal(confirm.text, 'Start the OCP agent on 1 host in 1 cluster, 1 zone?');
    });

    it('a selector matching nothing is refused at once, showing what the inventory has', async () => {
      const a = await user.command('restart cluster=obcluster9 please');
      assert.match(a.text, /ephemeral/);
      assert.match(a.text, /No host matches `cluster=obcluster9`/);
      assert.match(a.text, /`cluster=obcluster1`, `cluster=obcluster2`/);
      assert.deepEqual(responsesTo(a.responseUrl), []);
      const bad = await user.command('restart cluster=a,cluster=b');
      assert.match(bad.text, /is not a selector: it cluster is given twice/);
    });

    it('a viewer is refused by role, naming it, before any confirmation', async () => {
      const a = await user.command('restart all', { user: SLACK_USERS.viewer });
      const refusal = (await waitFor('the refusal', () => responsesTo(a.responseUrl)[0])) as { text?: string };
      assert.match(String(refusal.text), /HOST_MANAGER/);
      assert.equal(responsesTo(a.responseUrl).length, 1);
    });
  });
});
