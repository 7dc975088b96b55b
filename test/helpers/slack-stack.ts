/**
 * A stack with Slack on against a fake Web API, for the Slack fuzz tests: three
 * users — one without a role, a viewer, and a manager who holds every role —
 * roles granted through user groups as SPEC §4 describes.
 */
import { type FakeSlack, startFakeSlack } from './fake-slack.js';
import { SIGNING_SECRET } from './slack-user.js';
import { type Stack, startStack } from './stack.js';

export const SLACK_CHANNEL = 'C0OPS';
export const SLACK_USERS = { nobody: 'U0NOBODY', viewer: 'U0VIEWER', manager: 'U0ALICE' } as const;

export interface SlackStack {
  fake: FakeSlack;
  stack: Stack;
  /** The service's HTTP port. */
  port: number;
  eventsUrl: string;
}

export async function startSlackStack(opts: { hosts: number }): Promise<SlackStack> {
  const fake = await startFakeSlack();
  fake.addChannel(SLACK_CHANNEL);
  fake.setUsergroup('S0MANAGERS', [SLACK_USERS.manager]);
  fake.setUsergroup('S0VIEWERS', [SLACK_USERS.viewer, SLACK_USERS.manager]);
  const stack = await startStack({
    hosts: opts.hosts,
    slack: {
      apiUrl: fake.apiUrl,
      botToken: fake.token,
      signingSecret: SIGNING_SECRET,
      access: {
        HOST_MANAGER: { usergroups: ['S0MANAGERS'] },
        HOST_VIEWER: { usergroups: ['S0VIEWERS'] },
        TASK_VIEWER: { usergroups: ['S0VIEWERS'] },
        TASK_MANAGER: { users: [SLACK_USERS.manager] },
      },
    },
  });
  const svc = await stack.startService();
  const port = svc.httpPort as number;
  return { fake, stack, port, eventsUrl: `http://127.0.0.1:${port}/slack/events` };
}
