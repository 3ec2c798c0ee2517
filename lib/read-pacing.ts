/**
 * Paced reads on busy sockets: after each chunk received, a socket stops reading for a while and
 * the kernel gathers what arrives meanwhile, so a stream of small messages (keyspace
 * notifications, one per write) wakes the process once a pause instead of once a packet. On a
 * virtual machine a wake-up costs about as much as handling a dozen notifications.
 *
 * The sockets of one pacer share its clock: one timer resumes every socket paused since the last
 * one, so a worker listening on several masters reads them all in the same wake-up instead of
 * each on its own phase (and its own timer).
 *
 * A socket whose last chunk came longer than a pause ago is not paused: on a quiet connection (an
 * idle worker's listener, which hears only the answer to its ping each second) the next chunk
 * would come after the pause anyway, and the pause's timer would only add a wake-up.
 *
 * Pausing the stream alone would not do: it goes on reading into its buffer up to its high-water
 * mark. The handle's readStop is what net.Socket#pause uses for sockets created with `onread`.
 *
 * After each tick, once what the resumed sockets held has been read (the check phase of the same
 * turn of the event loop), `afterRead` learns when the next tick is due: a consumer of what was read
 * can act in this wake-up rather than on a timer of its own, and a consumer whose own timer came due
 * while a tick was pending (nextTickAt) can wait for that read instead of going without its data.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

interface ReadHandle {
  reading: boolean;
  readStop(): number;
  readStart(): number;
}

function handleOf(socket: Socket): ReadHandle | undefined {
  const handle = (socket as unknown as { _handle?: Partial<ReadHandle> | null })._handle;
  return typeof handle?.readStop === 'function' && typeof handle.readStart === 'function' ? (handle as ReadHandle) : undefined;
}

export class ReadPacer {
  /** Sockets paused until the next tick. */
  private readonly paused = new Set<Socket>();
  /** Sockets paused in this turn of the event loop, whose handles stop at its end. */
  private readonly stopping = new Set<Socket>();
  private timer: NodeJS.Timeout | undefined;
  /** When the armed tick is due (ms). */
  private tickAt = 0;
  /** Per paced socket: when it last received a chunk or was resumed (ms). */
  private readonly lastRead = new Map<Socket, number>();
  /** Pauses that ended so far, each resuming every socket paused during it. */
  ticks = 0;

  /**
   * `pauseMs`: asked as a pause starts (0: the socket goes on reading). `afterRead`: called after
   * each tick's reads, with the time the next tick is due (0: none, nothing came during the pause).
   */
  constructor(
    private readonly pauseMs: () => number,
    private readonly afterRead: (nextTickAt: number) => void = () => undefined,
  ) {}

  /** When the pending tick is due (ms; 0: no socket is paused). */
  get nextTickAt(): number {
    return this.timer === undefined ? 0 : this.tickAt;
  }

  /** Paces the socket's reads; returns what undoes it. TLS sockets are left to read as data comes. */
  pace(socket: Socket): () => void {
    // A stopped TLS handle keeps the records it already decrypted, and hands them over only once
    // more bytes arrive: paced, a reply or an event could wait for the next packet (a second or more
    // on a quiet connection).
    if ((socket as TLSSocket).encrypted) return () => undefined;
    this.lastRead.set(socket, Date.now());
    const onData = () => {
      if (this.paused.has(socket) || socket.destroyed) return;
      const now = Date.now();
      const since = now - this.lastRead.get(socket)!;
      this.lastRead.set(socket, now);
      if (this.timer === undefined) {
        const ms = this.pauseMs();
        if (ms <= 0 || since >= ms) return;
        this.tickAt = now + ms;
        this.timer = setTimeout(() => this.tick(), ms);
      }
      socket.pause();
      this.paused.add(socket);
      // After a chunk the stream asks its handle for more on the next tick: the handle stops once
      // that is past, and is started again by resume() (the stream, still waiting for its last ask, would not).
      if (this.stopping.size === 0) setImmediate(() => this.stopHandles());
      this.stopping.add(socket);
    };
    const stop = () => {
      socket.off('data', onData);
      socket.off('close', stop);
      this.stopping.delete(socket);
      this.lastRead.delete(socket);
      if (this.paused.delete(socket)) this.resume(socket);
    };
    socket.on('data', onData);
    socket.once('close', stop);
    return stop;
  }

  private stopHandles(): void {
    for (const socket of this.stopping) {
      const handle = handleOf(socket);
      if (!this.paused.has(socket) || socket.destroyed || handle === undefined || !handle.reading) continue;
      handle.reading = false;
      handle.readStop();
    }
    this.stopping.clear();
  }

  private tick(): void {
    this.timer = undefined;
    this.ticks++;
    const sockets = [...this.paused];
    this.paused.clear();
    for (const socket of sockets) this.resume(socket);
    // The resumed sockets are read in this turn's poll phase; an immediate runs right after it.
    setImmediate(() => this.afterRead(this.nextTickAt));
  }

  private resume(socket: Socket): void {
    if (socket.destroyed) return;
    if (this.lastRead.has(socket)) this.lastRead.set(socket, Date.now());
    socket.resume();
    const handle = handleOf(socket);
    if (handle === undefined || handle.reading) return;
    handle.reading = true;
    const err = handle.readStart();
    if (err !== 0) socket.destroy(new Error(`could not read the socket again (libuv error ${err})`));
  }
}
