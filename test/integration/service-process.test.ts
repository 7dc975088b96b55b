/**
 * The service as a process: configuration errors stop it naming the field,
 * /healthz and /readyz tell the truth about NATS, SIGTERM drains and exits 0.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitForExit } from '../helpers/nats-server.js';
import { type Stack, startStack, waitFor } from '../helpers/stack.js';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;

function runMain(env: NodeJS.ProcessEnv) {
  return spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), MAIN], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    encoding: 'utf8',
    timeout: 20_000,
  });
}

describe('start-up configuration errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ocp-badcfg-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const cases: Array<[string, string, NodeJS.ProcessEnv, RegExp]> = [
    ['a port out of range', 'hosts: [{id: 1, name: a, address: 127.0.0.1, port: 70000}]', {}, /hosts\.0\.port/],
    [
      'a shell character in agentHome',
      'hosts: [{id: 1, name: a, address: 127.0.0.1, agentHome: "/x;rm"}]',
      {},
      /hosts\.0\.agentHome/,
    ],
    ['an unknown section', 'hostz: []', {}, /hostz/],
    ['a bad NATS_URL', 'hosts: []', { NATS_URL: 'http://127.0.0.1:4222' }, /NATS_URL/],
    ['a bad ROLES', 'hosts: []', { ROLES: 'api,bogus' }, /ROLES/],
  ];
  for (const [what, yaml, env, field] of cases) {
    it(`stops on ${what}, naming the field`, () => {
      const file = join(dir, `${what.replaceAll(' ', '-')}.yml`);
      writeFileSync(file, `${yaml}\n`);
      const r = runMain({ CONFIG_FILE: file, ...env });
      assert.equal(r.status, 78, r.stderr);
      assert.match(r.stderr, field);
      assert.match(r.stderr, /invalid configuration/);
    });
  }

  it('stops when CONFIG_FILE does not exist, naming it', () => {
    const r = runMain({ CONFIG_FILE: join(dir, 'missing.yml') });
    assert.equal(r.status, 78);
    assert.match(r.stderr, /CONFIG_FILE: .*missing\.yml does not exist/);
  });
});

describe('health, readiness and drain', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ hosts: 1 });
  });
  after(async () => stack?.stop());

  it('reports ready while NATS is up and not ready while it is down', async () => {
    const svc = await stack.startService('api,executor');
    const url = (p: string) => `http://127.0.0.1:${svc.httpPort}${p}`;
    assert.deepEqual(await (await fetch(url('/healthz'))).json(), { status: 'ok' });
    assert.equal((await fetch(url('/readyz'))).status, 200);

    await stack.nats.kill();
    const down = await waitFor('readyz to say not ready', async () => {
      const r = await fetch(url('/readyz'));
      return r.status === 503 ? ((await r.json()) as { reasons: string[] }) : undefined;
    });
    assert.deepEqual(down.reasons, ['NATS disconnected']);
    assert.equal((await fetch(url('/healthz'))).status, 200, 'the process itself is alive');

    await stack.nats.restart();
    await waitFor('readyz to be ready again', async () => (await fetch(url('/readyz'))).status === 200 || undefined);
    assert.equal((await fetch(url('/nothing'))).status, 401, 'the API asks for credentials first');
  });

  it('waits for a NATS that is not up at start, saying so without its credentials, and serves once it is', async () => {
    await stack.nats.kill();
    const withCredentials = stack.nats.url.replace('nats://', 'nats://sentinel-user:sentinel-pass-5150@');
    const child = stack.spawnService('api', { env: { NATS_URL: withCredentials } });
    try {
      await waitFor('the waiting notice', () => child.output().includes('NATS not reachable yet; waiting for it'));
      assert.equal(child.child.exitCode, null, `still running: ${child.output()}`);
    } finally {
      await stack.nats.restart();
    }
    await waitFor('service ready', () => child.output().includes('"msg":"ready"'), 30_000);
    assert.doesNotMatch(child.output(), /sentinel-pass-5150/);
    await child.kill('SIGTERM');
  });

  it('drains on SIGTERM and exits 0', async () => {
    const child = stack.spawnService('api,executor');
    await waitFor('service ready', () => child.output().includes('"msg":"ready"'));
    child.child.kill('SIGTERM');
    await waitForExit(child.child);
    assert.equal(child.child.exitCode, 0, child.output());
    assert.match(child.output(), /"msg":"draining"/);
    assert.match(child.output(), /"msg":"stopped"/);
  });
});
