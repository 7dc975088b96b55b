/**
 * The payload schemas published as JSON Schema in docs/schemas/ (SPEC §5).
 * `npm run schemas` (scripts/gen-schemas.ts) writes one file per entry of
 * PAYLOAD_SCHEMAS; test/unit/schemas.test.ts fails when docs/schemas/ is stale.
 */
import { z } from 'zod';
import {
  AgentInput,
  BatchInput,
  BuiltinOperationInput,
  HostInput,
  HostListInput,
  ListInput,
  SubtaskInput,
  TaskGetInput,
  TaskInput,
} from './api.js';
import { AgentCommand, RequestEvent, TaskEvent, WorkItem } from './events.js';
import { OcpTask } from './ocp-task.js';

/**
 * Every published payload, by file name (kebab-case; docs/schemas/<name>.json).
 * Add an entry here, then run `npm run schemas`.
 */
export const PAYLOAD_SCHEMAS: Record<string, z.ZodType> = {
  'agent-command': AgentCommand,
  'request-event': RequestEvent,
  'task-event': TaskEvent,
  'work-item': WorkItem,
  'ocp-task': OcpTask,
  // ocp.api.<name> request payloads (the HTTP API's inputs; `creator` names who asks)
  'api-agent-input': AgentInput,
  'api-batch-restart-input': BatchInput,
  'api-host-input': HostInput,
  'api-host-list-input': HostListInput,
  'api-task-list-input': ListInput,
  'api-task-input': TaskInput,
  'api-task-get-input': TaskGetInput,
  'api-subtask-input': SubtaskInput,
  'api-operation-input': BuiltinOperationInput,
};

export const SCHEMA_ID_BASE = 'https://ocp-chatops.local/schemas/';

const NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/** `agent-command` -> `AgentCommand`. */
function titleOf(name: string): string {
  return name
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

/** One schema as JSON Schema (draft 2020-12), with `$id` and `title`. */
export function toPayloadJsonSchema(name: string, schema: z.ZodType): Record<string, unknown> {
  if (!NAME.test(name)) throw new Error(`payload schema name ${JSON.stringify(name)} is not kebab-case`);
  // io: 'input' describes what a publisher sends, before zod's transforms. For
  // HostIdInput (a number, or digits in a string piped through
  // `.transform(Number).pipe(Id)`) the input side is the string with its
  // pattern; zod never visits the transform, so nothing is unrepresentable.
  // (The output side would render both union branches as integers and add
  // `additionalProperties: false`, which is wrong for a publisher: zod objects
  // strip unknown keys rather than reject them.)
  // unrepresentable: 'throw' (zod's default) rather than 'any': today both
  // give byte-identical output, but 'any' would silently render a future
  // z.date(), z.bigint(), z.custom() or bare transform as `{}` ("anything"),
  // and a wrong contract would pass the staleness test. Throwing makes the
  // author decide (e.g. with the `override` option).
  const { $schema, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' });
  return { $schema, $id: `${SCHEMA_ID_BASE}${name}.json`, title: titleOf(name), ...rest };
}

/** File name (without `.json`) -> pretty JSON with a trailing newline, for every entry. */
export function renderJsonSchemas(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, schema] of Object.entries(PAYLOAD_SCHEMAS)) {
    out[name] = `${JSON.stringify(toPayloadJsonSchema(name, schema), null, 2)}\n`;
  }
  return out;
}
