/**
 * Shared by the benchmark parts: statistics, the machine's description, the
 * tools a part needs (with the command that installs them), and reading the
 * JSON lines a child process prints.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { delimiter, join } from 'node:path';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)] as number;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

export interface Summary {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
}

export function summarize(xs: readonly number[]): Summary {
  const s = [...xs].filter(Number.isFinite).sort((a, b) => a - b);
  return {
    n: s.length,
    median: median(s),
    p99: percentile(s, 99),
    min: s[0] ?? Number.NaN,
    max: s.at(-1) ?? Number.NaN,
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Absolute path of an executable on PATH or in the sbin dirs, else undefined. */
export function which(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const d of dirs) if (d && existsSync(join(d, name))) return join(d, name);
  return undefined;
}

/** Debian package of each executable a part needs. */
export const PACKAGES: Record<string, string> = {
  'nats-server': 'nats-server',
  sshd: 'openssh-server',
  ssh: 'openssh-client',
  'ssh-keygen': 'openssh-client',
  'ansible-playbook': 'ansible',
  'parallel-ssh': 'pssh',
};

/** Throws with the exact install command when an executable is missing. */
export function requireTools(names: readonly string[]): void {
  const missing = names.filter((n) => !which(n));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((m) => PACKAGES[m] ?? m))];
  const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
  throw new Error(
    `the benchmark needs ${missing.join(', ')}; install them and run it again:\n` +
      `  ${sudo}apt-get update && ${sudo}apt-get install -y ${pkgs.join(' ')}`,
  );
}

function firstLine(cmd: string, args: string[]): string {
  // `ssh -V` and `sshd -V` print their version on stderr.
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return `${r.stdout ?? ''}\n${r.stderr ?? ''}`.trim().split('\n')[0] || 'unknown';
}

export interface Machine {
  cpuModel: string;
  cores: number;
  memGiB: number;
  kernel: string;
  node: string;
  natsServer: string;
  openssh: string;
  ansible: string;
  pssh: string;
  loadavgAtStart: number[];
}

export function machine(): Machine {
  const c = cpus();
  const tool = (name: string, args: string[]) => {
    const path = which(name);
    return path ? firstLine(path, args) : 'not installed';
  };
  let distro = '';
  try {
    distro = /PRETTY_NAME="([^"]+)"/.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    // not Linux-like
  }
  return {
    cpuModel: c[0]?.model.trim() ?? '?',
    cores: c.length,
    memGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    kernel: `Linux ${release()}${distro ? ` (${distro})` : ''}`,
    node: process.version,
    natsServer: tool('nats-server', ['--version']),
    openssh: tool('ssh', ['-V']),
    ansible: tool('ansible-playbook', ['--version']),
    pssh: (() => {
      const v = tool('parallel-ssh', ['--version']);
      return v === 'not installed' ? v : `parallel-ssh ${v}`;
    })(),
    loadavgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** JSON lines with a "bench" key in a child's output. */
export function benchLines(output: string): Array<Record<string, unknown> & { bench: string }> {
  const found: Array<Record<string, unknown> & { bench: string }> = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{"bench"')) continue;
    try {
      found.push(JSON.parse(line) as Record<string, unknown> & { bench: string });
    } catch {
      // a line cut by the output tail
    }
  }
  return found;
}

/** Resident set of a process now and its peak (kB → MiB), from /proc. */
export function rssOf(pid: number): { rssMiB: number; hwmMiB: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssMiB: kb('VmRSS') / 1024, hwmMiB: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

export const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '–');
export const f2 = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : '–');

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; NaN when unknown. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return Number.NaN;
  }
}
