/** pino, with secrets censored wherever they might ride along in a log object. */
import pino, { type DestinationStream, type Logger } from 'pino';

/** Keys whose value is a secret wherever they appear (tokens, passwords and their hashes, keys, headers). */
const SECRET_KEYS = [
  'password',
  'pass',
  'passphrase',
  'passwordHash',
  'token',
  'botToken',
  'appToken',
  'signingSecret',
  'privateKey',
  'authorization',
  'NATS_PASSWORD',
  'SLACK_BOT_TOKEN',
  'SLACK_SIGNING_SECRET',
  'SLACK_APP_TOKEN',
  'SSH_KEY_PASSPHRASE',
];

/** Each secret key at the top of a log object and up to three levels down, and in lists of users. */
export const REDACT_PATHS = [
  ...SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]),
  'users[*].passwordHash',
  '*.users[*].passwordHash',
  '*.*.users[*].passwordHash',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { pid: process.pid } };
  return destination ? pino(options, destination) : pino(options);
}
