/** Acting as a Slack user against the service: signed slash commands and button clicks. */
import { randomUUID } from 'node:crypto';
import type { FakeMessage, FakeSlack } from './fake-slack.js';
import { blockActionPayload, interactionBody, postToSlackEndpoint, slashCommandBody } from './slack-sign.js';

export const SIGNING_SECRET = 'test-signing-secret-0123456789abcdef';

export function slackUser(fake: FakeSlack, eventsUrl: string) {
  return {
    /** `/ocp-agent <text>`; resolves with Slack's view of the HTTP answer and the response_url used. */
    async command(text: string, opts: { user?: string; channel?: string; triggerId?: string } = {}) {
      const responseUrl = fake.responseUrl();
      const body = slashCommandBody({
        command: '/ocp-agent',
        text,
        user_id: opts.user ?? 'U0ALICE',
        channel_id: opts.channel ?? 'C0OPS',
        trigger_id: opts.triggerId ?? `${Date.now()}.${randomUUID().slice(0, 8)}`,
        response_url: responseUrl,
      });
      const res = await postToSlackEndpoint(eventsUrl, SIGNING_SECRET, body);
      return { ...res, responseUrl };
    },
    /** Click a button found in a message. */
    async click(
      message: FakeMessage | { blocks?: unknown[] },
      actionId: string,
      opts: { user?: string; channel?: string } = {},
    ) {
      const value = buttonValue(message, actionId);
      if (value === undefined) throw new Error(`no ${actionId} button in ${JSON.stringify(message.blocks)}`);
      const responseUrl = fake.responseUrl();
      const payload = blockActionPayload({
        user_id: opts.user ?? 'U0ALICE',
        channel_id: opts.channel ?? 'C0OPS',
        action_id: actionId,
        value,
        response_url: responseUrl,
        trigger_id: `${Date.now()}.${randomUUID().slice(0, 8)}`,
        ...('ts' in message ? { message_ts: (message as FakeMessage).ts } : {}),
      });
      const res = await postToSlackEndpoint(eventsUrl, SIGNING_SECRET, interactionBody(payload));
      return { ...res, responseUrl };
    },
  };
}

/** The value of the button `actionId` in a message's blocks. */
export function buttonValue(message: { blocks?: unknown[] }, actionId: string): string | undefined {
  for (const block of (message.blocks ?? []) as Array<{
    type: string;
    elements?: Array<{ action_id?: string; value?: string }>;
  }>) {
    if (block.type !== 'actions') continue;
    const button = block.elements?.find((e) => e.action_id === actionId);
    if (button) return button.value;
  }
  return undefined;
}

/** The task id a parent message names ("Task *123*"). */
export function taskIdOf(message: FakeMessage): number {
  const m = /Task \*(\d+)\*/.exec(JSON.stringify(message.blocks));
  if (!m) throw new Error(`no task id in ${JSON.stringify(message.blocks)}`);
  return Number(m[1]);
}

export function textOf(message: { text?: string; blocks?: unknown[] }): string {
  return `${message.text ?? ''} ${JSON.stringify(message.blocks ?? [])}`;
}
