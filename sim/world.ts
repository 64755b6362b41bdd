/**
 * One simulated room: the host (storage, sockets, clock, endpoints), the core, the clients,
 * and the runtime's rules for running events. A step of the schedule becomes zero or more
 * events; every event runs as Durable Objects run one:
 *
 *   BEGIN → (construct the core if it was evicted or killed) → handler → COMMIT → output gate opens
 *
 * What the handler sends before its first write leaves at once; an outbound fetch commits what
 * came before it, and while the handler awaits it other events may run (a socket's frame, an
 * HTTP request, an API call: the schedule's `duringFetch` stream picks), as workerd runs them.
 * If the process dies during an event, what it wrote since its last commit is lost, what it
 * sent after that is dropped, the core is gone and every socket closes abnormally (1006) for
 * its client (the HTTP fallback's sessions, kept in the object's memory, go too: sim/http.ts).
 * The invariants (sim/invariants.ts) are checked after every event and at the end of the
 * schedule.
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import * as Y from "yjs";
import {
  HELD_UPDATES_MAX_BYTES,
  MAX_PENDING_UPDATE_BYTES,
  MAX_WEBHOOK_DELIVERIES_PER_ALARM,
  QUIET_CHECK_INTERVAL_MS,
  QUIET_PROBE_AFTER_MS,
  QUIET_PROBE_GRACE_MS,
  QUIET_RENEWAL_INTERVAL_MS,
} from "../worker/limits";
import { decodeAwarenessUpdate, MessageType, PING, SyncMessageType } from "../worker/protocol";
import { codePointRange, SHARED_TEXT, SimClient, type Barrier, type ClientObserver } from "./client";
import type { CoreFactory, CoreFigures, QuietFigures, RoomConfig, SimulatedCore, SocketEnd } from "./contract";
import { captureLogs, useClock, useRandom, type CapturedLog } from "./determinism";
import { Endpoints, SimHost, SimSocket, type FrameToClient, type ToServer } from "./host";
import { HttpFallback } from "./http";
import { Prng } from "./prng";
import type { ApiCall, Attack, Schedule, Step } from "./schedule";
import { SimStorage, SimulatedKill } from "./sqlite";
import { StoredView } from "./stored";

/** A Durable Object hibernates only after this long without events (docs/storage.md). */
export const HIBERNATE_AFTER_IDLE_MS = 10_000;
/**
 * Alarm runs one step's clock advance may make on time before the simulation jumps (a runaway
 * alarm is caught by the invariants). One budget per step, an `idle` step's many turns included:
 * every alarm run's webhook fetches may run events beside them (API calls among them, from the
 * `duringFetch` stream) which add webhook events, hence more alarm runs; unbounded, that loop
 * feeds itself (20261211-2931: 1,106 DELETEs in one schedule, an outbox of 890 events).
 */
const MAX_ALARMS_PER_ADVANCE = 200;

/** Alarm runs a step may still make on time (see {@link MAX_ALARMS_PER_ADVANCE}). */
interface AlarmBudget {
  left: number;
}
/** Items one deliverAll may move; more means something loops. */
const MAX_DELIVERIES = 5_000;
/** A clock advance longer than this is the clients' machines sleeping: their timers do not run during it. */
const CLIENTS_SLEEP_OVER_MS = 60_000;
/** Turns (timer, deliveries) one `idle` step may take; more means something loops. */
const MAX_IDLE_TURNS = 20_000;

export interface Violation {
  /** The step during which it was found (-1: the end of the schedule). */
  step: number;
  invariant: string;
  message: string;
}

export type EventKind = "socket" | "alarm" | "rpc" | "connect";

type EventResult<T> = { killed: true } | { killed: false; value: T; threw: false; fault: boolean } | { killed: false; threw: true; error: unknown; fault: boolean };

export interface WorldOptions {
  schedule: Schedule;
  factory: CoreFactory;
  config: RoomConfig;
  /** Prints the trace (--verbose). */
  trace: ((line: string) => void) | null;
  ignore?: readonly string[];
}

export class World {
  readonly storage = new SimStorage();
  readonly endpoints: Endpoints;
  readonly host: SimHost;
  readonly stored: StoredView;
  readonly clients: SimClient[];
  /** Clients on the HTTP fallback: the object's sessions, their links, their network (sim/http.ts). */
  readonly http: HttpFallback;
  readonly violations: Violation[] = [];
  readonly logs: CapturedLog[];
  /**
   * How many log lines there were when an armed kill was reached: the core goes on running in
   * the simulation (its statements throw), but a dead process writes no more logs, so what it
   * logged after that (a "dropped" it could never have said) must not count for the invariants.
   */
  private logsAtKill: number | null = null;
  core: SimulatedCore | null = null;
  step = -1;
  events = 0;
  lastEventAt: number;
  /** The HTTP API writer's document (applyUpdate builds on what is stored). */
  private readonly apiDoc: Y.Doc;
  /** Per rogue client: a private document for updates whose predecessor is withheld. */
  private readonly withheld = new Map<number, { doc: Y.Doc; predecessor: Uint8Array | null }>();
  private inEvent = false;
  private currentKind: EventKind = "rpc";
  /** Events run beside a fetch so far (an alarm run with some made no promise of progress: they add duties). */
  private besideFetch = 0;
  /** The events running beside a fetch now, if any. */
  private beside: Promise<void> | null = null;
  /** Events waiting for their outbound fetch while others run (see {@link whileFetching}). */
  private readonly suspended: EventKind[] = [];
  /** Picks what runs while an event awaits a fetch (the schedule's `duringFetch`); null: nothing does. */
  private readonly fetchRng: Prng | null;
  /** Alarm runs in a row that left a duty overdue (see checkAlarmProgress). */
  private overdueStreak = 0;
  /** A hash of what happened, to check that a replay is identical. */
  trace = 0x811c9dc5;
  /** When a client's frame last reached the core (a WebSocket's or an HTTP session's): the room was not idle since. */
  lastClientFrameAt = -Infinity;
  /** Per quiet socket, the client IDs the room held from it after the last event (quiet-presence-held). */
  private quietHeld = new Map<SimSocket, Set<number>>();
  /** Per vanished quiet socket, the first check at least QUIET_PROBE_AFTER_MS after its last sign of life (quiet-vanished). */
  private readonly vanishedCheck = new Map<SimSocket, number>();
  readonly config: RoomConfig;
  private readonly factory: CoreFactory;
  readonly print: ((line: string) => void) | null;
  /** Invariants set aside while triaging (--ignore): known causes, so others can be found. */
  private readonly ignore: ReadonlySet<string>;

