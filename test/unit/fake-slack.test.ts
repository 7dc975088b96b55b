/**
 * The test doubles for Slack (test/helpers/fake-slack.ts, test/helpers/slack-sign.ts),
 * driven by the real clients: @slack/web-api's WebClient against the fake Web
 * API, Bolt's own request verification against the signer, and a whole Bolt App
 * (HTTP receiver on loopback) that gets a signed slash command and a button
 * click, answers on the fake's response_url and posts through the fake.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { App, isValidSlackRequest, LogLevel, verifySlackRequest } from '@slack/bolt';
import { WebClient } from '@slack/web-api';
import { type FakeSlack, startFakeSlack } from '../helpers/fake-slack.js';
import {
  blockActionPayload,
  interactionBody,
  postToSlackEndpoint,
  slackSignature,
  slashCommandBody,
} from '../helpers/slack-sign.js';

function client(fake: FakeSlack, token = fake.token): WebClient {
  return new WebClient(token, {
    slackApiUrl: fake.apiUrl,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    logLevel: LogLevel.ERROR,
  });
}

/** The Slack error code a rejected WebClient call carries. */
async function slackError(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: string; data?: { error?: string } };
    assert.equal(err.code, 'slack_webapi_platform_error', `unexpected error: ${String(e)}`);
    return err.data?.error ?? '(none)';
  }
  assert.fail('the call succeeded');
}

const section = (text: string) => ({ type: 'section', text: { type: 'mrkdwn', text } });

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail('condition not met in time');
    await sleep(10);
  }
}

