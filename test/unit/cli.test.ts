/** The CLI's pure parts (what it prints of tasks, where it finds credentials) and its usage answers, in-process. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { readCredentials } from '../../src/cli/credentials.js';
import type { CliIo } from '../../src/cli/io.js';
import { runCli } from '../../src/cli/main.js';
import { batchBar, changes, renderList, taskTitle } from '../../src/cli/render.js';
import type { OcpSubtask, OcpTask } from '../../src/contracts/ocp-task.js';

function subtask(id: number, status: OcpSubtask['status'], parallelIdx = 0, name = `Step ${id}`): OcpSubtask {
  return {
    className: 'x',
    description: name,
    downstreams: [],
    id,
    name,
    nodeType: 'JAVA_TASK',
    operation: 'EXECUTE',
    parallelIdx,
    prohibitRollback: false,
    runTime: 1,
    seriesId: 0,
    status,
    timeout: 60,
    upstreams: [],
  };
}

function task(subtasks: OcpSubtask[], batch?: string[]): OcpTask {
  return {
    context: {
      listMap: batch ? { host_ids: batch } : {},
      parallel: batch !== undefined,
      parallelIdx: 0,
      stringMap: { reason: 'why not', host_id: '101', prohibit_rollback: 'false' },
    },
    creator: 'alice',
    executor: '',
    hostId: 101,
    id: 7,
    name: batch ? 'Batch restart OCP agent' : 'Restart OCP agent',
    operation: 'EXECUTE',
    startTime: '2026-01-01T00:00:00.000+00:00',
    status: 'RUNNING',
    subtasks,
    taskDefinitionId: 1,
    type: 'MANUAL',
  };
}

describe('CLI rendering', () => {
  test('a task title names its hosts, creator and reason', () => {
    assert.equal(taskTitle(task([])), 'Task 7 Restart OCP agent on host 101: RUNNING, by alice ("why not")');
    assert.match(taskTitle(task([], ['101', '102'])), /on 2 hosts/);
  });

  test('following: only subtasks whose status changed, none PENDING at first sight', () => {
    const first = task([subtask(1, 'RUNNING'), subtask(2, 'PENDING')]);
    assert.deepEqual(changes(undefined, first), ['Step 1: RUNNING']);
    const then = task([
      { ...subtask(1, 'SUCCESSFUL'), startTime: '2026-01-01T00:00:00.000Z', finishTime: '2026-01-01T00:00:01.500Z' },
      subtask(2, 'RUNNING'),
    ]);
    assert.deepEqual(changes(first, then), ['Step 1: SUCCESSFUL (1.5 s)', 'Step 2: RUNNING']);
    assert.deepEqual(changes(then, then), []);
  });

  test("a batch's bar counts hosts done, failed and running", () => {
    const t = task(
      [
        subtask(1, 'SUCCESSFUL', 0),
        subtask(2, 'SUCCESSFUL', 0),
        subtask(3, 'FAILED', 1),
        subtask(4, 'RUNNING', 2),
        subtask(5, 'PENDING', 3),
      ],
      ['101', '102', '103', '104'],
    );
    assert.equal(batchBar(t, 8), '[####----] 1/4 hosts done, 1 failed, 1 running');
    assert.deepEqual(changes(undefined, t).slice(2), ['host 102: Step 3: FAILED', 'host 103: Step 4: RUNNING']);
  });

  test('a listing, and an empty one', () => {
    const page = { number: 1, totalPages: 1, totalElements: 1 };
    assert.match(
      renderList({ contents: [task([])], page }),
      /^ {5}7 {2}RUNNING {4}Restart OCP agent {2}host 101 .* alice {2}"why not"\npage 1 of 1 \(1 tasks\)$/,
    );
    assert.equal(renderList({ contents: [], page }), 'No tasks.');
  });
});

describe('CLI credentials', () => {
  const home = mkdtempSync(join(tmpdir(), 'ocp-cli-'));
  after(() => rmSync(home, { recursive: true, force: true }));

  test('the environment wins; else the file in the config folder; it says when the file is readable by others', () => {
    const base = { HOME: home };
    assert.equal(readCredentials(base).ok, false);
    mkdirSync(join(home, '.config', 'ocp-chatops'), { recursive: true });
    const path = join(home, '.config', 'ocp-chatops', 'credentials');
    writeFileSync(path, '# mine\nurl=http://10.0.0.1:3000/\nuser=alice\npassword=p=w\n', { mode: 0o644 });
    const fromFile = readCredentials(base);
    assert.ok(fromFile.ok);
    assert.deepEqual(fromFile.credentials, { url: 'http://10.0.0.1:3000', user: 'alice', password: 'p=w' });
    assert.match(fromFile.warning ?? '', /chmod 600/);
    const fromEnv = readCredentials({ ...base, OCP_CHATOPS_USER: 'bob', OCP_CHATOPS_PASSWORD: 'x' });
    assert.ok(fromEnv.ok);
    assert.equal(fromEnv.credentials.user, 'bob');
  });
});

describe('CLI usage', () => {
  async function run(args: string[], secret?: string) {
    let stdout = '';
    let stderr = '';
    const io: CliIo = {
      stdout: { write: (t: string) => (stdout += t) },
      stderr: { write: (t: string) => (stderr += t) },
      env: { HOME: '/nonexistent' },
      cwd: '/',
      readSecret: async () => secret,
    };
    return { code: await runCli(args, io), stdout, stderr };
  }

  test('--help on every command', async () => {
    for (const c of [
      'restart',
      'stop',
      'start',
      'status',
      'list',
      'history',
      'retry',
      'skip',
      'rollback',
      'cancel',
      'hash-password',
      'doctor',
    ]) {
      const r = await run([c, '--help']);
      assert.equal(r.code, 0, c);
      assert.match(r.stdout, new RegExp(`^Usage: ocp-chatops ${c}`), c);
    }
    const top = await run(['--help']);
    assert.match(top.stdout, /OCP_CHATOPS_URL/);
  });

  test('an unknown command, an unknown option, a missing argument: exit 2 saying so', async () => {
    assert.deepEqual((await run(['reboot'])).code, 2);
    const opt = await run(['list', '--colour']);
    assert.equal(opt.code, 2);
    assert.match(opt.stderr, /Unknown option '--colour'/);
    assert.equal((await run(['retry'])).code, 2);
  });

  test('hash-password: no password, no hash', async () => {
    const r = await run(['hash-password'], '');
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
  });
});
