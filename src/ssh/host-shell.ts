/**
 * A long-lived shell on a host, over one SSH channel, that runs script after
 * script: the approach that made Mitogen fast for Ansible. A new SSH session
 * costs the host a forked sshd and a login shell (~20 ms on a loaded 2-core
 * machine); a script sent to a shell already there costs a fork.
 *
 * Wire format, one request at a time: we write
 *
 *   sh -c '<script>' </dev/null >"$D/o" 2>"$D/e"; r=$?; printf '<nonce> %s %s %s\n' "$r" <bytes of o> <bytes of e>; cat "$D/o" "$D/e"
 *
 * and read up to the nonce line, then exactly the announced bytes. `$D` is a
 * folder of the shell's own, removed when it exits. The script runs in its own
 * `sh -c`, so nothing it does (exit, a syntax error) reaches the shell itself.
 *
 * The environment (SPEC §9): a step sees what a plain `ssh host 'command'`
 * gives. So the shell is started by the login shell as a plain command would
 * be — `sh -s; exit`, not `exec sh -s`: bash lowers SHLVL for what it execs,
 * and a step seeing SHLVL=0 has every `bash -c` it starts believe it is
 * sshd's own and source ~/.bashrc again (Debian's bash does so for SSH_CLIENT
 * and level < 2). It never changes directory, so scripts start where the
 * login shell did.
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
export const SHELL_COMMAND = 'sh -s; exit';

/** The shell's own set-up: a private folder for each request's output, gone with the shell. */
const PRELUDE = 'D=$(mktemp -d) || exit 1; trap \'rm -rf "$D"\' EXIT; trap "exit 1" HUP INT TERM\n';

interface Pending {
  nonce: string;
  resolve(r: ShellResult): void;
  reject(err: Error): void;
}

export class HostShell {
  private buffer: Buffer = Buffer.alloc(0);
  private pending: Pending | undefined;
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

  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** Run `script` with `sh -c` on the host; one at a time per shell. */
  run(script: string): Promise<ShellResult> {
    if (this.closed) return Promise.reject(new Error('shell channel closed'));
    if (this.pending) return Promise.reject(new Error('shell busy'));
    const nonce = `@@ocp-${process.pid}-${++this.seq}-${Math.random().toString(36).slice(2)}`;
    return new Promise<ShellResult>((resolve, reject) => {
      this.pending = { nonce, resolve, reject };
      this.channel.write(
        `sh -c ${shellQuote(script)} </dev/null >"$D/o" 2>"$D/e"; r=$?; ` +
          `printf '%s %s %s %s\\n' ${nonce} "$r" "$(wc -c <"$D/o")" "$(wc -c <"$D/e")"; cat "$D/o" "$D/e"\n`,
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
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }

  private onData(chunk: Buffer): void {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const p = this.pending;
    if (!p) {
      this.buffer = Buffer.alloc(0); // nothing asked: stray output
      return;
    }
    const at = this.buffer.indexOf(`${p.nonce} `);
    if (at < 0) return;
    const eol = this.buffer.indexOf('\n', at);
    if (eol < 0) return;
    const [, code, outBytes, errBytes] = this.buffer.subarray(at, eol).toString().split(' ').map(Number);
    const start = eol + 1;
    const end = start + (outBytes ?? 0) + (errBytes ?? 0);
    if (this.buffer.length < end) return;
    const stdout = this.buffer.subarray(start, start + (outBytes ?? 0)).toString();
    const stderr = this.buffer.subarray(start + (outBytes ?? 0), end).toString();
    this.buffer = this.buffer.subarray(end);
    this.pending = undefined;
    p.resolve({ code: code ?? -1, stdout, stderr });
  }
}
