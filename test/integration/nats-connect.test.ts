/**
 * The service's NATS connection against a real nats-server: answers come back to
 * their callers, a request nobody answers fails with TIMEOUT, and requests in
 * flight when the connection closes fail at once. connectNats shares the
 * "Cancelled" error nats.js builds after every settled request; these are the
 * outcomes a caller does see, and they must stay as they were.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ErrorCode, type NatsConnection, NatsError } from 'nats';
import pino from 'pino';
import { connectNats } from '../../src/nats/connect.js';
import { type NatsServerHandle, startNatsServer } from '../helpers/nats-server.js';

const quiet = pino({ level: 'silent' });

describe('NATS connection', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  before(async () => {
    server = await startNatsServer();
    nc = await connectNats({ url: server.url, name: 'connect-test' }, quiet);
    nc.subscribe('echo', { callback: (_err, m) => m.respond(m.data) });
    nc.subscribe('silent', { callback: () => undefined });
  });
  after(async () => {
    if (!nc.isClosed()) await nc.close();
    await server?.stop();
  });

  it('answers a thousand requests in flight at once, each with its own payload', async () => {
    const answers = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => nc.request('echo', new TextEncoder().encode(`n${i}`), { timeout: 5000 })),
    );
    assert.deepEqual(
      answers.map((m) => m.string()),
      Array.from({ length: 1000 }, (_, i) => `n${i}`),
    );
  });

  it('fails a request nobody answers with TIMEOUT, and goes on serving', async () => {
    await assert.rejects(nc.request('silent', undefined, { timeout: 200 }), (err: unknown) => {
      assert.ok(err instanceof NatsError);
      assert.equal(err.code, ErrorCode.Timeout);
      return true;
    });
    assert.equal((await nc.request('echo', new TextEncoder().encode('still'), { timeout: 5000 })).string(), 'still');
  });

  it('fails the requests in flight when the connection closes, instead of leaving them waiting', async () => {
    const other = await connectNats({ url: server.url, name: 'connect-test-2' }, quiet);
    const pending = [1, 2].map(() => other.request('silent', undefined, { timeout: 60_000 }));
    const settled = Promise.allSettled(pending);
    await other.close();
    const outcome = await Promise.race([settled, new Promise((r) => setTimeout(() => r('still waiting'), 5000))]);
    assert.notEqual(outcome, 'still waiting');
    for (const r of outcome as PromiseSettledResult<unknown>[]) {
      assert.equal(r.status, 'rejected');
      assert.ok((r as PromiseRejectedResult).reason instanceof NatsError);
    }
  });
});
