/**
 * Steps on hosts whose user has an ordinary heavy ~/.bashrc (a pyenv, conda or
 * nvm init: slow, chatty on stdout, exporting variables), through the real SSH
 * runner and sshd, compared with what the real `ssh` client gives (SPEC §9): a
 * step sees the environment of a plain `ssh host 'command'`, and the login
 * shell's start-up runs once per connection — never once per step, per
 * nested shell a step starts, per cancel or per status read.
 *
 * Debian's bash sources ~/.bashrc for `bash -c` when SSH_CLIENT is set and its
 * level (SHLVL + 1) is below 2, so a step that hands its shells SHLVL=0 has
 * every `bash -c` it starts run the whole ~/.bashrc again.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import pino from 'pino';
import type { StepRunner, StepTarget } from '../../src/executor/ports.js';
import { createSshStepRunner } from '../../src/ssh/ssh-step-runner.js';
import { apiClient } from '../helpers/http.js';
import { processesMatching } from '../helpers/sim-agent.js';
import { BASHRC_CHATTER, BASHRC_VARIABLE, type BashrcRun, type SshdHandle, startSshd } from '../helpers/sshd.js';
import { type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

const execFileAsync = promisify(execFile);

/** Runs of ~/.bashrc per SSH connection (SSH_CONNECTION names one TCP connection). */
function runsPerConnection(runs: readonly BashrcRun[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of runs) m.set(r.connection, (m.get(r.connection) ?? 0) + 1);
  return m;
}

/**
 * Lines a test compares, with what legitimately differs between two
 * connections or two shells made equal:
 * - SSH_CLIENT / SSH_CONNECTION name the client's port, which is each
 *   connection's own;
 * - `_` at the top level: bash (running a plain ssh command) sets it to the
 *   path of each command it runs; a step's script runs under `sh`, which
 *   does not (in a `bash -c` both sides have it, and it is compared there).
 */
function comparable(output: string): string[] {
  let nested = false;
  return output
    .split('\n')
    .filter((line) => {
      if (line === '---') nested = true;
      return nested || !line.startsWith('_=');
    })
    .map((line) =>
      line
        .replace(/^SSH_CLIENT=(\S+) \d+ /, 'SSH_CLIENT=$1 <client port> ')
        .replace(/^SSH_CONNECTION=(\S+) \d+ /, 'SSH_CONNECTION=$1 <client port> '),
    );
}

