/**
 * Idle rooms (issue 31, "Idle rooms sleep"). A Durable Object with hibernatable WebSockets
 * hibernates once nothing reached it for 10 consecutive seconds, and its duration billing
 * stops ("the 10-second rule", developers.cloudflare.com/durable-objects/platform/pricing). This
 * scenario measures how often idle clients wake their room, on the shared bench server, rooms
 * in parallel, each its own document (bench/idle-rooms.ts lists them):
 *
 * - Each room's clients join, type a few keys each, and then all stay idle for the window.
 * - **Frames per client-minute**: every frame each client sent during the window, counted at the
 *   client, except text `ping`, which the runtime answers without waking the object (for the
 *   app's pages, `WebSocket.prototype.send` wrapped before the app loads). Beside it the frames
 *   the object itself logged (bench/idle-events.ts): the two should agree.
 * - **Awake share**: the union over the events that reached the object (frames, connects,
 *   closes, alarms, its constructor) of [t, t + 10 s], over the window; events in the 10 s
 *   before the window count for what they keep awake in it.
 * - **First edit after a sleep**: once the room's object saw nothing for 11 s, one client types a
 *   key; the time until every other client has it, a few times over. Whether the runtime
 *   really put the object away shows as its constructor running again (`woke`).
 * - At the end: whether every app page still lists the other people of its room, and whether
 *   the stock provider that joined the app clients saw them all with names and cursors.
 */
import { performance } from "node:perf_hooks";
import type { Browser } from "playwright-core";
import type { DevServer } from "../test/node/wrangler.ts";
import { AppClient, launchBrowser, StockClient, type IdleClient } from "./idle-clients.ts";
import { parseIdleEvents, type IdleEvent } from "./idle-events.ts";
import { IDLE_ROOMS, idleDocumentName, type IdleRoom } from "./idle-rooms.ts";
import { percentiles, type LatencyStats } from "./realtime.ts";

/** The runtime hibernates an object after this long without an event (the 10-second rule). */
const HIBERNATE_AFTER_MS = 10_000;
/** Before each first edit: no event at the object for this long (a second past the rule). */
const ASLEEP_AFTER_MS = HIBERNATE_AFTER_MS + 1_000;
/** How long a room gets to fall asleep before a first edit is typed anyway (and marked awake). */
const SLEEP_WAIT_TIMEOUT_MS = 25_000;
/** Keys each client types before the window. */
const KEYS_EACH = 4;
const KEY_DELAY_MS = 80;
const CONVERGE_TIMEOUT_MS = 15_000;
/** After the keys converged: the last cursor and save frames settle before the window starts. */
const SETTLE_MS = 2_000;
const EDIT_TIMEOUT_MS = 10_000;
const POLL_MS = 100;
/** wrangler prints the objects' lines a moment after they ran. */
const LOG_LAG_MS = 500;
/** One unused capital per first edit, so each is told apart from the lower-case keys before it. */
const FIRST_EDIT_KEYS = "XYZWV";

export interface IdleOptions {
  idleSeconds: number;
  /** First edits after a sleep, per room (at most {@link FIRST_EDIT_KEYS}'s length). */
  repeats: number;
}

export interface FirstEdit {
  /** How long the object had seen nothing when the key was typed. */
  sleptMs: number;
  asleep: boolean;
  /** The object's constructor ran between the key and its arrival: the runtime had put it away. */
  woke: boolean;
  /** Keystroke until every other client had the key; null if one never did within 10 s. */
  latencyMs: number | null;
}

