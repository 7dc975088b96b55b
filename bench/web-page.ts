/**
 * The web page's two figures (issue 15; SPEC §13), never part of npm test:
 *
 *   1. the task page of a 5,000-host batch, from navigation until the grid
 *      shows the states the API reports (every cell SUCCESSFUL), in headless
 *      Chromium on this machine: target ≤ 1 s (median of --runs);
 *   2. a 5,000-host batch with instant steps, run alone and then with 100
 *      live followers (SSE clients reading its event stream, not browsers):
 *      target ≤ 10% longer.
 *
 *   npx tsx bench/web-page.ts [--hosts 5000] [--followers 100] [--runs 5]
 *
 * Not wired into run-all.ts yet: it prints its figures as JSON.
 */
import { parseArgs } from 'node:util';
import type { OcpTask } from '../src/contracts/ocp-task.js';
import type { StepRunner } from '../src/executor/ports.js';
import { launchBrowser, newContext, signInAt } from '../test/helpers/browser.js';
import { apiClient } from '../test/helpers/http.js';
import { startStack, waitFor } from '../test/helpers/stack.js';

const { values } = parseArgs({
  options: {
    hosts: { type: 'string', default: '5000' },
    followers: { type: 'string', default: '100' },
    runs: { type: 'string', default: '5' },
  },
});
const HOSTS = Number(values.hosts);
const FOLLOWERS = Number(values.followers);
const RUNS = Number(values.runs);

const instant: StepRunner = {
  run: async () => ({ end: 'exited', exitCode: 0, output: '', truncated: false }),
  exec: async () => ({ exitCode: 0, stdout: '', stderr: '' }),
  cancel: async () => undefined,
  close: async () => undefined,
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

const ids = Array.from({ length: HOSTS }, (_, k) => 1001 + k);
const stack = await startStack({
  hosts: 1,
  maxParallel: 200,
  executorConcurrency: 200,
  leaseSeconds: 10,
  editConfig: (file) => ({
    ...file,
    hosts: ids.map((id, k) => ({ id, name: `fleet-${k + 1}`, address: '127.0.0.1' })),
  }),
});
try {
  const svc = await stack.startService(undefined, instant);
  const api = apiClient(svc.httpPort as number);
  const base = `http://127.0.0.1:${svc.httpPort}`;

  /** Start a batch of every host and wait for its end; ms from the POST to the end seen. */
  const runBatch = async (): Promise<{ id: number; ms: number }> => {
    const t0 = performance.now();
    const a = await api<OcpTask>('POST', '/compute/hosts/batchRestartAgents', { body: { hostIds: ids } });
    if (a.status !== 200) throw new Error(JSON.stringify(a.body).slice(0, 300));
    const id = a.body.data.id;
    await waitFor(
      `batch ${id} ends`,
      async () => {
        const r = await api<OcpTask>('GET', `/api/v2/tasks/instances/${id}?subtasks=false`);
        return r.body.data.status === 'RUNNING' ? undefined : true;
      },
      600_000,
    );
    return { id, ms: performance.now() - t0 };
  };

  // 2. Run time alone, then with followers on the batch's events.
  const alone = await runBatch();
  const signIn = await fetch(`${base}/ui/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'viewer', password: 'viewer-secret-3' }),
  });
  const cookie = (signIn.headers.get('set-cookie') ?? '').split(';')[0] as string;
  const t0 = performance.now();
  const a = await api<OcpTask>('POST', '/compute/hosts/batchRestartAgents', { body: { hostIds: ids } });
  const followedId = a.body.data.id;
  const controllers = Array.from({ length: FOLLOWERS }, () => new AbortController());
  let bytes = 0;
  const followers = controllers.map(async (c) => {
    const res = await fetch(`${base}/ui/api/tasks/${followedId}/events`, { headers: { cookie }, signal: c.signal });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        bytes += value.length;
      }
    } catch {
      // aborted
    }
  });
  await waitFor(
    `batch ${followedId} ends`,
    async () => {
      const r = await api<OcpTask>('GET', `/api/v2/tasks/instances/${followedId}?subtasks=false`);
      return r.body.data.status === 'RUNNING' ? undefined : true;
    },
    600_000,
  );
  const followedMs = performance.now() - t0;
  for (const c of controllers) c.abort();
  await Promise.allSettled(followers);

  // 1. The page of the finished batch, until every cell shows SUCCESSFUL.
  const browser = await launchBrowser();
  const context = await newContext(browser);
  const page = await context.newPage();
  await signInAt(page, base, '/ui/', 'viewer');
  const loads: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    await page.goto(`${base}/ui/tasks/${alone.id}`);
    await page.waitForFunction(
      (n) => document.querySelectorAll('#batch .cell[data-state=SUCCESSFUL]').length === n,
      HOSTS,
      { timeout: 60_000, polling: 'raf' },
    );
    loads.push(performance.now() - start);
  }
  await browser.close();

  console.log(
    JSON.stringify(
      {
        hosts: HOSTS,
        pageLoadMs: { median: Math.round(median(loads)), runs: loads.map(Math.round), target: 1000 },
        followers: {
          count: FOLLOWERS,
          aloneMs: Math.round(alone.ms),
          followedMs: Math.round(followedMs),
          addedPercent: Math.round(((followedMs - alone.ms) / alone.ms) * 1000) / 10,
          bytesStreamed: bytes,
          target: '≤ 10%',
        },
      },
      null,
      2,
    ),
  );
} finally {
  await stack.stop();
}
