/**
 * Configuration (src/config.ts, SPEC §6): defaults, a ConfigError naming the
 * field for every bad value in the file or the environment, a frozen result,
 * runbook overrides from a folder, and which file loadConfig reads.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, findRunbook, loadConfig, parseConfig } from '../../src/config.js';
import { builtinRunbooks } from '../../src/core/runbooks/builtin.js';

const scratch = mkdtempSync(join(tmpdir(), 'config-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
const repo = fileURLToPath(new URL('../../', import.meta.url));
const exampleYml = join(repo, 'config/example.yml');

/** A fresh empty folder under the scratch folder. */
function folder(name: string): string {
  const dir = join(scratch, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

const host = (over: Record<string, unknown> = {}) => ({ id: 100, name: 'ocp-host-1', address: '127.0.0.1', ...over });
const parse = (raw: unknown, env: NodeJS.ProcessEnv = {}, baseDir = scratch) =>
  parseConfig(raw, env, 'ocp-chatops.yml', baseDir);

/** Asserts `fn` throws a ConfigError whose message matches every pattern. */
function throwsConfigError(fn: () => unknown, ...patterns: RegExp[]) {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.name, 'ConfigError');
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

describe('parseConfig defaults', () => {
  const config = parse({ hosts: [host()] });
  const h = config.hosts[0];

  const defaults: [name: string, actual: () => unknown, expected: unknown][] = [
    ['hosts.0.port', () => h?.port, 22],
    ['hosts.0.username', () => h?.username, 'admin'],
    ['hosts.0.agentHome', () => h?.agentHome, '/home/admin/ocp_agent'],
    ['hosts.0.stateDir', () => h?.stateDir, '/home/admin/ocp_agent/.ocp-chatops'],
    ['ssh.killGraceSeconds', () => config.ssh.killGraceSeconds, 30],
    // No default key: without one the ssh-agent at SSH_AUTH_SOCK logs in (SPEC §9).
    ['ssh.privateKeyPath', () => config.ssh.privateKeyPath, undefined],
    ['hosts.0.privateKeyPath', () => h?.privateKeyPath, undefined],
    ['hosts.0.labels', () => h?.labels, {}],
    ['ssh.knownHostsPath', () => config.ssh.knownHostsPath, join(homedir(), '.ssh/known_hosts')],
    ['executor.leaseSeconds', () => config.executor.leaseSeconds, 30],
    ['batch.maxParallel', () => config.batch.maxParallel, 20],
    ['nats.replicas', () => config.nats.replicas, 1],
    ['slack.command', () => config.slack.command, '/ocp-agent'],
    ['retention.tasks', () => config.retention.tasks, '400d'],
    ['retention.events', () => config.retention.events, '400d'],
    ['access.users', () => config.access.users, []],
    ['HTTP_PORT', () => config.env.HTTP_PORT, 3000],
    ['ROLES', () => config.env.ROLES, ['api', 'slack', 'executor', 'notifier']],
    ['LOG_LEVEL', () => config.env.LOG_LEVEL, 'info'],
    ['runbooks', () => config.runbooks.map((r) => r.name), builtinRunbooks.map((r) => r.name)],
    ['source', () => config.source, 'ocp-chatops.yml'],
  ];
  for (const [name, actual, expected] of defaults) {
    test(`${name} defaults to ${JSON.stringify(expected)}`, () => {
      assert.deepEqual(actual(), expected);
    });
  }

  test('an empty file (YAML null) is all defaults, with no hosts', () => {
    assert.deepEqual(parse(null).hosts, []);
  });

  test('stateDir follows a custom agentHome, and may be set', () => {
    const c = parse({
      hosts: [host({ agentHome: '/opt/agent' }), host({ id: 2, name: 'h2', stateDir: '/var/lib/ocp-chatops' })],
    });
    assert.deepEqual(
      c.hosts.map((x) => x.stateDir),
      ['/opt/agent/.ocp-chatops', '/var/lib/ocp-chatops'],
    );
  });

  test('ssh paths: ~ is the home folder, relative paths are from the config file’s folder', () => {
    const c = parse({ ssh: { privateKeyPath: '~/keys/id', knownHostsPath: 'ssh/known_hosts' } }, {}, '/etc/ocp');
    assert.equal(c.ssh.privateKeyPath, join(homedir(), 'keys/id'));
    assert.equal(c.ssh.knownHostsPath, '/etc/ocp/ssh/known_hosts');
  });

  test('environment values are read', () => {
    const c = parse({}, { HTTP_PORT: '8080', ROLES: 'executor, notifier', LOG_LEVEL: 'debug', UNRELATED: 'x' });
    assert.equal(c.env.HTTP_PORT, 8080);
    assert.deepEqual(c.env.ROLES, ['executor', 'notifier']);
    assert.equal(c.env.LOG_LEVEL, 'debug');
  });
});

describe('web', () => {
  test('has no public URL and 8-hour sessions by default; a public URL loses its trailing slash', () => {
    assert.deepEqual(parse({}).web, { sessionMinutes: 480 });
    assert.equal(parse({ web: { publicUrl: 'https://ops.example.com/' } }).web.publicUrl, 'https://ops.example.com');
  });
});

describe('parseConfig refuses a bad value, naming the field', () => {
  const cases: { name: string; raw?: unknown; env?: NodeJS.ProcessEnv; field: RegExp }[] = [
    { name: 'port 70000', raw: { hosts: [host({ port: 70000 })] }, field: /hosts\.0\.port:/ },
    { name: 'a retention without unit', raw: { retention: { tasks: '400' } }, field: /retention\.tasks: must be/ },
    { name: 'a retention in seconds', raw: { retention: { events: '30s' } }, field: /retention\.events:/ },
    { name: 'a retention of 0 days', raw: { retention: { tasks: '0d' } }, field: /retention\.tasks:/ },
    { name: 'an unknown retention', raw: { retention: { logs: '1d' } }, field: /retention:/ },
    {
      name: 'a web.publicUrl that is not http(s)',
      raw: { web: { publicUrl: 'ftp://x.example' } },
      field: /web\.publicUrl:/,
    },
    {
      name: 'a web.publicUrl that is no URL',
      raw: { web: { publicUrl: 'ops.example.com' } },
      field: /web\.publicUrl:/,
    },
    { name: 'a web session of 0 minutes', raw: { web: { sessionMinutes: 0 } }, field: /web\.sessionMinutes:/ },
    { name: 'port 0', raw: { hosts: [host({ port: 0 })] }, field: /hosts\.0\.port:/ },
    { name: 'port as text', raw: { hosts: [host({ port: '22' })] }, field: /hosts\.0\.port:/ },
    { name: 'host id 0', raw: { hosts: [host({ id: 0 })] }, field: /hosts\.0\.id:/ },
    { name: 'host id 1.5', raw: { hosts: [host({ id: 1.5 })] }, field: /hosts\.0\.id:/ },
    {
      name: 'a duplicate host id',
      raw: { hosts: [host(), host({ name: 'other' })] },
      field: /hosts\.1\.id: duplicate host id 100/,
    },
    {
      name: 'a duplicate host name',
      raw: { hosts: [host(), host({ id: 101 })] },
      field: /hosts\.1\.name: duplicate host name ocp-host-1/,
    },
    {
      name: 'an address with a space',
      raw: { hosts: [host({ address: '127.0.0.1 x' })] },
      field: /hosts\.0\.address:/,
    },
    { name: 'a host without address', raw: { hosts: [{ id: 1, name: 'h' }] }, field: /hosts\.0\.address:/ },
    {
      name: 'an address that is an ssh option',
      raw: { hosts: [host({ address: '-p' })] },
      field: /hosts\.0\.address: must be an IP address or a host name/,
    },
    {
      name: 'an address with an empty label',
      raw: { hosts: [host({ address: 'a..b' })] },
      field: /hosts\.0\.address:/,
    },
    { name: 'an address of dots', raw: { hosts: [host({ address: '...' })] }, field: /hosts\.0\.address:/ },
    { name: 'a bad username', raw: { hosts: [host({ username: 'Admin;' })] }, field: /hosts\.0\.username:/ },
    {
      name: 'agentHome with a space',
      raw: { hosts: [host({ agentHome: '/home/admin/ocp agent' })] },
      field: /hosts\.0\.agentHome: must be an absolute path/,
    },
    {
      name: 'agentHome with ;',
      raw: { hosts: [host({ agentHome: '/home/admin/x;rm -rf /' })] },
      field: /hosts\.0\.agentHome:/,
    },
    { name: 'agentHome with $()', raw: { hosts: [host({ agentHome: '/home/$(id)' })] }, field: /hosts\.0\.agentHome:/ },
    { name: 'a relative agentHome', raw: { hosts: [host({ agentHome: 'ocp_agent' })] }, field: /hosts\.0\.agentHome:/ },
    { name: 'stateDir with a quote', raw: { hosts: [host({ stateDir: "/var/it's" })] }, field: /hosts\.0\.stateDir:/ },
    { name: 'leaseSeconds 1', raw: { executor: { leaseSeconds: 1 } }, field: /executor\.leaseSeconds:/ },
    { name: 'leaseSeconds as text', raw: { executor: { leaseSeconds: 'thirty' } }, field: /executor\.leaseSeconds:/ },
    { name: 'killGraceSeconds -1', raw: { ssh: { killGraceSeconds: -1 } }, field: /ssh\.killGraceSeconds:/ },
    { name: 'maxParallel 0', raw: { batch: { maxParallel: 0 } }, field: /batch\.maxParallel:/ },
    { name: 'replicas 2', raw: { nats: { replicas: 2 } }, field: /nats\.replicas:/ },
    { name: 'a command without /', raw: { slack: { command: 'ocp-agent' } }, field: /slack\.command:/ },
    { name: 'a bad channel id', raw: { slack: { defaultChannel: '#ops' } }, field: /slack\.defaultChannel:/ },
    { name: 'an unknown top-level key', raw: { hostz: [] }, field: /Unrecognized key: "hostz"/ },
    { name: 'an unknown key under ssh', raw: { ssh: { keyPath: '/k' } }, field: /ssh: Unrecognized key: "keyPath"/ },
    {
      name: 'a plain-text password',
      raw: { access: { users: [{ username: 'alice', passwordHash: 'hunter2', roles: ['ADMIN'] }] } },
      field: /access\.users\.0\.passwordHash: must be "scrypt:<salt base64>:<hash base64>"/,
    },
    {
      name: 'a password hash of another kind',
      raw: { access: { users: [{ username: 'alice', passwordHash: 'bcrypt:abc:def', roles: ['ADMIN'] }] } },
      field: /access\.users\.0\.passwordHash:/,
    },
    {
      name: 'an unknown role',
      raw: { access: { users: [{ username: 'alice', passwordHash: 'scrypt:YQ==:Yg==', roles: ['ROOT'] }] } },
      field: /access\.users\.0\.roles\.0:/,
    },
    {
      name: 'a Slack user id that is not one',
      raw: { access: { slack: { HOST_MANAGER: { users: ['alice'] } } } },
      field: /access\.slack\.HOST_MANAGER\.users\.0:/,
    },
    { name: 'HTTP_PORT=abc', env: { HTTP_PORT: 'abc' }, field: /HTTP_PORT:/ },
    { name: 'HTTP_PORT=70000', env: { HTTP_PORT: '70000' }, field: /HTTP_PORT:/ },
    { name: 'ROLES=api,bogus', env: { ROLES: 'api,bogus' }, field: /ROLES/ },
    { name: 'ROLES=,', env: { ROLES: ',' }, field: /ROLES/ },
    { name: 'LOG_LEVEL=verbose', env: { LOG_LEVEL: 'verbose' }, field: /LOG_LEVEL:/ },
    { name: 'NATS_URL=http://…', env: { NATS_URL: 'http://127.0.0.1:4222' }, field: /NATS_URL:/ },
    { name: 'NATS_USER without NATS_PASSWORD', env: { NATS_USER: 'ops' }, field: /NATS_USER and NATS_PASSWORD/ },
    { name: 'NATS_PASSWORD without NATS_USER', env: { NATS_PASSWORD: 's3cret' }, field: /NATS_USER and NATS_PASSWORD/ },
    {
      name: 'NATS_CREDS and NATS_USER',
      env: { NATS_CREDS: '/c.creds', NATS_USER: 'ops', NATS_PASSWORD: 'p' },
      field: /NATS_CREDS: set either NATS_CREDS or NATS_USER/,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const where = c.env ? /in the environment/ : /in ocp-chatops\.yml/;
      throwsConfigError(() => parse(c.raw ?? {}, c.env ?? {}), where, c.field);
    });
  }

  test('every bad field is named at once', () => {
    throwsConfigError(
      () => parse({ hosts: [host({ port: 70000 })], executor: { leaseSeconds: 0 } }),
      /hosts\.0\.port:/,
      /executor\.leaseSeconds:/,
    );
  });

  test('a secret value is not echoed in the message', () => {
    assert.throws(
      () => parse({}, { NATS_PASSWORD: 'very-secret-password' }),
      (err: unknown) => err instanceof ConfigError && !err.message.includes('very-secret-password'),
    );
  });

  test('a misspelled host key is refused, not silently ignored', () => {
    throwsConfigError(() => parse({ hosts: [host({ prot: 2222 })] }), /hosts\.0/, /prot/);
  });

  test('an empty HTTP_PORT is the default or an error, not port 0', () => {
    let port: number | undefined;
    try {
      port = parse({}, { HTTP_PORT: '' }).env.HTTP_PORT;
    } catch (err) {
      assert.ok(err instanceof ConfigError && /HTTP_PORT/.test(err.message));
      return;
    }
    assert.equal(port, 3000);
  });
});

describe('the configuration is frozen', () => {
  const config = parse({ hosts: [host()] });
  const mutations: [name: string, mutate: () => void][] = [
    ['a host field', () => Object.assign(config.hosts[0] ?? {}, { port: 2222 })],
    ['the host list', () => config.hosts.push(config.hosts[0] as never)],
    ['an env value', () => Object.assign(config.env, { HTTP_PORT: 1 })],
    ['a nested section', () => Object.assign(config.executor, { leaseSeconds: 2 })],
    ['a runbook step', () => Object.assign(config.runbooks[0]?.steps[0] ?? {}, { timeout: 1 })],
    ['a top-level field', () => Object.assign(config, { source: 'elsewhere' })],
  ];
  for (const [name, mutate] of mutations) {
    test(`assigning ${name} throws`, () => {
      assert.throws(mutate, TypeError);
    });
  }
  test('nothing changed', () => {
    assert.equal(config.hosts[0]?.port, 22);
    assert.equal(config.hosts.length, 1);
    assert.equal(config.env.HTTP_PORT, 3000);
  });
});

describe('runbook overrides', () => {
  const restartYaml = (timeouts: number[]) => `name: Restart OCP agent
steps:
  - { name: Prepare restart OCP agent, timeout: ${timeouts[0]}, command: "{agentctl} status" }
  - { name: Restart pos proxy, timeout: ${timeouts[1]}, command: "{agentctl} restart pos_proxy" }
  - { name: Stop all OCP agent processes, timeout: ${timeouts[2]}, command: "{agentctl} stop" }
  - { name: Start all OCP agent processes, timeout: ${timeouts[3]}, command: "{agentctl} start" }
  - { name: Finish OCP agent operation, timeout: ${timeouts[4]}, command: "{agentctl} status" }
`;

  test('a YAML runbook named "Restart OCP agent" replaces the built-in one; the others stay', () => {
    const base = folder('override-ok');
    mkdirSync(join(base, 'runbooks'));
    writeFileSync(join(base, 'runbooks', 'restart.yml'), restartYaml([5, 6, 7, 8, 9]));
    writeFileSync(join(base, 'runbooks', 'README.txt'), 'not a runbook: ignored');
    const config = parse({ runbooks: './runbooks' }, {}, base);
    assert.deepEqual(
      findRunbook(config, 'Restart OCP agent').steps.map((s) => s.timeout),
      [5, 6, 7, 8, 9],
    );
    assert.deepEqual(config.runbooks.map((r) => r.name).sort(), builtinRunbooks.map((r) => r.name).sort());
    assert.deepEqual(
      findRunbook(config, 'Stop OCP agent').steps.map((s) => s.timeout),
      [60, 600, 60],
    );
  });

  const bad: { name: string; file: string; text: string; field?: RegExp }[] = [
    {
      name: 'a negative timeout',
      file: 'restart.yml',
      text: restartYaml([60, -1, 600, 600, 60]),
      field: /steps\.1\.timeout:/,
    },
    {
      name: 'an unknown placeholder',
      file: 'stop.yaml',
      text: 'name: Stop OCP agent\nsteps:\n  - { name: s, timeout: 5, command: "{agentctrl} stop" }\n',
      field: /steps\.0\.command: unknown placeholder \{agentctrl\}/,
    },
    { name: 'no steps', file: 'empty.yml', text: 'name: Nothing\nsteps: []\n', field: /steps:/ },
    { name: 'not YAML', file: 'broken.yml', text: 'name: [unclosed\nsteps: {\n' },
  ];
  for (const c of bad) {
    test(`a bad runbook file (${c.name}) is a ConfigError naming the file`, () => {
      const base = folder(`override-${c.file}`);
      mkdirSync(join(base, 'runbooks'));
      writeFileSync(join(base, 'runbooks', c.file), c.text);
      const file = new RegExp(join(base, 'runbooks', c.file).replaceAll('.', '\\.'));
      throwsConfigError(() => parse({ runbooks: 'runbooks' }, {}, base), file, ...(c.field ? [c.field] : []));
    });
  }

  test('a missing runbooks folder is a ConfigError naming it', () => {
    const base = folder('override-missing');
    throwsConfigError(() => parse({ runbooks: './nowhere' }, {}, base), /runbooks/, new RegExp(join(base, 'nowhere')));
  });

  test('a runbooks path that is a file is a ConfigError naming it, not a crash', () => {
    const base = folder('override-file');
    writeFileSync(join(base, 'runbooks.yml'), 'name: x\n');
    throwsConfigError(
      () => parse({ runbooks: './runbooks.yml' }, {}, base),
      /runbooks: .*runbooks\.yml is not a folder/,
    );
  });
});

describe('loadConfig', () => {
  test('no CONFIG_FILE and no ./ocp-chatops.yml: the shipped example, with a warning', () => {
    const cwd = folder('load-empty');
    const { config, warning } = loadConfig({}, cwd);
    assert.equal(config.source, exampleYml);
    assert.deepEqual(
      config.hosts.map((h) => h.id),
      [101, 102],
    );
    assert.ok(warning, 'a warning is expected');
    assert.match(warning, /ocp-chatops\.yml/);
    assert.match(warning, /CONFIG_FILE/);
    assert.ok(warning.includes(cwd), 'the warning names the folder');
  });

  test('./ocp-chatops.yml in the working folder is read, without a warning', () => {
    const cwd = folder('load-local');
    writeFileSync(join(cwd, 'ocp-chatops.yml'), 'hosts:\n  - { id: 7, name: local, address: 127.0.0.1 }\n');
    const { config, warning } = loadConfig({}, cwd);
    assert.equal(warning, undefined);
    assert.equal(config.source, join(cwd, 'ocp-chatops.yml'));
    assert.deepEqual(
      config.hosts.map((h) => h.id),
      [7],
    );
  });

  test('CONFIG_FILE wins, relative to the working folder; runbooks relative to the file', () => {
    const cwd = folder('load-env');
    writeFileSync(join(cwd, 'ocp-chatops.yml'), 'hosts: []\n');
    mkdirSync(join(cwd, 'etc', 'rb'), { recursive: true });
    writeFileSync(
      join(cwd, 'etc', 'rb', 'x.yml'),
      'name: Custom\nsteps:\n  - { name: s, timeout: 3, command: "true" }\n',
    );
    writeFileSync(
      join(cwd, 'etc', 'ocp.yml'),
      'hosts:\n  - { id: 8, name: from-env, address: 127.0.0.1 }\nrunbooks: ./rb\n',
    );
    const { config, warning } = loadConfig({ CONFIG_FILE: 'etc/ocp.yml', HTTP_PORT: '4000' }, cwd);
    assert.equal(warning, undefined);
    assert.equal(config.source, join(cwd, 'etc', 'ocp.yml'));
    assert.equal(config.hosts[0]?.name, 'from-env');
    assert.equal(config.env.HTTP_PORT, 4000);
    assert.deepEqual(findRunbook(config, 'Custom').steps[0]?.timeout, 3);
  });

  test('CONFIG_FILE naming a missing file: ConfigError naming it', () => {
    const cwd = folder('load-missing');
    throwsConfigError(() => loadConfig({ CONFIG_FILE: 'nope.yml' }, cwd), /CONFIG_FILE/, /load-missing\/nope\.yml/);
  });

  test('invalid YAML: ConfigError naming the file', () => {
    const cwd = folder('load-bad-yaml');
    writeFileSync(join(cwd, 'ocp-chatops.yml'), 'hosts:\n  - id: 1\n   name: [oops\n');
    throwsConfigError(() => loadConfig({}, cwd), /not YAML/, /load-bad-yaml\/ocp-chatops\.yml/);
  });

  test('valid YAML with a bad value: ConfigError naming the file and the field', () => {
    const cwd = folder('load-bad-value');
    writeFileSync(join(cwd, 'ocp-chatops.yml'), 'executor:\n  leaseSeconds: 0\n');
    throwsConfigError(() => loadConfig({}, cwd), /load-bad-value\/ocp-chatops\.yml/, /executor\.leaseSeconds:/);
  });

  test('the shipped example is found when the install path has a space', () => {
    const install = folder('install dir');
    cpSync(join(repo, 'src'), join(install, 'src'), { recursive: true });
    cpSync(join(repo, 'config'), join(install, 'config'), { recursive: true });
    cpSync(join(repo, 'package.json'), join(install, 'package.json'));
    symlinkSync(join(repo, 'node_modules'), join(install, 'node_modules'));
    const cwd = folder('load-space-cwd');
    const code = `import { loadConfig } from ${JSON.stringify(new URL(`file://${join(install, 'src/config.ts')}`).href)};
        console.log(loadConfig({}, ${JSON.stringify(cwd)}).config.source);`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
      cwd: install,
      encoding: 'utf8',
    });
    const error = child.stderr.match(/^\w*Error: .*$/m)?.[0];
    assert.equal(child.status, 0, error ?? child.stderr);
    assert.equal(child.stdout.trim(), join(install, 'config/example.yml'));
  });
});
