import { startStack } from '../test/helpers/stack.ts';
import { createTask } from '../src/tasks/create-task.ts';
const N = Number(process.env.N ?? 2000);
const OK = { end: 'exited' as const, exitCode: 0, output: '', truncated: false };
const runner = { async run() { return OK; }, async exec() { return { exitCode: 0, stdout: '', stderr: '' }; }, async cancel() {}, async close() {} };
const stack = await startStack({ hosts: 1, executorConcurrency: 64, editConfig: (f) => ({ ...f, hosts: Array.from({ length: N }, (_, k) => ({ id: 1001 + k, name: `f${k}`, address: '127.0.0.1' })) }) });
const svc = await stack.startService('api');
const ex = await stack.startService('executor', runner);
const t0 = Date.now();
const r = await createTask(svc.deps, { operation: 'restart', hostIds: Array.from({ length: N }, (_, k) => 1001 + k), creator: 'x', requestId: 'r1', traceId: '0123456789abcdef' });
console.log('create ms', Date.now() - t0);
for (;;) { const s = await svc.deps.store.summary(r.record.task.id); if (s?.status !== 'RUNNING') { console.log('done', s?.status, Date.now() - t0); break; } await new Promise((x) => setTimeout(x, 200)); }
await ex.stop(); await svc.stop(); await stack.stop(); process.exit(0);
