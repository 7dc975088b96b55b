import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  checkHostKey,
  fingerprintSha256,
  type HostKeyVerdict,
  type KnownHostEntry,
  parseKnownHosts,
} from '../../src/ssh/known-hosts.js';

const SSH_KEYGEN = '/usr/bin/ssh-keygen';

function sshString(data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

/** A fresh ed25519 public key blob built with node:crypto. */
function ed25519Blob(): Buffer {
  const { publicKey } = generateKeyPairSync('ed25519');
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return Buffer.concat([sshString('ssh-ed25519'), sshString(spki.subarray(spki.length - 32))]);
}

/** A syntactically valid ecdsa-sha2-nistp256 blob (only its bytes matter here). */
function ecdsaBlob(): Buffer {
  const point = Buffer.concat([Buffer.from([4]), randomBytes(64)]);
  return Buffer.concat([sshString('ecdsa-sha2-nistp256'), sshString('nistp256'), sshString(point)]);
}

function typeOf(blob: Buffer): string {
  return blob.subarray(4, 4 + blob.readUInt32BE(0)).toString();
}

function line(hosts: string, blob: Buffer, marker?: string): string {
  return `${marker ? `${marker} ` : ''}${hosts} ${typeOf(blob)} ${blob.toString('base64')} comment@x`;
}

function hashName(name: string, salt = randomBytes(20)): string {
  const h = createHmac('sha1', salt).update(name).digest();
  return `|1|${salt.toString('base64')}|${h.toString('base64')}`;
}

const tmp = mkdtempSync(join(tmpdir(), 'known-hosts-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

let keyCounter = 0;
/** Generates a key with ssh-keygen; returns the public key blob and .pub path. */
function sshKeygenKey(type = 'ed25519'): { blob: Buffer; pubPath: string; pubLine: string } {
  const path = join(tmp, `key${keyCounter++}`);
  execFileSync(SSH_KEYGEN, ['-q', '-t', type, '-N', '', '-C', 'test@host', '-f', path]);
  const pubLine = readFileSync(`${path}.pub`, 'utf8').trim();
  const b64 = pubLine.split(/\s+/)[1];
  assert.ok(b64);
  return { blob: Buffer.from(b64, 'base64'), pubPath: `${path}.pub`, pubLine };
}

const K1 = ed25519Blob();
const K2 = ed25519Blob();
const K3 = ecdsaBlob();

type Expect = true | 'unknown' | 'changed' | 'revoked';
interface Case {
  name: string;
  lines: string[];
  host: string;
  port: number;
  key: Buffer;
  expect: Expect;
}

const cases: Case[] = [
  {
    name: 'plain entry',
    lines: [line('db1.example.com', K1)],
    host: 'db1.example.com',
    port: 22,
    key: K1,
    expect: true,
  },
  {
    name: 'plain entry, host case-insensitive',
    lines: [line('DB1.Example.com', K1)],
    host: 'db1.EXAMPLE.com',
    port: 22,
    key: K1,
    expect: true,
  },
  {
    name: 'one of several comma-separated names',
    lines: [line('db1,10.0.0.5,db1.example.com', K1)],
    host: '10.0.0.5',
    port: 22,
    key: K1,
    expect: true,
  },
  {
    name: 'second key type for the same host',
    lines: [line('db1', K3), line('db1', K1)],
    host: 'db1',
    port: 22,
    key: K1,
    expect: true,
  },
  { name: '[host]:port entry', lines: [line('[db1]:2222', K1)], host: 'db1', port: 2222, key: K1, expect: true },
  {
    name: '[host]:port entry does not match port 22',
    lines: [line('[db1]:2222', K1)],
    host: 'db1',
    port: 22,
    key: K1,
    expect: 'unknown',
  },
  {
    name: 'plain entry does not match non-22 port',
    lines: [line('db1', K1)],
    host: 'db1',
    port: 2222,
    key: K1,
    expect: 'unknown',
  },
  { name: 'port 22 uses plain form', lines: [line('[db1]:22', K1)], host: 'db1', port: 22, key: K1, expect: 'unknown' },
  { name: 'IPv6 with port', lines: [line('[fe80::1]:2200', K1)], host: 'fe80::1', port: 2200, key: K1, expect: true },
  {
    name: 'hashed entry (node:crypto)',
    lines: [line(hashName('db1.example.com'), K1)],
    host: 'db1.example.com',
    port: 22,
    key: K1,
    expect: true,
  },
  {
    name: 'hashed [host]:port entry',
    lines: [line(hashName('[db1]:2222'), K1)],
    host: 'db1',
    port: 2222,
    key: K1,
    expect: true,
  },
  {
    name: 'hashed entry for other host',
    lines: [line(hashName('db2'), K1)],
    host: 'db1',
    port: 22,
    key: K1,
    expect: 'unknown',
  },
  {
    name: 'hashed entry, changed key',
    lines: [line(hashName('db1'), K1)],
    host: 'db1',
    port: 22,
    key: K2,
    expect: 'changed',
  },
  { name: 'wildcard *', lines: [line('*.example.com', K1)], host: 'db7.example.com', port: 22, key: K1, expect: true },
  {
    name: 'wildcard ?',
    lines: [line('db?.example.com', K1)],
    host: 'db7.example.com',
    port: 22,
    key: K1,
    expect: true,
  },
  {
    name: 'wildcard ? needs exactly one char',
    lines: [line('db?.example.com', K1)],
    host: 'db17.example.com',
    port: 22,
    key: K1,
    expect: 'unknown',
  },
  {
    name: 'wildcard does not cross whole name boundary',
    lines: [line('*.example.com', K1)],
    host: 'example.com',
    port: 22,
    key: K1,
    expect: 'unknown',
  },
  {
    name: 'wildcard on [host]:port',
    lines: [line('[10.0.0.*]:2222', K1)],
    host: '10.0.0.9',
    port: 2222,
    key: K1,
    expect: true,
  },
  {
    name: 'negation excludes the line',
    lines: [line('*.example.com,!bastion.example.com', K1)],
    host: 'bastion.example.com',
    port: 22,
    key: K1,
    expect: 'unknown',
  },
  {
    name: 'negation order irrelevant',
    lines: [line('!bastion.example.com,*.example.com', K1)],
    host: 'bastion.example.com',
    port: 22,
    key: K1,
    expect: 'unknown',
  },
  {
    name: 'negation of another host keeps match',
    lines: [line('*.example.com,!bastion.example.com', K1)],
    host: 'db1.example.com',
    port: 22,
    key: K1,
    expect: true,
  },
  {
    name: 'negation only never matches',
    lines: [line('!bastion', K1)],
    host: 'db1',
    port: 22,
    key: K1,
    expect: 'unknown',
  },
  {
    name: 'negated line then a plain line',
    lines: [line('*,!db1', K2), line('db1', K1)],
    host: 'db1',
    port: 22,
    key: K1,
    expect: true,
  },
  { name: 'changed key', lines: [line('db1', K1)], host: 'db1', port: 22, key: K2, expect: 'changed' },
  {
    name: 'changed: only another key type known',
    lines: [line('db1', K3)],
    host: 'db1',
    port: 22,
    key: K1,
    expect: 'changed',
  },
  {
    name: 'same key for other host is not trusted',
    lines: [line('db2', K1)],
    host: 'db1',
    port: 22,
    key: K1,
    expect: 'unknown',
  },
  { name: 'unknown host, empty file', lines: [], host: 'db1', port: 22, key: K1, expect: 'unknown' },
  {
    name: 'revoked key',
    lines: [line('db1', K1), line('*', K1, '@revoked')],
    host: 'db1',
    port: 22,
    key: K1,
    expect: 'revoked',
  },
  {
    name: 'revoked wins regardless of order',
    lines: [line('*', K1, '@revoked'), line('db1', K1)],
    host: 'db1',
    port: 22,
    key: K1,
    expect: 'revoked',
  },
  {
    name: 'revoked line for another key does not matter',
    lines: [line('*', K2, '@revoked'), line('db1', K1)],
    host: 'db1',
    port: 22,
    key: K1,
    expect: true,
  },
  {
    name: 'revoked line alone never accepts',
    lines: [line('db1', K1, '@revoked')],
    host: 'db1',
    port: 22,
    key: K2,
    expect: 'unknown',
  },
  {
    name: '@cert-authority ignored',
    lines: [line('*', K1, '@cert-authority')],
    host: 'db1',
    port: 22,
    key: K1,
    expect: 'unknown',
  },
  {
    name: 'comments, blanks and malformed lines skipped',
    lines: [
      '# a comment',
      '',
      '   ',
      `   # indented comment ${line('db1', K2)}`,
      'db1',
      'db1 ssh-ed25519',
      `@bogus ${line('db1', K2)}`,
      `db1 ssh-ed25519 not*base64!`,
      `db1 ssh-rsa ${K2.toString('base64')}`, // type field disagrees with blob
      'db1 2048 65537 1234567890', // legacy SSH1 RSA
      `\t${line('db1', K1)}\r`,
    ],
    host: 'db1',
    port: 22,
    key: K1,
    expect: true,
  },
];

function assertVerdict(v: HostKeyVerdict, expect: Expect): void {
  if (expect === true) {
    assert.deepEqual(v, { ok: true });
  } else {
    assert.equal(v.ok, false);
    if (!v.ok) assert.equal(v.reason, expect, v.message);
  }
}

describe('checkHostKey table', () => {
  for (const c of cases) {
    test(c.name, () => {
      const entries = parseKnownHosts(c.lines.join('\n'));
      assertVerdict(checkHostKey(entries, c.host, c.port, c.key), c.expect);
    });
  }
});

describe('parseKnownHosts', () => {
  test('parses fields and markers, skips junk', () => {
    const text = [
      '# comment',
      line('a,b,[c]:2222', K1),
      line('*', K2, '@revoked'),
      line('ca.*', K3, '@cert-authority'),
      'garbage',
      '',
    ].join('\n');
    const entries = parseKnownHosts(text);
    assert.deepEqual(entries, [
      { patterns: ['a', 'b', '[c]:2222'], keyType: 'ssh-ed25519', keyBase64: K1.toString('base64') },
      { marker: '@revoked', patterns: ['*'], keyType: 'ssh-ed25519', keyBase64: K2.toString('base64') },
      {
        marker: '@cert-authority',
        patterns: ['ca.*'],
        keyType: 'ecdsa-sha2-nistp256',
        keyBase64: K3.toString('base64'),
      },
    ] satisfies KnownHostEntry[]);
  });

  test('keeps hashed patterns raw', () => {
    const hashed = hashName('db1');
    const [entry] = parseKnownHosts(line(hashed, K1));
    assert.deepEqual(entry?.patterns, [hashed]);
  });
});

describe('messages', () => {
  test('changed names host, key type, fingerprint, MITM', () => {
    const v = checkHostKey(parseKnownHosts(line('[db1]:2222', K1)), 'db1', 2222, K2);
    assert.equal(v.ok, false);
    if (v.ok) return;
    assert.equal(v.reason, 'changed');
    assert.match(v.message, /host key of \[db1\]:2222 does not match known_hosts/);
    assert.match(v.message, /man-in-the-middle/);
    assert.ok(v.message.includes('ssh-ed25519'));
    assert.ok(v.message.includes(fingerprintSha256(K2)));
  });

  test('unknown names host, fingerprint and ssh-keyscan hint', () => {
    const v = checkHostKey([], 'db1.example.com', 2222, K1);
    assert.equal(v.ok, false);
    if (v.ok) return;
    assert.equal(v.reason, 'unknown');
    assert.ok(v.message.includes('[db1.example.com]:2222'));
    assert.ok(v.message.includes(fingerprintSha256(K1)));
    assert.ok(v.message.includes('ssh-keyscan -p 2222 db1.example.com'));
    assert.match(v.message, /add it to known_hosts/);
  });

  test('revoked names fingerprint', () => {
    const v = checkHostKey(parseKnownHosts(line('*', K1, '@revoked')), 'db1', 22, K1);
    assert.equal(v.ok, false);
    if (v.ok) return;
    assert.equal(v.reason, 'revoked');
    assert.ok(v.message.includes(fingerprintSha256(K1)));
  });

  test('malformed presented blob is refused, never accepted', () => {
    const entries = parseKnownHosts(line('db1', K1));
    for (const bad of [Buffer.alloc(0), Buffer.from([0, 0, 0]), Buffer.from([0xff, 0xff, 0xff, 0xff, 1])]) {
      const v = checkHostKey(entries, 'db1', 22, bad);
      assert.equal(v.ok, false);
    }
  });
});

describe('against real ssh-keygen', () => {
  test('fingerprint equals ssh-keygen -lf', () => {
    for (const type of ['ed25519', 'ecdsa', 'rsa']) {
      const { blob, pubPath } = sshKeygenKey(type);
      const out = execFileSync(SSH_KEYGEN, ['-E', 'sha256', '-lf', pubPath], { encoding: 'utf8' });
      const fp = out.split(/\s+/)[1];
      assert.match(fp ?? '', /^SHA256:[A-Za-z0-9+/]{43}$/);
      assert.equal(fingerprintSha256(blob), fp);
    }
  });

  test('hashed known_hosts from ssh-keygen -H', () => {
    const { blob, pubLine } = sshKeygenKey('ed25519');
    const other = sshKeygenKey('ed25519');
    const [type, b64] = pubLine.split(/\s+/);
    const file = join(tmp, 'known_hosts_hashed');
    writeFileSync(file, `db1.example.com ${type} ${b64}\n[db2.example.com]:2222 ${type} ${b64}\n`);
    execFileSync(SSH_KEYGEN, ['-q', '-H', '-f', file], { stdio: 'ignore' });
    const text = readFileSync(file, 'utf8');
    assert.ok(!text.includes('example.com'), 'file should be hashed');
    const entries = parseKnownHosts(text);
    assert.equal(entries.length, 2);
    for (const e of entries) {
      assert.equal(e.patterns.length, 1);
      assert.ok(e.patterns[0]?.startsWith('|1|'));
    }
    assertVerdict(checkHostKey(entries, 'db1.example.com', 22, blob), true);
    assertVerdict(checkHostKey(entries, 'db2.example.com', 2222, blob), true);
    assertVerdict(checkHostKey(entries, 'db2.example.com', 22, blob), 'unknown');
    assertVerdict(checkHostKey(entries, 'db3.example.com', 22, blob), 'unknown');
    assertVerdict(checkHostKey(entries, 'db1.example.com', 22, other.blob), 'changed');
  });

  test('ssh-keygen .pub line as known_hosts entry', () => {
    const { blob, pubLine } = sshKeygenKey('ecdsa');
    const entries = parseKnownHosts(`host-a,host-b ${pubLine}\n`);
    assertVerdict(checkHostKey(entries, 'host-b', 22, blob), true);
  });
});
