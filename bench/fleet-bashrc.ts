/**
 * `npx tsx bench/fleet-bashrc.ts [--hosts 50] [--runs 3]`: the fleet restart
 * of bench/fleet.ts on hosts whose user has a slow, chatty ~/.bashrc (150 ms,
 * prints a line: a pyenv or conda init), ours against parallel-ssh in the
 * same run, each `--runs` times; prints both medians, their ratio and how
 * often each tool ran ~/.bashrc. Issue 10 item 1: before steps ran in the
 * environment of a plain ssh command, every daemon the agent control script
 * started sourced ~/.bashrc again, and 8 of 50 hosts timed out.
 * Ansible is left out: with it a run takes minutes more and measures no
 * other question. Never part of npm test; writes nothing under docs/.
 */
import { benchFleet } from './fleet.js';
import { machine, requireTools } from './lib/common.js';

function args(): { hosts: number; runs: number } {
  const argv = process.argv.slice(2);
  const o = { hosts: 50, runs: 3 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = Number(argv[++i]);
    if ((a !== '--hosts' && a !== '--runs') || !Number.isInteger(v) || v < 1) {
      console.error('usage: npx tsx bench/fleet-bashrc.ts [--hosts N (1..245)] [--runs N]');
      process.exit(2);
    }
    if (a === '--hosts') o.hosts = Math.min(v, 245);
    else o.runs = v;
  }
  return o;
}

const { hosts, runs } = args();
requireTools(['nats-server', 'sshd', 'ssh-keygen', 'ssh', 'parallel-ssh']);
const m = machine();
console.log(
  `machine: ${m.cpuModel}, ${m.cores} cores, ${m.openssh}, ${m.pssh}; load average ${m.loadavgAtStart.join(' ')}`,
);
const r = await benchFleet({ hosts, runs, peers: true, ansible: false, bashrc: true, peerRuns: runs });
const s = (ms: number | undefined) => (ms !== undefined && Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : '–');
console.log('');
for (const run of r.runs) {
  console.log(
    `${run.tool} run ${run.run}: ${s(run.wallMs)}, ${run.hostsOk}/${hosts} hosts ok${run.ok ? '' : ` — FAILED: ${run.failure}`}`,
  );
}
for (const note of r.notes) console.log(`note: ${note}`);
const pssh = r.psshMedianMs ?? Number.NaN;
console.log('');
console.log(`${hosts} hosts with a slow, chatty ~/.bashrc (${runs} runs each):`);
console.log(`  ours median         ${s(r.oursMedianMs)}`);
console.log(`  parallel-ssh median ${s(pssh)}`);
console.log(`  ratio ours / parallel-ssh ${(r.oursMedianMs / pssh).toFixed(2)}`);
process.exit(r.runs.every((x) => x.ok) ? 0 : 1);
