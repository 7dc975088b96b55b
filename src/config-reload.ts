/**
 * Re-reading the configuration file (SPEC §9): on SIGHUP (main.ts) and when
 * the file changes. A bad file keeps the configuration that runs and logs
 * which field is wrong; fixed settings changed in the file are logged
 * "restart to apply" and left as they are.
 */
import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, readConfigFile } from './config.js';
import type { ConfigSource } from './config-source.js';

/** Quiet time after the last change event before the file is read (ms): an editor's save is several events. */
export const RELOAD_DEBOUNCE_MS = 300;

export interface ConfigReloader {
  /** Read the file now; true when it was valid (changed or not). */
  reload(reason: string): boolean;
  stop(): void;
}

export function createConfigReloader(opts: {
  source: ConfigSource;
  env: NodeJS.ProcessEnv;
  logger: Logger;
}): ConfigReloader {
  const { source, env, logger } = opts;
  const path = source.current().source;
  const log = logger.child({ component: 'config' });

  function reload(reason: string): boolean {
    let next: ReturnType<typeof readConfigFile>;
    try {
      next = readConfigFile(path, env);
    } catch (err) {
      // Whatever went wrong (a bad field, a file unreadable mid-save), what runs stays: a
      // signal handler or a timer that threw would end the process.
      const problem = err instanceof ConfigError ? err.message : `${path}: ${(err as Error).message}`;
      const { version } = source.inventory();
      log.error({ reason, version, problem }, `configuration not reloaded, version ${version} stays: ${problem}`);
      return false;
    }
    const { restartToApply, changed } = source.replace(next);
    if (restartToApply.length > 0) {
      log.warn(
        { reason, settings: restartToApply },
        `changed in ${path}, restart to apply: ${restartToApply.join(', ')}`,
      );
    }
    if (changed) log.info({ reason, inventory: source.inventory() }, 'inventory reloaded');
    return true;
  }

  // Editors replace a file by rename, which ends a watch on the file itself: watch its folder.
  let timer: NodeJS.Timeout | undefined;
  const name = basename(path);
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(path), (_event, file) => {
      if (file !== null && file !== name) return;
      clearTimeout(timer);
      timer = setTimeout(() => reload('file changed'), RELOAD_DEBOUNCE_MS);
    });
    watcher.on('error', (err) => log.warn({ err }, 'configuration file no longer watched (SIGHUP still reloads)'));
  } catch (err) {
    log.warn({ err }, 'configuration file not watched (SIGHUP still reloads)');
  }

  return {
    reload,
    stop() {
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
