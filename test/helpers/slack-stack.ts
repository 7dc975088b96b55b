/**
 * A stack with Slack on against a fake Web API, for the Slack fuzz tests: three
 * users — one without a role, a viewer, and a manager who holds every role —
 * roles granted through user groups as SPEC §4 describes.
 */
import { type FakeSlack, startFakeSlack } from './fake-slack.js';
import { SIGNING_SECRET } from './slack-user.js';
import { type Stack, type StackOptions, startStack } from './stack.js';

export const SLACK_CHANNEL = 'C0OPS';
export const SLACK_USERS = { nobody: 'U0NOBODY', viewer: 'U0VIEWER', manager: 'U0ALICE' } as const;

export interface SlackStack {
  fake: FakeSlack;
  stack: Stack;
  /** The service's HTTP port. */
  port: number;
  eventsUrl: string;
}

/**
 * A fake Slack Web API with SLACK_CHANNEL and two user groups, and a stack whose
 * Slack roles are granted through them (SPEC §4): managers hold every role,
 * viewers HOST_VIEWER and TASK_VIEWER. No service is started.
 */
export async function startFakeSlackAndStack(opts: {
  hosts: number;
  managers: readonly string[];
  viewers: readonly string[];
  /** Further stack options (timeouts, batch.maxParallel…). */
  options?: Omit<StackOptions, 'hosts' | 'slack'>;
  /** slack.defaultChannel: tasks from HTTP and NATS post there too. */
  defaultChannel?: string;
  /** Socket Mode with this app-level token (SLACK_APP_TOKEN) instead of the signing secret. */
  appToken?: string;
}): Promise<{ fake: FakeSlack; stack: Stack }> {
  const fake = await startFakeSlack();
  fake.addChannel(SLACK_CHANNEL);
  fake.setUsergroup('S0MANAGERS', [...opts.managers]);
  fake.setUsergroup('S0VIEWERS', [...new Set([...opts.viewers, ...opts.managers])]);
  try {
    const stack = await startStack({
      ...opts.options,
      hosts: opts.hosts,
      slack: {
        apiUrl: fake.apiUrl,
        botToken: fake.token,
        ...(opts.appToken ? { appToken: opts.appToken } : { signingSecret: SIGNING_SECRET }),
        ...(opts.defaultChannel ? { defaultChannel: opts.defaultChannel } : {}),
        access: {
          HOST_MANAGER: { usergroups: ['S0MANAGERS'] },
          TASK_MANAGER: { usergroups: ['S0MANAGERS'] },
          HOST_VIEWER: { usergroups: ['S0VIEWERS'] },
          TASK_VIEWER: { usergroups: ['S0VIEWERS'] },
        },
      },
    });
    return { fake, stack };
  } catch (err) {
    await fake.stop();
    throw err;
  }
}

export async function startSlackStack(opts: { hosts: number }): Promise<SlackStack> {
  const { fake, stack } = await startFakeSlackAndStack({
    hosts: opts.hosts,
    managers: [SLACK_USERS.manager],
    viewers: [SLACK_USERS.viewer],
  });
  const svc = await stack.startService();
  const port = svc.httpPort as number;
  return { fake, stack, port, eventsUrl: `http://127.0.0.1:${port}/slack/events` };
}