  constructor(options: WorldOptions) {
    const { schedule } = options;
    this.config = options.config;
    this.factory = options.factory;
    this.print = options.trace;
    this.ignore = new Set(options.ignore ?? []);
    useRandom(new Prng(schedule.runtimeSeed));
    this.endpoints = new Endpoints(options.config.webhooks?.endpoints ?? []);
    this.host = new SimHost(this.storage, this.endpoints, schedule.epoch);
    if (schedule.slowIo) this.storage.io = () => new Promise((resolve) => setImmediate(resolve));
    this.host.beforeFetch = () => this.checkpoint();
    this.host.whileFetching = () => this.whileFetching();
    this.host.releaseUngated = () => this.releaseSockets();
    this.fetchRng = schedule.duringFetch === undefined ? null : new Prng(schedule.duringFetch);
    useClock(() => this.host.time);
    this.logs = captureLogs(options.trace === null ? null : (line) => options.trace?.(`      log ${line}`));
    this.storage.onKill = () => (this.logsAtKill = this.logs.length);
    this.stored = new StoredView(this.storage);
    if (options.trace) {
      const print = options.trace;
      this.storage.onStatement = (n, sql, note) => print(`      sql#${n}${note ? ` ${note}` : ""} ${sql.replace(/\s+/g, " ").trim().slice(0, 110)}`);
    }
    this.lastEventAt = schedule.epoch;
    const observer: ClientObserver = {
      confirmed: (client, barrier, item) => this.onConfirmed(client, barrier, item),
      badFrame: (client, error) => this.violate("protocol", `client ${client.index} could not process a frame from the room: ${error}`),
      ...(options.trace ? { trace: (client: SimClient, line: string) => options.trace?.(`      c${client.index} ${line}`) } : {}),
    };
    this.clients = schedule.clients.map((spec, index) => new SimClient(index, spec, observer, schedule.epoch));
    this.http = new HttpFallback(this, schedule.clients.some((spec) => spec.transport === "http") || schedule.steps.some((step) => step.k === "http" && step.act === "switch"));
    // Every client starts wanting to connect (the explorer's connect steps open them earlier or again).
    for (const client of this.clients) client.reconnectAt = schedule.epoch;
    this.apiDoc = new Y.Doc({ gc: true });
    this.apiDoc.clientID = schedule.apiClientId;
  }

  get now(): number {
    return this.host.time;
  }

  violate(invariant: string, message: string): void {
    if (this.ignore.has(invariant)) return;
    this.violations.push({ step: this.step, invariant, message });
    this.print?.(`      VIOLATION [${invariant}] ${message}`);
  }

  note(label: string): void {
    for (let i = 0; i < label.length; i++) this.trace = Math.imul(this.trace ^ label.charCodeAt(i), 0x01000193) >>> 0;
  }

  // --- Events ----------------------------------------------------------------------------------

  /**
   * Runs one event. `prepare` runs inside it before the core is made (the runtime clears the
   * alarm it is firing there, so a killed alarm run is retried). What the event set going in
   * the HTTP sessions (ends reported to the core, held polls answered) finishes inside it.
   */
  async event<T>(label: string, kind: EventKind, body: (core: SimulatedCore) => Promise<T>, prepare?: () => void): Promise<EventResult<T>> {
    this.events++;
    this.currentKind = kind;
    this.note(label);
    this.print?.(`    event ${label} @${this.now - this.lastEventAt >= 0 ? "+" : ""}${this.now - this.lastEventAt}ms`);
    // Beside an event awaiting its fetch (whileFetching), this one shares its transaction.
    const nested = this.inEvent;
    const endNested = nested ? this.storage.beginNestedEvent() : null;
    if (!nested) this.storage.beginEvent();
    this.inEvent = true;
    let outcome: { value: T } | { error: unknown };
    let constructed = true;
    const woke = this.core === null;
    try {
      prepare?.();
      if (this.core === null) {
        constructed = false;
        // The object's HTTP sessions are made before its core (worker/room/index.ts).
        let core: SimulatedCore | null = null;
        this.http.open(() => core!);
        this.core = core = this.factory(this.host, this.config);
        // The shell runs wake() in blockConcurrencyWhile: part of the event that constructs it.
        await this.core.wake();
        constructed = true;
      }
      outcome = { value: await body(this.core) };
    } catch (error) {
      outcome = { error };
    }
    // A handler that settled (threw, say) while one of its branches still awaits a fetch: the
    // events running beside it end first, so that this event's commit is the last.
    if (!nested) while (this.beside !== null) await this.beside;
    await this.http.settle();
    this.inEvent = nested;
    const faultFired = this.storage.lastFault;
    if (this.storage.killReached || this.storage.killPending || ("error" in outcome && outcome.error instanceof SimulatedKill)) {
      this.print?.(`    killed during ${label}`);
      this.killProcess();
      return { killed: true };
    }
    if (!constructed) {
      // The object failed to start: the runtime resets it (as a kill, but a fault caused it).
      if (!faultFired) this.violate("no-throw", `the core's constructor threw without an injected fault: ${describe("error" in outcome ? outcome.error : null)}`);
      this.print?.(`    constructor failed during ${label}: reset`);
      this.killProcess();
      return { killed: true };
    }
    if (endNested === null) this.storage.endEvent();
    else endNested();
    this.releaseOutput();
    this.lastEventAt = this.now;
    if ("error" in outcome) {
      this.print?.(`    ${label} threw: ${describe(outcome.error)}`);
      // An alarm may throw under a storage fault (it could not re-arm itself): the runtime retries it.
      if (kind === "socket" || (kind === "alarm" && !faultFired)) {
        this.violate("no-throw", `${label} threw out of the core: ${describe(outcome.error)}`);
      } else if (!faultFired) {
        this.violate("no-throw", `${label} threw without an injected storage fault (an HTTP 500): ${describe(outcome.error)}`);
      }
      this.afterEvent(label, woke, true);
      return { killed: false, threw: true, error: outcome.error, fault: faultFired };
    }
    this.afterEvent(label, woke, false);
    return { killed: false, threw: false, value: outcome.value, fault: faultFired };
  }

  /** Outbound HTTP leaves mid-event: what was written and sent before it is released first. */
  private checkpoint(): void {
    if (!this.inEvent) return;
    this.storage.checkpoint();
    this.releaseOutput();
  }

  /** The output gate opens. Awareness echoes that would confirm a client's save are stamped with what storage holds now. */
  private releaseOutput(): void {
    this.releaseSockets();
    this.http.release();
  }

  /** The sockets' part of the output gate (alone when the core sends with nothing uncommitted). */
  private releaseSockets(): void {
    for (const [socket, items] of this.host.commit()) {
      const client = this.clients[socket.client];
      for (const item of items) {
        if ("close" in item) {
          this.note(`close${item.close.code}`);
          this.print?.(`      -> s${socket.id} close ${item.close.code} ${item.close.reason}`);
          this.checkQuietClose(socket, item.close);
          continue;
        }
        if ("text" in item) {
          this.note(`text-${item.text}`);
          this.print?.(`      -> s${socket.id} text ${JSON.stringify(item.text)}`);
          continue;
        }
        this.note(`f${item.frame.length}`);
        this.print?.(`      -> s${socket.id} ${describeFrame(item.frame.slice().buffer)}`);
        noteShown(socket, item.frame, this.now);
        if (client !== undefined && client.socket === socket && client.wouldConfirm(item.frame)) {
          item.storedClock = this.stored.clock(client.spec.clientId);
        }
      }
    }
  }

