/**
 * Host keys: an unknown or changed key is refused, and the subtask says so —
 * at once, never attached to again (nothing was launched), unlike a host out
 * of reach (takeover.test.ts). The same for a state folder that cannot be made.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { parse, stringify } from 'yaml';
import type { StepRunner } from '../../src/executor/ports.js';
import { createSshStepRunner } from '../../src/ssh/ssh-step-runner.js';
import { accepted, newRequestId, request } from '../helpers/requests.js';
import { readCalls } from '../helpers/sim-agent.js';
import { type Stack, startStack, waitForTask } from '../helpers/stack.js';

function otherKey(): string {
  const dir = mkdtempSync(join(tmpdir(), 'otherkey-'));
  spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'k')]);
  const pub = readFileSync(join(dir, 'k.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
  rmSync(dir, { recursive: true, force: true });
  return pub;
}

describe('host key checking', () => {
  let stack: Stack;
  /** Run keys the executor ran or attached to, in order. */
  const runs: string[] = [];
  before(async () => {
    // Host 101: no line at all (unknown). Host 102: a line with another key (changed).
    // Host 103: its key known, its state folder where no folder can be made.
    stack = await startStack({ hosts: 3, knownHosts: '' });
    const [second, third] = [stack.sshd.hosts[1]!, stack.sshd.hosts[2]!];
    writeFileSync(
      stack.config.ssh.knownHostsPath,
      `[${second.address}]:${second.port} ${otherKey()}\n[${third.address}]:${third.port} ${stack.sshd.hostPublicKey}\n`,
    );
    const config = parse(readFileSync(stack.configPath, 'utf8'));
    config.hosts[2].stateDir = '/proc/no-folder-can-be-made-here';
    writeFileSync(stack.configPath, stringify(config));
    const ssh = createSshStepRunner({
      knownHostsPath: stack.config.ssh.knownHostsPath,
      connectTimeoutSeconds: 5,
      logger: pino({ level: 'silent' }),
    });
    const counting: StepRunner = {
      ...ssh,
      run: (spec) => {
        runs.push(spec.runKey);
        return ssh.run(spec);
      },
    };
    await stack.startService(undefined, counting);
  });
  after(async () => stack?.stop());

  async function failedLog(hostIndex: number): Promise<{ error: string }> {
    const host = stack.sshd.hosts[hostIndex]!;
    const ev = accepted(
      await request(stack.nc, stack.js, 'restart', { hostId: host.id, creator: 'ops', requestId: newRequestId() }),
    );
    const task = await waitForTask(stack.nc, ev.taskId);
    assert.equal(task.status, 'FAILED');
    assert.equal(task.subtasks[0]!.status, 'FAILED');
    assert.deepEqual(readCalls(host.agentHome), [], 'nothing ran on the host');
    const subtask = task.subtasks[0]!;
    assert.deepEqual(
      runs.filter((k) => k.endsWith(`-${task.id}-${subtask.id}-${subtask.runTime}`)).length,
      1,
      'failed at its first attempt: never attached to again',
    );
    const logs = await stack.nc.jetstream().views.kv('ocp_logs');
    return JSON.parse(new TextDecoder().decode((await logs.get(`log.${task.id}.${task.subtasks[0]!.id}`))!.value));
  }

  it('refuses an unknown host key', async () => {
    const log = await failedLog(0);
    assert.match(log.error, /not in known_hosts/);
    assert.match(log.error, /SHA256:/);
    assert.match(log.error, /known_hosts/);
  });

  it('refuses a changed host key', async () => {
    const log = await failedLog(1);
    assert.match(log.error, /does not match/i);
  });

  it('fails a step whose state folder cannot be made, naming it', async () => {
    const log = await failedLog(2);
    assert.equal(log.error, `cannot create /proc/no-folder-can-be-made-here/runs on host ${stack.sshd.hosts[2]!.id}`);
  });
});
