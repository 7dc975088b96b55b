/**
 * Origins as stored: this version writes a neutral one; records and request
 * entries of older versions hold the Slack door's own shape, read as a Slack
 * origin; anything else is dropped rather than trusted.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { originFromSlack, withCurrentOrigin } from '../../src/contracts/origin.js';

describe('withCurrentOrigin', () => {
  const neutral = { door: 'slack' as const, user: 'U0ALICE', channel: 'C0OPS', replyTo: 'https://hooks.slack.com/x' };
  const cases: Array<[string, object, object]> = [
    ['no origin: as it is', { taskId: 1 }, { taskId: 1 }],
    ['a neutral origin: as it is', { taskId: 1, origin: neutral }, { taskId: 1, origin: neutral }],
    [
      'the older Slack shape: read as a Slack origin',
      {
        taskId: 1,
        origin: {
          kind: 'slack',
          teamId: 'T0TEAM',
          channelId: 'C0OPS',
          userId: 'U0ALICE',
          responseUrl: 'https://hooks.slack.com/x',
          triggerId: '1.2',
        },
      },
      { taskId: 1, origin: { ...neutral, team: 'T0TEAM', ref: '1.2' } },
    ],
    [
      'the older shape without a channel: dropped',
      { taskId: 1, origin: { kind: 'slack', userId: 'U0A' } },
      { taskId: 1 },
    ],
    ['neither shape: dropped', { taskId: 1, origin: { who: 'someone' } }, { taskId: 1 }],
    ['not an object: dropped', { taskId: 1, origin: 'C0OPS' }, { taskId: 1 }],
  ];
  for (const [name, stored, read] of cases) {
    test(name, () => assert.deepEqual(withCurrentOrigin(stored), read));
  }
});

test('originFromSlack leaves out what the Slack door did not say', () => {
  assert.deepEqual(originFromSlack({ kind: 'slack', channelId: 'C0OPS', userId: 'U0ALICE' }), {
    door: 'slack',
    user: 'U0ALICE',
    channel: 'C0OPS',
  });
});
