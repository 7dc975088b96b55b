/**
 * How much work a backtracking regular-expression engine (V8's Irregexp is one) does to run a
 * pattern over an input, counted in steps instead of timed: a small interpreter that tries
 * alternatives in the order ECMAScript prescribes and counts every node it tries. The count is
 * deterministic, so a test can tell a pattern whose work grows with the square of the input
 * (nested or adjacent quantifiers that can share characters) from one whose work grows with its
 * length, without a clock.
 *
 * It knows the syntax the code base's patterns use: `^` `$` `.` `|`, groups `(…)` and `(?:…)`,
 * classes `[…]`, escapes (`\s`, `\d`, `\/`, `\uXXXX`, …), and the quantifiers `*` `+` `?`
 * `{m}` `{m,}` `{m,n}`, greedy or lazy; flags `g`, `i`, `s`, `u`. Anything else (lookaround,
 * backreferences, `\b`, named groups, the `m` and `y` flags) is refused rather than guessed.
 * `regexLiteralsIn` lists the regular-expression literals of a TypeScript file.
 */
import { readFileSync } from 'node:fs';
import ts from 'typescript';

type Node =
  | { kind: 'char'; test: (c: string) => boolean }
  | { kind: 'start' }
  | { kind: 'end' }
  | { kind: 'alt'; options: Node[][] }
  | { kind: 'repeat'; node: Node; min: number; max: number; lazy: boolean };

const SUPPORTED_FLAGS = new Set(['g', 'i', 's', 'u']);

function parse(source: string, flags: string): Node {
  let pos = 0;
  const atomFlags = [...flags].filter((f) => f === 'i' || f === 's' || f === 'u').join('');
  /** An atom that matches exactly one character, tested by the engine itself on that one character. */
  const single = (atomSource: string): Node => {
    const re = new RegExp(`^(?:${atomSource})$`, atomFlags);
    return { kind: 'char', test: (c) => re.test(c) };
  };
  const unsupported = (what: string): never => {
    throw new Error(`regex-steps: ${what} at ${pos} in /${source}/ is not supported`);
  };

  function alternation(): Node {
    const options: Node[][] = [sequence()];
    while (source[pos] === '|') {
      pos++;
      options.push(sequence());
    }
    return { kind: 'alt', options };
  }

  function sequence(): Node[] {
    const items: Node[] = [];
    while (pos < source.length && source[pos] !== '|' && source[pos] !== ')') {
      const atom = parseAtom();
      items.push(quantified(atom));
    }
    return items;
  }

  function quantified(atom: Node): Node {
    let min: number;
    let max: number;
    const c = source[pos];
    if (c === '*') [min, max] = [0, Number.POSITIVE_INFINITY];
    else if (c === '+') [min, max] = [1, Number.POSITIVE_INFINITY];
    else if (c === '?') [min, max] = [0, 1];
    else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(pos));
      if (!m) return unsupported('a `{` that is no quantifier');
      min = Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3]);
      pos += m[0].length - 1;
    } else return atom;
    if (atom.kind === 'start' || atom.kind === 'end') unsupported('a quantified anchor');
    pos++;
    const lazy = source[pos] === '?';
    if (lazy) pos++;
    return { kind: 'repeat', node: atom, min, max, lazy };
  }

  function parseAtom(): Node {
    const c = source[pos] as string;
    if (c === '^') {
      pos++;
      return { kind: 'start' };
    }
    if (c === '$') {
      pos++;
      return { kind: 'end' };
    }
    if (c === '(') {
      pos++;
      if (source.startsWith('?:', pos)) pos += 2;
      else if (source[pos] === '?') unsupported('lookaround or a named group');
      const inner = alternation();
      if (source[pos] !== ')') unsupported('an unclosed group');
      pos++;
      return inner;
    }
    if (c === '[') {
      const from = pos;
      pos++;
      if (source[pos] === '^') pos++;
      if (source[pos] === ']') pos++; // `[]]`-style first bracket is literal (non-`u` mode)
      while (pos < source.length && source[pos] !== ']') pos += source[pos] === '\\' ? 2 : 1;
      if (pos >= source.length) unsupported('an unclosed class');
      pos++;
      return single(source.slice(from, pos));
    }
    if (c === '\\') {
      const e = source[pos + 1];
      if (e === undefined) return unsupported('a trailing backslash');
      if (/[1-9kbB]/.test(e)) unsupported(`\\${e}`);
      if (e === 'u' && /^[0-9A-Fa-f]{4}$/.test(source.slice(pos + 2, pos + 6))) {
        pos += 6;
        return single(source.slice(pos - 6, pos));
      }
      if (e === 'x' && /^[0-9A-Fa-f]{2}$/.test(source.slice(pos + 2, pos + 4))) {
        pos += 4;
        return single(source.slice(pos - 4, pos));
      }
      pos += 2;
      return single(`\\${e}`);
    }
    if (c === '*' || c === '+' || c === '?' || c === '{' || c === ')' || c === '|') {
      return unsupported(`a \`${c}\` with nothing to repeat`);
    }
    pos++;
    return single(c === '.' ? '.' : c.replace(/[\]\\^$.|?*+(){}[]/g, '\\$&'));
  }

  const top = alternation();
  if (pos !== source.length) unsupported('an unbalanced `)`');
  return top;
}

