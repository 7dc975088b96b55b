// Test helper: real OpenSSH servers standing in for a fleet of OceanBase hosts.
//
// Every simulated host is its own loopback address (127.0.0.10, .11, …) on one
// shared port, so the product sees distinct host:port targets with distinct
// known_hosts entries, while all of them run as the current user on this
// machine, each with its own simulated agent directory.
//
// With `bashrc`, the hosts' user gets a ~/.bashrc like a real one that runs a
// pyenv/conda/nvm init: slow, chatty on stdout, exporting variables and
// prepending to PATH. Each run is counted in a file, with the connection it
// ran for, so a test can see how often the login shell's start-up ran.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { captureTail, freePort, killOnExit, waitForExit, waitForTcp } from './nats-server.js';
import { installSimAgent, startSimAgentAsync, stopSimAgent } from './sim-agent.js';

export interface SimHost {
  id: number;
  name: string;
  address: string;
  port: number;
  username: string;
  agentHome: string;
}

export interface SshdHandle {
  hosts: SimHost[];
  dir: string;
  privateKeyPath: string;
  knownHostsPath: string;
  /** "ssh-ed25519 AAAA…" of the server (shared by all hosts) */
  hostPublicKey: string;
  /** Every run of the simulated ~/.bashrc so far, oldest first ([] without `bashrc`). */
  bashrcRuns(): BashrcRun[];
  /** The listening sshd processes (each connection is served by a child of one). */
  serverPids(): number[];
  stop(): Promise<void>;
}

export interface BashrcOptions {
  /** How long each run takes, ms (default 150: a pyenv or conda init). */
  sleepMs?: number;
  /** The line it prints on stdout at each run (default BASHRC_CHATTER); '' prints nothing. */
  chatter?: string;
}

export interface SshdOptions {
  hosts: number;
  firstId?: number;
  /** Give the hosts' user a slow, chatty, counted ~/.bashrc (the user's login shell must be bash). */
  bashrc?: BashrcOptions;
  /** The hosts live in a network of their own (see netns.ts) rather than on loopback. */
  network?: SshdNetwork;
  /** Let this existing client key log in rather than a new one (hosts and their bastion share it). */
  clientKeyPath?: string;
}

/** Where hosts live when not on loopback: a network namespace reached only as its test set it up. */
export interface SshdNetwork {
  /** One per host, in order. */
  addresses: string[];
  port: number;
  /** Runs a command inside the namespace: `ip netns exec <name>`. */
  exec: string[];
}

/** One run of the simulated ~/.bashrc. */
export interface BashrcRun {
  /** pid of the bash that ran it */
  pid: number;
  /** SHLVL as that bash set it */
  shlvl: string;
  /**
   * The TCP connection: SSH_CONNECTION ("client-ip client-port server-ip
   * server-port") and the pid of the sshd process serving it (its sessions'
   * parent), since a client port is used again over many connections.
   */
  connection: string;
}

/** What the simulated ~/.bashrc prints on stdout at each run. */
export const BASHRC_CHATTER = 'Welcome! conda base environment activated (simulated ~/.bashrc)';
/** A variable the simulated ~/.bashrc exports, as an init script does (pyenv's PYENV_ROOT, say). */
export const BASHRC_VARIABLE = 'OCP_SIM_BASHRC_ROOT';

const SSHD = '/usr/sbin/sshd';
// sshd cannot listen on more than 16 sockets (MAX_LISTEN_SOCKS in OpenSSH).
const MAX_LISTEN_PER_SSHD = 16;
const FIRST_OCTET = 10;

