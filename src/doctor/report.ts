/**
 * The doctor's findings and how they are shown: a table (where, check,
 * verdict, what to do), JSON for machines, the exit code, and the progress
 * line while hosts are checked. Pure: no I/O.
 */

/** ok: works; warn: works but worth a look (never fails the run); fail: the service will not work so; skip: not checked (an earlier check failed, or the feature is off). */
export type Verdict = 'ok' | 'warn' | 'fail' | 'skip';

export interface Finding {
  /** What was checked: `host 101 (ocp-host-1)`, `nats`, `slack`, `http user alice`, `config`. */
  target: string;
  /** The check's name: `reach`, `host key`, `login`, `become`, `agentctl`, `agent status`, … */
  check: string;
  verdict: Verdict;
  /** What was found, in a line. */
  detail: string;
  /** What to do about it; only on warn and fail. */
  remedy?: string;
}

export const finding = (target: string, check: string, verdict: Verdict, detail: string, remedy?: string): Finding => ({
  target,
  check,
  verdict,
  detail,
  ...(remedy === undefined ? {} : { remedy }),
});

/** Non-zero when anything failed: 1. */
export function exitCodeOf(findings: readonly Finding[]): number {
  return findings.some((f) => f.verdict === 'fail') ? 1 : 0;
}

export function countVerdicts(findings: readonly Finding[]): Record<Verdict, number> {
  const counts: Record<Verdict, number> = { ok: 0, warn: 0, fail: 0, skip: 0 };
  for (const f of findings) counts[f.verdict]++;
  return counts;
}

const LABEL: Record<Verdict, string> = { ok: 'ok', warn: 'WARN', fail: 'FAIL', skip: 'skip' };

/** Longest detail or remedy cell (characters) before it is wrapped onto further lines. */
const WRAP = 72;

/** A cell's text cut into lines of at most `width` characters, at spaces where it can. */
export function wrap(text: string, width = WRAP): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line === '') line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
    while (line.length > width) {
      lines.push(line.slice(0, width));
      line = line.slice(width);
    }
  }
  if (line !== '' || lines.length === 0) lines.push(line);
  return lines;
}

/**
 * The findings as a plain-text table, one row per finding (long cells wrapped),
 * in the order given, then a summary line. `verbose` false leaves out the ok
 * and skip rows of a host whose checks all passed, and says how many hosts
 * were all well instead: 200 healthy hosts do not bury one broken one.
 */
export function formatTable(findings: readonly Finding[], opts: { verbose?: boolean } = {}): string {
  const shown = opts.verbose ? findings : quiet(findings);
  const header = ['WHERE', 'CHECK', 'VERDICT', 'DETAIL', 'WHAT TO DO'];
  const rows = shown.map((f) => [f.target, f.check, LABEL[f.verdict], f.detail, f.remedy ?? '']);
  const widths = [0, 1, 2, 3].map((i) =>
    Math.min(WRAP, Math.max(header[i]?.length ?? 0, ...rows.map((r) => r[i]?.length ?? 0))),
  );
  const out: string[] = [];
  const line = (cells: string[]) => {
    const detail = wrap(cells[3] ?? '', WRAP);
    const remedy = wrap(cells[4] ?? '', WRAP);
    for (let i = 0; i < Math.max(detail.length, remedy.length); i++) {
      const left = [0, 1, 2].map((c) => (i === 0 ? (cells[c] ?? '') : '').padEnd(widths[c] ?? 0));
      out.push([...left, (detail[i] ?? '').padEnd(widths[3] ?? 0), remedy[i] ?? ''].join('  ').trimEnd());
    }
  };
  line(header);
  for (const r of rows) line(r);
  const hidden = findings.length - shown.length;
  const allWell = hostsAllWell(findings);
  const c = countVerdicts(findings);
  const summary = [
    `${c.fail} failed, ${c.warn} warnings, ${c.ok} ok, ${c.skip} skipped`,
    ...(hidden > 0 ? [`${allWell} hosts all well, their rows left out (--verbose shows them)`] : []),
  ];
  out.push('', summary.join('; '));
  return `${out.join('\n')}\n`;
}

const isHost = (f: Finding) => f.target.startsWith('host ');

/** Hosts whose every check is ok (or skipped with nothing failing). */
function hostsAllWell(findings: readonly Finding[]): number {
  const bad = new Set(
    findings.filter((f) => isHost(f) && (f.verdict === 'fail' || f.verdict === 'warn')).map((f) => f.target),
  );
  return new Set(findings.filter((f) => isHost(f) && !bad.has(f.target)).map((f) => f.target)).size;
}

/** Every finding but those of hosts that are all well. */
function quiet(findings: readonly Finding[]): Finding[] {
  const bad = new Set(
    findings.filter((f) => isHost(f) && (f.verdict === 'fail' || f.verdict === 'warn')).map((f) => f.target),
  );
  return findings.filter((f) => !isHost(f) || bad.has(f.target));
}

/** The findings for machines: `{ok, counts, findings}`. */
export function toJson(findings: readonly Finding[]): string {
  return `${JSON.stringify({ ok: exitCodeOf(findings) === 0, counts: countVerdicts(findings), findings }, null, 2)}\n`;
}

/** `hosts [##########----------]  12/24, 1 failing`: the progress line while hosts are checked. */
export function progressLine(done: number, total: number, failing: number, width = 20): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
  return `hosts [${bar}] ${String(done).padStart(String(total).length)}/${total}${failing > 0 ? `, ${failing} failing` : ''}`;
}
