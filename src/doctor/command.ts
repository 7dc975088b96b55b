/**
 * `ocp-chatops doctor` and `npm run doctor`: read the configuration as the
 * service would (CONFIG_FILE, else ./ocp-chatops.yml, else the example), run
 * every check, print the table (or JSON), exit 1 when anything failed.
 */
import { parseArgs } from 'node:util';
import type { CliIo, ExitCode } from '../cli/io.js';
import { EXIT } from '../cli/io.js';
import { type Config, ConfigError, loadConfig } from '../config.js';
import { exitCodeOf, type Finding, finding, formatTable, progressLine, toJson } from './report.js';
import { DEFAULT_PARALLEL, DOCTOR_PARTS, type DoctorPart, runDoctor } from './run-doctor.js';

export const DOCTOR_HELP = `Usage: ocp-chatops doctor [--json] [--verbose] [--only <part>[,<part>…]] [--parallel <n>]

Checks everything the service will need, with the configuration it would read
(CONFIG_FILE, else ./ocp-chatops.yml, else config/example.yml) and its environment:

  hosts   each host, in parallel: TCP reach (through its bastion when \`jump\` is set),
          its host key in ssh.knownHostsPath, the login, \`become\` (sudo -n),
          ocp_agentctl present and its status
  nats    NATS_URL reachable with the service's credentials, JetStream on, the
          streams and buckets present with nats.replicas replicas
  slack   SLACK_BOT_TOKEN (auth.test against SLACK_API_URL), its scopes, every user
          group named in access.slack
  access  every access.users password hash well-formed

Prints a table (where, check, verdict, what to do) on stdout and the hosts' progress
on stderr; exits 1 when any check failed, 0 otherwise (warnings do not fail).

Options:
  --json            the findings as JSON: {ok, counts, findings:[{target, check, verdict, detail, remedy?}]}
  --verbose         every row, also those of hosts that are all well
  --only <parts>    some of: ${DOCTOR_PARTS.join(', ')}
  --parallel <n>    hosts checked at once (default ${DEFAULT_PARALLEL})
  -h, --help        this help
`;

export async function doctorCommand(args: readonly string[], io: CliIo): Promise<ExitCode> {
  let values: { json?: boolean; verbose?: boolean; only?: string; parallel?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...args],
      options: {
        json: { type: 'boolean' },
        verbose: { type: 'boolean' },
        only: { type: 'string' },
        parallel: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    io.stderr.write(`ocp-chatops doctor: ${(err as Error).message}\n\n${DOCTOR_HELP}`);
    return EXIT.usage;
  }
  if (values.help) {
    io.stdout.write(DOCTOR_HELP);
    return EXIT.ok;
  }
  const parts = values.only?.split(',').map((p) => p.trim());
  const unknown = parts?.filter((p) => !(DOCTOR_PARTS as readonly string[]).includes(p)) ?? [];
  const parallel = values.parallel === undefined ? DEFAULT_PARALLEL : Number(values.parallel);
  if (unknown.length > 0 || !Number.isInteger(parallel) || parallel < 1) {
    const what = unknown.length > 0 ? `unknown part ${unknown.join(', ')}` : '--parallel takes a whole number ≥ 1';
    io.stderr.write(`ocp-chatops doctor: ${what}\n\n${DOCTOR_HELP}`);
    return EXIT.usage;
  }

  const show = (findings: Finding[]) => {
    io.stdout.write(values.json ? toJson(findings) : formatTable(findings, { verbose: values.verbose ?? false }));
    return exitCodeOf(findings);
  };
  let config: Config;
  const head: Finding[] = [];
  try {
    const loaded = loadConfig(io.env, io.cwd);
    config = loaded.config;
    head.push(
      loaded.warning
        ? finding(
            'config',
            'file',
            'warn',
            loaded.warning,
            'Copy config/example.yml to ./ocp-chatops.yml (or set CONFIG_FILE) and describe your hosts.',
          )
        : finding('config', 'file', 'ok', `${config.source}: ${config.hosts.length} hosts`),
    );
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return show([finding('config', 'file', 'fail', err.message, 'Fix the fields named, then run doctor again.')]);
  }
  const findings = await runDoctor(config, {
    parallel,
    cwd: io.cwd,
    ...(parts ? { parts: parts as DoctorPart[] } : {}),
    onHostDone(done, total, failing) {
      const line = progressLine(done, total, failing);
      // On a terminal, one line redrawn (\x1b[K clears what a longer one left); elsewhere (a log, a pipe) only the last.
      if (io.stderr.isTTY) io.stderr.write(`\r${line}\x1b[K`);
      if (done === total && total > 0) io.stderr.write(io.stderr.isTTY ? '\n' : `${line}\n`);
    },
  });
  return show([...head, ...findings]);
}
