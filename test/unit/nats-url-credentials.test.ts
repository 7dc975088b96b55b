/**
 * `withoutCredentials` (src/nats/connect.ts): NATS_URL as it is logged. A URL may carry
 * `user:password@` or a token, on each of its comma-separated servers; whatever characters the
 * password holds — `/` and `@` raw or percent-encoded — none of it may reach the log, and the
 * servers (scheme, host, port) stay readable.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { withoutCredentials } from '../../src/nats/connect.js';

const cases: Array<[url: string, logged: string]> = [
  ['nats://127.0.0.1:4222', 'nats://127.0.0.1:4222'],
  ['nats://ops:s3cret@127.0.0.1:4222', 'nats://127.0.0.1:4222'],
  ['nats://a-token@127.0.0.1:4222', 'nats://127.0.0.1:4222'],
  // percent-encoded `/` and `@`
  ['nats://ops:pa%2Fss%40word@nats1.example:4222', 'nats://nats1.example:4222'],
  // raw `/`: a URL parser ends the authority there, so the password's tail looks like a path
  ['nats://ops:pa/ss@nats1.example:4222', 'nats://nats1.example:4222'],
  ['nats://ops:/leading-slash@nats1.example:4222', 'nats://nats1.example:4222'],
  // raw `@`: the host follows the last `@`
  ['nats://ops:pa@ss@nats1.example:4222', 'nats://nats1.example:4222'],
  ['nats://ops:p@a/s@s//@nats1.example:4222', 'nats://nats1.example:4222'],
  ['tls://ops:pa/ss@nats1.example:4222', 'tls://nats1.example:4222'],
  // without a scheme, as nats.js also takes servers
  ['ops:pa/ss@127.0.0.1:4222', '127.0.0.1:4222'],
  // credentials that look like a scheme are credentials
  ['ops:a://b@127.0.0.1:4222', '127.0.0.1:4222'],
  ['nats://ops:nats://b@127.0.0.1:4222', 'nats://127.0.0.1:4222'],
  // several servers, each with its own credentials, in every form
  [
    'nats://a:p/1@n1:4222,nats://b:p@2@n2:4223,nats://c:p%2F3@n3:4224,nats://n4:4225',
    'nats://n1:4222,nats://n2:4223,nats://n3:4224,nats://n4:4225',
  ],
  ['nats://a:x/y@[::1]:4222,tls://b:@@@[fe80::1]:4222', 'nats://[::1]:4222,tls://[fe80::1]:4222'],
];

describe('withoutCredentials', () => {
  for (const [url, logged] of cases) {
    test(url, () => {
      assert.equal(withoutCredentials(url), logged);
    });
  }

  test('no password, raw or percent-encoded, survives in any server of a list', () => {
    // a password is anything but `,` (the server separator): `/`, `@`, `:`, `%`, spaces, non-ASCII
    const password = fc
      .string({ unit: fc.constantFrom('/', '@', ':', '%', '?', '#', ' ', 'a', 'Z', '9', 'é', '-'), minLength: 4 })
      .filter((p) => p.length >= 4);
    const server = fc.record({
      scheme: fc.constantFrom('nats://', 'tls://', ''),
      user: fc.constantFrom('', 'ops', 'svc_1'),
      password,
      encoded: fc.boolean(),
      host: fc.constantFrom('127.0.0.1', 'nats-1.example', '[::1]'),
      port: fc.integer({ min: 1, max: 65535 }),
    });
    fc.assert(
      fc.property(fc.array(server, { minLength: 1, maxLength: 4 }), (servers) => {
        const secret = (s: (typeof servers)[number]) => (s.encoded ? encodeURIComponent(s.password) : s.password);
        const url = servers
          .map((s) => `${s.scheme}${s.user ? `${s.user}:` : ''}${secret(s)}@${s.host}:${s.port}`)
          .join(',');
        const logged = withoutCredentials(url);
        assert.equal(logged, servers.map((s) => `${s.scheme}${s.host}:${s.port}`).join(','));
      }),
      { numRuns: 500 },
    );
  });
});
