/** The web page's sessions (src/web/sessions.ts): expiry, the CSRF token check, the cookie read. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cookieValue, createSessions, csrfMatches } from '../../src/web/sessions.js';

const alice = { username: 'alice', roles: ['TASK_VIEWER'] };

describe('web sessions', () => {
  test('a session lives until its time, then is gone', () => {
    let now = 1_000;
    const sessions = createSessions({ ttlMs: 60_000, now: () => now });
    const s = sessions.create(alice);
    assert.equal(sessions.get(s.id)?.principal.username, 'alice');
    now += 59_999;
    assert.ok(sessions.get(s.id));
    now += 1;
    assert.equal(sessions.get(s.id), undefined);
    assert.equal(sessions.size, 0);
  });

  test('ids and tokens are random and distinct; an unknown or missing id finds nothing; signing out ends it', () => {
    const sessions = createSessions({ ttlMs: 60_000 });
    const a = sessions.create(alice);
    const b = sessions.create(alice);
    assert.notEqual(a.id, b.id);
    assert.notEqual(a.csrfToken, b.csrfToken);
    assert.match(a.id, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(sessions.get(undefined), undefined);
    assert.equal(sessions.get('nope'), undefined);
    sessions.delete(a.id);
    assert.equal(sessions.get(a.id), undefined);
    assert.ok(sessions.get(b.id));
  });

  test('the CSRF token must be the session’s own', () => {
    const sessions = createSessions({ ttlMs: 60_000 });
    const a = sessions.create(alice);
    const b = sessions.create(alice);
    assert.equal(csrfMatches(a, a.csrfToken), true);
    for (const given of [undefined, '', b.csrfToken, `${a.csrfToken}x`, a.csrfToken.slice(1)]) {
      assert.equal(csrfMatches(a, given), false, String(given));
    }
  });

  test('the session cookie is read among others', () => {
    assert.equal(cookieValue('a=1; ocp_session=abc; b=2', 'ocp_session'), 'abc');
    assert.equal(cookieValue('ocp_session_old=zzz', 'ocp_session'), undefined);
    assert.equal(cookieValue(undefined, 'ocp_session'), undefined);
  });
});
