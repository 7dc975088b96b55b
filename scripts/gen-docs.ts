/**
 * Writes the generated parts of docs/api.md: the table of the registry's
 * built-in operations (src/api/operations-doc.ts), between its markers.
 *
 *   npm run docs          (or: npx tsx scripts/gen-docs.ts)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OPERATIONS_BEGIN, OPERATIONS_END, renderOperationsTable } from '../src/api/operations-doc.js';
import { BUILTIN_OPERATIONS } from '../src/operations/registry.js';

const FILE = fileURLToPath(new URL('../docs/api.md', import.meta.url));
const text = readFileSync(FILE, 'utf8');
const from = text.indexOf(OPERATIONS_BEGIN);
const to = text.indexOf(OPERATIONS_END);
if (from < 0 || to < from) throw new Error(`docs/api.md lacks the markers ${OPERATIONS_BEGIN} … ${OPERATIONS_END}`);
const next = text.slice(0, from) + renderOperationsTable(BUILTIN_OPERATIONS) + text.slice(to + OPERATIONS_END.length);
if (next === text) console.log('unchanged docs/api.md');
else {
  writeFileSync(FILE, next);
  console.log('wrote     docs/api.md');
}
