/**
 * When a worker looks at membership and leases: one look at a time (a look asked for while
 * one runs is that one), again a period after each look ends, and at once when something was
 * announced (a join, a leave, an offer). The worker says how long the period is: short while it
 * does not hold its share; none once settled, when its lease renewals ask for each look, so one
 * timer wakes the worker for both.
 */
export class BalanceLoop {
  private running: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;

  constructor(
    private readonly look: () => Promise<void>,
    /** Ms from the end of a look to the next, read after each look; null: only when asked. */
    private readonly periodMs: () => number | null,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Looks now, or joins the look under way; never rejects. */
  now(): Promise<void> {
    this.running ??= this.look()
      .catch(this.onError)
      .finally(() => {
        this.running = undefined;
        this.schedule();
      });
    return this.running;
  }

  /** Looks again a period after each look, until stopped. */
  start(): void {
    this.started = true;
    this.schedule();
  }

  /**
   * A lease renewal round started: while there is no period (settled), that is when to look, so
   * one timer wakes the worker for both. Not before start() (the start makes its own first look)
   * nor after stop().
   */
  tick(): void {
    if (this.started && !this.stopped && this.periodMs() === null) void this.now();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    if (!this.started || this.stopped) return;
    const period = this.periodMs();
    if (period !== null) this.timer = setTimeout(() => void this.now(), period);
  }

  /** No look after this one; resolves when the one under way (if any) ended. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