  /**
   * The event awaits an outbound fetch (it committed at {@link checkpoint}): workerd runs other
   * events of the object meanwhile (test/worker/runtime-model.test.ts). The schedule's
   * `duringFetch` stream picks none, one or two: the next item a client sent on a socket or an
   * HTTP link, or an API call (a DELETE or a restore among them). One level deep: an event run
   * here does not interleave others at its own fetches.
   */
  private async whileFetching(): Promise<void> {
    const rng = this.fetchRng;
    if (rng === null || !this.inEvent || this.suspended.length > 0) return;
    const count = rng.weighted({ none: 2, one: 2, two: 1 });
    if (count === "none") return;
    const kind = this.currentKind;
    this.suspended.push(kind);
    this.print?.("    (while the fetch is out)");
    const beside = (async () => {
      for (let i = 0; i < (count === "one" ? 1 : 2) && this.alive; i++) await this.runBesideFetch(rng);
    })();
    this.beside = beside;
    try {
      await beside;
    } finally {
      this.beside = null;
      this.suspended.pop();
      this.currentKind = kind;
      this.note("resume");
      this.print?.("    (the fetch is answered)");
    }
    // An object that died meanwhile took the waiting handler with it.
    if (this.core === null) throw new SimulatedKill();
  }

  /** Whether the object is in memory and its process has not reached an armed kill. */
  private get alive(): boolean {
    return this.core !== null && !this.storage.killReached;
  }

  /** One event beside a fetch: a client's next frame or request, or an API call. */
  private async runBesideFetch(rng: Prng): Promise<void> {
    // An event starts on a turn of the event loop: the waiting handler's other branches
    // (deliveries run side by side) first run until they wait too, and what they wrote commits,
    // as workerd's implicit transaction does. Never in the middle of another event's microtasks.
    await new Promise((resolve) => setImmediate(resolve));
    // The waiting handler's branches may have reached the kill meanwhile: a dead process runs nothing more.
    if (!this.alive) return;
    this.checkpoint();
    this.besideFetch++;
    const sockets = this.host.webSockets().filter((socket) => socket.toServer.length > 0);
    const links = this.http.busy().filter((link) => link.toServer.length > 0);
    const what = rng.weighted({ socket: sockets.length > 0 ? 3 : 0, http: links.length > 0 ? 2 : 0, api: 2 });
    this.note(`beside-${what}`);
    if (what === "socket") return this.deliverToServer(rng.pick(sockets));
    if (what === "http") return this.http.deliverRequest(rng.pick(links));
    const call = rng.weighted({ destroy: 1, restoreVersion: 1, replaceText: 1, applyUpdate: 1 });
    switch (call) {
      case "destroy":
        return this.api({ op: "destroy" });
      case "restoreVersion":
        return this.api({ op: "restoreVersion", pick: rng.next() });
      case "replaceText":
        return this.api({ op: "replaceText", at: rng.next(), remove: rng.int(0, 4), insert: rng.text(6) });
      case "applyUpdate":
        return this.api({ op: "applyUpdate", at: rng.next(), insert: rng.text(6), skipPredecessor: false });
    }
  }

  /** The process died: storage rolls back, output is dropped, the core is gone, every socket closes (1006). */
  killProcess(): void {
    this.storage.killEvent();
    if (this.logsAtKill !== null) this.logs.length = this.logsAtKill;
    this.logsAtKill = null;
    this.inEvent = false;
    for (const socket of this.host.kill()) {
      if (!socket.clientGone) socket.toClient.push({ close: { code: 1006, reason: "" } });
    }
    this.http.kill();
    this.core = null;
    this.overdueStreak = 0;
    this.note("kill");
  }

  /** The core's figures, read between events on committed storage; null (and a violation) if it cannot say. */
  figures(): CoreFigures | null {
    if (this.core === null) return null;
    try {
      const { value, wrote } = this.storage.read(() => this.core!.inspect());
      if (wrote) this.violate("inspect", "inspect() wrote to storage");
      return value;
    } catch (error) {
      this.violate("inspect", `inspect() threw: ${describe(error)}`);
      return null;
    }
  }

  /**
   * After every committed event: bounds, and the alarm covering every due duty. Alarm
   * violations are named by what the event was (a wake, a throw, a DELETE), so that shrinking
   * keeps to one cause and --ignore can set a known one aside while looking for others.
   */
  private afterEvent(label: string, woke: boolean, threw: boolean): void {
    const figures = this.figures();
    if (figures === null) return;
    // An alarm run waiting for its fetch has the alarm cleared; it sets it again when it ends
    // (and a run that dies is retried): its own end is checked then.
    const alarmRunning = this.suspended.includes("alarm");
    const maxHeld = HELD_UPDATES_MAX_BYTES + this.config.limits.maxFrameBytes;
    if (figures.pendingBytes > MAX_PENDING_UPDATE_BYTES) this.violate("bounds", `pendingBytes ${figures.pendingBytes} > MAX_PENDING_UPDATE_BYTES ${MAX_PENDING_UPDATE_BYTES}`);
    if (figures.heldBytes > maxHeld) this.violate("bounds", `heldBytes ${figures.heldBytes} > HELD_UPDATES_MAX_BYTES + maxFrameBytes ${maxHeld}`);
    if (figures.openSessions > this.config.limits.maxSocketsPerRoom) {
      this.violate("bounds", `openSessions ${figures.openSessions} > maxSocketsPerRoom ${this.config.limits.maxSocketsPerRoom}`);
    }
    if (figures.nextDue !== null && !alarmRunning) {
      const alarm = this.storage.alarm;
      // An overdue duty is served by any alarm at or before now.
      if (alarm === null || alarm > Math.max(figures.nextDue, this.now)) {
        const context = woke
          ? "alarm:wake"
          : threw
            ? "alarm:after-throw"
            : this.storage.lastFault
              ? "alarm:after-fault"
              : label === "api destroy"
                ? "alarm:after-destroy"
                : "alarm";
        this.violate(context, `a duty is due at ${this.rel(figures.nextDue)} but the alarm is ${alarm === null ? "not set" : `set for ${this.rel(alarm)}`} (${this.dutyReport()})`);
      }
    }
    const quiet = this.quietFigures();
    if (quiet === null) return;
    this.checkQuietPresenceHeld(quiet);
    this.checkVanished(quiet);
    this.checkIdleDuties(figures, quiet);
  }