describe('steps on a host whose ~/.bashrc is slow and chatty', () => {
  let sshd: SshdHandle;
  let target: StepTarget;
  const runners: StepRunner[] = [];
  let n = 0;
  const key = () => `beef-1-${++n}-1`;

  const newRunner = () => {
    const r = createSshStepRunner({
      knownHostsPath: sshd.knownHostsPath,
      connectTimeoutSeconds: 5,
      logger: pino({ level: 'silent' }),
    });
    runners.push(r);
    return r;
  };

  /** A plain `ssh host 'command'` with OpenSSH's own client. */
  const plainSsh = async (command: string): Promise<string> => {
    const h = sshd.hosts[0]!;
    const { stdout } = await execFileAsync('ssh', [
      '-F',
      '/dev/null',
      '-i',
      sshd.privateKeyPath,
      '-o',
      'IdentitiesOnly=yes',
      '-o',
      `UserKnownHostsFile=${sshd.knownHostsPath}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      '-p',
      String(h.port),
      `${h.username}@${h.address}`,
      command,
    ]);
    return stdout;
  };

  before(async () => {
    sshd = await startSshd({ hosts: 1, bashrc: {} });
    const h = sshd.hosts[0]!;
    target = {
      hostId: h.id,
      address: h.address,
      port: h.port,
      username: h.username,
      privateKeyPath: sshd.privateKeyPath,
      stateDir: join(sshd.dir, 'state'),
    };
  });
  after(async () => {
    for (const r of runners) await r.close();
    await sshd?.stop();
  });

  it('gives a step, and a bash it starts, the variables, SHLVL, directory and signals of a plain ssh command', async () => {
    const script = [
      'echo "cwd=$(pwd) umask=$(umask)"',
      'grep ^SigIgn /proc/self/status',
      'env | sort',
      'echo ---',
      'bash -c \'echo "cwd=$(pwd)"; env | sort\'',
      // Not the last command: bash runs the last command of `-c` in its own
      // place with SHLVL lowered, so under plain ssh a trailing `bash -c`
      // would source ~/.bashrc again — a quirk the rule "never once per
      // nested shell" does not copy.
      'true',
    ].join('\n');
    const before = sshd.bashrcRuns().length;

    const plain = await plainSsh(script);
    // Plain ssh shows the login shell's start-up once, before the command's output.
    assert.ok(plain.startsWith(`${BASHRC_CHATTER}\n`), plain);
    const reference = plain.slice(BASHRC_CHATTER.length + 1);
    assert.ok(!reference.includes(BASHRC_CHATTER), 'under plain ssh the nested bash does not source ~/.bashrc');
    assert.match(reference, /^SHLVL=1$/m);
    assert.match(reference, new RegExp(`^${BASHRC_VARIABLE}=`, 'm'), 'the variables ~/.bashrc exports');

    const res = await newRunner().run({ target, runKey: key(), script, timeoutSeconds: 20 });
    assert.equal(res.exitCode, 0, res.output);
    assert.deepEqual(comparable(res.output), comparable(reference));

    // One run for plain ssh, one for the runner's connection; none for the nested bash.
    const runs = sshd.bashrcRuns().slice(before);
    assert.deepEqual([...runsPerConnection(runs).values()], [1, 1], JSON.stringify(runs));
  });

  it('keeps chatter out of the output and runs ~/.bashrc once per connection across steps, nested shells, concurrent steps, status reads and a cancel', async () => {
    const runner = newRunner();
    const before = sshd.bashrcRuns().length;
    const nestedShells = `bash -c 'echo "one $SHLVL"'; sh -c "bash -c 'echo two'"; bash -c "bash -c 'echo three'"`;

    for (let i = 0; i < 5; i++) {
      const res = await runner.run({ target, runKey: key(), script: nestedShells, timeoutSeconds: 20 });
      assert.deepEqual([res.exitCode, res.output], [0, 'one 2\ntwo\nthree\n']);
    }
    const together = await Promise.all(
      [1, 2, 3].map((i) =>
        runner.run({ target, runKey: key(), script: `bash -c 'sleep 0.3; echo together ${i}'`, timeoutSeconds: 20 }),
      ),
    );
    assert.deepEqual(
      together.map((r) => r.output),
      ['together 1\n', 'together 2\n', 'together 3\n'],
    );

    // A read of the agent's status (a short command, as GET …/agent runs it).
    const status = await runner.exec(target, `bash -c 'echo status'`, 10);
    assert.deepEqual([status.exitCode, status.stdout, status.stderr], [0, 'status\n', '']);

    // A cancel of a running step.
    const k = key();
    const tag = `login-shell-cancel-${k}`;
    const running = runner.run({ target, runKey: k, script: `bash -c 'exec -a ${tag} sleep 60'`, timeoutSeconds: 30 });
    await waitFor('the step to run', () => processesMatching(tag).length > 0 || undefined);
    await runner.cancel(target, k);
    assert.equal((await running).end, 'canceled');

    const runs = sshd.bashrcRuns().slice(before);
    assert.equal(runs.length, 1, `one connection, one run of ~/.bashrc: ${JSON.stringify(runs)}`);
    assert.equal(runs[0]?.shlvl, '1', 'the run was the login shell’s own');
  });
});

describe('a restart task on a host whose ~/.bashrc is slow and chatty', () => {
  let stack: Stack;
  let port: number;
  before(async () => {
    stack = await startStack({ hosts: 1, bashrc: {} });
    port = (await stack.startService()).httpPort as number;
  });
  after(async () => stack?.stop());

  it('runs the five steps and an agent status read with one ~/.bashrc run on one connection, and no chatter in any log', async () => {
    const api = apiClient(port);
    const h = stack.sshd.hosts[0]!;
    const before = stack.sshd.bashrcRuns().length;

    const created = await api<{ id: number }>('POST', `/compute/hosts/${h.id}/agent/restart`);
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const task = await waitForTask(stack.nc, created.body.data.id);
    assert.equal(task.status, 'SUCCESSFUL', JSON.stringify(task.subtasks.map((s) => [s.name, s.status])));
    for (const s of task.subtasks) {
      const log = await api<{ log: string }>('GET', `/api/v2/tasks/instances/${task.id}/subtasks/${s.id}/log`, {
        user: 'viewer',
      });
      assert.equal(log.status, 200);
      assert.ok(!log.body.data.log.includes(BASHRC_CHATTER), `${s.name}: ${log.body.data.log}`);
    }

    const agent = await api<{ status: string }>('GET', `/compute/hosts/${h.id}/agent`, { user: 'viewer' });
    assert.equal(agent.body.data.status, 'STARTED');

    // The agent's control script started four daemons and a pos proxy with
    // `bash -c`: none of them ran ~/.bashrc.
    const runs = stack.sshd.bashrcRuns().slice(before);
    assert.equal(runs.length, 1, `one connection, one run of ~/.bashrc: ${JSON.stringify(runs)}`);
  });
});
