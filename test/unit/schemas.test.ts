/**
 * docs/schemas/ (SPEC §5) matches src/contracts/schemas.ts: one file per entry
 * of PAYLOAD_SCHEMAS, byte for byte what renderJsonSchemas() gives, and no
 * others. When this fails, run `npm run schemas` (npx tsx scripts/gen-schemas.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AgentCommand, PublisherRequestId } from '../../src/contracts/events.js';
import { PAYLOAD_SCHEMAS, renderJsonSchemas, SCHEMA_ID_BASE } from '../../src/contracts/schemas.js';

const DIR = fileURLToPath(new URL('../../docs/schemas/', import.meta.url));
const STALE = 'docs/schemas/ is stale: run `npm run schemas` (npx tsx scripts/gen-schemas.ts)';

type JsonSchema = {
  $schema?: string;
  $id?: string;
  title?: string;
  required?: string[];
  properties?: Record<string, { pattern?: string }>;
};

const rendered = renderJsonSchemas();
const parsed = (name: string): JsonSchema => JSON.parse(rendered[name] as string) as JsonSchema;

describe('docs/schemas/', () => {
  test('every payload schema has its file, equal to what renderJsonSchemas() gives', () => {
    for (const name of Object.keys(PAYLOAD_SCHEMAS)) {
      const file = join(DIR, `${name}.json`);
      assert.ok(existsSync(file), `${STALE}: docs/schemas/${name}.json is missing`);
      assert.equal(readFileSync(file, 'utf8'), rendered[name], `${STALE}: docs/schemas/${name}.json differs`);
    }
  });

  test('holds no other files', () => {
    const expected = new Set(Object.keys(rendered).map((name) => `${name}.json`));
    const extra = existsSync(DIR) ? readdirSync(DIR).filter((f) => !expected.has(f)) : [];
    assert.deepEqual(extra, [], `${STALE}: files without a PAYLOAD_SCHEMAS entry`);
  });
});

describe('renderJsonSchemas', () => {
  test('renders every entry with $schema, $id and title, as pretty JSON ending in a newline', () => {
    assert.deepEqual(Object.keys(rendered).sort(), Object.keys(PAYLOAD_SCHEMAS).sort());
    for (const name of Object.keys(PAYLOAD_SCHEMAS)) {
      const text = rendered[name] as string;
      assert.ok(text.endsWith('}\n'), name);
      const schema = parsed(name);
      assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema', name);
      assert.equal(schema.$id, `${SCHEMA_ID_BASE}${name}.json`, name);
      assert.equal(schema.$id, `https://ocp-chatops.local/schemas/${name}.json`, name);
      assert.match(schema.title ?? '', /^[A-Z][A-Za-z0-9]*$/, name);
      assert.equal(text, `${JSON.stringify(schema, null, 2)}\n`, name);
    }
    assert.equal(parsed('agent-command').title, 'AgentCommand');
    assert.equal(parsed('ocp-task').title, 'OcpTask');
  });

  test('agent-command: a valid AgentCommand meets its required properties and requestId pattern', () => {
    const example = { hostId: 101, creator: 'alice', requestId: 'r-1' };
    assert.deepEqual(AgentCommand.parse(example), example);
    const schema = parsed('agent-command');
    const required = schema.required ?? [];
    // One host, several or a selector: exactly one of hostId, hostIds and selector (SPEC §8, §10).
    assert.deepEqual((schema as { oneOf?: unknown }).oneOf, [
      { required: ['hostId'] },
      { required: ['hostIds'] },
      { required: ['selector'] },
    ]);
    // A selector: "all", or a non-empty object of label values (SPEC §10).
    const selector = schema.properties?.selector as { anyOf?: Array<{ const?: string; minProperties?: number }> };
    assert.deepEqual(
      selector.anyOf?.map((s) => s.const ?? s.minProperties),
      ['all', 1],
    );
    assert.ok(required.includes('creator'), 'creator is required');
    assert.ok(!required.includes('requestId'), 'requestId is optional');
    for (const key of required) assert.ok(Object.hasOwn(example, key), `example lacks required ${key}`);
    for (const key of Object.keys(example)) assert.ok(Object.hasOwn(schema.properties ?? {}, key), key);
    const pattern = schema.properties?.requestId?.pattern;
    assert.equal(pattern, '^(?!api-|slack-|msg-)[A-Za-z0-9_-]{1,64}$');
    const zodRegex = PublisherRequestId.def.checks
      ?.map((c) => (c._zod.def as { pattern?: RegExp }).pattern)
      .find(Boolean);
    assert.equal(pattern, zodRegex?.source, 'the pattern is the PublisherRequestId regex');
    assert.match(example.requestId, new RegExp(pattern as string, 'u'));
    // The ids the service makes itself are not a publisher's to choose.
    for (const id of ['api-1', 'slack-1', 'msg-1']) assert.doesNotMatch(id, new RegExp(pattern as string, 'u'));
  });

  test('task-event: task is required', () => {
    assert.ok(parsed('task-event').required?.includes('task'));
  });
});
