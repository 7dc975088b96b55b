/**
 * Hosts behind a bastion (SPEC §9 `jump`, as OpenSSH's ProxyJump). As root
 * (CI here), the hosts live in a network namespace that only the bastion's
 * namespace reaches: a direct connection fails, so only a design that really
 * goes through the bastion passes. Elsewhere the loopback fallback runs, and
 * the suite's name says so.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import { runDoctor } from '../../src/doctor/run-doctor.js';
import { apiClient } from '../helpers/http.js';
import { type BastionNet, bastionNet, netnsWorks } from '../helpers/netns.js';
import { clearCalls, readCalls, setFault } from '../helpers/sim-agent.js';
import { type SshdHandle, startSshd } from '../helpers/sshd.js';
import { type Stack, startStack, waitFor, waitForTask } from '../helpers/stack.js';

const KIND = netnsWorks() ? 'netns' : 'loopback';
const BEHIND = 3;
/** Host entries of the test's own: host 0's address without a bastion, and behind a bastion whose key changed. */
const DIRECT = 199;
const CHANGED_KEY = 198;

/** The service's established TCP connections to `address:port` (seen from this namespace). */
function connectionsTo(address: string, port: number): number {
  const out = execFileSync('ss', ['-Htn', 'state', 'established', 'dst', `${address}:${port}`], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.trim() !== '').length;
}

