/**
 * A signed-in user's calls during a flood of wrong passwords (issue 10, item 6), against the
 * real service (ROLES=api) and a real nats-server, client and service in one process.
 *
 * The valid call is `GET /api/v2/tasks/instances/{id}` by a user whose credential the service
 * has verified (so it is remembered); it is timed one call after another:
 *   1. with nothing else going on;
 *   2. while FLOOD wrong-password requests are sent, CONCURRENCY at a time, from ADDRESSES
 *      loopback addresses (127.0.0.100, …), a quarter of them for the same user's name and the
 *      rest for names that do not exist.
 * Alongside each, a probe of libuv's thread pool, which scrypt shares with DNS look-ups (SSH
 * hosts by name, Slack's API), file I/O and zlib: `dns.lookup('localhost')` one after another.
 * The flood comes from a child process (as an attacker's would come from elsewhere), so its
 * client work is not on the service's event loop.
 *
 *   npx tsx bench/auth-flood.ts [--flood 1000] [--concurrency 100] [--addresses 50]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { request as httpRequest } from 'node:http';
import { cpus, loadavg, platform, release } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseConfig } from '../src/config.js';
import { hashPassword } from '../src/http/auth.js';
import { createLogger } from '../src/logger.js';
import { type Service, startService } from '../src/service.js';
import { type NatsServerHandle, startNatsServer } from '../test/helpers/nats-server.js';
import { type Summary, summarize } from './lib/common.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} wants a positive integer`);
  return v;
}

const FLOOD = flag('flood', 1000);
const CONCURRENCY = flag('concurrency', 100);
const ADDRESSES = Math.min(150, flag('addresses', 50));
/** Valid calls timed with no flood. */
const BASELINE_CALLS = 300;
const USER = 'bench';
const PASSWORD = 'bench-secret-1';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

interface Answer {
  status: number;
  body: string;
  retryAfter: string | undefined;
}

