/**
 * Paced reads on a busy socket: after each chunk received, the socket stops reading for a while
 * and the kernel gathers what arrives meanwhile, so a stream of small messages (keyspace
 * notifications, one per write) wakes the process once a pause instead of once a packet. On a
 * virtual machine a wake-up costs about as much as handling a dozen notifications.
 *
 * Pausing the stream alone would not do: it goes on reading into its buffer up to its high-water
 * mark. The handle's readStop is what net.Socket#pause uses for sockets created with `onread`.
 */
import type { Socket } from 'node:net';

interface ReadHandle {
  reading: boolean;
  readStop(): number;
  readStart(): number;
}

/** Paces the socket's reads by `pauseMs`; returns what undoes it. */
export function paceReads(socket: Socket, pauseMs: number): () => void {
  if (pauseMs <= 0) return () => undefined;
  let timer: NodeJS.Timeout | undefined;
  const handleOf = (): ReadHandle | undefined => {
    const handle = (socket as unknown as { _handle?: Partial<ReadHandle> | null })._handle;
    return typeof handle?.readStop === 'function' && typeof handle.readStart === 'function' ? (handle as ReadHandle) : undefined;
  };
  // After a chunk the stream asks its handle for more on the next tick: the handle stops once
  // that is past, and is started again here (the stream, still waiting for its last ask, would not).
  const stopHandle = () => {
    const handle = handleOf();
    if (timer === undefined || socket.destroyed || handle === undefined || !handle.reading) return;
    handle.reading = false;
    handle.readStop();
  };
  const resume = () => {
    timer = undefined;
    if (socket.destroyed) return;
    socket.resume();
    const handle = handleOf();
    if (handle === undefined || handle.reading) return;
    handle.reading = true;
    const err = handle.readStart();
    if (err !== 0) socket.destroy(new Error(`could not read the socket again (libuv error ${err})`));
  };
  const onData = () => {
    if (timer !== undefined || socket.destroyed) return;
    socket.pause();
    timer = setTimeout(resume, pauseMs);
    setImmediate(stopHandle);
  };
  const stop = () => {
    socket.off('data', onData);
    socket.off('close', stop);
    if (timer === undefined) return;
    clearTimeout(timer);
    resume();
  };
  socket.on('data', onData);
  socket.once('close', stop);
  return stop;
}
