/**
 * Writes docs/schemas/<name>.json for every entry of PAYLOAD_SCHEMAS
 * (src/contracts/schemas.ts) and removes .json files there that no longer have
 * an entry.
 *
 *   npm run schemas          (or: npx tsx scripts/gen-schemas.ts)
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderJsonSchemas } from '../src/contracts/schemas.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const DIR = join(REPO, 'docs', 'schemas');

const rendered = renderJsonSchemas();
mkdirSync(DIR, { recursive: true });

for (const [name, text] of Object.entries(rendered)) {
  const file = join(DIR, `${name}.json`);
  const same = existsSync(file) && readFileSync(file, 'utf8') === text;
  if (!same) writeFileSync(file, text);
  console.log(`${same ? 'unchanged' : 'wrote    '} ${relative(REPO, file)}`);
}

for (const entry of readdirSync(DIR)) {
  if (!entry.endsWith('.json') || Object.hasOwn(rendered, entry.slice(0, -'.json'.length))) continue;
  const file = join(DIR, entry);
  rmSync(file);
  console.log(`removed   ${relative(REPO, file)}`);
}
