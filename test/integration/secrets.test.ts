/**
 * SPEC §7: no secret appears in a log line, a Slack message or an API answer. The service runs
 * as its own process (src/main.ts) at LOG_LEVEL=trace, every line of its stdout and stderr kept,
 * with sentinel secrets: the Slack bot token and signing secret, the HTTP Basic passwords (and
 * their scrypt hashes), the NATS password of a nats-server that requires it, and the SSH private
 * key. It is driven through what makes logs talk: restarts that succeed and fail (a failing
 * step's output), retries and rollbacks, wrong passwords, refused and malformed Slack commands
 * and clicks, bad NATS payloads, Slack answering invalid_auth and 429, a configuration error, a
 * wrong NATS password, and a drain. Then no sentinel may appear in any log line, any HTTP answer
 * (body or headers), anything posted to the fake Slack (messages, updates, ephemerals,
 * response_url posts, call arguments — the bot token the fake was handed to authenticate aside),
 * nor anywhere in JetStream: task records, events, requests, logs, locks.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { connect, type NatsConnection } from 'nats';
import { stringify } from 'yaml';
import { hashPassword } from '../../src/http/auth.js';
import { ACTIONS } from '../../src/slack/render-blocks.js';
import { type FakeSlack, startFakeSlack } from '../helpers/fake-slack.js';
import { killOnExit, type NatsServerHandle, startNatsServer, waitForExit } from '../helpers/nats-server.js';
import { type RawAnswer, rawHttp } from '../helpers/raw-http.js';
import { clearFaults, setFault } from '../helpers/sim-agent.js';
import { blockActionPayload, postToSlackEndpoint, slackSignature, slashCommandBody } from '../helpers/slack-sign.js';
import { buttonValue, taskIdOf } from '../helpers/slack-user.js';
import { type SshdHandle, startSshd } from '../helpers/sshd.js';
import { waitFor } from '../helpers/stack.js';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;

/** One random tag in every sentinel: any trace of it anywhere is a leak. */
const TAG = randomBytes(8).toString('hex');
const SECRETS = {
  botToken: `xoxb-SENTINEL-bot-${TAG}`,
  signingSecret: `SENTINEL-signing-${TAG}`,
  natsPassword: `SENTINEL-nats-${TAG}`,
  wrongNatsPassword: `SENTINEL-natswrong-${TAG}`,
  wrongPassword: `SENTINEL-wrongpw-${TAG}`,
  // Set though the test key is not encrypted: the service must still never show it.
  sshKeyPassphrase: `SENTINEL-sshpass-${TAG}`,
};
const USERS = {
  admin: { password: `SENTINEL-pw-admin-${TAG}`, roles: ['ADMIN'] },
  operator: {
    password: `SENTINEL-pw-operator-${TAG}`,
    roles: ['HOST_MANAGER', 'HOST_VIEWER', 'TASK_MANAGER', 'TASK_VIEWER'],
  },
  viewer: { password: `SENTINEL-pw-viewer-${TAG}`, roles: ['HOST_VIEWER', 'TASK_VIEWER'] },
} as const;
type User = keyof typeof USERS;
const b64 = (s: string) => Buffer.from(s).toString('base64');
const basic = (user: string, password: string) => `Basic ${b64(`${user}:${password}`)}`;

const SLACK = { manager: 'U0ALICE', nobody: 'U0NOBODY', late: 'U0LATE', channel: 'C0OPS' };

