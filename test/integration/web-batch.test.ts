/**
 * The web page of a batch (SPEC §12): one cell per host, coloured by its
 * chain's state and named in words, a legend that counts them, a host's chain
 * on click, all following the batch live. A 200-host inventory run by a step
 * runner that never touches SSH (as batch-chains.test.ts does): some hosts'
 * steps wait until released, some fail their "Restart pos proxy".
 *
 * With UI_SCREENSHOTS=<dir> set, it saves the batch page there.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import type { StepResult, StepRunner, StepSpec } from '../../src/executor/ports.js';
import type { Service } from '../../src/service.js';
import { launchBrowser, newContext, signInAt } from '../helpers/browser.js';
import { apiClient } from '../helpers/http.js';
import { type Stack, startStack } from '../helpers/stack.js';

const HOSTS = 200;
const FIRST_ID = 1001;
const SHOTS = process.env.UI_SCREENSHOTS;

/** Steps end at once; those on `held` hosts wait for release(); "Restart pos proxy" fails on `failing` hosts. */
function gatedRunner(held: Set<number>, failing: Set<number>): StepRunner & { release(): void } {
  let open: () => void = () => undefined;
  const gate = new Promise<void>((r) => {
    open = r;
  });
  return {
    release: () => open(),
    async run(spec: StepSpec): Promise<StepResult> {
      if (held.has(spec.target.hostId)) await gate;
      if (failing.has(spec.target.hostId) && spec.script.includes('restart pos_proxy')) {
        return {
          end: 'exited',
          exitCode: 3,
          output: `pos_proxy would not restart on ${spec.target.hostId}`,
          truncated: false,
        };
      }
      return { end: 'exited', exitCode: 0, output: '', truncated: false };
    },
    async exec() {
      return { exitCode: 0, stdout: '', stderr: '' };
    },
    async cancel() {},
    async close() {},
  };
}

/** A chain's one state, as the page names it (web/task-model.js). */
function chainState(subtasks: OcpTask['subtasks']): string {
  const has = (s: string) => subtasks.some((x) => x.status === s);
  if (has('FAILED')) return 'FAILED';
  if (has('CANCELING')) return 'CANCELING';
  if (has('RUNNING')) return 'RUNNING';
  if (subtasks.every((x) => x.status === 'SUCCESSFUL')) return 'SUCCESSFUL';
  if (has('READY')) return 'READY';
  if (has('SUCCESSFUL')) return 'RUNNING';
  return 'PENDING';
}

describe('the web page of a 200-host batch', () => {
  const ids = Array.from({ length: HOSTS }, (_, k) => FIRST_ID + k);
  const held = new Set(ids.slice(10, 20));
  const failing = new Set(ids.slice(50, 55));
  const runner = gatedRunner(held, failing);
  let stack: Stack;
  let svc: Service;
  let api: ReturnType<typeof apiClient>;
  let browser: Browser;

  before(async () => {
    stack = await startStack({
      hosts: 1,
      maxParallel: HOSTS,
      executorConcurrency: 50,
      editConfig: (file) => ({
        ...file,
        hosts: ids.map((id, k) => ({ id, name: `fleet-${k + 1}`, address: '127.0.0.1' })),
      }),
    });
    svc = await stack.startService(undefined, runner);
    api = apiClient(svc.httpPort as number);
    browser = await launchBrowser();
  });
  after(async () => {
    runner.release();
    await browser?.close();
    await stack?.stop();
  });

  it('draws one cell per host named by its state, shows a host’s chain on click, and follows the batch to its end', async () => {
    const a = await api<OcpTask>('POST', '/compute/hosts/batchRestartAgents', { body: { hostIds: ids } });
    assert.equal(a.status, 200, JSON.stringify(a.body).slice(0, 300));
    const taskId = a.body.data.id;
    const context = await newContext(browser);
    const page = await context.newPage();
    await signInAt(page, `http://127.0.0.1:${svc.httpPort}`, `/ui/tasks/${taskId}`, 'viewer');

    // Live: every host but the held ones comes to rest (5 failed), the held ones run.
    await page.locator('#batch .legend [data-state=SUCCESSFUL]', { hasText: 'SUCCESSFUL 185' }).waitFor();
    await page.locator('#batch .legend [data-state=FAILED]', { hasText: 'FAILED 5' }).waitFor();
    await page.locator('#batch .legend [data-state=RUNNING]', { hasText: 'RUNNING 10' }).waitFor();
    const cells = await page.$$eval('#batch .cell', (els) =>
      els.map((e) => ({
        host: e.getAttribute('data-host-id'),
        state: e.getAttribute('data-state'),
        label: e.getAttribute('aria-label'),
      })),
    );
    assert.equal(cells.length, HOSTS);
    // The grid says what the API says, host by host, in words.
    const full = (await api<OcpTask>('GET', `/api/v2/tasks/instances/${taskId}`)).body.data;
    const hostIds = full.context.listMap.host_ids ?? [];
    cells.forEach((c, i) => {
      const state = chainState(full.subtasks.filter((s) => s.parallelIdx === i));
      assert.equal(c.host, hostIds[i]);
      assert.equal(c.state, state, `host ${c.host}`);
      assert.equal(c.label, `host ${hostIds[i]} (fleet-${i + 1}): ${state}`);
    });

    // A failed host's chain, and its failed step's output.
    const failedHost = ids[52] as number;
    await page.locator(`#batch .cell[data-host-id="${failedHost}"]`).click();
    await page.locator('#dag h2', { hasText: `Host ${failedHost}` }).waitFor();
    const nodes = await page.$$eval('#dag g.node', (els) =>
      els.map((e) => `${e.getAttribute('data-name')}: ${e.getAttribute('data-state')}`),
    );
    assert.deepEqual(nodes, [
      'Prepare restart OCP agent: SUCCESSFUL',
      'Restart pos proxy: FAILED',
      'Stop all OCP agent processes: PENDING',
      'Start all OCP agent processes: PENDING',
      'Finish OCP agent operation: PENDING',
    ]);
    await page.locator('#dag g.node[data-name="Restart pos proxy"]').click();
    await page.locator('#output', { hasText: `pos_proxy would not restart on ${failedHost}` }).waitFor();
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'ui-batch.png'), fullPage: true });

    // The held hosts go on and succeed; the batch ends FAILED (5 hosts failed), shown without reloading.
    runner.release();
    await page.locator('#batch .legend [data-state=SUCCESSFUL]', { hasText: 'SUCCESSFUL 195' }).waitFor();
    await page.locator('#head [data-fact=Status] [data-state=FAILED]').waitFor();
    assert.equal(await page.locator('#batch .legend [data-state=RUNNING]').count(), 0);
    await context.close();
  });
});
