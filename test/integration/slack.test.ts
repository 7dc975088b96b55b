/**
 * Slack end to end: signed requests into the real service (real nats-server,
 * real sshd hosts), a local fake of Slack's Web API recording what the channel
 * and threads show.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import { type FakeSlack, startFakeSlack } from '../helpers/fake-slack.js';
import { newRequestId, request } from '../helpers/requests.js';
import { clearFaults, setFault } from '../helpers/sim-agent.js';
import { postToSlackEndpoint, slashCommandBody } from '../helpers/slack-sign.js';
import { buttonValue, SIGNING_SECRET, slackUser, taskIdOf, textOf } from '../helpers/slack-user.js';
import { readTask, type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

describe('Slack', () => {
  let fake: FakeSlack;
  let stack: Stack;
  let eventsUrl: string;
  let user: ReturnType<typeof slackUser>;
  const HOST_LABELS = { cluster: 'obcluster1', zone: 'z1' };

  before(async () => {
    fake = await startFakeSlack();
    for (const c of ['C0OPS', 'C0DEFAULT']) fake.addChannel(c);
    fake.addChannel('C0CLOSED', { member: false });
    fake.setUsergroup('S0MANAGERS', ['U0ALICE', 'U0BOB'], { handle: 'ob-managers', name: 'OB managers' });
    fake.setUsergroup('S0VIEWERS', ['U0VIEWER', 'U0ALICE', 'U0BOB'], { handle: 'ob-viewers' });
    fake.setUsergroup('S0DBAS', ['U0BOB'], { handle: 'dbas' });
    stack = await startStack({
      hosts: 4,
      // The first host's labels, shown in `agent` and `history`.
      editConfig: (file) => ({
        ...file,
        hosts: (file.hosts as object[]).map((h, i) => (i === 0 ? { ...h, labels: HOST_LABELS } : h)),
      }),
      slack: {
        apiUrl: fake.apiUrl,
        botToken: fake.token,
        signingSecret: SIGNING_SECRET,
        defaultChannel: 'C0DEFAULT',
        access: {
          HOST_MANAGER: { usergroups: ['S0MANAGERS'] },
          HOST_VIEWER: { usergroups: ['S0VIEWERS'] },
          TASK_VIEWER: { usergroups: ['S0VIEWERS'] },
          TASK_MANAGER: { users: ['U0ALICE'] },
        },
      },
    });
    const svc = await stack.startService();
    eventsUrl = `http://127.0.0.1:${svc.httpPort}/slack/events`;
    user = slackUser(fake, eventsUrl);
  });
  after(async () => {
    await stack?.stop();
    await fake?.stop();
  });

  const host = (i: number) => stack.sshd.hosts[i]!;
  /** The task a request made, as the request bucket says. */
  async function readRequestTask(requestId: string): Promise<number | undefined> {
    const kv = await stack.nc.jetstream().views.kv('ocp_requests');
    const e = await kv.get(`req.${requestId}`);
    return e && e.operation === 'PUT' ? (e.json<{ taskId?: number }>().taskId ?? undefined) : undefined;
  }
  const parents = (channel = 'C0OPS') => fake.channel(channel).filter((m) => !m.thread_ts);
  const responsesTo = (url: string) => fake.responses.filter((r) => r.url === url).map((r) => r.body);
  const readAllTaskIds = async () => {
    const ids: string[] = [];
    for await (const k of await (await stack.js.views.kv('ocp_tasks')).keys('task.*')) ids.push(k);
    return ids;
  };
  async function newParent(count: number, channel = 'C0OPS') {
    return waitFor(`parent message #${count} in ${channel}`, () => parents(channel)[count - 1]);
  }

  it('asks Slack once per user group however many commands arrive together', async () => {
    fake.usergroupDelayMs = 300;
    const answers = await Promise.all(Array.from({ length: 20 }, () => user.command('list', { user: 'U0VIEWER' })));
    assert.ok(answers.every((a) => a.status === 200));
    await waitFor('20 list answers', () => answers.every((a) => responsesTo(a.responseUrl).length === 1) || undefined);
    const groups = fake.callsTo('usergroups.users.list').map((c) => c.args.usergroup);
    assert.deepEqual([...groups].sort(), ['S0MANAGERS', 'S0VIEWERS'], 'one call per group');
    fake.usergroupDelayMs = 0;
    assert.match(JSON.stringify(responsesTo(answers[0]!.responseUrl)[0]), /Running and recent tasks/);
  });

  it('restarts a host from a slash command: parent, replies in order in its thread, final SUCCESSFUL', async () => {
    const before = parents().length;
    const a = await user.command(`restart ${host(0).id} monagent stuck`);
    assert.equal(a.status, 200);
    const parent = await newParent(before + 1);
    const taskId = taskIdOf(parent);
    assert.match(textOf(parent), /monagent stuck/);
    assert.match(textOf(parent), /<@U0ALICE>/);
    const task = await waitForTask(stack.nc, taskId);
    assert.equal(task.status, 'SUCCESSFUL');
    assert.equal(task.creator, 'slack:U0ALICE');
    const replies = await waitFor('6 thread replies', () => {
      const t = fake.thread('C0OPS', parent.ts);
      return t.length >= 6 ? t : undefined;
    });
    assert.equal(replies.length, 6);
    task.subtasks.forEach((s, i) => {
      assert.match(replies[i]!.text ?? '', new RegExp(`${s.name}.*SUCCESSFUL`), `reply ${i}`);
    });
    assert.match(replies[5]!.text ?? '', /Restart OCP agent SUCCESSFUL/);
    assert.notEqual(replies[5]!.reply_broadcast, true);
    const current = await waitFor('the parent to say SUCCESSFUL', () => {
      const p = parents().find((m) => m.ts === parent.ts);
      return p && /SUCCESSFUL/.test(textOf(p)) ? p : undefined;
    });
    assert.ok(current.updates >= 1, 'the parent was kept current with chat.update');
  });

  it('refuses a user without the role, naming it, and publishes nothing', async () => {
    const jsm = await stack.nc.jetstreamManager();
    const published = async () =>
      (await jsm.streams.info('OCP_DOOR')).state.messages + (await jsm.streams.info('OCP_CMD')).state.messages;
    const cmdsBefore = await published();
    const a = await user.command(`restart ${host(0).id}`, { user: 'U0VIEWER' });
    assert.equal(a.status, 200);
    const answer = await waitFor('the refusal', () => responsesTo(a.responseUrl)[0]);
    assert.equal(answer.response_type, 'ephemeral');
    assert.match(String(answer.text), /HOST_MANAGER/);
    assert.equal(await published(), cmdsBefore);

    const help = await user.command('help', { user: 'U0VIEWER' });
    const helpText = String((await waitFor('help', () => responsesTo(help.responseUrl)[0])).text);
    assert.match(helpText, /status/);
    assert.doesNotMatch(helpText, /restart/, 'help shows only what the caller may run');
  });

  it('whoami: a member of two groups sees their ids, handles and the roles each gives, only to them', async () => {
    const a = await user.command('whoami', { user: 'U0ALICE' });
    assert.equal(a.status, 200);
    const answer = await waitFor('the whoami answer', () => responsesTo(a.responseUrl)[0]);
    assert.equal(answer.response_type, 'ephemeral');
    const text = String(answer.text);
    assert.match(text, /Slack user id `U0ALICE`/);
    assert.match(text, /`S0MANAGERS` @ob-managers \(OB managers\)/);
    assert.match(text, /`S0VIEWERS` @ob-viewers/);
    assert.doesNotMatch(text, /S0DBAS/, 'a group the user is not in');
    assert.match(text, /HOST_MANAGER — from group `S0MANAGERS`/);
    assert.match(text, /HOST_VIEWER — from group `S0VIEWERS`/);
    assert.match(text, /TASK_MANAGER — from your user id/);
    assert.match(text, /TASK_VIEWER — from group `S0VIEWERS`/);
    const lists = fake.callsTo('usergroups.list');
    assert.ok(lists.length > 0 && lists.every((c) => String(c.args.include_users) === 'true'), 'members asked for');

    const nobody = await user.command('whoami', { user: 'U0NOBODY' });
    const none = String((await waitFor('whoami of nobody', () => responsesTo(nobody.responseUrl)[0])).text);
    assert.match(none, /Slack user id `U0NOBODY`/);
    assert.match(none, /Your user groups:\* none/);
    assert.match(none, /Your roles:\* none/);
    assert.match(none, /access\.slack/);
  });

  it('refuses a forged signature and a ten-minute-old timestamp', async () => {
    const body = slashCommandBody({
      command: '/ocp-agent',
      text: `restart ${host(1).id}`,
      user_id: 'U0ALICE',
      channel_id: 'C0OPS',
      trigger_id: 'forged.1',
      response_url: fake.responseUrl(),
    });
    const forged = await postToSlackEndpoint(eventsUrl, SIGNING_SECRET, body, { signature: `v0=${'0'.repeat(64)}` });
    assert.equal(forged.status, 401);
    const old = await postToSlackEndpoint(eventsUrl, SIGNING_SECRET, body, {
      timestamp: Math.floor(Date.now() / 1000) - 600,
    });
    assert.equal(old.status, 401);
    const wrongSecret = await postToSlackEndpoint(eventsUrl, 'not-the-secret', body);
    assert.equal(wrongSecret.status, 401);
  });

  it('answers a signed JSON body that is no object (null, [], 7) with 400 at once', async () => {
    // Bolt threw on these outside any handler and left the connection hanging.
    for (const body of ['null', '[]', '7']) {
      const res = await postToSlackEndpoint(eventsUrl, SIGNING_SECRET, body, { contentType: 'application/json' });
      assert.equal(res.status, 400, `body ${body}`);
    }
  });

  it('refuses an unsigned or forged body that is no object with 401, as any unsigned request', async () => {
    for (const body of ['', 'null', '[]']) {
      const forged = await postToSlackEndpoint(eventsUrl, 'not-the-secret', body, { contentType: 'application/json' });
      assert.equal(forged.status, 401, `forged body ${JSON.stringify(body)}`);
    }
    const unsigned = await fetch(eventsUrl, { method: 'POST' });
    assert.equal(unsigned.status, 401, 'no signature headers, no body');
  });

  it('answers bad text and unknown hosts at once with what to type', async () => {
    const bad = await user.command('reboot 101');
    assert.equal(bad.status, 200);
    assert.match(bad.text, /ephemeral/);
    assert.match(bad.text, /restart/);
    const unknown = await user.command('restart 999');
    assert.match(unknown.text, /Unknown host/);
    assert.match(unknown.text, /999/);
  });

  it('tells the requester when the host is busy, naming the running task', async () => {
    setFault(host(1).agentHome, 'restart', 'slow', 2);
    const before = parents().length;
    await user.command(`restart ${host(1).id}`);
    const parent = await newParent(before + 1);
    const busy = await user.command(`stop ${host(1).id}`, { user: 'U0BOB' });
    const answer = await waitFor('the busy answer', () => responsesTo(busy.responseUrl)[0]);
    assert.equal(answer.response_type, 'ephemeral');
    assert.match(String(answer.text), new RegExp(`task ${taskIdOf(parent)}\\b`));
    await waitForTask(stack.nc, taskIdOf(parent));
    clearFaults(host(1).agentHome);
  });

  it('makes one task of one trigger_id however often it arrives', async () => {
    const before = parents().length;
    const triggerId = `dup.${Date.now()}`;
    await user.command(`start ${host(2).id}`, { triggerId });
    await user.command(`start ${host(2).id}`, { triggerId });
    const parent = await newParent(before + 1);
    await waitForTask(stack.nc, taskIdOf(parent));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(parents().length, before + 1, 'one parent, one task');
  });

  it('delivers every reply, in order, through a storm of 429s', async () => {
    fake.rateLimit('chat.postMessage', { calls: 6, retryAfter: 1 });
    fake.rateLimit('chat.update', { calls: 4, retryAfter: 1 });
    const before = parents().length;
    await user.command(`restart ${host(3).id}`);
    const parent = await newParent(before + 1);
    const task = await waitForTask(stack.nc, taskIdOf(parent));
    const replies = await waitFor(
      'all replies',
      () => {
        const t = fake.thread('C0OPS', parent.ts);
        return t.length >= 6 ? t : undefined;
      },
      30_000,
    );
    assert.deepEqual(
      replies.slice(0, 5).map((r) => /\*([^*]+)\*/.exec(r.text ?? '')?.[1] ?? r.text),
      task.subtasks.map((s) => s.name),
    );
    assert.equal(replies.length, 6, 'each reply once');
    const limited = fake.calls.filter((c) => c.status === 429 && c.method === 'chat.postMessage');
    assert.equal(limited.length, 6, 'Slack did say 429 to six posts, and each was posted later');
  });

  it('offers Retry after a failure; TASK_MANAGER is needed to press it', async () => {
    setFault(host(0).agentHome, 'restart', 'fail');
    const before = parents().length;
    await user.command(`restart ${host(0).id}`);
    const parent = await newParent(before + 1);
    const taskId = taskIdOf(parent);
    assert.equal((await waitForTask(stack.nc, taskId)).status, 'FAILED');
    const failedParent = await waitFor('Retry on the parent', () => {
      const p = parents().find((m) => m.ts === parent.ts);
      return p && buttonValue(p, 'task_retry') ? p : undefined;
    });
    assert.ok(buttonValue(failedParent, 'subtask_skip'));
    assert.ok(buttonValue(failedParent, 'task_rollback'));
    const thread = await waitFor('the failure replies', () => {
      const t = fake.thread('C0OPS', parent.ts);
      return t.length >= 3 ? t : undefined;
    });
    assert.match(textOf(thread[1]!), /simulated failure of restart/, 'the failure reply carries the output');
    const final = thread.find((m) => /Restart OCP agent FAILED/.test(m.text ?? ''));
    assert.equal(final?.reply_broadcast, true, 'a failure is broadcast to the channel');

    const refused = await user.click(failedParent, 'task_retry', { user: 'U0BOB' });
    assert.equal(refused.status, 200);
    assert.match(String((await waitFor('refusal', () => responsesTo(refused.responseUrl)[0])).text), /TASK_MANAGER/);
    assert.equal((await readTask(stack.nc, taskId))?.task.status, 'FAILED', 'nothing happened');

    clearFaults(host(0).agentHome);
    await user.click(failedParent, 'task_retry');
    const done = await waitForTask(stack.nc, taskId, (t: OcpTask) => t.status === 'SUCCESSFUL');
    assert.equal(done.operation, 'RETRY');
  });

  it('cancels a running step from its Cancel button', async () => {
    setFault(host(2).agentHome, 'stop', 'slow', 30);
    const before = parents().length;
    await user.command(`restart ${host(2).id}`);
    const parent = await newParent(before + 1);
    const taskId = taskIdOf(parent);
    const running = await waitForTask(stack.nc, taskId, (t) => t.subtasks[2]!.status === 'RUNNING');
    const stopStep = running.subtasks[2]!.id;
    // The parent's Cancel must be the stop step's: an update still showing the step before it
    // (done by now) would cancel nothing.
    const withCancel = await waitFor("the stop step's Cancel on the parent", () => {
      const p = parents().find((m) => m.ts === parent.ts);
      const value = p && buttonValue(p, 'subtask_cancel');
      return value && (JSON.parse(value) as { subtaskId?: number }).subtaskId === stopStep ? p : undefined;
    });
    await user.click(withCancel, 'subtask_cancel');
    const done = await waitForTask(stack.nc, taskId);
    clearFaults(host(2).agentHome);
    assert.equal(done.status, 'FAILED');
    assert.equal(done.subtasks[2]!.operation, 'CANCEL');
  });

  it('asks for a confirmation before a batch restart', async () => {
    const a = await user.command(`restart ${host(0).id},${host(1).name} rolling`);
    const confirm = await waitFor('the confirmation', () => responsesTo(a.responseUrl)[0]);
    assert.equal(confirm.response_type, 'ephemeral');
    const before = parents().length;
    await user.click(confirm as { blocks?: unknown[] }, 'batch_confirm');
    const parent = await newParent(before + 1);
    const task = await waitForTask(stack.nc, taskIdOf(parent));
    assert.equal(task.name, 'Batch restart OCP agent');
    assert.deepEqual(task.context.listMap.host_ids, [String(host(0).id), String(host(1).id)]);
    assert.equal(task.status, 'SUCCESSFUL');
  });

  it('a cancelled or expired batch confirmation starts nothing when clicked', async () => {
    const confirmButtonValue = (m: { blocks?: unknown[] }) => JSON.parse(buttonValue(m, 'batch_confirm') ?? '{}');
    const tasksBefore = (await readAllTaskIds()).length;

    // Cancel, then Confirm on the same (ephemeral) message: a second operator's or a stale click.
    const a = await user.command(`restart ${host(0).id},${host(1).id}`);
    const first = (await waitFor('the confirmation', () => responsesTo(a.responseUrl)[0])) as { blocks?: unknown[] };
    await user.click(first, 'batch_cancel');
    const late = await user.click(first, 'batch_confirm');
    const refusal = await waitFor('the refusal', () => responsesTo(late.responseUrl)[0]);
    assert.equal(refusal.response_type, 'ephemeral');
    assert.match(String(refusal.text), /type the command again/);

    // Past its lifetime (the stored confirmation says until when), a Confirm is refused too.
    const b = await user.command(`restart ${host(0).id},${host(1).id}`);
    const second = (await waitFor('the confirmation', () => responsesTo(b.responseUrl)[0])) as { blocks?: unknown[] };
    const pending = await stack.js.views.kv('ocp_slack');
    const key = `batch.${confirmButtonValue(second).batchId}`;
    const stored = (await pending.get(key))?.json<Record<string, unknown>>();
    assert.ok(stored?.expiresAt, 'a confirmation has a lifetime');
    await pending.put(key, JSON.stringify({ ...stored, expiresAt: new Date(Date.now() - 1000).toISOString() }));
    const expired = await user.click(second, 'batch_confirm');
    assert.match(String((await waitFor('the refusal', () => responsesTo(expired.responseUrl)[0])).text), /expired/);
    assert.equal((await readAllTaskIds()).length, tasksBefore, 'no task was created');
  });

  it('a Cancel after the Confirm of a batch says it is too late, not that nothing started', async () => {
    const a = await user.command(`restart ${host(2).id},${host(3).id}`);
    const confirm = (await waitFor('the confirmation', () => responsesTo(a.responseUrl)[0])) as { blocks?: unknown[] };
    const before = parents().length;
    const confirmed = await user.click(confirm, 'batch_confirm');
    const started = await waitFor('the start', () => responsesTo(confirmed.responseUrl)[0]);
    assert.match(String(started.text), /started: task \d+/);
    const cancel = await user.click(confirm, 'batch_cancel');
    const answer = await waitFor('the Cancel’s answer', () => responsesTo(cancel.responseUrl)[0]);
    assert.equal(answer.response_type, 'ephemeral', 'the started batch’s message is left as it is');
    assert.match(String(answer.text), /Too late to cancel/);
    await waitForTask(stack.nc, taskIdOf(await newParent(before + 1)));
  });

  it('posts HTTP-started tasks to the default channel', async () => {
    const before = parents('C0DEFAULT').length;
    const res = await fetch(`${eventsUrl.replace('/slack/events', '')}/compute/hosts/${host(3).id}/agent/start`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('operator:operator-secret-2').toString('base64')}` },
    });
    assert.equal(res.status, 200);
    const parent = await newParent(before + 1, 'C0DEFAULT');
    await waitForTask(stack.nc, taskIdOf(parent));
  });

  it('refuses a NATS command that names a Slack origin: no task, nothing posted as that user', async () => {
    // A publisher on ocp.cmd.* posing as a Slack user, to have the notifier post in any channel in their name.
    const before = fake.callsTo('chat.postMessage').length;
    const requestId = newRequestId();
    const answer = await request(stack.nc, stack.js, 'restart', {
      hostId: host(3).id,
      creator: 'mallory',
      requestId,
      origin: { kind: 'slack', channelId: 'C0OPS', userId: 'U0BOB' },
    });
    assert.equal(answer.type, 'rejected', `answered ${JSON.stringify(answer)}`);
    assert.equal(answer.type === 'rejected' && answer.error.code, 10001);
    assert.match(answer.type === 'rejected' ? answer.error.message : '', /origin/);
    assert.equal(await readRequestTask(requestId), undefined, 'no task was made');
    await new Promise((r) => setTimeout(r, 1000));
    const named = fake
      .callsTo('chat.postMessage')
      .slice(before)
      .filter((c) => /U0BOB|mallory/.test(JSON.stringify(c.args)));
    assert.deepEqual(named, [], 'nothing was posted in their name, in no channel');
  });

  it('tells the requester how to fix it when the bot cannot post in the channel', async () => {
    const a = await user.command(`start ${host(3).id}`, { channel: 'C0CLOSED' });
    const answer = await waitFor('the explanation', () => responsesTo(a.responseUrl)[0]);
    assert.equal(answer.response_type, 'ephemeral');
    assert.match(String(answer.text), /not_in_channel/);
    assert.match(String(answer.text), /\/invite/);
  });

  it('shows an agent, a task and a host’s history, only to the asker', async () => {
    const agent = await user.command(`agent ${host(0).name}`, { user: 'U0VIEWER' });
    const a = await waitFor('agent answer', () => responsesTo(agent.responseUrl)[0]);
    assert.equal(a.response_type, 'ephemeral');
    for (const p of ['ocp_agentd', 'ocp_mgragent', 'ocp_monagent', 'pos_proxy']) assert.match(textOf(a), new RegExp(p));
    assert.match(textOf(a), /labels `cluster=obcluster1` `zone=z1`/);

    const latest = parents().at(-1)!;
    const status = await user.command(`status ${taskIdOf(latest)}`, { user: 'U0VIEWER' });
    const st = await waitFor('status answer', () => responsesTo(status.responseUrl)[0]);
    assert.equal(st.response_type, 'ephemeral');
    assert.match(textOf(st), new RegExp(`Task \\*?${taskIdOf(latest)}\\b`));
    assert.match(textOf(st), /SUCCESSFUL|FAILED|RUNNING/);

    const history = await user.command(`history ${host(0).id}`, { user: 'U0VIEWER' });
    const hi = await waitFor('history answer', () => responsesTo(history.responseUrl)[0]);
    assert.match(textOf(hi), /monagent stuck/, 'who ran it and why');
    assert.match(textOf(hi), /U0ALICE/);
    assert.match(textOf(hi), /labels `cluster=obcluster1` `zone=z1`/);
  });
});