  /** The room's view of quiet clients and its duties (read like inspect(), between events); null when the core cannot say. */
  private quietFigures(): QuietFigures | null {
    const core = this.core;
    if (core?.quiet === undefined) return null;
    try {
      return this.storage.read(() => core.quiet!()).value;
    } catch (error) {
      this.violate("inspect", `the quiet figures threw: ${describe(error)}`);
      return null;
    }
  }

  /**
   * quiet-presence-held: the room keeps a quiet client's presence while its socket is open,
   * however long it is silent. Only its end (a close, the room closing it) or the client's own
   * removal takes it away; the room closing it 4000 is judged by quiet-probe-judged.
   */
  private checkQuietPresenceHeld(quiet: QuietFigures): void {
    const held = new Map<SimSocket, Set<number>>();
    for (const [clientId, socket] of quiet.quietPresence) {
      if (!(socket instanceof SimSocket)) continue;
      const ids = held.get(socket) ?? new Set<number>();
      held.set(socket, ids.add(clientId));
    }
    for (const [socket, before] of this.quietHeld) {
      const lost = [...before].filter((clientId) => !held.get(socket)?.has(clientId));
      if (lost.length === 0 || socket.closedByCore !== null || socket.state !== "open" || socket.ending || socket.ownRemovalSent) continue;
      this.violate(
        "quiet-presence-held",
        `the room dropped client ${lost.join(", ")}'s presence while its quiet socket s${socket.id} was open (last sign of life ${this.rel(socket.lastSignAt)}, probes ${socket.probes.map((at) => this.rel(at)).join(", ") || "none"})`,
      );
    }
    this.quietHeld = held;
  }

  /**
   * quiet-probe-judged: a quiet socket closed 4000 showed no sign of life (a frame, or a ping the
   * runtime answered) for QUIET_PROBE_GRACE_MS after a probe the room sent it.
   */
  private checkQuietClose(socket: SimSocket, close: { code: number; reason: string }): void {
    if (!socket.quiet || close.code !== 4000) return;
    const judged = socket.probes.some((probedAt) => probedAt <= this.now - QUIET_PROBE_GRACE_MS && socket.lastSignAt < probedAt);
    if (judged) return;
    this.violate(
      "quiet-probe-judged",
      `quiet socket s${socket.id} was closed 4000 (${close.reason}) but its last sign of life was ${this.rel(socket.lastSignAt)} (runtime's last pong ${socket.lastPingAt === null ? "never" : this.rel(socket.lastPingAt)}) and its probes ${socket.probes.map((at) => this.rel(at)).join(", ") || "none"}`,
    );
  }

  /**
   * quiet-vanished: a quiet client whose connection vanished unnoticed (nothing arrives, the
   * runtime reports nothing) is closed, and its presence removed for everyone, by the first check
   * QUIET_PROBE_GRACE_MS after the first check QUIET_PROBE_AFTER_MS after its last sign of life.
   * Checked after each event in which the room checked its quiet sockets.
   */
  private checkVanished(quiet: QuietFigures): void {
    if (quiet.checkedAt !== this.now) return;
    for (const socket of this.host.webSockets()) {
      if (socket.vanishedAt === null || socket.closedByCore !== null) continue;
      const view = quiet.sockets.find((entry) => entry.socket === socket);
      if (view === undefined || !view.quiet || !view.joined) continue;
      const firstCheck = this.vanishedCheck.get(socket);
      if (firstCheck === undefined) {
        if (this.now - socket.lastSignAt >= QUIET_PROBE_AFTER_MS) this.vanishedCheck.set(socket, this.now);
        continue;
      }
      if (this.now < firstCheck + QUIET_PROBE_GRACE_MS) continue;
      this.violate(
        "quiet-vanished",
        `quiet socket s${socket.id} vanished ${this.rel(socket.vanishedAt)} (last sign of life ${this.rel(socket.lastSignAt)}), was first checked after ${QUIET_PROBE_AFTER_MS / 1000} s at ${this.rel(firstCheck)}, and is still open at a check ${QUIET_PROBE_GRACE_MS / 1000} s after that (probed ${view.probedAt === null ? "never" : this.rel(view.probedAt)})`,
      );
      this.vanishedCheck.delete(socket);
    }
  }

  /**
   * quiet-idle-duty: a room whose open sockets are all quiet clients that joined, which has heard
   * no frame since its last check and has no work (nothing held or waiting, no version, session
   * end, compaction or webhook due), wakes itself only for the periodic check,
   * QUIET_CHECK_INTERVAL_MS after the last one, or for an outstanding probe's deadline.
   */
  private checkIdleDuties(figures: CoreFigures, quiet: QuietFigures): void {
    const { checkedAt, duties, sockets } = quiet;
    if (checkedAt === null || figures.nextDue === null || sockets.length === 0) return;
    if (!sockets.every((entry) => entry.quiet && entry.joined) || this.lastClientFrameAt >= checkedAt) return;
    if (figures.heldBytes > 0 || figures.pendingBytes > 0) return;
    if (["versions", "session-end", "compaction", "webhooks"].some((name) => duties[name] != null)) return;
    const deadlines = sockets.flatMap((entry) => (entry.probedAt === null ? [] : [entry.probedAt + QUIET_PROBE_GRACE_MS]));
    const earliest = deadlines.length > 0 ? Math.min(...deadlines) : checkedAt + QUIET_CHECK_INTERVAL_MS;
    if (figures.nextDue >= earliest) return;
    this.violate(
      "quiet-idle-duty",
      `an idle room of ${sockets.length} quiet clients last checked at ${this.rel(checkedAt)} is next due at ${this.rel(figures.nextDue)}, before ${deadlines.length > 0 ? "its probe's deadline" : "the periodic check"} at ${this.rel(earliest)} (${this.dutyReport()})`,
    );
  }

  /**
   * quiet-renewed: a frame from a renewing socket (a stock provider's) reached the room, so every
   * quiet client's state the room holds was shown to that socket within
   * QUIET_RENEWAL_INTERVAL_MS (renewed now, or lately). A stock provider drops a state no newer
   * clock renewed for 30 s, and its own renewals (every 15 s) are what the room renews on.
   */
  private checkQuietRenewed(socket: SimSocket): void {
    // A socket its client no longer reads (or that vanished) is shown nothing any more.
    if (socket.quiet || socket.closedByCore !== null || socket.state !== "open" || socket.clientGone || socket.vanishedAt !== null) return;
    const quiet = this.quietFigures();
    if (quiet === null || !quiet.sockets.some((entry) => entry.socket === socket)) return;
    for (const clientId of quiet.quietPresence.keys()) {
      const shown = socket.shown.get(clientId);
      if (shown?.present === true && shown.at > this.now - QUIET_RENEWAL_INTERVAL_MS) continue;
      this.violate(
        "quiet-renewed",
        `stock socket s${socket.id}'s frame reached the room, but quiet client ${clientId}'s state was ${shown === undefined ? "never shown to it" : shown.present ? `last shown to it ${this.rel(shown.at)}` : `last shown to it as removed ${this.rel(shown.at)}`}`,
      );
    }
  }

