/**
 * The doctor's look at Slack (against SLACK_API_URL): the bot token
 * (`auth.test`), its scopes as Slack lists them, and every user group named in
 * `access.slack` (`usergroups.users.list`, as the role check asks).
 */
import { WebClient } from '@slack/web-api';
import type { Config } from '../config.js';
import { type Finding, finding } from './report.js';

const T = 'slack';

/** Scopes the service cannot work without (manifest.yml has them); chat:write.public is for channels the bot is not in. */
export const REQUIRED_SCOPES = ['commands', 'chat:write', 'usergroups:read'] as const;
const OPTIONAL_SCOPES = ['chat:write.public'] as const;

/** Slack's error code of a failed call (`invalid_auth`, `no_such_subteam`…), else its message. */
function slackError(err: unknown): string {
  return (err as { data?: { error?: string } }).data?.error ?? (err as Error).message;
}

/** Every user group named in access.slack, with the roles naming it. */
function configuredGroups(config: Config): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const [role, grant] of Object.entries(config.access.slack)) {
    for (const g of grant?.usergroups ?? []) groups.set(g, [...(groups.get(g) ?? []), role]);
  }
  return groups;
}

export async function checkSlack(config: Config, opts: { timeoutMs: number }): Promise<Finding[]> {
  const env = config.env;
  const groups = configuredGroups(config);
  if (!env.SLACK_BOT_TOKEN) {
    const wanted = groups.size > 0 || config.slack.defaultChannel !== undefined;
    return [
      finding(
        T,
        'token',
        wanted ? 'warn' : 'skip',
        'Slack is off: SLACK_BOT_TOKEN is unset',
        wanted
          ? 'access.slack or slack.defaultChannel is set: give the service SLACK_BOT_TOKEN (and SLACK_SIGNING_SECRET or SLACK_APP_TOKEN).'
          : undefined,
      ),
    ];
  }
  const found: Finding[] = [];
  if (!env.SLACK_SIGNING_SECRET && !env.SLACK_APP_TOKEN) {
    found.push(
      finding(
        T,
        'door',
        'fail',
        'SLACK_BOT_TOKEN is set but neither SLACK_SIGNING_SECRET nor SLACK_APP_TOKEN: Slack stays off',
        "Set SLACK_SIGNING_SECRET (the app's Basic Information page) for HTTP, or SLACK_APP_TOKEN (xapp-…) for Socket Mode.",
      ),
    );
  }
  const client = new WebClient(env.SLACK_BOT_TOKEN, {
    slackApiUrl: env.SLACK_API_URL,
    retryConfig: { retries: 0 },
    timeout: opts.timeoutMs,
  });
  let scopes: string[] | undefined;
  try {
    const me = await client.auth.test();
    scopes = me.response_metadata?.scopes;
    found.push(
      finding(T, 'token', 'ok', `bot @${me.user ?? '?'} (${me.user_id ?? '?'}) in ${me.team ?? me.team_id ?? '?'}`),
    );
  } catch (err) {
    const code = slackError(err);
    found.push(
      finding(
        T,
        'token',
        'fail',
        `Slack refused SLACK_BOT_TOKEN (auth.test: ${code}) at ${env.SLACK_API_URL}`,
        /invalid_auth|not_authed|token_revoked|account_inactive/.test(code)
          ? "Copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page into SLACK_BOT_TOKEN; reinstall the app if it was revoked."
          : `Check that ${env.SLACK_API_URL} is reachable from here (SLACK_API_URL; a proxy?).`,
      ),
    );
    for (const g of groups.keys()) found.push(finding(T, `user group ${g}`, 'skip', 'not checked: the token failed'));
    return found;
  }
  if (scopes === undefined) {
    found.push(finding(T, 'scopes', 'skip', "Slack did not list the token's scopes"));
  } else {
    const missing = REQUIRED_SCOPES.filter((s) => !scopes?.includes(s));
    const optional = OPTIONAL_SCOPES.filter((s) => !scopes?.includes(s));
    if (missing.length > 0)
      found.push(
        finding(
          T,
          'scopes',
          'fail',
          `the token lacks ${missing.join(', ')}`,
          'Add the scopes of manifest.yml (OAuth & Permissions, Bot Token Scopes), then reinstall the app.',
        ),
      );
    else if (optional.length > 0)
      found.push(
        finding(
          T,
          'scopes',
          'warn',
          `the token lacks ${optional.join(', ')}: the bot posts only in channels it was invited to`,
          'Add chat:write.public, or /invite the bot to the channels where tasks are started.',
        ),
      );
    else found.push(finding(T, 'scopes', 'ok', scopes.join(', ')));
  }
  if (groups.size === 0) {
    found.push(
      finding(
        T,
        'roles',
        'warn',
        'access.slack grants no role: every command but help and whoami is refused',
        'Have each operator type /ocp-agent whoami, then list their user groups or user ids under access.slack.',
      ),
    );
  }
  const results = await Promise.all(
    [...groups].map(async ([g, roles]) => {
      try {
        const res = await client.usergroups.users.list({ usergroup: g });
        return finding(T, `user group ${g}`, 'ok', `${res.users?.length ?? 0} members (${roles.join(', ')})`);
      } catch (err) {
        const code = slackError(err);
        return finding(
          T,
          `user group ${g}`,
          'fail',
          `usergroups.users.list: ${code} (named for ${roles.join(', ')})`,
          code === 'missing_scope'
            ? 'Add the usergroups:read scope, then reinstall the app.'
            : `A member of the group can see its id with /ocp-agent whoami; correct access.slack.${roles[0]}.`,
        );
      }
    }),
  );
  return [...found, ...results];
}
