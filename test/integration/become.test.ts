/**
 * `become` (SPEC §9): operators log in as themselves and steps run as the
 * agent's user by `sudo -n -u`. Real users and a real sudoers file are made
 * for the test (and removed after): one login user that may become the agent
 * user without a password, one that needs a password. The agent's files
 * belong to the agent user, so a step run as the login user could not stop
 * or start it: only a step really run as the agent user succeeds. A step
 * run so is taken over after its executor's SIGKILL (attached to, never
 * started twice) and cancelled (its processes, the agent user's, all gone)
 * like any other, its run's files the agent user's.
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
import { type ChildService, type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

const TAG = `ocpb${Math.random().toString(36).slice(2, 7)}`;
const USERS = { ops: `${TAG}o`, withPassword: `${TAG}p`, agent: `${TAG}a` } as const;
const SUDOERS = `/etc/sudoers.d/${TAG}`;

function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8' });
}

before(() => {
  // '*': no password to log in with, yet not locked (sshd refuses a locked account's key).
  for (const u of Object.values(USERS)) run('useradd', ['-m', '-p', '*', '-s', '/bin/bash', u]);
  writeFileSync(
    SUDOERS,
    `${USERS.ops} ALL=(${USERS.agent}) NOPASSWD: ALL\n${USERS.withPassword} ALL=(${USERS.agent}) ALL\n`,
    { mode: 0o440 },
  );
  run('visudo', ['-cf', SUDOERS]);
  // The agent user's shell starts up slowly and chattily and counts its runs (a pyenv or conda
  // init); the login user's does too (the stack's simulated ~/.bashrc).
  writeFileSync(
    `/home/${USERS.agent}/.bashrc`,
    `sleep 0.15\necho "chatter from ${USERS.agent}'s ~/.bashrc"\necho run >> "$HOME/bashrc-runs"\n`,
  );
  run('chown', [`${USERS.agent}:${USERS.agent}`, `/home/${USERS.agent}/.bashrc`]);
});
after(() => {
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

/** The simulated agent of a host, stopped and handed to the agent user: its files, and (once started by a task) its processes. */
function giveToAgentUser(agentHome: string): void {
  stopSimAgent(agentHome);
  run('chown', ['-R', `${USERS.agent}:${USERS.agent}`, agentHome]);
  for (let d = dirname(agentHome); d !== '/'; d = dirname(d)) chmodSync(d, statSync(d).mode | 0o711);
}

