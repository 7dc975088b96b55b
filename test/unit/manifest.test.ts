/**
 * The two Slack app manifests at the repository's root describe one app: manifest.socket.yml
 * is manifest.yml in Socket Mode (socket_mode_enabled, no request URLs, which Slack does
 * not take there), so a scope or a command added to one and not the other is caught here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';

interface Manifest {
  features: { slash_commands: Array<{ command: string; url?: string }> };
  settings: { interactivity: { is_enabled: boolean; request_url?: string }; socket_mode_enabled: boolean };
}

const read = (name: string) => parse(readFileSync(new URL(`../../${name}`, import.meta.url), 'utf8')) as Manifest;

test('manifest.socket.yml is manifest.yml in Socket Mode, without request URLs', () => {
  const http = read('manifest.yml');
  const socket = read('manifest.socket.yml');
  assert.equal(http.settings.socket_mode_enabled, false);
  assert.ok(http.features.slash_commands.every((c) => c.url?.endsWith('/slack/events')));
  assert.ok(http.settings.interactivity.request_url?.endsWith('/slack/events'));

  const expected = structuredClone(http);
  for (const c of expected.features.slash_commands) delete c.url;
  delete expected.settings.interactivity.request_url;
  expected.settings.socket_mode_enabled = true;
  assert.deepEqual(socket, expected);
});
