/**
 * At most `running` pieces of work at once, `waiting` more in line, and any beyond refused at
 * once ('busy') rather than queued without bound. For password checks: scrypt runs on libuv's
 * thread pool (4 threads by default), which DNS look-ups, file I/O and zlib share, and whose
 * queue has no bound; a flood of sign-ins must not take all of it.
 */
export interface WorkSlots {
  run<T>(work: () => Promise<T>): Promise<T> | 'busy';
  load(): { running: number; waiting: number };
}

export function createWorkSlots(opts: { running: number; waiting: number }): WorkSlots {
  let running = 0;
  const line: Array<() => void> = [];
  const release = () => {
    running--;
    const next = line.shift();
    if (next) next();
  };
  const start = <T>(work: () => Promise<T>): Promise<T> => {
    running++;
    let done: Promise<T>;
    try {
      done = work();
    } catch (err) {
      done = Promise.reject(err);
    }
    return done.finally(release);
  };
  return {
    run(work) {
      if (running < opts.running) return start(work);
      if (line.length >= opts.waiting) return 'busy';
      return new Promise((resolve, reject) => {
        line.push(() => start(work).then(resolve, reject));
      });
    },
    load: () => ({ running, waiting: line.length }),
  };
}
