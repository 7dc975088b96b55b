/**
 * Steps over SSH with node-ssh: one connection per host, reused across steps
 * and reopened when cut; a host behind a bastion (`jump`, as ProxyJump) is
 * reached over a channel that the bastion forwards, one bastion connection
 * carrying every host behind it; host keys, the bastions' too, checked against
 * known_hosts (unknown or changed keys refused); steps, cancels and status reads all go to one
 * long-lived shell on that connection (host-shell.ts) rather than a new
 * session each, so the login shell's start-up (~/.bashrc) runs once per
 * connection; each step launched detached on the host and waited for there
 * (see remote-step.ts).
 */
import { readFileSync } from 'node:fs';
import { NodeSSH } from 'node-ssh';
import type { Logger } from 'pino';
import type { ClientChannel } from 'ssh2';
import type { JumpHost } from '../config.js';
import { shellQuote } from '../core/runbooks/runbook.js';
import {
  KILL_AFTER_SECONDS,
  type StepResult,
  type StepRunner,
  type StepSpec,
  type StepTarget,
} from '../executor/ports.js';
import { asStepError, StepError } from '../executor/step-failure.js';
import { HostShell } from './host-shell.js';
import { checkHostKey, type KnownHostEntry, parseKnownHosts } from './known-hosts.js';
import { cancelScript, housekeepingScript, launchAndWaitScript, readRunAnswer, verdictOf } from './remote-step.js';

export interface SshRunnerOptions {
  /** The ssh-agent's socket (SSH_AUTH_SOCK), for a target without a key of its own. */
  agentSocket?: string;
  /** Unlocks an encrypted key (SSH_KEY_PASSPHRASE); never logged. */
  passphrase?: string;
  knownHostsPath: string;
  connectTimeoutSeconds: number;
  logger: Logger;
}

/** Attempts to reach a host for one step before giving up (a cut connection is retried). */
const ATTEMPTS = 3;

