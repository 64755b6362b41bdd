/**
 * The room's core: one document and every socket editing it, in plain TypeScript. It talks to
 * the runtime only through worker/room/ports.ts, so the same code runs in the Durable Object
 * (worker/room/index.ts) and in the simulation (sim/). docs/architecture.md draws the modules.
 *
 * Built for hibernation: each socket's identity, access and presence live in its attachment,
 * and everything in memory is rebuilt from the listed sockets and storage when the object
 * wakes. Timed work is done by duties under one alarm (worker/room/duties.ts).
 *
 * Budgets: every input is bounded before the room spends on it (docs/limits.md). Inbound,
 * per socket: frame size, message and byte rates. Outbound: what a socket asks to be sent
 * (sync answers, presence queries) is charged to it and to the room; one relay may queue at
 * most `MAX_RELAY_BYTES` across the room. The document is loaded only when something needs
 * it, so deleting or expiring a document never loads it.
 */
import type { AccessGrant } from "../access";
import { PresenceRegistry, type ClaimChange } from "../awareness";
import type { RoomLimits } from "../config";
import { RoomDocument } from "../document";
import type { VersionReason } from "../documents";
import { History, type NewVersion } from "../history";
import { HttpReads } from "../http-reads";
import {
  DAY_MS,
  IDLE_COMPACTION_DELAY_MS,
  JOIN_TIMEOUT_MS,
  MAX_CLOSING_SOCKETS,
  ROOM_ANSWER_BURST_BYTES,
  ROOM_ANSWER_BYTES_PER_SECOND,
} from "../limits";
import { logEvent } from "../log";
import { CloseCode, ProtocolError, encodeAwareness, encodeSyncStep1 } from "../protocol";
import { TokenBucket } from "../rate";
import { DocumentStore, dropTables } from "../storage";
import { isBenignTeardownError } from "../teardown";
import { Outbox, type WebhookSettings } from "../webhooks";
import { Duties, DutyAlarm } from "./duties";
import { FrameHandler } from "./frames";
import { QuietClients } from "./quiet-clients";
import type { RoomHost, RoomSocket } from "./ports";
import { roomDuties } from "./room-duties";
import { Sessions, closeQuietly, readAttachment } from "./sessions";
import { UpdateLife } from "./updates";

export interface RoomConfig {
  limits: RoomLimits;
  webhooks: WebhookSettings | null;
}

interface OpenStorage {
  store: DocumentStore;
  history: History;
  /** Null when webhooks are off. */
  outbox: Outbox | null;
}

/** How the runtime reported a socket's end: a close (with its code) or an error. */
export type SocketEnd = { code: number; reason: string; wasClean: boolean } | { error: unknown };

/**
 * Close codes the runtime reports for a connection that is gone (RFC 6455 §7.4.1: 1006, closed
 * without a Close frame; 1015, the TLS handshake failed): no Close frame can reach the peer.
 */
const CONNECTION_GONE_CLOSE_CODES = new Set([1006, 1015]);

/**
 * What the runtime reports for a Close frame that carried no code (RFC 6455 §7.1.5), as a
 * browser's bare `ws.close()` and y-websocket's `disconnect()` send. It may never be sent
 * itself (§7.4.1), but the peer still waits for a Close frame: Chromium keeps the socket
 * CLOSING for about a minute without one.
 */
const NO_STATUS_CLOSE_CODE = 1005;

export class RoomCore<Socket extends RoomSocket = RoomSocket> {
  /** The storage handles, opened at first use: DELETE drops them, and a fault reopening them is retried at the next use. */
  private opened: OpenStorage | null = null;
  readonly presence: PresenceRegistry<Socket>;
  readonly sessions: Sessions<Socket>;
  readonly life: UpdateLife<Socket>;
  /** Whether quiet clients are still there, and their presence renewed for stock providers (worker/room/quiet-clients.ts). */
  readonly quiet: QuietClients<Socket>;
  /** What the whole room may still send in answers (sync step 2, presence queries, HTTP reads). */
  readonly answers: TokenBucket;
  /** HTTP reads: their cache, and their callers' budgets, charged with {@link answers} (docs/limits.md). */
  readonly reads: HttpReads;
  private readonly frames: FrameHandler<Socket>;
  private readonly duties: Duties;
  private readonly dutyAlarm: DutyAlarm;
  /** The Yjs document, loaded at first use ({@link document}). */
  private loadedDocument: RoomDocument | null = null;
  /** Set when synchronous work added something the alarm must be moved earlier for. */
  alarmStale = false;
  /** Set when a socket left: what it was due for (its silence deadline) is gone, so the alarm may move later too. */
  private alarmMayMoveLater = false;
  /** When to compact and take the session-end version because the last socket left, or null. */
  idleWorkDue: number | null = null;
  /**
   * The earliest time a socket may be due to be closed for silence or for not joining. Activity
   * only moves a socket's deadline later, so this is recomputed by the alarm and lowered when a
   * socket joins, not scanned for on every frame.
   */
  socketDeadline: number | null = null;
  /** The document state a session-end version encoded in this alarm, for the compaction after it. */
  encodedThisAlarm: Uint8Array | null = null;

