/**
 * Where the CLI finds the service and who it is there: OCP_CHATOPS_URL,
 * OCP_CHATOPS_USER and OCP_CHATOPS_PASSWORD, else the file
 * `$XDG_CONFIG_HOME/ocp-chatops/credentials` (default ~/.config/…) of
 * `url=`, `user=`, `password=` lines. Never the command line: arguments show
 * in `ps` and in shell history.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface Credentials {
  url: string;
  user: string;
  password: string;
}

export function credentialsPath(env: NodeJS.ProcessEnv): string {
  return join(env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config'), 'ocp-chatops', 'credentials');
}

/** `key=value` lines; `#` comments and blank lines skipped; the value taken as written after the first `=`. */
export function parseCredentialsFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  return out;
}

export type CredentialsResult = { ok: true; credentials: Credentials; warning?: string } | { ok: false; error: string };

export function readCredentials(env: NodeJS.ProcessEnv): CredentialsResult {
  const path = credentialsPath(env);
  let file: Record<string, string> = {};
  let warning: string | undefined;
  if (existsSync(path)) {
    file = parseCredentialsFile(readFileSync(path, 'utf8'));
    if ((statSync(path).mode & 0o077) !== 0) warning = `${path} can be read by others: chmod 600 ${path}`;
  }
  const url = env.OCP_CHATOPS_URL || file.url || 'http://127.0.0.1:3000';
  const user = env.OCP_CHATOPS_USER || file.user;
  const password = env.OCP_CHATOPS_PASSWORD || file.password;
  if (!user || !password) {
    return {
      ok: false,
      error: `no credentials: set OCP_CHATOPS_USER and OCP_CHATOPS_PASSWORD, or write user= and password= (and url=) lines in ${path} (chmod 600)`,
    };
  }
  return { ok: true, credentials: { url: url.replace(/\/+$/, ''), user, password }, ...(warning ? { warning } : {}) };
}
