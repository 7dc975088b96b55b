// Test helper: hosts that only a bastion reaches, as in production.
//
// Two network namespaces: the bastion's, joined to this one by a veth pair,
// and the hosts', joined only to the bastion's. This namespace gets an
// `unreachable` route to the hosts' subnet, so a direct connection fails at
// once (and nothing is sent out of the machine); only a channel forwarded by
// the bastion's sshd gets there. Addresses come from 198.18.0.0/15 (RFC 2544,
// for tests), a /23 per set-up chosen among those no route uses yet.
//
// Needs root and `ip netns`. Without them, `bastionNet` gives the loopback
// fallback: bastion and hosts on 127.0.0.0/8, where a direct connection would
// work too. A test says which one ran.
import { execFileSync } from 'node:child_process';
import { killOnExit } from './nats-server.js';
import type { SshdNetwork } from './sshd.js';

export interface BastionNet {
  kind: 'netns' | 'loopback';
  /** Where the bastion's sshd runs (absent: loopback, chosen by the sshd helper). */
  bastion?: SshdNetwork;
  /** Where the hosts' sshd runs (absent: loopback). */
  hosts?: SshdNetwork;
  remove(): void;
}

const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * Whether this process may make network namespaces (root, iproute2 with
 * netns). OCP_TEST_NETNS=off tries the loopback fallback where they would work.
 */
export function netnsWorks(): boolean {
  if (process.env.OCP_TEST_NETNS === 'off' || process.getuid?.() !== 0) return false;
  try {
    ip('netns', 'list');
    return true;
  } catch {
    return false;
  }
}

/** A /23 of 198.18.0.0/15 that no route of this namespace mentions yet: its second octet and third. */
function freeSubnet(): { b: number; c: number } {
  const routes = ip('route', 'show', 'table', 'all');
  for (let tries = 0; tries < 64; tries++) {
    const b = 18 + Math.floor(Math.random() * 2);
    const c = 2 * Math.floor(Math.random() * 128);
    if (!routes.includes(`198.${b}.${c}.`) && !routes.includes(`198.${b}.${c + 1}.`)) return { b, c };
  }
  throw new Error('no free /23 in 198.18.0.0/15 for a test network');
}

/**
 * The bastion's namespace and the hosts' (up to 200 hosts, each an address of
 * its own), or the loopback fallback when namespaces cannot be made.
 */
export function bastionNet(hosts: number): BastionNet {
  if (!netnsWorks()) return { kind: 'loopback', remove: () => undefined };
  if (hosts > 200) throw new Error('at most 200 hosts behind a test bastion');
  const tag = `ocj${Math.random().toString(36).slice(2, 7)}`;
  const [bns, tns] = [`${tag}-b`, `${tag}-t`];
  const { b, c } = freeSubnet();
  const edge = `198.${b}.${c}`; // this namespace .1, the bastion .2
  const inner = `198.${b}.${c + 1}`; // the bastion .1, the hosts .10 and on
  const steps: string[][] = [
    ['netns', 'add', bns],
    ['netns', 'add', tns],
    ['link', 'add', `${tag}r`, 'type', 'veth', 'peer', 'name', `${tag}b`, 'netns', bns],
    ['link', 'add', `${tag}c`, 'netns', bns, 'type', 'veth', 'peer', 'name', `${tag}t`, 'netns', tns],
    ['addr', 'add', `${edge}.1/30`, 'dev', `${tag}r`],
    ['link', 'set', `${tag}r`, 'up'],
    ['-n', bns, 'addr', 'add', `${edge}.2/30`, 'dev', `${tag}b`],
    ['-n', bns, 'addr', 'add', `${inner}.1/24`, 'dev', `${tag}c`],
    ['-n', bns, 'link', 'set', 'lo', 'up'],
    ['-n', bns, 'link', 'set', `${tag}b`, 'up'],
    ['-n', bns, 'link', 'set', `${tag}c`, 'up'],
    ...Array.from({ length: hosts }, (_, i) => ['-n', tns, 'addr', 'add', `${inner}.${10 + i}/24`, 'dev', `${tag}t`]),
    ['-n', tns, 'link', 'set', 'lo', 'up'],
    ['-n', tns, 'link', 'set', `${tag}t`, 'up'],
    // From here the hosts are unreachable, at once, rather than sent to the default route.
    ['route', 'add', 'unreachable', `${inner}.0/24`],
  ];
  const remove = () => {
    for (const args of [
      ['route', 'del', 'unreachable', `${inner}.0/24`],
      ['link', 'del', `${tag}r`],
      ['netns', 'del', tns],
      ['netns', 'del', bns],
    ]) {
      try {
        ip(...args);
      } catch {
        // not made (a set-up that failed half-way) or gone already
      }
    }
  };
  const unregister = killOnExit(remove);
  try {
    for (const args of steps) ip(...args);
  } catch (err) {
    unregister();
    remove();
    throw err;
  }
  return {
    kind: 'netns',
    bastion: { addresses: [`${edge}.2`], port: 22, exec: ['ip', 'netns', 'exec', bns] },
    hosts: {
      addresses: Array.from({ length: hosts }, (_, i) => `${inner}.${10 + i}`),
      port: 22,
      exec: ['ip', 'netns', 'exec', tns],
    },
    remove: () => {
      unregister();
      remove();
    },
  };
}
