/**
 * A whole test stack: a real nats-server, real sshd serving simulated hosts, a
 * config file pointing at both (runbook timeouts shortened), and ways to run
 * the service in this process or as a separate `src/main.ts` process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type JetStreamClient, type NatsConnection } from 'nats';
import { stringify } from 'yaml';
import { type Config, loadConfig } from '../../src/config.js';
import type { OcpTask } from '../../src/contracts/ocp-task.js';
import { builtinRunbooks } from '../../src/core/runbooks/builtin.js';
import type { TaskRecord } from '../../src/core/task-record.js';
import type { StepRunner } from '../../src/executor/ports.js';
import { hashPassword } from '../../src/http/auth.js';
import { createLogger } from '../../src/logger.js';
import { createTaskStore } from '../../src/nats/task-store.js';
import { type Service, startService } from '../../src/service.js';
import { captureTail, killOnExit, type NatsServerHandle, startNatsServer, waitForExit } from './nats-server.js';
import { type BashrcOptions, type SshdHandle, type SshdOptions, startSshd } from './sshd.js';

export interface StackOptions {
  hosts?: number;
  /** The hosts' user gets a slow, chatty, counted ~/.bashrc (see sshd.ts). */
  bashrc?: BashrcOptions;
  /** Where the hosts live and which client key logs in (see sshd.ts; default: loopback, a new key). */
  sshd?: Pick<SshdOptions, 'network' | 'clientKeyPath'>;
  /** Lines added to the hosts' known_hosts (a bastion's, say). */
  moreKnownHosts?: string;
  /** Seconds per runbook step (all steps), default 20. */
  stepTimeout?: number;
  /** Per step name, seconds. */
  stepTimeouts?: Record<string, number>;
  leaseSeconds?: number;
  killGraceSeconds?: number;
  knownHosts?: string;
  maxParallel?: number;
  /** executor.concurrency, default 8. */
  executorConcurrency?: number;
  /** ssh.connectTimeoutSeconds, default 5. */
  connectTimeoutSeconds?: number;
  /**
   * An outside NATS to use instead of starting a nats-server (a cluster: its
   * URLs comma-separated, as NATS_URL takes them). The stack neither starts
   * nor stops it, and `stack.nats` cannot kill or restart it.
   */
  natsUrl?: string;
  /** The service's NATS user and password (NATS_USER, NATS_PASSWORD), also used by the stack's own connection. */
  natsAuth?: { user: string; password: string };
  /** `nats.replicas` in the config; default 1. */
  replicas?: 1 | 3 | 5;
  /** `access.signIn` in the config (failed sign-ins throttled); the service's defaults otherwise. */
  signIn?: { perUser?: number; perAddress?: number; windowSeconds?: number };
  /** `operations:` of the config file: operations of one's own (SPEC §8). */
  operations?: unknown[];
  /** The config file as the stack wrote it, changed (groups, keys of one's own): returns the file to write. */
  editConfig?: (file: Record<string, unknown>) => Record<string, unknown>;
  /** Added to the service's environment (SSH_AUTH_SOCK, SSH_KEY_PASSPHRASE…). */
  env?: NodeJS.ProcessEnv;
  /** Slack on, against a fake Web API: over HTTP with `signingSecret`, in Socket Mode with `appToken`. */
  slack?: {
    apiUrl: string;
    botToken: string;
    signingSecret?: string;
    appToken?: string;
    defaultChannel?: string;
    access?: Record<string, { usergroups?: string[]; users?: string[] }>;
  };
}

/** HTTP Basic users of every test stack. */
export const TEST_USERS = {
  admin: { password: 'admin-secret-1', roles: ['ADMIN'] },
  operator: { password: 'operator-secret-2', roles: ['HOST_MANAGER', 'HOST_VIEWER', 'TASK_MANAGER', 'TASK_VIEWER'] },
  viewer: { password: 'viewer-secret-3', roles: ['HOST_VIEWER', 'TASK_VIEWER'] },
} as const;

export function basicAuth(user: keyof typeof TEST_USERS): string {
  return `Basic ${Buffer.from(`${user}:${TEST_USERS[user].password}`).toString('base64')}`;
}