  constructor(
    readonly host: RoomHost<Socket>,
    readonly config: RoomConfig,
  ) {
    this.presence = new PresenceRegistry<Socket>((claims) => this.saveClaims(claims));
    this.presence.restoreClaims(this.store.loadClaims());
    this.sessions = new Sessions(() => host.sockets(), config.limits, this.presence, host.name);
    this.life = new UpdateLife<Socket>({
      document: () => this.document,
      store: () => this.store,
      sessions: this.sessions,
      presence: this.presence,
      now: () => host.now(),
      accepted: (integrated, author) => this.accepted(integrated, author),
      name: host.name,
    });
    this.sessions.hooks = {
      storeBeforeTelling: () => this.life.writeHeld(),
      unconfirmed: (socket) => this.life.isWithheld(socket),
      forget: (socket) => this.socketGone(socket),
    };
    this.answers = new TokenBucket(ROOM_ANSWER_BURST_BYTES, ROOM_ANSWER_BYTES_PER_SECOND, host.now());
    this.reads = new HttpReads(this.answers, {
      document: () => this.document,
      loadedItems: () => this.loadedDocument?.itemCount() ?? 0,
      store: () => this.store,
      history: () => this.history,
      writeHeldUpdates: () => this.life.writeHeld(),
      now: () => host.now(),
    });
    this.quiet = new QuietClients(this.sessions, this.presence, this.answers, host);
    this.frames = new FrameHandler(this);
    this.duties = new Duties(roomDuties(this), host.name);
    this.dutyAlarm = new DutyAlarm(this.duties, host.storage, () => host.now());
    const withheld = this.sessions.restore(host.now());
    this.socketDeadline = this.sessions.nextDeadline(host.now());
    // What waited or was held lived in memory only, so it was lost with the object: ask again.
    this.life.askToResend(withheld);
  }

  /**
   * After construction, before any event (the shell runs it in `blockConcurrencyWhile`): the
   * alarm set before the object left memory may be later than what is due now (sockets that
   * vanished with a restart, presence and deadlines rebuilt from attachment stamps).
   */
  async wake(): Promise<void> {
    // Waking is when quiet clients are judged: nothing they did while the room slept reached it.
    this.quiet.check(this.host.now());
    await this.scheduleAlarm(true);
  }

  get store(): DocumentStore {
    return this.storage().store;
  }

  get history(): History {
    return this.storage().history;
  }

  /** Webhook events not yet delivered, or null when webhooks are off (docs/webhooks.md). */
  get outbox(): Outbox | null {
    return this.storage().outbox;
  }

  /**
   * Mirrors the presence registry's claims to storage. A storage fault here is logged, not
   * thrown: presence goes on from memory, where the claims stay right while the object lives;
   * only a wake after the fault may find a claim stale (a removed one back, a new one missing).
   */
  private saveClaims(claims: readonly ClaimChange[]): void {
    try {
      this.store.saveClaims(claims, this.host.now());
    } catch (error) {
      logEvent("room_error", { room: this.name, error: String(error) });
    }
  }

  get limits(): RoomLimits {
    return this.config.limits;
  }

  get name(): string | undefined {
    return this.host.name;
  }

  /** The room's document, loaded from storage the first time anything needs it. */
  get document(): RoomDocument {
    if (this.loadedDocument === null) {
      const started = Date.now();
      this.loadedDocument = new RoomDocument(this.store, this.limits.maxDocumentBytes);
      logEvent("load", { room: this.name, ms: Date.now() - started, bytes: this.store.statistics().storedBytes });
    }
    return this.loadedDocument;
  }

  /** The document if it is loaded (duties must not load it just to ask). */
  get documentIfLoaded(): RoomDocument | null {
    return this.loadedDocument;
  }

