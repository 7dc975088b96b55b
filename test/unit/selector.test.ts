/**
 * Host selectors (src/contracts/selector.ts, SPEC §10): the text form, good and
 * bad, each refusal saying what is wrong; the JSON form as every door's input
 * takes it, never beside host ids; matching, exact and case-sensitive, in
 * inventory order.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BatchInput, HostListInput, operationInput } from '../../src/contracts/api.js';
import { AgentCommand, SlackDoorCommand } from '../../src/contracts/events.js';
import { requestHosts } from '../../src/contracts/host-list.js';
import {
  isSelectorToken,
  MAX_SELECTOR_CHARS,
  matchesSelector,
  parseSelector,
  type Selector,
  selectHosts,
  selectorText,
} from '../../src/contracts/selector.js';
import { describeZodError } from '../../src/errors.js';

const good: Array<[text: string, selector: Selector]> = [
  ['all', 'all'],
  ['cluster=obcluster1', { cluster: 'obcluster1' }],
  ['cluster=obcluster1,zone=z1', { cluster: 'obcluster1', zone: 'z1' }],
  ['zone=z1,cluster=obcluster1', { zone: 'z1', cluster: 'obcluster1' }],
  ['env=prod,region=hz,cluster=ob-1.a_b', { env: 'prod', region: 'hz', cluster: 'ob-1.a_b' }],
  ['k.8-s_=1', { 'k.8-s_': '1' }],
  ['all=1', { all: '1' }],
  ['Cluster=OB1', { Cluster: 'OB1' }],
];

describe('parseSelector: accepted', () => {
  for (const [text, selector] of good) {
    test(text, () => {
      assert.deepEqual(parseSelector(text), { ok: true, selector });
      assert.equal(selectorText(selector), text, 'written back as typed');
    });
  }
});

/** text, what the refusal must say. */
const bad: Array<[text: string, says: RegExp]> = [
  ['', /^is empty: write key=value pairs joined by commas, e\.g\. cluster=obcluster1,zone=z1, or all$/],
  ['cluster=', /^cluster has no value: write cluster=<value>$/],
  ['cluster=a,zone=', /^zone has no value/],
  ['=obcluster1', /^"=obcluster1" has no label key/],
  ['cluster=a,cluster=b', /^cluster is given twice: each label once \(every one must match\)$/],
  ['cluster=a,cluster=a', /^cluster is given twice/],
  ['cluster=a,', /^has an empty pair: .*one comma between pairs$/],
  [',cluster=a', /^has an empty pair/],
  ['cluster=a,,zone=b', /^has an empty pair/],
  ['cluster=a, zone=b', /^has a space: .*without spaces$/],
  [' cluster=a', /^has a space/],
  ['cluster=a ', /^has a space/],
  ['cluster=a\tzone=b', /^has a space/],
  ['all,cluster=a', /^mixes all with labels: all names every host and stands alone$/],
  ['cluster=a,all', /^mixes all with labels/],
  ['all,all', /^mixes all with labels/],
  ['101', /^"101" is not key=value: a selector is labels only, never host ids or names/],
  ['cluster=a,101', /^"101" is not key=value/],
  ['cluster=a,ocp-host-1', /^"ocp-host-1" is not key=value/],
  ['ALL', /^"ALL" is not key=value/],
  ['cluster=a=b', /^the value of cluster \("a=b"\) must be letters, digits, \. _ - \(at least one\)$/],
  ['clu$ter=a', /^label key "clu\$ter" must be letters, digits, \. _ -/],
  ['cluster=ob/1', /^the value of cluster \("ob\/1"\) must be letters/],
  ['zone=z1é', /^the value of zone/],
  [`cluster=${'x'.repeat(MAX_SELECTOR_CHARS)}`, /^is longer than 1000 characters$/],
];

describe('parseSelector: refused, saying why', () => {
  for (const [text, says] of bad) {
    test(JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text), () => {
      const r = parseSelector(text);
      assert.equal(r.ok, false);
      if (!r.ok) assert.match(r.error, says);
    });
  }
});

test('isSelectorToken: a token in the hosts’ place holding = is a selector, and so is all', () => {
  assert.ok(isSelectorToken('all'));
  assert.ok(isSelectorToken('cluster=obcluster1'));
  assert.ok(isSelectorToken('101,zone=z1'));
  assert.ok(!isSelectorToken('101'));
  assert.ok(!isSelectorToken('101,102'));
  assert.ok(!isSelectorToken('ALL'));
  assert.ok(!isSelectorToken('ocp-host-1'));
});

describe('matching', () => {
  const hosts: Array<{ id: number; labels: Record<string, string> }> = [
    { id: 1, labels: { cluster: 'obcluster1', zone: 'z1', env: 'prod' } },
    { id: 2, labels: { cluster: 'obcluster1', zone: 'z2' } },
    { id: 3, labels: { cluster: 'obcluster2', zone: 'z1' } },
    { id: 4, labels: {} },
    { id: 5, labels: { cluster: 'OBCLUSTER1', zone: 'z1' } },
  ];
  const ids = (s: Selector) => selectHosts(hosts, s).map((h) => h.id);

  test('every label must match, exactly and case-sensitively; inventory order', () => {
    assert.deepEqual(ids({ cluster: 'obcluster1' }), [1, 2]);
    assert.deepEqual(ids({ zone: 'z1', cluster: 'obcluster1' }), [1]);
    assert.deepEqual(ids({ zone: 'z1' }), [1, 3, 5]);
    assert.deepEqual(ids({ cluster: 'obcluster' }), [], 'no prefix match');
    assert.deepEqual(ids({ Cluster: 'obcluster1' }), [], 'keys are case-sensitive');
    assert.deepEqual(ids({ cluster: 'obcluster1', nope: 'x' }), [], 'a label the host lacks never matches');
  });

  test('all matches every host, labelled or not', () => {
    assert.deepEqual(ids('all'), [1, 2, 3, 4, 5]);
  });

  test('a label named like an object property is no label a host has', () => {
    assert.equal(matchesSelector({}, { constructor: 'x' }), false);
    assert.equal(matchesSelector({}, { toString: 'x' }), false);
  });
});

