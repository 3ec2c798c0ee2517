/** A bounded load in the background of a chaos test: `perTick` writes at once, then a pause, until stopped or `max` writes. */
export interface BackgroundLoad {
  writes: () => number;
  stop: () => Promise<void>;
}

/** `write` gets each write's number (0, 1, …); a write that fails (Redis away) is not retried. */
export function backgroundLoad(opts: { perTick: number; pauseMs: number; max: number }, write: (n: number) => Promise<unknown>): BackgroundLoad {
  let n = 0;
  let running = true;
  const done = (async () => {
    while (running && n < opts.max) {
      await Promise.all(Array.from({ length: opts.perTick }, () => write(n++))).catch(() => undefined);
      await new Promise((r) => setTimeout(r, opts.pauseMs));
    }
  })();
  return {
    writes: () => n,
    stop: async () => {
      running = false;
      await done;
    },
  };
}
