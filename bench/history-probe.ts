/**
 * The process bench/history.ts measures: it reads the task bucket of
 * NATS_URL through one index and times listings, then prints one JSON line
 * `{"bench":"history",…}` with the figures and its RSS.
 *
 *   BENCH_INDEX   after (the index of src/nats/task-index.ts, keeping every task),
 *                 sweeper (the same, keeping only running tasks: a process that only sweeps),
 *                 before (the summaries index this replaced: bench/lib/summary-index-before.ts)
 *   BENCH_ITER    timed calls per kind of listing
 *   BENCH_HOSTS   comma-separated host ids the host listings and `history` ask about
 *
 * Run with --expose-gc: RSS is read after two collections, so it is what the
 * process holds, not garbage not yet collected.
 */
import { connect } from 'nats';
import pino from 'pino';
import { createTaskIndex } from '../src/nats/task-index.js';
import { createTaskStore } from '../src/nats/task-store.js';
import { renderTaskList } from '../src/slack/render-blocks.js';
import type { TaskDeps } from '../src/tasks/deps.js';
import type { TaskFilter, TaskSummary } from '../src/tasks/ports.js';
import { listTasks } from '../src/tasks/read-tasks.js';
import { createSummaryIndexBefore, listBefore } from './lib/summary-index-before.js';

type Query = TaskFilter & { page: number; size: number };

const kind = process.env.BENCH_INDEX ?? 'after';
const iterations = Number(process.env.BENCH_ITER ?? '200');
const hosts = (process.env.BENCH_HOSTS ?? '1').split(',').map(Number);

const gc = (globalThis as { gc?: () => void }).gc;
function settle(): void {
  gc?.();
  gc?.();
}
const mib = (bytes: number) => bytes / 2 ** 20;

async function main(): Promise<void> {
  const nc = await connect({ servers: process.env.NATS_URL });
  const js = nc.jetstream();
  const kv = await js.views.kv('ocp_tasks', { bindOnly: true });
  settle();
  const rssConnected = process.memoryUsage().rss;

  let list: (q: Query) => Promise<{ contents: TaskSummary[]; total: number }>;
  let close: () => void;
  if (kind === 'before') {
    const index = createSummaryIndexBefore(kv);
    list = (q) => listBefore(index, q);
    close = () => index.close();
  } else {
    const index = createTaskIndex({ kv, keep: kind === 'sweeper' ? 'running' : 'all' });
    const deps = {
      index,
      store: createTaskStore({ kv, js }),
      logger: pino({ level: 'silent' }),
    } as unknown as TaskDeps;
    list = async (q) => {
      const page = await listTasks(deps, q);
      return { contents: page.contents, total: page.page.totalElements };
    };
    close = () => index.close();
  }

  const t0 = performance.now();
  const first = await list({ page: 1, size: 10 });
  const loadMs = performance.now() - t0;
  const total = first.total;
  settle();
  const rssLoaded = process.memoryUsage().rss;
  const lastPage = Math.max(1, Math.ceil(total / 10));

  const kinds: Record<string, (i: number) => Promise<unknown>> = {
    page1: () => list({ page: 1, size: 10 }),
    deepPage: () => list({ page: Math.max(1, Math.floor(lastPage / 2)), size: 10 }),
    lastPage: () => list({ page: lastPage, size: 10 }),
    byStatus: () => list({ status: 'FAILED', page: 1, size: 10 }),
    byStatusDeep: () => list({ status: 'FAILED', page: 50, size: 10 }),
    byHost: (i) => list({ hostId: hosts[i % hosts.length] as number, page: 1, size: 10 }),
    // Slack's `history <host>`: the host's 20 latest, rendered as the answer.
    history: async (i) => {
      const hostId = hosts[i % hosts.length] as number;
      const page = await list({ hostId, page: 1, size: 20 });
      return renderTaskList(`Recent tasks on h${hostId} (${hostId})`, page.contents, { now: new Date() });
    },
  };
  const timings: Record<string, number[]> = {};
  const answers: Record<string, number> = {};
  for (const [name, call] of Object.entries(kinds)) {
    await call(0); // warm
    const ms: number[] = [];
    for (let i = 0; i < iterations; i++) {
      const t = performance.now();
      const r = await call(i);
      ms.push(performance.now() - t);
      if (i === 0) answers[name] = 'contents' in (r as object) ? (r as { contents: unknown[] }).contents.length : 20;
    }
    timings[name] = ms;
  }

  settle();
  const mem = process.memoryUsage();
  console.log(
    JSON.stringify({
      bench: 'history',
      index: kind,
      total,
      loadMs,
      timings,
      answers,
      rssMiB: mib(mem.rss),
      rssConnectedMiB: mib(rssConnected),
      rssLoadedMiB: mib(rssLoaded),
      heapUsedMiB: mib(mem.heapUsed),
      arrayBuffersMiB: mib(mem.arrayBuffers),
    }),
  );
  close();
  await nc.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