describe('in JSON, on every door', () => {
  const op = operationInput({});
  const fail = (r: { success: boolean; error?: { issues: never[] } }) => {
    assert.equal(r.success, false);
    return describeZodError(r.error as never);
  };

  test('"all" or a non-empty object of strings', () => {
    assert.deepEqual(op.parse({ selector: 'all' }).selector, 'all');
    assert.deepEqual(op.parse({ selector: { cluster: 'obcluster1', zone: 'z1' } }).selector, {
      cluster: 'obcluster1',
      zone: 'z1',
    });
    assert.deepEqual(BatchInput.parse({ selector: { cluster: 'obcluster1' } }).selector, { cluster: 'obcluster1' });
    assert.deepEqual(AgentCommand.parse({ selector: 'all', creator: 'ops' }).selector, 'all');
  });

  const refusals: Array<[value: unknown, field: string, says: RegExp]> = [
    [{}, 'selector', /names no label: give at least one, e\.g\. \{"cluster":"obcluster1"\}, or "all"/],
    ['cluster=obcluster1', 'selector', /must be "all" or an object of label values as strings/],
    ['ALL', 'selector', /must be "all" or an object/],
    [{ cluster: 1 }, 'selector', /must be "all" or an object of label values as strings/],
    [{ cluster: '' }, 'selector.cluster', /must be letters, digits, \. _ - \(at least one\)/],
    [{ 'clu ster': 'a' }, 'selector.clu ster', /a label key must be letters, digits/],
    [['cluster=a'], 'selector', /must be "all" or an object/],
    [null, 'selector', /must be "all" or an object/],
  ];
  for (const [value, field, says] of refusals) {
    test(`selector ${JSON.stringify(value)}: 10001 naming ${field}`, () => {
      const d = fail(op.safeParse({ selector: value }) as never);
      assert.equal(d.field, field);
      assert.match(d.message, says);
    });
  }

  test('never together with hostIds or hostId: refused naming selector', () => {
    for (const [schema, body] of [
      [op, { selector: 'all', hostIds: [101] }],
      [op, { selector: { cluster: 'a' }, hostId: 101 }],
      [op, { selector: 'all', hostId: 101, hostIds: [102] }],
      [BatchInput, { selector: 'all', hostIds: [101] }],
      [AgentCommand, { selector: 'all', hostIds: [101], creator: 'ops' }],
    ] as const) {
      const d = fail(schema.safeParse(body) as never);
      assert.equal(d.field, 'selector');
      assert.match(
        d.message,
        /^selector: never comes with host(Id|Ids)( and hostIds)?: name the hosts by ids or by a selector/,
      );
    }
  });

  test('one way to name the hosts is required', () => {
    assert.match(fail(op.safeParse({}) as never).message, /^hostId: give one of hostId, hostIds or selector$/);
    assert.match(fail(BatchInput.safeParse({}) as never).message, /^hostIds: give either hostIds or selector$/);
    const slack = { requestId: 'slack-1', origin: { kind: 'slack', channelId: 'C1', userId: 'U1' } };
    assert.equal(SlackDoorCommand.safeParse(slack).success, false);
    assert.deepEqual(SlackDoorCommand.parse({ ...slack, selector: { zone: 'z1' } }).selector, { zone: 'z1' });
  });

  test('requestHosts: ids, or the selector', () => {
    assert.deepEqual(requestHosts({ hostId: 101 }), { hostIds: [101] });
    assert.deepEqual(requestHosts({ hostIds: [101, 102] }), { hostIds: [101, 102] });
    assert.deepEqual(requestHosts({ selector: 'all' }), { selector: 'all' });
  });
});

describe('the preview’s input (a query string, or JSON over NATS)', () => {
  test('text or JSON, the same selector', () => {
    assert.deepEqual(HostListInput.parse({ selector: 'cluster=obcluster1,zone=z1' }).selector, {
      cluster: 'obcluster1',
      zone: 'z1',
    });
    assert.deepEqual(HostListInput.parse({ selector: { cluster: 'obcluster1' } }).selector, { cluster: 'obcluster1' });
    assert.equal(HostListInput.parse({ selector: 'all' }).selector, 'all');
    assert.equal(HostListInput.parse({}).selector, undefined);
  });

  test('bad text: the parser’s words, naming selector', () => {
    const r = HostListInput.safeParse({ selector: 'cluster=a,cluster=b' });
    assert.equal(r.success, false);
    if (!r.success)
      assert.deepEqual(describeZodError(r.error), {
        message: 'selector: cluster is given twice: each label once (every one must match)',
        field: 'selector',
      });
  });
});
