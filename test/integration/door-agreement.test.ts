/**
 * The HTTP API and the NATS API (SPEC §3, §5) answer the same failure with the
 * same envelope: the same `error.code`, `error.message` and `status`. Real
 * stack: nats-server and sshd hosts; the failures are real ones — a store
 * that refuses writes, a host key not in known_hosts, a host where no sshd
 * listens. (With NATS down the NATS API cannot answer at all: http-api.test.ts
 * covers that door alone.)
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { DiscardPolicy } from 'nats';
import { parse, stringify } from 'yaml';
import { apiClient } from '../helpers/http.js';
import { freePort } from '../helpers/nats-server.js';
import { type Stack, startStack } from '../helpers/stack.js';

interface Envelope {
  successful: boolean;
  status: number;
  error?: { code: number; message: string; target?: string };
}

/** How long known_hosts may be cached by the SSH runner before it is read again (ms). */
const KNOWN_HOSTS_REREAD_MS = 5500;

describe('the HTTP and NATS doors agree on failures', () => {
  let stack: Stack;
  let api: ReturnType<typeof apiClient>;
  /** A host in the inventory where no sshd listens. */
  const away = { id: 199, name: 'host-away', address: '127.0.0.99', port: 0 };
  before(async () => {
    stack = await startStack({ hosts: 2 });
    away.port = await freePort([away.address]);
    const config = parse(readFileSync(stack.configPath, 'utf8'));
    config.hosts.push({ ...config.hosts[0], ...away });
    writeFileSync(stack.configPath, stringify(config));
    api = apiClient((await stack.startService()).httpPort as number);
  });
  after(async () => stack?.stop());
  const host = (i: number) => stack.sshd.hosts[i]!;

  /** The answer over HTTP and over `ocp.api.<operation>`, as their status, code and message. */
  async function bothDoors(
    method: 'GET' | 'POST',
    path: string,
    operation: string,
    payload: Record<string, unknown>,
  ): Promise<{ http: Envelope; nats: Envelope; httpStatus: number }> {
    const viaHttp = await api(method, path);
    const reply = await stack.nc.request(`ocp.api.${operation}`, JSON.stringify(payload), { timeout: 30_000 });
    return { http: viaHttp.body as Envelope, nats: reply.json<Envelope>(), httpStatus: viaHttp.status };
  }

  function assertAgree(a: { http: Envelope; nats: Envelope; httpStatus: number }): void {
    assert.equal(a.http.successful, false);
    assert.equal(a.http.status, a.httpStatus, 'the envelope carries the HTTP status');
    assert.deepEqual(
      { status: a.nats.status, error: a.nats.error },
      { status: a.http.status, error: a.http.error },
      'the NATS API answers as HTTP does',
    );
  }

  it('a store that refuses writes (full): 503 / 10000 at both doors', async () => {
    const jsm = await stack.nc.jetstreamManager();
    // Made full: no new task fits.
    const { config } = await jsm.streams.info('KV_ocp_tasks');
    await jsm.streams.update('KV_ocp_tasks', { ...config, max_bytes: 1, discard: DiscardPolicy.New });
    try {
      const a = await bothDoors('POST', `/compute/hosts/${host(0).id}/agent/restart`, 'agent.restart', {
        hostId: host(0).id,
        creator: 'bot',
      });
      assertAgree(a);
      assert.equal(a.http.status, 503, JSON.stringify(a.http));
      assert.equal(a.http.error?.code, 10000);
      assert.match(a.http.error?.message ?? '', /^NATS unreachable: /);
    } finally {
      await jsm.streams.update('KV_ocp_tasks', config);
    }
  });

  it("a host key not in known_hosts: the agent's status fails alike at both doors, naming the key", async () => {
    const knownHosts = stack.config.ssh.knownHostsPath;
    const lines = readFileSync(knownHosts, 'utf8');
    writeFileSync(knownHosts, '');
    await new Promise((r) => setTimeout(r, KNOWN_HOSTS_REREAD_MS));
    try {
      const a = await bothDoors('GET', `/compute/hosts/${host(1).id}/agent`, 'agent.status', { hostId: host(1).id });
      assertAgree(a);
      assert.equal(a.http.status, 500);
      assert.equal(a.http.error?.code, 10000);
      assert.match(a.http.error?.message ?? '', /not in known_hosts/);
    } finally {
      writeFileSync(knownHosts, lines);
    }
  });

  it("a host out of reach: the agent's status fails alike at both doors, naming the host", async () => {
    const a = await bothDoors('GET', `/compute/hosts/${away.id}/agent`, 'agent.status', { hostId: away.id });
    assertAgree(a);
    assert.equal(a.http.status, 500);
    assert.equal(a.http.error?.code, 10000);
    assert.match(a.http.error?.message ?? '', new RegExp(`cannot connect to .*@127\\.0\\.0\\.99:${away.port}`));
  });
});
