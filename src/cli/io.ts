/**
 * What a command of the CLI touches of the world, passed in (STYLE: dependencies
 * as arguments), so that a test runs a command in-process with its own streams.
 */
export interface Out {
  write(text: string): unknown;
  /** A terminal: progress is drawn in place (`\r`) and colours could be used. */
  isTTY?: boolean;
}

export interface CliIo {
  stdout: Out;
  stderr: Out;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Reads a line from the terminal without echo (a password); undefined when stdin is closed. */
  readSecret(prompt: string): Promise<string | undefined>;
}

/** A command's outcome: its exit code (0 ok; 1 it failed; 2 it was used wrongly). */
export type ExitCode = number;

export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