export interface Stack {
  nats: NatsServerHandle;
  sshd: SshdHandle;
  dir: string;
  configPath: string;
  env: NodeJS.ProcessEnv;
  config: Config;
  nc: NatsConnection;
  js: JetStreamClient;
  /** Run the service (all roles unless `roles`) in this process. */
  startService(roles?: string, runner?: StepRunner): Promise<Service>;
  /** Run `src/main.ts` (or `opts.entry`, a module composing the service its own way) as its own process. */
  spawnService(roles: string, opts?: SpawnOptions): ChildService;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** Path of the module to run instead of src/main.ts (benchmarks: compiled, or with another step runner); `.js` runs without tsx. */
  entry?: string;
  /** Added to the stack's environment. */
  env?: NodeJS.ProcessEnv;
  /** LOG_LEVEL of the process, default info. */
  logLevel?: string;
  /** Node.js flags before the entry (benchmarks: those `npm start` uses). */
  nodeFlags?: string[];
}

export interface ChildService {
  child: ChildProcess;
  output(): string;
  kill(signal: NodeJS.Signals): Promise<void>;
}

const REPO = new URL('../..', import.meta.url).pathname;

/** A NATS the stack uses but does not manage. */
function outsideNats(url: string): NatsServerHandle {
  const managedElsewhere = async () => {
    throw new Error(`the stack does not manage the NATS at ${url}`);
  };
  return {
    url,
    port: Number(new URL(url.split(',')[0] ?? url).port),
    storeDir: '',
    stop: async () => undefined,
    kill: managedElsewhere,
    restart: managedElsewhere,
  };
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const nats = opts.natsUrl ? outsideNats(opts.natsUrl) : await startNatsServer();
  const sshd = await startSshd({
    hosts: opts.hosts ?? 2,
    ...opts.sshd,
    ...(opts.bashrc ? { bashrc: opts.bashrc } : {}),
  });
  const dir = mkdtempSync(join(tmpdir(), 'ocp-stack-'));
  const runbookDir = join(dir, 'runbooks');
  mkdirSync(runbookDir);
  for (const rb of builtinRunbooks) {
    const steps = rb.steps.map((s) => ({ ...s, timeout: opts.stepTimeouts?.[s.name] ?? opts.stepTimeout ?? 20 }));
    writeFileSync(join(runbookDir, `${rb.name.replaceAll(' ', '-')}.yml`), stringify({ name: rb.name, steps }));
  }
  const knownHostsPath = join(dir, 'known_hosts');
  writeFileSync(
    knownHostsPath,
    (opts.knownHosts ?? readFileSync(sshd.knownHostsPath, 'utf8')) + (opts.moreKnownHosts ?? ''),
  );
  const configPath = join(dir, 'ocp-chatops.yml');
  const file: Record<string, unknown> = {
    hosts: sshd.hosts.map((h) => ({
      id: h.id,
      name: h.name,
      address: h.address,
      port: h.port,
      username: h.username,
      agentHome: h.agentHome,
    })),
    ssh: {
      privateKeyPath: sshd.privateKeyPath,
      knownHostsPath,
      killGraceSeconds: opts.killGraceSeconds ?? 2,
      connectTimeoutSeconds: opts.connectTimeoutSeconds ?? 5,
    },
    executor: { leaseSeconds: opts.leaseSeconds ?? 4, concurrency: opts.executorConcurrency ?? 8 },
    batch: { maxParallel: opts.maxParallel ?? 20 },
    ...(opts.replicas ? { nats: { replicas: opts.replicas } } : {}),
    access: {
      users: Object.entries(TEST_USERS).map(([username, u]) => ({
        username,
        passwordHash: hashPassword(u.password, Buffer.from(`salt-of-${username}-16b`)),
        roles: u.roles,
      })),
      ...(opts.slack?.access ? { slack: opts.slack.access } : {}),
      ...(opts.signIn ? { signIn: opts.signIn } : {}),
    },
    ...(opts.slack?.defaultChannel ? { slack: { defaultChannel: opts.slack.defaultChannel } } : {}),
    runbooks: runbookDir,
    ...(opts.operations ? { operations: opts.operations } : {}),
  };
  writeFileSync(configPath, stringify(opts.editConfig ? opts.editConfig(file) : file));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CONFIG_FILE: configPath,
    NATS_URL: nats.url,
    HTTP_PORT: '0',
    HTTP_HOST: '127.0.0.1',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    ...(opts.natsAuth ? { NATS_USER: opts.natsAuth.user, NATS_PASSWORD: opts.natsAuth.password } : {}),
    ...(opts.slack
      ? {
          SLACK_API_URL: opts.slack.apiUrl,
          SLACK_BOT_TOKEN: opts.slack.botToken,
          ...(opts.slack.signingSecret ? { SLACK_SIGNING_SECRET: opts.slack.signingSecret } : {}),
          ...(opts.slack.appToken ? { SLACK_APP_TOKEN: opts.slack.appToken } : {}),
        }
      : {}),
    ...opts.env,
  };
  const { config } = loadConfig(env, dir);
  const nc = await connect({
    servers: nats.url.split(','),
    maxReconnectAttempts: -1,
    reconnectTimeWait: 200,
    ...(opts.natsAuth ? { user: opts.natsAuth.user, pass: opts.natsAuth.password } : {}),
  });
  const services: Service[] = [];
  const children: ChildService[] = [];

  const stack: Stack = {
    nats,
    sshd,
    dir,
    configPath,
    env,
    config,
    nc,
    js: nc.jetstream(),
    async startService(roles, runner) {
      const e = roles ? { ...env, ROLES: roles } : env;
      const cfg = loadConfig(e, dir).config;
      const svc = await startService({
        config: cfg,
        logger: createLogger(env.LOG_LEVEL ?? 'warn'),
        natsUrl: nats.url,
        ...(runner ? { runner } : {}),
      });
      services.push(svc);
      return svc;
    },
    spawnService(roles, spawnOpts = {}) {
      const entry = spawnOpts.entry ?? join(REPO, 'src/main.ts');
      // A compiled entry (.js) runs as plain JavaScript; TypeScript through tsx.
      const args = [
        ...(spawnOpts.nodeFlags ?? []),
        ...(entry.endsWith('.js') ? [entry] : ['--import', import.meta.resolve('tsx'), entry]),
      ];
      const child = spawn(process.execPath, args, {
        cwd: dir,
        env: { ...env, ...spawnOpts.env, ROLES: roles, LOG_LEVEL: spawnOpts.logLevel ?? 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out = captureTail(child.stdout, 256_000);
      const err = captureTail(child.stderr);
      const unregister = killOnExit(() => child.kill('SIGKILL'));
      const handle: ChildService = {
        child,
        output: () => out() + err(),
        async kill(signal) {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill(signal);
            await waitForExit(child);
          }
          unregister();
        },
      };
      children.push(handle);
      return handle;
    },
    async stop() {
      for (const c of children) await c.kill('SIGKILL');
      for (const s of services) await s.stop().catch(() => undefined);
      await nc.close();
      await sshd.stop();
      await nats.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return stack;
}

/** Read a task record from the KV bucket, as the store reads it (a batch's parts assembled). */
export async function readTask(nc: NatsConnection, taskId: number): Promise<TaskRecord | undefined> {
  const js = nc.jetstream();
  const kv = await js.views.kv('ocp_tasks');
  return (await createTaskStore({ kv, js }).get(taskId))?.record;
}

/** Poll the store until the task satisfies `done`; fails with the last state seen. */
export async function waitForTask(
  nc: NatsConnection,
  taskId: number,
  done: (t: OcpTask) => boolean = (t) => t.status !== 'RUNNING',
  timeoutMs = 30_000,
): Promise<OcpTask> {
  const deadline = Date.now() + timeoutMs;
  let last: OcpTask | undefined;
  while (Date.now() < deadline) {
    last = (await readTask(nc, taskId).catch(() => undefined))?.task ?? last;
    if (last && done(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `task ${taskId} not done in ${timeoutMs} ms; last seen: ${JSON.stringify(last?.subtasks.map((s) => [s.name, s.status]))} ${last?.status}`,
  );
}

export async function waitFor<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
