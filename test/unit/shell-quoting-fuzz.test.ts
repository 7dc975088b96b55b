/**
 * Property-based check that nothing from configuration or runbook data reaches the host's shell
 * unquoted (SPEC §7): every built-in step rendered for a host whose agentHome is full of shell
 * metacharacters, the launch-and-wait wrapper with such a state folder, and the agent status
 * command are run by a real `sh`; the path arrives as one word (the stub ocp_agentctl at that
 * path runs, with only the agent's own arguments) and the commands hidden in it never run
 * (their marker file never appears). The schema refuses such paths anyway (config-fuzz); this
 * is the second line: the quoting alone holds.
 * Reproduce a failure with FUZZ_SEED=<seed printed by fast-check>.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { builtinRunbooks } from '../../src/core/runbooks/builtin.js';
import { shellQuote } from '../../src/core/runbooks/runbook.js';
import { planStep } from '../../src/core/task.js';
import { launchAndWaitScript } from '../../src/ssh/remote-step.js';
import { agentStatusCommand } from '../../src/tasks/read-tasks.js';

const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const SEED = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);
const runs = (n: number) => ({
  numRuns: Math.max(1, Math.round(n * SCALE)),
  ...(SEED === undefined ? {} : { seed: SEED }),
});

const scratch = mkdtempSync(join(tmpdir(), 'quoting-fuzz-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/**
 * The file an injected command creates. Folder names cannot hold '/', so it is named, not a
 * path: the scripts run in the scratch folder (or cd below it), which is searched for it.
 */
const MARKER = 'pwned-marker';
function injected(): string[] {
  const found: string[] = [];
  for (const e of readdirSync(scratch, { recursive: true, encoding: 'utf8' })) {
    if (basename(e) === MARKER) found.push(e);
  }
  return found;
}

/** What a shell would run if the value reached it unquoted. */
const INJECTIONS = [
  `$(touch ${MARKER})`,
  `\`touch ${MARKER}\``,
  `;touch ${MARKER};`,
  `|touch ${MARKER}`,
  `&&touch ${MARKER}`,
  `\ntouch ${MARKER}\n`,
  `';touch ${MARKER};'`,
  `";touch ${MARKER};"`,
  `'$(touch ${MARKER})'`,
  `"$(touch ${MARKER})"`,
  `\\';touch ${MARKER};#`,
  `\${IFS}touch\${IFS}${MARKER}`,
  `>${MARKER}`,
  `&touch ${MARKER}&`,
];
const META = [...';|&$()`\'"\\\n\r\t <>*?~#!{}[]%= ', 'é', '☃', '\u202e', '\u00a0'];
/** A folder name (no NUL, no '/') full of metacharacters and injections. */
const hostileName = fc
  .array(
    fc.oneof(fc.constantFrom(...INJECTIONS), fc.constantFrom(...META), fc.string({ unit: 'grapheme', maxLength: 4 })),
    { minLength: 1, maxLength: 6 },
  )
  .map((parts) => parts.join('').replaceAll('/', '_').replaceAll('\u0000', ''))
  .filter((s) => s !== '' && s !== '.' && s !== '..' && Buffer.byteLength(s) < 200);