  /** Hibernation: the object leaves memory (sockets and storage stay). */
  private hibernate(): void {
    if (this.core !== null) this.print?.("    evicted (hibernation)");
    this.http.evict();
    this.core = null;
    this.overdueStreak = 0;
    this.note("evict");
  }

  /** Each duty's due time, for messages (read like inspect(), between events). */
  dutyReport(): string {
    const core = this.core;
    if (core?.dutyReport === undefined) return "no duty report";
    try {
      return this.storage.read(() => core.dutyReport!()).value;
    } catch (error) {
      return `duty report threw: ${describe(error)}`;
    }
  }

  /** A time relative to the last event, for messages. */
  rel(time: number): string {
    const delta = time - this.now;
    return `now${delta >= 0 ? "+" : ""}${delta}ms`;
  }

  // --- Sockets -------------------------------------------------------------------------------------

  /**
   * The client opens a connection. The upgrade request wakes the object first (its constructor
   * runs before the socket exists, as in the Durable Object shell's fetch), then the runtime
   * accepts the socket and the core handles the connect.
   */
  async connect(client: SimClient): Promise<void> {
    if (client.socket !== null) return;
    client.grant = client.freshGrant(this.now);
    if (client.transport === "http") return this.http.connect(client);
    let socket: SimSocket | null = null;
    const quiet = client.quietOnWebSocket;
    const result = await this.event(`connect c${client.index} s${this.host.nextSocketId}${quiet ? " quiet" : ""}`, "connect", (core) => {
      socket = this.host.accept(client.index);
      socket.quiet = quiet;
      return core.connect(socket, client.grant, quiet);
    });
    const accepted = socket as SimSocket | null;
    if (result.killed || accepted === null) {
      client.openFailed(this.now);
      return;
    }
    if (result.threw) {
      // The upgrade answered 500: the client never opened.
      this.host.remove(accepted);
      client.openFailed(this.now);
      return;
    }
    client.open(accepted, this.now, quiet);
  }

  /** The client's connection vanishes unnoticed (a WebSocket; an HTTP connection drops instead). */
  vanish(client: SimClient): void {
    const socket = client.socket;
    if (!(socket instanceof SimSocket)) return client.dropConnection(this.now, false);
    this.print?.(`    s${socket.id} vanished`);
    this.note("vanish");
    socket.vanish(this.now);
  }

  /** Delivers the next item a client sent on `socket` to the core. */
  async deliverToServer(socket: SimSocket): Promise<void> {
    const item = socket.toServer.shift();
    if (item === undefined || socket.state === "closed") return;
    if ("data" in item) return item.data === PING ? this.autoRespond(socket) : this.deliverFrame(socket, item);
    // Half the time the runtime has already stopped listing the socket when the close handler
    // runs (room.ts expiryDue: "the runtime may stop listing it before that").
    socket.ending = true;
    const unlistFirst = socket.id % 2 === 0;
    if (unlistFirst) this.host.remove(socket);
    const end: SocketEnd = "close" in item ? { ...item.close, wasClean: true } : item.drop === "close" ? { code: 1006, reason: "", wasClean: false } : { error: new Error("Network connection lost.") };
    const result = await this.event(`closed c${socket.client} s${socket.id} ${"code" in end ? end.code : "error"}`, "socket", (core) => core.closed(socket, end));
    socket.endReported = true;
    if (!result.killed) this.host.remove(socket);
  }

  /** The runtime answers `ping` itself: no event (the object neither wakes nor hears it). */
  private autoRespond(socket: SimSocket): void {
    const answered = socket.autoRespond(this.now);
    this.note(answered ? "pong" : "ping-unanswered");
    this.print?.(`    c${socket.client} s${socket.id} ping: ${answered ? "the runtime answers pong" : "not answered (the room closed the socket)"}`);
  }

  private async deliverFrame(socket: SimSocket, item: ToServer & { data: ArrayBuffer | string }): Promise<void> {
    const afterClose = socket.closedByCore !== null;
    const before = afterClose ? this.documentState() : null;
    socket.lastSignAt = this.now;
    this.lastClientFrameAt = this.now;
    const own = ownPresence(item.data, this.clients[socket.client]?.spec.clientId);
    if (own !== undefined) socket.ownRemovalSent = own === null;
    const result = await this.event(`message c${socket.client} s${socket.id} ${describeFrame(item.data)}`, "socket", (core) => core.message(socket, item.data));
    if (!result.killed) this.checkQuietRenewed(socket);
    if (before === null || result.killed) return;
    const after = this.documentState();
    if (after !== before) {
      this.violate("closed-means-closed", `a frame from socket s${socket.id}, which the room closed (${socket.closedByCore?.code}), changed the document: ${before} -> ${after}`);
    }
  }

  /** The document's state vector as the core holds it (or storage, when not loaded), as text. */
  documentState(): string {
    const vector = this.figures()?.stateVector ?? null;
    const map = vector === null ? this.stored.document().stateVector : Y.decodeStateVector(vector);
    return [...map].sort(([a], [b]) => a - b).map(([client, clock]) => `${client}:${clock}`).join(",");
  }

  /** Delivers the next item the room sent on `socket` to its client. */
  deliverToClient(socket: SimSocket): void {
    const item = socket.toClient.shift();
    if (item === undefined || socket.clientGone) return;
    const client = this.clients[socket.client];
    if (client === undefined || client.socket !== socket) return;
    this.note("close" in item ? `rxclose${item.close.code}` : "rx");
    if (this.print) this.print(`    c${client.index} s${socket.id} <- ${"close" in item ? `close ${item.close.code} ${item.close.reason}` : "text" in item ? `text ${JSON.stringify(item.text)}` : describeFrame(item.frame.slice().buffer)}`);
    client.receive(item, this.now);
  }

  /** Sockets with something queued for client `c` or from it, oldest first. */
  socketsOf(c: number): SimSocket[] {
    return this.host.everySocket().filter((socket) => socket.client === c && socket.inFlight > 0);
  }

  async deliver(step: Extract<Step, { k: "deliver" }>): Promise<void> {
    const sockets = this.socketsOf(step.c);
    // A client on the HTTP fallback has links instead (after a change of transport, both).
    const links = this.http.busy(step.c);
    const count = sockets.length + links.length;
    if (count === 0) return;
    const pick = Math.min(count - 1, Math.floor(step.pick * count));
    if (pick >= sockets.length) return this.http.deliver(links[pick - sockets.length]!, step);
    const socket = sockets[pick]!;
    for (let i = 0; i < step.n; i++) {
      const out = step.dir === "out" || (step.dir === "both" && i % 2 === 0);
      if (out && socket.toClient.length > 0 && !socket.clientGone) this.deliverToClient(socket);
      else if (socket.toServer.length > 0 && socket.state !== "closed") await this.deliverToServer(socket);
      else if (step.dir === "both" && socket.toClient.length > 0 && !socket.clientGone) this.deliverToClient(socket);
      else break;
    }
  }