describe('fake Slack Web API, through @slack/web-api WebClient', () => {
  let fake: FakeSlack;
  let web: WebClient;
  before(async () => {
    fake = await startFakeSlack();
    web = client(fake);
    fake.addChannel('C0OPS');
    fake.addChannel('C0OUTSIDE', { member: false });
  });
  after(() => fake.stop());

  test('listens on loopback and serves auth.test', async () => {
    assert.match(fake.apiUrl, /^http:\/\/127\.0\.0\.1:\d+\/api\/$/);
    const r = await web.auth.test();
    assert.equal(r.ok, true);
    assert.equal(r.user_id, 'U0BOT');
    assert.equal(r.bot_id, 'B0BOT');
    assert.equal(r.team_id, 'T0FAKE');
  });

  test('postMessage then update: channel() shows the current text and blocks', async () => {
    const posted = await web.chat.postMessage({
      channel: 'C0OPS',
      text: 'restart queued',
      blocks: [section('queued')],
    });
    assert.equal(posted.ok, true);
    assert.equal(posted.channel, 'C0OPS');
    assert.match(posted.ts ?? '', /^\d{10}\.\d{6}$/);
    assert.equal(posted.message?.text, 'restart queued');

    const call = fake.callsTo('chat.postMessage').at(-1)!;
    assert.deepEqual(call.args.blocks, [section('queued')], 'blocks arrive as a JSON string and are decoded');
    assert.equal(call.status, 200);

    const updated = await web.chat.update({
      channel: 'C0OPS',
      ts: posted.ts!,
      text: 'restart running',
      blocks: [section('running'), section('host 1')],
    });
    assert.equal(updated.ok, true);
    assert.equal(updated.ts, posted.ts);

    const msgs = fake.channel('C0OPS');
    const msg = msgs.find((m) => m.ts === posted.ts)!;
    assert.equal(msg.text, 'restart running');
    assert.deepEqual(msg.blocks, [section('running'), section('host 1')]);
    assert.equal(msg.updates, 1);
    assert.equal(msg.user, 'U0BOT');

    // Leaving blocks out keeps them, as in Slack.
    await web.chat.update({ channel: 'C0OPS', ts: posted.ts!, text: 'restart done' });
    const again = fake.channel('C0OPS').find((m) => m.ts === posted.ts)!;
    assert.equal(again.text, 'restart done');
    assert.equal(again.blocks?.length, 2);
    assert.equal(again.updates, 2);
  });

  test('ts increase with every message', async () => {
    const a = await web.chat.postMessage({ channel: 'C0OPS', text: 'a' });
    const b = await web.chat.postMessage({ channel: 'C0OPS', text: 'b' });
    assert.ok(Number(b.ts) > Number(a.ts));
    assert.ok(b.ts! > a.ts!);
  });

  test('a thread reply shows in thread(), not among the channel messages; a broadcast shows in both', async () => {
    const parent = await web.chat.postMessage({ channel: 'C0OPS', text: 'task 42' });
    const before = fake.channel('C0OPS').length;
    await web.chat.postMessage({ channel: 'C0OPS', thread_ts: parent.ts!, text: 'step 1 ok' });
    await web.chat.postMessage({ channel: 'C0OPS', thread_ts: parent.ts!, text: 'failed', reply_broadcast: true });
    const replies = fake.thread('C0OPS', parent.ts!);
    assert.deepEqual(
      replies.map((r) => [r.text, r.thread_ts, r.reply_broadcast]),
      [
        ['step 1 ok', parent.ts, undefined],
        ['failed', parent.ts, true],
      ],
    );
    const channelNow = fake.channel('C0OPS');
    assert.equal(channelNow.length, before + 1);
    assert.equal(channelNow.at(-1)?.text, 'failed');
    // Slack accepts a reply to a ts it has no message for.
    const orphan = await web.chat.postMessage({ channel: 'C0OPS', thread_ts: '1600000000.000100', text: 'x' });
    assert.equal(orphan.ok, true);
    assert.equal(fake.thread('C0OPS', '1600000000.000100').length, 1);
  });

  test('update of an unknown ts → message_not_found', async () => {
    assert.equal(
      await slackError(web.chat.update({ channel: 'C0OPS', ts: '1234567890.000001', text: 'x' })),
      'message_not_found',
    );
  });

  test('51 blocks → invalid_blocks; 50 pass; blocks that are not an array → invalid_blocks', async () => {
    const blocks = (n: number) => Array.from({ length: n }, (_, i) => section(`b${i}`));
    assert.equal(
      await slackError(web.chat.postMessage({ channel: 'C0OPS', text: 't', blocks: blocks(51) })),
      'invalid_blocks',
    );
    const ok = await web.chat.postMessage({ channel: 'C0OPS', text: 't', blocks: blocks(50) });
    assert.equal(ok.ok, true);
    assert.equal(
      await slackError(web.chat.update({ channel: 'C0OPS', ts: ok.ts!, text: 't', blocks: blocks(51) })),
      'invalid_blocks',
    );
    assert.equal(
      await slackError(web.chat.postEphemeral({ channel: 'C0OPS', user: 'U1', text: 't', blocks: blocks(51) })),
      'invalid_blocks',
    );
    assert.equal(
      await slackError(web.apiCall('chat.postMessage', { channel: 'C0OPS', text: 't', blocks: { type: 'section' } })),
      'invalid_blocks',
    );
    assert.equal(fake.channel('C0OPS').find((m) => m.ts === ok.ts)?.updates, 0);
  });

  test('unknown channel → channel_not_found; not a member → not_in_channel; no content → no_text', async () => {
    assert.equal(await slackError(web.chat.postMessage({ channel: 'C0NOPE', text: 'x' })), 'channel_not_found');
    assert.equal(await slackError(web.chat.postMessage({ channel: 'C0OUTSIDE', text: 'x' })), 'not_in_channel');
    assert.equal(await slackError(web.chat.postMessage({ channel: 'C0OPS', text: '' })), 'no_text');
    assert.deepEqual(fake.channel('C0OUTSIDE'), []);
  });

  test('wrong or missing token → invalid_auth; unknown method → unknown_method', async () => {
    assert.equal(
      await slackError(client(fake, 'xoxb-wrong').chat.postMessage({ channel: 'C0OPS', text: 'x' })),
      'invalid_auth',
    );
    assert.equal(await slackError(client(fake, '').auth.test()), 'invalid_auth');
    assert.equal(await slackError(web.apiCall('conversations.history', { channel: 'C0OPS' })), 'unknown_method');
    const last = fake.calls.at(-1)!;
    assert.equal(last.method, 'conversations.history');
    assert.deepEqual(last.body, { ok: false, error: 'unknown_method', req_method: 'conversations.history' });
  });

  test('rateLimit: HTTP 429 + Retry-After, WebClient throws slack_webapi_rate_limited_error with retryAfter', async () => {
    fake.rateLimit('chat.postMessage', { calls: 2, retryAfter: 7 });
    const n = fake.calls.length;
    for (let i = 0; i < 2; i++) {
      await assert.rejects(web.chat.postMessage({ channel: 'C0OPS', text: 'limited' }), (e: unknown) => {
        const err = e as { code?: string; retryAfter?: number };
        assert.equal(err.code, 'slack_webapi_rate_limited_error');
        assert.equal(err.retryAfter, 7);
        return true;
      });
    }
    // Other methods are not limited; the third postMessage goes through.
    assert.equal((await web.auth.test()).ok, true);
    assert.equal((await web.chat.postMessage({ channel: 'C0OPS', text: 'through' })).ok, true);
    const recorded = fake.calls.slice(n);
    assert.deepEqual(
      recorded.map((c) => [c.method, c.status]),
      [
        ['chat.postMessage', 429],
        ['chat.postMessage', 429],
        ['auth.test', 200],
        ['chat.postMessage', 200],
      ],
    );
    assert.deepEqual(recorded[0]!.body, { ok: false, error: 'ratelimited' });
    assert.equal(fake.channel('C0OPS').filter((m) => m.text === 'limited').length, 0);

    const raw = await fetch(`${fake.apiUrl}auth.test`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.token}` },
    });
    assert.equal(raw.status, 200);
    fake.rateLimit('*', { calls: 1, retryAfter: 3 });
    const limited = await fetch(`${fake.apiUrl}auth.test`, {
      method: 'POST',
      headers: { authorization: `Bearer ${fake.token}` },
    });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '3');
    assert.deepEqual(await limited.json(), { ok: false, error: 'ratelimited' });
  });

  test('usergroups.users.list, with latency; unknown group → no_such_subteam', async () => {
    fake.setUsergroup('S0OPERATORS', ['U1', 'U2']);
    const r = await web.usergroups.users.list({ usergroup: 'S0OPERATORS' });
    assert.deepEqual(r.users, ['U1', 'U2']);
    assert.equal(await slackError(web.usergroups.users.list({ usergroup: 'S0NOPE' })), 'no_such_subteam');

    fake.usergroupDelayMs = 150;
    const started = Date.now();
    await web.usergroups.users.list({ usergroup: 'S0OPERATORS' });
    assert.ok(Date.now() - started >= 140);
    fake.usergroupDelayMs = 0;
  });

  test('usergroups.list: ids, handles and names; members only with include_users', async () => {
    fake.setUsergroup('S0ONCALL', ['U1'], { handle: 'oncall', name: 'On-call' });
    const bare = await web.usergroups.list({});
    const oncall = bare.usergroups?.find((g) => g.id === 'S0ONCALL');
    assert.equal(oncall?.handle, 'oncall');
    assert.equal(oncall?.name, 'On-call');
    assert.equal(oncall?.users, undefined);
    const full = await web.usergroups.list({ include_users: true });
    assert.deepEqual(full.usergroups?.find((g) => g.id === 'S0ONCALL')?.users, ['U1']);
  });

  test('postEphemeral is recorded', async () => {
    const r = await web.chat.postEphemeral({ channel: 'C0OPS', user: 'U9', text: 'only you', blocks: [section('x')] });
    assert.equal(r.ok, true);
    assert.match(r.message_ts ?? '', /^\d{10}\.\d{6}$/);
    assert.deepEqual(fake.ephemerals.at(-1), {
      channel: 'C0OPS',
      user: 'U9',
      text: 'only you',
      blocks: [section('x')],
    });
  });

  test('JSON bodies are accepted too (token in the header)', async () => {
    const res = await fetch(`${fake.apiUrl}chat.postMessage`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${fake.token}` },
      body: JSON.stringify({ channel: 'C0OPS', text: 'json', blocks: [section('j')], reply_broadcast: false }),
    });
    const body = (await res.json()) as { ok: boolean; ts: string };
    assert.equal(body.ok, true);
    assert.deepEqual(fake.channel('C0OPS').find((m) => m.ts === body.ts)?.blocks, [section('j')]);
  });

  test('response_url POSTs are recorded; a url takes at most 5', async () => {
    const url = fake.responseUrl();
    assert.notEqual(url, fake.responseUrl(), 'each response_url is fresh');
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\//);
    const body = { text: 'done', response_type: 'ephemeral', replace_original: false, blocks: [section('d')] };
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(fake.responses.at(-1), { url, body });
    for (let i = 0; i < 4; i++) {
      await fetch(url, { method: 'POST', body: JSON.stringify({ text: `n${i}` }) });
    }
    const sixth = await fetch(url, { method: 'POST', body: JSON.stringify({ text: 'too many' }) });
    assert.equal(sixth.status, 404);
    assert.equal(fake.responses.filter((r) => r.url === url).length, 5);
  });
});

