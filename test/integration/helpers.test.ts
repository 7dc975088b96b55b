// Proves the integration-test helpers themselves work before any product test relies on them.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { connect } from 'nats';
import { NodeSSH } from 'node-ssh';
import { canConnect, startNatsServer } from '../helpers/nats-server.js';
import {
  type AgentCall,
  agentProcessPids,
  clearFaults,
  overlappingCalls,
  processesMatching,
  readCalls,
  regexEscape,
  setFault,
  setStuckStop,
} from '../helpers/sim-agent.js';
import { type SimHost, type SshdHandle, startSshd } from '../helpers/sshd.js';

test('nats-server starts with JetStream, and kill + restart keeps port and store', async () => {
  const server = await startNatsServer();
  try {
    const nc = await connect({ servers: server.url });
    const jsm = await nc.jetstreamManager();
    await jsm.streams.add({ name: 'HELPERS', subjects: ['helpers.>'] });
    await nc.close();

    await server.kill();
    assert.equal(await canConnect('127.0.0.1', server.port), false);
    await server.restart();

    // Same port, and the stream survived because the store dir was kept.
    const nc2 = await connect({ servers: `nats://127.0.0.1:${server.port}` });
    const info = await (await nc2.jetstreamManager()).streams.info('HELPERS');
    assert.equal(info.config.name, 'HELPERS');
    await nc2.close();
  } finally {
    await server.stop();
  }
  assert.equal(existsSync(server.storeDir), false);
});

test('overlappingCalls pairs concurrent invocations, open calls last forever', () => {
  const b = (at: number, pid: number): AgentCall => ({ phase: 'begin', at, pid, args: 'status' });
  const e = (at: number, pid: number): AgentCall => ({ phase: 'end', at, pid, args: 'status', exit: 0 });
  assert.deepEqual(overlappingCalls([b(1, 1), e(5, 1), b(5, 2), e(9, 2)]), []); // touching is fine
  assert.equal(overlappingCalls([b(1, 1), b(2, 2), e(3, 2), e(4, 1)]).length, 1);
  assert.equal(overlappingCalls([b(1, 1), b(100, 2), e(101, 2)]).length, 1); // pid 1 never ended
});

