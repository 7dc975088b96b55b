/**
 * Latency of `POST /compute/hosts/{hostId}/agent/restart` under concurrent
 * HTTP Basic clients, against the real service (ROLES=api, so tasks are stored,
 * hosts locked and first subtasks queued, but nothing executes) and a real
 * nats-server. Baseline, in the same process and with the same clients:
 * `GET /healthz`. Every restart targets its own host (a second one on a locked
 * host would be a 409).
 *
 * The service remembers a verified Authorization header for a minute, so the
 * measured restarts pay scrypt only once (in the warm-up). Breakdown rows, to
 * show where the time goes:
 *   - Basic auth, remembered header: an authenticated request to an unknown
 *     path (→ 404; no NATS);
 *   - Basic auth, wrong password: failures are never remembered; the first ones
 *     run scrypt on libuv's pool (→ 401), then the sign-in throttle refuses them
 *     before any hash (→ 429; src/http/sign-in-throttle.ts);
 *   - the restart operation called directly, with the same concurrency (task
 *     creation on NATS; no HTTP, no auth);
 *   - one scrypt with the service's parameters (hashPassword), serially.
 *
 *   npx tsx bench/http-restart.ts [--requests 1000] [--clients 50] [--breakdown 300]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { cpus, loadavg, platform, release, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { type Caller, findApiOperation, parseInput } from '../src/api/operations.js';
import { parseConfig } from '../src/config.js';
import { hashPassword } from '../src/http/auth.js';
import { createLogger } from '../src/logger.js';
import { type Service, startService } from '../src/service.js';
import { traceIdFrom } from '../src/trace-id.js';
import { canConnect, findExecutable, type NatsServerHandle, startNatsServer } from '../test/helpers/nats-server.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 0) throw new Error(`--${name} wants a non-negative integer`);
  return v;
}

const REQUESTS = Math.max(1, flag('requests', 1000));
const CLIENTS = Math.max(1, flag('clients', 50));
const BREAKDOWN = flag('breakdown', 300);
const WARMUP = 100;
const SCRYPT_RUNS = 30;
/** Hosts: warm-up, measured restarts and the direct-operation breakdown each get their own. */
const HOSTS = Math.max(2000, WARMUP + REQUESTS + BREAKDOWN);
const LOOPBACK = '127.0.0.1';
const USER = 'bench';
const PASSWORD = 'bench-secret-1';
const basic = (password: string) => `Basic ${Buffer.from(`${USER}:${password}`).toString('base64')}`;
const AUTH = basic(PASSWORD);
const WRONG_AUTH = basic('wrong-password');

function percentile(sorted: number[], p: number): number {
  const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, i)] as number;
}

interface Phase {
  measure: string;
  latencies: number[];
  wallMs: number;
  failures: number;
  /** Process CPU (user + system) spent during the phase, ms. */
  cpuMs: number;
  /** Event-loop utilisation during the phase, 0..1. */
  elu: number;
  /** Messages the service's NATS connection sent and received during the phase. */
  natsOut: number;
  natsIn: number;
  firstFailure?: string;
}

interface Answer {
  status: number;
  body: string;
}

/** One HTTP request on the shared keep-alive agent. */
function call(
  agent: Agent,
  port: number,
  method: string,
  path: string,
  body?: string,
  authorization: string | undefined = path === '/healthz' ? undefined : AUTH,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (authorization !== undefined) headers.authorization = authorization;
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    const req = httpRequest({ host: LOOPBACK, port, method, path, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * `clients` async loops share `count` jobs; job i is run by client i % clients,
 * so each client has its own jobs (its own hosts). `check` returns an error
 * text for a wrong answer.
 */
async function runPhase(
  measure: string,
  count: number,
  clients: number,
  job: (i: number) => Promise<string | undefined>,
): Promise<Phase> {
  const latencies: number[] = [];
  let failures = 0;
  let firstFailure: string | undefined;
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const nats0 = natsStats();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(clients, count) }, async (_, c) => {
      for (let i = c; i < count; i += clients) {
        const s = performance.now();
        let problem: string | undefined;
        try {
          problem = await job(i);
        } catch (err) {
          problem = `error: ${(err as Error).message}`;
        }
        latencies.push(performance.now() - s);
        if (problem !== undefined) {
          failures++;
          firstFailure ??= problem;
        }
      }
    }),
  );
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0).utilization;
  const nats1 = natsStats();
  return {
    natsOut: nats1.outMsgs - nats0.outMsgs,
    natsIn: nats1.inMsgs - nats0.inMsgs,
    measure,
    latencies,
    wallMs,
    failures,
    cpuMs: (cpu.user + cpu.system) / 1000,
    elu,
    ...(firstFailure === undefined ? {} : { firstFailure }),
  };
}

