/**
 * The peers of the fleet benchmark, run against the same simulated hosts as
 * ours: parallel-ssh (one SSH session per host running the five step scripts
 * one after the other) and ansible-playbook (the five scripts as `shell`
 * tasks; forks 50, pipelining on, strategy free, no fact gathering). Both
 * check host keys against a known_hosts file written for the fleet.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../src/config.js';
import { shellQuote } from '../../src/core/runbooks/runbook.js';
import { processesMatching, regexEscape } from '../../test/helpers/sim-agent.js';
import type { SimHost, SshdHandle } from '../../test/helpers/sshd.js';
import { restartScripts, restartScriptsWithHomeVariable } from './host-work.js';

export const PEER_FORKS = 50;

export interface PeerRun {
  tool: 'parallel-ssh' | 'ansible';
  wallMs: number;
  exitCode: number | null;
  /** last lines of the tool's output */
  tail: string;
}

/**
 * An ssh_config every peer uses: the fleet's port, user, key and known_hosts;
 * no prompts. With `jump`, every host is reached through that bastion as
 * OpenSSH does it (ProxyJump: a connection to the bastion per host session).
 */
export function writeSshConfig(dir: string, sshd: SshdHandle, jump?: { address: string; port: number }): string {
  const host = sshd.hosts[0] as SimHost;
  const path = join(dir, 'ssh_config');
  const common = [
    `  User ${host.username}`,
    `  IdentityFile ${sshd.privateKeyPath}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${sshd.knownHostsPath}`,
    '  GlobalKnownHostsFile /dev/null',
    '  StrictHostKeyChecking yes',
    '  BatchMode yes',
    '  LogLevel ERROR',
  ];
  writeFileSync(
    path,
    [
      ...(jump ? [`Host ${jump.address}`, `  Port ${jump.port}`, '  ProxyJump none', ...common] : []),
      `Host ${jump ? '*' : '127.0.0.*'}`,
      `  Port ${host.port}`,
      ...(jump ? [`  ProxyJump ${host.username}@${jump.address}:${jump.port}`] : []),
      ...common,
      '',
    ].join('\n'),
  );
  return path;
}

function runTool(
  tool: PeerRun['tool'],
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<PeerRun> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const keep = (c: Buffer) => {
      out = (out + c.toString()).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const timer = setTimeout(() => {
      out += `\n[bench] ${tool} killed after ${timeoutMs / 1000} s\n`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ tool, wallMs: Date.now() - t0, exitCode: code, tail: out.split('\n').slice(-25).join('\n') });
    });
  });
}

/**
 * parallel-ssh -p 50: one session per host runs the five scripts with `&&`
 * (a failing step stops the host's chain, as in ours). The host finds its
 * agent's home in a file named after the address it was reached on.
 */
export async function runParallelSsh(
  dir: string,
  sshConfig: string,
  hosts: readonly SimHost[],
  config: Config,
  timeoutMs: number,
): Promise<PeerRun> {
  const byAddress = join(dir, 'agent-home-by-address');
  mkdirSync(byAddress, { recursive: true });
  for (const h of hosts) writeFileSync(join(byAddress, h.address), `${h.agentHome}\n`);
  const hostsFile = join(dir, 'pssh-hosts');
  writeFileSync(hostsFile, hosts.map((h) => `${h.address}\n`).join(''));
  const steps = restartScriptsWithHomeVariable(config).map((s) => `sh -c ${shellQuote(s.script)}`);
  // SSH_CONNECTION = "client-ip client-port server-ip server-port"
  const command = ['set -- $SSH_CONNECTION', `read -r A < ${shellQuote(byAddress)}/"$3"`, 'export A', ...steps].join(
    ' && ',
  );
  const outDir = join(dir, `pssh-out-${Date.now()}`);
  return runTool(
    'parallel-ssh',
    'parallel-ssh',
    [
      '-p',
      String(PEER_FORKS),
      '-t',
      '0',
      '-h',
      hostsFile,
      '-x',
      `-F ${sshConfig}`,
      '-o',
      join(outDir, 'out'),
      '-e',
      join(outDir, 'err'),
      command,
    ],
    process.env,
    timeoutMs,
  );
}

/**
 * ansible-playbook: an inventory with each host's five rendered scripts
 * (`!unsafe`: never templated), a playbook of five `shell` tasks.
 */
export async function runAnsible(
  dir: string,
  sshConfig: string,
  hosts: readonly SimHost[],
  config: Config,
  timeoutMs: number,
): Promise<PeerRun> {
  const ans = join(dir, 'ansible');
  const controlDir = join(ans, 'cp');
  for (const d of [ans, controlDir, join(ans, 'local-tmp')]) mkdirSync(d, { recursive: true });
  const names = restartScripts(config, '/x').map((s) => s.name);
  const inventory = [
    'all:',
    '  children:',
    '    fleet:',
    '      hosts:',
    ...hosts.flatMap((h) => [
      `        ${h.name}:`,
      `          ansible_host: ${h.address}`,
      `          ansible_port: ${h.port}`,
      `          ansible_user: ${h.username}`,
      ...restartScripts(config, h.agentHome).map(
        (s, j) => `          ocp_step_${j}: !unsafe ${JSON.stringify(s.script)}`,
      ),
    ]),
    '',
  ].join('\n');
  writeFileSync(join(ans, 'inventory.yml'), inventory);
  const playbook = [
    '- hosts: fleet',
    '  gather_facts: false',
    '  tasks:',
    ...names.flatMap((name, j) => [`    - name: ${JSON.stringify(name)}`, `      shell: "{{ ocp_step_${j} }}"`]),
    '',
  ].join('\n');
  writeFileSync(join(ans, 'restart.yml'), playbook);
  writeFileSync(
    join(ans, 'ansible.cfg'),
    [
      '[defaults]',
      `inventory = ${join(ans, 'inventory.yml')}`,
      `forks = ${PEER_FORKS}`,
      'strategy = free',
      'gathering = explicit',
      'host_key_checking = True',
      'interpreter_python = /usr/bin/python3',
      'retry_files_enabled = False',
      'deprecation_warnings = False',
      `local_tmp = ${join(ans, 'local-tmp')}`,
      '',
      '[ssh_connection]',
      'pipelining = True',
      `ssh_args = -F ${sshConfig} -o ControlMaster=auto -o ControlPersist=60s`,
      `control_path_dir = ${controlDir}`,
      '',
    ].join('\n'),
  );
  const env = { ...process.env, ANSIBLE_CONFIG: join(ans, 'ansible.cfg'), ANSIBLE_NOCOLOR: '1', ANSIBLE_HOME: ans };
  try {
    return await runTool('ansible', 'ansible-playbook', [join(ans, 'restart.yml')], env, timeoutMs);
  } finally {
    // ControlPersist leaves a master per host behind: end them (ours, by pid).
    for (const pid of processesMatching(regexEscape(controlDir))) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone already
      }
    }
  }
}