function keygen(path: string): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'ocp-chatops-test', '-f', path], {
    stdio: 'ignore',
  });
  // "ssh-ed25519 AAAA… comment" -> drop the comment.
  return readFileSync(`${path}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
}

function sshdConfig(dir: string, index: number, listen: string[]): string {
  return [
    ...listen.map((a) => `ListenAddress ${a}`),
    `HostKey ${join(dir, 'host_ed25519')}`,
    `PidFile ${join(dir, `sshd-${index}.pid`)}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'UsePAM no',
    'PermitRootLogin prohibit-password',
    // The temp dir is not a "safe" home-style path; don't let sshd reject the key over modes.
    'StrictModes no',
    // Tests open many concurrent connections/sessions; the defaults (10:30:100, 10) would drop them.
    'MaxStartups 1000',
    'MaxSessions 1000',
    'LogLevel ERROR',
    // Sessions get a HOME of their own: bash run by sshd reads ~/.bashrc, and the
    // developer's (pyenv init, whose rehash lock a killed session can leave
    // behind, stalling every later shell for 60 s) has no place on a simulated host.
    `SetEnv HOME=${join(dir, 'home')}`,
    '',
  ].join('\n');
}

/** Single-quote for sh. */
function q(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * A ~/.bashrc doing what a heavy real one does when bash runs it for sshd
 * (Debian's bash does for `bash -c` when SSH_CLIENT is set and SHLVL < 2):
 * count itself first, prepend to PATH and export a variable (each run again,
 * as `eval "$(pyenv init -)"` does), take its time, say something on stdout.
 */
function bashrcScript(home: string, runsLog: string, opts: BashrcOptions): string {
  const seconds = ((opts.sleepMs ?? 150) / 1000).toFixed(3);
  const chatter = opts.chatter ?? BASHRC_CHATTER;
  return [
    '# Simulated heavy ~/.bashrc, written by test/helpers/sshd.ts.',
    `printf '%s %s %s %s\\n' "$$" "\${SHLVL-}" "$PPID" "\${SSH_CONNECTION-}" >> ${q(runsLog)}`,
    `export ${BASHRC_VARIABLE}=${q(join(home, '.sim-env'))}`,
    `export PATH="$${BASHRC_VARIABLE}/shims:$PATH"`,
    `sleep ${seconds}`,
    ...(chatter ? [`echo ${q(chatter)}`] : []),
    '',
  ].join('\n');
}

function readBashrcRuns(path: string): BashrcRun[] {
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((line) => {
      const [pid, shlvl, sshd, ...conn] = line.split(' ');
      // A client port comes round again over hundreds of connections (the soak saw it):
      // the sshd process serving the connection tells two apart.
      return { pid: Number(pid), shlvl: shlvl ?? '', connection: `${conn.join(' ')} sshd ${sshd}` };
    });
}

/** Until an sshd in a namespace listens on `port` there (the test cannot connect to it from outside). */
async function waitListening(net: SshdNetwork, port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  const [cmd, ...args] = [...net.exec, 'ss', '-Hltn', `sport = :${port}`];
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; ) {
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(`sshd in ${net.exec.join(' ')} exited before listening\nstderr:\n${stderr()}`);
    if (execFileSync(cmd as string, args, { encoding: 'utf8' }).trim() !== '') return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd in ${net.exec.join(' ')} did not listen on port ${port} within 10 s\nstderr:\n${stderr()}`);
}

export async function startSshd(opts: SshdOptions): Promise<SshdHandle> {
  const firstId = opts.firstId ?? 101;
  const net = opts.network;
  if (opts.hosts < 1 || opts.hosts > (net ? net.addresses.length : 255 - FIRST_OCTET))
    throw new Error(`unsupported host count ${opts.hosts}`);

  const dir = await mkdtemp(join(tmpdir(), 'ocp-sshd-'));
  const children: ChildProcess[] = [];
  const hosts: SimHost[] = [];

  // If the test process dies without stop(), the sshds and the setsid'd agent
  // processes (outside our process group) would outlive it: kill them on exit.
  const unregister = killOnExit(() => {
    for (const child of children) child.kill('SIGKILL');
    for (const host of hosts) stopSimAgent(host.agentHome);
    rmSync(dir, { recursive: true, force: true });
  });

  const cleanup = async (): Promise<void> => {
    unregister();
    for (const child of children) child.kill('SIGKILL');
    await Promise.all(children.map(waitForExit));
    for (const host of hosts) stopSimAgent(host.agentHome);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    const hostKey = join(dir, 'host_ed25519');
    const clientKey = join(dir, 'client_ed25519');
    const hostPublicKey = keygen(hostKey);
    const clientPublicKey = opts.clientKeyPath
      ? readFileSync(`${opts.clientKeyPath}.pub`, 'utf8').trim()
      : keygen(clientKey);
    writeFileSync(join(dir, 'authorized_keys'), `${clientPublicKey}\n`);

    const addresses = net
      ? net.addresses.slice(0, opts.hosts)
      : Array.from({ length: opts.hosts }, (_, i) => `127.0.0.${FIRST_OCTET + i}`);
    const port = net ? net.port : await freePort(addresses);
    const username = userInfo().username;

    const knownHostsPath = join(dir, 'known_hosts');
    // As OpenSSH writes them: the bare address for port 22.
    const name = (a: string) => (port === 22 ? a : `[${a}]:${port}`);
    writeFileSync(knownHostsPath, addresses.map((a) => `${name(a)} ${hostPublicKey}\n`).join(''));

    addresses.forEach((address, i) => {
      const id = firstId + i;
      const agentHome = join(dir, `host${id}`, 'ocp_agent');
      hosts.push({ id, name: `sim-host-${id}`, address, port, username, agentHome });
      installSimAgent(agentHome);
    });
    // Every host begins with its agent running (and an empty calls.log).
    await Promise.all(hosts.map((h) => startSimAgentAsync(h.agentHome)));

    const home = join(dir, 'home');
    mkdirSync(home, { recursive: true });
    const runsLog = join(dir, 'bashrc-runs.log');
    if (opts.bashrc) {
      const shell = userInfo().shell ?? '';
      if (!shell.endsWith('/bash'))
        throw new Error(`a simulated ~/.bashrc needs bash as the login shell, not ${shell}`);
      writeFileSync(join(home, '.bashrc'), bashrcScript(home, runsLog, opts.bashrc));
    }
    // sshd refuses to start without its privilege-separation directory.
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });

    const waits: Array<Promise<void>> = [];
    if (net) {
      // One sshd for the whole namespace, on every address of it; ready when it listens there.
      const config = join(dir, 'sshd_config-0');
      writeFileSync(config, sshdConfig(dir, 0, [`0.0.0.0:${port}`]));
      const [cmd, ...args] = [...net.exec, SSHD, '-D', '-e', '-f', config];
      const child = spawn(cmd as string, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      children.push(child);
      waits.push(waitListening(net, port, child, captureTail(child.stderr)));
    }
    for (let i = 0; !net && i * MAX_LISTEN_PER_SSHD < addresses.length; i++) {
      const group = addresses.slice(i * MAX_LISTEN_PER_SSHD, (i + 1) * MAX_LISTEN_PER_SSHD);
      const config = join(dir, `sshd_config-${i}`);
      writeFileSync(
        config,
        sshdConfig(
          dir,
          i,
          group.map((a) => `${a}:${port}`),
        ),
      );
      // Absolute path: sshd re-execs itself and refuses a relative argv[0].
      const child = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      children.push(child);
      const stderr = captureTail(child.stderr);
      waits.push(waitForTcp({ hosts: group, port, child, stderr, what: `sshd #${i}` }));
    }
    await Promise.all(waits);

    return {
      hosts,
      dir,
      privateKeyPath: opts.clientKeyPath ?? clientKey,
      knownHostsPath,
      hostPublicKey,
      bashrcRuns: () => readBashrcRuns(runsLog),
      serverPids: () => children.map((c) => c.pid).filter((pid): pid is number => pid !== undefined),
      stop: cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
