/**
 * The processes a benchmark measures run as compiled JavaScript, as `npm start`
 * runs the service (tsx's loader thread alone costs ~35 MB of RSS and some CPU).
 * `compiled(entry)` type-checks and compiles the entry and what it imports
 * into .bench-build/ (incremental), and returns the JavaScript file to run.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const REPO = new URL('../..', import.meta.url).pathname;
const OUT = join(REPO, '.bench-build');

export function compiled(entryTs: string): string {
  const rel = relative(REPO, entryTs);
  mkdirSync(OUT, { recursive: true });
  const tsconfig = join(OUT, `tsconfig.${rel.replaceAll('/', '_')}.json`);
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: '../tsconfig.json',
      compilerOptions: {
        rootDir: '..',
        outDir: '.',
        incremental: true,
        tsBuildInfoFile: `${tsconfig}.tsbuildinfo`,
      },
      include: [],
      files: [`../${rel}`],
    }),
  );
  execFileSync(process.execPath, [join(REPO, 'node_modules/typescript/bin/tsc'), '-p', tsconfig], { stdio: 'inherit' });
  return join(OUT, rel.replace(/\.ts$/, '.js'));
}