export interface IdleRoomResult {
  room: string;
  server: IdleRoom["server"];
  appClients: number;
  stockClients: number;
  windowMs: number;
  /** Frames the clients sent in the window (text `ping` apart), per client-minute; and by kind of client. */
  framesPerClientMinute: number;
  framesPerClientMinuteByKind: { app?: number; stock?: number };
  /** Text `ping` frames per client-minute (answered by the runtime, never reaching the object). */
  pingsPerClientMinute: number;
  /** Frames the object logged in the window, per client-minute. */
  objectFramesPerClientMinute: number;
  /** Events at the object in the window, by kind. */
  events: Record<IdleEvent["kind"], number>;
  /** Share of the window the object was awake by the 10-second rule. */
  awakeShare: number;
  longestSleepMs: number;
  /** Frames the clients sent while typing, per key typed (edits, cursors and the echoes they caused). */
  typingFramesPerKey: number;
  typingConverged: boolean;
  /** Every app page listed every other person of its room at the end (null: no app pages). */
  appPresenceComplete: boolean | null;
  /** The stock provider that joined the app clients saw each with a name and a cursor: on joining, and at the end. */
  lateJoinerSawAll: { onJoin: boolean; atEnd: boolean } | null;
  firstEdits: FirstEdit[];
  firstEdit: LatencyStats;
  /**
   * Each time the object's constructor ran again (the runtime had evicted it), from the window
   * on: how long the object had seen nothing before (ms). All at 10 s or more: local workerd
   * hibernates by the 10-second rule.
   */
  constructedAfterMs: number[];
  error?: string;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const NO_EVENTS = (): IdleRoomResult["events"] => ({ construct: 0, connect: 0, message: 0, close: 0, alarm: 0 });

/** The objects' event lines in wrangler's output from where the scenario began, read as they come. */
class EventLog {
  private offset: number;
  private readonly events: IdleEvent[] = [];

  constructor(private readonly output: () => string) {
    this.offset = output().length;
  }

  /** Every event for `doc` so far. */
  of(doc: string): IdleEvent[] {
    const text = this.output();
    const end = text.lastIndexOf("\n") + 1;
    if (end > this.offset) {
      this.events.push(...parseIdleEvents(text.slice(this.offset, end)));
      this.offset = end;
    }
    return this.events.filter((event) => event.doc === doc);
  }
}

/** Share of [from, to] covered by [t, t + 10 s] of the events, and the longest stretch uncovered. */
function awakeOver(events: IdleEvent[], from: number, to: number): { share: number; longestSleepMs: number } {
  const starts = events.map((event) => event.at).filter((at) => at >= from - HIBERNATE_AFTER_MS && at <= to).sort((a, b) => a - b);
  let awake = 0;
  let longestSleepMs = 0;
  let coveredUntil = from;
  for (const at of starts) {
    const start = Math.max(at, coveredUntil);
    const end = Math.min(at + HIBERNATE_AFTER_MS, to);
    if (at > coveredUntil) longestSleepMs = Math.max(longestSleepMs, at - coveredUntil);
    if (end > start) awake += end - start;
    coveredUntil = Math.max(coveredUntil, end);
  }
  longestSleepMs = Math.max(longestSleepMs, to - coveredUntil);
  return { share: awake / (to - from), longestSleepMs };
}

/** One room through its life: join, type, idle (the window is shared by all rooms), first edits. */
class RoomRun {
  readonly doc: string;
  readonly clients: IdleClient[] = [];
  private lateJoiner: StockClient | null = null;
  private typing = { frames: 0, keys: 0, converged: false };
  private lateOnJoin = false;
  private framesAtStart: number[] = [];
  private pingsAtStart: number[] = [];

  constructor(
    readonly room: IdleRoom,
    private readonly server: DevServer,
    private readonly browser: Browser | null,
    private readonly log: EventLog,
  ) {
    this.doc = idleDocumentName(room);
  }

  /** Joins, types, lets the late stock provider join; ready for the window. */
  async prepare(): Promise<void> {
    if (this.room.appClients > 0 && !this.browser) throw new Error("no Chromium for the app's clients");
    for (let i = 0; i < this.room.appClients; i++) this.clients.push(await AppClient.open(this.browser!, `${this.server.origin}/d/${this.doc}`, `person ${i + 1}`));
    for (let i = 0; i < this.room.stockClients; i++) this.clients.push(await StockClient.open(this.room.serverUrl(this.server), this.doc, i));
    const before = await this.framesSent();
    await Promise.all(this.clients.map((client) => client.typeKeys(KEYS_EACH, KEY_DELAY_MS)));
    this.typing.keys = KEYS_EACH * this.clients.length;
    this.typing.converged = await this.converge(this.typing.keys);
    await sleep(SETTLE_MS);
    this.typing.frames = sum(await this.framesSent()) - sum(before);
    if (this.room.lateStockClient) {
      this.lateJoiner = await StockClient.open(this.room.serverUrl(this.server), this.doc, this.room.stockClients);
      this.lateOnJoin = await this.lateJoinerSeesAll(EDIT_TIMEOUT_MS);
      this.clients.push(this.lateJoiner);
    }
  }

  async startWindow(): Promise<void> {
    this.framesAtStart = await this.framesSent();
    this.pingsAtStart = await Promise.all(this.clients.map((client) => client.pingsSent()));
  }

