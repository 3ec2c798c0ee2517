import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import * as tls from 'node:tls';
import { makeCertificates } from './helpers/tls.js';
import { ReadPacer } from '../lib/read-pacing.js';
import { waitFor } from './helpers/redis.js';

/** Sends `count` numbered messages on a connection, one every `everyMs`, then ends it. */
function streamTo(count: number, everyMs: number): (conn: Socket) => void {
  return (conn) => {
    let i = 0;
    const timer = setInterval(() => {
      conn.write(`${i++};`);
      if (i === count) {
        clearInterval(timer);
        conn.end();
      }
    }, everyMs);
    conn.on('close', () => clearInterval(timer));
    // A reader that goes away mid-stream resets the connection: that ends this sender, nothing more.
    conn.on('error', () => clearInterval(timer));
  };
}

/** A loopback server (plain TCP unless made otherwise) that streams to each connection (streamTo). */
async function sender(count: number, everyMs: number, make: (onConn: (conn: Socket) => void) => Server = createServer): Promise<Server> {
  const server = make(streamTo(count, everyMs));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/** Reads the whole stream; the chunks it came in and how long it took. */
function receive(socket: Socket): Promise<{ text: string; chunks: number; ms: number }> {
  const started = Date.now();
  let text = '';
  let chunks = 0;
  socket.on('data', (d: Buffer) => {
    chunks++;
    text += d.toString();
  });
  return new Promise((resolve, reject) => {
    socket.on('error', reject);
    socket.on('end', () => resolve({ text, chunks, ms: Date.now() - started }));
  });
}

const expected = (count: number) => Array.from({ length: count }, (_, i) => `${i};`).join('');

describe('paced reads (real loopback sockets)', () => {
  let server: Server | undefined;
  afterEach(() => server?.close());

  it('receives every byte in order, in a few chunks a pause, not one a message', async () => {
    server = await sender(60, 2);
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    const pauseMs = 40;
    new ReadPacer(() => pauseMs).pace(socket);
    const got = await receive(socket);
    expect(got.text).to.equal(expected(60));
    // One read a pause (a read may hand over a few chunks); unpaced, each message is one.
    expect(got.chunks).to.be.at.most(2 * Math.ceil(got.ms / pauseMs) + 2);
  });

  it('resumes all the sockets it paces on one clock: one timer a pause, not one a socket', async () => {
    server = await sender(200, 2);
    const { port } = server.address() as AddressInfo;
    const pauseMs = 40;
    const pacer = new ReadPacer(() => pauseMs);
    const sockets = [connect(port, '127.0.0.1'), connect(port, '127.0.0.1')];
    for (const socket of sockets) pacer.pace(socket);
    const started = Date.now();
    const got = await Promise.all(sockets.map(receive));
    for (const g of got) expect(g.text).to.equal(expected(200));
    // Each socket on its own clock would arm a timer a pause each: about twice as many.
    expect(pacer.ticks).to.be.at.most(Math.ceil((Date.now() - started) / pauseMs) + 2);
  });

  it('after each pause, tells its consumer once what came meanwhile was read, and when the next read is', async () => {
    server = await sender(100, 2);
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    const pauseMs = 40;
    let chunks = 0;
    let text = '';
    socket.on('data', (d: Buffer) => {
      chunks++;
      text += d.toString();
    });
    const calls: { chunks: number; ticks: number; nextTickAt: number; pending: number; at: number }[] = [];
    const pacer: ReadPacer = new ReadPacer(
      () => pauseMs,
      (nextTickAt) => calls.push({ chunks, ticks: pacer.ticks, nextTickAt, pending: pacer.nextTickAt, at: Date.now() }),
    );
    pacer.pace(socket);
    await new Promise((resolve) => socket.once('end', resolve));
    expect(text).to.equal(expected(100));
    // The last read of the stream ends it, so the tick after it (if any) finds nothing to read.
    await waitFor(() => pacer.nextTickAt === 0 && calls.length === pacer.ticks, { timeoutMs: 5000, intervalMs: 10, what: 'one call a tick' });
    expect(calls.length).to.be.at.least(2);
    const reading = calls.filter((c) => c.nextTickAt > 0);
    expect(reading.length).to.be.at.least(calls.length - 1);
    for (const c of reading) {
      // The first chunk started the first pause, and each tick's read brought one more (the kernel
      // held 20 messages): told before its tick's read, the consumer would see one chunk fewer.
      expect(c.chunks).to.be.at.least(c.ticks + 1);
      expect(c.nextTickAt - c.at).to.be.within(pauseMs - 15, pauseMs);
      expect(c.pending).to.equal(c.nextTickAt);
    }
  });

  it('does not pause a quiet socket: its next chunk would come after the pause anyway', async () => {
    // A chunk every 120 ms against 40 ms pauses: like an idle listener hearing only its pongs.
    server = await sender(8, 120);
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    const pacer = new ReadPacer(() => 40);
    pacer.pace(socket);
    const got = await receive(socket);
    expect(got.text).to.equal(expected(8));
    // Paused after each chunk, every message would arm a timer of its own (8).
    expect(pacer.ticks).to.equal(0);
  });

  it('reads as before once undone during a pause, and a pause of 0 changes nothing', async () => {
    server = await sender(30, 2);
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    const undo = new ReadPacer(() => 60_000).pace(socket);
    socket.once('data', () => setImmediate(undo));
    const got = await receive(socket);
    expect(got.text).to.equal(expected(30));

    const plain = connect((server.address() as AddressInfo).port, '127.0.0.1');
    new ReadPacer(() => 0).pace(plain);
    expect((await receive(plain)).text).to.equal(expected(30));
  });

  it('leaves a TLS socket unpaced: its stopped handle would hold what it already decrypted', async function () {
    // Paced for a minute, the stream would not end within the test's time.
    this.timeout(15000);
    const certs = makeCertificates();
    server = await sender(30, 2, (onConn) => tls.createServer({ cert: readFileSync(certs.serverCert), key: readFileSync(certs.serverKey) }, onConn));
    const socket = tls.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', ca: readFileSync(certs.ca) });
    new ReadPacer(() => 60_000).pace(socket);
    expect((await receive(socket)).text).to.equal(expected(30));
  });

  it('lets a socket closed during a pause close', async () => {
    server = await sender(1000, 1);
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    new ReadPacer(() => 60_000).pace(socket);
    await new Promise((resolve) => socket.once('data', resolve));
    socket.destroy();
    await new Promise((resolve) => (socket.closed ? resolve(null) : socket.once('close', resolve)));
    expect(socket.destroyed).to.equal(true);
  });
});
