/**
 * How a request names its hosts (SPEC §8, §10): one host (`hostId`), several
 * (`hostIds`, a batch), or a `selector` over labels — exactly one of them; a
 * list holds 1 to 10,000 hosts, each once. One definition for the NATS
 * payloads and the API's inputs, whose id types differ. A selector is
 * resolved against the inventory when the request is handled (createTask).
 */
import { z } from 'zod';
import type { Selector } from './selector.js';

/** Hosts one request may name in a list: the largest batch Slack and the API take that way. */
export const MAX_HOSTS = 10_000;

/** A list of host ids (of the door's id type), each named once. */
export function hostIdList<T extends z.ZodType<number>>(id: T) {
  return z
    .array(id)
    .min(1)
    .max(MAX_HOSTS)
    .refine((ids) => new Set(ids).size === ids.length, 'a host is named twice');
}

/** The fields by which a request may name its hosts. */
export type HostField = 'hostId' | 'hostIds' | 'selector';
const HOST_FIELDS: readonly HostField[] = ['hostId', 'hostIds', 'selector'];

type Named = { hostId?: number | undefined; hostIds?: readonly number[] | undefined; selector?: Selector | undefined };

/**
 * Exactly one of `fields` (zod): add with `.superRefine(oneWayToNameHosts(…))`.
 * A selector never comes with host ids: 10001 naming `selector`.
 */
export function oneWayToNameHosts(fields: readonly HostField[] = HOST_FIELDS) {
  const choice =
    fields.length === 2
      ? `either ${fields[0]} or ${fields[1]}`
      : `one of ${fields.slice(0, -1).join(', ')} or ${fields.at(-1)}`;
  return (v: Named, ctx: z.RefinementCtx): void => {
    const given = fields.filter((f) => v[f] !== undefined);
    if (given.length === 1) return;
    if (given.length === 0) {
      ctx.addIssue({ code: 'custom', path: [fields[0] as string], message: `give ${choice}` });
    } else if (given.includes('selector')) {
      const ids = given.filter((f) => f !== 'selector').join(' and ');
      ctx.addIssue({
        code: 'custom',
        path: ['selector'],
        message: `never comes with ${ids}: name the hosts by ids or by a selector, not both`,
      });
    } else {
      ctx.addIssue({ code: 'custom', path: [given[0] as string], message: `give ${choice}, not both` });
    }
  };
}

/** The same in JSON Schema: add with `.meta(oneOfHosts(…))`. */
export function oneOfHosts(fields: readonly HostField[] = HOST_FIELDS) {
  return { oneOf: fields.map((f) => ({ required: [f] })) };
}

/** The hosts of a request as createTask takes them: ids, or a selector resolved when it is handled. */
export type RequestHosts =
  | { hostIds: readonly number[]; selector?: undefined }
  | { selector: Selector; hostIds?: undefined };

/** A parsed request's hosts (one of its fields given, as oneWayToNameHosts checked). */
export function requestHosts(v: Named): RequestHosts {
  if (v.selector !== undefined) return { selector: v.selector };
  return { hostIds: v.hostIds ?? [v.hostId as number] };
}
