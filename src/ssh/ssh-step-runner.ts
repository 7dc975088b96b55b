/**
 * Steps over SSH with node-ssh: one connection per host, reused across steps
 * and reopened when cut; host keys checked against known_hosts (unknown or
 * changed keys refused); steps go to a long-lived shell on that connection
 * (host-shell.ts) rather than a new session each; each step launched detached
 * on the host and waited for there (see remote-step.ts).
 */
import { readFileSync } from 'node:fs';
import { NodeSSH } from 'node-ssh';
import type { Logger } from 'pino';
import { shellQuote } from '../core/runbooks/runbook.js';
import {
  KILL_AFTER_SECONDS,
  type StepResult,
  type StepRunner,
  type StepSpec,
  type StepTarget,
} from '../executor/ports.js';
import { HostShell } from './host-shell.js';
import { checkHostKey, type KnownHostEntry, parseKnownHosts } from './known-hosts.js';
import { cancelScript, housekeepingScript, launchAndWaitScript } from './remote-step.js';

export interface SshRunnerOptions {
  privateKeyPath: string;
  knownHostsPath: string;
  connectTimeoutSeconds: number;
  logger: Logger;
}

/** The host could not be reached, or refused us: not the step's own failure. */
export class SshError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SshError';
  }
}

/** Attempts to reach a host for one step before giving up (a cut connection is retried). */
const ATTEMPTS = 3;

