/**
 * The headline workload (issue 23): stock `y-websocket` providers typing, as real clients do.
 * Every client is a `WebsocketProvider` (Node, `ws`, permessage-deflate as negotiated by
 * default) with its own Y.Doc and Awareness, in this process. Each types single letters at its
 * own caret, kept as a Yjs relative position (so remote edits move it as they would in an
 * editor), and jumps to a random place 2% of the time. No cursor moves ride along here (the
 * crowd scenario has them); presence is the provider's own: its state on open.
 *
 * - Typing throughput: `clients` clients all type; each keeps at most `inFlight` of its edits
 *   typed and not yet in the reader's document (client 0 is the reader; its own edits are
 *   counted at client 1). The figure is the remote edits that became part of the reader's
 *   document during the window, per second. Then every client must end with the same text,
 *   holding every edit typed.
 * - Typing latency: one client types at a steady rate, the others read; per edit, the time from
 *   the keystroke until every reader's document has it (and per delivery, to each reader).
 *
 * Edits are identified by their Yjs ID: a client's n-th key is its item n (one character per
 * key), so a document holds a client's first k keys exactly when its state vector says k.
 * Server CPU comes from the bench's clock ({@link withCpu}); this process's own CPU and event
 * loop utilisation over the window are reported beside it, so that a saturated driver is
 * never read as a slow server.
 */
import { performance } from "node:perf_hooks";
import { WebSocket } from "ws";
import { WebsocketProvider } from "y-websocket";
import { Awareness } from "y-protocols/awareness";
import * as Y from "yjs";
import { NoDeflate, onEachFrame, typeLetterAt } from "./crowd-client.ts";
import { awaitQuietServer, percentiles, roomName, withCpu, type CpuClock, type CpuCost, type LatencyStats, type MeasureOptions, type Target } from "./realtime.ts";

type ProviderOptions = NonNullable<ConstructorParameters<typeof WebsocketProvider>[3]>;

/** The text y-codemirror.next binds to, as the app does. */
const TEXT = "codemirror";
/** Share of keys typed at a random place instead of at the caret. */
const JUMP_CHANCE = 0.02;
const SYNC_TIMEOUT_MS = 15_000;
/** After the last key, how long the clients get to end with the same text. */
const CONVERGE_TIMEOUT_MS = 15_000;
/** After the handshakes, before the first key. */
const SETTLE_BEFORE_MS = 200;
const POLL_MS = 10;
/** Before the first key: no presence change anywhere for this long (see {@link quietPresence}). */
const PRESENCE_QUIET_MS = 500;
const PRESENCE_QUIET_TIMEOUT_MS = 20_000;
const SLOW_KEY_MS = 100;
const MAX_SLOW_KEYS = 40;

/** This process's CPU and event loop over a window. */
export interface DriverCost {
  cpuMs: number;
  /** CPU over wall time: 1 = one core busy all along. */
  cores: number;
  /** Event loop utilisation, 0-1: near 1 the driver, not the server, set the pace. */
  elu: number;
}

export interface TypingThroughputResult {
  target: string;
  run: number;
  clients: number;
  inFlight: number;
  seconds: number;
  deflate: boolean;
  /** Edits of the other clients that became part of the reader's document in the window, per second. */
  editsPerSecond: number;
  /** Keys typed by all clients. */
  typed: number;
  /** Every client ended with the same text, holding every key typed. */
  converged: boolean;
  /** No frame for 500 ms and workerd idle before the first key (else it typed into a presence storm the server never got through). */
  presenceSettled: boolean;
  driver: DriverCost;
  cpu: CpuCost | null;
  /** Why the run measured nothing. */
  error?: string;
}

export interface TypingLatencyResult {
  target: string;
  run: number;
  clients: number;
  rate: number;
  edits: number;
  deflate: boolean;
  converged: boolean;
  /** Per delivery: keystroke to one reader's document. */
  updates: LatencyStats;
  /** Per edit: keystroke until every reader's document has it. */
  everyReader: LatencyStats;
  /** The first keys that took {@link SLOW_KEY_MS} or more to reach every reader, and when they were typed (ms into the run): a stall shows as a cluster. */
  slowKeys: { key: number; atMs: number; ms: number }[];
  /** Frames all clients received from the server while the keys were typed and delivered, by message type (0 sync, 1 awareness). */
  framesIn: Record<number, number>;
  /** No frame for 500 ms and workerd idle before the first key (else it typed into a presence storm the server never got through). */
  presenceSettled: boolean;
  driver: DriverCost;
  cpu: CpuCost | null;
  /** Why the run measured nothing. */
  error?: string;
}