  /** Delivers everything in flight, round robin over sockets, each socket's items in order. Returns whether it finished. */
  async deliverAll(): Promise<boolean> {
    let moved = 0;
    for (;;) {
      const sockets = this.host.everySocket().filter((socket) => socket.inFlight > 0);
      if (sockets.length === 0 && this.http.inFlight === 0) return true;
      for (const socket of sockets) {
        // Stop at the first violation: what follows is noise, and shrinking wants it fast.
        if (this.violations.length > 0) return true;
        if (!socket.clientGone && socket.toClient.length > 0) this.deliverToClient(socket);
        if (socket.state !== "closed" && socket.toServer.length > 0) await this.deliverToServer(socket);
        if (++moved > MAX_DELIVERIES) return false;
      }
      this.host.prune();
      moved += await this.http.deliverRound(() => this.violations.length > 0);
      if (this.violations.length > 0) return true;
      if (moved > MAX_DELIVERIES) return false;
    }
  }

  get inFlight(): number {
    return this.host.everySocket().reduce((sum, socket) => sum + socket.inFlight, 0) + this.http.inFlight;
  }

  // --- Time, alarms, hibernation ---------------------------------------------------------------------

  /** Client timers due now; clients that want a connection get one. */
  async runClientTimers(): Promise<void> {
    for (const client of this.clients) {
      client.runTimers(this.now);
      if (client.wantsToConnect(this.now)) await this.connect(client);
    }
  }

  /**
   * Moves the clock forward by `ms`. With `alarms`, the runtime fires the alarm on time on the
   * way (without, it is late). Client timers run in time order, unless the jump is long: then
   * the clients' machines sleep through it and their timers run once at the end.
   */
  async advance(ms: number, alarms: boolean, budget: AlarmBudget = { left: MAX_ALARMS_PER_ADVANCE }): Promise<void> {
    const target = this.now + ms;
    const sleeping = ms > CLIENTS_SLEEP_OVER_MS;
    for (let guard = 0; guard < 100_000 && this.violations.length === 0; guard++) {
      const alarm = alarms && budget.left > 0 ? this.storage.alarm : null;
      const clientNext = sleeping ? Infinity : Math.min(...this.clients.map((client) => client.nextTimer()));
      // The Worker ends a held poll on time, whether or not the client's machine sleeps.
      const holdEnd = this.http.nextHoldEnd();
      const next = Math.min(alarm ?? Infinity, clientNext, holdEnd, target);
      this.host.time = Math.max(this.now, next);
      if (alarm !== null && alarm <= this.now) {
        budget.left--;
        await this.fireAlarm("due");
        continue;
      }
      if (holdEnd <= this.now) this.http.endHolds(this.now);
      if (!sleeping) await this.runClientTimers();
      if (this.now >= target) break;
    }
    if (sleeping) await this.runClientTimers();
  }

  /**
   * Time passes with everyone awake and the network working: the clock moves from timer to timer
   * (client timers, the alarm on time, held polls ending), everything in flight is delivered
   * after each, and the object hibernates once it has had no event for
   * {@link HIBERNATE_AFTER_IDLE_MS} (a due alarm fires first), as Durable Objects do. The whole
   * step shares one budget of alarm runs with `advance` ({@link MAX_ALARMS_PER_ADVANCE}); past it
   * the alarm is late, as after an `advance` step's budget, and an object with an overdue alarm
   * does not hibernate (the runtime would fire it first).
   */
  async idle(ms: number): Promise<void> {
    const target = this.now + ms;
    const budget: AlarmBudget = { left: MAX_ALARMS_PER_ADVANCE };
    for (let turn = 0; turn < MAX_IDLE_TURNS && this.violations.length === 0; turn++) {
      if (!(await this.deliverAll())) return;
      const alarm = this.storage.alarm;
      const hibernatesAt = this.lastEventAt + HIBERNATE_AFTER_IDLE_MS;
      if (this.core !== null && this.now >= hibernatesAt && (alarm === null || alarm > this.now) && !this.http.holdsPolls) this.hibernate();
      if (this.now >= target) return;
      const clientNext = Math.min(...this.clients.map((client) => client.nextTimer()));
      // Past the budget the alarm is not waited for, and a hibernation time already passed (an
      // overdue alarm or a held poll kept the object) is no time to wait for either: turns that
      // move no clock would only spin.
      const onTime = budget.left > 0 ? (alarm ?? Infinity) : Infinity;
      const awake = this.core !== null && hibernatesAt > this.now ? hibernatesAt : Infinity;
      const next = Math.min(onTime, clientNext, this.http.nextHoldEnd(), awake, target, this.now + CLIENTS_SLEEP_OVER_MS);
      await this.advance(Math.max(0, next - this.now), true, budget);
    }
  }

  /**
   * The runtime runs the alarm handler. It clears the alarm as it starts (the handler may set
   * it again); a run that dies is retried, so a kill rolls the clearing back too.
   */
  async fireAlarm(how: "due" | "early"): Promise<void> {
    const scheduled = this.storage.alarm;
    if (scheduled === null) return;
    const firedAt = this.now;
    const dueBefore = this.figures()?.nextDue ?? null;
    const logsBefore = this.logs.length;
    const besideBefore = this.besideFetch;
    const result = await this.event(`alarm (${how}, set for ${this.rel(scheduled)})`, "alarm", (core) => core.alarm(), () => this.storage.clearAlarmForRun());
    if (result.killed) {
      // A run that died did not complete: the runtime fires it again (an outbound request in
      // the run may have committed the clearing already, which the rollback cannot undo).
      if (this.storage.alarm === null) this.storage.restoreAlarm(scheduled);
      return;
    }
    if (result.threw && this.storage.alarm === null) {
      // The runtime retries a failed alarm handler with backoff.
      this.storage.restoreAlarm(this.now + 2_000);
    }
    // Events that ran while it awaited a delivery (a DELETE carrying events over) can add duties as fast as it serves them.
    if (this.besideFetch !== besideBefore) this.overdueStreak = 0;
    else this.checkAlarmProgress(dueBefore, firedAt, this.logs.slice(logsBefore));
  }

