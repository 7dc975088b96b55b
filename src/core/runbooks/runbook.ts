/**
 * A runbook is data: named steps with a timeout and the shell script that runs on
 * the host. Built-in runbooks live beside this file; YAML files named in config
 * may override them (same fields), so an operator can adapt the steps to another
 * agent version without a release.
 */
import { z } from 'zod';

/**
 * Placeholders every step script may use; each is replaced by a shell-quoted
 * value. A runbook of an operation may also use its parameters (`params`).
 */
export const PLACEHOLDERS = ['agentHome', 'agentctl', 'killGraceSeconds'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];
/** `{name}`, but not the shell's own `${name}`. */
const PLACEHOLDER_RE = /(?<!\$)\{([A-Za-z][A-Za-z0-9]*)\}/g;

export const RunbookStep = z.object({
  name: z.string().min(1),
  description: z.string().min(1).optional(),
  /** Java class name OCP shows; defaults to the seed's naming from `name`. */
  className: z.string().min(1).optional(),
  /** Seconds; enforced on the host with coreutils `timeout`. */
  timeout: z.number().int().positive().max(86_400),
  /** POSIX sh script run on the host; `{placeholder}` values are shell-quoted. */
  command: z.string().min(1),
});
export type RunbookStep = z.infer<typeof RunbookStep>;

export const Runbook = z
  .object({
    name: z.string().min(1),
    steps: z.array(RunbookStep).min(1),
    /** Names of the parameters its steps may use as placeholders (an operation's, SPEC §8). */
    params: z.array(z.string().regex(/^[a-z][A-Za-z0-9]{0,30}$/)).optional(),
  })
  .superRefine((rb, ctx) => {
    const known = [...PLACEHOLDERS, ...(rb.params ?? [])];
    rb.steps.forEach((step, i) => {
      for (const m of step.command.matchAll(PLACEHOLDER_RE)) {
        const name = m[1] ?? '';
        if (!known.includes(name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['steps', i, 'command'],
            message: `unknown placeholder {${name}}; known: ${known.map((p) => `{${p}}`).join(', ')}`,
          });
        }
      }
    });
  });
export type Runbook = z.infer<typeof Runbook>;

/** "Stop all OCP agent processes" → com.alipay.ocp.service.task.business.obagent.StopAllOcpAgentProcessesTask */
export function defaultClassName(stepName: string): string {
  const pascal = stepName
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => (w[0] ?? '').toUpperCase() + w.slice(1).toLowerCase()) // OCP → Ocp, as the seed writes it
    .join('');
  return `com.alipay.ocp.service.task.business.obagent.${pascal}Task`;
}

/** Quote a value for POSIX sh: single quotes, with embedded quotes closed and escaped. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'"'"'`)}'`;
}

/**
 * Replace each `{placeholder}` that has a value with that value shell-quoted
 * (a runbook's placeholders are checked when it is loaded).
 */
export function renderScript(
  template: string,
  values: Readonly<Record<Placeholder, string>> & Readonly<Record<string, string>>,
): string {
  return template.replace(PLACEHOLDER_RE, (whole, name: string) =>
    Object.hasOwn(values, name) ? shellQuote(values[name] as string) : whole,
  );
}