describe('Slack request signing', () => {
  // Slack's worked example (docs: "Verifying requests from Slack").
  const DOC_SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
  const DOC_TS = 1531420618;
  const DOC_BODY =
    'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
  const DOC_SIG = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503';

  test("slackSignature matches Slack's published vector and an independent HMAC", () => {
    assert.equal(slackSignature(DOC_SECRET, DOC_TS, DOC_BODY), DOC_SIG);
    const secret = 'test-signing-secret';
    const body = 'payload=%7B%22a%22%3A1%7D';
    const independent = `v0=${createHmac('sha256', secret).update(`v0:1700000123:${body}`).digest('hex')}`;
    assert.equal(slackSignature(secret, 1700000123, body), independent);
  });

  test("Bolt's verifySlackRequest accepts slackSignature and rejects a tampered body", () => {
    const secret = 'test-signing-secret';
    const ts = Math.floor(Date.now() / 1000);
    const body = slashCommandBody({
      command: '/ocp',
      text: 'restart host-1',
      user_id: 'U1',
      channel_id: 'C0OPS',
      trigger_id: 't.1',
      response_url: 'http://127.0.0.1:1/response/1',
    });
    const headers = { 'x-slack-signature': slackSignature(secret, ts, body), 'x-slack-request-timestamp': ts };
    verifySlackRequest({ signingSecret: secret, body, headers });
    assert.equal(isValidSlackRequest({ signingSecret: secret, body: `${body}&x=1`, headers }), false);
    assert.equal(isValidSlackRequest({ signingSecret: 'other', body, headers }), false);
  });

  test('slashCommandBody and interactionBody are form bodies with the fields Slack sends', () => {
    const f = new URLSearchParams(
      slashCommandBody({
        command: '/ocp',
        text: 'restart host-1 & host-2',
        user_id: 'U1',
        channel_id: 'C0OPS',
        trigger_id: 't.1',
        response_url: 'http://127.0.0.1:1/response/1',
      }),
    );
    assert.deepEqual(
      [...f.keys()],
      [
        'token',
        'team_id',
        'team_domain',
        'channel_id',
        'channel_name',
        'user_id',
        'user_name',
        'command',
        'text',
        'api_app_id',
        'is_enterprise_install',
        'response_url',
        'trigger_id',
      ],
    );
    assert.equal(f.get('text'), 'restart host-1 & host-2');
    assert.equal(f.get('team_id'), 'T0FAKE');
    const p = blockActionPayload({
      user_id: 'U1',
      channel_id: 'C0OPS',
      action_id: 'approve',
      value: '42',
      response_url: 'http://127.0.0.1:1/response/2',
      trigger_id: 't.2',
      message_ts: '1700000000.000100',
    });
    const back = JSON.parse(new URLSearchParams(interactionBody(p)).get('payload')!) as typeof p;
    assert.deepEqual(back, p);
    assert.equal(back.type, 'block_actions');
  });
});

