/**
 * The doctor (issue 16): everything the service will need, checked before the
 * first real command — the hosts (in parallel, through the executors' own SSH
 * runner), NATS, Slack, the HTTP users. Returns findings; showing them is
 * report.ts's and the command's.
 */
import pino from 'pino';
import type { Config } from '../config.js';
import { createSshStepRunner } from '../ssh/ssh-step-runner.js';
import { checkAccess } from './access-checks.js';
import { checkHost } from './host-checks.js';
import { checkNats } from './nats-checks.js';
import type { Finding } from './report.js';
import { checkSlack } from './slack-checks.js';

/** Seconds a host's look may take beyond its SSH handshake (ssh.connectTimeoutSeconds). */
const HOST_DEADLINE_EXTRA_SECONDS = 45;
/** Seconds `ocp_agentctl status` may take. */
const STATUS_SECONDS = 15;
/** Hosts checked at once by default: parallel-ssh's default. */
export const DEFAULT_PARALLEL = 32;

export type DoctorPart = 'hosts' | 'nats' | 'slack' | 'access';
export const DOCTOR_PARTS: readonly DoctorPart[] = ['hosts', 'nats', 'slack', 'access'];

export interface DoctorOptions {
  /** Hosts checked at once (default DEFAULT_PARALLEL). */
  parallel?: number;
  /** Which parts to check (default all). */
  parts?: readonly DoctorPart[];
  /** Where ./.data (an embedded NATS's credentials) is looked for. */
  cwd?: string;
  /** Called as each host's checks end. */
  onHostDone?(done: number, total: number, failing: number): void;
}

/** Run `work` over `items`, at most `limit` at once, results in the items' order. */
async function inParallel<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return results;
}

export async function runDoctor(config: Config, opts: DoctorOptions = {}): Promise<Finding[]> {
  const parts = new Set(opts.parts ?? DOCTOR_PARTS);
  const timeoutMs = config.ssh.connectTimeoutSeconds * 1000;
  const hosts = async (): Promise<Finding[]> => {
    if (!parts.has('hosts')) return [];
    const runner = createSshStepRunner({
      knownHostsPath: config.ssh.knownHostsPath,
      connectTimeoutSeconds: config.ssh.connectTimeoutSeconds,
      logger: pino({ level: 'silent' }),
      ...(config.env.SSH_AUTH_SOCK ? { agentSocket: config.env.SSH_AUTH_SOCK } : {}),
      ...(config.env.SSH_KEY_PASSPHRASE ? { passphrase: config.env.SSH_KEY_PASSPHRASE } : {}),
    });
    let done = 0;
    let failing = 0;
    opts.onHostDone?.(0, config.hosts.length, 0);
    try {
      const perHost = await inParallel(config.hosts, opts.parallel ?? DEFAULT_PARALLEL, async (h) => {
        const found = await checkHost(runner, h, {
          knownHostsPath: config.ssh.knownHostsPath,
          deadlineSeconds: config.ssh.connectTimeoutSeconds + HOST_DEADLINE_EXTRA_SECONDS,
          statusSeconds: STATUS_SECONDS,
        });
        done++;
        if (found.some((f) => f.verdict === 'fail')) failing++;
        opts.onHostDone?.(done, config.hosts.length, failing);
        return found;
      });
      return perHost.flat();
    } finally {
      await runner.close();
    }
  };
  const [h, n, s] = await Promise.all([
    hosts(),
    parts.has('nats') ? checkNats(config, { cwd: opts.cwd ?? process.cwd(), timeoutMs }) : [],
    parts.has('slack') ? checkSlack(config, { timeoutMs }) : [],
  ]);
  return [...(parts.has('access') ? checkAccess(config) : []), ...n, ...s, ...h];
}
