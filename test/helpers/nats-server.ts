// Test helper: a real nats-server (JetStream on) on a random loopback port.
//
// Also exports the small TCP/process utilities (freePort, waitForTcp,
// killOnExit, waitForExit) that sshd.ts reuses, so there is one
// implementation of "wait until a server is really listening".
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export interface NatsServerHandle {
  url: string;
  port: number;
  /** nats-server's HTTP monitoring port, when asked for (`monitor`). */
  monitorPort?: number;
  storeDir: string;
  /** SIGTERM, wait for exit, remove the store dir. */
  stop(): Promise<void>;
  /** SIGKILL (simulated crash), wait for exit, keep the store. */
  kill(): Promise<void>;
  /** Start again on the SAME port and SAME store dir; resolves once it accepts TCP. */
  restart(): Promise<void>;
}

const LOOPBACK = '127.0.0.1';
const START_TIMEOUT_MS = 10_000;

/** Absolute path of `name`, searched on PATH first and then in the sbin dirs
 * (Debian puts nats-server and sshd in /usr/sbin, which a non-login PATH may lack). */
export function findExecutable(name: string): string {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error(`${name} not found on PATH or in /usr/sbin`);
}

/** A port that is free on every given loopback address right now.
 * The kernel picks it on the first address; the others are checked by binding. */
export async function freePort(addresses: string[] = [LOOPBACK]): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await bindAndRelease(addresses[0] ?? LOOPBACK, 0);
    let allFree = true;
    for (const address of addresses.slice(1)) {
      try {
        await bindAndRelease(address, port);
      } catch {
        allFree = false;
        break;
      }
    }
    if (allFree) return port;
  }
  throw new Error(`no free port common to ${addresses.join(', ')}`);
}

function bindAndRelease(host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      const address = server.address();
      const bound = typeof address === 'object' && address ? address.port : port;
      server.close(() => resolve(bound));
    });
  });
}

/** True when host:port accepts a TCP connection. */
export function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(1_000, () => done(false));
  });
}

/**
 * Poll until every host accepts TCP on `port`. Fails early when the server
 * process has already died, and always puts its stderr into the error because
 * that is where nats-server/sshd explain why they did not come up.
 */
export async function waitForTcp(opts: {
  hosts: string[];
  port: number;
  child: ChildProcess;
  stderr: () => string;
  what: string;
  timeoutMs?: number;
}): Promise<void> {
  const deadline = Date.now() + (opts.timeoutMs ?? START_TIMEOUT_MS);
  const pending = new Set(opts.hosts);
  while (pending.size > 0) {
    if (opts.child.exitCode !== null || opts.child.signalCode !== null) {
      throw new Error(
        `${opts.what} exited (${opts.child.exitCode ?? opts.child.signalCode}) before listening on port ${opts.port}\nstderr:\n${opts.stderr()}`,
      );
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${opts.what} did not accept TCP on ${[...pending].join(', ')}:${opts.port} within ${opts.timeoutMs ?? START_TIMEOUT_MS} ms\nstderr:\n${opts.stderr()}`,
      );
    }
    for (const host of [...pending]) {
      if (await canConnect(host, opts.port)) pending.delete(host);
    }
    if (pending.size > 0) await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves when the child has exited (immediately if it already has). */
export function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

// Children still alive when the test process exits would outlive the test run
// (and keep ports/stores busy), so every server is SIGKILLed on 'exit'.
// 'exit' handlers must be synchronous: process.kill is.
const exitKillers = new Set<() => void>();
let exitHookInstalled = false;

/** Run `fn` synchronously when this process exits; returns an unregister function. */
export function killOnExit(fn: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const kill of exitKillers) {
        try {
          kill();
        } catch {
          // best effort: the process may already be gone
        }
      }
    });
  }
  exitKillers.add(fn);
  return () => exitKillers.delete(fn);
}

/** Keep only the tail of a stream so a chatty server cannot grow memory unboundedly. */
export function captureTail(stream: NodeJS.ReadableStream | null, max = 16_384): () => string {
  let text = '';
  stream?.on('data', (chunk: Buffer | string) => {
    text = (text + chunk.toString()).slice(-max);
  });
  return () => text;
}

export interface NatsServerOptions {
  /** Require this user and password of every client (nats-server --user/--pass). */
  auth?: { user: string; password: string };
  /**
   * Run with this nats-server configuration file (accounts, users, permissions),
   * its JetStream `store_dir` moved to the handle's temporary store and its
   * `listen` overridden by the random loopback port. `env`: the variables it
   * reads (`$NAME`), e.g. passwords.
   */
  config?: { file: string; env?: Record<string, string> };
  /** Serve nats-server's HTTP monitoring (varz, connz) on a free loopback port: the handle's `monitorPort`. */
  monitor?: boolean;
}

export async function startNatsServer(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const binary = findExecutable('nats-server');
  const port = await freePort();
  const monitorPort = opts.monitor ? await freePort() : undefined;
  const monitorArgs = monitorPort === undefined ? [] : ['-m', String(monitorPort)];
  const storeDir = await mkdtemp(join(tmpdir(), 'ocp-nats-'));
  let child: ChildProcess | undefined;
  // One exit hook for the handle's lifetime: kill whichever instance is current
  // and drop the store, so an aborted test run leaves nothing behind.
  const unregister = killOnExit(() => {
    child?.kill('SIGKILL');
    rmSync(storeDir, { recursive: true, force: true });
  });

  // A configuration names its own store_dir, which -sd may not repeat: point it at ours.
  let configPath: string | undefined;
  if (opts.config) {
    configPath = join(storeDir, 'nats-server.conf');
    const text = readFileSync(opts.config.file, 'utf8');
    if (!/^\s*store_dir:/m.test(text)) throw new Error(`${opts.config.file}: no jetstream store_dir to move`);
    writeFileSync(
      configPath,
      text.replace(/^(\s*)store_dir:.*$/m, `$1store_dir: ${JSON.stringify(join(storeDir, 'js'))}`),
    );
  }
  const launch = async (): Promise<void> => {
    const auth = opts.auth ? ['--user', opts.auth.user, '--pass', opts.auth.password] : [];
    const args = configPath
      ? ['-c', configPath, '-a', LOOPBACK, '-p', String(port), ...monitorArgs]
      : ['-a', LOOPBACK, '-p', String(port), '-js', '-sd', storeDir, ...auth, ...monitorArgs];
    const proc = spawn(binary, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ...opts.config?.env },
    });
    child = proc;
    // nats-server logs to stderr; keep it for the error message on failure.
    const stderr = captureTail(proc.stderr);
    await waitForTcp({ hosts: [LOOPBACK], port, child: proc, stderr, what: 'nats-server' });
  };

  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc) return;
    child = undefined;
    proc.kill(sig);
    await waitForExit(proc);
  };

  try {
    await launch();
  } catch (err) {
    unregister();
    await signal('SIGKILL');
    await rm(storeDir, { recursive: true, force: true });
    throw err;
  }

  return {
    url: `nats://${LOOPBACK}:${port}`,
    port,
    ...(monitorPort === undefined ? {} : { monitorPort }),
    storeDir,
    async stop() {
      unregister();
      await signal('SIGTERM');
      await rm(storeDir, { recursive: true, force: true });
    },
    async kill() {
      await signal('SIGKILL');
    },
    async restart() {
      // Stop any running instance first, so "restart" works after kill() and on a live server.
      await signal('SIGTERM');
      await launch();
    },
  };
}
