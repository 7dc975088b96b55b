/**
 * The shell that runs a step on a host, through the real SSH runner and sshd:
 * a cancel that comes before the launch keeps the step from ever starting; a
 * cancel of a running step leaves none of its processes; a second launch of
 * the same run attaches to the first.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
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
      privateKeyPath: sshd.privateKeyPath,
      stateDir: join(sshd.dir, 'state'),
    };
    runner = createSshStepRunner({
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
    assert.equal(res.end, 'canceled');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(existsSync(marker), false, 'the step never ran');
  });

  it('never starts a step reached after its launch deadline, nor on any later attempt', async () => {
    const k = key();
    const marker = join(sshd.dir, `ran-${k}`);
    const now = Math.floor(Date.now() / 1000);
    const late = await runner.run({
      target,
      runKey: k,
      script: `touch '${marker}'`,
      timeoutSeconds: 10,
      launchBy: now - 1,
    });
    assert.equal(late.end, 'late');
    assert.notEqual(late.exitCode, 0);
    assert.match(late.output, /not started/);
    // Another executor attaching later, even with a deadline still ahead, starts nothing.
    const again = await runner.run({
      target,
      runKey: k,
      script: `touch '${marker}'`,
      timeoutSeconds: 10,
      launchBy: now + 60,
    });
    assert.equal(again.end, 'late');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(existsSync(marker), false, 'the step never ran');
  });

  it('attaches to a step launched in time even after its launch deadline', async () => {
    const k = key();
    const now = Math.floor(Date.now() / 1000);
    const first = runner.run({
      target,
      runKey: k,
      script: 'sleep 2; echo done',
      timeoutSeconds: 10,
      launchBy: now + 1,
    });
    await new Promise((r) => setTimeout(r, 2500));
    const attached = await runner.run({
      target,
      runKey: k,
      script: 'echo never',
      timeoutSeconds: 10,
      launchBy: now + 1,
    });
    assert.equal((await first).output, 'done\n');
    assert.deepEqual([attached.exitCode, attached.output, attached.end], [0, 'done\n', 'exited']);
  });

  it('ends every process of a running step on cancel', async () => {
    const k = key();
    const tag = `cancel-me-${k}`;
    const running = runner.run({ target, runKey: k, script: `bash -c 'exec -a ${tag} sleep 60'`, timeoutSeconds: 30 });
    await waitFor('the step to run', () => processesMatching(tag).length > 0 || undefined);
    await runner.cancel(target, k);
    const res = await running;
    assert.equal(res.end, 'canceled');
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

  it('attach-only waits for a launched run, and launches nothing when there is none', async () => {
    const k = key();
    const launched = runner.run({ target, runKey: k, script: 'sleep 1; echo first; exit 3', timeoutSeconds: 10 });
    await new Promise((r) => setTimeout(r, 300));
    const attached = await runner.run({ target, runKey: k, script: '', timeoutSeconds: 10, attachOnly: true });
    assert.deepEqual([attached.exitCode, attached.end], [3, 'exited']);
    assert.match(attached.output, /first/);
    assert.equal((await launched).exitCode, 3);

    const none = key();
    const marker = join(sshd.dir, `ran-${none}`);
    const nothing = await runner.run({ target, runKey: none, script: '', timeoutSeconds: 10, attachOnly: true });
    assert.equal(nothing.end, 'notLaunched');
    assert.notEqual(nothing.exitCode, 0);
    // The run is claimed: a later launch under its key attaches to "not launched" and starts nothing.
    const late = await runner.run({ target, runKey: none, script: `touch '${marker}'`, timeoutSeconds: 10 });
    assert.equal(late.end, 'notLaunched');
    assert.equal(existsSync(marker), false);
  });

  it('reports a timeout and leaves nothing of the step', async () => {
    const k = key();
    const tag = `too-slow-${k}`;
    const res = await runner.run({ target, runKey: k, script: `bash -c 'exec -a ${tag} sleep 60'`, timeoutSeconds: 1 });
    assert.equal(res.end, 'timedOut');
    assert.deepEqual(processesMatching(tag), []);
  });

  it('does not take a step’s own exit code for the wrapper’s word', async () => {
    for (const code of [124, 97, 98]) {
      const res = await runner.run({ target, runKey: key(), script: `exit ${code}`, timeoutSeconds: 10 });
      assert.deepEqual([res.exitCode, res.end], [code, 'exited']);
    }
  });

  it('survives a connection reset under a running step, and the step still ends once', async () => {
    // A TCP relay in front of sshd that can answer with a RST, as a cut network does.
    const h = sshd.hosts[0]!;
    const sockets = new Set<Socket>();
    const relay = createServer((client) => {
      const upstream = new Socket().connect(h.port, h.address);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((r) => relay.listen(0, h.address, r));
    const port = (relay.address() as { port: number }).port;
    const knownHosts = join(sshd.dir, 'known_hosts_relay');
    writeFileSync(knownHosts, `[${h.address}]:${port} ${sshd.hostPublicKey}\n`);
    const relayed = createSshStepRunner({
      knownHostsPath: knownHosts,
      connectTimeoutSeconds: 5,
      logger: pino({ level: 'silent' }),
    });
    const viaRelay = { ...target, port };
    try {
      const k = key();
      const counter = join(sshd.dir, `count-${k}`);
      const script = `echo x >> '${counter}'; sleep 2; echo done`;
      const first = relayed.run({ target: viaRelay, runKey: k, script, timeoutSeconds: 10 });
      await waitFor('the step to begin', () => existsSync(counter) || undefined);
      for (const s of sockets) s.resetAndDestroy();
      sockets.clear();
      // An unhandled 'error' from the SSH client would have ended this process here.
      const outcome = await first.then(
        (r) => r,
        (err: Error) => err,
      );
      const res =
        outcome instanceof Error
          ? await relayed.run({ target: viaRelay, runKey: k, script, timeoutSeconds: 10 }) // attach again
          : outcome;
      assert.equal(res.exitCode, 0);
      assert.match(res.output, /done/);
      assert.equal(readFileSync(counter, 'utf8'), 'x\n', 'the step ran once');
    } finally {
      await relayed.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => relay.close(r));
    }
  });
});
