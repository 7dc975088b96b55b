/**
 * The processes a benchmark measures run as compiled JavaScript, as `npm start`
 * runs the service (tsx's loader thread alone costs ~35 MB of RSS and some CPU).
 * `compiled(entry)` type-checks and compiles the entry and what it imports
 * into .bench-build/ (incremental), and returns the JavaScript file to run.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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

/**
 * The Node.js flags `npm start` runs the service with (package.json's start
 * script, the one place they are written), so a benchmark's process runs as
 * deployed. `--max-semi-space-size=4` caps V8's young generation at 4 MiB a
 * half instead of 16: ~16 MiB less RSS with 1,000 steps in flight, throughput
 * unchanged (bench, same script, two runs each).
 */
export function serviceNodeFlags(): string[] {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const m = /\bnode((?: --\S+)*) dist\/main\.js/.exec(pkg.scripts.start);
  if (!m) throw new Error(`package.json start script does not run "node … dist/main.js": ${pkg.scripts.start}`);
  return (m[1] ?? '').trim().split(/\s+/).filter(Boolean);
}
