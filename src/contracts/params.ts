/**
 * The parameters of an operation (SPEC §8) as declared — each an enum or a
 * whole-value pattern — and as zod checks them on every door and again when
 * a step renders.
 */
import { z } from 'zod';

/** A parameter: one of a list, or a whole-value pattern. */
export type ParamSpec = { enum: readonly string[] } | { pattern: string };

/** Longest parameter value taken (characters). */
export const MAX_PARAM_CHARS = 256;

/** A parameter's value as its declaration takes it. */
function paramValue(spec: ParamSpec): z.ZodType<string> {
  if ('enum' in spec) {
    const values = [...spec.enum] as [string, ...string[]];
    return z.enum(values, { error: `must be one of ${values.join(', ')}` });
  }
  const whole = new RegExp(`^(?:${spec.pattern})$`, 'u');
  return z.string().max(MAX_PARAM_CHARS).regex(whole, `must match ${spec.pattern} (the whole value)`);
}

/** Built once per declaration (a configuration's are frozen objects): every step start checks one. */
const schemas = new WeakMap<object, z.ZodType<Record<string, string>>>();

/** The `params` object of an operation: every declared parameter, nothing else. */
export function paramsSchema(params: Readonly<Record<string, ParamSpec>>): z.ZodType<Record<string, string>> {
  let schema = schemas.get(params);
  if (!schema) {
    const shape = Object.fromEntries(Object.entries(params).map(([name, spec]) => [name, paramValue(spec)]));
    schema = z.strictObject(shape) as unknown as z.ZodType<Record<string, string>>;
    schemas.set(params, schema);
  }
  return schema;
}

/** Whether one value is what a parameter's declaration takes. */
export function paramAccepts(spec: ParamSpec, value: string): boolean {
  return paramValue(spec).safeParse(value).success;
}

/** A parameter for people: `process=<ocp_agentd|ocp_mgragent>` or `lines=<[0-9]+>`. */
export function paramUsage(name: string, spec: ParamSpec): string {
  return `${name}=<${'enum' in spec ? spec.enum.join('|') : spec.pattern}>`;
}
