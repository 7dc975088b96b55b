/**
 * A batch's rolling options as requests give them (SPEC §10): HTTP body
 * fields, NATS payload fields, Slack `name=value` tokens, and the config's
 * `batch:` defaults. A number may come as digits in a string (Slack's tokens
 * are text); `maxFailures` is a count or a percentage `"5%"`. What depends on
 * the batch (a canary larger than it) is checked when its hosts are known
 * (core/rolling.ts).
 */
import { z } from 'zod';
import { MAX_HOSTS } from './host-list.js';

/** Whole numbers from `min` to `max`, as a JSON number or as digits. */
function count(min: number, max: number) {
  return z
    .union(
      [
        z.number(),
        z
          .string()
          .regex(/^[0-9]{1,9}$/)
          .transform(Number),
      ],
      {
        error: `must be a whole number from ${min} to ${max}`,
      },
    )
    .pipe(
      z
        .number()
        .int({ error: `must be a whole number from ${min} to ${max}` })
        .min(min, { error: `must be a whole number from ${min} to ${max}` })
        .max(max, { error: `must be a whole number from ${min} to ${max}` }),
    );
}

/** Chains that may run at once: 1 to 2,000 (as config `batch.maxParallel`). */
export const MaxParallel = count(1, 2000).describe('hosts of the batch that run at once (1 to 2000)');
/** Hosts run first and alone: 0 (none) up to the batch's size. */
export const Canary = count(0, MAX_HOSTS).describe(
  'the first this many hosts (in request order) run first and alone; the rest start only when every one succeeded',
);

const MAX_FAILURES_ERROR = 'must be a whole number of hosts, or a percentage from 0% to 100% like "5%"';
/** Failed hosts tolerated: a count, or a share of the batch's hosts (`"5%"`). */
export const MaxFailures = z
  .union([z.number(), z.string()], { error: MAX_FAILURES_ERROR })
  .transform((v, ctx): number | string => {
    if (typeof v === 'number') {
      if (Number.isInteger(v) && v >= 0 && v <= MAX_HOSTS) return v;
    } else if (/^[0-9]{1,9}$/.test(v) && Number(v) <= MAX_HOSTS) {
      return Number(v);
    } else {
      const pct = /^([0-9]{1,3}(?:\.[0-9]{1,3})?)%$/.exec(v);
      if (pct && Number(pct[1]) <= 100) return `${Number(pct[1])}%`;
    }
    ctx.addIssue({ code: 'custom', message: MAX_FAILURES_ERROR });
    return z.NEVER;
  })
  .describe('failed hosts tolerated, a count or a percentage ("5%"); past it no new host starts and the batch fails');

/** The option fields a request may carry, each optional. */
export const BATCH_OPTION_FIELDS = {
  maxParallel: MaxParallel.optional(),
  canary: Canary.optional(),
  maxFailures: MaxFailures.optional(),
} as const;

export const BatchOptionsInput = z.strictObject(BATCH_OPTION_FIELDS);
export type BatchOptionsInput = z.output<typeof BatchOptionsInput>;

export const BATCH_OPTION_NAMES = ['maxParallel', 'canary', 'maxFailures'] as const;
export type BatchOptionName = (typeof BATCH_OPTION_NAMES)[number];

/** The options among a request's fields (those given), for createTask. */
export function batchRequestOf(input: {
  maxParallel?: number | undefined;
  canary?: number | undefined;
  maxFailures?: number | string | undefined;
}): BatchOptionsInput | undefined {
  const out: BatchOptionsInput = {};
  if (input.maxParallel !== undefined) out.maxParallel = input.maxParallel;
  if (input.canary !== undefined) out.canary = input.canary;
  if (input.maxFailures !== undefined) out.maxFailures = input.maxFailures;
  return Object.keys(out).length === 0 ? undefined : out;
}
