/**
 * Task records and request entries written before origins were neutral hold
 * the Slack door's own shape (`{kind: 'slack', channelId, userId, …}`). A
 * notifier of this version, meeting them after an upgrade, still writes the
 * task into the requester's channel, names them, and answers a rejected
 * request on its response_url.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KV } from 'nats';
import { type FakeSlack, startFakeSlack } from '../helpers/fake-slack.js';
import { clearFaults, setFault } from '../helpers/sim-agent.js';
import { SIGNING_SECRET, slackUser, taskIdOf, textOf } from '../helpers/slack-user.js';
import { type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

/** The Slack origin as the older version stored it. */
function olderOrigin(o: {
  door: string;
  user: string;
  channel?: string;
  replyTo?: string;
  team?: string;
  ref?: string;
}) {
  assert.equal(o.door, 'slack', 'this version stores a neutral origin');
  return {
    kind: 'slack',
    channelId: o.channel,
    userId: o.user,
    ...(o.team ? { teamId: o.team } : {}),
    ...(o.replyTo ? { responseUrl: o.replyTo } : {}),
    ...(o.ref ? { triggerId: o.ref } : {}),
  };
}

/** Rewrite a stored JSON value's origin into the older shape. */
async function makeOlder(kv: KV, key: string): Promise<void> {
  const e = await kv.get(key);
  assert.ok(e && e.operation === 'PUT', `${key} stored`);
  const value = e.json<{ origin: Parameters<typeof olderOrigin>[0] }>();
  await kv.update(key, JSON.stringify({ ...value, origin: olderOrigin(value.origin) }), e.revision);
}

describe('a notifier meeting records of the older version', () => {
  let fake: FakeSlack;
  let stack: Stack;
  before(async () => {
    fake = await startFakeSlack();
    for (const c of ['C0OPS', 'C0DEFAULT']) fake.addChannel(c);
    stack = await startStack({
      hosts: 2,
      slack: {
        apiUrl: fake.apiUrl,
        botToken: fake.token,
        signingSecret: SIGNING_SECRET,
        defaultChannel: 'C0DEFAULT',
        access: { HOST_MANAGER: { users: ['U0ALICE', 'U0BOB'] } },
      },
    });
  });
  after(async () => {
    await stack?.stop();
    await fake?.stop();
  });

  it('writes the thread in the requester’s channel and answers a rejection on its response_url', async () => {
    // No notifier yet: the events wait on its consumer while the records are made older.
    const svc = await stack.startService('api,slack,executor');
    const user = slackUser(fake, `http://127.0.0.1:${svc.httpPort}/slack/events`);
    const requests = await stack.js.views.kv('ocp_requests');
    const tasks = await stack.js.views.kv('ocp_tasks');
    const taskOf = (requestId: string) =>
      waitFor(
        `the task of ${requestId}`,
        async () => (await requests.get(`req.${requestId}`))?.json<{ taskId?: number }>().taskId,
      );
    const [h0, h1] = stack.sshd.hosts as [(typeof stack.sshd.hosts)[0], (typeof stack.sshd.hosts)[0]];

    // A task that ran to its end, and a request refused because its host was busy.
    await user.command(`restart ${h0.id} before the upgrade`, { triggerId: 'older.1' });
    const taskId = await taskOf('slack-older_1');
    assert.equal((await waitForTask(stack.nc, taskId)).status, 'SUCCESSFUL');
    setFault(h1.agentHome, 'stop', 'slow', 3);
    await user.command(`restart ${h1.id}`, { triggerId: 'older.2' });
    const busyTask = await taskOf('slack-older_2');
    const refused = await user.command(`stop ${h1.id}`, { user: 'U0BOB', triggerId: 'older.3' });
    await waitFor(
      'the refusal stored',
      async () =>
        (await requests.get('req.slack-older_3'))?.json<{ state: string }>().state === 'rejected' || undefined,
    );

    await makeOlder(tasks, `task.${taskId}`);
    await makeOlder(requests, 'req.slack-older_3');
    await stack.startService('notifier');

    const parent = await waitFor('the parent in the requester’s channel', () =>
      fake.channel('C0OPS').find((m) => !m.thread_ts && taskIdOf(m) === taskId),
    );
    assert.match(textOf(parent), /<@U0ALICE>/, 'the requester is named');
    assert.match(textOf(parent), /before the upgrade/);
    await waitFor('the final reply in its thread', () =>
      fake.thread('C0OPS', parent.ts).find((m) => /SUCCESSFUL/.test(m.text ?? '')),
    );
    assert.deepEqual(fake.channel('C0DEFAULT'), [], 'nothing in the default channel');

    const answer = await waitFor('the rejection, to the requester alone', () =>
      fake.responses.find((r) => r.url === refused.responseUrl),
    );
    assert.equal(answer.body.response_type, 'ephemeral');
    assert.match(String(answer.body.text), new RegExp(`Not done: .*task ${busyTask}\\b`));

    await waitForTask(stack.nc, busyTask);
    clearFaults(h1.agentHome);
  });
});
