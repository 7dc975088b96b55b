/**
 * `npm run demo` as a smoke test: the whole tour (real nats-server, real sshd
 * hosts, the service, the Slack stand-in) in `--fast --no-draw` mode, as its
 * own process, must end with exit code 0 and say what happened.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { captureTail, killOnExit } from '../helpers/nats-server.js';

const REPO = new URL('../..', import.meta.url).pathname;
const TIMEOUT_MS = 90_000;

function runDemo(args: string[]): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'demo/run-demo.ts', ...args], {
      cwd: REPO,
      env: { ...process.env, FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = captureTail(child.stdout, 1_000_000);
    const err = captureTail(child.stderr, 100_000);
    const unregister = killOnExit(() => child.kill('SIGKILL'));
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      unregister();
      resolve({ code, signal, output: out() + err() });
    });
  });
}

describe('npm run demo', () => {
  it('restarts 101, fails 102, retries it, and exits 0', { timeout: TIMEOUT_MS + 10_000 }, async () => {
    const { code, signal, output } = await runDemo(['--fast', '--no-draw']);
    assert.equal(signal, null, `the demo was killed (${signal}); output:\n${output}`);
    assert.equal(code, 0, `exit code ${code}; output:\n${output}`);
    assert.ok(!output.includes('\x1b['), 'no ANSI escapes when not drawing');
    // What the channel showed: both parents SUCCESSFUL, the failure and its Retry.
    assert.match(output, /Restart OCP agent — host 101 \(sim-host-101\) — SUCCESSFUL/);
    assert.match(output, /Restart OCP agent — host 102 \(sim-host-102\) — FAILED/);
    assert.match(output, /\[ Retry \] \[ Skip \] \[ Rollback \]/);
    assert.match(output, /pressing \[ Retry \] as alice/);
    assert.match(output, /Restart pos proxy \(run 2\) SUCCESSFUL/);
    assert.match(output, /Restart OCP agent — host 102 \(sim-host-102\) — SUCCESSFUL/);
    // The summary.
    assert.match(output, /Demo finished\./);
    assert.match(output, /task \d+: Restart OCP agent on host 101: SUCCESSFUL, operation EXECUTE/);
    assert.match(output, /task \d+: Restart OCP agent on host 102: SUCCESSFUL, operation RETRY/);
    // Methods are listed most-called first: either may lead.
    assert.match(output, /Slack Web API calls: \d+ \((?=[^)]*chat\.postMessage \d+)(?=[^)]*chat\.update \d+)/);
  });
});