  /** A socket the runtime just accepted (and the Worker authorized): starts the sync handshake. `quiet` for a quiet client (docs/protocol.md). */
  async connect(socket: Socket, grant: AccessGrant, quiet = false): Promise<void> {
    const all = this.host.sockets().length;
    const open = this.sessions.openSockets().length;
    if (open > this.limits.maxSocketsPerRoom || all - open > MAX_CLOSING_SOCKETS) {
      // Accept-then-close, so the client gets a close code and reason rather than a bare HTTP error.
      logEvent("room_full", { room: this.name, sockets: this.limits.maxSocketsPerRoom, closing: all - open });
      this.sessions.refuseNew(socket, `room full: ${this.limits.maxSocketsPerRoom} connections`);
      return;
    }
    const now = this.host.now();
    const session = this.sessions.open(socket, grant, now, quiet);
    // Before anything can fail: a socket the room could not greet (a storage fault) is still closed if it never joins.
    this.socketDeadline = Math.min(this.socketDeadline ?? Infinity, now + JOIN_TIMEOUT_MS);
    try {
      // Written before the state vector is encoded: a failed write goes back to what is stored,
      // and the joiner must be asked for everything the room lacks after it.
      this.life.writeHeld();
      this.sessions.send(socket, session, encodeSyncStep1(this.document.stateVector()));
      const states = this.presence.statesFor(now, undefined, true, !quiet);
      if (states.length > 0) {
        const frame = encodeAwareness(states);
        // Everyone's presence is an answer the joiner did not ask for but costs as much.
        if (!this.answers.take(frame.byteLength, now)) return this.sessions.refuseNew(socket, "room busy: try again shortly");
        this.sessions.send(socket, session, frame);
      }
      logEvent("connect", { room: this.name, mode: grant.mode, user: grant.user, sockets: open, ...(quiet ? { quiet } : {}) });
    } finally {
      // Someone is here now, whatever failed: what is due changed (the join deadline, versions by interval).
      this.alarmStale = true;
      await this.rearmIfStale();
    }
  }

  /** A frame from a socket (`webSocketMessage`); anything refused closes that socket only. */
  async message(socket: Socket, message: ArrayBuffer | string): Promise<void> {
    // The runtime still delivers frames that arrive while a socket closes: none is applied.
    if (this.sessions.isClosing(socket)) return;
    try {
      await this.frames.handle(socket, message);
    } catch (error) {
      if (error instanceof ProtocolError) {
        this.sessions.reject(socket, error.closeCode, error.message, this.host.now());
      } else {
        logEvent("room_error", { room: this.name, error: String(error) });
        this.sessions.reject(socket, CloseCode.internalError, "internal error", this.host.now());
      }
    }
    const now = this.host.now();
    this.quiet.renewFor(socket, now);
    if (this.quiet.checkInUse(now)) this.alarmStale = true;
    await this.rearmIfStale();
  }

  /** Charges one request of the HTTP fallback (one that carries no frame) to its session's message rate. */
  admitRequest(socket: Socket): boolean {
    const now = this.host.now();
    return this.sessions.of(socket, now).messages.take(1, now);
  }

  /** Bytes a socket may still send now (its byte rate): the HTTP fallback reads no more of a body. */
  bytesAllowed(socket: Socket): number {
    const now = this.host.now();
    return this.sessions.of(socket, now).bytes.available(now);
  }

  /**
   * Charges frames the HTTP fallback sends a session again (a poll that asked for frames it
   * already had) to the answer budgets, as a request to be sent anything is; the close to end
   * the session with when they are spent, else null.
   */
  chargeResend(socket: Socket, bytes: number): { code: number; reason: string } | null {
    try {
      this.frames.chargeAnswer(this.sessions.of(socket, this.host.now()), bytes);
      return null;
    } catch (error) {
      if (error instanceof ProtocolError) return { code: error.closeCode, reason: error.message };
      throw error;
    }
  }

  /**
   * The one way a socket ends, whether the runtime reports a close or an error: one `close`
   * log line (with the error, and whether it was ordinary teardown, when there was one), its
   * presence removed for everyone, and, when it was the last, the room's idle work scheduled.
   */
  async closed(socket: Socket, end: SocketEnd): Promise<void> {
    this.sessions.markClosing(socket);
    const attachment = readAttachment(socket);
    const session = this.sessions.get(socket);
    const now = this.host.now();
    logEvent("close", {
      room: this.name,
      ...("error" in end ? { error: String(end.error), benign: isBenignTeardownError(end.error) } : end),
      durationMs: attachment ? now - attachment.connectedAt : undefined,
      bytesIn: session?.bytesIn,
      bytesOut: session?.bytesOut,
    });
    // Complete the closing handshake the peer started, echoing its code (RFC 6455 §5.5.1); a close
    // without one is answered as a normal closure, the only code meaning just "done".
    if ("code" in end && !CONNECTION_GONE_CLOSE_CODES.has(end.code)) {
      closeQuietly(socket, end.code === NO_STATUS_CLOSE_CODE ? CloseCode.normal : end.code, end.reason);
    }
    try {
      // A writer that leaves takes its client's copy of what it sent: write that now.
      if (this.life.holdsFor(socket)) this.life.writeHeld();
      this.sessions.drop(socket, now);
      if (this.sessions.openSockets().length === 0) {
        this.life.writeHeld();
        this.store.markActive(now);
        this.store.dropUnwrittenClaims();
      }
    } catch (error) {
      // A storage fault: the socket is gone whatever happened; the duties retry what is left.
      logEvent("room_error", { room: this.name, error: String(error) });
    }
    await this.rearmIfStale();
  }

