/**
 * One long-lived shell per SSH connection that runs scripts, several at once:
 * the approach that made Mitogen fast for Ansible. A new SSH session costs the
 * host a forked sshd and a login shell (~20 ms on a loaded 2-core machine,
 * plus whatever the user's ~/.bashrc takes: a pyenv or conda init is 150 ms
 * and may print); a script sent to a shell already there costs a fork.
 *
 * The environment (SPEC §9): a step sees what a plain `ssh host 'command'`
 * gives, and the login shell's start-up runs once per connection. So the
 * shell is started by the login shell as a plain command would be — `sh -s;
 * exit`, not `exec sh -s`: bash lowers SHLVL for what it execs, and a step
 * seeing SHLVL=0 has every `bash -c` it starts believe it is sshd's own and
 * source ~/.bashrc again (Debian's bash does so for SSH_CLIENT and level < 2).
 * Where sh is dash (Debian, Ubuntu) a step sees exactly the SHLVL of a plain
 * command, 1 under bash; where sh is bash (RHEL and its kin) every sh between
 * the login shell and the step may count a level, so a step may see more, never
 * less than 1: a nested bash still does not source ~/.bashrc.
 * It never changes directory, so scripts start where the login shell did.
 * And every script of the connection — steps, cancels, status reads — goes
 * through this one shell, so no second session runs ~/.bashrc again.
 *
 * Wire format: for request n we write one line
 *
 *   { sh -c '<script>' </dev/null >"$D/n.o" 2>"$D/n.e"; r=$?;
 *     { flock 8; printf '<nonce> %s %s %s\n' "$r" <bytes of o> <bytes of e>; cat "$D/n.o" "$D/n.e"; } 8>>"$D/lock";
 *     rm -f "$D/n.o" "$D/n.e"; } &
 *
 * and read the nonce line, then exactly the announced bytes. Requests run side
 * by side; the lock keeps each answer whole on the channel. `$D` is a folder
 * of the shell's own, removed when it exits. Each script runs in its own
 * `sh -c`, so nothing it does (exit, a syntax error) reaches the shell itself.
 * Anything else on the channel (what ~/.bashrc prints) lies outside every
 * answer and is dropped.
 */
import type { ClientChannel } from 'ssh2';
import { shellQuote } from '../core/runbooks/runbook.js';

export interface ShellResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * How the login shell starts ours: as a command of its own, not exec'd in its
 * place, so the shell (and every step) inherits SHLVL as the login shell
 * exports it to a plain command. `exit` follows so that no shell optimises the
 * last command into an exec.
 */
const SHELL_COMMAND = 'sh -s; exit';

/** The shell's own set-up: a private folder for each request's output, gone with the shell. */
const PRELUDE = 'D=$(mktemp -d) || exit 1; trap \'rm -rf "$D"\' EXIT; trap "exit 1" HUP INT TERM\n';

interface Pending {
  nonce: string;
  resolve(r: ShellResult): void;
  reject(err: Error): void;
}

export class HostShell {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly pending = new Map<string, Pending>();
  private closed = false;
  private seq = 0;

  private constructor(private readonly channel: ClientChannel) {
    channel.on('data', (chunk: Buffer) => this.onData(chunk));
    channel.stderr.on('data', () => undefined); // the shell's own complaints: nothing to frame
    channel.on('close', () => this.fail(new Error('shell channel closed')));
    channel.on('error', (err: Error) => this.fail(err));
  }

  /** Open a shell on an exec channel of `open` (the connection's exec). */
  static async open(
    exec: (command: string, cb: (err: Error | undefined, channel: ClientChannel) => void) => unknown,
  ): Promise<HostShell> {
    const channel = await new Promise<ClientChannel>((resolve, reject) => {
      exec(SHELL_COMMAND, (err, ch) => (err ? reject(err) : resolve(ch)));
    });
    channel.write(PRELUDE);
    return new HostShell(channel);
  }

  get usable(): boolean {
    return !this.closed;
  }

  /** Run `script` with `sh -c` on the host, beside whatever else runs in this shell. */
  run(script: string): Promise<ShellResult> {
    if (this.closed) return Promise.reject(new Error('shell channel closed'));
    const n = ++this.seq;
    const nonce = `@@ocp-${process.pid}-${n}-${Math.random().toString(36).slice(2)}`;
    const o = `"$D/${n}.o"`;
    const e = `"$D/${n}.e"`;
    return new Promise<ShellResult>((resolve, reject) => {
      this.pending.set(nonce, { nonce, resolve, reject });
      this.channel.write(
        `{ sh -c ${shellQuote(script)} </dev/null >${o} 2>${e}; r=$?; ` +
          `{ flock 8; printf '%s %s %s %s\\n' ${nonce} "$r" "$(wc -c <${o})" "$(wc -c <${e})"; cat ${o} ${e}; } 8>>"$D/lock"; ` +
          `rm -f ${o} ${e}; } &\n`,
      );
    });
  }

  close(): void {
    this.fail(new Error('shell closed'));
  }

  private fail(err: Error): void {
    if (!this.closed) {
      this.closed = true;
      this.channel.close();
    }
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    for (;;) {
      if (this.pending.size === 0) {
        this.buffer = Buffer.alloc(0); // nothing asked: stray output
        return;
      }
      // The first answer on the channel: answers never interleave, and what
      // comes before one is stray output.
      let p: Pending | undefined;
      let at = -1;
      for (const q of this.pending.values()) {
        const i = this.buffer.indexOf(`${q.nonce} `);
        if (i >= 0 && (at < 0 || i < at)) [p, at] = [q, i];
      }
      if (!p) return;
      const eol = this.buffer.indexOf('\n', at);
      if (eol < 0) return;
      const [, code, outBytes, errBytes] = this.buffer.subarray(at, eol).toString().trim().split(/\s+/).map(Number);
      const start = eol + 1;
      const end = start + (outBytes ?? 0) + (errBytes ?? 0);
      if (this.buffer.length < end) return;
      const stdout = this.buffer.subarray(start, start + (outBytes ?? 0)).toString();
      const stderr = this.buffer.subarray(start + (outBytes ?? 0), end).toString();
      this.buffer = this.buffer.subarray(end);
      this.pending.delete(p.nonce);
      p.resolve({ code: code ?? -1, stdout, stderr });
    }
  }
}
