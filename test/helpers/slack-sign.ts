/**
 * Requests to the app's Slack endpoints, built and signed the way Slack builds
 * and signs them: slash-command and interaction bodies as
 * application/x-www-form-urlencoded, signed with v0 request signing
 * (HMAC-SHA256 over `v0:<timestamp>:<raw body>` with the signing secret, hex,
 * sent as `X-Slack-Signature: v0=<hex>` with `X-Slack-Request-Timestamp`).
 */
import { createHmac } from 'node:crypto';
import { performance } from 'node:perf_hooks';

/** The deprecated verification token Slack still puts in bodies; apps must not rely on it. */
const VERIFICATION_TOKEN = 'fake-verification-token';
const APP_ID = 'A0FAKE';
const TEAM_ID = 'T0FAKE';
const TEAM_DOMAIN = 't-fake';

/** `v0=<hex>` for a body sent at `timestamp` (seconds). */
export function slackSignature(secret: string, timestamp: number, body: string): string {
  return `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
}

/** Slack-style ts for now: seconds with six decimals. */
function nowTs(): string {
  return (Date.now() / 1000).toFixed(6);
}

/** A slash command's body, fields in the order Slack sends them. */
export function slashCommandBody(p: {
  command: string;
  text: string;
  user_id: string;
  channel_id: string;
  team_id?: string;
  trigger_id: string;
  response_url: string;
  user_name?: string;
}): string {
  return new URLSearchParams([
    ['token', VERIFICATION_TOKEN],
    ['team_id', p.team_id ?? TEAM_ID],
    ['team_domain', TEAM_DOMAIN],
    ['channel_id', p.channel_id],
    ['channel_name', `channel-${p.channel_id.toLowerCase()}`],
    ['user_id', p.user_id],
    ['user_name', p.user_name ?? `user-${p.user_id.toLowerCase()}`],
    ['command', p.command],
    ['text', p.text],
    ['api_app_id', APP_ID],
    ['is_enterprise_install', 'false'],
    ['response_url', p.response_url],
    ['trigger_id', p.trigger_id],
  ]).toString();
}

/** An interaction's body: `payload=<urlencoded JSON>`. */
export function interactionBody(payload: Record<string, unknown>): string {
  return new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
}

/**
 * A block_actions payload for a button click, as Slack sends it. With
 * `message_ts` the click came from a channel message (which is included);
 * without, from an ephemeral message (no `message`, container.is_ephemeral).
 */
export function blockActionPayload(p: {
  user_id: string;
  channel_id: string;
  action_id: string;
  value: string;
  response_url: string;
  trigger_id: string;
  message_ts?: string;
  team_id?: string;
  block_id?: string;
}): Record<string, unknown> {
  const teamId = p.team_id ?? TEAM_ID;
  const username = `user-${p.user_id.toLowerCase()}`;
  const channelName = `channel-${p.channel_id.toLowerCase()}`;
  const ephemeral = p.message_ts === undefined;
  return {
    type: 'block_actions',
    user: { id: p.user_id, username, name: username, team_id: teamId },
    api_app_id: APP_ID,
    token: VERIFICATION_TOKEN,
    container: {
      type: 'message',
      message_ts: p.message_ts ?? nowTs(),
      channel_id: p.channel_id,
      is_ephemeral: ephemeral,
    },
    trigger_id: p.trigger_id,
    team: { id: teamId, domain: TEAM_DOMAIN },
    enterprise: null,
    is_enterprise_install: false,
    channel: { id: p.channel_id, name: channelName },
    ...(ephemeral
      ? {}
      : {
          message: {
            type: 'message',
            subtype: 'bot_message',
            text: '',
            ts: p.message_ts,
            bot_id: 'B0BOT',
            user: 'U0BOT',
            app_id: APP_ID,
            team: teamId,
            blocks: [],
          },
        }),
    state: { values: {} },
    response_url: p.response_url,
    actions: [
      {
        action_id: p.action_id,
        block_id: p.block_id ?? 'actions',
        text: { type: 'plain_text', text: p.value, emoji: true },
        value: p.value,
        type: 'button',
        action_ts: nowTs(),
      },
    ],
  };
}

/**
 * POST a body to an app's Slack endpoint the way Slack does. `timestamp` is in
 * seconds (default now); `signature` defaults to the right one for the
 * timestamp and body, `contentType` to application/x-www-form-urlencoded.
 */
export async function postToSlackEndpoint(
  url: string,
  secret: string,
  body: string,
  opts: { timestamp?: number; signature?: string; contentType?: string } = {},
): Promise<{ status: number; text: string; ms: number }> {
  const timestamp = opts.timestamp ?? Math.floor(Date.now() / 1000);
  const started = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': opts.contentType ?? 'application/x-www-form-urlencoded',
      'x-slack-request-timestamp': String(timestamp),
      'x-slack-signature': opts.signature ?? slackSignature(secret, timestamp, body),
      'user-agent': 'Slackbot 1.0 (+https://api.slack.com/robots)',
    },
    body,
  });
  const text = await res.text();
  return { status: res.status, text, ms: performance.now() - started };
}