  /**
   * A socket left the room, closed by its peer or by the room. The last one to leave ends the
   * session: its idle work (version, compaction) is due a moment later.
   */
  private socketGone(socket: Socket): void {
    this.life.forget(socket);
    if (this.sessions.openSockets().length > 0) {
      // Its deadline may have been the earliest: left set, it would wake an idle room for nothing.
      this.socketDeadline = this.sessions.nextDeadline(this.host.now());
      this.alarmStale = this.alarmMayMoveLater = true;
      return;
    }
    this.socketDeadline = null;
    if (this.hasIdleWork()) this.idleWorkDue = this.host.now() + IDLE_COMPACTION_DELAY_MS;
    this.alarmStale = true;
  }

  /** At the end of an event: moves the alarm if the event changed what is due. Never throws (the duties retry). */
  async rearmIfStale(): Promise<void> {
    if (!this.alarmStale) return;
    try {
      await this.scheduleAlarm(this.alarmMayMoveLater);
    } catch (error) {
      logEvent("room_error", { room: this.name, error: String(error) });
    }
  }

  /**
   * Runs every duty that is due (worker/room/room-duties.ts), each in isolation, and re-arms
   * the alarm for whatever is due next, whatever they did.
   */
  async alarm(): Promise<void> {
    const now = this.host.now();
    const dueBy = this.dutyAlarm.fired();
    try {
      await this.duties.runDue(now, dueBy);
    } finally {
      this.encodedThisAlarm = null;
      this.socketDeadline = this.sessions.nextDeadline(this.host.now());
    }
    // Every duty's due time is known now (socket deadlines just recomputed), so the alarm may
    // also move later than one a duty set while it ran (an event it queued and then delivered).
    await this.scheduleAlarm(true);
  }

  /**
   * After an update was integrated from a socket, the API or the room itself: note it for
   * version history, webhooks and the read cache, and compact if the log has grown enough.
   */
  private accepted(_integrated: Uint8Array, author: string | undefined): void {
    this.reads.documentChanged();
    const now = this.host.now();
    // The first change after a version sets when the interval version is due; the first after
    // a quiet period opens a webhook burst. Either is a time the alarm must keep. The change is
    // integrated, relayed and held already: a storage fault in this bookkeeping is logged (the
    // change may then miss its version or event), never thrown at its writer.
    if (this.history.unversionedSince === null) this.alarmStale = true;
    try {
      this.history.noteChange(now, author);
      if (this.outbox?.noteChange(now)) this.alarmStale = true;
    } catch (error) {
      this.alarmStale = true;
      logEvent("room_error", { room: this.name, error: String(error) });
    }
    if (this.document.needsCompaction()) this.compact();
  }

  /** Whether the room has work for when nobody is connected: a log to compact, or changes without a version. */
  hasIdleWork(): boolean {
    return this.store.hasLog() || this.history.unversionedSince !== null;
  }

  /**
   * Stores the current state as a version. Taken at most once per change: an automatic version
   * of an unchanged document is skipped (a named or before-restore one never is).
   */
  takeVersion(reason: VersionReason, name: string | null = null, version = this.currentVersion()): ReturnType<History["take"]> {
    const now = this.host.now();
    const taken = this.history.take(version, reason, now, name);
    if (!taken.ok) return taken;
    const { id, bytes, createdAt } = taken.value;
    logEvent("version", { room: this.name, id, reason, bytes });
    this.outbox?.enqueue("version.created", { version: { id, name, reason, createdAt, bytes } }, now);
    this.alarmStale = true;
    return taken;
  }

  /** The document as a version stores it; the text is stored with it, so a preview never loads it. */
  currentVersion(): NewVersion {
    return { state: this.document.stateV2(), items: this.document.itemCount(), text: this.document.text() };
  }

