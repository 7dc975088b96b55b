/**
 * Slack in Socket Mode end to end: the service with SLACK_BOT_TOKEN and
 * SLACK_APP_TOKEN (no signing secret), real nats-server and sshd hosts, a fake
 * Web API, and a local stand-in of Slack's Socket Mode that opens the
 * WebSocket, sends commands and clicks as envelopes, and records the acks.
 * What a user sees must be what they see over HTTP (slack.test.ts).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Service } from '../../src/service.js';
import type { FakeSlack } from '../helpers/fake-slack.js';
import { type FakeSlackSocket, startFakeSlackSocket } from '../helpers/fake-slack-socket.js';
import { clearFaults, setFault } from '../helpers/sim-agent.js';
import { postToSlackEndpoint, slashCommandBody } from '../helpers/slack-sign.js';
import { SLACK_CHANNEL, SLACK_USERS, startFakeSlackAndStack } from '../helpers/slack-stack.js';
import { buttonValue, SIGNING_SECRET, socketUser, taskIdOf, textOf } from '../helpers/slack-user.js';
import { type Stack, waitFor, waitForTask } from '../helpers/stack.js';

const APP_TOKEN = 'xapp-1-A0FAKE-1-socket-mode-test';

describe('Slack in Socket Mode', () => {
  let fake: FakeSlack;
  let socket: FakeSlackSocket;
  let stack: Stack;
  let svc: Service;
  let user: ReturnType<typeof socketUser>;

  before(async () => {
    ({ fake, stack } = await startFakeSlackAndStack({
      hosts: 2,
      managers: [SLACK_USERS.manager],
      viewers: [SLACK_USERS.viewer],
      appToken: APP_TOKEN,
    }));
    socket = await startFakeSlackSocket(fake, { appToken: APP_TOKEN });
    svc = await stack.startService();
    await socket.waitForConnection();
    user = socketUser(fake, socket);
  });
  after(async () => {
    await stack?.stop();
    await socket?.stop();
    await fake?.stop();
  });

  const host = (i: number) => stack.sshd.hosts[i]!;
  const parents = () => fake.channel(SLACK_CHANNEL).filter((m) => !m.thread_ts);
  const responsesTo = (url: string) => fake.responses.filter((r) => r.url === url).map((r) => r.body);
  const newParent = (count: number) => waitFor(`parent message #${count}`, () => parents()[count - 1]);
  const opens = () => fake.callsTo('apps.connections.open');
  const published = async () => {
    const jsm = await stack.nc.jetstreamManager();
    return (await jsm.streams.info('OCP_DOOR')).state.messages + (await jsm.streams.info('OCP_CMD')).state.messages;
  };

  it('connects through apps.connections.open on SLACK_API_URL with the app-level token', () => {
    const [first] = opens();
    assert.ok(first, 'apps.connections.open was called on the fake Web API');
    // The fake gives a WebSocket URL only for the app-level token (as a bearer): a connection proves it.
    assert.deepEqual(first.body, { ok: true, url: (first.body as { url: string }).url });
    assert.equal(socket.opened(), 1);
  });

  it('restarts a host from a slash command envelope: acked at once, parent, replies in its thread, SUCCESSFUL', async () => {
    const before = parents().length;
    const { ack, responseUrl } = await user.command(`restart ${host(0).id} monagent stuck`);
    // Bolt's bare ack(): the envelope_id and an empty payload, so Slack shows nothing but the task.
    assert.deepEqual(ack.payload, {});
    const parent = await newParent(before + 1);
    const taskId = taskIdOf(parent);
    assert.match(textOf(parent), /monagent stuck/);
    assert.match(textOf(parent), /<@U0ALICE>/);
    const task = await waitForTask(stack.nc, taskId);
    assert.equal(task.status, 'SUCCESSFUL');
    assert.equal(task.creator, 'slack:U0ALICE');
    const replies = await waitFor('6 thread replies', () => {
      const t = fake.thread(SLACK_CHANNEL, parent.ts);
      return t.length >= 6 ? t : undefined;
    });
    task.subtasks.forEach((s, i) => {
      assert.match(replies[i]!.text ?? '', new RegExp(`${s.name}.*SUCCESSFUL`), `reply ${i}`);
    });
    assert.match(replies[5]!.text ?? '', /Restart OCP agent SUCCESSFUL/);
    await waitFor('the parent to say SUCCESSFUL', () => {
      const p = parents().find((m) => m.ts === parent.ts);
      return p && /SUCCESSFUL/.test(textOf(p)) ? p : undefined;
    });
    assert.deepEqual(responsesTo(responseUrl), [], 'nothing else said to the requester');
  });

  it('answers bad text and an unknown host in the ack itself, as the HTTP answer would, and publishes nothing', async () => {
    const before = await published();
    const unknown = await user.command('restart 999');
    assert.equal(unknown.ack.payload?.response_type, 'ephemeral');
    assert.match(String(unknown.ack.payload?.text), /Unknown host `999`/);
    assert.match(String(unknown.ack.payload?.text), new RegExp(`${host(0).id} \\(${host(0).name}\\)`));
    const bad = await user.command('reboot 101');
    assert.equal(bad.ack.payload?.response_type, 'ephemeral');
    assert.match(String(bad.ack.payload?.text), /restart/);
    assert.equal(await published(), before);
    assert.deepEqual([...responsesTo(unknown.responseUrl), ...responsesTo(bad.responseUrl)], []);
  });

  it('refuses a user without the role on the response_url, naming it', async () => {
    const before = await published();
    const { ack, responseUrl } = await user.command(`restart ${host(0).id}`, { user: SLACK_USERS.viewer });
    assert.deepEqual(ack.payload, {});
    const answer = await waitFor('the refusal', () => responsesTo(responseUrl)[0]);
    assert.equal(answer.response_type, 'ephemeral');
    assert.match(String(answer.text), /HOST_MANAGER/);
    assert.equal(await published(), before);
  });

  it('a Retry click envelope is acked and runs the failed task again to SUCCESSFUL', async () => {
    setFault(host(1).agentHome, 'restart', 'fail');
    const before = parents().length;
    await user.command(`restart ${host(1).id}`);
    const parent = await newParent(before + 1);
    const taskId = taskIdOf(parent);
    assert.equal((await waitForTask(stack.nc, taskId)).status, 'FAILED');
    const failed = await waitFor('Retry on the parent', () => {
      const p = parents().find((m) => m.ts === parent.ts);
      return p && buttonValue(p, 'task_retry') ? p : undefined;
    });
    clearFaults(host(1).agentHome);
    const { ack } = await user.click(failed, 'task_retry');
    assert.deepEqual(ack.payload, {});
    const done = await waitForTask(stack.nc, taskId, (t) => t.status === 'SUCCESSFUL');
    assert.equal(done.operation, 'RETRY');
    await waitFor('the parent to say SUCCESSFUL', () => {
      const p = parents().find((m) => m.ts === parent.ts);
      return p && /SUCCESSFUL/.test(textOf(p)) && !buttonValue(p, 'task_retry') ? p : undefined;
    });
  });

  it('does not serve /slack/events: a signed command there is refused and starts nothing', async () => {
    const before = await published();
    const body = slashCommandBody({
      command: '/ocp-agent',
      text: `restart ${host(0).id}`,
      user_id: SLACK_USERS.manager,
      channel_id: SLACK_CHANNEL,
      trigger_id: 'over-http.1',
      response_url: fake.responseUrl(),
    });
    const res = await postToSlackEndpoint(`http://127.0.0.1:${svc.httpPort}/slack/events`, SIGNING_SECRET, body);
    assert.equal(res.status, 401, 'left to the HTTP API, which wants its own credentials');
    assert.equal(await published(), before);
  });

  it('opens a new connection when the link drops, asking apps.connections.open until it answers', async () => {
    const calls = opens().length;
    // Three failures in a row: more than the Web API client's own retries (SLACK_RETRY) take.
    socket.unavailable(3);
    socket.drop();
    await socket.waitForConnection(2, 20_000);
    assert.deepEqual(
      opens()
        .slice(calls)
        .map((c) => c.status),
      [503, 503, 503, 200],
      'a fresh URL, once Slack answers again',
    );
    const before = parents().length;
    const { ack } = await user.command(`start ${host(0).id}`);
    assert.deepEqual(ack.payload, {});
    const parent = await newParent(before + 1);
    assert.equal((await waitForTask(stack.nc, taskIdOf(parent))).status, 'SUCCESSFUL');
  });

  it('stop closes the WebSocket with a close handshake', async () => {
    assert.deepEqual(socket.strays, [], 'every message from the app acknowledged an envelope it was sent');
    await svc.stop();
    assert.equal(socket.open(), 0);
    assert.deepEqual(socket.closes.at(-1), { code: 1000, clean: true });
  });
});