function call(port: number, method: string, path: string, authorization: string, from = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: '127.0.0.1', port, method, path, localAddress: from, agent: false, headers: { authorization } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            retryAfter: res.headers['retry-after'],
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** The flood, as the child process runs it: answers tallied by status (and Retry-After), printed as JSON. */
async function floodClient(port: number, taskId: number): Promise<void> {
  const answers: Record<string, number> = {};
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < FLOOD; i = next++) {
        const name = i % 4 === 0 ? USER : `ghost-${i}`;
        const from = `127.0.0.${100 + (i % ADDRESSES)}`;
        let key: string;
        try {
          const a = await call(port, 'GET', `/api/v2/tasks/instances/${taskId}`, basic(name, `wrong-${i}`), from);
          key = `${a.status}${a.status === 429 ? ` (Retry-After ${a.retryAfter})` : ''}`;
        } catch (err) {
          key = `error ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
        }
        answers[key] = (answers[key] ?? 0) + 1;
      }
    }),
  );
  console.log(JSON.stringify({ answers, ms: performance.now() - started }));
}

/** Runs the flood in a child process; resolves with its tally. */
function flood(port: number, taskId: number): Promise<{ answers: Record<string, number>; ms: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        import.meta.resolve('tsx'),
        new URL(import.meta.url).pathname,
        ...process.argv.slice(2),
        '--flood-client',
        String(port),
        String(taskId),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as { answers: Record<string, number>; ms: number });
      } catch {
        reject(new Error(`flood client exited ${code}: ${out.slice(0, 500)}`));
      }
    });
  });
}

/** Runs `once` one call after another until `until()` is true (and at least `min` times); latencies in ms. */
async function loop(once: () => Promise<void>, until: () => boolean, min: number): Promise<number[]> {
  const ms: number[] = [];
  while (ms.length < min || !until()) {
    const t0 = performance.now();
    await once();
    ms.push(performance.now() - t0);
  }
  return ms;
}

const f = (x: number) => x.toFixed(1);
const line = (what: string, s: Summary) => `| ${what} | ${s.n} | ${f(s.median)} | ${f(s.p99)} | ${f(s.max)} |`;

async function main(): Promise<void> {
  console.log(
    `machine: ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${platform()} ${release()}, node ${process.version}, ` +
      `UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? '4 (default)'}, loadavg ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
  );
  console.log(
    `flood: ${FLOOD} wrong passwords, ${CONCURRENCY} at a time, from ${ADDRESSES} addresses (127.0.0.100…); ` +
      'a quarter for the valid user’s name',
  );
  let nats: NatsServerHandle | undefined;
  let service: Service | undefined;
  try {
    nats = await startNatsServer();
    const config = parseConfig(
      {
        hosts: [{ id: 1, name: 'h1', address: '127.0.0.10' }],
        access: {
          users: [
            {
              username: USER,
              passwordHash: hashPassword(PASSWORD, randomBytes(16)),
              roles: ['HOST_MANAGER', 'TASK_VIEWER'],
            },
          ],
        },
      },
      { NATS_URL: nats.url, HTTP_PORT: '0', HTTP_HOST: '127.0.0.1', ROLES: 'api', LOG_LEVEL: 'warn' },
      'bench/auth-flood.ts (generated)',
      process.cwd(),
    );
    service = await startService({ config, logger: createLogger('warn'), natsUrl: nats.url });
    const port = service.httpPort;
    if (port === undefined) throw new Error('service does not serve HTTP');
    const auth = basic(USER, PASSWORD);

    const created = await call(port, 'POST', '/compute/hosts/1/agent/restart', auth);
    if (created.status !== 200) throw new Error(`restart: HTTP ${created.status} ${created.body.slice(0, 200)}`);
    const taskId = (JSON.parse(created.body) as { data: { id: number } }).data.id;
    let failures = 0;
    const valid = async () => {
      const a = await call(port, 'GET', `/api/v2/tasks/instances/${taskId}`, auth);
      if (a.status !== 200) failures++;
    };
    const probe = async () => {
      await lookup('localhost');
    };
    for (let i = 0; i < 300; i++) await valid(); // warm-up (JIT); the credential is remembered from the restart

    // 1. no flood
    let done = false;
    const [baseCalls, baseDns] = await Promise.all([
      loop(valid, () => true, BASELINE_CALLS).finally(() => {
        done = true;
      }),
      loop(probe, () => done, 1),
    ]);

    // 2. the flood, from another process
    let flooding = true;
    const flooded = flood(port, taskId).finally(() => {
      flooding = false;
    });
    const [floodCalls, floodDns] = await Promise.all([
      loop(valid, () => !flooding, 1),
      loop(probe, () => !flooding, 1),
    ]);
    const { answers, ms: floodMs } = await flooded;

    const b = summarize(baseCalls);
    const w = summarize(floodCalls);
    const bd = summarize(baseDns);
    const wd = summarize(floodDns);
    console.log('');
    console.log('| measure | n | median ms | p99 ms | max ms |');
    console.log('|---|---|---|---|---|');
    console.log(line('valid call, no flood', b));
    console.log(line(`valid call, during the flood`, w));
    console.log(line('dns.lookup(localhost), no flood', bd));
    console.log(line('dns.lookup(localhost), during the flood', wd));
    console.log('');
    console.log(
      `ratio during/without flood: valid call median ×${(w.median / b.median).toFixed(2)}, p99 ×${(w.p99 / b.p99).toFixed(2)}; ` +
        `dns.lookup median ×${(wd.median / bd.median).toFixed(2)}, p99 ×${(wd.p99 / bd.p99).toFixed(2)}`,
    );
    console.log(
      `flood: ${FLOOD} requests answered in ${(floodMs / 1000).toFixed(2)} s: ${Object.entries(answers)
        .map(([k, v]) => `${k} ×${v}`)
        .join(', ')}`,
    );
    console.log(`valid calls that were not 200: ${failures}`);
    if (failures > 0) process.exitCode = 1;
  } finally {
    await service?.stop().catch((err: unknown) => console.error('service stop failed:', err));
    await nats?.stop().catch((err: unknown) => console.error('nats-server stop failed:', err));
  }
}

const client = process.argv.indexOf('--flood-client');
if (client > 0) await floodClient(Number(process.argv[client + 1]), Number(process.argv[client + 2]));
else await main();
