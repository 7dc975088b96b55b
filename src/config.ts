/**
 * One zod schema for the configuration file and the environment (SPEC §6),
 * loaded once at start-up, frozen and passed down. A bad value stops start-up
 * with a message naming the field.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { MaxFailures } from './contracts/batch-options.js';
import { MAX_HOSTS } from './contracts/host-list.js';
import { ROLES } from './contracts/roles.js';
import { LABEL_PART, LABEL_RULE } from './contracts/selector.js';
import { builtinRunbooks } from './core/runbooks/builtin.js';
import { Runbook } from './core/runbooks/runbook.js';
import {
  BUILTIN_OPERATIONS,
  conflictsOf,
  fromConfig,
  OperationConfig,
  type OperationDef,
} from './operations/registry.js';

const Long = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
/** Absolute path of plain characters: it is written into shell scripts on the host. */
const HostPath = z.string().regex(/^\/[A-Za-z0-9._/-]*$/, 'must be an absolute path of letters, digits, . _ - /');
/** RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens, 63 at most each, 253 in all. */
const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
/** Where SSH connects: an IPv4 or IPv6 address, or a host name (never an option such as `-oProxyCommand=…`). */
const HostAddress = z
  .string()
  .refine((s) => isIP(s) !== 0 || HOST_NAME.test(s), 'must be an IP address or a host name');
const Role = z.enum(ROLES);

const DURATION_UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** A span of time as `<integer>(m|h|d)` (SPEC §10), e.g. `90m`, `12h`, `400d`. */
const Duration = z
  .string()
  .regex(/^[1-9][0-9]{0,5}[mhd]$/, 'must be a whole number of minutes, hours or days, like 90m, 12h or 400d');

/** Milliseconds of a `<integer>(m|h|d)` span (validated by the schema). */
export function durationMs(span: string): number {
  return Number(span.slice(0, -1)) * DURATION_UNIT_MS[span.slice(-1) as keyof typeof DURATION_UNIT_MS];
}
const SlackGrant = z
  .object({
    usergroups: z.array(z.string().regex(/^S[A-Z0-9]+$/, 'must be a Slack user group id (S…)')).default([]),
    users: z.array(z.string().regex(/^[UW][A-Z0-9]+$/, 'must be a Slack user id (U… or W…)')).default([]),
  })
  .strict();

/** A label's key or value (SPEC §9); a YAML number (`zone: 1`) is read as its string. */
const LabelPart = z.string().regex(LABEL_PART, `must be ${LABEL_RULE}`);
const Labels = z
  .record(z.string(), z.union([z.string(), z.number().transform(String)]).pipe(LabelPart))
  .superRefine((labels, ctx) => {
    // Checked here rather than as the record's key schema, whose error names no rule.
    for (const key of Object.keys(labels)) {
      if (!LabelPart.safeParse(key).success)
        ctx.addIssue({ code: 'custom', path: [key], message: `a label key must be ${LABEL_RULE}` });
    }
  });
const GroupName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be letters, digits, . _ - (max 63)');

/**
 * What a host or a group may set (SPEC §9). No defaults here: a host's unset
 * field takes its group's, then `ssh:`'s or the default (see mergeGroups).
 */
const PosixUser = z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a POSIX user name');

const HostSettings = {
  port: z.number().int().min(1).max(65535).optional(),
  username: PosixUser.optional(),
  /** Steps, their state files and cancel run as this user, by `sudo -n -u <user>` (SPEC §9). */
  become: z.strictObject({ user: PosixUser }).optional(),
  /**
   * A bastion, as OpenSSH's ProxyJump (SPEC §9): one connection to it (its host
   * key checked like any host's) carries a forwarded channel to every host
   * behind it. Its login: `username` (default the host's) with the host's key
   * or the ssh-agent, unless `privateKeyPath` names its own.
   */
  jump: z
    .strictObject({
      address: HostAddress,
      port: z.number().int().min(1).max(65535).default(22),
      username: PosixUser.optional(),
      privateKeyPath: z.string().min(1).optional(),
    })
    .optional(),
  /** The key to log in with; none anywhere: the ssh-agent at SSH_AUTH_SOCK. */
  privateKeyPath: z.string().min(1).optional(),
  agentHome: HostPath.optional(),
  /** Where step pid, output and exit files live on the host; default <agentHome>/.ocp-chatops. */
  stateDir: HostPath.optional(),
  labels: Labels.optional(),
};