/** The service's NATS connection counters, once it runs. */
let natsStats: () => { inMsgs: number; outMsgs: number } = () => ({ inMsgs: 0, outMsgs: 0 });

function expectOk(a: Answer): string | undefined {
  if (a.status !== 200) return `HTTP ${a.status}: ${a.body.slice(0, 200)}`;
  try {
    const body = JSON.parse(a.body) as { successful?: unknown };
    if (body.successful !== true) return `successful=${String(body.successful)}: ${a.body.slice(0, 200)}`;
  } catch {
    return `not JSON: ${a.body.slice(0, 200)}`;
  }
  return undefined;
}

const restart = (agent: Agent, port: number, hostId: number) =>
  call(agent, port, 'POST', `/compute/hosts/${hostId}/agent/restart`, '{}').then(expectOk);
const healthz = (agent: Agent, port: number) =>
  call(agent, port, 'GET', '/healthz').then((a) =>
    a.status === 200 ? undefined : `HTTP ${a.status}: ${a.body.slice(0, 200)}`,
  );
const authOnly = (agent: Agent, port: number) =>
  call(agent, port, 'GET', '/bench/no-such-route').then((a) =>
    a.status === 404 ? undefined : `expected 404 after auth, got HTTP ${a.status}: ${a.body.slice(0, 200)}`,
  );
const authWrong = (agent: Agent, port: number) =>
  call(agent, port, 'GET', '/bench/no-such-route', undefined, WRONG_AUTH).then((a) =>
    a.status === 401 || a.status === 429
      ? undefined
      : `expected 401 or 429, got HTTP ${a.status}: ${a.body.slice(0, 200)}`,
  );

function configFile(passwordHash: string): unknown {
  return {
    hosts: Array.from({ length: HOSTS }, (_, k) => {
      const id = k + 1;
      return { id, name: `h${id}`, address: `127.0.${Math.floor(id / 254)}.${(id % 254) + 1}` };
    }),
    access: { users: [{ username: USER, passwordHash, roles: ['HOST_MANAGER'] }] },
  };
}

function row(p: Phase): string {
  const s = [...p.latencies].sort((a, b) => a - b);
  const f = (x: number) => x.toFixed(1);
  const rps = (p.latencies.length / p.wallMs) * 1000;
  return `| ${p.measure} | ${p.latencies.length} | ${f(percentile(s, 50))} | ${f(percentile(s, 99))} | ${f(s.at(-1) ?? 0)} | ${rps.toFixed(1)} |`;
}

function p50(p: Phase): number {
  return percentile(
    [...p.latencies].sort((a, b) => a - b),
    50,
  );
}

