/**
 * One driver process of the crowd scenario (bench/crowd.ts forks several): it hosts a share
 * of the room's clients, each a stock y-websocket `WebsocketProvider` with a y-protocols
 * Awareness, and types for them when told to.
 *
 * Every client types `keysPerSecond` one-character inserts at its own cursor, each followed
 * by a cursor move in its presence (y-codemirror.next's shape: `cursor: { anchor, head }` as
 * Yjs relative positions). An edit is identified by its Yjs ID: client k's n-th key is the
 * item (clientID_k, n), since each key inserts one character. A receiver records, per remote
 * client and clock, when the edit first became part of its document (`afterTransaction` of a
 * transaction applied by the provider); the sender records when it typed it. Presence is
 * timed the same way by (clientID, awareness clock). Timestamps are `process.hrtime`, the
 * machine's monotonic clock, which every driver process shares.
 *
 * The parent speaks to it over IPC (advanced serialization): `ChildCommand` in, `ChildReply`
 * out. Every wait is bounded by the parent; this process exits when told to close, when its
 * parent goes away, or after a hard deadline.
 */
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import { WebSocket } from "ws";
import { WebsocketProvider } from "y-websocket";
import { Awareness } from "y-protocols/awareness";
import * as Y from "yjs";

type ProviderOptions = NonNullable<ConstructorParameters<typeof WebsocketProvider>[3]>;

/** The machine's monotonic clock in ms (CLOCK_MONOTONIC, the same in every process). */
export const now = (): number => Number(process.hrtime.bigint()) / 1e6;

/** The text y-codemirror.next binds to, as the app does. */
const TEXT = "codemirror";
const PALETTE = ["#d1495b", "#edae49", "#00798c", "#30638e", "#6a4c93", "#2a9d8f", "#e76f51", "#8ab17d"];
/** This process gives up on its own after this long, whatever the parent does. */
const HARD_DEADLINE_MS = 15 * 60_000;

export type ChildCommand =
  | { type: "connect"; serverUrl: string; room: string; clientIndexes: number[]; deflate: boolean; echo: boolean }
  | { type: "type"; startAt: number; durationMs: number; keysPerSecond: number }
  | { type: "digest" }
  | { type: "report" }
  | { type: "close" };

export interface ClientDigest {
  index: number;
  length: number;
  hash: string;
  connected: boolean;
}

/** What one client saw and did, for the parent to turn into latencies. */
export interface ClientReport {
  index: number;
  clientId: number;
  /** When each key was typed (index = the item's clock). */
  sent: Float64Array;
  /** When each key was due: the gap to `sent` is the driver's own lag. */
  scheduled: Float64Array;
  /** When each presence clock was set, as [clock, time] pairs. */
  cursorsSent: Float64Array;
  /** Per remote clientID: when each of its items (by clock) first was in this document; NaN if never. */
  seen: Map<number, Float64Array>;
  /** Per remote clientID: [clock, time] pairs of presence first applied here. */
  cursorsSeen: Map<number, Float64Array>;
  /** Frames received and sent during the typing window, by y-websocket message type (0 sync, 1 awareness, 3 query). */
  receivedInWindow: Record<number, number>;
  sentInWindow: Record<number, number>;
  /** Closes the client did not ask for: the server's code and reason (1006 for a dropped socket). */
  closes: { code: number; reason: string; at: number }[];
  /** Closes by the provider's own watchdog: no frame from the server for 30 s. */
  watchdogCloses: number;
  connectionErrors: number;
  /** Connections opened after the first. */
  reconnects: number;
  /** When this document last changed by a remote edit. */
  lastRemoteChangeAt: number;
}

export interface DriverUsage {
  pid: number;
  clients: number;
  /** CPU of the whole process (all its threads: JS, zlib for permessage-deflate, GC), ms. */
  cpuMs: number;
  /** The main thread's event-loop utilisation, 0..1. */
  elu: number;
  windowMs: number;
}

export type ChildReply =
  | { type: "connected"; clients: { index: number; clientId: number }[] }
  | { type: "connect-failed"; error: string }
  | { type: "typed"; usage: DriverUsage; lastSentAt: number; keys: number }
  | { type: "digest"; digests: ClientDigest[] }
  | { type: "report"; clients: ClientReport[] }
  | { type: "closed" };