const Group = z.object(HostSettings).strict();

const Host = z
  .object({
    id: Long,
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'must be letters, digits, . _ - (max 63)')
      .refine((n) => n !== 'all', '"all" is not a valid host name'),
    address: HostAddress,
    group: GroupName.optional(),
    ...HostSettings,
  })
  .strict();

const FileSchema = z
  .object({
    hosts: z.array(Host).default([]),
    /** Settings shared by the hosts that name the group (SPEC §9). */
    groups: z.record(GroupName, Group).default({}),
    ssh: z
      .object({
        /** No default: without one (here, a group's or a host's) the ssh-agent at SSH_AUTH_SOCK. */
        privateKeyPath: z.string().min(1).optional(),
        knownHostsPath: z.string().min(1).default('~/.ssh/known_hosts'),
        /** Seconds "Stop all" waits before kill -9 of leftovers. */
        killGraceSeconds: z.number().int().min(0).max(3600).default(30),
        /** Seconds to wait for an SSH handshake. */
        connectTimeoutSeconds: z.number().int().min(1).max(300).default(10),
      })
      .strict()
      .prefault({}),
    access: z
      .object({
        users: z
          .array(
            z
              .object({
                username: z.string().min(1).max(64),
                passwordHash: z
                  .string()
                  .regex(/^scrypt:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/, 'must be "scrypt:<salt base64>:<hash base64>"'),
                roles: z.array(Role).min(1),
              })
              .strict(),
          )
          .default([]),
        slack: z.partialRecord(Role, SlackGrant).default({}),
        /**
         * Failed HTTP Basic sign-ins (SPEC §3), each limit draining fully over windowSeconds;
         * past one, a sign-in is refused with 429 before its password is checked. Raise
         * perAddress when many users reach the service through one proxy or NAT.
         */
        signIn: z
          .object({
            /** Failures per window of one user name, from any address. */
            perUser: z.number().int().min(1).max(100_000).default(10),
            /** Failures per window from one client address (IPv6: its /64), whatever users it names. */
            perAddress: z.number().int().min(1).max(100_000).default(30),
            windowSeconds: z.number().int().min(1).max(86_400).default(60),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    /** Defaults of every batch's rolling options (SPEC §10); a request's fields or Slack tokens override them. */
    batch: z
      .object({
        /** Hosts of a batch that run at once. */
        maxParallel: z.number().int().min(1).max(2000).default(20),
        /** The first this many hosts run first and alone (0: no canary). */
        canary: z.number().int().min(0).max(MAX_HOSTS).default(0),
        /** Failed hosts tolerated, a count or a percentage ("5%"); absent: no limit. */
        maxFailures: MaxFailures.optional(),
      })
      .strict()
      .prefault({}),
    executor: z
      .object({
        /** Seconds: a dead executor's work is taken over within this. */
        leaseSeconds: z.number().int().min(2).max(3600).default(30),
        /** Subtasks one executor process runs at once. */
        concurrency: z.number().int().min(1).max(1000).default(64),
      })
      .strict()
      .prefault({}),
    nats: z
      .object({ replicas: z.union([z.literal(1), z.literal(3), z.literal(5)]).default(1) })
      .strict()
      .prefault({}),
    slack: z
      .object({
        command: z
          .string()
          .regex(/^\/[a-z0-9_-]{1,31}$/, 'must be a slash command like /ocp-agent')
          .default('/ocp-agent'),
        defaultChannel: z
          .string()
          .regex(/^[CG][A-Z0-9]+$/, 'must be a Slack channel id (C… or G…)')
          .optional(),
      })
      .strict()
      .prefault({}),
    runbooks: z.string().min(1).optional(),
    /** Operations of one's own (SPEC §8), beside the built-in restart, stop and start. */
    operations: z.array(OperationConfig).max(100).default([]),
    /**
     * How long finished tasks (their records, logs, Slack threads, request
     * entries) and events (the audit stream, the request streams) are kept,
     * each `<integer>(m|h|d)` (SPEC §10), default 400d.
     * Never the id counter, the host locks or a running task.
     */
    retention: z
      .object({ tasks: Duration.default('400d'), events: Duration.default('400d') })
      .strict()
      .prefault({}),
    /** The web page under /ui/ (SPEC §12). */
    web: z
      .object({
        /**
         * Where people reach the service (`https://ocp-chatops.example.com`, no trailing
         * slash needed): Slack parent messages link to `{publicUrl}/ui/tasks/{id}`, and an
         * https address marks the session cookie Secure. Unset: no links.
         */
        publicUrl: z
          .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL' })
          .transform((u) => u.replace(/\/+$/, ''))
          .optional(),
        /** Minutes a web session lasts from its sign-in, default 480 (8 h). */
        sessionMinutes: z.number().int().min(1).max(43_200).default(480),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const seen = { id: new Set<number>(), name: new Set<string>() };
    cfg.hosts.forEach((h, i) => {
      if (seen.id.has(h.id))
        ctx.addIssue({ code: 'custom', path: ['hosts', i, 'id'], message: `duplicate host id ${h.id}` });
      if (seen.name.has(h.name))
        ctx.addIssue({ code: 'custom', path: ['hosts', i, 'name'], message: `duplicate host name ${h.name}` });
      seen.id.add(h.id);
      seen.name.add(h.name);
      if (h.group !== undefined && !Object.hasOwn(cfg.groups, h.group))
        ctx.addIssue({ code: 'custom', path: ['hosts', i, 'group'], message: `unknown group ${h.group}` });
    });
    for (const [i, field, message] of conflictsOf(cfg.operations)) {
      ctx.addIssue({ code: 'custom', path: ['operations', i, field], message });
    }
    // Each operation's steps use only the placeholders there are: the built-in ones and its parameters.
    cfg.operations.forEach((op, i) => {
      for (const rb of fromConfig(op).runbooks) {
        const checked = Runbook.safeParse(rb);
        if (checked.success) continue;
        const part = rb.name.endsWith(' rollback') ? 'rollback' : 'steps';
        for (const issue of checked.error.issues) {
          ctx.addIssue({
            code: 'custom',
            path: ['operations', i, part, ...issue.path.slice(1)],
            message: issue.message,
          });
        }
      }
    });
  });

const EnvSchema = z.object({
  HTTP_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /** Address the HTTP port listens on; default every interface. Tests and the demo use 127.0.0.1. */
  HTTP_HOST: z
    .string()
    .regex(/^[0-9A-Fa-f.:]+$/, 'must be an IP address')
    .default('0.0.0.0'),
  NATS_URL: z
    .string()
    .regex(/^(nats|tls|ws|wss):\/\/\S+$/, 'must be a nats:// or tls:// URL')
    .optional(),
  NATS_CREDS: z.string().min(1).optional(),
  NATS_USER: z.string().min(1).optional(),
  NATS_PASSWORD: z.string().min(1).optional(),
  SLACK_SIGNING_SECRET: z.string().min(1).optional(),
  SLACK_BOT_TOKEN: z.string().min(1).optional(),
  SLACK_APP_TOKEN: z.string().min(1).optional(),
  SLACK_API_URL: z.url().default('https://slack.com/api/'),
  ROLES: z
    .string()
    .default('api,slack,executor,notifier')
    .transform((s) =>
      s
        .split(',')
        .map((r) => r.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(['api', 'slack', 'executor', 'notifier'])).min(1)),
  /** The ssh-agent used for a host without a privateKeyPath (SPEC §9). */
  SSH_AUTH_SOCK: z.string().min(1).optional(),
  /** Unlocks an encrypted privateKeyPath; a secret, never logged. */
  SSH_KEY_PASSPHRASE: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

/** A host with its group's settings, `ssh:`'s and the defaults filled in. */
export interface HostConfig {
  id: number;
  name: string;
  address: string;
  port: number;
  username: string;
  agentHome: string;
  stateDir: string;
  labels: Readonly<Record<string, string>>;
  group?: string;
  /** Absolute; none: the ssh-agent at SSH_AUTH_SOCK logs in. */
  privateKeyPath?: string;
  /** Steps run as this user, by `sudo -n -u` after logging in as `username`. */
  become?: { user: string };
  /** The bastion every connection to the host goes through. */
  jump?: JumpHost;
}

/** A bastion with its login filled in (`username`: the host's when unset; no key: the host's). */
export interface JumpHost {
  address: string;
  port: number;
  username: string;
  /** Absolute; none: the host's key, else the ssh-agent. */
  privateKeyPath?: string;
}
type FileConfig = z.infer<typeof FileSchema>;
type EnvConfig = z.infer<typeof EnvSchema>;

export interface Config extends Omit<FileConfig, 'hosts' | 'groups' | 'runbooks' | 'operations'> {
  hosts: HostConfig[];
  runbooks: Runbook[];
  /** The registry: the built-in operations, then the configured ones (SPEC §8). */
  operations: OperationDef[];
  env: EnvConfig;
  /** The file the configuration came from. */
  source: string;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function describeIssues(where: string, error: z.ZodError): string {
  const lines = error.issues.map((i) => `  ${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`);
  return `invalid configuration in ${where}:\n${lines.join('\n')}`;
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? join(homedir(), p.slice(1)) : p;
}

/** The config file to read: CONFIG_FILE, else ./ocp-chatops.yml, else the shipped example. */
export function resolveConfigPath(env: NodeJS.ProcessEnv, cwd: string): { path: string; warning?: string } {
  if (env.CONFIG_FILE) return { path: resolve(cwd, env.CONFIG_FILE) };
  const local = resolve(cwd, 'ocp-chatops.yml');
  if (existsSync(local)) return { path: local };
  const example = fileURLToPath(new URL('../config/example.yml', import.meta.url));
  return { path: example, warning: `no ocp-chatops.yml in ${cwd} and CONFIG_FILE unset: using ${example}` };
}

/** Built-in runbooks, with those of the same name replaced by YAML files in `dir`. */
export function loadRunbooks(dir: string | undefined): Runbook[] {
  const byName = new Map(builtinRunbooks.map((r) => [r.name, r]));
  if (dir === undefined) return [...byName.values()];
  if (!existsSync(dir)) throw new ConfigError(`invalid configuration: runbooks: folder ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new ConfigError(`invalid configuration: runbooks: ${dir} is not a folder`);
  for (const file of readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()) {
    const path = join(dir, file);
    let raw: unknown;
    try {
      raw = parseYaml(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new ConfigError(`invalid runbook ${path}: ${(err as Error).message}`);
    }
    const parsed = Runbook.safeParse(raw);
    if (!parsed.success) throw new ConfigError(describeIssues(`runbook ${path}`, parsed.error));
    byName.set(parsed.data.name, parsed.data);
  }
  return [...byName.values()];
}

/** Validate a parsed file and an environment; throws ConfigError naming every bad field. */
export function parseConfig(raw: unknown, env: NodeJS.ProcessEnv, source: string, baseDir: string): Config {
  const file = FileSchema.safeParse(raw ?? {});
  if (!file.success) throw new ConfigError(describeIssues(source, file.error));
  // An empty variable (a compose file passing an unset one through) counts as unset.
  const envParsed = EnvSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')));
  if (!envParsed.success) throw new ConfigError(describeIssues('the environment', envParsed.error));
  if (envParsed.data.NATS_CREDS && envParsed.data.NATS_USER) {
    throw new ConfigError(
      'invalid configuration in the environment:\n  NATS_CREDS: set either NATS_CREDS or NATS_USER, not both',
    );
  }
  if (Boolean(envParsed.data.NATS_USER) !== Boolean(envParsed.data.NATS_PASSWORD)) {
    throw new ConfigError(
      'invalid configuration in the environment:\n  NATS_PASSWORD: NATS_USER and NATS_PASSWORD go together',
    );
  }
  const { hosts, groups, runbooks, ssh, operations, ...rest } = file.data;
  const own = operations.map(fromConfig);
  const keyPath = (p: string | undefined) => (p === undefined ? undefined : resolve(baseDir, expandHome(p)));
  const config: Config = {
    ...rest,
    ssh: {
      ...ssh,
      privateKeyPath: keyPath(ssh.privateKeyPath),
      knownHostsPath: resolve(baseDir, expandHome(ssh.knownHostsPath)),
    },
    hosts: mergeGroups(hosts, groups, ssh.privateKeyPath).map((h) => ({
      ...h,
      ...(h.privateKeyPath === undefined ? {} : { privateKeyPath: keyPath(h.privateKeyPath) }),
      ...(h.jump?.privateKeyPath === undefined
        ? {}
        : { jump: { ...h.jump, privateKeyPath: keyPath(h.jump.privateKeyPath) } }),
    })),
    runbooks: [
      ...loadRunbooks(runbooks === undefined ? undefined : resolve(baseDir, expandHome(runbooks))),
      ...own.flatMap((o) => o.runbooks),
    ],
    operations: [...BUILTIN_OPERATIONS, ...own.map((o) => o.operation)],
    env: envParsed.data,
    source,
  };
  return deepFreeze(config);
}

type HostEntry = z.infer<typeof Host>;

/**
 * Each host with its group's settings under its own, then `ssh.privateKeyPath`
 * and the defaults (SPEC §9): a host's setting wins over its group's; labels
 * merge key by key, the host's winning. Groups are known to exist (checked by
 * the schema).
 */
export function mergeGroups(
  hosts: readonly HostEntry[],
  groups: Readonly<Record<string, z.infer<typeof Group>>>,
  sshKeyPath: string | undefined,
): HostConfig[] {
  return hosts.map((h) => {
    const g = h.group === undefined ? {} : (groups[h.group] ?? {});
    const agentHome = h.agentHome ?? g.agentHome ?? '/home/admin/ocp_agent';
    const privateKeyPath = h.privateKeyPath ?? g.privateKeyPath ?? sshKeyPath;
    const become = h.become ?? g.become;
    const username = h.username ?? g.username ?? 'admin';
    const jump = h.jump ?? g.jump;
    return {
      id: h.id,
      name: h.name,
      address: h.address,
      port: h.port ?? g.port ?? 22,
      username,
      agentHome,
      stateDir: h.stateDir ?? g.stateDir ?? `${agentHome}/.ocp-chatops`,
      labels: { ...g.labels, ...h.labels },
      ...(h.group === undefined ? {} : { group: h.group }),
      ...(privateKeyPath === undefined ? {} : { privateKeyPath }),
      ...(become === undefined ? {} : { become }),
      ...(jump === undefined ? {} : { jump: { ...jump, username: jump.username ?? username } }),
    };
  });
}

export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): { config: Config; warning?: string } {
  const { path, warning } = resolveConfigPath(env, cwd);
  const config = readConfigFile(path, env);
  return warning === undefined ? { config } : { config, warning };
}

/** Read and validate one config file (at start, and again on SIGHUP or a change); throws ConfigError. */
export function readConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): Config {
  if (!existsSync(path)) throw new ConfigError(`CONFIG_FILE: ${path} does not exist`);
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError(`invalid configuration in ${path}: not YAML: ${(err as Error).message}`);
  }
  return parseConfig(raw, env, path, resolve(path, '..'));
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Per inventory (a configuration's hosts, never changed in place), its hosts by id and by name. */
const hostIndexes = new WeakMap<readonly HostConfig[], Map<number | string, HostConfig>>();

/** The host with this id (or name): a map's look-up, however large the inventory (a 5,000-host batch asks 25,000 times). */
export function findHost(config: Config, ref: number | string): HostConfig | undefined {
  let index = hostIndexes.get(config.hosts);
  if (!index) {
    index = new Map();
    // By name first, then by id: an id wins over a name that looks like it, as `find` gave.
    for (const h of config.hosts) if (!index.has(h.name)) index.set(h.name, h);
    for (const h of [...config.hosts].reverse()) index.set(h.id, h);
    hostIndexes.set(config.hosts, index);
  }
  return index.get(ref);
}

export function findRunbook(config: Config, name: string): Runbook {
  const rb = config.runbooks.find((r) => r.name === name);
  if (!rb) throw new Error(`no runbook named ${name}`);
  return rb;
}
