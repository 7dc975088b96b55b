/**
 * The embedded nats-server that `npm start` runs when no NATS is configured
 * (SPEC §5) has credentials of its own: a connection without them is refused,
 * the service's processes get them from ./.data (owner-only files), and they
 * appear in no log line. Started here on a free loopback port, in a scratch
 * data folder, as main.ts starts it on 127.0.0.1:4222 in ./.data.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { connect } from 'nats';
import pino from 'pino';
import { type EmbeddedNats, readEmbeddedCredentials, startEmbeddedNats } from '../../src/nats/embedded-server.js';
import { ensureTopology } from '../../src/nats/streams.js';
import { findExecutable, freePort, killOnExit, waitForExit } from '../helpers/nats-server.js';

describe('embedded nats-server', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'ocp-embedded-'));
  const lines: string[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    }),
  );
  let port: number;
  let server: EmbeddedNats;
  let unregister: () => void;

  const start = async () => {
    server = await startEmbeddedNats({ binary: findExecutable('nats-server'), dataDir, logger, port });
    unregister = killOnExit(() => server.child.kill('SIGKILL'));
  };
  const stop = async () => {
    server.child.kill('SIGTERM');
    await waitForExit(server.child);
    unregister();
  };

  before(async () => {
    port = await freePort();
    await start();
  });
  after(async () => {
    if (server) await stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('refuses a connection without its credentials, or with a wrong password', async () => {
    const servers = `127.0.0.1:${port}`;
    await assert.rejects(connect({ servers, reconnect: false }), /authorization violation/i);
    await assert.rejects(
      connect({ servers, reconnect: false, user: server.credentials.user, pass: 'guess' }),
      /authorization violation/i,
    );
  });

  it("serves the service's processes with the credentials kept in the data folder", async () => {
    const kept = readEmbeddedCredentials(dataDir);
    assert.deepEqual(kept, server.credentials);
    assert.ok((kept?.password.length ?? 0) >= 40, 'a long random password');
    const nc = await connect({ servers: server.url, reconnect: false, user: kept?.user, pass: kept?.password });
    try {
      const buckets = await ensureTopology(nc, {
        replicas: 1,
        leaseSeconds: 4,
        retention: { tasksMs: 86_400_000, eventsMs: 86_400_000 },
      });
      await buckets.tasks.put('task.1', new TextEncoder().encode('{}'));
    } finally {
      await nc.close();
    }
  });

  it('keeps the credentials and the server config readable by their owner only', () => {
    for (const file of ['nats-credentials.json', 'nats-server.conf']) {
      assert.equal(statSync(join(dataDir, file)).mode & 0o777, 0o600, file);
    }
    assert.equal(statSync(dataDir).mode & 0o077, 0, 'the data folder is the owner’s');
  });

  it('logs that it started, never the password', () => {
    const all = lines.join('');
    assert.match(all, /started an embedded nats-server/);
    assert.ok(!all.includes(server.credentials.password), 'the password is in no log line');
  });

  it('keeps the same credentials and store across restarts', async () => {
    const before = server.credentials;
    await stop();
    await start();
    assert.deepEqual(server.credentials, before);
    assert.match(readFileSync(join(dataDir, 'nats-server.conf'), 'utf8'), /authorization/);
    const nc = await connect({ servers: server.url, reconnect: false, user: before.user, pass: before.password });
    try {
      const kv = await nc.jetstream().views.kv('ocp_tasks', { bindOnly: true });
      assert.ok(await kv.get('task.1'), 'what was stored before the restart is there');
    } finally {
      await nc.close();
    }
  });
});
