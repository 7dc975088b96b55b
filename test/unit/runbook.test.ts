/**
 * Runbooks as data (src/core/runbooks/runbook.ts): values reach the host's shell
 * quoted (checked by running sh), placeholders are rendered and nothing else,
 * classNames follow the seed's naming, and the schema refuses what would not run.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { builtinRunbooks } from '../../src/core/runbooks/builtin.js';
import { defaultClassName, Runbook, renderScript, shellQuote } from '../../src/core/runbooks/runbook.js';

const scratch = mkdtempSync(join(tmpdir(), 'runbook-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** What `sh` prints for `script`. */
function sh(script: string): string {
  const child = spawnSync('sh', ['-c', script], { encoding: 'utf8' });
  assert.equal(child.status, 0, child.stderr);
  return child.stdout;
}

/** The seed's classNames by subtask name. */
function seedClassNames(): Map<string, string> {
  const path = fileURLToPath(new URL('../fixtures/restart-ocp-agent-api.md', import.meta.url));
  const block = /```unknow\n([\s\S]*?)\n```/.exec(readFileSync(path, 'utf8'));
  assert.ok(block?.[1], `no \`\`\`unknow block in ${path}`);
  const data = (JSON.parse(block[1]) as { data: { subtasks: { name: string; className: string }[] } }).data;
  return new Map(data.subtasks.map((s) => [s.name, s.className]));
}

describe('shellQuote: sh reads back exactly the value', () => {
  const marker = join(scratch, 'pwned');
  const values: [name: string, value: string][] = [
    ['empty', ''],
    ['plain path', '/home/admin/ocp_agent'],
    ['spaces', 'a b  c'],
    ['single quote', "it's"],
    ['only quotes', "''"],
    ['quote breakout', `'; touch ${marker}; echo '`],
    ['double quotes', '"double" "quotes"'],
    ['command substitution', `$(touch ${marker})`],
    ['backticks', `\`touch ${marker}\``],
    ['variables', '$HOME ${PATH} $1 $@'],
    ['newlines', 'line 1\nline 2\n'],
    ['command separator', '; rm -rf /'],
    ['pipes and redirects', '| cat > /dev/null && echo x || true &'],
    ['backslashes', 'a\\b\\\\c\\'],
    ['globs', '* ? [a-z] ~'],
    ['leading dash', '-n'],
    ['history and comment', '!! # not a comment'],
    ['unicode', 'héllo ☃ 重启'],
    ['tabs and CR', '\ta\r\n'],
  ];
  for (const [name, value] of values) {
    test(name, () => {
      const quoted = shellQuote(value);
      assert.equal(sh(`printf %s ${quoted}`), value);
      assert.equal(existsSync(marker), false, 'the value ran as a command');
    });
  }

  test('several quoted values stay separate words', () => {
    assert.equal(sh(`printf '<%s>' ${shellQuote('a b')} ${shellQuote("c'd")} ${shellQuote('')}`), "<a b><c'd><>");
  });
});

describe('renderScript', () => {
  const values = {
    agentHome: '/home/admin/ocp_agent',
    agentctl: '/home/admin/ocp_agent/bin/ocp_agentctl',
    killGraceSeconds: '30',
  };
  const cases: [name: string, template: string, rendered: string][] = [
    ['agentctl', '{agentctl} status', "'/home/admin/ocp_agent/bin/ocp_agentctl' status"],
    ['agentHome', 'ls {agentHome}/run/*.pid', "ls '/home/admin/ocp_agent'/run/*.pid"],
    ['killGraceSeconds', 'grace={killGraceSeconds}', "grace='30'"],
    [
      'every occurrence',
      '{agentctl} stop; {agentctl} start',
      "'/home/admin/ocp_agent/bin/ocp_agentctl' stop; '/home/admin/ocp_agent/bin/ocp_agentctl' start",
    ],
    ['shell ${x} left alone', 'echo ${x} ${HOME}', 'echo ${x} ${HOME}'],
    ['unknown {braces} left alone', 'echo {foo} {} {a-b}', 'echo {foo} {} {a-b}'],
    ['awk and brace groups left alone', "awk '{ print $1 }'; { echo a; }", "awk '{ print $1 }'; { echo a; }"],
    ['no placeholder', 'true', 'true'],
  ];
  for (const [name, template, rendered] of cases) {
    test(name, () => {
      assert.equal(renderScript(template, values), rendered);
    });
  }

  test('a nasty value reaches the script as one word, unexecuted', () => {
    const marker = join(scratch, 'render-pwned');
    const agentHome = `/tmp/it's $(touch ${marker}) \`x\``;
    const script = renderScript('printf %s {agentHome}', { ...values, agentHome });
    assert.equal(sh(script), agentHome);
    assert.equal(existsSync(marker), false);
  });
});

