/**
 * docs/api.md keeps step with the code: every route of ROUTES (with its
 * permission and operation), every operation as `ocp.api.<name>` (with its
 * input fields), every error code with its HTTP status, every JSON Schema in
 * docs/schemas/ linked; and nothing documented that the code does not have.
 * When this fails, update docs/api.md (example answers: scripts/api-examples.ts).
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { httpStatusOf } from '../../src/api/answer-error.js';
import { apiOperations } from '../../src/api/operations.js';
import { renderOperationsTable } from '../../src/api/operations-doc.js';
import { parseConfig } from '../../src/config.js';
import { PERMISSIONS } from '../../src/contracts/roles.js';
import { PAYLOAD_SCHEMAS } from '../../src/contracts/schemas.js';
import { CodedError, ErrorCode, TooManySignInsError } from '../../src/errors.js';
import { ROUTES } from '../../src/http/routes.js';
import { BUILTIN_OPERATIONS } from '../../src/operations/registry.js';

/** The API of a configuration with the built-in operations only: what docs/api.md documents. */
const OPERATIONS = apiOperations(parseConfig({}, {}, 'built-ins', '.'));

const DOCS = fileURLToPath(new URL('../../docs/', import.meta.url));
const API_MD = readFileSync(join(DOCS, 'api.md'), 'utf8');
const LINES = API_MD.split('\n');
const TABLE_ROWS = LINES.filter((l) => l.startsWith('|'));

/** `POST /compute/hosts/:hostId/agent/restart` -> `POST /compute/hosts/{hostId}/agent/restart`. */
const documented = (method: string, path: string) => `${method} ${path.replace(/:(\w+)/g, '{$1}')}`;

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `ocp.api.<name>` as a whole word: not a prefix of a longer subject. */
const subjectPattern = (name: string) => new RegExp(`ocp\\.api\\.${escapeRegExp(name)}(?![\\w.])`);

function inputFields(input: z.ZodType): string[] {
  assert.ok(input instanceof z.ZodObject, 'operation inputs are zod objects');
  return Object.keys(input.shape);
}

describe('docs/api.md', () => {
  test('every route appears as `METHOD path`, in a table row with its permission and operation', () => {
    for (const route of ROUTES) {
      const text = `\`${documented(route.method, route.path)}\``;
      assert.ok(API_MD.includes(text), `docs/api.md lacks ${text}`);
      // `op.{name}`: any operation of the registry; documented as restart's.
      const op = OPERATIONS.find((o) => o.name === route.operation.replace('{name}', 'restart'));
      assert.ok(op, `route ${route.path} names an unknown operation ${route.operation}`);
      const row = TABLE_ROWS.find((l) => l.startsWith(`| ${text} |`));
      assert.ok(row, `docs/api.md has no route table row starting with ${text}`);
      const permission = route.operation.includes('{name}') ? 'its role' : (op.permission ?? 'anyone');
      const api = route.operation.replace('{name}', '<name>');
      assert.ok(row.includes(permission), `the row of ${text} does not say ${permission}: ${row}`);
      assert.ok(row.includes(`\`ocp.api.${api}\``), `the row of ${text} does not name ocp.api.${api}`);
    }
  });

  test('every documented route template is a route of ROUTES', () => {
    const known = new Set(ROUTES.map((r) => documented(r.method, r.path)));
    const mentioned = [...API_MD.matchAll(/`((?:GET|POST) \/[^`\s?]*\{[^`\s?]*)`/g)].map((m) => m[1] as string);
    assert.ok(mentioned.length >= ROUTES.length / 2, 'route templates are written `METHOD /path/{param}`');
    for (const m of mentioned) assert.ok(known.has(m), `docs/api.md documents ${m}, which is not a route`);
  });

  test('every operation appears as ocp.api.<name>, its NATS table row listing its input fields and schema', () => {
    for (const op of OPERATIONS) {
      assert.match(API_MD, subjectPattern(op.name), `docs/api.md lacks ocp.api.${op.name}`);
      const row = TABLE_ROWS.find((l) => l.startsWith(`| \`ocp.api.${op.name}\` |`));
      assert.ok(row, `docs/api.md has no NATS table row starting with ocp.api.${op.name}`);
      const payload = row.split('|')[2] ?? '';
      for (const field of inputFields(op.input)) {
        assert.match(payload, new RegExp(`\\b${field}\\b`), `the payload of ocp.api.${op.name} lacks ${field}: ${row}`);
      }
      const schema = Object.entries(PAYLOAD_SCHEMAS).find(([, s]) => s === op.input)?.[0];
      if (schema) {
        assert.ok(
          row.includes(`(schemas/${schema}.json)`),
          `the row of ocp.api.${op.name} does not link ${schema}.json`,
        );
      }
    }
  });

  test('every documented ocp.api.<name> is an operation', () => {
    const names = new Set(OPERATIONS.map((o) => o.name));
    for (const m of API_MD.matchAll(/ocp\.api\.([A-Za-z][\w.]*\w)(\.<)?/g)) {
      if (m[2]) continue; // `ocp.api.op.<name>`: any operation of the registry
      assert.ok(names.has(m[1] as string), `docs/api.md documents ocp.api.${m[1]}, which is not an operation`);
    }
  });

  test("the registry's operations are documented as the registry renders them (npm run docs)", () => {
    assert.ok(
      API_MD.includes(renderOperationsTable(BUILTIN_OPERATIONS)),
      'docs/api.md lacks the current operations table: run npm run docs',
    );
  });

  test('every error code appears in the error table with its HTTP status', () => {
    for (const [name, code] of Object.entries(ErrorCode)) {
      const status = httpStatusOf(new CodedError(code, name));
      const row = `| ${status} | ${code} |`;
      assert.ok(
        TABLE_ROWS.some((l) => l.startsWith(row)),
        `docs/api.md's error table lacks a row starting with "${row}" (ErrorCode.${name})`,
      );
    }
  });

  test('the throttled sign-in has its row: 429 with code 30000', () => {
    const status = httpStatusOf(new TooManySignInsError('too many failed sign-ins', 6));
    assert.equal(status, 429);
    assert.ok(
      TABLE_ROWS.some((l) => l.startsWith(`| ${status} | ${ErrorCode.unauthorized} |`)),
      `docs/api.md's error table lacks a row starting with "| 429 | 30000 |"`,
    );
  });

  test('every permission and ADMIN are documented', () => {
    for (const p of [...PERMISSIONS, 'ADMIN']) {
      assert.ok(
        TABLE_ROWS.some((l) => l.startsWith(`| \`${p}\` |`)),
        `docs/api.md's roles table lacks ${p}`,
      );
    }
  });

  test('every file in docs/schemas/ is linked, and every schema link resolves', () => {
    const files = readdirSync(join(DOCS, 'schemas')).filter((f) => f.endsWith('.json'));
    assert.ok(files.length > 0, 'docs/schemas/ has schema files');
    for (const f of files) {
      assert.match(
        API_MD,
        new RegExp(`\\]\\((?:\\./)?schemas/${escapeRegExp(f)}\\)`),
        `docs/api.md does not link schemas/${f}`,
      );
    }
    for (const m of API_MD.matchAll(/\]\((?:\.\/)?(schemas\/[^)#\s]+)\)/g)) {
      assert.ok(existsSync(join(DOCS, m[1] as string)), `docs/api.md links ${m[1]}, which does not exist`);
    }
  });

  test('every example fence is closed', () => {
    const fences = LINES.filter((l) => /^```/.test(l)).length;
    assert.equal(fences % 2, 0, 'docs/api.md has an unclosed ``` fence');
  });
});
