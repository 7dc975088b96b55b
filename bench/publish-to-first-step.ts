/**
 * Latency from a published restart event to the first subtask beginning on the
 * host (the simulated agentctl's first `begin` line), over 20 runs, against a
 * real nats-server and a real sshd. Baseline, in the same process: a bare SSH
 * exec of `ocp_agentctl status` on an open connection, from call to `begin`.
 *
 *   npm run bench            (or: npx tsx bench/publish-to-first-step.ts --runs 20)
 */
import { NodeSSH } from 'node-ssh';
import { accepted, newRequestId, request } from '../test/helpers/requests.js';
import { readCalls } from '../test/helpers/sim-agent.js';
import { startStack, waitForTask } from '../test/helpers/stack.js';

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 20;

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)] as number;
}

function summary(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return { median: percentile(s, 50), p99: percentile(s, 99), min: s[0] as number, max: s.at(-1) as number };
}

const lastBegin = (agentHome: string) =>
  readCalls(agentHome)
    .filter((c) => c.phase === 'begin')
    .at(-1)?.at ?? 0;

async function waitForBeginAfter(agentHome: string, since: number): Promise<number> {
  for (;;) {
    const at = readCalls(agentHome).find((c) => c.phase === 'begin' && c.at >= since)?.at;
    if (at !== undefined) return at;
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function main(): Promise<void> {
  const stack = await startStack({ hosts: 1, leaseSeconds: 30 });
  const host = stack.sshd.hosts[0]!;
  try {
    await stack.startService();
    const ssh = await new NodeSSH().connect({
      host: host.address,
      port: host.port,
      username: host.username,
      privateKeyPath: stack.sshd.privateKeyPath,
    });

    const ours: number[] = [];
    const baseline: number[] = [];
    for (let i = 0; i < RUNS + 1; i++) {
      // Baseline: the floor for "a command begins on the host" from this process.
      const b0 = Date.now();
      await ssh.execCommand(`${host.agentHome}/bin/ocp_agentctl status`);
      const bAt = await waitForBeginAfter(host.agentHome, b0);

      const t0 = Date.now();
      const ev = accepted(
        await request(stack.nc, stack.js, 'restart', { hostId: host.id, creator: 'bench', requestId: newRequestId() }),
      );
      const at = await waitForBeginAfter(host.agentHome, Math.max(t0, lastBegin(host.agentHome) + 1));
      await waitForTask(stack.nc, ev.taskId, undefined, 60_000);
      if (i === 0) continue; // warm-up: first connection, JIT
      ours.push(at - t0);
      baseline.push(bAt - b0);
    }
    ssh.dispose();
    const o = summary(ours);
    const b = summary(baseline);
    console.log(`runs: ${RUNS} (after one warm-up), one host behind sshd on loopback`);
    console.log('| measure | median ms | p99 ms | min | max |');
    console.log('|---|---|---|---|---|');
    console.log(`| published event → first step begins on host | ${o.median} | ${o.p99} | ${o.min} | ${o.max} |`);
    console.log(`| baseline: bare SSH exec → begins on host | ${b.median} | ${b.p99} | ${b.min} | ${b.max} |`);
    console.log(`ratio of medians (ours / bare SSH exec): ${(o.median / b.median).toFixed(2)}`);
  } finally {
    await stack.stop();
  }
}

await main();
