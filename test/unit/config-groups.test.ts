/**
 * Groups and labels (SPEC §9): a host's setting wins over its group's, which
 * wins over `ssh:` and the defaults; labels merge key by key; a bad group or
 * label is a ConfigError naming the field.
 */
import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, parseConfig } from '../../src/config.js';
import { hostDigest } from '../../src/tasks/step-plans.js';

const host = (over: Record<string, unknown> = {}) => ({ id: 100, name: 'ocp-host-1', address: '127.0.0.1', ...over });
const parse = (raw: unknown) => parseConfig(raw, {}, 'ocp-chatops.yml', '/etc/ocp');

function throwsNaming(raw: unknown, field: string, words: RegExp) {
  assert.throws(
    () => parse(raw),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      const line = err.message.split('\n').find((l) => l.trim().startsWith(`${field}:`));
      assert.ok(line, `no line naming ${field} in:\n${err.message}`);
      assert.match(line, words);
      return true;
    },
  );
}

describe('groups', () => {
  const groups = {
    'hz-prod': {
      username: 'ops',
      port: 2222,
      privateKeyPath: '~/.ssh/ops_ed25519',
      agentHome: '/opt/agent',
      labels: { region: 'hz', env: 'prod' },
    },
  };

  test('a host takes its group’s settings over ssh: and the defaults', () => {
    const c = parse({ ssh: { privateKeyPath: 'keys/default' }, groups, hosts: [host({ group: 'hz-prod' })] });
    const h = c.hosts[0];
    assert.deepEqual(
      {
        username: h?.username,
        port: h?.port,
        key: h?.privateKeyPath,
        agentHome: h?.agentHome,
        stateDir: h?.stateDir,
        group: h?.group,
      },
      {
        username: 'ops',
        port: 2222,
        key: join(homedir(), '.ssh/ops_ed25519'),
        agentHome: '/opt/agent',
        stateDir: '/opt/agent/.ocp-chatops',
        group: 'hz-prod',
      },
    );
  });

  test('a host’s own setting wins over its group’s; labels merge key by key, the host’s winning', () => {
    const c = parse({
      groups,
      hosts: [
        host({ group: 'hz-prod', username: 'root', privateKeyPath: 'keys/h1', labels: { env: 'staging', zone: 1 } }),
      ],
    });
    const h = c.hosts[0];
    assert.equal(h?.username, 'root');
    assert.equal(h?.port, 2222);
    assert.equal(h?.privateKeyPath, '/etc/ocp/keys/h1');
    assert.deepEqual(h?.labels, { region: 'hz', env: 'staging', zone: '1' });
  });

  test('a host without a group or key anywhere has none: the agent logs in', () => {
    const c = parse({ hosts: [host()] });
    assert.equal(c.hosts[0]?.privateKeyPath, undefined);
    assert.equal(c.hosts[0]?.group, undefined);
  });

  test('ssh.privateKeyPath is the key of a host and group without one', () => {
    const c = parse({ ssh: { privateKeyPath: 'keys/default' }, hosts: [host()] });
    assert.equal(c.hosts[0]?.privateKeyPath, '/etc/ocp/keys/default');
  });

  test('become comes from the host or its group, the host’s winning', () => {
    const withBecome = { ...groups, 'hz-prod': { ...groups['hz-prod'], become: { user: 'admin' } } };
    const c = parse({
      groups: withBecome,
      hosts: [host({ group: 'hz-prod' }), host({ id: 2, name: 'h2', group: 'hz-prod', become: { user: 'agent' } })],
    });
    assert.deepEqual(
      c.hosts.map((h) => h.become?.user),
      ['admin', 'agent'],
    );
    assert.equal(parse({ hosts: [host()] }).hosts[0]?.become, undefined);
  });

  test('a changed become user changes the host digest; none leaves it as it was', () => {
    const plain = parse({ hosts: [host()] }).hosts[0]!;
    const become = parse({ hosts: [host({ become: { user: 'admin' } })] }).hosts[0]!;
    assert.notEqual(hostDigest(become), hostDigest(plain));
    assert.equal(hostDigest(plain), hostDigest({ ...plain, become: undefined }));
  });

  test('a bastion comes from the host or its group, logging in as the host does unless it says otherwise', () => {
    const behind = { ...groups, 'hz-prod': { ...groups['hz-prod'], jump: { address: '127.0.0.5' } } };
    const c = parse({
      groups: behind,
      hosts: [
        host({ group: 'hz-prod' }),
        host({
          id: 2,
          name: 'h2',
          group: 'hz-prod',
          jump: { address: '127.0.0.6', port: 2200, username: 'jumper', privateKeyPath: 'keys/jump' },
        }),
        host({ id: 3, name: 'h3' }),
      ],
    });
    assert.deepEqual(
      c.hosts.map((h) => h.jump),
      [
        { address: '127.0.0.5', port: 22, username: 'ops' },
        { address: '127.0.0.6', port: 2200, username: 'jumper', privateKeyPath: '/etc/ocp/keys/jump' },
        undefined,
      ],
    );
  });

  test('a changed bastion changes the host digest; none leaves it as it was', () => {
    const plain = parse({ hosts: [host()] }).hosts[0]!;
    const behind = parse({ hosts: [host({ jump: { address: '127.0.0.5' } })] }).hosts[0]!;
    const other = parse({ hosts: [host({ jump: { address: '127.0.0.6' } })] }).hosts[0]!;
    assert.notEqual(hostDigest(behind), hostDigest(plain));
    assert.notEqual(hostDigest(behind), hostDigest(other));
    assert.equal(hostDigest(plain), hostDigest({ ...plain, jump: undefined }));
  });

  test('a bastion needs an address; a bad field is named', () => {
    throwsNaming({ hosts: [host({ jump: { port: 22 } })] }, 'hosts.0.jump.address', /./);
    throwsNaming({ hosts: [host({ jump: { address: '127.0.0.5', port: 0 } })] }, 'hosts.0.jump.port', /./);
    throwsNaming({ hosts: [host({ jump: { address: '127.0.0.5', user: 'x' } })] }, 'hosts.0.jump', /user/);
  });

  test('a become user must be a POSIX user name', () => {
    assert.throws(
      () => parse({ hosts: [host({ become: { user: 'root; id' } })] }),
      /hosts\.0\.become\.user: must be a POSIX user name/,
    );
  });

  test('a changed key or group changes the host digest (a step fails "configuration changed")', () => {
    const base = hostDigest(parse({ groups, hosts: [host({ group: 'hz-prod' })] }).hosts[0]!);
    const otherKey = parse({ groups, hosts: [host({ group: 'hz-prod', privateKeyPath: '/k/other' })] }).hosts[0]!;
    const otherGroup = parse({
      groups: { ...groups, other: groups['hz-prod'] },
      hosts: [host({ group: 'other' })],
    }).hosts[0]!;
    assert.notEqual(hostDigest(otherKey), base);
    assert.notEqual(hostDigest(otherGroup), base);
  });

  test('an unknown group is an error naming the host’s field', () => {
    throwsNaming(
      { groups, hosts: [host(), host({ id: 2, name: 'h2', group: 'hz-test' })] },
      'hosts.1.group',
      /unknown group hz-test/,
    );
  });

  test('a group may not set id, name or address', () => {
    throwsNaming({ groups: { g: { address: '127.0.0.2' } } }, 'groups.g', /address/);
  });

  test('"all" is not a host name', () => {
    throwsNaming({ hosts: [host({ name: 'all' })] }, 'hosts.0.name', /"all" is not a valid host name/);
  });
});

describe('labels', () => {
  test('a bad label key or value names its field', () => {
    throwsNaming({ hosts: [host({ labels: { zone: 'z 1' } })] }, 'hosts.0.labels.zone', /letters, digits/);
    throwsNaming({ groups: { g: { labels: { 'a/b': 'x' } } } }, 'groups.g.labels.a/b', /letters, digits/);
    throwsNaming({ hosts: [host({ labels: { env: '' } })] }, 'hosts.0.labels.env', /letters, digits/);
  });
});