describe('become: steps as the agent user, by sudo', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const host = (i: number) => stack.sshd.hosts[i]!;

  before(async () => {
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
    for (let i = 0; i < 3; i++) giveToAgentUser(host(i).agentHome);
    // The login users may count their runs in the stack's log too.
    writeFileSync(join(stack.sshd.dir, 'bashrc-runs.log'), '');
    chmodSync(join(stack.sshd.dir, 'bashrc-runs.log'), 0o666);
    api = apiClient((await stack.startService()).httpPort as number);
  });
  after(async () => stack?.stop());

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

/**
 * An operation of one's own whose step marks each run (as whom it ran) and
 * sleeps, twice at once in its session: a step slow enough to take over or
 * cancel, whose processes are found by their command line.
 */
const SLOW_MARK = {
  name: 'slow-mark',
  title: 'Mark a run, then sleep',
  role: 'HOST_MANAGER',
  params: { seconds: { pattern: '[1-9][0-9]?' } },
  steps: [
    {
      name: 'Mark and sleep',
      timeout: 60,
      command:
        'id -un >> {agentHome}/marks\nsleep {seconds} & sleep {seconds}\nwait\necho slept {seconds} s as "$(id -un)"',
    },
  ],
};

/**
 * A step that never stops starting processes: each round a new `sleep 31`,
 * the one before ended. Whatever moment a cancel kills it, some process of it
 * is being born. Its `sleep 32` lives on, to be seen.
 */
const FORKING = {
  name: 'forking',
  title: 'Keep starting processes',
  role: 'HOST_MANAGER',
  steps: [
    {
      name: 'Start processes',
      timeout: 60,
      command: 'sleep 32 &\nsleep 31 & prev=$!\nwhile :; do sleep 31 & kill $prev; wait $prev; prev=$!; done',
    },
  ],
};

describe('become: takeover and cancel of a step run as the agent user', () => {
  const LEASE_SECONDS = 4;
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  let agentUid: number;
  const host = () => stack.sshd.hosts[0]!;
  const marks = () => readFileSync(join(host().agentHome, 'marks'), 'utf8').split('\n').filter(Boolean);
  /** The agent user's processes running `sleep <seconds>` (the step's), by pid. */
  const sleeps = (seconds: number): string[] => {
    try {
      return run('pgrep', ['-u', USERS.agent, '-x', '-f', `sleep ${seconds}`])
        .split('\n')
        .filter(Boolean);
    } catch {
      return []; // pgrep exits 1 when nothing matches
    }
  };
  /** The run's files on the host (`<epoch>-<task>-<subtask>-<runTime>.*`). */
  const runFiles = (taskId: number, subtaskId: number): string[] => {
    const dir = join(host().agentHome, '.ocp-chatops', 'runs');
    return readdirSync(dir)
      .filter((f) => f.includes(`-${taskId}-${subtaskId}-1.`))
      .map((f) => join(dir, f));
  };
  async function operation(name: string, params: Record<string, string> = {}): Promise<OcpTask> {
    const a = await api<OcpTask>('POST', `/api/v2/ocp-chatops/operations/${name}`, {
      body: { hostId: host().id, params },
    });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    return a.body.data;
  }
  const slowMark = (seconds: number) => operation(SLOW_MARK.name, { seconds: String(seconds) });
  async function logOf(taskId: number, subtaskId: number): Promise<string> {
    const log = await api<{ log: string }>('GET', `/api/v2/tasks/instances/${taskId}/subtasks/${subtaskId}/log`);
    return log.body.data.log;
  }
  async function executor(): Promise<ChildService> {
    const e = stack.spawnService('executor');
    await waitFor('an executor', () => e.output().includes('executor started'), 20_000);
    return e;
  }

  before(async () => {
    agentUid = Number(run('id', ['-u', USERS.agent]).trim());
    stack = await startStack({
      hosts: 1,
      leaseSeconds: LEASE_SECONDS,
      operations: [SLOW_MARK, FORKING],
      editConfig: (file) => {
        Object.assign((file.hosts as Array<Record<string, unknown>>)[0]!, {
          username: USERS.ops,
          become: { user: USERS.agent },
        });
        return file;
      },
    });
    giveToAgentUser(host().agentHome);
    // This process answers HTTP only: the steps run in executors of their own, to be killed.
    api = apiClient((await stack.startService('api')).httpPort as number);
  });
  after(async () => stack?.stop());

  it('hands a step left running by a SIGKILLed executor to another, which waits for that run instead of starting one', async () => {
    const a = await executor();
    const created = await slowMark(8);
    // A, started and pulling, takes the step; B starts meanwhile and takes it over once A is gone.
    const b = stack.spawnService('executor');
    const step = created.subtasks[0]!;
    await waitFor('the step to start on the host', () => sleeps(8).length === 2 || undefined, 20_000);
    await a.kill('SIGKILL');
    assert.equal(sleeps(8).length, 2, 'the step runs on, detached, after its executor died');

    const ended = await waitForTask(stack.nc, created.id, undefined, 30_000);
    assert.equal(ended.status, 'SUCCESSFUL', await logOf(created.id, step.id));
    assert.ok(
      b.output().includes('taking over a subtask left running'),
      `the second executor took the step over:\n${b.output().slice(-2000)}`,
    );
    assert.deepEqual(marks(), [USERS.agent], 'the step ran once, as the agent user');
    assert.match(await logOf(created.id, step.id), new RegExp(`slept 8 s as ${USERS.agent}`));
    const files = runFiles(created.id, step.id);
    assert.ok(files.some((f) => f.endsWith('.claim')) && files.some((f) => f.endsWith('.rc')), files.join(', '));
    for (const f of files) assert.equal(statSync(f).uid, agentUid, `${f} is the agent user's`);
    await b.kill('SIGTERM');
  });

  it("cancels a step run as the agent user: every process of it is gone when the cancel answers, the task FAILED, 'canceled'", async () => {
    const e = await executor();
    const created = await slowMark(25);
    const step = created.subtasks[0]!;
    await waitFor('the step to start on the host', () => sleeps(25).length === 2 || undefined, 20_000);
    const cancel = await api('POST', `/api/v2/tasks/instances/${created.id}/subtasks/${step.id}/cancel`);
    assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
    assert.deepEqual(sleeps(25), [], 'nothing of the step runs once the cancel answered');

    const ended = await waitForTask(stack.nc, created.id, undefined, 20_000);
    assert.equal(ended.status, 'FAILED');
    assert.equal(ended.subtasks[0]!.status, 'FAILED');
    assert.match(await logOf(created.id, step.id), /canceled/);
    const files = runFiles(created.id, step.id);
    assert.ok(
      files.some((f) => f.endsWith('.cancel')),
      `the cancel marked the run: ${files.join(', ')}`,
    );
    for (const f of files) assert.equal(statSync(f).uid, agentUid, `${f} is the agent user's`);
    // The host is free again: the next task runs.
    const next = await slowMark(1);
    assert.equal((await waitForTask(stack.nc, next.id, undefined, 20_000)).status, 'SUCCESSFUL');
    await e.kill('SIGTERM');
  });

  it('cancels a step that keeps starting processes: none born while the cancel kills it survives', async () => {
    const e = await executor();
    const created = await operation(FORKING.name);
    const step = created.subtasks[0]!;
    await waitFor('the step to start on the host', () => sleeps(32).length > 0 || undefined, 20_000);
    const cancel = await api('POST', `/api/v2/tasks/instances/${created.id}/subtasks/${step.id}/cancel`);
    assert.equal(cancel.status, 200, JSON.stringify(cancel.body));
    assert.deepEqual([...sleeps(31), ...sleeps(32)], [], 'nothing of the step runs once the cancel answered');
    const ended = await waitForTask(stack.nc, created.id, undefined, 20_000);
    assert.equal(ended.status, 'FAILED');
    assert.match(await logOf(created.id, step.id), /canceled/);
    await e.kill('SIGTERM');
  });
});
