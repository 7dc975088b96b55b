/** Host keys: an unknown or changed key is refused, and the subtask says so. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
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
  before(async () => {
    // Host 101: no line at all (unknown). Host 102: a line with another key (changed).
    stack = await startStack({ hosts: 2, knownHosts: '' });
    const second = stack.sshd.hosts[1]!;
    writeFileSync(stack.config.ssh.knownHostsPath, `[${second.address}]:${second.port} ${otherKey()}\n`);
    await stack.startService();
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
});
