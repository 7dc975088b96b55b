#!/usr/bin/env node
// npm test: make sure nats-server and OpenSSH's sshd are here (installing them
// with apt-get when we are root on Debian), type-check, lint, then run every
// test file with node's test runner. Node 20's runner neither expands globs
// nor finds .ts files by itself, so the files are listed here.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const PACKAGES = {
  'nats-server': 'nats-server',
  sshd: 'openssh-server',
  'ssh-keygen': 'openssh-client',
  // hosts whose steps run as another user (become): test/integration/become.test.ts
  sudo: 'sudo',
  // the web page's tests drive Debian's Chromium (playwright-core, never a downloaded browser)
  chromium: 'chromium',
};

function onPath(name) {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'];
  return dirs.some((d) => existsSync(join(d, name)));
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { stdio: 'inherit', ...opts });
  return r.status ?? 1;
}

const missing = Object.keys(PACKAGES).filter((bin) => !onPath(bin));
if (missing.length > 0) {
  const pkgs = [...new Set(missing.map((m) => PACKAGES[m]))];
  const isRoot = process.getuid?.() === 0;
  const hasApt = onPath('apt-get') && existsSync('/etc/debian_version');
  if (isRoot && hasApt) {
    console.log(`npm test: installing ${pkgs.join(' ')} (missing: ${missing.join(', ')})`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    if (
      run('apt-get', ['update', '-qq'], { env }) !== 0 ||
      run('apt-get', ['install', '-y', '-qq', ...pkgs], { env }) !== 0
    ) {
      console.error(`npm test: apt-get failed; run: apt-get update && apt-get install -y ${pkgs.join(' ')}`);
      process.exit(1);
    }
  } else {
    const sudo = isRoot ? '' : 'sudo ';
    console.error(`npm test: the tests need ${missing.join(', ')}. Install them, then run npm test again:`);
    console.error(
      hasApt
        ? `  ${sudo}apt-get update && ${sudo}apt-get install -y ${pkgs.join(' ')}`
        : `  install the packages ${pkgs.join(', ')} with your system's package manager`,
    );
    process.exit(1);
  }
}

const bin = (name) => join('node_modules', '.bin', name);
if (run(bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']) !== 0) process.exit(1);
if (run(bin('biome'), ['check', 'src', 'test', 'bench', 'scripts', 'demo', 'chaos', 'web']) !== 0) process.exit(1);

const files = ['test/unit', 'test/integration'].flatMap((dir) =>
  existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.test.ts'))
        .sort()
        .map((f) => join(dir, f))
    : [],
);
const only = process.argv.slice(2);
const selected = only.length > 0 ? files.filter((f) => only.some((o) => f.includes(o))) : files;
process.exit(run(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...selected]));
