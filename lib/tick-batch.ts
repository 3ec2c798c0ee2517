/**
 * Calls made in the same turn of the event loop, merged into one: each caller passes its items
 * and gets the replies to them, while `run` sees the items of every call of the turn at once.
 * Partitions a reconciliation compares together each ask for their own keys' listings and
 * digests as their replies come in, which is the same turn for all of them (their replies share
 * a socket read): merged, that is one script call a node for the group, not one a partition.
 */
export class TickBatch<I, O> {
  private waiting: { items: readonly I[]; resolve: (out: O[]) => void; reject: (err: unknown) => void }[] = [];

  /** `run`: replies to all the items, in order. */
  constructor(private readonly run: (items: I[]) => Promise<O[]>) {}

  call(items: readonly I[]): Promise<O[]> {
    if (items.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      if (this.waiting.length === 0) setImmediate(() => void this.flush());
      this.waiting.push({ items, resolve, reject });
    });
  }

  private async flush(): Promise<void> {
    const calls = this.waiting;
    this.waiting = [];
    try {
      const out = await this.run(calls.flatMap((c) => c.items));
      let at = 0;
      for (const c of calls) {
        c.resolve(out.slice(at, at + c.items.length));
        at += c.items.length;
      }
    } catch (err) {
      for (const c of calls) c.reject(err);
    }
  }
}
