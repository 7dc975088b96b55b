/**
 * The doctor (issue 16) against the simulated fleet: real sshd hosts, a real
 * nats-server with the service's streams, a fake Slack. Clean when all is
 * well; then one host's key changed, one unreachable, one without agentctl,
 * one whose `become` wants a password, and a token Slack refuses — each named
 * with its remedy, and the exit code 1.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import type { CliIo } from '../../src/cli/io.js';
import { doctorCommand } from '../../src/doctor/command.js';
import type { Finding } from '../../src/doctor/report.js';
import { type FakeSlack, startFakeSlack } from '../helpers/fake-slack.js';
import { SIGNING_SECRET } from '../helpers/slack-user.js';
import { type Stack, startStack } from '../helpers/stack.js';

/** A login user with no sudo rule: `sudo -n` asks it for a password. */
const NO_SUDO_USER = `ocpd${Math.random().toString(36).slice(2, 7)}`;
const SCOPES = ['commands', 'chat:write', 'chat:write.public', 'usergroups:read', 'users:read'];

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function doctor(env: NodeJS.ProcessEnv, cwd: string, ...args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env,
    cwd,
    readSecret: async () => undefined,
  };
  const code = await doctorCommand(args, io);
  return { code, stdout, stderr };
}

const findingsOf = (run: Run) => (JSON.parse(run.stdout) as { findings: Finding[] }).findings;

