/**
 * Roles in Slack (SPEC §4): a user holds a role when listed for it in
 * access.slack, or a member of one of its user groups. Group members come from
 * `usergroups.users.list`, cached at most 60 s, one call per group per period
 * however many commands arrive at once (single flight). ADMIN holds every role.
 */
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { PERMISSIONS } from '../contracts/roles.js';
import type { Role } from './parse-command.js';

/** A Slack user group as `usergroups.list` gives it (with `include_users`). */
export interface SlackUsergroup {
  id?: string;
  handle?: string;
  name?: string;
  users?: string[];
}

export interface UsergroupsApi {
  usergroups: {
    users: { list(args: { usergroup: string }): Promise<{ users?: string[] }> };
    list(args: { include_users: boolean }): Promise<{ usergroups?: SlackUsergroup[] }>;
  };
}

/** A user group a user belongs to, as `whoami` shows it. */
export interface UserGroupOf {
  id: string;
  handle: string;
  name: string;
}

export interface SlackRoles {
  rolesOf(userId: string): Promise<Set<Role>>;
  /**
   * The user groups of the workspace that hold `userId` (`usergroups.list` with
   * its members; the `usergroups:read` scope), asked afresh each time: only
   * `whoami` needs it, and an admin who just added someone wants to see it.
   */
  groupsOf(userId: string): Promise<UserGroupOf[]>;
}

/** How long a group's member list is trusted (ms). */
export const GROUP_CACHE_MS = 60_000;

const ROLES: readonly Role[] = PERMISSIONS;

export function createSlackRoles(deps: {
  config: Config;
  client: UsergroupsApi;
  logger: Logger;
  now?: () => number;
}): SlackRoles {
  const now = deps.now ?? Date.now;
  const cache = new Map<string, { members: Set<string>; at: number }>();
  const inFlight = new Map<string, Promise<Set<string>>>();

  function members(group: string): Promise<Set<string>> {
    const hit = cache.get(group);
    if (hit && now() - hit.at < GROUP_CACHE_MS) return Promise.resolve(hit.members);
    const pending = inFlight.get(group);
    if (pending) return pending;
    const call = deps.client.usergroups.users
      .list({ usergroup: group })
      .then((res) => {
        const set = new Set(res.users ?? []);
        cache.set(group, { members: set, at: now() });
        return set;
      })
      .catch((err: Error) => {
        // An unreadable group grants nothing; the next command asks again.
        deps.logger.warn({ group, err: err.message }, 'cannot list Slack user group members');
        return new Set<string>();
      })
      .finally(() => inFlight.delete(group));
    inFlight.set(group, call);
    return call;
  }

  async function holds(grant: { users: readonly string[]; usergroups: readonly string[] } | undefined, userId: string) {
    if (!grant) return false;
    if (grant.users.includes(userId)) return true;
    const sets = await Promise.all(grant.usergroups.map(members));
    return sets.some((s) => s.has(userId));
  }

  return {
    async rolesOf(userId) {
      const grants = deps.config.access.slack;
      if (await holds(grants.ADMIN, userId)) return new Set(ROLES);
      const held = await Promise.all(ROLES.map(async (r) => ((await holds(grants[r], userId)) ? r : undefined)));
      return new Set(held.filter((r): r is Role => r !== undefined));
    },
    async groupsOf(userId) {
      const res = await deps.client.usergroups.list({ include_users: true });
      return (res.usergroups ?? [])
        .filter((g) => g.id !== undefined && (g.users ?? []).includes(userId))
        .map((g) => ({ id: g.id as string, handle: g.handle ?? '', name: g.name ?? '' }));
    },
  };
}