export interface TypingOptions extends MeasureOptions {
  clients?: number;
  /** permessage-deflate, which `ws` (like browsers) negotiates by default. Default true. */
  deflate?: boolean;
}

/** A run that never started typing (its clients did not sync or settle: `error` says which). */
const NO_DRIVER: DriverCost = { cpuMs: 0, cores: 0, elu: 0 };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One stock provider and the editor it stands in for. `socket` is the provider's
 * `WebSocketPolyfill`: `ws` (with or without permessage-deflate), or the HTTP fallback's
 * HttpSocket (bench/fallback.ts).
 */
export class Typist {
  readonly doc = new Y.Doc();
  readonly text = this.doc.getText(TEXT);
  readonly awareness = new Awareness(this.doc);
  readonly provider: WebsocketProvider;
  keys = 0;
  /** When the server last sent this client a frame. */
  lastFrameAt = performance.now();
  /** Frames the server sent this client, by y-websocket message type (0 sync, 1 awareness). */
  readonly framesIn: Record<number, number> = {};
  /** Frames this client sent, and connections it opened (more than one: it reconnected). */
  framesOut = 0;
  connections = 0;
  /** Sticks to the client's own last character (assoc -1), so it keeps typing where it was. */
  private caret: Y.RelativePosition | null = null;

  constructor(
    readonly index: number,
    url: string,
    socket: unknown,
  ) {
    this.awareness.setLocalState({ user: { name: `typist ${index}`, color: "#30638e" }, cursor: null });
    const slash = url.lastIndexOf("/");
    this.provider = new WebsocketProvider(url.slice(0, slash), url.slice(slash + 1), this.doc, {
      awareness: this.awareness,
      WebSocketPolyfill: socket as ProviderOptions["WebSocketPolyfill"],
      // Providers in one process would otherwise sync through a BroadcastChannel, bypassing the server.
      disableBc: true,
    });
    onEachFrame(this.provider, (type) => {
      this.lastFrameAt = performance.now();
      this.framesIn[type] = (this.framesIn[type] ?? 0) + 1;
    });
    this.provider.on("status", ({ status }) => {
      if (status !== "connected") return;
      this.connections++;
      // The provider sends through its socket's `send` (a `ws` WebSocket or an HttpSocket alike).
      const connection = this.provider.ws as unknown as { send: (data: Uint8Array) => void };
      const send = connection.send.bind(connection);
      connection.send = (data) => {
        this.framesOut++;
        send(data);
      };
    });
  }

  /** Every frame the server sent this client. */
  get framesInTotal(): number {
    return Object.values(this.framesIn).reduce((sum, count) => sum + count, 0);
  }

  /** One key: a letter at the caret (or, `jumpChance` of the time, at a random place), sent by the provider at once. */
  typeKey(jumpChance = JUMP_CHANCE): void {
    const caret = Math.random() >= jumpChance ? this.caret : null;
    const at = typeLetterAt(this.text, caret, Math.floor(Math.random() * (this.text.length + 1)), String.fromCharCode(97 + ((this.index + this.keys++) % 26)));
    this.caret = Y.createRelativePositionFromTypeIndex(this.text, at + 1, -1);
  }

  /** How many keys of `other` this document holds. */
  holds(other: Typist): number {
    return Y.getState(this.doc.store, other.doc.clientID);
  }

  close(): void {
    this.provider.destroy();
    this.doc.destroy();
  }
}

/** The socket class of a typist on `ws`, as browsers and `ws` negotiate compression, or without it. */
export const wsSocket = (deflate: boolean): unknown => (deflate ? WebSocket : NoDeflate);

async function openTypists(target: Target, kind: string, count: number, deflate: boolean, cpu: CpuClock | undefined): Promise<{ typists: Typist[]; presenceSettled: boolean }> {
  return openTypistsAt(target.roomUrl(roomName(target, kind)), Array.from({ length: count }, () => wsSocket(deflate)), cpu, target.name);
}

/**
 * One typist per entry of `sockets` (each its `WebSocketPolyfill`) in the room at `url`, once
 * all are synced (bounded: closes them and throws otherwise) and presence is quiet ({@link quietPresence}).
 */