  /** The window's figures, read at its end (`from`, `to`: its wall-clock bounds). */
  async endWindow(from: number, to: number): Promise<Omit<IdleRoomResult, "firstEdits" | "firstEdit" | "constructedAfterMs">> {
    const frames = (await this.framesSent()).map((count, i) => count - this.framesAtStart[i]!);
    const pings = (await Promise.all(this.clients.map((client) => client.pingsSent()))).map((count, i) => count - this.pingsAtStart[i]!);
    const minutes = (to - from) / 60_000;
    const perClientMinute = (count: number, clients: number) => (clients > 0 ? count / clients / minutes : NaN);
    const byKind = (kind: IdleClient["kind"]) => {
      const indices = this.clients.flatMap((client, i) => (client.kind === kind ? [i] : []));
      return indices.length > 0 ? perClientMinute(sum(indices.map((i) => frames[i]!)), indices.length) : undefined;
    };
    const events = this.log.of(this.doc);
    const inWindow = events.filter((event) => event.at >= from && event.at <= to);
    const counts = NO_EVENTS();
    for (const event of inWindow) counts[event.kind]++;
    const { share, longestSleepMs } = awakeOver(events, from, to);
    return {
      room: this.room.name,
      server: this.room.server,
      appClients: this.room.appClients,
      stockClients: this.room.stockClients + (this.room.lateStockClient ? 1 : 0),
      windowMs: to - from,
      framesPerClientMinute: perClientMinute(sum(frames), this.clients.length),
      framesPerClientMinuteByKind: { app: byKind("app"), stock: byKind("stock") },
      pingsPerClientMinute: perClientMinute(sum(pings), this.clients.length),
      objectFramesPerClientMinute: perClientMinute(counts.message, this.clients.length),
      events: counts,
      awakeShare: share,
      longestSleepMs,
      typingFramesPerKey: this.typing.keys > 0 ? this.typing.frames / this.typing.keys : NaN,
      typingConverged: this.typing.converged,
      appPresenceComplete: await this.appPresenceComplete(),
      lateJoinerSawAll: this.room.lateStockClient ? { onJoin: this.lateOnJoin, atEnd: await this.lateJoinerSeesAll(0) } : null,
    };
  }

  /** `repeats` first edits, each typed once the object saw nothing for {@link ASLEEP_AFTER_MS} (or the wait ran out). */
  async firstEdits(repeats: number): Promise<FirstEdit[]> {
    const edits: FirstEdit[] = [];
    for (let repeat = 0; repeat < repeats; repeat++) {
      const sleptMs = await this.awaitSleep();
      const writer = this.clients[repeat % this.clients.length]!;
      const others = this.clients.filter((client) => client !== writer);
      const key = FIRST_EDIT_KEYS[repeat]!;
      const arrivals = others.map((client) => client.arrivalOf(key, EDIT_TIMEOUT_MS));
      const typedAt = await writer.typeMarker(key);
      const arrived = await Promise.all(arrivals);
      const latencyMs = arrived.every((at): at is number => at !== null) ? Math.max(...arrived) - typedAt : null;
      await sleep(LOG_LAG_MS);
      const woke = this.log.of(this.doc).some((event) => event.kind === "construct" && event.at >= typedAt - 50);
      edits.push({ sleptMs, asleep: sleptMs >= ASLEEP_AFTER_MS, woke, latencyMs });
    }
    return edits;
  }

  /** For each constructor run at or after `from`: the time since the object's event before it. */
  constructedAfter(from: number): number[] {
    const events = this.log.of(this.doc);
    return events.flatMap((event, i) => (event.kind === "construct" && event.at >= from && i > 0 ? [event.at - Math.max(...events.slice(0, i).map((before) => before.at))] : []));
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((client) => client.close()));
    if (this.lateJoiner && !this.clients.includes(this.lateJoiner)) await this.lateJoiner.close();
  }

  private framesSent(): Promise<number[]> {
    return Promise.all(this.clients.map((client) => client.framesSent()));
  }

  /** Waits (bounded) until the object saw nothing for {@link ASLEEP_AFTER_MS}; returns how long it had seen nothing. */
  private async awaitSleep(): Promise<number> {
    const deadline = Date.now() + SLEEP_WAIT_TIMEOUT_MS;
    for (;;) {
      const last = Math.max(0, ...this.log.of(this.doc).map((event) => event.at));
      const slept = Date.now() - last;
      if (slept >= ASLEEP_AFTER_MS || Date.now() + POLL_MS > deadline) return slept;
      await sleep(Math.min(POLL_MS * 5, ASLEEP_AFTER_MS - slept));
    }
  }