/** A growable Float64Array indexed by clock, NaN where nothing is recorded. */
class Times {
  data = new Float64Array(256).fill(NaN);
  length = 0;

  setRange(from: number, to: number, at: number): void {
    if (to > this.data.length) {
      let size = this.data.length;
      while (size < to) size *= 2;
      const grown = new Float64Array(size).fill(NaN);
      grown.set(this.data);
      this.data = grown;
    }
    for (let i = from; i < to; i++) if (Number.isNaN(this.data[i]!)) this.data[i] = at;
    this.length = Math.max(this.length, to);
  }

  set(index: number, at: number): void {
    this.setRange(index, index + 1, at);
  }

  toArray(): Float64Array {
    return this.data.slice(0, this.length);
  }
}

/**
 * Calls `onFrame` with the message type (0 sync, 1 awareness, 3 query) of every frame the
 * provider receives from its socket, by wrapping the provider's own handler table (one per
 * provider) before its handler runs.
 */
export function onEachFrame(provider: WebsocketProvider, onFrame: (type: number) => void): void {
  const handlers = provider.messageHandlers;
  handlers.forEach((handler, type) => {
    handlers[type] = (...args) => {
      onFrame(type);
      return handler(...args);
    };
  });
}

/**
 * Types `letter` where `caret` (a relative position, as an editor keeps its cursor) now is, or
 * at `fallback` when there is no caret or it no longer resolves in `text`. Returns the index typed at.
 */
export function typeLetterAt(text: Y.Text, caret: Y.RelativePosition | null, fallback: number, letter: string): number {
  const position = caret ? Y.createAbsolutePositionFromRelativePosition(caret, text.doc!) : null;
  const at = position && position.type === text ? position.index : fallback;
  text.insert(at, letter);
  return at;
}

/** `ws` without permessage-deflate (which it, like browsers, negotiates by default). */
export class NoDeflate extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    super(url, protocols, { perMessageDeflate: false });
  }
}

const pairs = (map: Map<number, number>): Float64Array => Float64Array.from([...map].flat());