/**
 * Steps a backtracking engine takes to run `re` over `input` as `String.prototype.replace`
 * would with this pattern: with `g`, every match from left to right; without, the first. A step
 * is one node tried at one position.
 */
export function backtrackingSteps(re: RegExp, input: string): number {
  for (const f of re.flags) if (!SUPPORTED_FLAGS.has(f)) throw new Error(`regex-steps: flag ${f} is not supported`);
  const root = parse(re.source, re.flags);
  let steps = 0;

  function match(node: Node, i: number, k: (i: number) => boolean): boolean {
    steps++;
    switch (node.kind) {
      case 'char':
        return i < input.length && node.test(input[i] as string) && k(i + 1);
      case 'start':
        return i === 0 && k(i);
      case 'end':
        return i === input.length && k(i);
      case 'alt':
        return node.options.some((seq) => sequence(seq, 0, i, k));
      case 'repeat':
        return repeat(node, 0, i, k);
    }
  }

  function sequence(seq: Node[], j: number, i: number, k: (i: number) => boolean): boolean {
    const node = seq[j];
    return node === undefined ? k(i) : match(node, i, (next) => sequence(seq, j + 1, next, k));
  }

  function repeat(
    node: Extract<Node, { kind: 'repeat' }>,
    count: number,
    i: number,
    k: (i: number) => boolean,
  ): boolean {
    // an iteration that matched nothing once the minimum is reached ends the loop (ECMAScript RepeatMatcher)
    const more = () =>
      count < node.max &&
      match(node.node, i, (next) => (next !== i || count < node.min) && repeat(node, count + 1, next, k));
    const stop = () => count >= node.min && k(i);
    return node.lazy ? stop() || more() : more() || stop();
  }

  let from = 0;
  while (from <= input.length) {
    let end = -1;
    let start = from;
    for (; start <= input.length; start++) {
      if (
        match(root, start, (i) => {
          end = i;
          return true;
        })
      )
        break;
    }
    if (end < 0 || !re.flags.includes('g')) break;
    from = end > start ? end : end + 1;
  }
  return steps;
}

/** The regular-expression literals of a TypeScript source file, in order. */
export function regexLiteralsIn(path: string): RegExp[] {
  const file = ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: RegExp[] = [];
  const visit = (node: ts.Node): void => {
    if (node.kind === ts.SyntaxKind.RegularExpressionLiteral) {
      const text = node.getText(file);
      const slash = text.lastIndexOf('/');
      found.push(new RegExp(text.slice(1, slash), text.slice(slash + 1)));
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}
