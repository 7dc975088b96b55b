/**
 * The shell that runs a step on a host, through the real SSH runner and sshd:
 * a cancel that comes before the launch keeps the step from ever starting; a
 * cancel of a running step leaves none of its processes; a second launch of
 * the same run attaches to the first.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import type { StepRunner, StepTarget } from '../../src/executor/ports.js';
import { createSshStepRunner } from '../../src/ssh/ssh-step-runner.js';
import { processesMatching } from '../helpers/sim-agent.js';
import { type SshdHandle, startSshd } from '../helpers/sshd.js';
import { waitFor } from '../helpers/stack.js';

describe('remote step', () => {
  let sshd: SshdHandle;
  let runner: StepRunner;
  let target: StepTarget;
  let n = 0;
  const key = () => `abc-1-${++n}-1`;
  before(async () => {
    sshd = await startSshd({ hosts: 1 });
    const h = sshd.hosts[0]!;
    target = {
      hostId: h.id,
      address: h.address,
      port: h.port,
      username: h.username,
      stateDir: join(sshd.dir, 'state'),
    };
    runner = createSshStepRunner({
      privateKeyPath: sshd.privateKeyPath,
      knownHostsPath: sshd.knownHostsPath,
      connectTimeoutSeconds: 5,
      logger: pino({ level: 'silent' }),
    });
  });
  after(async () => {
    await runner?.close();
    await sshd?.stop();
  });

  it('never starts a step canceled before its launch', async () => {
    const k = key();
    const marker = join(sshd.dir, `ran-${k}`);
    await runner.cancel(target, k);
    const res = await runner.run({ target, runKey: k, script: `touch '${marker}'`, timeoutSeconds: 10 });
    assert.equal(res.canceled, true);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(existsSync(marker), false, 'the step never ran');
  });

  it('ends every process of a running step on cancel', async () => {
    const k = key();
    const tag = `cancel-me-${k}`;
    const running = runner.run({ target, runKey: k, script: `bash -c 'exec -a ${tag} sleep 60'`, timeoutSeconds: 30 });
    await waitFor('the step to run', () => processesMatching(tag).length > 0 || undefined);
    await runner.cancel(target, k);
    const res = await running;
    assert.equal(res.canceled, true);
    assert.match(res.output, /canceled/);
    assert.deepEqual(processesMatching(tag), []);
  });

  it('attaches a second launch of the same run to the first: the step runs once', async () => {
    const k = key();
    const counter = join(sshd.dir, `count-${k}`);
    const script = `echo x >> '${counter}'; sleep 1; echo done`;
    const [a, b] = await Promise.all([
      runner.run({ target, runKey: k, script, timeoutSeconds: 10 }),
      runner.run({ target, runKey: k, script, timeoutSeconds: 10 }),
    ]);
    assert.deepEqual([a.exitCode, b.exitCode], [0, 0]);
    assert.match(a.output, /done/);
    assert.equal(a.output, b.output);
    assert.equal(readFileSync(counter, 'utf8'), 'x\n', 'ran once');
  });

  it('reports a timeout and leaves nothing of the step', async () => {
    const k = key();
    const tag = `too-slow-${k}`;
    const res = await runner.run({ target, runKey: k, script: `bash -c 'exec -a ${tag} sleep 60'`, timeoutSeconds: 1 });
    assert.equal(res.timedOut, true);
    assert.deepEqual(processesMatching(tag), []);
  });

  it('does not take a step’s own exit code for the wrapper’s word', async () => {
    for (const code of [124, 97, 98]) {
      const res = await runner.run({ target, runKey: key(), script: `exit ${code}`, timeoutSeconds: 10 });
      assert.deepEqual([res.exitCode, res.timedOut, res.canceled], [code, false, false]);
    }
  });
});
