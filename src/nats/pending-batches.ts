/**
 * The Slack door's batch confirmations in KV: `batch.<batchId>` in ocp_slack,
 * taken or removed only by compare-and-set, so a Confirm and a Cancel clicked
 * together never both win.
 */
import type { KV } from 'nats';
import { z } from 'zod';
import { BatchOptionsInput } from '../contracts/batch-options.js';
import { SelectorJson } from '../contracts/selector.js';
import type { PendingBatch, PendingBatches } from '../slack/ports.js';
import { decodeJson, encodeJson, getLive, isCasConflict } from './kv-json.js';

const Stored = z.object({
  /** The registry's operation (confirmations stored before it were batch restarts). */
  operation: z.string().default('restart'),
  /** The hosts: ids, or a selector (SPEC §10), one of the two. */
  hostIds: z.array(z.number().int().positive()).min(1).optional(),
  selector: SelectorJson.optional(),
  params: z.record(z.string(), z.string()).default({}),
  /** A batch's rolling options as typed (absent in confirmations stored before them). */
  batch: BatchOptionsInput.optional(),
  reason: z.string().max(500).optional(),
  /** A confirmation stored before it had an end: taken as expired. */
  expiresAt: z.iso.datetime().optional(),
  /** Who confirmed it: the batch has started; a Cancel is too late. */
  confirmedBy: z.string().optional(),
});

const key = (batchId: string) => `batch.${batchId}`;

/** The stored confirmation; undefined when it names no hosts (nothing written by this door). */
function batchOf(v: z.output<typeof Stored>): PendingBatch | undefined {
  const hosts = v.selector !== undefined ? { selector: v.selector } : v.hostIds ? { hostIds: v.hostIds } : undefined;
  if (!hosts) return undefined;
  const batch: PendingBatch = {
    ...hosts,
    operation: v.operation,
    params: v.params,
    ...(v.batch ? { batch: v.batch } : {}),
    expiresAt: v.expiresAt ?? new Date(0).toISOString(),
  };
  return v.reason ? { ...batch, reason: v.reason } : batch;
}

export function createPendingBatches(kv: KV): PendingBatches {
  return {
    async put(batchId, batch) {
      const { hostIds, selector, ...rest } = batch;
      const stored: z.input<typeof Stored> = { ...rest, ...(hostIds ? { hostIds: [...hostIds] } : { selector }) };
      await kv.put(key(batchId), encodeJson(stored));
    },
    async read(batchId) {
      const entry = await getLive(kv, key(batchId));
      const v = entry ? Stored.safeParse(decodeJson(entry)) : undefined;
      return v?.success ? batchOf(v.data) : undefined;
    },
    async confirm(batchId, userId, now) {
      const entry = await getLive(kv, key(batchId));
      if (!entry) return undefined;
      const v = Stored.parse(decodeJson(entry));
      if (v.confirmedBy || !v.expiresAt || Date.parse(v.expiresAt) <= now.getTime()) {
        if (!v.confirmedBy) await kv.delete(key(batchId));
        return undefined;
      }
      try {
        await kv.update(key(batchId), encodeJson({ ...v, confirmedBy: userId }), entry.revision);
      } catch (err) {
        if (!isCasConflict(err)) throw err;
        return undefined;
      }
      return batchOf({ ...v, expiresAt: v.expiresAt });
    },
    async cancel(batchId) {
      for (;;) {
        const entry = await getLive(kv, key(batchId));
        if (!entry) return undefined;
        const v = Stored.safeParse(decodeJson(entry));
        if (v.success && v.data.confirmedBy) return v.data.confirmedBy;
        try {
          await kv.delete(key(batchId), { previousSeq: entry.revision });
          return undefined;
        } catch (err) {
          if (!isCasConflict(err)) throw err; // a Confirm or another Cancel came first: look again
        }
      }
    },
  };
}
