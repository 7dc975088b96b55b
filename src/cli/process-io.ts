/** The CLI's io on the real process: its streams, environment and folder; a password read without echo. */
import { createInterface } from 'node:readline';
import type { CliIo } from './io.js';

/**
 * One line from stdin. On a terminal, typed without echo (raw mode: Enter
 * ends it, Backspace takes a character back, Ctrl-C or Ctrl-D gives up);
 * from a pipe, its first line. Undefined when stdin ends first.
 */
export function readSecretLine(
  prompt: string,
  stderr: NodeJS.WriteStream = process.stderr,
): Promise<string | undefined> {
  const stdin = process.stdin;
  stderr.write(prompt);
  if (!stdin.isTTY) {
    return new Promise((resolve) => {
      const rl = createInterface({ input: stdin, terminal: false });
      let answered = false;
      rl.once('line', (line) => {
        answered = true;
        rl.close();
        resolve(line);
      });
      rl.once('close', () => {
        if (!answered) resolve(undefined);
      });
    });
  }
  return new Promise((resolve) => {
    let typed = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const done = (value: string | undefined) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      stderr.write('\n');
      resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done(typed);
        if (ch === '\u0003' || ch === '\u0004') return done(undefined);
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else if (ch >= ' ') typed += ch;
      }
    };
    stdin.on('data', onData);
  });
}

export function processIo(): CliIo {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    readSecret: (prompt) => readSecretLine(prompt),
  };
}
