/**
 * A benchmark that compares this code with another revision in the same run:
 * that revision's tree in a temporary folder, and the service started from a
 * tree as its own process with the bench-only instant step runner.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killOnExit, waitForExit } from '../../test/helpers/nats-server.js';
import { sleep } from './common.js';

export const REPO = new URL('../..', import.meta.url).pathname;

/** The tree of `rev` in a temporary folder, with this repository's node_modules. */
export function extract(rev: string): { root: string; commit: string; remove(): void } {
  const root = mkdtempSync(join(tmpdir(), 'ocp-bench-base-'));
  const commit = execFileSync('git', ['rev-parse', '--short', rev], { cwd: REPO, encoding: 'utf8' }).trim();
  execFileSync('sh', ['-c', `git archive ${commit} | tar -x -C '${root}'`], { cwd: REPO });
  symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'));
  return { root, commit, remove: () => rmSync(root, { recursive: true, force: true }) };
}

export interface Proc {
  child: ChildProcess;
  tail(): string;
  httpPort(): number | undefined;
  stop(): Promise<void>;
}

/** The service of the tree at `root`, with ROLES=`roles` and the instant step runner. */
export function spawnService(root: string, env: NodeJS.ProcessEnv, roles: string): Proc {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--max-semi-space-size=4', join(root, 'bench/executor-with-runner.ts')],
    { cwd: root, env: { ...env, ROLES: roles, BENCH_RUNNER: 'instant' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let tail = '';
  let port: number | undefined;
  const take = (c: Buffer) => {
    const text = c.toString();
    tail = (tail + text).slice(-20_000);
    const m = /"httpPort":(\d+)/.exec(text);
    if (m) port = Number(m[1]);
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  const unregister = killOnExit(() => child.kill('SIGKILL'));
  return {
    child,
    tail: () => tail,
    httpPort: () => port,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await waitForExit(child);
      }
      unregister();
    },
  };
}

/** Until the process logs that it is ready (90 s at most). */
export async function ready(p: Proc, what: string): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (!/"msg":"ready"/.test(p.tail())) {
    if (p.child.exitCode !== null || Date.now() > deadline) throw new Error(`${what} never ready:\n${p.tail()}`);
    await sleep(100);
  }
}
