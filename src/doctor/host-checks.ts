/**
 * The doctor's look at one host, through the SSH runner the executors use (so
 * through its bastion, with its known_hosts check, its login, its `become`):
 * one short script, and the runner's failure kind says how far it got.
 */
import type { HostConfig } from '../config.js';
import { shellQuote } from '../core/runbooks/runbook.js';
import { type StepRunner, targetOf } from '../executor/ports.js';
import { asStepError, type StepError, type StepFailureKind } from '../executor/step-failure.js';
import { type Finding, finding } from './report.js';

export interface HostCheckOptions {
  /** ssh.knownHostsPath, named in the remedies. */
  knownHostsPath: string;
  /**
   * Seconds for the whole look, connection included (the handshake alone is held to
   * ssh.connectTimeoutSeconds by the runner): generous, since many hosts checked at
   * once queue on this machine's CPU, and a slow host is not a broken one.
   */
  deadlineSeconds: number;
  /** Seconds `ocp_agentctl status` may take on the host. */
  statusSeconds: number;
}

/** The checks of a host, in the order the connection meets them. */
type Stage = 'reach' | 'host key' | 'login' | 'become' | 'agentctl' | 'agent status';

/** The stage a failure of the runner stopped at. */
const STAGE_OF: Partial<Record<StepFailureKind, Stage>> = {
  unreachable: 'reach',
  hostKey: 'host key',
  credentials: 'login',
  login: 'login',
  become: 'become',
};

export const hostTarget = (h: HostConfig) => `host ${h.id} (${h.name})`;

/** `[addr]:port` as known_hosts names it. */
const knownName = (address: string, port: number) => (port === 22 ? address : `[${address}]:${port}`);

/**
 * What the host runs: whether agentctl is there and executable, then its
 * status with its exit code. Markers on lines of their own, read back by
 * readProbe; agentctl's own output follows `status=`.
 */
export function probeScript(agentHome: string, statusSeconds: number): string {
  const a = shellQuote(`${agentHome}/bin/ocp_agentctl`);
  return [
    `if [ ! -e ${a} ]; then echo agentctl=missing; exit 0; fi`,
    `if [ ! -x ${a} ]; then echo agentctl=notexec; exit 0; fi`,
    'echo agentctl=present',
    `out=$(timeout ${statusSeconds} ${a} status 2>&1); code=$?`,
    `printf 'status=%s\\n%s\\n' "$code" "$out"`,
  ].join('\n');
}

export interface Probe {
  agentctl: 'missing' | 'notexec' | 'present' | 'unknown';
  statusCode?: number;
  statusOutput?: string;
}

export function readProbe(stdout: string): Probe {
  const lines = stdout.split('\n');
  const at = lines.findIndex((l) => l.startsWith('agentctl='));
  const agentctl = lines[at]?.slice('agentctl='.length);
  if (agentctl !== 'missing' && agentctl !== 'notexec' && agentctl !== 'present') return { agentctl: 'unknown' };
  const status = lines.findIndex((l) => l.startsWith('status='));
  if (agentctl !== 'present' || status < 0) return { agentctl };
  return {
    agentctl,
    statusCode: Number(lines[status]?.slice('status='.length)),
    statusOutput: lines
      .slice(status + 1)
      .join('\n')
      .trim(),
  };
}

/** The remedy for a failure at `stage`, for this host. */
function remedyOf(stage: Stage, err: StepError, h: HostConfig, opts: HostCheckOptions): string {
  const server = err.detail.server ?? `${h.username}@${h.address}:${h.port}`;
  const [, address = h.address, port = String(h.port)] = /@(.*):(\d+)$/.exec(server) ?? [];
  switch (stage) {
    case 'reach':
      return err.detail.bastion
        ? `Check that the bastion ${server} is up and its sshd listens there (nc -vz ${address} ${port}).`
        : h.jump
          ? `Check from the bastion that ${h.address}:${h.port} is up and takes SSH, and that the bastion allows TCP forwarding (AllowTcpForwarding yes).`
          : `Check that the host is up, its sshd listens on ${address}:${port} and no firewall drops it (nc -vz ${address} ${port}).`;
    case 'host key': {
      const name = knownName(address, Number(port));
      const scan = `ssh-keyscan -H -p ${port} ${address} >> ${opts.knownHostsPath}`;
      if (err.detail.hostKey === 'changed')
        return `If the host was reinstalled, check its new key's fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub), then: ssh-keygen -R '${name}' -f ${opts.knownHostsPath} && ${scan}. Otherwise someone may be in the middle: do not connect.`;
      if (err.detail.hostKey === 'revoked')
        return `Its key is marked @revoked in ${opts.knownHostsPath}: give the host a new key, then add that one.`;
      return `Compare the fingerprint with the host's own (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on it), then: ${scan}`;
    }
    case 'login': {
      if (err.kind === 'credentials')
        return 'Set privateKeyPath (host, group or ssh:) to a readable key, or SSH_AUTH_SOCK to an ssh-agent; an encrypted key takes SSH_KEY_PASSPHRASE.';
      const key = (err.detail.bastion ? (h.jump?.privateKeyPath ?? h.privateKeyPath) : h.privateKeyPath) ?? '';
      const user = server.split('@')[0] ?? h.username;
      return key
        ? `Add ${key}.pub to ~${user}/.ssh/authorized_keys on it: ssh-copy-id -i ${key}.pub -p ${port} ${user}@${address}`
        : `Add the ssh-agent's key to ~${user}/.ssh/authorized_keys on it: ssh-copy-id -p ${port} ${user}@${address}`;
    }
    case 'become': {
      const as = h.become?.user ?? 'admin';
      return `On the host, with visudo -f /etc/sudoers.d/ocp-chatops: ${h.username} ALL=(${as}) NOPASSWD: ALL; and make sure the user ${as} exists.`;
    }
    default:
      return '';
  }
}

