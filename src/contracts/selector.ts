/**
 * Host selectors over labels (SPEC §10): `key=value[,key=value…]`, every
 * label matching exactly and case-sensitively, or `all`. As text in Slack and
 * in a query string; in JSON `"all"` or a non-empty object of strings. Pure:
 * a selector is resolved against the inventory of the moment by whoever
 * handles the request.
 */
import { z } from 'zod';

/** A label's key or value (SPEC §9), in the config file and in a selector alike. */
export const LABEL_PART = /^[A-Za-z0-9._-]+$/;
export const LABEL_RULE = 'letters, digits, . _ - (at least one)';

/** Every host, or the hosts whose labels hold every pair. */
export type Selector = 'all' | Readonly<Record<string, string>>;

/** Longest selector taken, as text (characters): it is recorded in the task. */
export const MAX_SELECTOR_CHARS = 1000;

export const SELECTOR_EXAMPLE = 'cluster=obcluster1,zone=z1';

export type SelectorParse = { ok: true; selector: Selector } | { ok: false; error: string };

/** Whether a token in a host's place is a selector rather than hosts: it holds `=`, or is `all`. */
export function isSelectorToken(token: string): boolean {
  return token === 'all' || token.includes('=');
}

/**
 * A selector's text: `all`, or `key=value` pairs joined by commas. The error
 * (without the field's name) says what is wrong and what to write.
 */
export function parseSelector(text: string): SelectorParse {
  const fail = (error: string): SelectorParse => ({ ok: false, error });
  const write = `write key=value pairs joined by commas, e.g. ${SELECTOR_EXAMPLE}, or all`;
  if (text === 'all') return { ok: true, selector: 'all' };
  if (text === '') return fail(`is empty: ${write}`);
  if (text.length > MAX_SELECTOR_CHARS) return fail(`is longer than ${MAX_SELECTOR_CHARS} characters`);
  if (/\s/.test(text)) return fail(`has a space: ${write}, without spaces`);
  const labels: Record<string, string> = {};
  for (const part of text.split(',')) {
    if (part === '') return fail(`has an empty pair: ${write}, one comma between pairs`);
    if (part === 'all') return fail('mixes all with labels: all names every host and stands alone');
    const eq = part.indexOf('=');
    if (eq < 0) {
      return fail(`"${part}" is not key=value: a selector is labels only, never host ids or names (${write})`);
    }
    const key = part.slice(0, eq);
    const value = part.slice(eq + 1);
    if (key === '') return fail(`"${part}" has no label key: ${write}`);
    if (!LABEL_PART.test(key)) return fail(`label key "${key}" must be ${LABEL_RULE}`);
    if (value === '') return fail(`${key} has no value: write ${key}=<value>`);
    if (!LABEL_PART.test(value)) return fail(`the value of ${key} ("${value}") must be ${LABEL_RULE}`);
    if (Object.hasOwn(labels, key)) return fail(`${key} is given twice: each label once (every one must match)`);
    labels[key] = value;
  }
  return { ok: true, selector: labels };
}

/** The selector as text, pairs in their given order: `cluster=obcluster1,zone=z1` or `all`. */
export function selectorText(selector: Selector): string {
  if (selector === 'all') return 'all';
  return Object.entries(selector)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** Whether labels hold every pair of the selector (exact, case-sensitive); `all` matches any. */
export function matchesSelector(labels: Readonly<Record<string, string>>, selector: Selector): boolean {
  if (selector === 'all') return true;
  return Object.entries(selector).every(([k, v]) => Object.hasOwn(labels, k) && labels[k] === v);
}

/** The hosts the selector matches, in the order given (the inventory's). */
export function selectHosts<H extends { labels: Readonly<Record<string, string>> }>(
  hosts: readonly H[],
  selector: Selector,
): H[] {
  return hosts.filter((h) => matchesSelector(h.labels, selector));
}

const TYPE_ERROR = `must be "all" or an object of label values as strings, e.g. {"cluster":"obcluster1"}`;

/** The object form: at least one label, each key and value of the label grammar. */
const SelectorObject = z
  .record(z.string(), z.string())
  .superRefine((labels, ctx) => {
    const keys = Object.keys(labels);
    if (keys.length === 0) {
      ctx.addIssue({
        code: 'custom',
        message: `names no label: give at least one, e.g. {"cluster":"obcluster1"}, or "all"`,
      });
    }
    for (const key of keys) {
      if (!LABEL_PART.test(key)) {
        ctx.addIssue({ code: 'custom', path: [key], message: `a label key must be ${LABEL_RULE}` });
      } else if (!LABEL_PART.test(labels[key] as string)) {
        ctx.addIssue({ code: 'custom', path: [key], message: `must be ${LABEL_RULE}` });
      }
    }
    if (selectorText(labels).length > MAX_SELECTOR_CHARS) {
      ctx.addIssue({ code: 'custom', message: `is longer than ${MAX_SELECTOR_CHARS} characters as key=value text` });
    }
  })
  .meta({
    minProperties: 1,
    propertyNames: { type: 'string', pattern: LABEL_PART.source },
    additionalProperties: { type: 'string', pattern: LABEL_PART.source },
  });

/** `selector` in JSON (SPEC §10): `"all"` or a non-empty object of label values. */
export const SelectorJson = z
  .union([z.literal('all'), SelectorObject], { error: TYPE_ERROR })
  .describe('"all", or labels that must all match (exact, case-sensitive), e.g. {"cluster":"obcluster1","zone":"z1"}');

/**
 * Either form: text where a query string carries it (`selector=cluster=obcluster1,zone=z1`),
 * JSON where a body does.
 */
export const SelectorAny = z
  .union(
    [z.string().describe(`"all", or key=value pairs joined by commas, e.g. ${SELECTOR_EXAMPLE}`), SelectorObject],
    {
      error: TYPE_ERROR,
    },
  )
  .superRefine((v, ctx) => {
    const parsed = typeof v === 'string' ? parseSelector(v) : undefined;
    if (parsed && !parsed.ok) ctx.addIssue({ code: 'custom', message: parsed.error });
  })
  .transform((v): Selector => {
    if (typeof v !== 'string') return v;
    const parsed = parseSelector(v);
    return parsed.ok ? parsed.selector : 'all'; // not reached: the check above refused it
  });
