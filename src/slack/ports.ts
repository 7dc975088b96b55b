/**
 * What the Slack front door needs of storage and of the request stream,
 * declared beside it; nats/ implements them and service.ts passes them in.
 */
import type { BatchOptionsInput } from '../contracts/batch-options.js';
import type { SlackDoorCommand } from '../contracts/events.js';
import type { RequestHosts } from '../contracts/host-list.js';
import type { BatchPosts } from './batch-thread.js';

/**
 * A request waiting for its confirmation click — a batch, a selector (SPEC
 * §10: resolved again when confirmed, against the inventory of that moment),
 * or an operation that asks first (a button value holds at most 2,000
 * characters, so it is kept here).
 */
export type PendingBatch = RequestHosts & {
  /** The registry's operation. */
  operation: string;
  params: Record<string, string>;
  /** A batch's rolling options as typed (SPEC §10). */
  batch?: BatchOptionsInput;
  reason?: string;
  /** After this a Confirm is refused (ISO 8601). */
  expiresAt: string;
};

export interface PendingBatches {
  /** Keep a batch until it is confirmed, cancelled or expires. */
  put(batchId: string, batch: PendingBatch): Promise<void>;
  /** The batch as stored, whatever its state; undefined when it is gone or unreadable. */
  read(batchId: string): Promise<PendingBatch | undefined>;
  /**
   * Confirm the batch for `userId`, by compare-and-set: resolves with it when
   * this call took it; undefined when it is gone (cancelled, or never there),
   * confirmed already (a second click), taken by a concurrent Confirm or
   * Cancel, or expired at `now` (then it is removed). Rejects when the stored
   * batch cannot be read.
   */
  confirm(batchId: string, userId: string, now: Date): Promise<PendingBatch | undefined>;
  /**
   * Cancel the batch: removed by compare-and-set unless a Confirm took it
   * first. Resolves with who confirmed it then; undefined when it is gone
   * (cancelled, expired, or never there) or this call removed it.
   */
  cancel(batchId: string): Promise<string | undefined>;
}

/**
 * Send a request made in Slack on to the task intake, on the Slack door's own
 * way in (docs/SECURITY.md); durable once this resolves, and one per
 * requestId (a repeat is dropped).
 */
export type PublishDoorCommand = (operation: string, command: SlackDoorCommand) => Promise<void>;

/** What the notifier posted in a batch's thread on its own (batch-thread.ts), kept so it is posted once. */
export interface BatchPostsStore {
  get(taskId: number): Promise<{ posts: BatchPosts; revision: number } | undefined>;
  /**
   * Create (`revision` undefined) or update by compare-and-set. Resolves with
   * the new revision, or undefined when another writer got there first.
   * Throws when storage cannot take it now.
   */
  save(taskId: number, posts: BatchPosts, revision: number | undefined): Promise<number | undefined>;
}
