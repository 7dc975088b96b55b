/**
 * A notifier that meets a task in the middle — `slack.defaultChannel` added
 * while the task runs, or its consumer made anew — starts the task's thread
 * from the stored task, instead of waiting forever for events it will never
 * get (and holding up every other post behind them).
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import type { Service } from '../../src/service.js';
import { type FakeSlack, startFakeSlack } from '../helpers/fake-slack.js';
import { apiClient } from '../helpers/http.js';
import { clearFaults, setFault } from '../helpers/sim-agent.js';
import { SIGNING_SECRET, taskIdOf } from '../helpers/slack-user.js';
import { type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

describe('a notifier that meets a task in the middle', () => {
  let fake: FakeSlack;
  let stack: Stack;
  before(async () => {
    fake = await startFakeSlack();
    fake.addChannel('C0OPS');
    stack = await startStack({
      hosts: 2,
      slack: { apiUrl: fake.apiUrl, botToken: fake.token, signingSecret: SIGNING_SECRET },
    });
  });
  after(async () => {
    await stack?.stop();
    await fake?.stop();
  });

  it('starts the thread from the stored task when slack.defaultChannel is set while the task runs', async () => {
    const svc = await stack.startService('api,executor');
    let notifier: Service | undefined = await stack.startService('notifier');
    const api = apiClient(svc.httpPort as number);
    const [h, other] = stack.sshd.hosts as [(typeof stack.sshd.hosts)[0], (typeof stack.sshd.hosts)[0]];
    setFault(h.agentHome, 'stop', 'slow', 5);
    const a = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    assert.equal(a.status, 200);
    const taskId = a.body.data.id;
    // Its first events pass a notifier with no channel to write to.
    await waitForTask(stack.nc, taskId, (t) => t.subtasks[2]!.status === 'RUNNING');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(fake.channel('C0OPS').length, 0, 'nowhere to write yet');

    await notifier.stop();
    notifier = undefined;
    const config = parse(readFileSync(stack.configPath, 'utf8'));
    writeFileSync(stack.configPath, stringify({ ...config, slack: { ...config.slack, defaultChannel: 'C0OPS' } }));
    notifier = await stack.startService('notifier');

    const parent = await waitFor('a parent for the running task', () =>
      fake.channel('C0OPS').find((m) => taskIdOf(m) === taskId),
    );
    const done = await waitForTask(stack.nc, taskId, undefined, 40_000);
    clearFaults(h.agentHome);
    assert.equal(done.status, 'SUCCESSFUL');
    await waitFor('the final reply in its thread', () =>
      fake.thread('C0OPS', parent.ts).find((m) => /SUCCESSFUL/.test(m.text ?? '')),
    );

    // And a task begun afterwards gets its thread as usual: nothing is held up.
    const b = await api<OcpTask>('POST', `/compute/hosts/${other.id}/agent/restart`);
    const next = await waitFor('the next task’s parent', () =>
      fake.channel('C0OPS').find((m) => taskIdOf(m) === b.body.data.id),
    );
    await waitForTask(stack.nc, b.body.data.id);
    await waitFor('its final reply', () => fake.thread('C0OPS', next.ts).find((m) => /SUCCESSFUL/.test(m.text ?? '')));
    await notifier.stop();
  });
});
