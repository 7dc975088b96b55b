/**
 * The service as its own process, composed like src/main.ts but with a step
 * runner that never touches SSH (the runner is a port: src/executor/ports.ts).
 * For the throughput and memory benchmarks; never used by the product.
 *
 *   BENCH_RUNNER=instant        every step ends at once, exit 0, no output
 *   BENCH_RUNNER=sleep:<ms>     every step ends after <ms>, exit 0, no output
 *   BENCH_REPORT_AT=<n>         print a report line when <n> steps run at once
 *   BENCH_RUN_LOG=<file>        append each run's key to <file>, a line each (tests: what ran)
 *
 * Report lines on stdout are JSON with a "bench" key, beside pino's log lines:
 *   {"bench":"first-run","at":<epoch ms>}          the first step began
 *   {"bench":"in-flight","n":<n>,"at":…,"rss":…}   BENCH_REPORT_AT steps run at once
 * CONFIG_FILE, NATS_URL, ROLES, LOG_LEVEL as for src/main.ts (NATS_URL required).
 */
import { appendFileSync } from 'node:fs';
import { loadConfig } from '../src/config.js';
import type { StepResult, StepRunner } from '../src/executor/ports.js';
import { createLogger } from '../src/logger.js';
import { startService } from '../src/service.js';

const OK: StepResult = { end: 'exited', exitCode: 0, output: '', truncated: false };

function report(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(fields)}\n`);
}

function benchRunner(spec: string, reportAt: number, runLog?: string): StepRunner {
  const sleepMs = spec === 'instant' ? 0 : Number(/^sleep:(\d+)$/.exec(spec)?.[1] ?? Number.NaN);
  if (!Number.isFinite(sleepMs)) throw new Error(`BENCH_RUNNER must be instant or sleep:<ms>, not ${spec}`);
  const timers = new Set<NodeJS.Timeout>();
  let inFlight = 0;
  let first = true;
  let reported = false;
  return {
    async run(run) {
      if (runLog) appendFileSync(runLog, `${run.runKey}\n`);
      if (first) {
        first = false;
        report({ bench: 'first-run', at: Date.now() });
      }
      if (sleepMs === 0) return OK;
      inFlight++;
      if (!reported && reportAt > 0 && inFlight >= reportAt) {
        reported = true;
        report({ bench: 'in-flight', n: inFlight, at: Date.now(), rss: process.memoryUsage().rss });
      }
      try {
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            timers.delete(t);
            resolve();
          }, sleepMs);
          timers.add(t);
        });
        return OK;
      } finally {
        inFlight--;
      }
    },
    async exec() {
      return { exitCode: 0, stdout: '', stderr: '' };
    },
    async cancel() {},
    async close() {
      for (const t of timers) clearTimeout(t);
    },
  };
}

async function main(): Promise<void> {
  const { config } = loadConfig();
  const logger = createLogger(config.env.LOG_LEVEL);
  const natsUrl = config.env.NATS_URL;
  if (!natsUrl) throw new Error('NATS_URL must be set');
  const runner = benchRunner(
    process.env.BENCH_RUNNER ?? 'instant',
    Number(process.env.BENCH_REPORT_AT ?? 0),
    process.env.BENCH_RUN_LOG,
  );
  const service = await startService({ config, logger, natsUrl, runner });
  logger.info({ httpPort: service.httpPort, runner: process.env.BENCH_RUNNER }, 'ready');
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await service.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
}

main().catch((err) => {
  process.stderr.write(`executor-with-runner: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