class Client {
  readonly doc = new Y.Doc();
  readonly text = this.doc.getText(TEXT);
  readonly awareness = new Awareness(this.doc);
  readonly provider: WebsocketProvider;
  readonly sent = new Times();
  readonly scheduled = new Times();
  readonly cursorsSent = new Map<number, number>();
  readonly seen = new Map<number, Times>();
  readonly cursorsSeen = new Map<number, Map<number, number>>();
  readonly received: Record<number, number> = {};
  readonly sentFrames: Record<number, number> = {};
  readonly closes: ClientReport["closes"] = [];
  connectionErrors = 0;
  connections = 0;
  lastRemoteChangeAt = 0;
  counting = false;
  keys = 0;
  /** Sticks to the client's own last character (assoc -1), so it keeps typing where it was. */
  private caret: Y.RelativePosition | null = null;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly index: number,
    serverUrl: string,
    room: string,
    { deflate, echo }: { deflate: boolean; echo: boolean },
  ) {
    const color = PALETTE[index % PALETTE.length]!;
    this.awareness.setLocalState({ user: { name: `typist ${index}`, color, colorLight: `${color}33` }, cursor: null });
    this.provider = new WebsocketProvider(serverUrl, room, this.doc, {
      awareness: this.awareness,
      WebSocketPolyfill: (deflate ? WebSocket : NoDeflate) as unknown as ProviderOptions["WebSocketPolyfill"],
      // Providers in one process would otherwise sync through a BroadcastChannel, bypassing the server.
      disableBc: true,
    });
    onEachFrame(this.provider, (type) => {
      if (this.counting) this.received[type] = (this.received[type] ?? 0) + 1;
    });
    if (!echo) {
      // Not stock: send only this client's own presence changes, to measure what the echoes cost.
      const handler = (this.provider as unknown as { _awarenessUpdateHandler: (changes: unknown, origin: unknown) => void })._awarenessUpdateHandler;
      this.awareness.off("update", handler);
      this.awareness.on("update", (changes: unknown, origin: unknown) => origin !== this.provider && handler(changes, origin));
    }
    this.provider.on("status", ({ status }) => {
      if (status !== "connected") return;
      this.connections++;
      this.countSent(this.provider.ws as unknown as WebSocket);
    });
    this.provider.on("connection-close", (event) => {
      // null: closed by this side. Before the report that is only the provider's watchdog (30 s without a frame).
      this.closes.push(event ? { code: event.code, reason: String(event.reason ?? ""), at: now() } : { code: 0, reason: "watchdog", at: now() });
    });
    this.provider.on("connection-error", () => this.connectionErrors++);
    this.doc.on("afterTransaction", (transaction: Y.Transaction) => {
      if (transaction.origin !== this.provider) return;
      const at = now();
      let changed = false;
      transaction.afterState.forEach((clock, client) => {
        const before = transaction.beforeState.get(client) ?? 0;
        if (client === this.doc.clientID || clock <= before) return;
        changed = true;
        let times = this.seen.get(client);
        if (!times) this.seen.set(client, (times = new Times()));
        times.setRange(before, clock, at);
      });
      if (changed) this.lastRemoteChangeAt = at;
    });
    this.awareness.on("update", ({ added, updated }: { added: number[]; updated: number[] }, origin: unknown) => {
      if (origin !== this.provider) return;
      const at = now();
      for (const client of [...added, ...updated]) {
        if (client === this.doc.clientID) continue;
        const clock = this.awareness.meta.get(client)?.clock;
        if (clock === undefined) continue;
        let times = this.cursorsSeen.get(client);
        if (!times) this.cursorsSeen.set(client, (times = new Map()));
        if (!times.has(clock)) times.set(clock, at);
      }
    });
  }


  /** Counts outgoing frames by message type (sync, awareness; echoes included) on each new socket. */
  private countSent(socket: WebSocket): void {
    const send = socket.send.bind(socket);
    socket.send = ((data: Uint8Array, ...rest: unknown[]) => {
      if (this.counting) this.sentFrames[data[0]!] = (this.sentFrames[data[0]!] ?? 0) + 1;
      return (send as (...a: unknown[]) => void)(data, ...rest);
    }) as typeof socket.send;
  }

  /** One key: a character at the caret (sent by the provider at once), then the cursor after it. */
  typeKey(due: number): void {
    const clock = this.keys++;
    this.scheduled.set(clock, due);
    this.sent.set(clock, now());
    const at = typeLetterAt(this.text, this.caret, this.text.length, String.fromCharCode(97 + ((this.index + clock) % 26)));
    this.caret = Y.createRelativePositionFromTypeIndex(this.text, at + 1, -1);
    // As y-codemirror.next: relative positions (assoc 0) of the selection's anchor and head.
    const cursor = Y.createRelativePositionFromTypeIndex(this.text, at + 1);
    this.awareness.setLocalStateField("cursor", { anchor: cursor, head: cursor });
    this.cursorsSent.set(this.awareness.meta.get(this.doc.clientID)!.clock, now());
  }

  /** Types from `startAt` (plus a jitter under one interval) until `endAt`, on an absolute schedule. */
  typeUntil(startAt: number, endAt: number, interval: number, done: () => void): void {
    let due = startAt + Math.random() * interval;
    const step = () => {
      // Keys that fell due while the event loop was busy are typed now, late (that lag is reported).
      while (due < endAt && due <= now()) {
        this.typeKey(due);
        due += interval;
      }
      if (due >= endAt) return done();
      this.timer = setTimeout(step, Math.max(0, due - now()));
    };
    this.timer = setTimeout(step, Math.max(0, due - now()));
  }

  digest(): ClientDigest {
    const text = this.text.toString();
    return { index: this.index, length: text.length, hash: createHash("sha1").update(text).digest("hex"), connected: this.provider.wsconnected };
  }

  report(): ClientReport {
    return {
      index: this.index,
      clientId: this.doc.clientID,
      sent: this.sent.toArray(),
      scheduled: this.scheduled.toArray(),
      cursorsSent: pairs(this.cursorsSent),
      seen: new Map([...this.seen].map(([client, times]) => [client, times.toArray()])),
      cursorsSeen: new Map([...this.cursorsSeen].map(([client, times]) => [client, pairs(times)])),
      receivedInWindow: this.received,
      sentInWindow: this.sentFrames,
      closes: this.closes.filter((close) => close.code !== 0),
      watchdogCloses: this.closes.filter((close) => close.code === 0).length,
      connectionErrors: this.connectionErrors,
      reconnects: Math.max(0, this.connections - 1),
      lastRemoteChangeAt: this.lastRemoteChangeAt,
    };
  }

  close(): void {
    clearTimeout(this.timer);
    this.provider.destroy();
    this.doc.destroy();
  }
}