  private async converge(keys: number): Promise<boolean> {
    const deadline = performance.now() + CONVERGE_TIMEOUT_MS;
    for (;;) {
      const texts = await Promise.all(this.clients.map((client) => client.text()));
      if (texts[0]!.length === keys && texts.every((text) => text === texts[0])) return true;
      if (performance.now() > deadline) return false;
      await sleep(POLL_MS);
    }
  }

  private async appPresenceComplete(): Promise<boolean | null> {
    const pages = this.clients.filter((client): client is AppClient => client instanceof AppClient);
    if (pages.length === 0) return null;
    const names = pages.map((page) => page.name);
    const listed = await Promise.all(pages.map((page) => page.listedNames()));
    return listed.every((list, i) => names.every((name, j) => i === j || list.some((entry) => entry.startsWith(name))));
  }

  /** Whether the late stock provider sees every app client with a name and a cursor, waiting up to `timeoutMs`. */
  private async lateJoinerSeesAll(timeoutMs: number): Promise<boolean> {
    const names = this.clients.filter((client): client is AppClient => client instanceof AppClient).map((page) => page.name);
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const seen = this.lateJoiner!.peopleWithCursors();
      if (names.every((name) => seen.includes(name))) return true;
      if (performance.now() > deadline) return false;
      await sleep(POLL_MS);
    }
  }
}

const sum = (list: number[]) => list.reduce((total, value) => total + value, 0);

/** Runs every room of {@link IDLE_ROOMS} on `server` at once and returns their figures. */
export async function measureIdle(server: DevServer, { idleSeconds, repeats }: IdleOptions): Promise<IdleRoomResult[]> {
  const log = new EventLog(server.output);
  // Each stock provider listens for the process's exit.
  const stock = IDLE_ROOMS.reduce((count, room) => count + room.stockClients + (room.lateStockClient ? 1 : 0), 0);
  process.setMaxListeners(Math.max(process.getMaxListeners(), stock + 10));
  const browser = await launchBrowser();
  const runs = IDLE_ROOMS.map((room) => new RoomRun(room, server, browser, log));
  try {
    const prepared = await Promise.allSettled(runs.map((run) => run.prepare()));
    const ready = runs.filter((_, i) => prepared[i]!.status === "fulfilled");
    const failed = runs.flatMap(({ room }, i) => {
      const outcome = prepared[i]!;
      return outcome.status === "rejected" ? [failedRoom(room, String(outcome.reason))] : [];
    });
    await Promise.all(ready.map((run) => run.startWindow()));
    const from = Date.now();
    await sleep(idleSeconds * 1000);
    const to = Date.now();
    const windows = await Promise.all(ready.map((run) => run.endWindow(from, to)));
    const edits = await Promise.all(ready.map((run) => run.firstEdits(Math.min(repeats, FIRST_EDIT_KEYS.length))));
    const measured = edits.map((roomEdits, i) => {
      const latencies = roomEdits.filter((edit) => edit.asleep && edit.latencyMs !== null).map((edit) => edit.latencyMs!);
      return { ...windows[i]!, firstEdits: roomEdits, firstEdit: percentiles(latencies), constructedAfterMs: ready[i]!.constructedAfter(from) };
    });
    return [...measured, ...failed];
  } finally {
    await Promise.all(runs.map((run) => run.close().catch(() => undefined)));
    await browser?.close();
  }
}

function failedRoom(room: IdleRoom, error: string): IdleRoomResult {
  return {
    room: room.name,
    server: room.server,
    appClients: room.appClients,
    stockClients: room.stockClients,
    windowMs: 0,
    framesPerClientMinute: NaN,
    framesPerClientMinuteByKind: {},
    pingsPerClientMinute: NaN,
    objectFramesPerClientMinute: NaN,
    events: NO_EVENTS(),
    awakeShare: NaN,
    longestSleepMs: 0,
    typingFramesPerKey: NaN,
    typingConverged: false,
    appPresenceComplete: null,
    lateJoinerSawAll: null,
    firstEdits: [],
    firstEdit: percentiles([]),
    constructedAfterMs: [],
    error,
  };
}