let seq = 0;
/** A fresh folder under the scratch folder, named with `name` (so its path holds the metacharacters). */
function hostileDir(name: string): string {
  const dir = join(scratch, `${seq++}`, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** `<agentHome>/bin/ocp_agentctl` as a stub that logs its arguments (one line per call) and succeeds. */
function installStub(agentHome: string): string {
  mkdirSync(join(agentHome, 'bin'), { recursive: true });
  mkdirSync(join(agentHome, 'run'), { recursive: true });
  const log = join(scratch, `calls-${seq++}.log`);
  const ctl = join(agentHome, 'bin', 'ocp_agentctl');
  // `status` says stopped (a stop's Finish step wants nothing running) and exits 0 (Start all waits for that)
  writeFileSync(ctl, `#!/bin/sh\nprintf '%s\\n' "$*" >> ${shellQuote(log)}\necho "ocp_agentd - stopped"\nexit 0\n`);
  chmodSync(ctl, 0o755);
  return log;
}

function sh(script: string, timeoutMs = 20_000) {
  return spawnSync('sh', ['-c', script], { encoding: 'utf8', timeout: timeoutMs, cwd: scratch });
}

/** Every distinct built-in step (by script template). */
const STEPS = [...new Map(builtinRunbooks.flatMap((r) => r.steps).map((s) => [s.command, s])).values()];

describe('nothing typed or configured reaches the shell unquoted', () => {
  test('control: the same value unquoted does run, and is seen', () => {
    const dir = hostileDir('control');
    sh(`cd ${shellQuote(dir)} && printf %s ${INJECTIONS[0]} && printf %s ${INJECTIONS[2]}`);
    assert.equal(injected().length, 1, 'the marker of an unquoted injection is found');
    rmSync(join(dir, MARKER));
    assert.deepEqual(injected(), []);
  });

  test('shellQuote: sh reads back exactly any string', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.constantFrom(...INJECTIONS)), (raw) => {
        const value = raw.replaceAll('\u0000', ''); // a C string (and so a shell word) cannot hold NUL
        const r = sh(`printf %s ${shellQuote(value)}`);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout, value);
        assert.deepEqual(injected(), [], 'the value ran as a command');
      }),
      runs(150),
    );
  });

  test('every built-in step, rendered for a hostile agentHome, runs its own agentctl and nothing else', () => {
    fc.assert(
      fc.property(hostileName, (name) => {
        const agentHome = hostileDir(name);
        const log = installStub(agentHome);
        for (const step of STEPS) {
          const { script } = planStep(step, { id: 1, agentHome }, 1);
          const r = sh(script);
          assert.equal(r.status, 0, `${step.name} for ${JSON.stringify(agentHome)}: exit ${r.status}\n${r.stderr}`);
        }
        const calls = readFileSync(log, 'utf8').trim().split('\n');
        const own = new Set(['status', 'stop', 'start', 'restart pos_proxy']);
        assert.deepEqual(
          calls.filter((c) => !own.has(c)),
          [],
          'ocp_agentctl got only its own arguments',
        );
        assert.ok(calls.includes('restart pos_proxy') && calls.includes('stop') && calls.includes('start'));
        assert.deepEqual(injected(), [], `${JSON.stringify(agentHome)} ran as a command`);
      }),
      runs(25),
    );
  });

  test('the agent status command, for a hostile agentHome, runs that agentctl with `status` only', () => {
    fc.assert(
      fc.property(hostileName, (name) => {
        const agentHome = hostileDir(name);
        const log = installStub(agentHome);
        const r = sh(agentStatusCommand(agentHome));
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout, 'ocp_agentd - stopped\n');
        assert.equal(readFileSync(log, 'utf8'), 'status\n');
        assert.deepEqual(injected(), [], `${JSON.stringify(agentHome)} ran as a command`);
      }),
      runs(60),
    );
  });

  test('the launch-and-wait wrapper, with a hostile state folder and step text, runs the step as written', () => {
    fc.assert(
      fc.property(hostileName, fc.constantFrom(...INJECTIONS), (name, text) => {
        const stateDir = hostileDir(name);
        const step = `printf '%s' ${shellQuote(text)}`;
        const r = sh(launchAndWaitScript(stateDir, `0a-${seq}-1-1`, step, 10));
        assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
        assert.equal(r.stdout, text, 'the step printed its text, literally');
        assert.ok(readdirSync(join(stateDir, 'runs')).length > 0, 'the run files are in <stateDir>/runs');
        assert.deepEqual(injected(), [], `${JSON.stringify(stateDir)} ran as a command`);
      }),
      runs(20),
    );
  });
});