export async function openTypistsAt(url: string, sockets: unknown[], cpu: CpuClock | undefined, what: string): Promise<{ typists: Typist[]; presenceSettled: boolean }> {
  // Each Node provider listens for the process's exit.
  process.setMaxListeners(Math.max(process.getMaxListeners(), sockets.length + 10));
  const typists = sockets.map((socket, index) => new Typist(index, url, socket));
  const deadline = performance.now() + SYNC_TIMEOUT_MS;
  while (!typists.every((typist) => typist.provider.synced)) {
    if (performance.now() > deadline) {
      for (const typist of typists) typist.close();
      throw new Error(`${what}: ${typists.filter((typist) => !typist.provider.synced).length} of ${sockets.length} providers not synced after ${SYNC_TIMEOUT_MS} ms`);
    }
    await sleep(POLL_MS);
  }
  const presenceSettled = await quietPresence(typists, cpu);
  await sleep(SETTLE_BEFORE_MS);
  return { typists, presenceSettled };
}

/**
 * Waits (bounded) until every client shows everyone's presence, no frame has arrived for
 * {@link PRESENCE_QUIET_MS} (echoes that change nothing count: the server is still relaying),
 * and, given the server's CPU clock, workerd is idle. Stock providers re-send every presence change they receive, so a
 * room that n clients just joined has about n^2 echoes to relay (y-partyserver relays each to
 * everyone, n^3 frames); typing into that storm would time the join, not the keys. A server
 * that never goes quiet (y-partyserver with 50 providers: their 15 s renewals alone make
 * 50 x 49 echoes x 50 frames every 15 s) is typed into anyway, once the wait is over, and the
 * result says so: that is what its users live with.
 */
async function quietPresence(typists: Typist[], cpu: CpuClock | undefined): Promise<boolean> {
  const deadline = performance.now() + PRESENCE_QUIET_TIMEOUT_MS;
  const everyoneSeen = () => typists.every((typist) => typist.awareness.getStates().size === typists.length);
  const lastFrameAt = () => Math.max(...typists.map((typist) => typist.lastFrameAt));
  while (!everyoneSeen() || performance.now() - lastFrameAt() < PRESENCE_QUIET_MS) {
    if (performance.now() > deadline) return false;
    await sleep(POLL_MS * 5);
  }
  // A server that answers echoes with nothing (edgedoc) may still have hundreds queued.
  return cpu ? (await awaitQuietServer(cpu, Math.max(0, deadline - performance.now()))).quiet : true;
}

/** Frames all `typists` received so far, by message type, less `since`. */
function framesBy(typists: Typist[], since: Record<number, number> = {}): Record<number, number> {
  const total: Record<number, number> = {};
  for (const typist of typists) for (const [type, count] of Object.entries(typist.framesIn)) total[Number(type)] = (total[Number(type)] ?? 0) + count;
  for (const [type, count] of Object.entries(since)) total[Number(type)] = (total[Number(type)] ?? 0) - count;
  return total;
}

/** Waits (bounded) until every client's text is the same and holds `keys` characters. */
async function converge(typists: Typist[], keys: number): Promise<boolean> {
  const deadline = performance.now() + CONVERGE_TIMEOUT_MS;
  const same = () => {
    const text = typists[0]!.text.toString();
    return text.length === keys && typists.every((typist) => typist.text.toString() === text);
  };
  while (!same()) {
    if (performance.now() > deadline) return false;
    await sleep(POLL_MS * 5);
  }
  return true;
}

/** Measures `body`'s driver cost: this process's CPU and event loop utilisation. */
async function measuringDriver<R>(body: () => Promise<R>): Promise<R & { driver: DriverCost }> {
  const cpu = process.cpuUsage();
  const elu = performance.eventLoopUtilization();
  const started = performance.now();
  const result = await body();
  const used = process.cpuUsage(cpu);
  const cpuMs = (used.user + used.system) / 1000;
  return { ...result, driver: { cpuMs, cores: cpuMs / Math.max(1, performance.now() - started), elu: performance.eventLoopUtilization(elu).utilization } };
}