describe('secrets: none in logs, API answers, Slack or JetStream', () => {
  let nats: NatsServerHandle;
  let sshd: SshdHandle;
  let fake: FakeSlack;
  let dir: string;
  let configPath: string;
  let nc: NatsConnection;
  let child: ChildProcess;
  let port: number;
  /** Every line the service (and the processes refused at start) wrote. */
  const logs: string[] = [];
  /** Every HTTP answer the service gave. */
  const answers: RawAnswer[] = [];
  /** The strings whose appearance anywhere is a leak. */
  const sentinels: Array<[name: string, value: string]> = [];

  function env(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      CONFIG_FILE: configPath,
      NATS_URL: nats.url,
      NATS_USER: 'ocp',
      NATS_PASSWORD: SECRETS.natsPassword,
      HTTP_PORT: '0',
      HTTP_HOST: '127.0.0.1',
      LOG_LEVEL: 'trace',
      SLACK_API_URL: fake.apiUrl,
      SLACK_BOT_TOKEN: SECRETS.botToken,
      SLACK_SIGNING_SECRET: SECRETS.signingSecret,
      SSH_KEY_PASSPHRASE: SECRETS.sshKeyPassphrase,
      ...extra,
    };
  }

  /** Run main.ts; every line it writes goes to `logs`. */
  function runService(extra: NodeJS.ProcessEnv = {}): { proc: ChildProcess; output: () => string } {
    const proc = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), MAIN], {
      cwd: dir,
      env: env(extra),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const unregister = killOnExit(() => proc.kill('SIGKILL'));
    proc.once('exit', () => unregister());
    let text = '';
    for (const stream of [proc.stdout, proc.stderr]) {
      let partial = '';
      stream?.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const lines = (partial + chunk.toString()).split('\n');
        partial = lines.pop() ?? '';
        logs.push(...lines);
      });
      stream?.on('end', () => {
        if (partial !== '') logs.push(partial);
      });
    }
    return { proc, output: () => text };
  }

  async function http(method: string, path: string, auth: string | undefined, body?: unknown): Promise<RawAnswer> {
    const headers: Record<string, string> = auth ? { authorization: auth } : {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    const a = await rawHttp(
      port,
      method,
      path,
      headers,
      body === undefined ? undefined : Buffer.from(JSON.stringify(body)),
    );
    answers.push(a);
    return a;
  }
  const as = (u: User) => basic(u, USERS[u].password);
  const data = <T>(a: RawAnswer): T => {
    assert.ok(a.status === 200, `HTTP ${a.status}: ${a.text}`);
    return (JSON.parse(a.text) as { data: T }).data;
  };

  async function taskDone(
    taskId: number,
  ): Promise<{ status: string; subtasks: Array<{ id: number; status: string }> }> {
    return waitFor(
      `task ${taskId} to end`,
      async () => {
        const t = data<{ status: string; subtasks: Array<{ id: number; status: string }> }>(
          await http('GET', `/api/v2/tasks/instances/${taskId}`, as('viewer')),
        );
        return t.status === 'RUNNING' ? undefined : t;
      },
      60_000,
    );
  }

  async function slash(text: string, user: string, trigger = `${Date.now()}.${randomBytes(3).toString('hex')}`) {
    const responseUrl = fake.responseUrl();
    const body = slashCommandBody({
      command: '/ocp-agent',
      text,
      user_id: user,
      channel_id: SLACK.channel,
      trigger_id: trigger,
      response_url: responseUrl,
    });
    const res = await postToSlackEndpoint(`http://127.0.0.1:${port}/slack/events`, SECRETS.signingSecret, body);
    answers.push({ status: res.status, headers: {}, text: res.text });
    return { ...res, responseUrl, requestId: `slack-${trigger.replace(/[^A-Za-z0-9_-]/g, '_')}` };
  }
  const responseTo = (url: string) => waitFor(`an answer on ${url}`, () => fake.responses.find((r) => r.url === url));

  before(async () => {
    nats = await startNatsServer({ auth: { user: 'ocp', password: SECRETS.natsPassword } });
    sshd = await startSshd({ hosts: 2 });
    fake = await startFakeSlack({ token: SECRETS.botToken });
    fake.addChannel(SLACK.channel);
    fake.setUsergroup('S0VIEWERS', [SLACK.manager]);
    fake.setUsergroup('S0LATE', [SLACK.late]);
    dir = mkdtempSync(join(tmpdir(), 'ocp-secrets-'));
    configPath = join(dir, 'ocp-chatops.yml');
    const users = Object.entries(USERS).map(([username, u]) => ({
      username,
      passwordHash: hashPassword(u.password, randomBytes(16)),
      roles: u.roles,
    }));
    writeFileSync(
      configPath,
      stringify({
        hosts: sshd.hosts.map(({ id, name, address, port: p, username, agentHome }) => ({
          id,
          name,
          address,
          port: p,
          username,
          agentHome,
        })),
        ssh: {
          privateKeyPath: sshd.privateKeyPath,
          knownHostsPath: sshd.knownHostsPath,
          killGraceSeconds: 2,
          connectTimeoutSeconds: 5,
        },
        executor: { leaseSeconds: 4, concurrency: 8 },
        access: {
          users,
          slack: {
            HOST_MANAGER: { users: [SLACK.manager] },
            TASK_MANAGER: { users: [SLACK.manager] },
            TASK_VIEWER: { usergroups: ['S0VIEWERS'] },
            // first asked for while Slack refuses the token
            HOST_VIEWER: { usergroups: ['S0LATE'] },
          },
        },
        slack: { defaultChannel: SLACK.channel },
      }),
    );

    // the sentinels: each secret, the Basic headers and scrypt hashes, a piece of the private key
    for (const [k, v] of Object.entries(SECRETS)) sentinels.push([k, v]);
    for (const [u, { password }] of Object.entries(USERS)) {
      sentinels.push([`password of ${u}`, password], [`Basic header of ${u}`, b64(`${u}:${password}`)]);
    }
    sentinels.push(['Basic header with the wrong password', b64(`operator:${SECRETS.wrongPassword}`)]);
    for (const u of users) sentinels.push([`scrypt hash of ${u.username}`, u.passwordHash.split(':')[2] as string]);
    const key = readFileSync(sshd.privateKeyPath, 'utf8');
    const body = key
      .split('\n')
      .filter((l) => l && !l.startsWith('-----'))
      .join('');
    sentinels.push(['private key (start)', body.slice(20, 52)], ['private key (middle)', body.slice(120, 152)]);
    sentinels.push(['the tag every sentinel carries', TAG]);

    nc = await connect({ servers: nats.url, user: 'ocp', pass: SECRETS.natsPassword });
    child = runService().proc;
    const ready = await waitFor(
      'the service to be ready',
      () => {
        for (const l of logs) {
          if (!l.startsWith('{')) continue;
          const j = JSON.parse(l) as { msg?: string; httpPort?: number };
          if (j.msg === 'ready' && j.httpPort) return j.httpPort;
        }
        if (child.exitCode !== null) throw new Error(`service exited ${child.exitCode}:\n${logs.join('\n')}`);
        return undefined;
      },
      30_000,
    );
    port = ready;
  });

  after(async () => {
    // the service's own words, when a test failed (TEST_LOG_DUMP=<file>)
    if (process.env.TEST_LOG_DUMP) writeFileSync(process.env.TEST_LOG_DUMP, logs.join('\n'));
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await nc?.close();
    await fake?.stop();
    await sshd?.stop();
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('Slack refusing the token (invalid_auth) and rate-limiting: errors are logged, not the token', async () => {
    fake.token = 'xoxb-someone-else';
    const callsBefore = fake.calls.length;
    // a user whose role comes from a group not looked up yet: usergroups.users.list answers invalid_auth
    const r = await slash('agent 101', SLACK.late);
    assert.equal(r.status, 200);
    const refusal = await responseTo(r.responseUrl);
    assert.match(String(refusal.body.text), /HOST_VIEWER/, 'an unreadable group grants nothing');
    // an HTTP restart: the notifier's posts to the default channel answer invalid_auth
    const t = data<{ id: number }>(await http('POST', '/compute/hosts/102/agent/restart', as('operator')));
    await taskDone(t.id);
    await waitFor(
      'Slack to have refused a post',
      () =>
        fake.calls.slice(callsBefore).some((c) => (c.body as { error?: string })?.error === 'invalid_auth') ||
        undefined,
    );
    fake.token = SECRETS.botToken;

    fake.rateLimit('*', { calls: 3, retryAfter: 1 });
    const t2 = data<{ id: number }>(await http('POST', '/compute/hosts/101/agent/restart', as('operator')));
    await taskDone(t2.id);
    await waitFor(
      'the rate-limited task’s parent to say SUCCESSFUL',
      () =>
        fake
          .channel(SLACK.channel)
          .some((m) => !m.thread_ts && taskIdOf(m) === t2.id && /SUCCESSFUL/.test(JSON.stringify(m.blocks))) ||
        undefined,
      30_000,
    );
  });

  it('HTTP: restarts that succeed and fail, a failed step’s log, retry, rollback, wrong passwords', async () => {
    const ok = data<{ id: number }>(
      await http('POST', '/compute/hosts/101/agent/restart', as('operator'), { reason: 'secrets test' }),
    );
    assert.equal((await taskDone(ok.id)).status, 'SUCCESSFUL');

    setFault(sshd.hosts[1]!.agentHome, 'start', 'fail');
    const bad = data<{ id: number }>(await http('POST', '/api/v2/compute/hosts/102/agent/restart', as('admin')));
    const failed = await taskDone(bad.id);
    assert.equal(failed.status, 'FAILED');
    const sub = failed.subtasks.find((s) => s.status === 'FAILED')!;
    const log = data<{ log: string }>(
      await http('GET', `/api/v2/tasks/instances/${bad.id}/subtasks/${sub.id}/log`, as('viewer')),
    );
    assert.match(log.log, /simulated failure of start/, 'the failed step’s output is there');
    data(await http('POST', `/api/v2/tasks/instances/${bad.id}/retry`, as('operator')));
    assert.equal((await taskDone(bad.id)).status, 'FAILED');
    data(await http('POST', `/api/v2/tasks/instances/${bad.id}/rollback`, as('operator')));
    assert.equal((await taskDone(bad.id)).status, 'FAILED', 'the rollback starts the agent, which fails too');
    clearFaults(sshd.hosts[1]!.agentHome);

    const refusals: Array<[string | undefined, string, number]> = [
      [basic('operator', SECRETS.wrongPassword), '/api/v2/tasks/instances', 401],
      [basic('nobody', SECRETS.wrongPassword), '/api/v2/tasks/instances', 401],
      [basic('operator', USERS.admin.password), '/api/v2/tasks/instances', 401],
      [`Bearer ${SECRETS.botToken}`, '/api/v2/tasks/instances', 401],
      [`Basic ${b64(USERS.operator.password)}`, '/api/v2/tasks/instances', 401],
      [undefined, '/api/v2/tasks/instances', 401],
      [as('viewer'), '/compute/hosts/101/agent/restart', 403],
    ];
    for (const [auth, path, status] of refusals) {
      const a = await http(path.endsWith('restart') ? 'POST' : 'GET', path, auth);
      assert.equal(a.status, status, a.text);
    }
    // a malformed body, an unknown host, a task that is not there, the agent read over SSH
    assert.equal(
      (await http('POST', '/compute/hosts/batchRestartAgents', as('operator'), { hostIds: 'all' })).status,
      400,
    );
    assert.equal((await http('POST', '/compute/hosts/999/agent/restart', as('operator'))).status, 404);
    assert.equal((await http('GET', '/api/v2/tasks/instances/424242', as('viewer'))).status, 404);
    assert.equal((await http('GET', '/compute/hosts/101/agent', as('viewer'))).status, 200);
    assert.equal((await http('GET', '/metrics', undefined)).status, 200);
  });

  it('Slack: commands accepted, refused and malformed; clicks with and without the role; a forged signature', async () => {
    const sub = nc.subscribe('ocp.events.request.>');
    const accepted = new Map<string, number>();
    void (async () => {
      for await (const m of sub) {
        const e = m.json<{ requestId: string; taskId?: number }>();
        if (e.taskId) accepted.set(e.requestId, e.taskId);
      }
    })();
    const a = await slash('restart 101 monagent stuck & <odd>', SLACK.manager);
    assert.equal(a.status, 200);
    const taskId = await waitFor('the Slack restart to be accepted', () => accepted.get(a.requestId), 30_000);
    assert.equal((await taskDone(taskId)).status, 'SUCCESSFUL');

    for (const [text, user] of [
      ['reboot 101', SLACK.manager],
      ['restart 999', SLACK.manager],
      ['help', SLACK.nobody],
      ['list', SLACK.manager],
      [`status ${taskId}`, SLACK.manager],
      ['restart 101', SLACK.nobody],
      ['restart 101,102 batch', SLACK.manager],
    ] as const) {
      const r = await slash(text, user);
      assert.equal(r.status, 200);
      if (r.text.trim() === '') await responseTo(r.responseUrl);
    }

    // the failed HTTP task's parent in the default channel: Retry, by someone without the role and by the manager
    const failedParent = await waitFor('a failed task’s parent with a Retry button', () =>
      fake.channel(SLACK.channel).find((m) => !m.thread_ts && buttonValue(m, ACTIONS.retry) !== undefined),
    );
    for (const user of [SLACK.nobody, SLACK.manager]) {
      const responseUrl = fake.responseUrl();
      const payload = blockActionPayload({
        user_id: user,
        channel_id: SLACK.channel,
        action_id: ACTIONS.retry,
        value: buttonValue(failedParent, ACTIONS.retry) as string,
        response_url: responseUrl,
        trigger_id: `${Date.now()}.click`,
        message_ts: failedParent.ts,
      });
      const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
      const r = await postToSlackEndpoint(`http://127.0.0.1:${port}/slack/events`, SECRETS.signingSecret, body);
      answers.push({ status: r.status, headers: {}, text: r.text });
      assert.equal(r.status, 200);
    }
    await taskDone(taskIdOf(failedParent));

    // a forged signature and an unsigned body
    const body = slashCommandBody({
      command: '/ocp-agent',
      text: 'restart 101',
      user_id: SLACK.manager,
      channel_id: SLACK.channel,
      trigger_id: 'forged.1',
      response_url: fake.responseUrl(),
    });
    const ts = Math.floor(Date.now() / 1000);
    const forged = await postToSlackEndpoint(`http://127.0.0.1:${port}/slack/events`, 'not-the-secret', body, {
      signature: slackSignature('not-the-secret', ts, body),
      timestamp: ts,
    });
    assert.equal(forged.status, 401);
    answers.push({ status: forged.status, headers: {}, text: forged.text });
    sub.unsubscribe();
  });

  it('NATS: malformed commands and API requests, and a valid read', async () => {
    const js = nc.jetstream();
    for (const payload of [
      '{',
      '[]',
      JSON.stringify({ hostId: 999, creator: 'x', requestId: 'sec-1' }),
      JSON.stringify({ hostId: 'x' }),
    ]) {
      await js.publish('ocp.cmd.agent.restart', Buffer.from(payload));
    }
    for (const [subject, payload] of [
      ['ocp.api.task.get', '{'],
      ['ocp.api.task.get', JSON.stringify({ taskId: 'x' })],
      ['ocp.api.agent.restart', JSON.stringify({ hostId: 999, creator: 'nats-user' })],
      ['ocp.api.task.list', JSON.stringify({ page: 1 })],
    ] as const) {
      const r = await nc.request(subject, Buffer.from(payload), { timeout: 10_000 });
      answers.push({ status: 0, headers: {}, text: Buffer.from(r.data).toString() });
    }
  });

  it('a nats-server restart: the disconnect and reconnect are logged, not the password', async () => {
    const from = logs.length;
    await nats.restart();
    await waitFor(
      'the service to reconnect',
      () => logs.slice(from).some((l) => /NATS reconnected/.test(l)) || undefined,
      30_000,
    );
  });

  it('start-up failures: a bad NATS_URL holding the password, a wrong password, credentials in the URL', async () => {
    /** Run main.ts until it gives up (it exits by itself; stopped after 2 minutes if not), with its output. */
    async function refusedStart(extra: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
      const svc = runService(extra);
      const exited = await Promise.race([
        waitForExit(svc.proc).then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), 120_000).unref()),
      ]);
      if (!exited) {
        svc.proc.kill('SIGTERM');
        await waitForExit(svc.proc);
      }
      return { code: svc.proc.exitCode, output: svc.output() };
    }
    const [badUrl, wrongPassword, inUrl] = await Promise.all([
      refusedStart({ NATS_URL: `http://ocp:${SECRETS.natsPassword}@127.0.0.1:1` }),
      refusedStart({ NATS_PASSWORD: SECRETS.wrongNatsPassword, ROLES: 'executor' }),
      // nats.js takes no credentials from the URL: the server refuses, and the URL is not printed
      refusedStart({
        NATS_URL: nats.url.replace('nats://', `nats://ocp:${SECRETS.natsPassword}@`),
        NATS_USER: '',
        NATS_PASSWORD: '',
        ROLES: 'executor',
      }),
    ]);
    assert.equal(badUrl.code, 78, badUrl.output);
    assert.match(badUrl.output, /NATS_URL/);
    assert.match(wrongPassword.output, /[Aa]uthoriz/, `the refusal is reported: ${wrongPassword.output.slice(-500)}`);
    assert.match(inUrl.output, /[Aa]uthoriz/, `the refusal is reported: ${inUrl.output.slice(-500)}`);
  });

  it('drains on SIGTERM; then no sentinel is anywhere', async (t) => {
    child.kill('SIGTERM');
    await waitForExit(child);
    assert.equal(child.exitCode, 0, 'drained');
    const levels = new Map<string, number>();
    for (const l of logs) {
      const level = /"level":(\d+)/.exec(l)?.[1] ?? 'text';
      levels.set(level, (levels.get(level) ?? 0) + 1);
    }
    t.diagnostic(`${logs.length} lines; by level: ${[...levels].map(([k, v]) => `${k}×${v}`).join(' ')}`);
    assert.ok(levels.has('20'), 'debug lines were written (LOG_LEVEL=trace)');

    // JetStream: every message still in every stream, KV buckets included
    const jsm = await nc.jetstreamManager();
    const stored: string[] = [];
    for await (const name of jsm.streams.names()) {
      const { state } = await jsm.streams.info(name);
      for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
        try {
          const m = await jsm.streams.getMessage(name, { seq });
          const headers = m.header ? m.header.keys().map((k) => `${k}=${m.header?.values(k).join(',')}`) : [];
          // large task records are stored gzipped (src/nats/kv-json.ts): read them as the service does
          const gz = m.data[0] === 0x1f && m.data[1] === 0x8b;
          const text = (gz ? gunzipSync(m.data) : Buffer.from(m.data)).toString();
          stored.push(`${name} ${m.subject} ${headers.join(' ')} ${text}`);
        } catch {
          // deleted or aged out
        }
      }
    }
    assert.ok(
      stored.some((s) => s.startsWith('KV_ocp_tasks')),
      'task records were read',
    );

    const slackSide = [
      ...fake.calls.map((c) => {
        const { token: _sent, ...args } = c.args; // the token the fake was handed: that is its use, not a leak
        return JSON.stringify({ method: c.method, args, body: c.body });
      }),
      ...fake.responses.map((r) => JSON.stringify(r)),
      ...fake.ephemerals.map((e) => JSON.stringify(e)),
      ...[SLACK.channel].flatMap((c) => fake.channel(c).map((m) => JSON.stringify(m))),
      ...fake.channel(SLACK.channel).flatMap((m) => fake.thread(SLACK.channel, m.ts).map((r) => JSON.stringify(r))),
    ];
    const http = answers.map((a) => `${a.status} ${JSON.stringify(a.headers)} ${a.text}`);

    const places: Array<[string, string[]]> = [
      ['log lines', logs],
      ['HTTP answers', http],
      ['Slack', slackSide],
      ['JetStream', stored],
    ];
    const leaks: string[] = [];
    for (const [place, texts] of places) {
      for (const [name, value] of sentinels) {
        const hit = texts.find((t) => t.includes(value));
        if (hit !== undefined) leaks.push(`${name} in ${place}: ${hit.slice(0, 400)}`);
      }
    }
    assert.deepEqual(leaks, []);
    assert.ok(http.length > 20 && slackSide.length > 20 && stored.length > 50, 'there was plenty to look at');
  });
});