export function createSshStepRunner(opts: SshRunnerOptions): StepRunner {
  const connections = new Map<string, Promise<NodeSSH>>();
  /** Idle long-lived shells per connection. */
  const shells = new Map<string, HostShell[]>();
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

  async function open(t: StepTarget): Promise<NodeSSH> {
    let refusal: string | undefined;
    const ssh = new NodeSSH();
    try {
      await ssh.connect({
        host: t.address,
        port: t.port,
        username: t.username,
        privateKey: readFileSync(opts.privateKeyPath, 'utf8'),
        readyTimeout: opts.connectTimeoutSeconds * 1000,
        keepaliveInterval: 5000,
        keepaliveCountMax: 3,
        hostVerifier: (key: Buffer) => {
          const verdict = checkHostKey(knownHostEntries(), t.address, t.port, key);
          if (!verdict.ok) refusal = verdict.message;
          return verdict.ok;
        },
      });
    } catch (err) {
      ssh.dispose();
      throw new SshError(refusal ?? `cannot connect to ${connKey(t)}: ${(err as Error).message}`);
    }
    ssh.connection?.on('close', () => connections.delete(connKey(t)));
    // node-ssh listens for errors only while connecting: a reset later (a cut
    // connection, an sshd killed) must not become an unhandled 'error' that
    // ends the process. The steps on it see their channels close and attach again.
    ssh.connection?.on('error', (err: Error) => {
      opts.logger.warn({ hostId: t.hostId, err: err.message }, 'SSH connection failed');
      ssh.dispose(); // its 'close' forgets it; its shells fail their steps, which attach again
    });
    return ssh;
  }

  function connection(t: StepTarget): Promise<NodeSSH> {
    const k = connKey(t);
    let c = connections.get(k);
    if (!c) {
      c = open(t);
      connections.set(k, c);
      c.catch(() => connections.delete(k));
    }
    return c;
  }

  function drop(t: StepTarget, ssh?: NodeSSH): void {
    const k = connKey(t);
    connections.delete(k);
    for (const sh of shells.get(k) ?? []) sh.close();
    shells.delete(k);
    ssh?.dispose();
  }

  /** `work` on the host's connection, which is dropped if no answer comes within the deadline. */
  async function withDeadline<T>(t: StepTarget, deadlineMs: number, work: (ssh: NodeSSH) => Promise<T>): Promise<T> {
    const ssh = await connection(t);
    let timer: NodeJS.Timeout | undefined;
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        drop(t, ssh);
        reject(new SshError(`no answer from ${connKey(t)} within ${Math.round(deadlineMs / 1000)} s`));
      }, deadlineMs);
    });
    try {
      return await Promise.race([work(ssh), guard]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** A command in a session of its own (short, rare ones: status, cancel). */
  function exec(t: StepTarget, command: string, deadlineMs: number) {
    return withDeadline(t, deadlineMs, (ssh) => ssh.execCommand(command, { noTrim: true }));
  }

  /** A script in one of the host's long-lived shells (opened on first need, kept while the connection lives). */
  function runInShell(t: StepTarget, script: string, deadlineMs: number) {
    return withDeadline(t, deadlineMs, async (ssh) => {
      const k = connKey(t);
      let sh = shells.get(k)?.pop();
      while (sh && !sh.usable) sh = shells.get(k)?.pop();
      if (!sh) {
        const client = ssh.connection;
        if (!client) throw new SshError(`connection to ${k} closed`);
        sh = await HostShell.open((command, cb) => client.exec(command, cb));
        // Once per shell, not per step: files of runs older than a week go.
        await sh.run(housekeepingScript(t.stateDir));
      }
      try {
        return await sh.run(script);
      } catch (err) {
        throw new SshError(`connection to ${k} closed during the step: ${(err as Error).message}`);
      } finally {
        if (sh.usable && connections.get(k)) {
          const idle = shells.get(k) ?? [];
          idle.push(sh);
          shells.set(k, idle);
        }
      }
    });
  }

  return {
    async run(spec: StepSpec): Promise<StepResult> {
      const command = launchAndWaitScript(
        spec.target.stateDir,
        spec.runKey,
        spec.attachOnly ? undefined : spec.script,
        spec.timeoutSeconds,
      );
      // The host enforces the timeout; this guard only covers a host that stops answering.
      const deadlineMs = (spec.timeoutSeconds + KILL_AFTER_SECONDS + 30) * 1000;
      let lastError: Error | undefined;
      for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
        try {
          const res = await runInShell(spec.target, command, deadlineMs);
          const why = /why=(\w*)/.exec(res.stderr)?.[1] ?? '';
          if (why === 'nostatedir') {
            throw new SshError(`cannot create ${spec.target.stateDir}/runs on host ${spec.target.hostId}`);
          }
          const size = Number(/size=(\d+)/.exec(res.stderr)?.[1] ?? 0);
          return {
            exitCode: res.code,
            output: res.stdout,
            truncated: size > Buffer.byteLength(res.stdout),
            timedOut: why === 'timeout',
            canceled: why === 'canceled',
            ...(why === 'notlaunched' ? { notLaunched: true } : {}),
          };
        } catch (err) {
          lastError = err instanceof Error ? err : new Error(String(err));
          const refused = /host key|known_hosts/i.test(lastError.message);
          drop(spec.target);
          if (refused) break; // a host key problem does not fix itself
          opts.logger.warn({ hostId: spec.target.hostId, attempt, err: lastError.message }, 'SSH step attempt failed');
          await new Promise((r) => setTimeout(r, 500 * attempt));
        }
      }
      throw lastError instanceof SshError ? lastError : new SshError(String(lastError?.message));
    },

    async exec(target, command, timeoutSeconds) {
      const res = await exec(
        target,
        `timeout -k 2 ${Math.floor(timeoutSeconds)} sh -c ${shellQuote(command)}`,
        (timeoutSeconds + 5) * 1000,
      );
      if (res.code === null) throw new SshError(`connection to ${connKey(target)} closed during the command`);
      return { exitCode: res.code, stdout: res.stdout, stderr: res.stderr };
    },

    async cancel(target, runKey) {
      const res = await exec(target, cancelScript(target.stateDir, runKey), opts.connectTimeoutSeconds * 1000 + 20_000);
      if (res.code !== 0) {
        throw new SshError(
          `cancel on host ${target.hostId} failed (exit ${res.code}): ${res.stderr.trim().slice(0, 300)}`,
        );
      }
    },

    async close() {
      const all = [...connections.values()];
      connections.clear();
      for (const list of shells.values()) for (const sh of list) sh.close();
      shells.clear();
      for (const c of all) {
        try {
          (await c).dispose();
        } catch {
          // a connection that never opened has nothing to close
        }
      }
    },
  };
}