describe('a Bolt App wired to the fakes', () => {
  const secret = 'bolt-signing-secret';
  let fake: FakeSlack;
  let app: App;
  let endpoint: string;
  const seen: string[] = [];

  before(async () => {
    fake = await startFakeSlack({ token: 'xoxb-bolt-test' });
    fake.addChannel('C0OPS');
    app = new App({
      signingSecret: secret,
      token: fake.token,
      clientOptions: { slackApiUrl: fake.apiUrl },
      logLevel: LogLevel.ERROR,
    });
    app.command('/ocp', async ({ ack, respond, client: c, command }) => {
      await ack();
      seen.push(`command:${command.text}`);
      await respond({ text: `on it: ${command.text}`, response_type: 'ephemeral' });
      await c.chat.postMessage({ channel: command.channel_id, text: `task for ${command.user_id}` });
    });
    app.action('approve', async ({ ack, respond, body }) => {
      await ack();
      seen.push(`action:${body.user.id}`);
      await respond({ text: 'approved', replace_original: true });
    });
    const server = (await app.start({ port: 0, host: '127.0.0.1' })) as Server;
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/slack/events`;
  });
  after(async () => {
    await app.stop();
    await fake.stop();
  });

  test('the App checked its token with auth.test against the fake', async () => {
    await until(() => fake.callsTo('auth.test').length > 0);
    assert.equal(fake.callsTo('auth.test')[0]!.status, 200);
  });

  test('a signed slash command is acked; respond() and the client reach the fake', async () => {
    const responseUrl = fake.responseUrl();
    const body = slashCommandBody({
      command: '/ocp',
      text: 'restart host-1',
      user_id: 'U1',
      channel_id: 'C0OPS',
      trigger_id: 't.1',
      response_url: responseUrl,
    });
    const r = await postToSlackEndpoint(endpoint, secret, body);
    assert.equal(r.status, 200);
    assert.ok(r.ms >= 0);
    await until(() => fake.channel('C0OPS').length > 0);
    assert.deepEqual(fake.responses.at(-1), {
      url: responseUrl,
      body: { text: 'on it: restart host-1', response_type: 'ephemeral' },
    });
    assert.equal(fake.channel('C0OPS')[0]!.text, 'task for U1');
  });

  test('a block action is acked and answered on its response_url', async () => {
    const responseUrl = fake.responseUrl();
    const payload = blockActionPayload({
      user_id: 'U7',
      channel_id: 'C0OPS',
      action_id: 'approve',
      value: 'task-1',
      response_url: responseUrl,
      trigger_id: 't.3',
      message_ts: '1700000000.000100',
    });
    const r = await postToSlackEndpoint(endpoint, secret, interactionBody(payload));
    assert.equal(r.status, 200);
    await until(() => fake.responses.some((x) => x.url === responseUrl));
    assert.deepEqual(fake.responses.find((x) => x.url === responseUrl)?.body, {
      text: 'approved',
      replace_original: true,
    });
    assert.ok(seen.includes('action:U7'));
  });

  test('a bad signature or a stale timestamp is refused with 401 and never reaches a handler', async () => {
    const before = seen.length;
    const body = slashCommandBody({
      command: '/ocp',
      text: 'forged',
      user_id: 'U1',
      channel_id: 'C0OPS',
      trigger_id: 't.4',
      response_url: fake.responseUrl(),
    });
    const forged = await postToSlackEndpoint(endpoint, secret, body, { signature: slackSignature('wrong', 1, body) });
    assert.equal(forged.status, 401);
    const tampered = await postToSlackEndpoint(endpoint, secret, body.replace('forged', 'tampered'), {
      signature: slackSignature(secret, Math.floor(Date.now() / 1000), body),
    });
    assert.equal(tampered.status, 401);
    const stale = await postToSlackEndpoint(endpoint, secret, body, { timestamp: Math.floor(Date.now() / 1000) - 600 });
    assert.equal(stale.status, 401);
    await sleep(50);
    assert.equal(seen.length, before);
  });
});