describe('defaultClassName', () => {
  const seed = seedClassNames();
  const restart = builtinRunbooks.find((r) => r.name === 'Restart OCP agent');

  test('the five restart steps are the seed’s five subtasks', () => {
    assert.deepEqual(new Set(restart?.steps.map((s) => s.name)), new Set(seed.keys()));
  });

  for (const step of restart?.steps ?? []) {
    const expected = seed.get(step.name);
    test(`${step.name} → the seed's className`, () => {
      assert.equal(step.className ?? defaultClassName(step.name), expected);
    });
  }

  const more: [name: string, className: string][] = [
    ['Restart pos proxy', 'com.alipay.ocp.service.task.business.obagent.RestartPosProxyTask'],
    ['Prepare', 'com.alipay.ocp.service.task.business.obagent.PrepareTask'],
    ['restart   pos-proxy (v2)', 'com.alipay.ocp.service.task.business.obagent.RestartPosProxyV2Task'],
  ];
  for (const [name, className] of more) {
    test(`${name} → ${className}`, () => {
      assert.equal(defaultClassName(name), className);
    });
  }

  const caps: [name: string, className: string][] = [
    ['Stop all OCP agent processes', 'com.alipay.ocp.service.task.business.obagent.StopAllOcpAgentProcessesTask'],
    ['Prepare stop OCP agent', 'com.alipay.ocp.service.task.business.obagent.PrepareStopOcpAgentTask'],
    ['Prepare start OCP agent', 'com.alipay.ocp.service.task.business.obagent.PrepareStartOcpAgentTask'],
  ];
  for (const [name, className] of caps) {
    test(`${name} → ${className}`, () => {
      assert.equal(defaultClassName(name), className);
    });
  }
});

describe('Runbook schema', () => {
  for (const rb of builtinRunbooks) {
    test(`built-in "${rb.name}" is valid`, () => {
      assert.deepEqual(Runbook.parse(rb), rb);
    });
  }

  const step = (command: string, timeout = 60) => ({ name: 'Step', timeout, command });
  const refused: { name: string; runbook: unknown; path: string; message?: RegExp }[] = [
    {
      name: 'an unknown placeholder, naming steps.N.command',
      runbook: { name: 'x', steps: [step('true'), step('{agentHom}/bin/ocp_agentctl status')] },
      path: 'steps.1.command',
      message: /unknown placeholder \{agentHom\}.*\{agentHome\}, \{agentctl\}, \{killGraceSeconds\}/,
    },
    { name: 'no steps', runbook: { name: 'x', steps: [] }, path: 'steps' },
    { name: 'no name', runbook: { name: '', steps: [step('true')] }, path: 'name' },
    { name: 'an empty command', runbook: { name: 'x', steps: [step('')] }, path: 'steps.0.command' },
    { name: 'timeout 0', runbook: { name: 'x', steps: [step('true', 0)] }, path: 'steps.0.timeout' },
    { name: 'timeout 1.5', runbook: { name: 'x', steps: [step('true', 1.5)] }, path: 'steps.0.timeout' },
    { name: 'timeout over a day', runbook: { name: 'x', steps: [step('true', 86_401)] }, path: 'steps.0.timeout' },
    {
      name: 'a timeout as a string',
      runbook: { name: 'x', steps: [{ name: 's', timeout: '60', command: 'true' }] },
      path: 'steps.0.timeout',
    },
  ];
  for (const c of refused) {
    test(`refuses ${c.name}`, () => {
      const result = Runbook.safeParse(c.runbook);
      assert.equal(result.success, false);
      const issues = result.error?.issues.map((i) => ({ path: i.path.join('.'), message: i.message })) ?? [];
      const issue = issues.find((i) => i.path === c.path);
      assert.ok(issue, `no issue at ${c.path}: ${JSON.stringify(issues)}`);
      if (c.message) assert.match(issue.message, c.message);
    });
  }

  test('optional description and className are kept', () => {
    const rb = { name: 'x', steps: [{ ...step('true'), description: 'd', className: 'com.example.XTask' }] };
    assert.deepEqual(Runbook.parse(rb), rb);
  });

  test('accepts shell ${VAR} expansions, which renderScript leaves alone', () => {
    const result = Runbook.safeParse({ name: 'x', steps: [step('echo "${HOME}" ${grace}')] });
    assert.deepEqual(result.error?.issues ?? [], []);
  });
});