  /**
   * A duty the alarm fired for must move forward: overdue before the run and still overdue
   * after it, twice in a row, with no failure (backoff) and no batch bound logged, is a duty the
   * alarm cannot make progress on, which would keep the object awake firing at once forever.
   */
  private checkAlarmProgress(dueBefore: number | null, firedAt: number, logs: CapturedLog[]): void {
    if (dueBefore === null || dueBefore > firedAt) return;
    const dueAfter = this.figures()?.nextDue ?? null;
    if (dueAfter === null || dueAfter > firedAt) {
      this.overdueStreak = 0;
      return;
    }
    const backoff = logs.some((log) => log.event.endsWith("_failed") || log.event === "room_error" || log.event === "webhook_retry");
    const attempts = logs.filter((log) => log.event.startsWith("webhook_")).length;
    if (backoff || attempts >= MAX_WEBHOOK_DELIVERIES_PER_ALARM) {
      this.overdueStreak = 0;
      return;
    }
    this.overdueStreak++;
    if (this.overdueStreak >= 2) {
      this.violate("alarm-progress", `a duty due at ${this.rel(dueBefore)} is still due at ${this.rel(dueAfter)} after ${this.overdueStreak} alarm runs in a row, with no failure logged (${this.dutyReport()})`);
      this.overdueStreak = 0;
    }
  }

  /**
   * Hibernation: the runtime drops the object once it has had no event for
   * {@link HIBERNATE_AFTER_IDLE_MS} (firing a due alarm first). Sockets and storage stay; the
   * next event constructs a new core from them.
   */
  async evict(): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const alarm = this.storage.alarm;
      if (alarm !== null && alarm <= this.now) {
        await this.fireAlarm("due");
        continue;
      }
      // A held poll is a request in progress: the object stays until the Worker ends it.
      const idleUntil = Math.max(this.lastEventAt + HIBERNATE_AFTER_IDLE_MS, this.http.holdsPolls ? this.http.nextHoldEnd() : 0);
      if (this.now >= idleUntil && !this.http.holdsPolls) return this.hibernate();
      await this.advance(idleUntil - this.now, true);
    }
  }

  // --- Save confirmations ----------------------------------------------------------------------------

  /** confirmed ⇒ stored: the echo that confirmed `barrier` was released when storage held the client's edits. */
  private onConfirmed(client: SimClient, barrier: Barrier, item: FrameToClient): void {
    this.print?.(`      c${client.index} confirmed ${barrier.edits} edits (own clock ${barrier.docClock})`);
    // A read-only client's edits are refused by design (it was told so, permission denied);
    // its SaveTracker counting them as saved is the app's concern (a reader's editor is read-only).
    if (client.spec.mode === "read") return;
    const stored = item.storedClock;
    if (stored === undefined) {
      this.violate("confirmed-stored", `client ${client.index} confirmed clock ${barrier.docClock} from a frame not measured at release`);
      return;
    }
    if (stored < barrier.docClock) {
      this.violate(
        "confirmed-stored",
        `client ${client.index} was told its edits up to clock ${barrier.docClock} are saved, but storage held only up to ${stored} when the echo was released`,
      );
    }
  }

  // --- HTTP API ------------------------------------------------------------------------------------------

  async api(call: ApiCall): Promise<void> {
    // A request takes time: two calls never share a millisecond, so two events never carry identical bodies by accident.
    this.host.time += 1;
    switch (call.op) {
      case "applyUpdate": {
        const stored = this.stored.document();
        Y.applyUpdate(this.apiDoc, stored.update);
        const text = this.apiDoc.getText(SHARED_TEXT);
        const before = Y.encodeStateVector(this.apiDoc);
        let update: Uint8Array;
        text.insert(codePointRange(text.toString(), call.at, 0).index, call.insert);
        if (call.skipPredecessor) {
          const middle = Y.encodeStateVector(this.apiDoc);
          text.insert(0, call.insert);
          update = Y.encodeStateAsUpdate(this.apiDoc, middle);
        } else {
          update = Y.encodeStateAsUpdate(this.apiDoc, before);
        }
        const result = await this.event("api applyUpdate", "rpc", (core) => core.applyUpdate(update, "api"));
        if (result.killed || result.threw || !result.value.ok) return;
        if (!result.value.value.pending) this.checkStoredCovers(update, "applyUpdate answered ok");
        return;
      }
      case "replaceText": {
        const current = this.stored.document().text;
        const { index, length } = codePointRange(current, call.at, call.remove);
        const next = current.slice(0, index) + call.insert + current.slice(index + length);
        const result = await this.event("api replaceText", "rpc", (core) => core.replaceText(next, "api"));
        if (result.killed || result.threw || !result.value.ok) return;
        const stored = this.stored.document().text;
        if (stored !== next) this.violate("api-stored", `replaceText answered ok but storage holds ${JSON.stringify(stored.slice(0, 80))}, not ${JSON.stringify(next.slice(0, 80))}`);
        return;
      }
      case "saveVersion":
        await this.event("api saveVersion", "rpc", (core) => core.saveVersion(call.name));
        return;
      case "restoreVersion":
      case "deleteVersion": {
        const ids = this.stored.versionIds();
        if (ids.length === 0) return;
        const id = ids[Math.min(ids.length - 1, Math.floor(call.pick * ids.length))]!;
        if (call.op === "deleteVersion") {
          await this.event(`api deleteVersion ${id}`, "rpc", (core) => core.deleteVersion(id));
          return;
        }
        const versionText = this.stored.versionText(id);
        const result = await this.event(`api restoreVersion ${id}`, "rpc", (core) => core.restoreVersion(id, "api"));
        if (result.killed || result.threw || !result.value.ok || !result.value.value.changed || versionText === null) return;
        const stored = this.stored.document().text;
        if (stored !== versionText) this.violate("api-stored", `restoreVersion(${id}) answered changed, but storage holds ${JSON.stringify(stored.slice(0, 80))}, not the version's ${JSON.stringify(versionText.slice(0, 80))}`);
        return;
      }
      case "destroy": {
        const open = this.host.webSockets().filter((socket) => socket.closedByCore === null);
        const sessions = this.http.openSessions();
        const result = await this.event("api destroy", "rpc", (core) => core.destroy());
        if (result.killed || result.threw) return;
        const stored = this.stored.document();
        if (stored.exists || stored.text !== "") this.violate("api-stored", "after DELETE the document is still stored");
        for (const socket of open) {
          if (socket.state === "closed" || socket.endReported) continue;
          // A socket whose token had expired may be closed for that first (4401).
          if (socket.closedByCore?.code === 4401) continue;
          if (socket.closedByCore?.code !== 4410) this.violate("api-stored", `after DELETE socket s${socket.id} was not closed with 4410 (${socket.closedByCore?.code ?? "still open"})`);
        }
        for (const session of sessions) {
          // As for sockets: 4410, or 4401 for a token that had expired.
          if (session.ended?.code === 4410 || session.ended?.code === 4401) continue;
          this.violate("api-stored", `after DELETE HTTP session ${session.id} was not closed with 4410 (${session.ended?.code ?? "still open"})`);
        }
        return;
      }
      case "read":
        await this.event(`api read ${call.what}`, "rpc", async (core) => {
          switch (call.what) {
            case "text":
              return core.text("sim-reader");
            case "update":
              return core.encodeUpdate("sim-reader");
            case "stats":
              return core.stats();
            case "versions":
              return core.versions();
            case "webhooks":
              return core.webhookEvents();
          }
        });
    }
  }

  /** After an HTTP write answered ok, storage holds every struct of `update`. */
  private checkStoredCovers(update: Uint8Array, what: string): void {
    const stored = this.stored.document().stateVector;
    // parseUpdateMeta, not encodeStateVectorFromUpdate: that one leaves out clients whose structs do not start at clock 0.
    for (const [client, clock] of Y.parseUpdateMeta(update).to) {
      if ((stored.get(client) ?? 0) < clock) this.violate("api-stored", `${what}, but storage holds client ${client} only up to ${stored.get(client) ?? 0} < ${clock}`);
    }
  }

  // --- Adversaries ----------------------------------------------------------------------------------------

  attack(client: SimClient, attack: Attack): void {
    if (client.socket === null) return;
    client.tainted = true;
    const maxFrame = this.config.limits.maxFrameBytes;
    switch (attack.kind) {
      case "missingDeps": {
        // A later update of another document, sent without its predecessor.
        const entry = this.withheld.get(client.index) ?? { doc: privateDoc(client.spec.clientId), predecessor: null };
        this.withheld.set(client.index, entry);
        const text = entry.doc.getText(SHARED_TEXT);
        const start = Y.encodeStateVector(entry.doc);
        text.insert(0, attack.insert);
        const middle = Y.encodeStateVector(entry.doc);
        entry.predecessor = Y.encodeStateAsUpdate(entry.doc, start);
        text.insert(text.length, attack.insert);
        client.sendRaw(syncFrame(SyncMessageType.update, Y.encodeStateAsUpdate(entry.doc, middle)));
        return;
      }
      case "completeDeps": {
        const entry = this.withheld.get(client.index);
        if (entry?.predecessor) client.sendRaw(syncFrame(SyncMessageType.update, entry.predecessor));
        if (entry) entry.predecessor = null;
        return;
      }
      case "oversized":
        client.sendRaw(syncFrame(SyncMessageType.update, new Uint8Array(maxFrame)));
        return;
      case "malformed": {
        const bytes = new Prng(attack.seed).fill(new Uint8Array(attack.bytes));
        client.sendRaw(bytes.buffer as ArrayBuffer);
        return;
      }
      case "truncated": {
        const whole = syncFrame(SyncMessageType.update, Y.encodeStateAsUpdate(client.doc));
        const cut = Math.max(1, Math.floor(attack.cut * whole.byteLength));
        client.sendRaw(whole.slice(0, cut));
        return;
      }
      case "text":
        client.sendRaw("hello");
        return;
      case "spoof": {
        // Client IDs it has heard of (a rogue learns them from the presence the room relays), with newer clocks.
        const others = [...client.awareness.getStates().keys()].filter((id) => id !== client.spec.clientId);
        if (others.length === 0) return;
        client.sendRaw(awarenessFrame(others.map((id) => ({ id, clock: 1_000 + (id % 7), state: attack.state }))));
        return;
      }
      case "badAwareness":
        client.sendRaw(awarenessFrame([{ id: client.spec.clientId, clock: 10_000, state: attack.tooLarge ? JSON.stringify({ pad: "x".repeat(9_000) }) : "{not json" }]));
        return;
    }
  }
}