describe('doctor', () => {
  let stack: Stack;
  let fake: FakeSlack;

  before(async () => {
    execFileSync('useradd', ['-m', '-p', '*', '-s', '/bin/sh', NO_SUDO_USER]);
    fake = await startFakeSlack();
    fake.scopes = SCOPES;
    fake.setUsergroup('S0OPS', ['U0ALICE'], { handle: 'ops' });
    stack = await startStack({
      hosts: 5,
      slack: {
        apiUrl: fake.apiUrl,
        botToken: fake.token,
        signingSecret: SIGNING_SECRET,
        access: { HOST_MANAGER: { usergroups: ['S0OPS'] }, TASK_VIEWER: { users: ['U0ALICE'] } },
      },
    });
    // The service made its streams and buckets once.
    await (await stack.startService('api')).stop();
    // The user with no sudo rule logs in with the stack's key, whose authorized_keys is in the sshd's folder.
    chmodSync(stack.sshd.dir, statSync(stack.sshd.dir).mode | 0o711);
  });
  after(async () => {
    await stack?.stop();
    await fake?.stop();
    execFileSync('userdel', ['-r', NO_SUDO_USER], { stdio: 'ignore' });
  });

  it('is clean when all is well: every check ok, exit 0, the hosts’ progress on stderr', async () => {
    const run = await doctor(stack.env, stack.dir, '--json');
    const findings = findingsOf(run);
    const notOk = findings.filter((f) => f.verdict !== 'ok');
    assert.deepEqual(notOk, [], run.stdout);
    assert.equal(run.code, 0);
    for (const h of stack.sshd.hosts) {
      const checks = findings.filter((f) => f.target === `host ${h.id} (${h.name})`).map((f) => f.check);
      assert.deepEqual(checks, ['reach', 'host key', 'login', 'agentctl', 'agent status']);
    }
    for (const check of ['reach', 'jetstream', 'streams', 'stream replicas'])
      assert.ok(findings.some((f) => f.target === 'nats' && f.check === check));
    for (const check of ['token', 'scopes', 'user group S0OPS'])
      assert.ok(findings.some((f) => f.target === 'slack' && f.check === check));
    assert.match(run.stderr, /hosts \[#{20}\] 5\/5/);
  });

  it('names each broken host and the refused token with what to do, and exits 1', async () => {
    const [h0, h1, h2, h3] = stack.sshd.hosts as [(typeof stack.sshd.hosts)[0], ...typeof stack.sshd.hosts];
    assert.ok(h0 && h1 && h2 && h3);
    // Host 1's key "changed": known_hosts lists another key for it.
    const knownHosts = join(stack.dir, 'known_hosts-changed');
    const otherKey = join(stack.dir, 'other_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const otherPublic = readFileSync(`${otherKey}.pub`, 'utf8').split(' ').slice(0, 2).join(' ');
    const name = (h: { address: string; port: number }) => `[${h.address}]:${h.port}`;
    writeFileSync(
      knownHosts,
      readFileSync(stack.sshd.knownHostsPath, 'utf8')
        .split('\n')
        .map((l) => (l.startsWith(`${name(h1)} `) ? `${name(h1)} ${otherPublic}` : l))
        .join('\n'),
    );
    const file = parse(readFileSync(stack.configPath, 'utf8')) as {
      hosts: Array<Record<string, unknown>>;
      ssh: Record<string, unknown>;
    };
    file.ssh.knownHostsPath = knownHosts;
    Object.assign(file.hosts[2]!, { agentHome: '/nonexistent/ocp_agent' });
    Object.assign(file.hosts[3]!, { username: NO_SUDO_USER, become: { user: 'root' } });
    // Nothing listens on this loopback address.
    file.hosts.push({ ...file.hosts[0], id: 999, name: 'gone-host', address: '127.0.0.254' });
    const broken = join(stack.dir, 'broken.yml');
    writeFileSync(broken, stringify(file));

    const env = { ...stack.env, CONFIG_FILE: broken, SLACK_BOT_TOKEN: 'xoxb-revoked' };
    const run = await doctor(env, stack.dir, '--json');
    assert.equal(run.code, 1);
    const findings = findingsOf(run);
    const failed = (target: string) => findings.filter((f) => f.target === target && f.verdict === 'fail');
    const one = (target: string, check: string) => {
      const f = failed(target);
      assert.equal(f.length, 1, `${target}: ${JSON.stringify(findings.filter((x) => x.target === target))}`);
      assert.equal(f[0]?.check, check);
      return f[0] as Finding;
    };

    const changed = one(`host ${h1.id} (${h1.name})`, 'host key');
    assert.match(changed.detail, /does not match known_hosts/);
    assert.match(
      changed.remedy ?? '',
      new RegExp(`ssh-keygen -R '\\[${h1.address}\\]:${h1.port}'.*ssh-keyscan -H -p ${h1.port} ${h1.address}`),
    );

    const noAgent = one(`host ${h2.id} (${h2.name})`, 'agentctl');
    assert.match(noAgent.detail, /\/nonexistent\/ocp_agent\/bin\/ocp_agentctl does not exist/);
    assert.match(noAgent.remedy ?? '', /set agentHome/);

    const become = one(`host ${h3.id} (${h3.name})`, 'become');
    assert.match(become.detail, /password is required/);
    assert.match(become.remedy ?? '', new RegExp(`${NO_SUDO_USER} ALL=\\(root\\) NOPASSWD: ALL`));
    const h3checks = findings.filter((f) => f.target === `host ${h3.id} (${h3.name})`);
    assert.deepEqual(
      h3checks.map((f) => [f.check, f.verdict]),
      [
        ['reach', 'ok'],
        ['host key', 'ok'],
        ['login', 'ok'],
        ['become', 'fail'],
        ['agentctl', 'skip'],
        ['agent status', 'skip'],
      ],
    );

    const gone = one('host 999 (gone-host)', 'reach');
    assert.match(gone.detail, /127\.0\.0\.254/);
    assert.match(gone.remedy ?? '', /nc -vz 127\.0\.0\.254/);

    const token = one('slack', 'token');
    assert.match(token.detail, /invalid_auth/);
    assert.match(token.remedy ?? '', /SLACK_BOT_TOKEN/);
    assert.ok(findings.some((f) => f.check === 'user group S0OPS' && f.verdict === 'skip'));

    assert.deepEqual(failed(`host ${h0.id} (${h0.name})`), [], 'the well host stays well');

    const table = await doctor(env, stack.dir);
    assert.equal(table.code, 1);
    assert.match(table.stdout, /^WHERE\s+CHECK\s+VERDICT\s+DETAIL\s+WHAT TO DO$/m);
    assert.match(table.stdout, /5 failed/);
    assert.match(table.stdout, /gone-host\)\s+reach\s+FAIL/);
    assert.match(table.stdout, /2 hosts all well/);
  });

  it('a user group Slack does not know, a token without a needed scope and a bad --only are named', async () => {
    const file = parse(readFileSync(stack.configPath, 'utf8')) as { access: Record<string, unknown> };
    file.access.slack = { TASK_MANAGER: { usergroups: ['S0GONE'] } };
    const path = join(stack.dir, 'gone-group.yml');
    writeFileSync(path, stringify(file));
    const run = await doctor({ ...stack.env, CONFIG_FILE: path }, stack.dir, '--json', '--only', 'slack');
    assert.equal(run.code, 1);
    const f = findingsOf(run).find((x) => x.check === 'user group S0GONE');
    assert.equal(f?.verdict, 'fail');
    assert.match(f?.detail ?? '', /no_such_subteam/);
    assert.match(f?.remedy ?? '', /whoami/);

    fake.scopes = ['commands', 'chat:write'];
    try {
      const scopes = findingsOf(await doctor(stack.env, stack.dir, '--json', '--only', 'slack')).find(
        (x) => x.check === 'scopes',
      );
      assert.equal(scopes?.verdict, 'fail');
      assert.match(scopes?.detail ?? '', /lacks usergroups:read/);
      assert.match(scopes?.remedy ?? '', /manifest\.yml.*reinstall/);
    } finally {
      fake.scopes = SCOPES;
    }

    const usage = await doctor(stack.env, stack.dir, '--only', 'dns');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /unknown part dns/);
  });
});
