/**
 * Groups, labels and keys against real sshd (SPEC §9): a group supplies a
 * host's login, key and agent folder; a host's own setting wins over its
 * group's; each host logs in with its own key (a second sshd accepts only its
 * own); a host with no key anywhere logs in through a real ssh-agent, its key
 * file gone; an encrypted key works with SSH_KEY_PASSPHRASE and, without it,
 * fails saying what to set. The agent answer shows the merged labels.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import { runKeyOf } from '../../src/executor/ports.js';
import { StepError } from '../../src/executor/step-failure.js';
import { createSshStepRunner } from '../../src/ssh/ssh-step-runner.js';
import { apiClient } from '../helpers/http.js';
import { killOnExit, waitForExit } from '../helpers/nats-server.js';
import { readCalls } from '../helpers/sim-agent.js';
import { type SshdHandle, startSshd } from '../helpers/sshd.js';
import { type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

const PASSPHRASE = 'correct horse battery staple';

describe('groups, labels and keys (SPEC §9)', () => {
  let stack: Stack;
  /** A second sshd, accepting only its own client key. */
  let other: SshdHandle;
  let agent: ChildProcess;
  let scratch: string;
  let agentSocket: string;
  /** The key ssh-add took, moved away once added: the service cannot read it. */
  let movedKey: string;
  let encryptedKey: string;
  let api: ReturnType<typeof apiClient>;

  before(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'ocp-groups-'));
    other = await startSshd({ hosts: 1, firstId: 201 });
    encryptedKey = join(scratch, 'encrypted_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', PASSPHRASE, '-C', 'encrypted', '-f', encryptedKey]);

    // A real ssh-agent holding a copy of the client key, then the copy moved away.
    agentSocket = join(scratch, 'agent.sock');
    agent = spawn('ssh-agent', ['-D', '-a', agentSocket], { stdio: 'ignore' });
    const unregister = killOnExit(() => agent.kill('SIGKILL'));
    agent.once('exit', unregister);
    await waitFor('the ssh-agent socket', () => existsSync(agentSocket) || undefined);

    stack = await startStack({
      hosts: 4,
      env: { SSH_AUTH_SOCK: agentSocket, SSH_KEY_PASSPHRASE: PASSPHRASE },
      editConfig: (file) => {
        const { privateKeyPath: defaultKey, ...ssh } = file.ssh as Record<string, unknown>;
        const [h1, h2, h3, h4] = writtenHosts(file) as [WrittenHost, WrittenHost, WrittenHost, WrittenHost];
        const o = other.hosts[0]!;
        return {
          ...file,
          // No ssh.privateKeyPath: a host with no key of its own or its group's uses the agent.
          ssh,
          groups: {
            // Supplies everything but id, name and address.
            'hz-prod': {
              username: h1.username,
              port: h1.port,
              privateKeyPath: defaultKey,
              agentHome: h1.agentHome,
              labels: { region: 'hz', env: 'prod', cluster: 'obcluster1' },
            },
            // Every setting wrong: a host of it that works has overridden them all.
            broken: {
              username: 'nosuchuser',
              port: 1,
              privateKeyPath: join(scratch, 'no-such-key'),
              agentHome: '/nonexistent/ocp_agent',
            },
          },
          hosts: [
            { id: h1.id, name: h1.name, address: h1.address, group: 'hz-prod', labels: { zone: 'z1', env: 'staging' } },
            { ...h2, group: 'broken', privateKeyPath: defaultKey, labels: { zone: 2 } },
            // No key anywhere: the ssh-agent.
            { ...h3 },
            { ...h4, privateKeyPath: encryptedKey },
            {
              id: o.id,
              name: o.name,
              address: o.address,
              port: o.port,
              username: o.username,
              agentHome: o.agentHome,
              privateKeyPath: other.privateKeyPath,
            },
          ],
        };
      },
    });
    appendFileSync(join(stack.dir, 'known_hosts'), readFileSync(other.knownHostsPath, 'utf8'));
    appendFileSync(join(stack.sshd.dir, 'authorized_keys'), readFileSync(`${encryptedKey}.pub`, 'utf8'));

    const copy = join(scratch, 'agent_ed25519');
    copyFileSync(stack.sshd.privateKeyPath, copy);
    execFileSync('ssh-add', ['-q', copy], {
      env: { PATH: process.env.PATH, SSH_AUTH_SOCK: agentSocket },
      stdio: 'ignore',
    });
    movedKey = join(scratch, 'moved-away');
    renameSync(copy, movedKey);

    const svc = await stack.startService();
    api = apiClient(svc.httpPort as number);
  });

  after(async () => {
    await stack?.stop();
    await other?.stop();
    if (agent) {
      agent.kill('SIGTERM');
      await waitForExit(agent);
    }
    rmSync(scratch, { recursive: true, force: true });
  });

  /** Restart a host over HTTP and wait for the task's end. */
  async function restart(hostId: number): Promise<OcpTask> {
    const a = await api<OcpTask>('POST', `/compute/hosts/${hostId}/agent/restart`);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    return waitForTask(stack.nc, a.body.data.id);
  }

  const restarted = (agentHome: string) =>
    readCalls(agentHome).some((c) => c.phase === 'end' && c.exit === 0 && c.args === 'start');

  it('a group supplies the login, key and agent folder: a restart succeeds', async () => {
    const h = stack.sshd.hosts[0]!;
    assert.equal((await restart(h.id)).status, 'SUCCESSFUL');
    assert.ok(restarted(h.agentHome), 'the agent in the group’s agentHome was started');
  });

  it('the agent answer names the host and its labels, its group’s merged under its own', async () => {
    const h = stack.sshd.hosts[0]!;
    const a = await api<{ hostId: number; name: string; labels: Record<string, string>; status: string }>(
      'GET',
      `/compute/hosts/${h.id}/agent`,
      { user: 'viewer' },
    );
    assert.equal(a.status, 200);
    assert.deepEqual(
      { hostId: a.body.data.hostId, name: a.body.data.name, labels: a.body.data.labels },
      { hostId: h.id, name: h.name, labels: { region: 'hz', env: 'staging', cluster: 'obcluster1', zone: 'z1' } },
    );
    assert.equal(a.body.data.status, 'STARTED');
    const bare = await api<{ labels: Record<string, string> }>(
      'GET',
      `/compute/hosts/${stack.sshd.hosts[2]!.id}/agent`,
    );
    assert.deepEqual(bare.body.data.labels, {});
  });

  it('a host’s own settings win over its group’s', async () => {
    const h = stack.sshd.hosts[1]!;
    assert.equal((await restart(h.id)).status, 'SUCCESSFUL');
    assert.ok(restarted(h.agentHome));
  });

  it('each host logs in with its own key: a second sshd takes only its own', async () => {
    const o = other.hosts[0]!;
    assert.equal((await restart(o.id)).status, 'SUCCESSFUL');
    assert.ok(restarted(o.agentHome));
    // The first sshd's key is refused there: the key above was the host's own.
    const runner = createSshStepRunner({
      knownHostsPath: other.knownHostsPath,
      connectTimeoutSeconds: 5,
      logger: pino({ level: 'silent' }),
    });
    try {
      const target = { ...o, hostId: o.id, privateKeyPath: stack.sshd.privateKeyPath, stateDir: join(scratch, 's') };
      await assert.rejects(runner.exec(target, 'true', 5), /authentication methods failed/);
    } finally {
      await runner.close();
    }
  });

  it('a host with no key anywhere logs in through the ssh-agent, its key file gone', async () => {
    const h = stack.sshd.hosts[2]!;
    assert.equal(existsSync(join(scratch, 'agent_ed25519')), false);
    assert.equal((await restart(h.id)).status, 'SUCCESSFUL');
    assert.ok(restarted(h.agentHome));
  });

  it('an encrypted key logs in with SSH_KEY_PASSPHRASE', async () => {
    const h = stack.sshd.hosts[3]!;
    assert.equal((await restart(h.id)).status, 'SUCCESSFUL');
    assert.ok(restarted(h.agentHome));
  });

  it('without the passphrase, or with no key and no agent, the step fails saying what to set', async () => {
    const h = stack.sshd.hosts[3]!;
    const runner = createSshStepRunner({
      knownHostsPath: stack.config.ssh.knownHostsPath,
      connectTimeoutSeconds: 5,
      logger: pino({ level: 'silent' }),
    });
    const target = {
      hostId: h.id,
      address: h.address,
      port: h.port,
      username: h.username,
      stateDir: join(scratch, 's'),
    };
    const fails = (err: unknown, words: RegExp) =>
      err instanceof StepError && err.kind === 'credentials' && !err.retryable && words.test(err.message);
    try {
      await assert.rejects(
        runner.run({
          target: { ...target, privateKeyPath: encryptedKey },
          runKey: runKeyOf('abc', { taskId: 1, subtaskId: 1, runTime: 1 }),
          script: 'true',
          timeoutSeconds: 5,
        }),
        (err) => fails(err, /set SSH_KEY_PASSPHRASE/),
      );
      await assert.rejects(
        runner.run({
          target,
          runKey: runKeyOf('abc', { taskId: 1, subtaskId: 2, runTime: 1 }),
          script: 'true',
          timeoutSeconds: 5,
        }),
        (err) => fails(err, /set privateKeyPath \(host, group or ssh:\) or SSH_AUTH_SOCK/),
      );
    } finally {
      await runner.close();
    }
  });
});

/** A host as the stack wrote it. */
type WrittenHost = { id: number; name: string; address: string; port: number; username: string; agentHome: string };
function writtenHosts(file: Record<string, unknown>): WrittenHost[] {
  return file.hosts as WrittenHost[];
}