describe('sshd with simulated hosts', () => {
  let sshd: SshdHandle;
  const sessions: NodeSSH[] = [];

  const ssh = async (host: SimHost): Promise<NodeSSH> => {
    const client = await new NodeSSH().connect({
      host: host.address,
      port: host.port,
      username: host.username,
      privateKeyPath: sshd.privateKeyPath,
    });
    sessions.push(client);
    return client;
  };
  const ctl = (host: SimHost, args: string) => `${host.agentHome}/bin/ocp_agentctl ${args}`;
  const host = (i: number): SimHost => {
    const h = sshd.hosts[i];
    assert.ok(h);
    return h;
  };

  before(async () => {
    sshd = await startSshd({ hosts: 3 });
  });
  after(async () => {
    for (const s of sessions) s.dispose();
    await sshd?.stop();
  });

  test('hosts are distinct loopback addresses with known_hosts entries', () => {
    assert.deepEqual(
      sshd.hosts.map((h) => [h.id, h.name, h.address]),
      [
        [101, 'sim-host-101', '127.0.0.10'],
        [102, 'sim-host-102', '127.0.0.11'],
        [103, 'sim-host-103', '127.0.0.12'],
      ],
    );
    assert.match(sshd.hostPublicKey, /^ssh-ed25519 AAAA\S+$/);
  });

  test('status over SSH on every host: exit 0, four running processes', async () => {
    for (const h of sshd.hosts) {
      const res = await (await ssh(h)).execCommand(ctl(h, 'status'));
      assert.equal(res.code, 0, res.stderr);
      const lines = res.stdout.split('\n');
      assert.equal(lines.length, 4);
      for (const line of lines) assert.match(line, /^(ocp_agentd|ocp_mgragent|ocp_monagent|pos_proxy) \d+ running$/);
      assert.equal(agentProcessPids(h.agentHome).length, 4);
    }
  });

  test('fail fault: exit 3 with stderr, and calls.log has begin/end pairs', async () => {
    const h = host(0);
    setFault(h.agentHome, 'stop', 'fail');
    const res = await (await ssh(h)).execCommand(ctl(h, 'stop'));
    clearFaults(h.agentHome);
    assert.equal(res.code, 3);
    assert.equal(res.stderr, 'simulated failure of stop');
    assert.equal(agentProcessPids(h.agentHome).length, 4, 'a failed stop stops nothing');

    const calls = readCalls(h.agentHome);
    // status (previous test) then stop; startSimAgent at setup is not logged.
    assert.deepEqual(
      calls.map((c) => [c.phase, c.args, c.exit]),
      [
        ['begin', 'status', undefined],
        ['end', 'status', 0],
        ['begin', 'stop', undefined],
        ['end', 'stop', 3],
      ],
    );
    assert.equal(calls[0]?.pid, calls[1]?.pid);
    assert.ok((calls[0]?.at ?? 0) <= (calls[1]?.at ?? -1));
    assert.deepEqual(overlappingCalls(calls), []);
  });

  test('stop/start over SSH: agents survive the session, restart pos_proxy, stuck-stop', async () => {
    const h = host(1);
    const client = await ssh(h);
    assert.equal((await client.execCommand(ctl(h, 'stop'))).code, 0);
    assert.deepEqual(agentProcessPids(h.agentHome), []);
    assert.equal((await client.execCommand(ctl(h, 'status'))).code, 1);
    assert.equal((await client.execCommand(ctl(h, 'start'))).code, 0);
    client.dispose();
    // setsid: closing the SSH session must not take the agent down with it.
    await new Promise((r) => setTimeout(r, 200));
    const pids = agentProcessPids(h.agentHome);
    assert.equal(pids.length, 4);

    const client2 = await ssh(h);
    const before = (await client2.execCommand(ctl(h, 'status'))).stdout;
    assert.equal((await client2.execCommand(ctl(h, 'restart pos_proxy'))).code, 0);
    const afterRestart = (await client2.execCommand(ctl(h, 'status'))).stdout;
    const pidOf = (out: string, name: string) => out.split('\n').find((l) => l.startsWith(`${name} `));
    assert.notEqual(pidOf(before, 'pos_proxy'), pidOf(afterRestart, 'pos_proxy'));
    assert.equal(pidOf(before, 'ocp_agentd'), pidOf(afterRestart, 'ocp_agentd'));

    setStuckStop(h.agentHome, true);
    assert.equal((await client2.execCommand(ctl(h, 'stop'))).code, 0);
    assert.equal(agentProcessPids(h.agentHome).length, 4, 'stuck stop leaves processes running');
    setStuckStop(h.agentHome, false);
    assert.deepEqual(overlappingCalls(readCalls(h.agentHome)), []);
  });

  test('hang fault under `timeout 1` leaves no simhang process', async () => {
    const h = host(2);
    const earlier = readCalls(h.agentHome).length;
    setFault(h.agentHome, 'status', 'hang');
    const started = Date.now();
    const res = await (await ssh(h)).execCommand(`timeout 1 ${ctl(h, 'status')}`);
    clearFaults(h.agentHome);
    assert.equal(res.code, 124);
    assert.ok(Date.now() - started < 5_000);
    assert.deepEqual(processesMatching(`simhang ${regexEscape(h.agentHome)}`), []);
    assert.deepEqual(
      readCalls(h.agentHome)
        .slice(earlier)
        .map((c) => c.phase),
      ['begin'],
      'a hung call never writes its end line',
    );
    assert.equal(agentProcessPids(h.agentHome).length, 4, 'the agent itself is untouched');
  });
});