describe(`hosts behind a bastion (${KIND === 'netns' ? 'network namespaces: only the bastion reaches the hosts' : 'loopback fallback: the hosts are reachable directly too'})`, () => {
  let net: BastionNet;
  let bastion: SshdHandle;
  /** A second bastion whose key known_hosts does not hold: it lists the first one's for it. */
  let impostor: SshdHandle;
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  const host = (i: number) => stack.sshd.hosts[i]!;
  const jumpOf = (b: SshdHandle) => ({ address: b.hosts[0]!.address, port: b.hosts[0]!.port });

  before(async () => {
    net = bastionNet(BEHIND);
    bastion = await startSshd({ hosts: 1, firstId: 900, ...(net.bastion ? { network: net.bastion } : {}) });
    impostor = await startSshd({
      hosts: 1,
      firstId: 901,
      clientKeyPath: bastion.privateKeyPath,
      ...(net.bastion ? { network: { ...net.bastion, port: 2222 } } : {}),
    });
    const wrong = `${impostor.hosts[0]!.port === 22 ? impostor.hosts[0]!.address : `[${impostor.hosts[0]!.address}]:${impostor.hosts[0]!.port}`} ${bastion.hostPublicKey}\n`;
    stack = await startStack({
      hosts: BEHIND,
      bashrc: {},
      sshd: { clientKeyPath: bastion.privateKeyPath, ...(net.hosts ? { network: net.hosts } : {}) },
      moreKnownHosts: readFileSync(bastion.knownHostsPath, 'utf8') + wrong,
      editConfig: (file) => {
        const hosts = file.hosts as Array<Record<string, unknown>>;
        const first = hosts[0]!;
        for (const h of hosts) h.group = 'behind-bastion';
        hosts.push(
          { ...first, id: DIRECT, name: 'direct', group: undefined },
          { ...first, id: CHANGED_KEY, name: 'behind-impostor', group: undefined, jump: jumpOf(impostor) },
        );
        return { ...file, groups: { 'behind-bastion': { jump: jumpOf(bastion), labels: { zone: 'z9' } } } };
      },
    });
    api = apiClient((await stack.startService()).httpPort as number);
  });
  after(async () => {
    await stack?.stop();
    await impostor?.stop();
    await bastion?.stop();
    net?.remove();
  });

  async function task(path: string, body?: unknown): Promise<OcpTask> {
    const a = await api<OcpTask>('POST', path, body === undefined ? {} : { body });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    return waitForTask(stack.nc, a.body.data.id, undefined, 60_000);
  }
  async function failure(t: OcpTask): Promise<string> {
    const failed = t.subtasks.find((s) => s.status === 'FAILED');
    assert.ok(failed, `a subtask of task ${t.id} failed: ${JSON.stringify(t.subtasks.map((s) => s.status))}`);
    return (await api<{ log: string }>('GET', `/api/v2/tasks/instances/${t.id}/subtasks/${failed.id}/log`)).body.data
      .log;
  }

  it('restarts the agents of every host behind the bastion over one connection to it', async () => {
    const t = await task('/compute/hosts/batchRestartAgents', { hostIds: [host(0).id, host(1).id, host(2).id] });
    assert.equal(t.status, 'SUCCESSFUL', await failure(t).catch(() => ''));
    for (let i = 0; i < BEHIND; i++) {
      const ended = readCalls(host(i).agentHome).filter((c) => c.phase === 'end' && c.exit === 0);
      for (const args of ['stop', 'start'])
        assert.ok(
          ended.some((c) => c.args === args),
          `host ${host(i).id}'s agent ran ${args}: ${JSON.stringify(ended)}`,
        );
    }
    const b = jumpOf(bastion);
    assert.equal(connectionsTo(b.address, b.port), 1, 'one connection to the bastion carries the three hosts');
  });

  it(
    KIND === 'netns'
      ? "cannot reach a host directly: without its bastion, reading its agent's status fails as unreachable"
      : 'loopback fallback: reaches the host directly, as nothing stops it here',
    async () => {
      const behind = await api<{ status: string }>('GET', `/compute/hosts/${host(0).id}/agent`);
      assert.equal(behind.status, 200, JSON.stringify(behind.body));
      const direct = await api<{ status: string }>('GET', `/compute/hosts/${DIRECT}/agent`);
      if (KIND === 'netns') {
        assert.notEqual(direct.status, 200);
        assert.match(JSON.stringify(direct.body), /cannot connect to host 199 .*EHOSTUNREACH/);
      } else {
        assert.equal(direct.status, 200, JSON.stringify(direct.body));
      }
    },
  );

  it('refuses a bastion whose host key is not the one known, naming the bastion and the host behind it', async () => {
    const t = await task(`/compute/hosts/${CHANGED_KEY}/agent/restart`);
    assert.equal(t.status, 'FAILED');
    const log = await failure(t);
    const { address, port } = jumpOf(impostor);
    assert.match(log, new RegExp(`bastion .*@${address.replaceAll('.', '\\.')}:${port} for host ${CHANGED_KEY}`));
    assert.match(log, /host key/i);
    assert.equal(connectionsTo(address, port), 0, 'nothing stays connected to a refused bastion');
  });

  it('doctor: reaches the hosts through their bastion, and names a bastion whose key changed with what to do', async () => {
    const findings = await runDoctor(loadConfig(stack.env, stack.dir).config, { parts: ['hosts'] });
    const of = (id: number) => findings.filter((f) => f.target.startsWith(`host ${id} `));
    const b = jumpOf(bastion);
    for (let i = 0; i < BEHIND; i++) {
      assert.deepEqual(
        of(host(i).id).filter((f) => f.verdict !== 'ok'),
        [],
        `host ${host(i).id}: ${JSON.stringify(of(host(i).id))}`,
      );
      assert.match(of(host(i).id)[0]?.detail ?? '', new RegExp(`via .*@${b.address}:${b.port}$`));
    }
    const refused = of(CHANGED_KEY).find((f) => f.verdict === 'fail');
    const i = jumpOf(impostor);
    const name = i.port === 22 ? i.address : `\\[${i.address}\\]:${i.port}`;
    assert.equal(refused?.check, 'host key', JSON.stringify(of(CHANGED_KEY)));
    assert.match(refused?.detail ?? '', /bastion .* for host 198/);
    assert.match(refused?.remedy ?? '', new RegExp(`ssh-keygen -R '${name}'`));
    const direct = of(DIRECT).find((f) => f.verdict === 'fail');
    if (KIND === 'netns') assert.equal(direct?.check, 'reach', JSON.stringify(of(DIRECT)));
    else assert.equal(direct, undefined);
  });

  it('reconnects a bastion that drops mid-step; the step is attached to again and runs once', async () => {
    const h = host(1);
    clearCalls(h.agentHome);
    setFault(h.agentHome, 'stop', 'slow', 3);
    const a = await api<OcpTask>('POST', `/compute/hosts/${h.id}/agent/restart`);
    assert.equal(a.status, 200);
    await waitFor('the stop step to run on the host', () =>
      readCalls(h.agentHome).some((c) => c.phase === 'begin' && c.args === 'stop'),
    );
    // Every connection the bastion serves ends at once (its per-connection sshd processes die).
    for (const pid of bastion.serverPids()) execFileSync('pkill', ['-KILL', '-P', String(pid)]);
    const t = await waitForTask(stack.nc, a.body.data.id, undefined, 60_000);
    assert.equal(t.status, 'SUCCESSFUL', await failure(t).catch(() => ''));
    const stops = readCalls(h.agentHome).filter((c) => c.phase === 'begin' && c.args === 'stop');
    assert.equal(stops.length, 1, 'the stop step ran once, attached to again after the cut');
    const b = jumpOf(bastion);
    assert.equal(connectionsTo(b.address, b.port), 1, 'one new connection to the bastion');
  });
});
