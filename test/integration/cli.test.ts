/**
 * The ocp-chatops CLI (issue 16) as an operator runs it: bin/ocp-chatops.mjs
 * in a process of its own, against a running stack over its HTTP API.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { hashProblem } from '../../src/doctor/access-checks.js';
import { clearFaults, setFault } from '../helpers/sim-agent.js';
import { type Stack, startStack, TEST_USERS } from '../helpers/stack.js';

const BIN = new URL('../../bin/ocp-chatops.mjs', import.meta.url).pathname;

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(env: NodeJS.ProcessEnv, args: string[], stdin = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

describe('ocp-chatops CLI', () => {
  let stack: Stack;
  let env: NodeJS.ProcessEnv;
  const as = (user: keyof typeof TEST_USERS) => ({
    ...env,
    OCP_CHATOPS_USER: user,
    OCP_CHATOPS_PASSWORD: TEST_USERS[user].password,
  });

  before(async () => {
    stack = await startStack({ hosts: 3, stepTimeout: 10 });
    const svc = await stack.startService();
    env = {
      PATH: process.env.PATH,
      HOME: stack.dir, // no credentials file of the developer's
      OCP_CHATOPS_URL: `http://127.0.0.1:${svc.httpPort}`,
    };
  });
  after(async () => stack?.stop());

  const host = (i: number) => stack.sshd.hosts[i]!;

  it('restart --wait on one host: a line per step, then SUCCESSFUL and exit 0', async () => {
    const run = await cli(as('operator'), ['restart', host(0).name, '--reason', 'monagent stuck', '--wait']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stdout,
      new RegExp(
        `^Task \\d+ Restart OCP agent on host ${host(0).id}: RUNNING, by operator \\("monagent stuck"\\)$`,
        'm',
      ),
    );
    for (const step of [
      'Prepare restart OCP agent',
      'Restart pos proxy',
      'Stop all OCP agent processes',
      'Start all OCP agent processes',
      'Finish OCP agent operation',
    ])
      assert.match(run.stdout, new RegExp(`^${step}: SUCCESSFUL \\(\\d+\\.\\d s\\)$`, 'm'));
    assert.match(run.stdout, /: SUCCESSFUL, by operator \("monagent stuck"\)\n$/);
  });

  it('restart --wait on a batch: a progress bar to the end, exit 0; then list and status show it', async () => {
    const ids = `${host(1).id},${host(2).id}`;
    const run = await cli(as('operator'), ['restart', ids, '--wait']);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^Task (\d+) Batch restart OCP agent on 2 hosts: RUNNING/m);
    assert.match(run.stderr, /\[#{20}\] 2\/2 hosts done$/m);
    const taskId = /^Task (\d+)/.exec(run.stdout)?.[1];

    const list = await cli(as('viewer'), ['list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^\\s*${taskId}  SUCCESSFUL\\s+Batch restart OCP agent  2 hosts`, 'm'));
    assert.match(list.stdout, /^\s*\d+ {2}SUCCESSFUL\s+Restart OCP agent {2}host \d+ .*"monagent stuck"$/m);

    const status = await cli(as('viewer'), ['status', String(taskId)]);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`host ${host(2).id}  Finish OCP agent operation\\s+SUCCESSFUL`));
  });

  it('a failed restart --wait exits 1 naming the failed step; retry, then status --wait, end SUCCESSFUL; history lists both runs', async () => {
    setFault(host(1).agentHome, 'restart', 'fail');
    const failed = await cli(as('operator'), ['restart', String(host(1).id), '--wait']);
    assert.equal(failed.code, 1, failed.stderr);
    assert.match(failed.stdout, /^Restart pos proxy: FAILED/m);
    assert.match(failed.stdout, /: FAILED, by operator\n$/);
    const taskId = /^Task (\d+)/.exec(failed.stdout)?.[1] as string;
    clearFaults(host(1).agentHome);

    const retried = await cli(as('operator'), ['retry', taskId]);
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(retried.stdout, new RegExp(`^Task ${taskId} Restart OCP agent on host ${host(1).id}: RUNNING`));
    const followed = await cli(as('viewer'), ['status', taskId, '--wait']);
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, /: SUCCESSFUL, by operator\n$/);

    const history = await cli(as('viewer'), ['history', host(1).name]);
    assert.equal(history.code, 0, history.stderr);
    assert.match(
      history.stdout,
      new RegExp(`^\\s*${taskId}  SUCCESSFUL\\s+Restart OCP agent  host ${host(1).id}`, 'm'),
    );
    assert.match(history.stdout, /Batch restart OCP agent {2}2 hosts/, 'the batch that included it');
  });

  it("a refused command prints the API's words and exits 1; bad use exits 2 with the usage", async () => {
    const refused = await cli(as('viewer'), ['restart', String(host(0).id)]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^ocp-chatops: .*HOST_MANAGER.* \(HTTP 403, code 30014\)$/m);
    const missing = await cli(as('operator'), ['status', '999999']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /\(HTTP 404, code 20000\)/);
    const usage = await cli(as('operator'), ['restart']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /Usage: ocp-chatops restart <host>/);
    const noCreds = await cli(env, ['list']);
    assert.equal(noCreds.code, 2);
    assert.match(noCreds.stderr, /no credentials: set OCP_CHATOPS_USER and OCP_CHATOPS_PASSWORD/);
  });

  it("doctor runs the service's checks with its configuration: the stack's users are well", async () => {
    const run = await cli({ ...env, CONFIG_FILE: stack.configPath, NATS_URL: stack.env.NATS_URL }, [
      'doctor',
      '--only',
      'access,nats',
      '--json',
    ]);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const findings = (JSON.parse(run.stdout) as { findings: Array<{ target: string; verdict: string }> }).findings;
    assert.ok(findings.some((f) => f.target === 'http user operator' && f.verdict === 'ok'));
    assert.ok(findings.some((f) => f.target === 'nats' && f.verdict === 'ok'));
  });

  it('hash-password reads the password from stdin and prints a hash the service takes', async () => {
    const run = await cli(env, ['hash-password'], 'correct horse\n');
    assert.equal(run.code, 0, run.stderr);
    const hash = run.stdout.trim();
    assert.equal(hashProblem(hash), undefined, hash);
    assert.doesNotMatch(run.stdout + run.stderr, /correct horse/);
  });
});
