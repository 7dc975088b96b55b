/**
 * How a request names its hosts (SPEC §8): one host (`hostId`) or several
 * (`hostIds`, a batch), never both; a list holds 1 to 10,000 hosts, each once.
 * One definition for the NATS payloads and the API's inputs, whose id types
 * differ.
 */
import { z } from 'zod';

/** Hosts one request may name: the largest batch Slack and the API take. */
export const MAX_HOSTS = 10_000;

/** A list of host ids (of the door's id type), each named once. */
export function hostIdList<T extends z.ZodType<number>>(id: T) {
  return z
    .array(id)
    .min(1)
    .max(MAX_HOSTS)
    .refine((ids) => new Set(ids).size === ids.length, 'a host is named twice');
}

/** Exactly one of `hostId` and `hostIds` (zod): add with `.superRefine`. */
export function eitherHosts(
  v: { hostId?: number | undefined; hostIds?: readonly number[] | undefined },
  ctx: z.RefinementCtx,
): void {
  if ((v.hostId === undefined) === (v.hostIds === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['hostId'], message: 'give either hostId or hostIds' });
  }
}

/** The same in JSON Schema: add with `.meta`. */
export const ONE_OF_HOSTS = { oneOf: [{ required: ['hostId'] }, { required: ['hostIds'] }] };
