/**
 * What bench/hostile.ts measures with: workerd's memory over time, sockets that remember how
 * they ended, HTTP requests that give up, and a pair of honest editors timing their edits.
 * Every wait here has a timeout, so a server that stops answering ends a measurement instead
 * of hanging it.
 */
import { execFileSync } from "node:child_process";
import type { EventEmitter } from "node:events";
import { readFile } from "node:fs/promises";
import type { Socket } from "node:net";
import * as decoding from "lib0/decoding";
import { WebSocket } from "ws";
import * as Y from "yjs";
import type { DevServer } from "../test/node/wrangler.ts";
import { MessageType, SyncMessageType, encodeAwareness, encodeSyncStep2, encodeSyncUpdate } from "../worker/protocol.ts";
import { EMPTY_UPDATE, WHOLE_DOCUMENT_REQUEST } from "./hostile-frames.ts";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 20 ms; resolves whether it became true within `timeoutMs`. */
export async function waitUntil(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

/**
 * Peak resident memory of wrangler's workerd processes (summed), sampled every `intervalMs`.
 * Reads /proc/<pid>/status asynchronously: spawning `ps` 20 times a second would stall this
 * process's event loop, and with it the honest editors' timestamps.
 */
export class RssSampler {
  private peak = 0;
  private inFlight = false;
  private readonly timer: NodeJS.Timeout;

  private constructor(private readonly pids: number[], intervalMs: number) {
    this.timer = setInterval(() => void this.sample(), intervalMs);
  }

  static start(server: DevServer, intervalMs = 50): RssSampler {
    const lines = execFileSync("ps", ["-o", "pid=,comm=", "-g", String(server.pid)], { encoding: "utf8" }).trim().split("\n");
    const pids = lines.filter((line) => line.includes("workerd")).map((line) => Number(line.trim().split(/\s+/)[0]));
    if (pids.length === 0) throw new Error("no workerd process under wrangler");
    return new RssSampler(pids, intervalMs);
  }

  /** The peak (bytes) since the previous call; starts the next window. */
  takeWindow(): number {
    const peak = this.peak;
    this.peak = 0;
    return peak;
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async sample(): Promise<void> {
    if (this.inFlight) return;
    this.inFlight = true;
    try {
      const sizes = await Promise.all(this.pids.map(residentBytes));
      this.peak = Math.max(this.peak, sizes.reduce((a, b) => a + b, 0));
    } finally {
      this.inFlight = false;
    }
  }
}

/** VmRSS of a process (what `ps -o rss` shows), or 0 once it has exited. */
async function residentBytes(pid: number): Promise<number> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** How a socket ended, as its client saw it. `at` is a performance.now() time. */
export interface SocketEnd {
  code: number;
  reason: string;
  at: number;
}

/**
 * A `ws` client that records how it ended (the server's close frame, or the connection's end
 * without one) and what it received. An `error` event (a reset, a refused upgrade) is recorded
 * instead of crashing the benchmark; `close` follows it.
 */
export class TrackedSocket {
  end: SocketEnd | null = null;
  bytesReceived = 0;
  framesReceived = 0;
  lastError: string | null = null;
  private readonly frameListeners: ((frame: Uint8Array, at: number) => void)[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data: Buffer) => {
      const at = performance.now();
      this.bytesReceived += data.byteLength;
      this.framesReceived++;
      for (const listener of this.frameListeners) listener(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), at);
    });
    socket.once("open", () => {
      // `ws` emits "close" only once the TCP connection ends, which may be up to 30 s after the
      // server's close frame (its close timeout); the receiver's "conclude" is that frame.
      const receiver = (socket as unknown as { _receiver: EventEmitter })._receiver;
      receiver.on("conclude", (code: number, reason: Buffer) => this.recordEnd(code, reason));
    });
    socket.on("close", (code: number, reason: Buffer) => this.recordEnd(code, reason));
    socket.on("error", (error: Error) => {
      this.lastError = error.message;
    });
  }

  private recordEnd(code: number, reason: Buffer): void {
    this.end ??= { code, reason: reason.toString("utf8"), at: performance.now() };
  }

  /**
   * Opens a socket that joins as a provider does: it answers the room's sync step 1 with a sync
   * step 2 (a room may close sockets that never do). Resolves once that answer is sent, or
   * after `timeoutMs` if the room sent no step 1.
   */
  static async join(url: string, timeoutMs = 15_000): Promise<TrackedSocket> {
    let answered = false;
    const socket = await TrackedSocket.open(url, {
      timeoutMs,
      answer: () => {
        answered = true;
        return EMPTY_UPDATE;
      },
    });
    await waitUntil(() => answered || socket.end !== null, timeoutMs);
    return socket;
  }

  /**
   * Opens a socket; rejects if it is not open within `timeoutMs` (refused, reset or silent).
   * With `answer`, it answers every sync step 1 from the room with a sync step 2 carrying
   * `answer(stateVector)`, from the first frame on: the room's step 1 may arrive together with
   * the upgrade response, before anything awaiting this promise could attach a listener.
   */
  static open(
    url: string,
    { timeoutMs = 15_000, answer }: { timeoutMs?: number; answer?: (stateVector: Uint8Array) => Uint8Array } = {},
  ): Promise<TrackedSocket> {
    const socket = new WebSocket(url);
    const tracked = new TrackedSocket(socket);
    if (answer) tracked.answerSyncStep1(answer);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.terminate();
        reject(new Error(`no open within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once("open", () => {
        clearTimeout(timer);
        resolve(tracked);
      });
      socket.once("close", () => {
        clearTimeout(timer);
        reject(new Error(`closed before open: ${tracked.lastError ?? tracked.end?.code}`));
      });
    });
  }

  onFrame(listener: (frame: Uint8Array, at: number) => void): void {
    this.frameListeners.push(listener);
  }

  private answerSyncStep1(answer: (stateVector: Uint8Array) => Uint8Array): void {
    this.onFrame((frame) => {
      const stateVector = syncPayload(frame, [SyncMessageType.step1]);
      if (stateVector) void this.send(encodeSyncStep2(answer(stateVector)));
    });
  }

  get isOpen(): boolean {
    return this.socket.readyState === WebSocket.OPEN;
  }

  /** Sends; resolves once `ws` has written the frame to the TCP socket (or failed to). */
  send(frame: Uint8Array): Promise<void> {
    return new Promise((resolve) => this.socket.send(frame, () => resolve()));
  }

  /** Waits for the end; null if the socket is still open after `timeoutMs`. */
  async waitForEnd(timeoutMs: number): Promise<SocketEnd | null> {
    await waitUntil(() => this.end !== null, timeoutMs);
    return this.end;
  }

  /**
   * Stops reading from the TCP socket, as a client that never reads would: what the server
   * sends piles up in its buffers. `ws` keeps the net.Socket in `_socket`.
   */
  stopReading(): void {
    (this.socket as unknown as { _socket: Socket })._socket.pause();
  }

  resumeReading(): void {
    (this.socket as unknown as { _socket: Socket })._socket.resume();
  }

  /** Drops the connection without a closing handshake (the server may be too busy for one). */
  terminate(): void {
    this.socket.terminate();
  }
}

/** Time from the writer's send to the reader's receipt, for the edits sent in one window. */
export interface LatencyWindow {
  sent: number;
  delivered: number;
  p50: number;
  p99: number;
  max: number;
}

/** What the honest pair saw over a whole measurement. */
export interface HonestReport {
  windows: Record<string, LatencyWindow>;
  /** Writer and reader ended with the same text. */
  converged: boolean;
  /** Every edit reached the reader. */
  delivered: boolean;
  /** Sockets of the pair the server closed (there should be none). */
  closed: { who: "writer" | "reader"; code: number; reason: string }[];
}

/** The honest writer's Yjs client ID, and the pair's awareness IDs: outside every ID range an attack uses. */
const HONEST_WRITER_ID = 3_000_001;
const HONEST_READER_ID = 3_000_002;
const EDIT_INTERVAL_MS = 50;
/** Providers renew their awareness state every 15 s; rooms may close sockets silent for 30 s. */
const PRESENCE_INTERVAL_MS = 10_000;
const SYNC_TIMEOUT_MS = 30_000;
/** After the last edit, how long both editors get to catch up with each other. */
const DRAIN_TIMEOUT_MS = 10_000;

/** The payload of a sync frame of one of `types`, or null for any other frame. */
export function syncPayload(frame: Uint8Array, types: number[]): Uint8Array | null {
  try {
    const decoder = decoding.createDecoder(frame);
    if (decoding.readVarUint(decoder) !== MessageType.sync) return null;
    if (!types.includes(decoding.readVarUint(decoder))) return null;
    return decoding.readVarUint8Array(decoder);
  } catch {
    return null;
  }
}

/** Update payloads (sync step 2 and live updates) in a frame, or null for any other frame. */
const updatePayload = (frame: Uint8Array) => syncPayload(frame, [SyncMessageType.step2, SyncMessageType.update]);

/**
 * Two honest editors in one room, both raw `ws` clients in this process: the writer types one
 * character every 50 ms (20 edits/s), the reader times each edit's arrival. Edits are matched
 * by their Yjs clock, which for one-character inserts is the edit's index. Received updates
 * are only stored while timing and applied at the end, so that a large relayed update does
 * not stall this process (and the timestamps) while it is being measured.
 */
export class HonestPair {
  private readonly sentAt: number[] = [];
  private readonly sentIn: string[] = [];
  private readonly receivedAt: number[] = [];
  private receivedCount = 0;
  /** Per Yjs client, the end of the clock range each editor has (the writer's own edits included). */
  private readonly writerClocks = new Map<number, number>();
  private readonly readerClocks = new Map<number, number>();
  private readonly writerPayloads: Uint8Array[] = [];
  private readonly readerPayloads: Uint8Array[] = [];
  private window = "warm-up";
  private typing: NodeJS.Timeout | null = null;
  private presence: NodeJS.Timeout | null = null;
  private presenceClock = 0;

  private constructor(
    private readonly writerDoc: Y.Doc,
    private readonly writer: TrackedSocket,
    private readonly reader: TrackedSocket,
  ) {
    writerDoc.on("update", (update: Uint8Array, _origin: unknown, _doc: Y.Doc, transaction: Y.Transaction) => {
      // Only the writer's own typing is sent; updates applied from the server at the end are not.
      if (!transaction.local) return;
      this.sentAt.push(performance.now());
      this.sentIn.push(this.window);
      this.writerClocks.set(HONEST_WRITER_ID, this.sentAt.length);
      void writer.send(encodeSyncUpdate(update));
    });
    writer.onFrame((frame) => {
      const payload = updatePayload(frame);
      if (!payload) return;
      this.writerPayloads.push(payload);
      noteClocks(this.writerClocks, Y.parseUpdateMeta(payload).to);
    });
    reader.onFrame((frame, at) => {
      const payload = updatePayload(frame);
      if (payload) this.receive(payload, at);
    });
  }

  /**
   * Connects both editors, which join and keep their presence as providers do, waits until
   * each has the room's document, then starts typing (in the "warm-up" window).
   */
  static async connect(roomUrl: string): Promise<HonestPair> {
    const writerDoc = new Y.Doc();
    writerDoc.clientID = HONEST_WRITER_ID;
    const [writer, reader] = await Promise.all([
      TrackedSocket.open(roomUrl, { answer: (stateVector) => Y.encodeStateAsUpdate(writerDoc, stateVector) }),
      TrackedSocket.open(roomUrl, { answer: () => EMPTY_UPDATE }),
    ]);
    const pair = new HonestPair(writerDoc, writer, reader);
    // As a provider does on open: ask for the whole document (the room answers with step 2).
    await Promise.all([writer.send(WHOLE_DOCUMENT_REQUEST), reader.send(WHOLE_DOCUMENT_REQUEST)]);
    const synced = await waitUntil(() => pair.writerPayloads.length > 0 && pair.readerPayloads.length > 0, SYNC_TIMEOUT_MS);
    if (!synced) {
      pair.close();
      throw new Error("the honest editors did not receive the document");
    }
    pair.typing = setInterval(() => pair.type(), EDIT_INTERVAL_MS);
    pair.renewPresence();
    pair.presence = setInterval(() => pair.renewPresence(), PRESENCE_INTERVAL_MS);
    return pair;
  }

  /** Edits sent from now on count in `name`. */
  startWindow(name: string): void {
    this.window = name;
  }

  /** Stops typing and presence, lets the reader catch up, closes both sockets and reports. */
  async finish(): Promise<HonestReport> {
    this.stopTimers();
    await waitUntil(() => this.caughtUp(), DRAIN_TIMEOUT_MS);
    const closed = [
      ...(this.writer.end ? [{ who: "writer" as const, code: this.writer.end.code, reason: this.writer.end.reason }] : []),
      ...(this.reader.end ? [{ who: "reader" as const, code: this.reader.end.code, reason: this.reader.end.reason }] : []),
    ];
    this.close();
    const windows: Record<string, LatencyWindow> = {};
    for (const name of new Set(this.sentIn)) windows[name] = this.latencies(name);
    return { windows, converged: this.converged(), delivered: this.receivedCount === this.sentAt.length, closed };
  }

  /** Stops typing and presence and drops both sockets (also when a measurement failed half-way). */
  close(): void {
    this.stopTimers();
    this.writer.terminate();
    this.reader.terminate();
  }

  private stopTimers(): void {
    if (this.typing) clearInterval(this.typing);
    if (this.presence) clearInterval(this.presence);
    this.typing = null;
    this.presence = null;
  }

  private renewPresence(): void {
    const clock = ++this.presenceClock;
    void this.writer.send(encodeAwareness([{ clientId: HONEST_WRITER_ID, clock, state: '{"user":{"name":"writer"}}' }]));
    void this.reader.send(encodeAwareness([{ clientId: HONEST_READER_ID, clock, state: '{"user":{"name":"reader"}}' }]));
  }

  private type(): void {
    const text = this.writerDoc.getText("codemirror");
    text.insert(text.length, String.fromCharCode(97 + (this.sentAt.length % 26)));
  }

  /**
   * The reader has every edit, and both have the same clock ranges, so the same updates: also
   * those of others (a large one may still be on its way to one of them).
   */
  private caughtUp(): boolean {
    if (this.receivedCount < this.sentAt.length || this.writerClocks.size !== this.readerClocks.size) return false;
    return [...this.writerClocks].every(([client, clock]) => this.readerClocks.get(client) === clock);
  }

  private receive(payload: Uint8Array, at: number): void {
    this.readerPayloads.push(payload);
    const { from, to } = Y.parseUpdateMeta(payload);
    noteClocks(this.readerClocks, to);
    const first = from.get(HONEST_WRITER_ID);
    const end = to.get(HONEST_WRITER_ID);
    if (first === undefined || end === undefined) return;
    for (let clock = first; clock < end; clock++) {
      if (this.receivedAt[clock] !== undefined) continue;
      this.receivedAt[clock] = at;
      this.receivedCount++;
    }
  }

  private latencies(window: string): LatencyWindow {
    const clocks = this.sentIn.flatMap((name, clock) => (name === window ? [clock] : []));
    const times = clocks.flatMap((clock) => (this.receivedAt[clock] === undefined ? [] : [this.receivedAt[clock]! - this.sentAt[clock]!]));
    times.sort((a, b) => a - b);
    const at = (q: number) => times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? NaN;
    return { sent: clocks.length, delivered: times.length, p50: at(0.5), p99: at(0.99), max: times.at(-1) ?? NaN };
  }

  /** Both documents, with everything each received applied now that timing is over. */
  private converged(): boolean {
    const readerDoc = new Y.Doc();
    Y.transact(readerDoc, () => this.readerPayloads.forEach((payload) => Y.applyUpdate(readerDoc, payload)));
    Y.transact(this.writerDoc, () => this.writerPayloads.forEach((payload) => Y.applyUpdate(this.writerDoc, payload)));
    const same = readerDoc.getText("codemirror").toString() === this.writerDoc.getText("codemirror").toString();
    readerDoc.destroy();
    this.writerDoc.destroy();
    return same;
  }
}

/** Raises each client's known clock-range end to what `ends` holds. */
function noteClocks(known: Map<number, number>, ends: Map<number, number>): void {
  for (const [client, end] of ends) known.set(client, Math.max(known.get(client) ?? 0, end));
}

/** Outcome of an HTTP request that gives up after a timeout. */
export interface RequestOutcome {
  /** HTTP status, or null when there was no answer in time (or the connection failed). */
  status: number | null;
  ms: number;
  /** The first 200 characters of the body, or why there was no answer. */
  detail: string;
}

/** Sends a request to the dev server, giving up after `timeoutMs`. */
export async function timedRequest(url: string, init: RequestInit, timeoutMs: number): Promise<RequestOutcome> {
  const started = performance.now();
  try {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    const body = await response.text();
    return { status: response.status, ms: performance.now() - started, detail: body.slice(0, 200) };
  } catch (error) {
    const timedOut = error instanceof Error && error.name === "TimeoutError";
    return { status: null, ms: performance.now() - started, detail: timedOut ? `no answer within ${timeoutMs} ms` : String(error) };
  }
}
