/**
 * The text of `/ocp-agent …` comes from anyone in the workspace, and is read on the request
 * path before Slack's 3-second deadline: its parsing must cost time in proportion to its
 * length. Shown without a clock, by counting a backtracking engine's steps (test/helpers/
 * regex-steps.ts) for every regular expression in src/slack/parse-command.ts over inputs that
 * repeat one piece many times between a prefix and a suffix: doubling the input may at most
 * about double the steps. A pattern whose steps quadruple (it backtracks over the same
 * characters once per character) fails, naming the input.
 *
 * The words are split by a scan now; it must split exactly as the regular expression it
 * replaced did (`OLD_SPLIT`, kept here as the reference), on ordinary commands and odd ones.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { splitCommandText } from '../../src/slack/parse-command.js';
import { backtrackingSteps, regexLiteralsIn } from '../helpers/regex-steps.js';

const PARSER = new URL('../../src/slack/parse-command.ts', import.meta.url).pathname;

/** Pieces an input is built of: each character class the patterns name, and Slack's escapes and links. */
const PREFIXES = ['', 'a', 'a ', 'a b', 'a b c', 'restart 101 x', '<', '<http://', '<http://a|', '&', '1'];
const UNITS = [' ', '\n', 'a', '0', '1', '<', '>', '|', '/', '&', ';', ',', '.', '-', '_', ' a', 'a ', '&amp;'];
const SUFFIXES = ['', ' ', 'x', '!', '>', '|', ' x', ';', '@'];
const N = 64;

describe('parse-command: work linear in the text', () => {
  const patterns = regexLiteralsIn(PARSER);

  test('the parser has its patterns (the check sees them)', () => {
    assert.ok(patterns.length >= 5, `found ${patterns.length} regular expressions in ${PARSER}`);
  });

  for (const re of patterns) {
    test(`${re}: doubling the input at most about doubles the steps`, () => {
      let worst = { ratio: 0, input: '', steps: [0, 0] };
      for (const prefix of PREFIXES) {
        for (const unit of UNITS) {
          for (const suffix of SUFFIXES) {
            const make = (n: number) => prefix + unit.repeat(n) + suffix;
            const small = backtrackingSteps(re, make(N));
            const large = backtrackingSteps(re, make(2 * N));
            const ratio = large / small;
            if (ratio > worst.ratio)
              worst = {
                ratio,
                input: `${JSON.stringify(prefix)} + ${JSON.stringify(unit)} × n + ${JSON.stringify(suffix)}`,
                steps: [small, large],
              };
          }
        }
      }
      assert.ok(
        worst.ratio <= 2.5,
        `${re} takes ${worst.steps[0]} steps at n=${N} and ${worst.steps[1]} at n=${2 * N} ` +
          `(×${worst.ratio.toFixed(2)}) on ${worst.input}: its work grows faster than the text`,
      );
    });
  }
});

/** The splitter before issue 10 (item 9): right, but quadratic in a run of spaces. */
const OLD_SPLIT = /^\s*(\S*)\s*(\S*)\s*([\s\S]*?)\s*$/;

function oldSplit(text: string): { verb: string; arg: string; rest: string } {
  const m = OLD_SPLIT.exec(text);
  return { verb: m?.[1] ?? '', arg: m?.[2] ?? '', rest: m?.[3] ?? '' };
}

describe('splitCommandText: as the regular expression it replaced', () => {
  /** Every kind of white space `\s` knows, and characters around them (a surrogate pair too). */
  const spaces = [' ', '\t', '\n', '\r', '\v', '\f', '\u00a0', '\u1680', '\u2000', '\u200a', '\u2028', '\u2029'];
  const others = ['\u202f', '\u205f', '\u3000', '\ufeff', '\u200b', '\u180e', 'a', 'Z', '1', ',', '<', '&', '@', '😀'];
  const unit = fc.constantFrom(...spaces, ...others);

  test('on any text of spaces and words', () => {
    fc.assert(
      fc.property(fc.string({ unit, maxLength: 40 }), (text) => {
        assert.deepEqual(splitCommandText(text), oldSplit(text));
      }),
      { numRuns: 5000 },
    );
  });

  test('on commands as people type them', () => {
    const word = fc.stringMatching(/^[A-Za-z0-9,._<>|:&;#@-]{1,12}$/);
    const gap = fc.constantFrom(' ', '  ', '\t', '\n', ' \n ', '\u00a0');
    const command = fc
      .tuple(fc.option(gap), fc.array(fc.tuple(word, gap), { maxLength: 8 }), fc.option(word), fc.option(gap))
      .map(([lead, pairs, last, trail]) => `${lead ?? ''}${pairs.flat().join('')}${last ?? ''}${trail ?? ''}`);
    fc.assert(
      fc.property(command, (text) => {
        assert.deepEqual(splitCommandText(text), oldSplit(text));
      }),
      { numRuns: 2000 },
    );
  });

  test('on a long run of spaces inside the reason', () => {
    const text = `restart 101 a${' '.repeat(8000)}b \n`;
    assert.deepEqual(splitCommandText(text), oldSplit(text));
    assert.deepEqual(splitCommandText(text), { verb: 'restart', arg: '101', rest: `a${' '.repeat(8000)}b` });
  });
});