function natsVersion(): string {
  try {
    return execFileSync(findExecutable('nats-server'), ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return 'nats-server (version unknown)';
  }
}

async function main(): Promise<void> {
  const started = performance.now();
  const cpuList = cpus();
  console.log(
    `machine: ${cpuList.length} CPUs (${cpuList[0]?.model ?? '?'}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ` +
      `${platform()} ${release()}, node ${process.version}, ${natsVersion()}, loadavg ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
  );
  console.log(
    `setup: ${REQUESTS} requests per measure, ${CLIENTS} concurrent clients (keep-alive, maxSockets ${CLIENTS}), ` +
      `warm-up ${WARMUP} restarts + ${WARMUP} healthz, ${HOSTS} hosts, ROLES=api (no executor), ` +
      'client and service in one process',
  );

  let nats: NatsServerHandle | undefined;
  let service: Service | undefined;
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  try {
    nats = await startNatsServer();
    const passwordHash = hashPassword(PASSWORD, randomBytes(16));
    const config = parseConfig(
      configFile(passwordHash),
      { NATS_URL: nats.url, HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', ROLES: 'api', LOG_LEVEL: 'warn' },
      'bench/http-restart.ts (generated)',
      process.cwd(),
    );
    service = await startService({ config, logger: createLogger('warn'), natsUrl: nats.url });
    const nc = service.nc;
    natsStats = () => nc.stats();
    const port = service.httpPort;
    if (port === undefined) throw new Error('service does not serve HTTP');

    // Hosts: 1..WARMUP warm-up, then REQUESTS measured, then BREAKDOWN direct operations.
    const warm = await runPhase('warm-up restart', WARMUP, CLIENTS, (i) => restart(agent, port, 1 + i));
    await runPhase('warm-up healthz', WARMUP, CLIENTS, () => healthz(agent, port));
    if (warm.failures > 0) throw new Error(`warm-up restarts failed (${warm.failures}): ${warm.firstFailure}`);

    const phases: Phase[] = [];
    const restarts = await runPhase(`POST /compute/hosts/{id}/agent/restart`, REQUESTS, CLIENTS, (i) =>
      restart(agent, port, WARMUP + 1 + i),
    );
    phases.push(restarts);
    const health = await runPhase('baseline: GET /healthz', REQUESTS, CLIENTS, () => healthz(agent, port));
    phases.push(health);

    if (BREAKDOWN > 0) {
      phases.push(
        await runPhase('breakdown: Basic auth, remembered header (→ 404; no NATS)', BREAKDOWN, CLIENTS, () =>
          authOnly(agent, port),
        ),
      );
      phases.push(
        await runPhase(
          'breakdown: Basic auth, wrong password (10 checked → 401, then throttled → 429)',
          BREAKDOWN,
          CLIENTS,
          () => authWrong(agent, port),
        ),
      );
      const op = findApiOperation(service.deps.config, 'agent.restart')!;
      const deps = service.deps;
      phases.push(
        await runPhase(
          'breakdown: restart operation called directly (no HTTP, no auth)',
          BREAKDOWN,
          CLIENTS,
          async (i) => {
            const caller: Caller = { name: USER, traceId: traceIdFrom(undefined) };
            const input = parseInput(op, { hostId: String(WARMUP + REQUESTS + 1 + i) });
            await op.run(deps, input, caller);
            return undefined;
          },
        ),
      );
      phases.push(
        await runPhase('breakdown: one scrypt (hashPassword, 1 caller, serial)', SCRYPT_RUNS, 1, async () => {
          hashPassword(PASSWORD, randomBytes(16));
          return undefined;
        }),
      );
    }

    console.log('');
    console.log('| measure | requests | p50 ms | p99 ms | max | throughput req/s |');
    console.log('|---|---|---|---|---|---|');
    for (const p of phases) console.log(row(p));
    console.log('');
    console.log(`ratio of p50s (restart / healthz): ${(p50(restarts) / p50(health)).toFixed(1)}`);
    console.log('');
    console.log(
      '| measure | failures | process CPU ms / request | event-loop utilisation | NATS msgs out / in per request |',
    );
    console.log('|---|---|---|---|---|');
    for (const p of phases) {
      const n = p.latencies.length;
      console.log(
        `| ${p.measure} | ${p.failures} | ${(p.cpuMs / n).toFixed(2)} | ${(p.elu * 100).toFixed(0)}% | ` +
          `${(p.natsOut / n).toFixed(1)} / ${(p.natsIn / n).toFixed(1)} |`,
      );
    }
    for (const p of phases) {
      if (p.failures > 0) console.log(`${p.measure}: ${p.failures} failed; first: ${p.firstFailure}`);
    }
    if (restarts.failures > 0 || health.failures > 0) process.exitCode = 1;
  } finally {
    agent.destroy();
    await service?.stop().catch((err: unknown) => console.error('service stop failed:', err));
    await nats?.stop().catch((err: unknown) => console.error('nats-server stop failed:', err));
    if (nats) {
      const listening = await canConnect(LOOPBACK, nats.port);
      const storeLeft = existsSync(nats.storeDir);
      console.log(
        `cleanup: nats-server on ${LOOPBACK}:${nats.port} ${listening ? 'STILL LISTENING' : 'gone'}, ` +
          `store ${storeLeft ? 'LEFT BEHIND' : 'removed'}`,
      );
      if (listening || storeLeft) process.exitCode = 1;
    }
    console.log(`\ntotal bench time: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
}

await main();
