/**
 * The logger censors secrets wherever they ride along in a log object (SPEC §7): the shapes
 * this code base has at hand — a configuration, the environment, request headers, NATS
 * connection options, Slack app settings, an error carrying any of these — logged whole by
 * mistake, must not print a token, password, hash or key. (The service as a whole is checked
 * in test/integration/secrets.test.ts.)
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { createLogger } from '../../src/logger.js';

const SECRET = 'SENTINEL-redact-0123456789';

function logged(obj: Record<string, unknown>): string {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  createLogger('trace', sink).info(obj, 'something happened');
  return lines.join('');
}

const env = {
  NATS_PASSWORD: SECRET,
  SLACK_BOT_TOKEN: SECRET,
  SLACK_SIGNING_SECRET: SECRET,
  SLACK_APP_TOKEN: SECRET,
  SSH_KEY_PASSPHRASE: SECRET,
  LOG_LEVEL: 'info',
};
const config = {
  access: { users: [{ username: 'alice', passwordHash: `scrypt:c2FsdA==:${SECRET}`, roles: ['ADMIN'] }] },
  env,
  ssh: { privateKeyPath: '/home/x/.ssh/id_ed25519' },
};

const SHAPES: Array<[string, Record<string, unknown>]> = [
  ['a password', { password: SECRET }],
  ['a nested password', { user: { password: SECRET } }],
  ['a NATS pass (connection options)', { opts: { user: 'ocp', pass: SECRET } }],
  ['NATS connection options at the top', { user: 'ocp', pass: SECRET }],
  ['a token', { token: SECRET }],
  ['Slack app settings', { slack: { botToken: SECRET, signingSecret: SECRET, appToken: SECRET } }],
  ['Slack app settings at the top', { botToken: SECRET, signingSecret: SECRET, appToken: SECRET }],
  ['request headers', { headers: { authorization: `Basic ${SECRET}` } }],
  ['a request with headers', { req: { headers: { authorization: `Basic ${SECRET}` } } }],
  ['an Authorization header alone', { authorization: `Bearer ${SECRET}` }],
  ['the environment', { env }],
  ['the environment, spread', { ...env }],
  ['the whole configuration', { config }],
  ['a user record', { user: config.access.users[0] }],
  ['the users', { users: config.access.users }],
  ['a private key', { privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${SECRET}` }],
  ['SSH connect options', { connect: { host: 'h', privateKey: SECRET, passphrase: SECRET } }],
];

describe('log objects: secrets censored', () => {
  for (const [name, obj] of SHAPES) {
    test(name, () => {
      const line = logged(obj);
      assert.ok(line.length > 0, 'a line was written');
      assert.ok(!line.includes(SECRET), `leaked: ${line}`);
      assert.match(line, /something happened/);
    });
  }

  test('what is not secret stays readable', () => {
    const line = logged({ config, hostId: 101, user: { username: 'alice' } });
    assert.match(line, /"hostId":101/);
    assert.match(line, /alice/);
    assert.match(line, /LOG_LEVEL/);
  });
});