export function createSshStepRunner(opts: SshRunnerOptions): StepRunner {
  const connections = new Map<string, Promise<NodeSSH>>();
  /**
   * The one long-lived shell of each connection, opened on first need: every
   * script of the connection goes through it, so the login shell's start-up
   * runs once per connection (SPEC §9), not again for a second step at once,
   * a cancel or a status read.
   */
  const shells = new WeakMap<NodeSSH, Promise<HostShell>>();
  let knownHosts: { entries: KnownHostEntry[]; loadedAt: number } | undefined;

  // Read known_hosts at most every 5 s, so an operator's fix takes effect without a restart.
  function knownHostEntries(): KnownHostEntry[] {
    if (!knownHosts || Date.now() - knownHosts.loadedAt > 5000) {
      let text = '';
      try {
        text = readFileSync(opts.knownHostsPath, 'utf8');
      } catch (err) {
        opts.logger.warn({ path: opts.knownHostsPath, err: (err as Error).message }, 'cannot read known_hosts');
      }
      knownHosts = { entries: parseKnownHosts(text), loadedAt: Date.now() };
    }
    return knownHosts.entries;
  }

  const connKey = (t: StepTarget) => `${t.username}@${t.address}:${t.port}`;
  const jumpName = (j: JumpHost) => `${j.username}@${j.address}:${j.port}`;
  /** The key a bastion is logged in with: its own, else its host's; none: the agent. */
  const jumpKeyPath = (t: StepTarget & { jump: JumpHost }) => t.jump.privateKeyPath ?? t.privateKeyPath;
  /** One bastion connection per (login, address, port, key): the hosts behind it share it. */
  const bastionKey = (t: StepTarget & { jump: JumpHost }) => `${jumpName(t.jump)} ${jumpKeyPath(t) ?? 'agent'}`;
  /** One connection per (user, address, port, key, bastion): two hosts' keys never share one. */
  const poolKey = (t: StepTarget) =>
    `${connKey(t)} ${t.privateKeyPath ?? 'agent'}${t.jump ? ` via ${bastionKey({ ...t, jump: t.jump })}` : ''}`;
  const bastions = new Map<string, Promise<NodeSSH>>();

  /** How `hostId` logs in with `keyPath`: the key (read now, so a replaced key is taken), else the agent. */
  function credentials(
    hostId: number,
    keyPath: string | undefined,
  ): { privateKey: string; passphrase?: string } | { agent: string } {
    if (keyPath === undefined) {
      if (opts.agentSocket !== undefined) return { agent: opts.agentSocket };
      throw new StepError(
        'credentials',
        `no key for host ${hostId}: set privateKeyPath (host, group or ssh:) or SSH_AUTH_SOCK to an ssh-agent`,
      );
    }
    let privateKey: string;
    try {
      privateKey = readFileSync(keyPath, 'utf8');
    } catch (err) {
      throw new StepError('credentials', `cannot read the key of host ${hostId}: ${(err as Error).message}`);
    }
    return opts.passphrase === undefined ? { privateKey } : { privateKey, passphrase: opts.passphrase };
  }

  /**
   * An SSH connection to `address:port`, its host key checked against
   * known_hosts, over `sock` when given (a channel forwarded by a bastion).
   * Errors name the host, or the bastion `via` and the host behind it.
   */
  async function connect(
    c: { address: string; port: number; username: string; sock?: ClientChannel },
    login: ReturnType<typeof credentials>,
    hostId: number,
    via?: JumpHost,
  ): Promise<NodeSSH> {
    const what = via ? `bastion ${jumpName(via)} for host ${hostId}` : `host ${hostId}`;
    const detail = { server: `${c.username}@${c.address}:${c.port}`, ...(via ? { bastion: true } : {}) };
    let refusal: { message: string; reason: 'unknown' | 'changed' | 'revoked' } | undefined;
    const ssh = new NodeSSH();
    try {
      await ssh.connect({
        host: c.address,
        port: c.port,
        username: c.username,
        ...(c.sock === undefined ? {} : { sock: c.sock }),
        ...login,
        readyTimeout: opts.connectTimeoutSeconds * 1000,
        keepaliveInterval: 5000,
        keepaliveCountMax: 3,
        hostVerifier: (key: Buffer) => {
          const verdict = checkHostKey(knownHostEntries(), c.address, c.port, key);
          if (!verdict.ok) refusal = { message: verdict.message, reason: verdict.reason };
          return verdict.ok;
        },
      });
    } catch (err) {
      ssh.dispose();
      const message = (err as Error).message;
      if (refusal) {
        throw new StepError('hostKey', via ? `${what}: ${refusal.message}` : refusal.message, {
          ...detail,
          hostKey: refusal.reason,
        });
      }
      // ssh2 marks a refused login so: the key (or agent) is not one the server takes.
      if ((err as { level?: string }).level === 'client-authentication') {
        throw new StepError(
          'login',
          `${what} refused the login as ${c.username} (${c.address}:${c.port}): ${message}`,
          detail,
        );
      }
      // ssh2's words for an encrypted key without (or with a wrong) passphrase.
      if (/passphrase|encrypted/i.test(message))
        throw new StepError(
          'credentials',
          `the key of ${what} is encrypted: set SSH_KEY_PASSPHRASE to its passphrase (${message})`,
        );
      throw new StepError(
        'unreachable',
        `cannot connect to ${what} (${c.username}@${c.address}:${c.port}): ${message}`,
        detail,
      );
    }
    // node-ssh listens for errors only while connecting: a reset later (a cut
    // connection, an sshd killed) must not become an unhandled 'error' that
    // ends the process. The steps on it see their shell close and attach again.
    ssh.connection?.on('error', (err: Error) => {
      opts.logger.warn({ hostId, via: what, err: err.message }, 'SSH connection failed');
      ssh.dispose(); // its 'close' forgets it; its shell fails its steps, which attach again
    });
    return ssh;
  }

  /** The bastion's connection for `t`, opened on first need and shared by every host behind it. */
  function bastion(t: StepTarget & { jump: JumpHost }): Promise<NodeSSH> {
    const k = bastionKey(t);
    let b = bastions.get(k);
    if (!b) {
      b = connect(t.jump, credentials(t.hostId, jumpKeyPath(t)), t.hostId, t.jump);
      const mine = b;
      bastions.set(k, mine);
      mine.then(
        (ssh) => ssh.connection?.on('close', () => bastions.get(k) === mine && bastions.delete(k)),
        () => bastions.get(k) === mine && bastions.delete(k),
      );
    }
    return b;
  }

  /** A channel from the bastion to the host, as `ssh -J` opens (direct-tcpip). */
  async function forwarded(t: StepTarget & { jump: JumpHost }): Promise<ClientChannel> {
    const b = await bastion(t);
    const client = b.connection;
    if (!client) throw new StepError('unreachable', `the bastion ${jumpName(t.jump)} for host ${t.hostId} closed`);
    return new Promise((resolve, reject) =>
      client.forwardOut('127.0.0.1', 0, t.address, t.port, (err, channel) =>
        err
          ? reject(
              new StepError(
                'unreachable',
                `the bastion ${jumpName(t.jump)} could not reach host ${t.hostId} at ${t.address}:${t.port}: ${err.message}`,
                { server: `${t.username}@${t.address}:${t.port}` },
              ),
            )
          : resolve(channel),
      ),
    );
  }

  async function open(t: StepTarget): Promise<NodeSSH> {
    const login = credentials(t.hostId, t.privateKeyPath);
    const sock = t.jump === undefined ? undefined : await forwarded({ ...t, jump: t.jump });
    const ssh = await connect({ ...t, ...(sock === undefined ? {} : { sock }) }, login, t.hostId).catch(
      (err: unknown) => {
        sock?.close(); // the bastion's channel for a login that failed
        throw err;
      },
    );
    ssh.connection?.on('close', () => connections.delete(poolKey(t)));
    return ssh;
  }

  function connection(t: StepTarget): Promise<NodeSSH> {
    const k = poolKey(t);
    let c = connections.get(k);
    if (!c) {
      c = open(t);
      connections.set(k, c);
      c.catch(() => connections.delete(k));
    }
    return c;
  }

  /** Forget the host's connection and close it (and so its shell): `ssh`, else the one stored. */
  function drop(t: StepTarget, ssh?: NodeSSH): void {
    const k = poolKey(t);
    const stored = connections.get(k);
    connections.delete(k);
    if (ssh) ssh.dispose();
    else stored?.then((s) => s.dispose()).catch(() => undefined);
  }

  function openShell(t: StepTarget, ssh: NodeSSH): Promise<HostShell> {
    const opening = (async () => {
      const client = ssh.connection;
      if (!client) throw new StepError('unreachable', `connection to ${connKey(t)} closed`);
      const sh = await HostShell.open((command, cb) => client.exec(command, cb));
      // Once per connection, not per step: files of runs older than a week go.
      await sh.run(asTarget(t, housekeepingScript(t.stateDir)));
      return sh;
    })();
    opening.catch(() => {
      if (shells.get(ssh) === opening) shells.delete(ssh);
    });
    return opening;
  }

  /** The host's connection and its shell, each opened on first need. */
  async function hostShell(t: StepTarget): Promise<{ ssh: NodeSSH; shell: HostShell }> {
    for (let attempt = 1; ; attempt++) {
      const ssh = await connection(t);
      let opening = shells.get(ssh);
      if (!opening) {
        opening = openShell(t, ssh);
        shells.set(ssh, opening);
      }
      const shell = await opening;
      if (shell.usable) return { ssh, shell };
      // Its shell ended (killed on the host) while the connection lived: start
      // again on a new connection rather than run the start-up twice on this one.
      drop(t, ssh);
      if (attempt >= 2) throw new StepError('unreachable', `the shell on ${connKey(t)} ended`);
    }
  }

  /** Per shell, per become user: whether `sudo -n -u <user>` works there (its exit code, asked once). */
  const sudoChecks = new WeakMap<HostShell, Map<string, Promise<void>>>();

  /**
   * A host with `become`: sudo must run as that user without a password. A
   * refusal (a password wanted, no such user) is final and says what to
   * configure; asked again on the next step, in case the host was fixed.
   */
  function checkBecome(t: StepTarget, shell: HostShell): Promise<void> {
    const user = t.become;
    if (user === undefined) return Promise.resolve();
    let byUser = sudoChecks.get(shell);
    if (!byUser) {
      byUser = new Map();
      sudoChecks.set(shell, byUser);
    }
    let check = byUser.get(user);
    if (!check) {
      check = shell.run(`sudo -n -u ${shellQuote(user)} -- true`).then((r) => {
        if (r.code === 0) return;
        const said = r.stderr.trim().split('\n').join('; ').slice(0, 300) || `exit code ${r.code}`;
        throw new StepError(
          'become',
          `sudo -n -u ${user} as ${t.username} on host ${t.hostId} was refused (${said}): become needs a sudoers ` +
            `rule letting ${t.username} run commands as ${user} without a password (NOPASSWD), and the user ${user} to exist`,
        );
      });
      const mine = check;
      byUser.set(user, mine);
      mine.catch(() => byUser?.delete(user));
    }
    return check;
  }

  /** The script as the host's shell runs it: as `become`'s user when one is set. */
  const asTarget = (t: StepTarget, script: string) =>
    t.become === undefined ? script : `sudo -n -u ${shellQuote(t.become)} -- sh -c ${shellQuote(script)}`;

  /**
   * `script` in the host's shell (as `become`'s user when set). The connection
   * is dropped if no answer comes within the deadline. Rejects only with a
   * StepError.
   */
  async function runInShell(t: StepTarget, script: string, deadlineMs: number) {
    let ssh: NodeSSH | undefined;
    let timer: NodeJS.Timeout | undefined;
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        drop(t, ssh);
        reject(new StepError('unreachable', `no answer from ${connKey(t)} within ${Math.round(deadlineMs / 1000)} s`));
      }, deadlineMs);
    });
    const work = async () => {
      // A shell that could not be opened on a live connection (a refused channel): out of reach too.
      const h = await hostShell(t).catch((err: unknown) => Promise.reject(asStepError(err)));
      ssh = h.ssh;
      await checkBecome(t, h.shell);
      try {
        return await h.shell.run(asTarget(t, script));
      } catch (err) {
        throw new StepError(
          'unreachable',
          `connection to ${connKey(t)} closed during the command: ${(err as Error).message}`,
        );
      }
    };
    try {
      return await Promise.race([work(), guard]);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async run(spec: StepSpec): Promise<StepResult> {
      const command = launchAndWaitScript(
        spec.target.stateDir,
        spec.runKey,
        spec.attachOnly ? undefined : spec.script,
        spec.timeoutSeconds,
        spec.launchBy,
      );
      // The host enforces the timeout; this guard only covers a host that stops answering.
      const deadlineMs = (spec.timeoutSeconds + KILL_AFTER_SECONDS + 30) * 1000;
      let lastError: StepError | undefined;
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        try {
          return readRunAnswer(await runInShell(spec.target, command, deadlineMs), spec.target);
        } catch (err) {
          lastError = asStepError(err);
          drop(spec.target);
          if (!lastError.retryable) break; // a host key or a state folder does not fix itself
          opts.logger.warn({ hostId: spec.target.hostId, attempt, err: lastError.message }, 'SSH step attempt failed');
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
      throw lastError ?? new StepError('unreachable', `no attempt reached host ${spec.target.hostId}`);
    },

    async exec(target, command, timeoutSeconds) {
      const res = await runInShell(
        target,
        `timeout -k 2 ${Math.floor(timeoutSeconds)} sh -c ${shellQuote(command)}`,
        (timeoutSeconds + 5) * 1000,
      );
      return { exitCode: res.code, stdout: res.stdout, stderr: res.stderr };
    },

    async cancel(target, runKey) {
      const res = await runInShell(
        target,
        cancelScript(target.stateDir, runKey),
        opts.connectTimeoutSeconds * 1000 + 20_000,
      );
      if (res.code !== 0) {
        throw new StepError(
          verdictOf(res.stderr) === 'nostatedir' ? 'noStateDir' : 'exitCode',
          `cancel on host ${target.hostId} failed (exit ${res.code}): ${res.stderr.trim().slice(0, 300)}`,
        );
      }
    },

    async close() {
      const all = [...connections.values(), ...bastions.values()];
      connections.clear();
      bastions.clear();
      for (const c of all) {
        try {
          const ssh = await c;
          (await shells.get(ssh)?.catch(() => undefined))?.close();
          ssh.dispose();
        } catch {
          // a connection that never opened has nothing to close
        }
      }
    },
  };
}
