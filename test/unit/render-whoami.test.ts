import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderWhoami } from '../../src/slack/render-whoami.js';

const grants = {
  ADMIN: { usergroups: ['S0ADMINS'], users: [] },
  TASK_VIEWER: { usergroups: ['S0VIEWERS'], users: ['U1'] },
};

test('roles from ADMIN name the group that gives ADMIN', () => {
  const text = renderWhoami({
    userId: 'U1',
    groups: { ok: true, groups: [{ id: 'S0ADMINS', handle: 'admins', name: 'Admins' }] },
    roles: new Set(['HOST_MANAGER', 'HOST_VIEWER', 'TASK_MANAGER', 'TASK_VIEWER']),
    grants,
  });
  assert.match(text, /• HOST_MANAGER — from ADMIN \(group `S0ADMINS`\)/);
  assert.match(text, /• TASK_VIEWER — from your user id, ADMIN \(group `S0ADMINS`\)/);
  assert.match(text, /usergroups: \[S0ADMINS\], users: \[U1\]/);
});

test('groups Slack would not list: says why and which scope', () => {
  const text = renderWhoami({ userId: 'U2', groups: { ok: false, error: 'missing_scope' }, roles: new Set(), grants });
  assert.match(text, /Slack would not list them \(missing_scope\); the app needs the `usergroups:read` scope/);
  assert.match(text, /Your roles:\* none/);
});

test('a handle with mrkdwn characters is escaped', () => {
  const text = renderWhoami({
    userId: 'U3',
    groups: { ok: true, groups: [{ id: 'S0X', handle: 'a<b>', name: 'a<b>' }] },
    roles: new Set(),
    grants,
  });
  assert.match(text, /`S0X` @a&lt;b&gt;$/m);
});