/** Every check of one host, in order; those after a failure are skipped. */
export async function checkHost(
  runner: Pick<StepRunner, 'exec'>,
  h: HostConfig,
  opts: HostCheckOptions,
): Promise<Finding[]> {
  const target = hostTarget(h);
  const stages: Stage[] = [
    'reach',
    'host key',
    'login',
    ...(h.become ? ['become' as const] : []),
    'agentctl',
    'agent status',
  ];
  const via = h.jump ? ` via ${h.jump.username}@${h.jump.address}:${h.jump.port}` : '';
  const passed: Record<Stage, string> = {
    reach: `${h.address}:${h.port}${via}`,
    'host key': `matches ${opts.knownHostsPath}`,
    login: `as ${h.username}`,
    become: `sudo -n -u ${h.become?.user ?? ''}`,
    agentctl: '',
    'agent status': '',
  };
  const upTo = (stage: Stage, last: Finding[]): Finding[] => {
    const at = stages.indexOf(stage);
    return [
      ...stages.slice(0, at).map((s) => finding(target, s, 'ok', passed[s])),
      ...last,
      ...stages.slice(at + last.length).map((s) => finding(target, s, 'skip', `not checked: ${stage} failed`)),
    ];
  };
  let res: Awaited<ReturnType<StepRunner['exec']>>;
  try {
    res = await runner.exec(targetOf(h), probeScript(h.agentHome, opts.statusSeconds), opts.deadlineSeconds);
  } catch (e) {
    const err = asStepError(e);
    const stage = STAGE_OF[err.kind] ?? 'reach';
    return upTo(stage, [finding(target, stage, 'fail', err.message, remedyOf(stage, err, h, opts))]);
  }
  const probe = readProbe(res.stdout);
  const agentctl = `${h.agentHome}/bin/ocp_agentctl`;
  switch (probe.agentctl) {
    case 'missing':
      return upTo('agentctl', [
        finding(
          target,
          'agentctl',
          'fail',
          `${agentctl} does not exist`,
          `Install the OCP agent in ${h.agentHome}, or set agentHome (host or group) to where it is.`,
        ),
      ]);
    case 'notexec':
      return upTo('agentctl', [
        finding(
          target,
          'agentctl',
          'fail',
          `${agentctl} is not executable${h.become ? ` by ${h.become.user}` : ` by ${h.username}`}`,
          `chmod +x ${agentctl}`,
        ),
      ]);
    case 'unknown':
      return upTo('agentctl', [
        finding(
          target,
          'agentctl',
          'fail',
          `the check did not run (exit ${res.exitCode}): ${res.stderr.trim().slice(0, 200)}`,
          'Check that the login shell runs sh scripts (coreutils timeout present).',
        ),
      ]);
    case 'present':
      break;
  }
  const lines = (probe.statusOutput ?? '').split('\n').filter(Boolean);
  const stopped = lines.filter((l) => /\bstopped\b/.test(l)).map((l) => l.split(/\s+/)[0]);
  const status =
    probe.statusCode === 0
      ? finding(target, 'agent status', 'ok', `${lines.length} processes running`)
      : finding(
          target,
          'agent status',
          'warn',
          stopped.length > 0
            ? `stopped: ${stopped.join(', ')}`
            : `ocp_agentctl status exited ${probe.statusCode}: ${lines.slice(-2).join('; ').slice(0, 200)}`,
          `ocp-chatops start ${h.id} (or restart) starts it once the set-up is well.`,
        );
  return upTo('agentctl', [finding(target, 'agentctl', 'ok', agentctl), status]);
}
