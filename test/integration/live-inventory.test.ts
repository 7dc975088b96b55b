/**
 * SPEC §9: the inventory follows the config file while the service runs — on
 * SIGHUP and when the file changes — against a service run as its own
 * process (src/main.ts), real NATS and sshd hosts. A bad file keeps what runs
 * and names the field; a host removed while its task runs finishes the step
 * it began, fails the steps not yet started, and is given up.
 */
import assert from 'node:assert/strict';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml, stringify } from 'yaml';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import type { FakeSlack } from '../helpers/fake-slack.js';
import { apiClient } from '../helpers/http.js';
import { accepted, newRequestId, request } from '../helpers/requests.js';
import { clearFaults, readCalls, setFault } from '../helpers/sim-agent.js';
import { SLACK_USERS, startFakeSlackAndStack } from '../helpers/slack-stack.js';
import { slackUser } from '../helpers/slack-user.js';
import { type ChildService, type Stack, waitFor, waitForTask } from '../helpers/stack.js';

interface Inventory {
  version: number;
  loadedAt: string;
  source: string;
  hosts: number;
  digest: string;
}

/** An operation of one's own added on reload: no host lock, one quick step. */
const HELLO = {
  name: 'say-hello',
  title: 'Say hello',
  role: 'HOST_VIEWER',
  exclusive: false,
  steps: [{ name: 'Say hello', timeout: 30, command: 'echo hello from {agentHome}' }],
};

