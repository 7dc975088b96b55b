/**
 * The terminal's picture of a Slack channel, for `npm run demo`: Block Kit
 * messages (what the local Slack stand-in holds) drawn as text lines, with
 * plain ANSI styles, emoji shortcodes as unicode, threads indented under their
 * parent. Pure: the caller decides when to draw.
 */

export interface ViewMessage {
  ts: string;
  text?: string;
  blocks?: unknown[];
  thread_ts?: string;
  reply_broadcast?: boolean;
  updates: number;
}

export interface ViewItem {
  parent: ViewMessage;
  replies: ViewMessage[];
  /** When the demo first saw it, epoch ms. */
  seenAt: number;
}

export interface Frame {
  channelName: string;
  items: ViewItem[];
  /** Ephemeral answers ("only visible to you"), oldest first. */
  ephemerals: Array<{ user: string; text: string }>;
  /** What is in the message box, and who is typing it. */
  composer?: { user: string; text: string };
  /** A button shown pressed: the parent's ts and the button's action_id. */
  pressed?: { ts: string; actionId: string };
  /** Lines above the first message, as Slack's "This is the very beginning of #…". */
  intro?: string[];
  /** The line at the bottom saying what the demo does. */
  narration: string;
  /** Right side of the title bar. */
  status: string;
}

export interface Style {
  bold(s: string): string;
  dim(s: string): string;
  code(s: string): string;
  mention(s: string): string;
  button(s: string, kind: 'danger' | 'primary' | 'plain', pressed: boolean): string;
  narration(s: string): string;
}

const ESC = '\x1b[';
const sgr = (open: string, close: string) => (s: string) => `${ESC}${open}m${s}${ESC}${close}m`;

export const ANSI: Style = {
  bold: sgr('1', '22'),
  dim: sgr('2', '22'),
  code: sgr('36', '39'),
  mention: sgr('1;34', '22;39'),
  button: (s, kind, pressed) => {
    const color = kind === 'danger' ? '31' : kind === 'primary' ? '32' : '39';
    return pressed ? `${ESC}7;1;${color}m${s}${ESC}0m` : `${ESC}1;${color}m${s}${ESC}22;39m`;
  },
  narration: sgr('1;33', '22;39'),
};

export const PLAIN: Style = {
  bold: (s) => s,
  dim: (s) => s,
  code: (s) => s,
  mention: (s) => s,
  button: (s, _kind, pressed) => (pressed ? `>${s}<` : s),
  narration: (s) => s,
};

/** Display names of the Slack users of the demo. */
export const USER_NAMES: Record<string, string> = { U0ALICE: 'alice', U0BOB: 'bob', U0BOT: 'ocp-bot' };

const EMOJI: Record<string, string> = {
  white_check_mark: '✅',
  x: '❌',
  hourglass_flowing_sand: '⏳',
  hourglass: '⌛',
  white_circle: '⚪',
  large_blue_circle: '🔵',
  fast_forward: '⏩',
  no_entry_sign: '🚫',
  no_entry: '⛔',
  warning: '⚠',
  red_circle: '🔴',
  grey_question: '❔',
};

export function emojify(s: string): string {
  return s.replace(/:([a-z0-9_+-]+):/g, (all, name: string) => EMOJI[name] ?? all);
}

function unescapeEntities(s: string): string {
  return s.replaceAll('&lt;', '<').replaceAll('&gt;', '>').replaceAll('&amp;', '&');
}

