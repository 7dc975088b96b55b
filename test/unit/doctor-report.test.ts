import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { hashProblem } from '../../src/doctor/access-checks.js';
import { probeScript, readProbe } from '../../src/doctor/host-checks.js';
import { exitCodeOf, finding, formatTable, progressLine, toJson, wrap } from '../../src/doctor/report.js';
import { hashPassword } from '../../src/http/auth.js';

const ok = finding('host 1 (a)', 'reach', 'ok', '127.0.0.1:22');
const bad = finding('host 2 (b)', 'reach', 'fail', 'cannot connect', 'Check that the host is up.');
const warn = finding('nats', 'streams', 'warn', 'missing: OCP_CMD', 'Restart the service.');

describe('doctor report', () => {
  test('exit code: 1 when anything failed; warnings and skips do not fail', () => {
    assert.equal(exitCodeOf([ok, warn, finding('slack', 'token', 'skip', 'off')]), 0);
    assert.equal(exitCodeOf([ok, bad]), 1);
  });

  test('table: header, aligned columns, the remedy beside its finding, a summary', () => {
    const text = formatTable([warn, ok, bad], { verbose: true });
    const lines = text.split('\n');
    assert.match(lines[0] ?? '', /^WHERE\s+CHECK\s+VERDICT\s+DETAIL\s+WHAT TO DO$/);
    assert.match(text, /^host 2 \(b\)\s+reach\s+FAIL\s+cannot connect\s+Check that the host is up\.$/m);
    assert.match(text, /^nats\s+streams\s+WARN\s+missing: OCP_CMD\s+Restart the service\.$/m);
    const col = (l: string) => l.indexOf('reach');
    assert.equal(col(lines[2] ?? ''), col(lines[3] ?? ''), 'columns aligned');
    assert.match(text, /1 failed, 1 warnings, 1 ok, 0 skipped\n$/);
  });

  test('table: hosts that are all well are left out unless verbose, and counted', () => {
    const text = formatTable([ok, bad]);
    assert.doesNotMatch(text, /host 1 \(a\)/);
    assert.match(text, /host 2 \(b\)/);
    assert.match(text, /1 hosts all well, their rows left out \(--verbose shows them\)/);
  });

  test('long cells wrap onto lines of their own', () => {
    assert.deepEqual(wrap('aaa bbb ccc', 7), ['aaa bbb', 'ccc']);
    assert.deepEqual(wrap('x'.repeat(10), 4), ['xxxx', 'xxxx', 'xx']);
    assert.deepEqual(wrap(''), ['']);
  });

  test('JSON: ok, counts and the findings', () => {
    const parsed = JSON.parse(toJson([ok, bad]));
    assert.equal(parsed.ok, false);
    assert.deepEqual(parsed.counts, { ok: 1, warn: 0, fail: 1, skip: 0 });
    assert.deepEqual(parsed.findings[1], bad);
  });

  test('progress line', () => {
    assert.equal(progressLine(0, 4, 0, 8), 'hosts [--------] 0/4');
    assert.equal(progressLine(2, 4, 1, 8), 'hosts [####----] 2/4, 1 failing');
    assert.equal(progressLine(12, 200, 0, 10), 'hosts [#---------]  12/200');
  });
});

describe('doctor: password hashes', () => {
  test('a hash made as docs/api.md says is well-formed', () => {
    assert.equal(hashProblem(hashPassword('pw', Buffer.alloc(16, 1))), undefined);
  });
  test('short salts, short hashes and other schemes are named', () => {
    assert.match(hashProblem(hashPassword('pw', Buffer.alloc(8, 1))) ?? '', /salt of 8 bytes/);
    assert.match(
      hashProblem(`scrypt:${Buffer.alloc(16).toString('base64')}:${Buffer.alloc(32).toString('base64')}`) ?? '',
      /hash of 32 bytes/,
    );
    assert.match(hashProblem('bcrypt:abc:def') ?? '', /is not "scrypt:/);
  });
});

describe('doctor: the host probe', () => {
  test('its answers are read back', () => {
    assert.deepEqual(readProbe('chatter\nagentctl=missing\n'), { agentctl: 'missing' });
    assert.deepEqual(readProbe('agentctl=present\nstatus=3\nocp_agentd 12 running\npos_proxy - stopped\n'), {
      agentctl: 'present',
      statusCode: 3,
      statusOutput: 'ocp_agentd 12 running\npos_proxy - stopped',
    });
    assert.deepEqual(readProbe(''), { agentctl: 'unknown' });
  });
  test('the agent home is quoted for the shell', () => {
    assert.ok(probeScript("/opt/it's", 5).includes(`'/opt/it'"'"'s/bin/ocp_agentctl' status`));
  });
});
