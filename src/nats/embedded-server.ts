/**
 * For a laptop: when NATS_URL is unset and nothing listens on the default
 * address, start a nats-server with JetStream under ./.data/nats.
 *
 * It has credentials of its own, never none: the task store decides what runs
 * on hosts, and a server without authentication lets every local user write
 * it. A user and a random password are made once and kept in
 * ./.data/nats-credentials.json (mode 0600, like the server's config beside
 * it); the service's own processes started in the same folder read them from
 * there. They are never logged and never passed on a command line (which any
 * local user can read in `ps`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { delimiter, join } from 'node:path';
import type { Logger } from 'pino';

export interface NatsCredentials {
  user: string;
  password: string;
}

export interface EmbeddedNats {
  child: ChildProcess;
  url: string;
  credentials: NatsCredentials;
}

const USER = 'ocp-chatops';
const CREDENTIALS_FILE = 'nats-credentials.json';
const CONFIG_FILE = 'nats-server.conf';
/** Owner read/write only. */
const PRIVATE = 0o600;

export function findNatsServer(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  return dirs.map((d) => join(d, 'nats-server')).find((p) => existsSync(p));
}

export function listening(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Write `text` to `path` readable by its owner only; never over an existing file. False if it exists. */
function writePrivateOnce(path: string, text: string): boolean {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: PRIVATE });
  try {
    linkSync(tmp, path); // atomic, and fails if another process made it first
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/** The embedded server's credentials kept in `dataDir`, if a server was ever embedded there. */
export function readEmbeddedCredentials(dataDir: string): NatsCredentials | undefined {
  const path = join(dataDir, CREDENTIALS_FILE);
  if (!existsSync(path)) return undefined;
  chmodSync(path, PRIVATE); // tightened if someone loosened it
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<NatsCredentials>;
  if (typeof parsed.user !== 'string' || typeof parsed.password !== 'string') {
    throw new Error(`${path}: not the embedded nats-server's credentials; remove it to make new ones`);
  }
  return { user: parsed.user, password: parsed.password };
}

/** The credentials kept in `dataDir`, made (32 random bytes) the first time. */
function embeddedCredentials(dataDir: string): NatsCredentials {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const existing = readEmbeddedCredentials(dataDir);
  if (existing) return existing;
  const made = { user: USER, password: randomBytes(32).toString('base64url') };
  writePrivateOnce(join(dataDir, CREDENTIALS_FILE), `${JSON.stringify(made)}\n`);
  // Whoever won a race to make them, these are the ones.
  return readEmbeddedCredentials(dataDir) as NatsCredentials;
}

/** nats-server's configuration: loopback only, JetStream under `storeDir`, one user. */
function serverConfig(host: string, port: number, storeDir: string, c: NatsCredentials): string {
  return [
    '# Written by ocp-chatops for its embedded nats-server; made again at each start.',
    `listen: ${JSON.stringify(`${host}:${port}`)}`,
    `jetstream { store_dir: ${JSON.stringify(storeDir)} }`,
    `authorization { users: [ { user: ${JSON.stringify(c.user)}, password: ${JSON.stringify(c.password)} } ] }`,
    '',
  ].join('\n');
}

export interface EmbeddedOptions {
  binary: string;
  /** ./.data: the JetStream store goes in <dataDir>/nats, the credentials and config beside it. */
  dataDir: string;
  logger: Logger;
  /** Default 127.0.0.1:4222, where NATS_URL's default points. */
  host?: string;
  port?: number;
}

export async function startEmbeddedNats(opts: EmbeddedOptions): Promise<EmbeddedNats> {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 4222;
  const storeDir = join(opts.dataDir, 'nats');
  mkdirSync(storeDir, { recursive: true, mode: 0o700 });
  const credentials = embeddedCredentials(opts.dataDir);
  const configPath = join(opts.dataDir, CONFIG_FILE);
  rmSync(configPath, { force: true });
  writeFileSync(configPath, serverConfig(host, port, storeDir, credentials), { mode: PRIVATE, flag: 'wx' });
  const child = spawn(opts.binary, ['-c', configPath], { stdio: 'ignore' });
  const url = `nats://${host}:${port}`;
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`nats-server exited with code ${child.exitCode}`);
    if (await listening(host, port)) {
      opts.logger.info(
        {
          binary: opts.binary,
          storeDir,
          url,
          user: credentials.user,
          credentials: join(opts.dataDir, CREDENTIALS_FILE),
        },
        'started an embedded nats-server with JetStream; it takes only the credentials kept in the data folder',
      );
      return { child, url, credentials };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`nats-server did not start listening on ${host}:${port} within 10 s`);
}
