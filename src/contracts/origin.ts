/**
 * Where a request came from, in words no door owns: which door, who asked,
 * and where that door answers. Stored on task records and rejected request
 * entries so a notifier can answer through the door the request came in by.
 * A door's own wire form (the Slack door's SlackOrigin) is turned into this at
 * intake.
 */
import type { SlackOrigin } from './events.js';

export type Door = 'slack' | 'http' | 'nats' | 'web' | 'cli';

export interface Origin {
  door: Door;
  /** Who asked, as the door names them (Slack: a user id). */
  user: string;
  /** Where the door shows the task (Slack: a channel id); none: the notifier's default. */
  channel?: string;
  /** Where the requester alone is answered (Slack: the response_url). */
  replyTo?: string;
  /** The door's workspace (Slack: a team id). */
  team?: string;
  /** The door's own id of the request (Slack: the trigger_id). */
  ref?: string;
}

/** The Slack door's origin as a neutral one. */
export function originFromSlack(o: SlackOrigin): Origin {
  return {
    door: 'slack',
    user: o.userId,
    channel: o.channelId,
    ...(o.responseUrl === undefined ? {} : { replyTo: o.responseUrl }),
    ...(o.teamId === undefined ? {} : { team: o.teamId }),
    ...(o.triggerId === undefined ? {} : { ref: o.triggerId }),
  };
}

/**
 * `stored` with its origin as this version reads it. Versions before the
 * neutral origin stored the Slack door's own shape (`kind: 'slack'`) on task
 * records and request entries; those are read as a Slack origin, so a task
 * begun before an upgrade still gets its thread. An origin of neither shape is
 * dropped (the task is then answered where a task without one is).
 */
export function withCurrentOrigin<T extends object>(stored: T): T {
  if (!('origin' in stored)) return stored;
  const { origin, ...rest } = stored;
  if (origin === undefined || (typeof origin === 'object' && origin !== null && 'door' in origin)) return stored;
  const old = origin as Partial<SlackOrigin> | null;
  if (old?.kind === 'slack' && typeof old.userId === 'string' && typeof old.channelId === 'string') {
    return { ...rest, origin: originFromSlack(old as SlackOrigin) } as T;
  }
  return rest as T;
}
