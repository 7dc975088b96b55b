/**
 * Time to parse hostile `/ocp-agent` text (src/slack/parse-command.ts): a reason with a long run
 * of spaces before a last word, `restart 101 a<spaces>b`, at 1k, 2k, 4k, 8k and 16k spaces,
 * against the same length of ordinary words. Linear parsing keeps the ratio of the two near 1
 * and doubles with the length; the regular expression it replaced
 * (`/^\s*(\S*)\s*(\S*)\s*([\s\S]*?)\s*$/`, kept here as `OLD_SPLIT` for comparison) took
 * time in the square of the run of spaces. Pure CPU, one process, no servers.
 *
 *   npx tsx bench/slack-parse.ts [--runs 50]
 */
import { performance } from 'node:perf_hooks';
import { parseCommandText } from '../src/slack/parse-command.js';
import { summarize } from './lib/common.js';

/** The splitter of parse-command.ts before issue 10 (item 9), for the comparison. */
const OLD_SPLIT = /^\s*(\S*)\s*(\S*)\s*([\s\S]*?)\s*$/;

const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 50;
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error('--runs wants a positive integer');

function time(fn: () => unknown): { median: number; p99: number } {
  for (let i = 0; i < 3; i++) fn(); // warm-up
  const xs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    fn();
    xs.push(performance.now() - t0);
  }
  const s = summarize(xs);
  return { median: s.median, p99: s.p99 };
}

const f = (x: number) => (x < 0.1 ? x.toFixed(4) : x.toFixed(2));
console.log(`node ${process.version}; ${RUNS} runs each; ms (median / p99)`);
console.log('| spaces | parseCommandText, hostile | parseCommandText, words | old splitter regex, hostile |');
console.log('|---|---|---|---|');
for (const n of [1000, 2000, 4000, 8000, 16000]) {
  const hostile = `restart 101 a${' '.repeat(n)}b`;
  const words = `restart 101 ${'ab '.repeat(Math.ceil(n / 3))}`.slice(0, hostile.length);
  const a = time(() => parseCommandText(hostile));
  const b = time(() => parseCommandText(words));
  const c = time(() => OLD_SPLIT.exec(hostile));
  console.log(`| ${n} | ${f(a.median)} / ${f(a.p99)} | ${f(b.median)} / ${f(b.p99)} | ${f(c.median)} / ${f(c.p99)} |`);
}
