/** Acting as a Slack user against the service: signed slash commands and button clicks, or the same over Socket Mode. */
import { randomUUID } from 'node:crypto';
import type { FakeMessage, FakeSlack } from './fake-slack.js';
import type { FakeSlackSocket, SocketAck } from './fake-slack-socket.js';
import { blockActionPayload, interactionBody, postToSlackEndpoint, slashCommandBody } from './slack-sign.js';

export const SIGNING_SECRET = 'test-signing-secret-0123456789abcdef';

type CommandOptions = { user?: string; channel?: string; triggerId?: string };
type ClickOptions = { user?: string; channel?: string };

/** A slash command's form body as Slack sends it, with a fresh response_url. */
function commandOf(fake: FakeSlack, text: string, opts: CommandOptions) {
  const responseUrl = fake.responseUrl();
  const body = slashCommandBody({
    command: '/ocp-agent',
    text,
    user_id: opts.user ?? 'U0ALICE',
    channel_id: opts.channel ?? 'C0OPS',
    trigger_id: opts.triggerId ?? `${Date.now()}.${randomUUID().slice(0, 8)}`,
    response_url: responseUrl,
  });
  return { body, responseUrl };
}

/** A click on the button `actionId` of a message, as Slack's block_actions payload, with a fresh response_url. */
function clickOf(fake: FakeSlack, message: FakeMessage | { blocks?: unknown[] }, actionId: string, opts: ClickOptions) {
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
  return { payload, responseUrl };
}

export function slackUser(fake: FakeSlack, eventsUrl: string) {
  return {
    /** `/ocp-agent <text>`; resolves with Slack's view of the HTTP answer and the response_url used. */
    async command(text: string, opts: CommandOptions = {}) {
      const { body, responseUrl } = commandOf(fake, text, opts);
      const res = await postToSlackEndpoint(eventsUrl, SIGNING_SECRET, body);
      return { ...res, responseUrl };
    },
    /** Click a button found in a message. */
    async click(message: FakeMessage | { blocks?: unknown[] }, actionId: string, opts: ClickOptions = {}) {
      const { payload, responseUrl } = clickOf(fake, message, actionId, opts);
      const res = await postToSlackEndpoint(eventsUrl, SIGNING_SECRET, interactionBody(payload));
      return { ...res, responseUrl };
    },
  };
}

/**
 * The same user with the app in Socket Mode: a command or a click arrives as an envelope on
 * the app's WebSocket; each resolves with the app's acknowledgement (what an HTTP answer's
 * body would be is its payload) and the response_url the app was given.
 */
export function socketUser(fake: FakeSlack, socket: FakeSlackSocket) {
  return {
    async command(text: string, opts: CommandOptions = {}): Promise<{ ack: SocketAck; responseUrl: string }> {
      const { body, responseUrl } = commandOf(fake, text, opts);
      // A slash command's fields are the same as over HTTP, as JSON strings instead of a form.
      const ack = await socket.send('slash_commands', Object.fromEntries(new URLSearchParams(body)));
      return { ack, responseUrl };
    },
    async click(
      message: FakeMessage | { blocks?: unknown[] },
      actionId: string,
      opts: ClickOptions = {},
    ): Promise<{ ack: SocketAck; responseUrl: string }> {
      const { payload, responseUrl } = clickOf(fake, message, actionId, opts);
      const ack = await socket.send('interactive', payload);
      return { ack, responseUrl };
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
