/**
 * `become` (SPEC §9): operators log in as themselves and steps run as the
 * agent's user by `sudo -n -u`. Real users and a real sudoers file are made
 * for the test (and removed after): one login user that may become the agent
 * user without a password, one that needs a password. The agent's files
 * belong to the agent user, so a step run as the login user could not stop
 * or start it: only a step really run as the agent user succeeds.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import { apiClient } from '../helpers/http.js';
import { setFault, stopSimAgent } from '../helpers/sim-agent.js';
import { BASHRC_CHATTER } from '../helpers/sshd.js';
import { type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

const TAG = `ocpb${Math.random().toString(36).slice(2, 7)}`;
const USERS = { ops: `${TAG}o`, withPassword: `${TAG}p`, agent: `${TAG}a` } as const;
const SUDOERS = `/etc/sudoers.d/${TAG}`;

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

describe('become: steps as the agent user, by sudo', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const host = (i: number) => stack.sshd.hosts[i]!;

  before(async () => {
    // '*': no password to log in with, yet not locked (sshd refuses a locked account's key).
    for (const u of Object.values(USERS)) run('useradd', ['-m', '-p', '*', '-s', '/bin/bash', u]);
    writeFileSync(
      SUDOERS,
      `${USERS.ops} ALL=(${USERS.agent}) NOPASSWD: ALL\n${USERS.withPassword} ALL=(${USERS.agent}) ALL\n`,
      { mode: 0o440 },
    );
    run('visudo', ['-cf', SUDOERS]);
    // The agent user's shell starts up slowly and chattily and counts its runs (a pyenv or conda
    // init); the login user's does too (the stack's simulated ~/.bashrc, below).
    writeFileSync(
      `/home/${USERS.agent}/.bashrc`,
      `sleep 0.15\necho "chatter from ${USERS.agent}'s ~/.bashrc"\necho run >> "$HOME/bashrc-runs"\n`,
    );
    run('chown', [`${USERS.agent}:${USERS.agent}`, `/home/${USERS.agent}/.bashrc`]);
    stack = await startStack({
      hosts: 3,
      bashrc: {},
      editConfig: (file) => {
        const hosts = file.hosts as Array<Record<string, unknown>>;
        const as = (i: number, username: string, become: string) =>
          Object.assign(hosts[i]!, { username, become: { user: become } });
        as(0, USERS.ops, USERS.agent);
        as(1, USERS.withPassword, USERS.agent);
        as(2, USERS.ops, `${TAG}x`); // no such user
        return file;
      },
    });
    // The agent is the agent user's: its files, and (once started by a task) its processes.
    for (let i = 0; i < 3; i++) {
      stopSimAgent(host(i).agentHome);
      run('chown', ['-R', `${USERS.agent}:${USERS.agent}`, host(i).agentHome]);
      for (let d = dirname(host(i).agentHome); d !== '/'; d = dirname(d)) chmodSync(d, statSync(d).mode | 0o711);
    }
    // The login users may count their runs in the stack's log too.
    writeFileSync(join(stack.sshd.dir, 'bashrc-runs.log'), '');
    chmodSync(join(stack.sshd.dir, 'bashrc-runs.log'), 0o666);
    api = apiClient((await stack.startService()).httpPort as number);
  });
  after(async () => {
    await stack?.stop();
    for (const u of Object.values(USERS)) {
      try {
        run('pkill', ['-KILL', '-u', u]);
      } catch {
        // nothing of it ran
      }
      run('userdel', ['-r', u]);
    }
    rmSync(SUDOERS, { force: true });
  });

  async function task(path: string): Promise<OcpTask> {
    const a = await api<OcpTask>('POST', path);
    assert.equal(a.status, 200, JSON.stringify(a.body));
    return waitForTask(stack.nc, a.body.data.id, undefined, 60_000);
  }
  async function errorOf(t: OcpTask): Promise<string> {
    const failed = t.subtasks.find((s) => s.status === 'FAILED');
    assert.ok(failed, `a subtask of task ${t.id} failed`);
    const log = await api<{ log: string }>('GET', `/api/v2/tasks/instances/${t.id}/subtasks/${failed.id}/log`);
    return log.body.data.log;
  }

  it('starts and restarts an agent that only its user can stop, logged in as another user', async () => {
    const agentUid = Number(run('id', ['-u', USERS.agent]).trim());
    assert.equal((await task(`/compute/hosts/${host(0).id}/agent/start`)).status, 'SUCCESSFUL');
    const restarted = await task(`/compute/hosts/${host(0).id}/agent/restart`);
    assert.equal(restarted.status, 'SUCCESSFUL', await errorOf(restarted).catch(() => ''));
    // The step's run files and the agent's pid files belong to the agent user.
    const runs = join(host(0).agentHome, '.ocp-chatops', 'runs');
    const files = readdirSync(runs);
    assert.ok(files.length > 0, 'the steps left their run files');
    for (const f of files) assert.equal(statSync(join(runs, f)).uid, agentUid, `${f} is the agent user's`);
    for (const f of readdirSync(join(host(0).agentHome, 'run'))) {
      assert.equal(statSync(join(host(0).agentHome, 'run', f)).uid, agentUid, `run/${f} is the agent user's`);
    }
    const status = await api<{ status: string }>('GET', `/compute/hosts/${host(0).id}/agent`);
    assert.equal(status.body.data.status, 'STARTED', 'the status is read as the agent user too');
  });

  it("gives a step what `ssh host 'sudo -u agent cmd'` gives: the login's start-up once, the agent user's never, no chatter", async () => {
    const agentRuns = () => {
      try {
        return readFileSync(`/home/${USERS.agent}/bashrc-runs`, 'utf8').split('\n').filter(Boolean).length;
      } catch {
        return 0;
      }
    };
    const logins = stack.sshd.bashrcRuns().length;
    const t = await task(`/compute/hosts/${host(0).id}/agent/restart`);
    assert.equal(t.status, 'SUCCESSFUL');
    for (const s of t.subtasks) {
      const log = await api<{ log: string }>('GET', `/api/v2/tasks/instances/${t.id}/subtasks/${s.id}/log`);
      for (const chatter of [BASHRC_CHATTER, 'chatter from']) {
        assert.ok(!log.body.data.log.includes(chatter), `${s.name}: no start-up chatter in the step's output`);
      }
    }
    assert.ok(logins >= 1, "the login user's start-up ran when it logged in");
    assert.equal(stack.sshd.bashrcRuns().length, logins, "five steps, and the login's start-up did not run again");
    assert.equal(agentRuns(), 0, "the agent user's start-up never runs, as under `sudo -u`");
  });

  it('cancels a step run as the agent user: it ends, and the host takes the next task', async () => {
    setFault(host(0).agentHome, 'stop', 'slow', 60);
    run('chown', ['-R', `${USERS.agent}:${USERS.agent}`, join(host(0).agentHome, 'faults')]);
    const a = await api<OcpTask>('POST', `/compute/hosts/${host(0).id}/agent/stop`);
    const stopStep = a.body.data.subtasks[1]!;
    await waitForTask(stack.nc, a.body.data.id, (t) => t.subtasks[1]?.status === 'RUNNING', 30_000);
    const cancel = await api('POST', `/api/v2/tasks/instances/${a.body.data.id}/subtasks/${stopStep.id}/cancel`);
    assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
    const ended = await waitForTask(stack.nc, a.body.data.id, undefined, 30_000);
    assert.equal(ended.status, 'FAILED');
    assert.match(await errorOf(ended), /canceled/);
    rmSync(join(host(0).agentHome, 'faults', 'slow-stop'));
    await waitFor('the slow stop gone', () => {
      try {
        run('pgrep', ['-u', USERS.agent, '-f', 'sleep 60']);
        return undefined;
      } catch {
        return true;
      }
    });
    assert.equal((await task(`/compute/hosts/${host(0).id}/agent/restart`)).status, 'SUCCESSFUL');
  });

  it('fails at once, saying what to configure, when sudo wants a password or the user does not exist', async () => {
    const started = Date.now();
    const password = await task(`/compute/hosts/${host(1).id}/agent/restart`);
    assert.equal(password.status, 'FAILED');
    assert.match(await errorOf(password), /sudo -n -u \w+ as \w+ on host \d+ was refused .*password.*NOPASSWD/);
    const nobody = await task(`/compute/hosts/${host(2).id}/agent/restart`);
    assert.equal(nobody.status, 'FAILED');
    assert.match(await errorOf(nobody), /was refused \(.*unknown user.*\).* to exist/);
    assert.ok(Date.now() - started < 20_000, 'a refusal is final: no attaching again for minutes');
  });
});