function clock(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

/** `<@U1>`, `<#C1|name>`, `<!date^…|fallback>`, `<url|label>` as a reader sees them. */
function token(inner: string, st: Style): string {
  const [target = '', label] = inner.split('|', 2);
  if (target.startsWith('@')) return st.mention(`@${USER_NAMES[target.slice(1)] ?? label ?? target.slice(1)}`);
  if (target.startsWith('#')) return st.mention(`#${label ?? target.slice(1)}`);
  if (target.startsWith('!date^')) {
    const secs = Number(target.split('^')[1]);
    return Number.isFinite(secs) ? clock(secs) : unescapeEntities(label ?? '');
  }
  if (target.startsWith('!')) return st.mention(`@${target.slice(1)}`);
  return label ? unescapeEntities(label) : target;
}

/** One line of mrkdwn (no code fences) to styled text. */
function inline(line: string, st: Style): string {
  const parts = line.split(/(`[^`\n]+`)/);
  return parts
    .map((part, i) => {
      if (i % 2 === 1) return st.code(unescapeEntities(part.slice(1, -1)));
      let s = part.replace(/<([^<>]+)>/g, (_all, inner: string) => token(inner, st));
      s = s.replace(
        /(^|[\s(])\*([^*\n]+)\*(?=$|[\s.,:;!?)])/g,
        (_all, pre: string, body: string) => pre + st.bold(body),
      );
      return emojify(unescapeEntities(s));
    })
    .join('');
}

/** mrkdwn to lines: code fences become dimmed, boxed lines. */
export function mrkdwnLines(text: string, st: Style): string[] {
  const out: string[] = [];
  const chunks = text.split('```');
  chunks.forEach((chunk, i) => {
    if (i % 2 === 1) {
      const body = chunk.replace(/^\n/, '').replace(/\n$/, '');
      for (const l of body.split('\n')) out.push(st.dim(`│ ${unescapeEntities(l)}`));
      return;
    }
    const lines = chunk.split('\n');
    if (i > 0 && lines[0] === '') lines.shift();
    if (i < chunks.length - 1 && lines[lines.length - 1] === '') lines.pop();
    for (const l of lines) out.push(inline(l, st));
  });
  return out;
}

interface TextObj {
  type?: string;
  text?: string;
}
interface Block {
  type?: string;
  text?: TextObj;
  fields?: TextObj[];
  elements?: Array<{ type?: string; text?: TextObj | string; action_id?: string; style?: string }>;
}

function textObj(t: TextObj | undefined, st: Style): string[] {
  if (!t || typeof t.text !== 'string') return [];
  return t.type === 'plain_text' ? [emojify(t.text)] : mrkdwnLines(t.text, st);
}

/** A message's Block Kit (or its text when it has none) as lines. */
export function messageLines(
  m: ViewMessage,
  st: Style,
  opts: { pressed?: string | undefined; inlineContext?: boolean } = {},
): string[] {
  const { pressed } = opts;
  const blocks = (m.blocks ?? []) as Block[];
  if (blocks.length === 0) return mrkdwnLines(m.text ?? '', st);
  const out: string[] = [];
  for (const b of blocks) {
    switch (b.type) {
      case 'section':
        out.push(...textObj(b.text, st));
        for (const f of b.fields ?? []) out.push(...textObj(f, st));
        break;
      case 'header':
        out.push(...textObj(b.text, st).map(st.bold));
        break;
      case 'context': {
        // Unstyled inside: a nested style's end would end the dimming early.
        const line = (b.elements ?? [])
          .flatMap((e) => textObj(e as TextObj, PLAIN))
          .join('  ·  ')
          .replace(/\n/g, ' ');
        if (opts.inlineContext && out.length > 0) out[out.length - 1] += st.dim(`  · ${line}`);
        else out.push(st.dim(line));
        break;
      }
      case 'actions':
        out.push(
          (b.elements ?? [])
            .map((e) => {
              const label = typeof e.text === 'string' ? e.text : (e.text?.text ?? e.action_id ?? '?');
              const kind = e.style === 'danger' ? 'danger' : e.style === 'primary' ? 'primary' : 'plain';
              return st.button(`[ ${emojify(label)} ]`, kind, pressed !== undefined && e.action_id === pressed);
            })
            .join(' '),
        );
        break;
      case 'divider':
        out.push(st.dim('────'));
        break;
      default:
        break;
    }
  }
  return out;
}

// ------------------------------------------------------------ terminal width

// biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escape sequences are what this matches
const SGR_RE = /\x1b\[[0-9;]*m/g;

export function stripAnsi(s: string): string {
  return s.replace(SGR_RE, '');
}

function charWidth(cp: number): number {
  if (cp === 0x200d || (cp >= 0xfe00 && cp <= 0xfe0f) || (cp >= 0x300 && cp <= 0x36f)) return 0;
  if (
    (cp >= 0x1f300 && cp <= 0x1faff) ||
    [0x2705, 0x274c, 0x23f3, 0x231b, 0x26aa, 0x23e9, 0x26d4, 0x2754].includes(cp) ||
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    cp >= 0x20000
  )
    return 2;
  return 1;
}

export function displayWidth(s: string): number {
  let w = 0;
  for (const ch of stripAnsi(s)) w += charWidth(ch.codePointAt(0) ?? 0);
  return w;
}

/** Styled text split into pieces: SGR sequences and single characters. */
function pieces(s: string): Array<{ sgr?: string; ch?: string; w: number }> {
  const out: Array<{ sgr?: string; ch?: string; w: number }> = [];
  let last = 0;
  for (const m of s.matchAll(SGR_RE)) {
    for (const ch of s.slice(last, m.index)) out.push({ ch, w: charWidth(ch.codePointAt(0) ?? 0) });
    out.push({ sgr: m[0], w: 0 });
    last = (m.index ?? 0) + m[0].length;
  }
  for (const ch of s.slice(last)) out.push({ ch, w: charWidth(ch.codePointAt(0) ?? 0) });
  return out;
}

/** SGR parameters in effect after `seq`, given those before it (only the ones this file uses). */
function applySgr(active: string[], seq: string): string[] {
  let next = [...active];
  const params = seq
    .slice(2, -1)
    .split(';')
    .filter((x) => x !== '');
  if (params.length === 0) return [];
  const closes: Record<string, (p: string) => boolean> = {
    '22': (p) => p === '1' || p === '2',
    '27': (p) => p === '7',
    '39': (p) => /^(3[0-7]|9[0-7])$/.test(p),
    '49': (p) => /^(4[0-7]|10[0-7])$/.test(p),
  };
  for (const p of params) {
    if (p === '0') next = [];
    else if (closes[p]) next = next.filter((q) => !closes[p]!(q));
    else if (!next.includes(p)) next.push(p);
  }
  return next;
}

/**
 * Wrap styled text to `width` columns, at spaces where it can; every line
 * after the first starts with `indent`. Styles open at a break are closed at
 * the end of the line and opened again on the next.
 */
export function wrap(s: string, width: number, indent = ''): string[] {
  const lines: string[] = [];
  const all = pieces(s);
  let active: string[] = [];
  let cur = '';
  let curW = 0;
  let lineStart = true;
  // Index into `all` after the last space of the current line, and the line's state there.
  let breakAt = -1;
  let breakCur = '';
  let breakActive: string[] = [];
  const first = () => lines.length === 0;
  const prefix = () => (first() ? '' : indent);
  const open = () => (active.length > 0 ? `${ESC}${active.join(';')}m` : '');
  for (let i = 0; i < all.length; i++) {
    const p = all[i]!;
    if (p.sgr) {
      active = applySgr(active, p.sgr);
      cur += p.sgr;
      continue;
    }
    const avail = width - displayWidth(prefix());
    if (curW + p.w > avail && !lineStart) {
      if (breakAt > 0 && p.ch !== ' ') {
        lines.push(prefix() + breakCur + (breakActive.length ? `${ESC}0m` : ''));
        active = breakActive;
        i = breakAt - 1;
      } else {
        lines.push(prefix() + cur + (active.length ? `${ESC}0m` : ''));
        if (p.ch !== ' ') i -= 1;
      }
      cur = open();
      curW = 0;
      lineStart = true;
      breakAt = -1;
      continue;
    }
    if (p.ch === ' ' && lineStart && !first()) continue; // no leading space on a continuation
    if (p.ch === ' ') {
      breakAt = i + 1;
      breakCur = cur;
      breakActive = [...active];
    }
    cur += p.ch;
    curW += p.w;
    lineStart = false;
  }
  lines.push(prefix() + cur);
  return lines;
}

// -------------------------------------------------------------------- frame

function itemLines(item: ViewItem, cols: number, st: Style, pressed: string | undefined, collapsed: boolean): string[] {
  const out: string[] = [''];
  const when = new Date(item.seenAt);
  const t = [when.getHours(), when.getMinutes(), when.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  const edited = item.parent.updates > 0 ? st.dim(`  (edited ×${item.parent.updates})`) : '';
  out.push(` ${st.bold('ocp-bot')} ${st.dim('APP')}  ${st.dim(t)}${edited}`);
  for (const l of messageLines(item.parent, st, { pressed })) out.push(...wrap(`   ${l}`, cols, '   '));
  if (item.replies.length === 0) return out;
  const n = item.replies.length;
  const label = `💬 ${n} ${n === 1 ? 'reply' : 'replies'}`;
  if (collapsed) {
    const last = stripAnsi(messageLines(item.replies[n - 1]!, PLAIN)[0] ?? '');
    out.push(...wrap(`   ${st.mention(label)}  ${st.dim(`last: ${last}`)}`, cols, '   '));
    return out;
  }
  out.push(`   ${st.mention(label)}`);
  for (const r of item.replies) {
    const lines = messageLines(r, st, { inlineContext: true });
    if (r.reply_broadcast && lines.length > 0) lines[0] += st.dim('  ↗ also sent to the channel');
    for (const l of lines) out.push(...wrap(`   ${st.dim('┃')} ${l}`, cols, `   ${st.dim('┃')}   `));
  }
  return out;
}

/** The whole screen, `rows` lines of at most `cols - 1` columns. */
export function renderFrame(f: Frame, cols: number, rows: number, st: Style = ANSI): string[] {
  const width = Math.max(20, cols - 1);
  const rule = st.dim('─'.repeat(width));
  const title = ` ${st.bold(`# ${f.channelName}`)}`;
  const gap = Math.max(1, width - displayWidth(title) - displayWidth(f.status) - 1);
  const top = [`${title}${' '.repeat(gap)}${st.dim(f.status)}`, rule];
  const composer = f.composer
    ? ` ${st.bold(f.composer.user)} ${st.dim('›')} ${f.composer.text}${st.dim('▌')}`
    : ` ${st.dim(`› Message #${f.channelName}`)}`;
  const bottom = [
    rule,
    ...wrap(composer, width, '   ').slice(-2),
    ...wrap(` ${st.narration(`▶ ${f.narration}`)}`, width, '   ').slice(0, 2),
  ];
  const room = Math.max(1, rows - top.length - bottom.length);

  const tail: string[] = [];
  for (const e of f.ephemerals.slice(-2)) {
    tail.push('');
    tail.push(...wrap(` ${st.dim(`👁 only visible to ${e.user}:`)} ${mrkdwnLines(e.text, st).join(' ')}`, width, '   '));
  }
  // Older threads fold to "💬 N replies" first, as Slack's channel view shows them, until it fits.
  const collapsed = f.items.map(() => false);
  const build = () =>
    f.items.flatMap((item, i) =>
      itemLines(item, width, st, f.pressed?.ts === item.parent.ts ? f.pressed.actionId : undefined, collapsed[i]!),
    );
  const intro = (f.intro ?? []).flatMap((l) => wrap(l, width, '     '));
  let body = [...intro, ...build(), ...tail];
  for (let i = 0; i < f.items.length - 1 && body.length > room; i++) {
    collapsed[i] = true;
    body = [...intro, ...build(), ...tail];
  }
  if (body.length > room) body = body.slice(body.length - room); // scrolled to the newest
  while (body.length < room) body.push('');
  return [...top, ...body, ...bottom];
}