function reply(message: ChildReply): void {
  process.send!(message);
}

async function waitSynced(clients: Client[], timeoutMs: number): Promise<void> {
  const deadline = now() + timeoutMs;
  while (!clients.every((client) => client.provider.synced)) {
    if (now() > deadline) {
      const waiting = clients.filter((client) => !client.provider.synced);
      const connected = clients.filter((client) => client.provider.wsconnected).length;
      const closes = clients.flatMap((client) => client.closes.map((close) => close.code));
      const errors = clients.reduce((sum, client) => sum + client.connectionErrors, 0);
      throw new Error(
        `${waiting.length} of ${clients.length} clients not synced after ${timeoutMs} ms ` +
          `(${connected} connected, closes [${closes.join(", ")}], ${errors} connection errors)`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function main(): void {
  if (!process.send) throw new Error("bench/crowd-client.ts runs as a child of bench/crowd.ts");
  let clients: Client[] = [];
  const shutdown = () => {
    for (const client of clients) client.close();
    clients = [];
  };
  const deadline = setTimeout(() => {
    shutdown();
    process.exit(2);
  }, HARD_DEADLINE_MS);
  deadline.unref();
  process.on("disconnect", () => {
    shutdown();
    process.exit(0);
  });
  process.on("message", async (command: ChildCommand) => {
    switch (command.type) {
      case "connect": {
        clients = command.clientIndexes.map((index) => new Client(index, command.serverUrl, command.room, command));
        try {
          await waitSynced(clients, 30_000);
          reply({ type: "connected", clients: clients.map((client) => ({ index: client.index, clientId: client.doc.clientID })) });
        } catch (error) {
          reply({ type: "connect-failed", error: String(error) });
        }
        return;
      }
      case "type": {
        const { startAt, durationMs, keysPerSecond } = command;
        const endAt = startAt + durationMs;
        let cpu = process.cpuUsage();
        let elu = performance.eventLoopUtilization();
        let windowStartAt = now();
        const windowStart = setTimeout(() => {
          windowStartAt = now();
          cpu = process.cpuUsage();
          elu = performance.eventLoopUtilization();
          for (const client of clients) client.counting = true;
        }, Math.max(0, startAt - now()));
        let remaining = clients.length;
        const finish = () => {
          clearTimeout(windowStart);
          for (const client of clients) client.counting = false;
          const used = process.cpuUsage(cpu);
          reply({
            type: "typed",
            usage: {
              pid: process.pid,
              clients: clients.length,
              cpuMs: (used.user + used.system) / 1000,
              elu: performance.eventLoopUtilization(elu).utilization,
              windowMs: now() - windowStartAt,
            },
            lastSentAt: Math.max(...clients.map((client) => client.sent.data[client.keys - 1] ?? 0)),
            keys: clients.reduce((sum, client) => sum + client.keys, 0),
          });
        };
        if (remaining === 0) return finish();
        for (const client of clients) {
          client.typeUntil(startAt, endAt, 1000 / keysPerSecond, () => {
            if (--remaining === 0) finish();
          });
        }
        return;
      }
      case "digest":
        return reply({ type: "digest", digests: clients.map((client) => client.digest()) });
      case "report":
        return reply({ type: "report", clients: clients.map((client) => client.report()) });
      case "close":
        shutdown();
        reply({ type: "closed" });
        setTimeout(() => process.exit(0), 50);
        return;
    }
  });
}

if (import.meta.main) main();