describe('live inventory: the config file re-read while the service runs', () => {
  let stack: Stack;
  let fake: FakeSlack;
  let svc: ChildService;
  let api: ReturnType<typeof apiClient>;
  let port: number;
  /** The file as the stack wrote it, every sshd host in it. */
  let full: Record<string, unknown> & { hosts: Array<{ id: number }> };
  const host = (i: number) => stack.sshd.hosts[i]!;
  /** Write the file as an editor does: a new file renamed over the old one. */
  const writeConfig = (content: string) => {
    writeFileSync(`${stack.configPath}.tmp`, content);
    renameSync(`${stack.configPath}.tmp`, stack.configPath);
  };
  const withHosts = (ids: number[], extra: Record<string, unknown> = {}) =>
    stringify({ ...full, hosts: full.hosts.filter((h) => ids.includes(h.id)), ...extra });
  const readyz = async () =>
    (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { status: string; inventory: Inventory };
  const versionAfter = (v: number) =>
    waitFor(`inventory version ${v + 1}`, async () => {
      const r = await readyz();
      return r.inventory.version > v ? r.inventory : undefined;
    });

  before(async () => {
    ({ fake, stack } = await startFakeSlackAndStack({
      hosts: 3,
      managers: [SLACK_USERS.manager],
      viewers: [SLACK_USERS.viewer],
      options: { stepTimeout: 20 },
    }));
    full = parseYaml(readFileSync(stack.configPath, 'utf8'));
    // The third host is not in the inventory at start.
    writeConfig(withHosts([host(0).id, host(1).id]));
    svc = stack.spawnService('api,slack,executor,notifier');
    const listening = await waitFor(
      'the HTTP port',
      () => /"port":(\d+),"msg":"HTTP listening"/.exec(svc.output()) ?? undefined,
    );
    port = Number(listening[1]);
    await waitFor('executor started', () => svc.output().includes('executor started'));
    api = apiClient(port);
  });
  after(async () => {
    await stack?.stop();
    await fake?.stop();
  });

  it('takes a host and an operation added on SIGHUP, on every door; a fixed setting waits for a restart', async () => {
    const before = await readyz();
    assert.equal(before.status, 'ready');
    assert.equal(before.inventory.version, 1);
    assert.equal(before.inventory.hosts, 2);
    assert.equal(before.inventory.source, stack.configPath);
    const absent = await api('POST', `/compute/hosts/${host(2).id}/agent/restart`);
    assert.equal(absent.status, 404, JSON.stringify(absent.body));

    writeConfig(
      withHosts([host(0).id, host(1).id, host(2).id], {
        operations: [HELLO],
        executor: { ...(full.executor as object), concurrency: 3 },
      }),
    );
    svc.child.kill('SIGHUP');
    const now = await versionAfter(1);
    assert.equal(now.hosts, 3);
    assert.notEqual(now.digest, before.inventory.digest);
    // The log comes through a pipe: it may arrive after /readyz's answer.
    await waitFor(
      'the log to say restart to apply',
      () => /restart to apply: executor/.test(svc.output()) || undefined,
    );

    const restart = await api<OcpTask>('POST', `/compute/hosts/${host(2).id}/agent/restart`);
    assert.equal(restart.status, 200, JSON.stringify(restart.body));
    assert.equal((await waitForTask(stack.nc, restart.body.data.id)).status, 'SUCCESSFUL');

    // The new operation: HTTP, ocp.cmd.op.<name>, ocp.api.op.<name>, Slack's help.
    const viaHttp = await api<OcpTask>('POST', `/api/v2/ocp-chatops/operations/${HELLO.name}`, {
      body: { hostIds: [host(0).id] },
      user: 'viewer',
    });
    assert.equal(viaHttp.status, 200, JSON.stringify(viaHttp.body));
    assert.equal((await waitForTask(stack.nc, viaHttp.body.data.id)).status, 'SUCCESSFUL');
    const viaCmd = accepted(
      await request(stack.nc, stack.js, `op.${HELLO.name}`, {
        hostIds: [host(1).id],
        creator: 'ops',
        requestId: newRequestId(),
      }),
    );
    assert.equal((await waitForTask(stack.nc, viaCmd.taskId)).status, 'SUCCESSFUL');
    const reply = await stack.nc.request(
      `ocp.api.op.${HELLO.name}`,
      JSON.stringify({ hostIds: [host(2).id], creator: 'ops' }),
      { timeout: 5000 },
    );
    const viaApi = reply.json<{ successful: boolean; data: OcpTask }>();
    assert.equal(viaApi.successful, true, JSON.stringify(viaApi));
    assert.equal((await waitForTask(stack.nc, viaApi.data.id)).status, 'SUCCESSFUL');
    const user = slackUser(fake, `http://127.0.0.1:${port}/slack/events`);
    const help = await user.command('help', { user: SLACK_USERS.viewer });
    const helpText = String(
      (await waitFor('help', () => fake.responses.find((r) => r.url === help.responseUrl)?.body))?.text,
    );
    assert.match(helpText, /say-hello/);
  });

  it('keeps the running inventory when the file is bad, naming the field', async () => {
    const { version } = (await readyz()).inventory;
    const good = readFileSync(stack.configPath, 'utf8');
    const bad = parseYaml(good) as { hosts: Array<Record<string, unknown>> };
    bad.hosts[0]!.port = 70000;
    writeConfig(stringify(bad));
    svc.child.kill('SIGHUP');
    await waitFor('the log to name the field', () => /not reloaded.*hosts\.0\.port/.test(svc.output()) || undefined);
    assert.equal((await readyz()).inventory.version, version);

    const restart = await api<OcpTask>('POST', `/compute/hosts/${host(0).id}/agent/restart`);
    assert.equal(restart.status, 200, JSON.stringify(restart.body));
    assert.equal((await waitForTask(stack.nc, restart.body.data.id)).status, 'SUCCESSFUL');
    writeConfig(good);
  });

  it('a host removed while its task runs: the step in flight finishes, the rest fail, the host is given up', async () => {
    const { version } = (await readyz()).inventory;
    const h = host(1);
    setFault(h.agentHome, 'stop', 'slow', 4);
    const started = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    assert.equal(started.status, 200, JSON.stringify(started.body));
    await waitFor('stop to begin on the host', () =>
      readCalls(h.agentHome).some((c) => c.phase === 'begin' && c.args === 'stop'),
    );

    // No signal: the watcher sees the file change.
    const at = Date.now();
    writeConfig(withHosts([host(0).id, host(2).id], { operations: [HELLO] }));
    const now = await versionAfter(version);
    assert.ok(Date.now() - at < 5000, `picked up in ${Date.now() - at} ms`);
    assert.equal(now.hosts, 2);

    const task = await waitForTask(stack.nc, started.body.data.id, undefined, 30_000);
    clearFaults(h.agentHome);
    assert.equal(task.status, 'FAILED');
    const [stop, ...rest] = task.subtasks;
    assert.equal(stop?.status, 'SUCCESSFUL', 'the step already launched finished with what it began with');
    assert.ok(
      readCalls(h.agentHome).some((c) => c.phase === 'end' && c.args === 'stop'),
      'Stop all ran to its end on the host',
    );
    const failed = rest.find((s) => s.status === 'FAILED');
    assert.ok(failed, `a later step failed: ${JSON.stringify(task.subtasks.map((s) => s.status))}`);
    const logs = await stack.nc.jetstream().views.kv('ocp_logs');
    const log = JSON.parse(new TextDecoder().decode((await logs.get(`log.${task.id}.${failed.id}`))!.value));
    assert.match(log.error, new RegExp(`^configuration changed: host ${h.id} is no longer in the inventory`));

    // Put back, the host is free: the lock went with the task's end.
    writeConfig(withHosts([host(0).id, host(1).id, host(2).id], { operations: [HELLO] }));
    await versionAfter(now.version);
    const again = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/start`);
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.equal((await waitForTask(stack.nc, again.body.data.id)).status, 'SUCCESSFUL');
  });
});
