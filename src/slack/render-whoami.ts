/**
 * `/ocp-agent whoami` (SPEC §4): the caller's user id, their user groups and
 * the roles they give, written so that an admin can copy the ids into
 * `access.slack`. Pure: no I/O.
 */
import { ROLES } from '../contracts/roles.js';
import { escapeMrkdwn } from './render-blocks.js';
import type { UserGroupOf } from './slack-roles.js';

type RoleName = (typeof ROLES)[number];
type Grants = Partial<Record<RoleName, { usergroups: readonly string[]; users: readonly string[] }>>;

export interface WhoamiFacts {
  userId: string;
  /** The caller's user groups, or why Slack would not list them. */
  groups: { ok: true; groups: readonly UserGroupOf[] } | { ok: false; error: string };
  /** Roles the caller holds, as the role check finds them. */
  roles: ReadonlySet<string>;
  /** `access.slack` of the configuration. */
  grants: Grants;
}

/** Where a role comes from: the user's id listed for it, or their groups listed for it (ADMIN's too). */
function sourcesOf(role: RoleName, facts: WhoamiFacts): string[] {
  const grant = facts.grants[role];
  if (!grant) return [];
  const sources = grant.users.includes(facts.userId) ? ['your user id'] : [];
  const mine = facts.groups.ok ? facts.groups.groups : [];
  for (const g of mine) if (grant.usergroups.includes(g.id)) sources.push(`group \`${g.id}\``);
  return sources;
}

function groupLine(g: UserGroupOf): string {
  const handle = g.handle ? ` @${escapeMrkdwn(g.handle)}` : '';
  const name = g.name && g.name !== g.handle ? ` (${escapeMrkdwn(g.name)})` : '';
  return `• \`${g.id}\`${handle}${name}`;
}

/** The ephemeral answer, in mrkdwn. */
export function renderWhoami(facts: WhoamiFacts): string {
  const lines = [`You are <@${facts.userId}>, Slack user id \`${facts.userId}\`.`];
  if (!facts.groups.ok) {
    lines.push(
      `*Your user groups:* Slack would not list them (${escapeMrkdwn(facts.groups.error)}); the app needs the \`usergroups:read\` scope.`,
    );
  } else if (facts.groups.groups.length === 0) {
    lines.push('*Your user groups:* none.');
  } else {
    lines.push('*Your user groups:*', ...facts.groups.groups.map(groupLine));
  }
  const admin = sourcesOf('ADMIN', facts);
  const held = ROLES.filter((r) => r !== 'ADMIN' && facts.roles.has(r));
  if (held.length === 0) {
    lines.push('*Your roles:* none.');
  } else {
    lines.push('*Your roles:*');
    for (const role of held) {
      const via = [...sourcesOf(role, facts), ...(admin.length > 0 ? [`ADMIN (${admin.join(', ')})`] : [])];
      lines.push(`• ${role}${via.length > 0 ? ` — from ${via.join(', ')}` : ''}`);
    }
  }
  const example = facts.groups.ok ? facts.groups.groups[0]?.id : undefined;
  lines.push(
    `An admin grants a role in the config file's \`access.slack\` by user id or user group id, e.g. \`HOST_MANAGER: { usergroups: [${example ?? 'S…'}], users: [${facts.userId}] }\`.`,
  );
  return lines.join('\n');
}
