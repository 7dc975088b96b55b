/**
 * A bot token Slack refuses (revoked, mistyped, rotated under the service's feet) must not take
 * the service down (SPEC §7: a process that dies loses nothing, but it must not die of this):
 * Slack commands are still answered (they need no token: the answer goes to the response_url),
 * the HTTP API and the executors go on, and the refusal is logged, without the token.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../../src/logger.js';
import { type Service, startService } from '../../src/service.js';
import { type FakeSlack, startFakeSlack } from '../helpers/fake-slack.js';
import { SIGNING_SECRET, slackUser } from '../helpers/slack-user.js';
import { basicAuth, type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

const REFUSED_TOKEN = 'xoxb-refused-by-slack-0123456789';

describe('Slack refuses the bot token from the start', () => {
  let fake: FakeSlack;
  let stack: Stack;
  let svc: Service;
  const lines: string[] = [];

  before(async () => {
    fake = await startFakeSlack(); // accepts its own token only
    fake.addChannel('C0OPS');
    stack = await startStack({
      hosts: 1,
      slack: {
        apiUrl: fake.apiUrl,
        botToken: REFUSED_TOKEN,
        signingSecret: SIGNING_SECRET,
        defaultChannel: 'C0OPS',
        access: { HOST_MANAGER: { users: ['U0ALICE'] }, TASK_VIEWER: { users: ['U0ALICE'] } },
      },
    });
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    // in this process: an unhandled rejection here fails the test run
    svc = await startService({ config: stack.config, logger: createLogger('debug', sink), natsUrl: stack.nats.url });
  });
  after(async () => {
    await svc?.stop();
    await stack?.stop();
    await fake?.stop();
  });

  it('Slack said invalid_auth; the refusal is logged, the token is not', async () => {
    await waitFor('Slack to be asked who the bot is', () => fake.callsTo('auth.test').length > 0 || undefined);
    assert.ok(fake.callsTo('auth.test').every((c) => (c.body as { error?: string }).error === 'invalid_auth'));
    await waitFor('the refusal in the log', () => lines.some((l) => /invalid_auth/.test(l)) || undefined);
    assert.ok(!lines.join('').includes(REFUSED_TOKEN), 'the token is not in the log');
  });

  it('Slack commands are still answered, ephemerally', async () => {
    const user = slackUser(fake, `http://127.0.0.1:${svc.httpPort}/slack/events`);
    for (const text of ['help', 'list', 'reboot 101']) {
      const a = await user.command(text);
      assert.equal(a.status, 200, `${text}: HTTP ${a.status}`);
      const shown =
        a.text.trim() !== ''
          ? (JSON.parse(a.text) as Record<string, unknown>)
          : (await waitFor(`${text}: the answer`, () => fake.responses.find((r) => r.url === a.responseUrl))).body;
      assert.equal(shown.response_type, 'ephemeral', `${text}: ${JSON.stringify(shown)}`);
    }
  });

  it('a restart from Slack and one from HTTP still run to the end', async () => {
    const sub = stack.nc.subscribe('ocp.events.request.>', { max: 1 });
    const user = slackUser(fake, `http://127.0.0.1:${svc.httpPort}/slack/events`);
    assert.equal((await user.command('restart 101 token refused')).status, 200);
    let taskId = 0;
    for await (const m of sub) taskId = m.json<{ taskId: number }>().taskId;
    assert.equal((await waitForTask(stack.nc, taskId)).status, 'SUCCESSFUL');

    const res = await fetch(`http://127.0.0.1:${svc.httpPort}/compute/hosts/101/agent/restart`, {
      method: 'POST',
      headers: { authorization: basicAuth('operator') },
    });
    assert.equal(res.status, 200);
    const id = ((await res.json()) as { data: { id: number } }).data.id;
    assert.equal((await waitForTask(stack.nc, id)).status, 'SUCCESSFUL');
  });
});