export async function measureTypingThroughput(
  target: Target,
  { clients = 5, inFlight = 32, seconds = 5, deflate = true, run = 1, cpu }: TypingOptions & { inFlight?: number; seconds?: number } = {},
): Promise<TypingThroughputResult> {
  const result = await withCpu(target, cpu, async () => {
    const opened = await openTypists(target, `typing-${clients}`, clients, deflate, cpu).catch(String);
    if (typeof opened === "string") return { editsPerSecond: NaN, typed: 0, converged: false, presenceSettled: false, driver: NO_DRIVER, edits: 0, error: opened };
    const { typists, presenceSettled } = opened;
    try {
      const reader = typists[0]!;
      // Where each client's edits count as visible: the reader, or for the reader's own, client 1.
      const observerOf = (typist: Typist) => (typist === reader ? typists[1]! : reader);
      let end = 0;
      const pump = (typist: Typist) => {
        const observer = observerOf(typist);
        while (typist.keys - observer.holds(typist) < inFlight && performance.now() < end) typist.typeKey();
      };
      let remoteInWindow = 0;
      const { driver } = await measuringDriver(async () => {
        end = performance.now() + seconds * 1000;
        for (const typist of typists) {
          typist.doc.on("afterTransaction", (transaction: Y.Transaction) => {
            if (transaction.origin !== typist.provider) return;
            if (typist === reader && performance.now() <= end) {
              transaction.afterState.forEach((clock, client) => {
                if (client !== reader.doc.clientID) remoteInWindow += clock - (transaction.beforeState.get(client) ?? 0);
              });
            }
            // A remote edit arrived: whoever it showed progress for may type again.
            for (const writer of typists) if (observerOf(writer) === typist) pump(writer);
          });
        }
        for (const typist of typists) pump(typist);
        await sleep(seconds * 1000);
        return {};
      });
      const typed = typists.reduce((sum, typist) => sum + typist.keys, 0);
      const converged = await converge(typists, typed);
      return { editsPerSecond: remoteInWindow / seconds, typed, converged, presenceSettled, driver, edits: typed };
    } finally {
      for (const typist of typists) typist.close();
    }
  });
  return { target: target.name, run, clients, inFlight, seconds, deflate, ...result, cpu: result.cpu };
}

export async function measureTypingLatency(
  target: Target,
  { clients = 5, rate = 20, edits = 300, deflate = true, run = 1, cpu }: TypingOptions & { rate?: number; edits?: number } = {},
): Promise<TypingLatencyResult> {
  const result = await withCpu(target, cpu, async () => {
    const opened = await openTypists(target, `typing-latency-${clients}`, clients, deflate, cpu).catch(String);
    if (typeof opened === "string") return { converged: false, presenceSettled: false, updates: percentiles([]), everyReader: percentiles([]), slowKeys: [], framesIn: {}, driver: NO_DRIVER, edits: 0, error: opened };
    const { typists, presenceSettled } = opened;
    try {
      const [writer, ...readers] = typists as [Typist, ...Typist[]];
      const typedAt: number[] = [];
      /** Per reader, when each of the writer's keys became part of its document. */
      const arrivedAt = readers.map(() => [] as number[]);
      readers.forEach((reader, index) =>
        reader.doc.on("afterTransaction", (transaction: Y.Transaction) => {
          const before = transaction.beforeState.get(writer.doc.clientID) ?? 0;
          const after = transaction.afterState.get(writer.doc.clientID) ?? 0;
          const at = performance.now();
          for (let key = before; key < after; key++) arrivedAt[index]![key] = at;
        }),
      );
      const framesBefore = framesBy(typists);
      const { driver } = await measuringDriver(async () => {
        const started = performance.now();
        while (writer.keys < edits) {
          const due = Math.min(edits, Math.floor(((performance.now() - started) * rate) / 1000) + 1);
          while (writer.keys < due) {
            typedAt.push(performance.now());
            writer.typeKey();
          }
          await sleep(1);
        }
        return {};
      });
      const converged = await converge(typists, edits);
      const framesIn = framesBy(typists, framesBefore);
      const updates = arrivedAt.flatMap((times) => times.map((at, key) => at - typedAt[key]!));
      const everyReaderByKey = typedAt.map((typed, key) => (arrivedAt.every((times) => times[key] !== undefined) ? Math.max(...arrivedAt.map((times) => times[key]!)) - typed : NaN));
      const everyReader = everyReaderByKey.filter((ms) => !Number.isNaN(ms));
      const slowKeys = everyReaderByKey.flatMap((ms, key) => (ms >= SLOW_KEY_MS ? [{ key, atMs: typedAt[key]! - typedAt[0]!, ms }] : [])).slice(0, MAX_SLOW_KEYS);
      return { converged, presenceSettled, updates: percentiles(updates), everyReader: percentiles(everyReader), slowKeys, framesIn, driver, edits };
    } finally {
      for (const typist of typists) typist.close();
    }
  });
  return { target: target.name, run, clients, rate, deflate, ...result, cpu: result.cpu };
}