  /**
   * Compacts, logging the outcome. A failure is not the client's fault and loses nothing (the
   * transaction rolls back, the log stays): logged, and retried at the next trigger; `rethrow`
   * for the compaction duty, which then backs off.
   */
  compact(state?: Uint8Array, rethrow = false): void {
    try {
      logEvent("compaction", { room: this.name, ...this.document.compact(state) });
    } catch (error) {
      logEvent("compaction_failed", { room: this.name, error: String(error) });
      if (rethrow) throw error;
    }
  }

  /**
   * When an idle room's storage expires (DOC_TTL_DAYS), or null when expiry is off or sockets
   * are here. A socket its client is closing is here until the room has handled its close
   * (and noted the activity): the runtime may stop listing it before that.
   */
  expiryDue(): number | null {
    const lastActivity = this.store.lastActivity();
    const socketsHere = this.sessions.any() || this.sessions.openSockets().length > 0;
    if (this.limits.docTtlDays === null || lastActivity === null || socketsHere) return null;
    return lastActivity + this.limits.docTtlDays * DAY_MS;
  }

  /**
   * Deletes everything the room stores, version history included, and starts over with an
   * empty document. What was held or waiting goes with it; its writers were closed (DELETE)
   * or there were none (expiry happens only with nobody here).
   *
   * Webhook events still to send outlive the wipe, and a document that existed sends one more.
   * `deleteAll()` commits at once and cannot share a transaction (test/worker/runtime-model.test.ts),
   * so events written back after it would be lost to a crash in between: when there are any,
   * the tables are dropped and the events written in one transaction instead, all or nothing.
   */
  async deleteStorage(why: "deleted" | "expired"): Promise<void> {
    const bytes = this.store.statistics().storedBytes;
    const existed = this.store.exists();
    const carried = this.outbox?.carryOver() ?? [];
    const keepsEvents = this.config.webhooks !== null && (carried.length > 0 || existed);
    await this.host.storage.deleteAlarm();
    this.dutyAlarm.cleared();
    if (keepsEvents) {
      const previous = this.opened;
      try {
        this.host.storage.transaction(() => {
          dropTables(this.host.storage.sql);
          this.opened = null;
          const outbox = this.outbox!;
          outbox.restore(carried);
          if (existed) outbox.enqueue(why === "expired" ? "document.expired" : "document.deleted", { storedBytes: bytes }, this.host.now());
        });
      } catch (error) {
        // Rolled back: nothing was deleted, and the handles opened on the dropped tables are void.
        this.opened = previous;
        throw error;
      }
    } else {
      await this.host.storage.deleteAll();
      this.opened = null;
    }
    this.idleWorkDue = null;
    this.loadedDocument = null;
    this.presence.forgetClaims();
    this.socketDeadline = this.sessions.nextDeadline(this.host.now());
    this.life.reset();
    this.duties.reset();
    logEvent(why === "expired" ? "document_expired" : "document_deleted", { room: this.name, bytes });
    if (keepsEvents) await this.scheduleAlarm();
  }

  /** The storage handles, opened now if DELETE (or a fault reopening them) left none. */
  private storage(): OpenStorage {
    if (this.opened !== null) return this.opened;
    const { sql } = this.host.storage;
    const transaction = <T>(body: () => T): T => this.host.storage.transaction(body);
    const store = new DocumentStore(sql, transaction);
    const history = new History(sql, transaction, store);
    const outbox = this.config.webhooks && new Outbox(sql, this.config.webhooks, this.name ?? "", transaction);
    this.opened = { store, history, outbox };
    return this.opened;
  }

  /**
   * Makes sure the alarm fires by the earliest time any duty is due; `exact` (or nobody here,
   * when no frame will come to move it) also moves a set alarm later. Every duty's due time is
   * a lower bound of when it has work (a socket deadline is, see {@link socketDeadline}), so
   * firing at it is never late.
   */
  async scheduleAlarm(exact = false): Promise<void> {
    this.alarmStale = this.alarmMayMoveLater = false;
    await this.dutyAlarm.schedule(exact || this.sessions.openSockets().length === 0);
  }

  /** Figures the simulation checks its invariants against. */
  inspect(): { stateVector: Uint8Array | null; pendingBytes: number; heldBytes: number; openSessions: number; nextDue: number | null; quietCheckedAt: number | null } {
    return {
      quietCheckedAt: this.quiet.lastCheckAt,
      stateVector: this.loadedDocument?.stateVector() ?? null,
      pendingBytes: this.loadedDocument?.waitingBytes() ?? 0,
      heldBytes: this.store.heldByteCount(),
      openSessions: this.sessions.openSockets().length,
      nextDue: this.duties.nextDue(this.host.now()),
    };
  }
}