/** Records, at release, what an awareness frame showed `socket`'s client of each client ID's presence. */
function noteShown(socket: SimSocket, frame: Uint8Array, now: number): void {
  if (frame[0] !== MessageType.awareness) return;
  try {
    const decoder = decoding.createDecoder(frame);
    decoding.readVarUint(decoder);
    for (const entry of decodeAwarenessUpdate(decoding.readVarUint8Array(decoder))) socket.shown.set(entry.clientId, { at: now, present: entry.state !== null });
  } catch {
    // Not an awareness update the client could read: the protocol invariant reports it there.
  }
}

/** The client's own presence in a frame it sends: its state's JSON, null for its removal, undefined when the frame has none. */
function ownPresence(data: ArrayBuffer | string, clientId: number | undefined): string | null | undefined {
  if (typeof data === "string" || clientId === undefined) return undefined;
  const bytes = new Uint8Array(data);
  if (bytes[0] !== MessageType.awareness) return undefined;
  try {
    const decoder = decoding.createDecoder(bytes);
    decoding.readVarUint(decoder);
    return decodeAwarenessUpdate(decoding.readVarUint8Array(decoder)).find((entry) => entry.clientId === clientId)?.state;
  } catch {
    return undefined;
  }
}

/** The private document a rogue makes updates with missing dependencies from (its own client ID, offset). */
function privateDoc(clientId: number): Y.Doc {
  const doc = new Y.Doc({ gc: true });
  doc.clientID = (clientId ^ 0x5bd1e995) >>> 0;
  return doc;
}

function syncFrame(syncType: number, payload: Uint8Array): ArrayBuffer {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MessageType.sync);
  encoding.writeVarUint(encoder, syncType);
  encoding.writeVarUint8Array(encoder, payload);
  return encoding.toUint8Array(encoder).slice().buffer;
}

function awarenessFrame(entries: { id: number; clock: number; state: string }[]): ArrayBuffer {
  const inner = encoding.createEncoder();
  encoding.writeVarUint(inner, entries.length);
  for (const { id, clock, state } of entries) {
    encoding.writeVarUint(inner, id);
    encoding.writeVarUint(inner, clock);
    encoding.writeVarString(inner, state);
  }
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MessageType.awareness);
  encoding.writeVarUint8Array(encoder, encoding.toUint8Array(inner));
  return encoding.toUint8Array(encoder).slice().buffer;
}

export function describeFrame(data: ArrayBuffer | string): string {
  if (typeof data === "string") return `text(${data.length})`;
  const bytes = new Uint8Array(data);
  const names: Record<string, string> = { "0,0": "step1", "0,1": "step2", "0,2": "update", "1": "awareness", "3": "query" };
  const name = names[`${bytes[0]},${bytes[1]}`] ?? names[String(bytes[0])] ?? "binary";
  if (name === "awareness") {
    // Who and which clock: enough to follow presence rules in a trace.
    try {
      const decoder = decoding.createDecoder(bytes);
      decoding.readVarUint(decoder);
      const entries = decodeAwarenessUpdate(decoding.readVarUint8Array(decoder));
      return `awareness(${entries.map((entry) => `${entry.clientId}@${entry.clock}${entry.state === null ? "=null" : ""}`).join(" ")})`;
    } catch {
      return `awareness(malformed ${bytes.byteLength}B)`;
    }
  }
  return `${name}(${bytes.byteLength}B)`;
}

export function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}
