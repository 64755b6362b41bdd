/**
 * Room: the Durable Object that owns one document and every socket editing it.
 *
 * Built for hibernation: sockets are accepted with `ctx.acceptWebSocket`, each socket's
 * identity, access and presence live in its attachment, and everything in memory is rebuilt
 * from `ctx.getWebSockets()` and SQLite storage when the object wakes. There are no JS timers
 * (an interval would keep the object awake); one alarm does the timed work (presence sweep,
 * closing silent sockets, dropping stale pending updates, compaction after the last socket
 * leaves, idle expiry), and text "ping" frames are answered by the runtime's auto-response
 * without waking the object.
 *
 * Budgets: every input is bounded before the room spends on it (docs/limits.md). Inbound,
 * per socket: frame size, message and byte rates. Outbound: what a socket asks to be sent
 * (sync answers, presence queries) is charged to it and to the room; one relay may queue at
 * most {@link MAX_RELAY_BYTES} across the room. The document is loaded only when something
 * needs it, so deleting or expiring a document never loads it.
 */
import { DurableObject } from "cloudflare:workers";
import { grantFrom, type AccessGrant } from "./access";
import { PresenceRegistry, type SocketPresence } from "./awareness";
import { roomLimits, type RoomLimits } from "./config";
import { RoomDocument } from "./document";
import type { DocumentInfo, Outcome, StorageStats, VersionInfo, VersionReason } from "./documents";
import { History, type NewVersion } from "./history";
import { HttpReads } from "./http-reads";
import {
  ACTIVITY_STAMP_INTERVAL_MS,
  ANSWER_SLACK_BYTES,
  DAY_MS,
  ECHO_CREDIT_LIMIT_BYTES,
  ECHO_CREDIT_PER_BYTE_SENT,
  IDLE_COMPACTION_DELAY_MS,
  JOIN_TIMEOUT_MS,
  MAX_CLOSING_SOCKETS,
  MAX_RELAY_BYTES,
  ROOM_ANSWER_BURST_BYTES,
  ROOM_ANSWER_BYTES_PER_SECOND,
  SOCKET_ANSWER_BURST_BYTES,
  VERSION_RETRY_FIRST_MS,
  VERSION_RETRY_MAX_MS,
} from "./limits";
import { logEvent } from "./log";
import { noSuchVersion, outcomeOf } from "./outcome";
import {
  AWARENESS_TIMEOUT_MS,
  CloseCode,
  MessageType,
  ProtocolError,
  decodeClientMessage,
  encodeAwareness,
  encodePermissionDenied,
  encodeSyncStep1,
  encodeSyncStep2,
  encodeSyncUpdate,
  isSyncUpdate,
  readAwarenessEntries,
  type ClientMessage,
} from "./protocol";
import { TokenBucket } from "./rate";
import { isBenignTeardownError } from "./teardown";
import { DocumentStore } from "./storage";
import { attemptDelivery, Outbox, webhookSettings, type WebhookEventInfo, type WebhookSettings } from "./webhooks";

/** What each socket carries through hibernation (serialized by the runtime, 16 KiB at most). */
export interface SocketAttachment extends AccessGrant {
  connectedAt: number;
  presence: SocketPresence;
  /** Whether it completed the sync handshake (sent its sync step 2); see {@link JOIN_TIMEOUT_MS}. */
  joined: boolean;
  /** When it last sent a frame, written at most every {@link ACTIVITY_STAMP_INTERVAL_MS}. */
  activeAt: number;
  /** The room closed it; the runtime lists it until the peer completes the close. */
  closing?: true;
  /** An update of its waits for dependencies, so it is not told its edits are saved. */
  unconfirmed?: true;
}

/** A socket's access, budgets and activity, kept in memory (budgets start full again after a wake). */
interface Session {
  grant: AccessGrant;
  messages: TokenBucket;
  bytes: TokenBucket;
  /** Bytes the room may still send in answer to this socket's requests; made at its first answer. */
  answers: TokenBucket | null;
  connectedAt: number;
  joined: boolean;
  /** When it last sent a frame (`ping` never reaches the room), and when that was last saved. */
  lastFrameAt: number;
  stampedAt: number;
  /**
   * Awareness bytes it may send back without changing its own presence: stock providers
   * re-send every presence change they receive, so they earn this from what the room sends
   * them (see {@link ECHO_CREDIT_LIMIT_BYTES}) instead of paying from their message rate.
   */
  echoCredit: number;
  /** Bytes received from and sent to this socket since the room last woke, for the close log. */
  bytesIn: number;
  bytesOut: number;
  /** Whom its edits are credited to in version history; undefined until first needed after a presence change. */
  author?: string | null;
}

/** How the runtime reported a socket's end: a close (with its code) or an error. */
type SocketEnd = { code: number; reason: string; wasClean: boolean } | { error: unknown };

/** Close codes the runtime reports but which must never be sent in a Close frame (RFC 6455 §7.4.1). */
const UNSENDABLE_CLOSE_CODES = new Set([1005, 1006, 1015]);

const TOKEN_EXPIRED_REASON = "token expired: reconnect with a fresh token";

/** A WebSocket close reason may be at most 123 bytes (RFC 6455 §5.5: 125-byte control payload). */
const MAX_CLOSE_REASON_BYTES = 123;

export class Room extends DurableObject<Env> {
  private store: DocumentStore;
  private history: History;
  /** Webhook events not yet delivered, or null when webhooks are off (docs/webhooks.md). */
  private outbox: Outbox | null;
  private readonly webhooks: WebhookSettings | null;
  /** Set when synchronous work added something the alarm must be moved earlier for. */
  private alarmStale = false;
  /** The Yjs document, loaded at first use ({@link document}). */
  private loadedDocument: RoomDocument | null = null;
  private readonly limits: RoomLimits;
  private readonly presence = new PresenceRegistry<WebSocket>((claims) => this.store.saveClaims(claims, Date.now()));
  private readonly sessions = new Map<WebSocket, Session>();
  /** Sockets the room has closed; the runtime may still list them until the close completes. */
  private readonly closing = new WeakSet<WebSocket>();
  /** Sockets with an update waiting for dependencies: their own presence is not echoed to them. */
  private readonly unconfirmed = new Set<WebSocket>();
  /** Sockets whose edits the store holds, not yet written ({@link writeHeldUpdates}). */
  private readonly heldWriters = new Set<WebSocket>();
  /** What the whole room may still send in answers (sync step 2, presence queries). */
  private readonly answers = new TokenBucket(ROOM_ANSWER_BURST_BYTES, ROOM_ANSWER_BYTES_PER_SECOND, Date.now());
  /** HTTP reads: their cache, and their callers' budgets, charged with {@link answers} (docs/limits.md). */
  private readonly reads = new HttpReads(this.answers, {
    document: () => this.document,
    loadedItems: () => this.loadedDocument?.itemCount() ?? 0,
    store: () => this.store,
    history: () => this.history,
    writeHeldUpdates: () => this.writeHeldUpdates(),
  });
  /** When the alarm is set for: a time, null for none, undefined when not yet read after a wake. */
  private alarmAt: number | null | undefined = undefined;
  /** When to compact and take the session-end version because the last socket left, or null. */
  private idleWorkDue: number | null = null;
  /** Automatic versions that failed in a row, and when the next may be tried (in memory: a wake retries once at once). */
  private versionRetry: VersionRetry = NO_VERSION_RETRY;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.limits = roomLimits(env);
    this.webhooks = webhookSettings(env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
    [this.store, this.history, this.outbox] = this.openStorage();
    this.presence.restoreClaims(this.store.loadClaims());
    const lostWaiting: WebSocket[] = [];
    for (const socket of ctx.getWebSockets()) {
      const attachment = readAttachment(socket);
      if (attachment?.closing) this.closing.add(socket);
      if (!attachment || attachment.closing) continue;
      this.presence.restore(socket, attachment.presence, attachment.owner);
      this.startSession(socket, attachment);
      if (attachment.unconfirmed) lostWaiting.push(socket);
    }
    // Waiting updates live in memory only, so they were lost with the object: ask their senders again.
    this.askToResend(lostWaiting);
  }

  /** The room's document, loaded from storage the first time anything needs it. */
  private get document(): RoomDocument {
    if (this.loadedDocument === null) {
      const started = Date.now();
      this.loadedDocument = new RoomDocument(this.store, this.limits.maxDocumentBytes);
      logEvent("load", { room: this.name, ms: Date.now() - started, bytes: this.store.statistics().storedBytes });
    }
    return this.loadedDocument;
  }

  /** Storage figures (Durable Object RPC), cheap to read: tests watch them; `info()` adds to them. */
  async stats(): Promise<StorageStats> {
    this.writeHeldUpdates();
    return { ...this.store.statistics() };
  }

  /**
   * `GET /api/docs/:name` for `caller` (the HTTP reads below name who asks: a token's owner,
   * else an address; worker/http-reads.ts). `encodedBytes` costs one encode per change, shared
   * with `GET /update` and charged like it; in between, the answer is charged nothing.
   */
  async info(caller: string): Promise<Outcome<DocumentInfo>> {
    const encodedBytes = this.reads.encodedSize(caller);
    if (!encodedBytes.ok) return encodedBytes;
    const stats = this.store.statistics();
    const lastUpdateAt = this.store.lastUpdateAt;
    return {
      ok: true,
      value: {
        exists: lastUpdateAt !== null,
        title: this.document.title(),
        ...stats,
        encodedBytes: encodedBytes.value,
        items: this.document.itemCount(),
        sockets: this.openSockets().length,
        lastUpdateAt: lastUpdateAt === null ? null : new Date(lastUpdateAt).toISOString(),
        ...this.history.statistics(),
      },
    };
  }

  /** `GET /api/docs/:name/text`. */
  async text(caller: string): Promise<Outcome<string>> {
    return this.reads.text(caller);
  }

  /** `GET /api/docs/:name/update`: the document, or what a peer with `stateVector` lacks. */
  async encodeUpdate(caller: string, stateVector?: Uint8Array): Promise<Outcome<Uint8Array>> {
    return this.reads.update(caller, stateVector);
  }

  /** `POST /api/docs/:name/update`: validated, stored and relayed like an edit from a socket. */
  async applyUpdate(update: Uint8Array, author?: string): Promise<Outcome<{ changed: boolean; pending?: true }>> {
    const result = outcomeOf(() => {
      const { integrated, waits } = this.document.apply(update, Date.now(), this.relayTo());
      return { changed: this.acceptChange(integrated, author), ...(waits ? { pending: true as const } : {}) };
    });
    await this.settleWaiting();
    await this.afterApiWrite();
    return result;
  }

  /** `PUT /api/docs/:name/text`: replaces the text as a small edit, relayed live. */
  async replaceText(text: string, author?: string): Promise<Outcome<{ changed: boolean }>> {
    const result = outcomeOf(() => ({ changed: this.acceptChange(this.document.replaceText(text, Date.now(), this.relayTo()), author) }));
    await this.afterApiWrite();
    return result;
  }

  /** `GET /api/docs/:name/versions`: newest first. */
  async versions(): Promise<VersionInfo[]> {
    return this.history.list(Date.now());
  }

  /** `GET /api/docs/:name/versions/:id`. */
  async version(id: number): Promise<Outcome<VersionInfo>> {
    const version = this.history.get(id);
    return version ? { ok: true, value: version } : noSuchVersion(id);
  }

  /** `GET /api/docs/:name/versions/:id/text`: the text stored with the version (worker/http-reads.ts). */
  async versionText(caller: string, id: number): Promise<Outcome<string>> {
    return this.reads.versionText(caller, id);
  }

  /** `GET /api/docs/:name/versions/:id/update`: the version as one V1 update. */
  async versionUpdate(caller: string, id: number): Promise<Outcome<Uint8Array>> {
    return this.reads.versionUpdate(caller, id);
  }

  /** `POST /api/docs/:name/versions`: the current state under `name`. */
  async saveVersion(name: string): Promise<Outcome<VersionInfo>> {
    this.writeHeldUpdates();
    if (!this.store.exists()) return { ok: false, refused: "no-document", reason: "the document has never been written" };
    const taken = this.takeVersion("named", name);
    await this.scheduleAlarm();
    if (taken.ok) return taken;
    return {
      ok: false,
      refused: "history-full",
      reason: taken.refusal === "too-many-named" ? "too many named versions: delete some first" : "named versions fill the history budget: delete some first",
    };
  }

  /**
   * `POST /api/docs/:name/versions/:id/restore`: one edit that makes the document equal to the
   * version, stored and relayed like any other, preceded by a `before-restore` version of the
   * current state so that the restore itself can be undone by restoring that.
   */
  async restoreVersion(id: number, author?: string): Promise<Outcome<{ changed: boolean }>> {
    const version = this.history.load(id);
    if (!version) return noSuchVersion(id);
    const result = outcomeOf(() => {
      const update = this.document.restoreUpdate(version);
      if (update === null) return { changed: false };
      // The version of what the restore replaces is read first but written only once the
      // apply, which can still refuse the restore (4413), has taken it: a refused restore
      // leaves no version and no webhook event behind.
      const replaced = this.currentVersion();
      const { integrated } = this.document.apply(update, Date.now(), this.relayTo());
      this.takeVersion("before-restore", null, replaced);
      return { changed: this.acceptChange(integrated, author) };
    });
    if (result.ok && result.value.changed) logEvent("version_restored", { room: this.name, id });
    await this.afterApiWrite();
    return result;
  }

  /** `DELETE /api/docs/:name/versions/:id`: named versions only; automatic ones are left to retention. */
  async deleteVersion(id: number): Promise<Outcome<null>> {
    const version = this.history.get(id);
    if (!version) return noSuchVersion(id);
    if (version.name === null) return { ok: false, refused: "not-named", reason: "automatic versions are removed by retention, not by hand" };
    this.history.delete(id);
    return { ok: true, value: null };
  }

  /**
   * Stores the current state as a version. Taken at most once per change: an automatic version
   * of an unchanged document is skipped (a named or before-restore one never is).
   */
  private takeVersion(reason: VersionReason, name: string | null = null, version = this.currentVersion()): ReturnType<History["take"]> {
    const now = Date.now();
    const taken = this.history.take(version, reason, now, name);
    if (!taken.ok) return taken;
    const { id, bytes, createdAt } = taken.value;
    logEvent("version", { room: this.name, id, reason, bytes });
    this.outbox?.enqueue("version.created", { version: { id, name, reason, createdAt, bytes } }, now);
    this.alarmStale = true;
    return taken;
  }

  /**
   * The document as a version stores it. The text is a string copy of the loaded document:
   * stored with the version, a preview never loads it.
   */
  private currentVersion(): NewVersion {
    return { state: this.document.stateV2(), items: this.document.itemCount(), text: this.document.text() };
  }

  /**
   * After a write through the API: the same timed work as after a socket session, so a
   * document only ever written over HTTP is compacted, versioned and expires too. With nobody
   * connected, a run of writes is a session: each write pushes the idle work back, so its
   * version is taken once writes pause (and every interval while they go on), not every
   * few seconds. An update with missing dependencies waits, and the alarm drops it if they
   * never come.
   */
  private async afterApiWrite(): Promise<void> {
    // The answer tells the caller its edit is saved.
    if (!this.writeHeldUpdates()) throw new Error("storage write failed");
    const nobodyHere = this.openSockets().length === 0;
    if (nobodyHere && this.hasIdleWork()) this.idleWorkDue = Date.now() + IDLE_COMPACTION_DELAY_MS;
    await this.scheduleAlarm(null, nobodyHere);
  }

  /** Whether the room has work for when nobody is connected: a log to compact, or changes without a version. */
  private hasIdleWork(): boolean {
    return this.store.hasLog() || this.history.unversionedSince !== null;
  }

  /**
   * `DELETE /api/docs/:name`: closes every socket with 4410 and deletes all storage, without
   * loading the document (it may be over a limit). Idempotent.
   */
  async destroy(): Promise<void> {
    for (const socket of this.openSockets()) this.reject(socket, CloseCode.documentDeleted, "document deleted");
    await this.deleteStorage("deleted");
  }

  /** Accepts a WebSocket upgrade forwarded (and authorized) by the Worker and starts the sync handshake. */
  async fetch(request: Request): Promise<Response> {
    const grant = grantFrom(request);
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    const all = this.ctx.getWebSockets().length;
    const open = this.openSockets().length;
    if (open > this.limits.maxSocketsPerRoom || all - open > MAX_CLOSING_SOCKETS) {
      // Accept-then-close, so the client gets a close code and reason rather than a bare HTTP error.
      logEvent("room_full", { room: this.name, sockets: this.limits.maxSocketsPerRoom, closing: all - open });
      this.refuseNew(server, `room full: ${this.limits.maxSocketsPerRoom} connections`);
      return new Response(null, { status: 101, webSocket: client });
    }
    const now = Date.now();
    const attachment: SocketAttachment = { ...grant, connectedAt: now, presence: {}, joined: false, activeAt: now };
    server.serializeAttachment(attachment);
    const session = this.startSession(server, attachment);
    this.sendTo(server, session, encodeSyncStep1(this.document.stateVector()));
    const states = this.presence.states();
    if (states.length > 0) {
      const frame = encodeAwareness(states);
      // Everyone's presence is an answer the joiner did not ask for but costs as much.
      if (!this.answers.take(frame.byteLength, now)) {
        this.refuseNew(server, "room busy: try again shortly");
        return new Response(null, { status: 101, webSocket: client });
      }
      this.sendTo(server, session, frame);
    }
    logEvent("connect", { room: this.name, mode: grant.mode, user: grant.user, sockets: open });
    await this.scheduleAlarm(now + JOIN_TIMEOUT_MS);
    return new Response(null, { status: 101, webSocket: client });
  }

  /** Closes a socket just accepted (1013): the room cannot take it now. */
  private refuseNew(socket: WebSocket, reason: string): void {
    this.sessions.delete(socket);
    this.markClosing(socket);
    closeQuietly(socket, CloseCode.tryAgainLater, reason);
  }

  async webSocketMessage(socket: WebSocket, message: ArrayBuffer | string): Promise<void> {
    // The runtime still delivers frames that arrive while a socket closes: none is applied.
    if (this.closing.has(socket)) return;
    const session = this.sessionOf(socket);
    const now = Date.now();
    this.noteActivity(socket, session, now);
    try {
      if (isExpired(session, now)) throw new ProtocolError(CloseCode.tokenExpired, TOKEN_EXPIRED_REASON);
      if (typeof message === "string") {
        throw new ProtocolError(CloseCode.unsupportedData, "text frames are not supported; send binary y-websocket frames");
      }
      if (message.byteLength > this.limits.maxFrameBytes) {
        throw new ProtocolError(CloseCode.messageTooBig, `frame too large: over ${this.limits.maxFrameBytes} bytes`);
      }
      session.bytesIn += message.byteLength;
      const frame = new Uint8Array(message);
      // An awareness frame pays for its message once the room knows whether it is an echo.
      const paysNow = frame[0] !== MessageType.awareness;
      if (!session.bytes.take(frame.byteLength, now) || (paysNow && !session.messages.take(1, now))) throw this.rateExceeded();
      await this.handle(socket, session, decodeClientMessage(frame));
    } catch (error) {
      if (error instanceof ProtocolError) {
        this.reject(socket, error.closeCode, error.message);
      } else {
        logEvent("room_error", { room: this.name, error: String(error) });
        this.reject(socket, CloseCode.internalError, "internal error");
      }
    }
  }

  async webSocketClose(socket: WebSocket, code: number, reason: string, wasClean: boolean): Promise<void> {
    await this.endSocket(socket, { code, reason, wasClean });
  }

  async webSocketError(socket: WebSocket, error: unknown): Promise<void> {
    await this.endSocket(socket, { error });
  }

  /**
   * The one way a socket ends, whether the runtime reports a close or an error: one `close`
   * log line (with the error, and whether it was ordinary teardown, when there was one), its
   * presence removed for everyone, and, when it was the last, the room's idle work scheduled.
   */
  private async endSocket(socket: WebSocket, end: SocketEnd): Promise<void> {
    this.markClosing(socket);
    const attachment = readAttachment(socket);
    const session = this.sessions.get(socket);
    logEvent("close", {
      room: this.name,
      ...("error" in end ? { error: String(end.error), benign: isBenignTeardownError(end.error) } : end),
      durationMs: attachment ? Date.now() - attachment.connectedAt : undefined,
      bytesIn: session?.bytesIn,
      bytesOut: session?.bytesOut,
    });
    // A writer that leaves takes its client's copy of what it sent: write that now.
    if (this.heldWriters.has(socket)) this.writeHeldUpdates();
    this.dropSocket(socket);
    // Complete the closing handshake the peer started (a code the runtime made up cannot be sent).
    if ("code" in end && !UNSENDABLE_CLOSE_CODES.has(end.code)) closeQuietly(socket, end.code, end.reason);
    if (this.openSockets().length === 0) {
      const now = Date.now();
      this.writeHeldUpdates();
      this.store.markActive(now);
      if (this.hasIdleWork()) this.idleWorkDue = now + IDLE_COMPACTION_DELAY_MS;
      // With nobody here the alarm may move later: nothing held is waiting for it any more.
      await this.scheduleAlarm(null, true);
    }
  }

  /**
   * The room's timed work: close sockets that never joined or went silent, sweep presence that
   * was not renewed (peers that vanished without a close), drop pending updates past their TTL,
   * take a version when a session ended or editing went on for an interval, compact once
   * nobody is connected, and delete an idle document past `DOC_TTL_DAYS`.
   */
  async alarm(): Promise<void> {
    const now = Date.now();
    // The idle work is done by the alarm set for it (tests run alarms before their time), and
    // waits when the alarm was set for other work before it (HTTP writes keep pushing it back).
    const firedFor = Math.max(now, this.alarmAt ?? now);
    if (this.idleWorkDue !== null && firedFor >= this.idleWorkDue) this.idleWorkDue = null;
    this.alarmAt = null;
    this.writeHeldUpdates();
    const expiry = this.expiryDue();
    if (expiry !== null && now >= expiry) return this.deleteStorage("expired");
    this.closeIdleSockets(now);
    if (this.loadedDocument?.expirePending(now)) {
      logEvent("pending_dropped", { room: this.name });
      this.askToResend([...this.unconfirmed]);
    }
    const versioned = this.takeAutomaticVersion(now);
    // The session-end version and the snapshot are the same state: encoded once.
    if (this.openSockets().length === 0 && this.store.hasLog()) this.compact(versioned ?? undefined);
    const { removed, changedSockets } = this.presence.sweep(now);
    for (const socket of changedSockets) this.saveAttachment(socket);
    if (removed.length > 0) this.broadcast(encodeAwareness(removed));
    this.outbox?.closeBurst(now, () => this.updatedEventData());
    await this.deliverWebhooks();
    await this.scheduleAlarm(this.nextSocketDeadline());
  }

  /** What `document.updated` says about the document (never its content). */
  private updatedEventData(): Record<string, unknown> {
    const updatedAt = this.store.lastUpdateAt;
    return { updatedAt: updatedAt === null ? null : new Date(updatedAt).toISOString(), storedBytes: this.store.statistics().storedBytes };
  }

  /**
   * Attempts the webhook events that are due, in parallel, each bounded in time; failures are
   * recorded for a later attempt, never thrown (an alarm that throws is retried by the runtime
   * on its own schedule). Other events may run meanwhile: if the document's storage was deleted
   * during the attempts, the outcome is not recorded (the deletion carried the events over, so
   * they are attempted again with the same id, which receivers drop as a duplicate).
   */
  private async deliverWebhooks(): Promise<void> {
    const outbox = this.outbox;
    if (outbox === null) return;
    await Promise.all(
      outbox.due(Date.now()).map(async (row) => {
        const started = Date.now();
        const result = await attemptDelivery(row, outbox.settings.key);
        if (this.outbox === outbox) outbox.recordAttempt(row, result, Date.now(), Date.now() - started);
      }),
    );
    if (this.outbox === outbox) outbox.tidy(Date.now(), this.store.exists());
  }

  /** `GET /api/docs/:name/webhooks`: events not yet delivered, failed ones included (none with webhooks off). */
  async webhookEvents(): Promise<WebhookEventInfo[]> {
    return this.outbox?.list() ?? [];
  }

  /**
   * A version of changes not yet in one: `session-end` once nobody is connected (and HTTP
   * writes paused), `interval` when editing has gone on for the configured interval since the
   * first unversioned change.
   */
  private takeAutomaticVersion(now: number): Uint8Array | null {
    const since = this.history.unversionedSince;
    if (since === null) return null;
    const sessionEnded = this.openSockets().length === 0 && this.idleWorkDue === null;
    if (!sessionEnded && now < since + this.limits.versionIntervalMs) return null;
    if (now < this.versionRetry.at) return null;
    try {
      const version = this.currentVersion();
      this.takeVersion(sessionEnded ? "session-end" : "interval", null, version);
      this.versionRetry = NO_VERSION_RETRY;
      return version.state;
    } catch (error) {
      // Like a failed compaction, nothing is lost; but the change stays unversioned, so its due
      // time stays in the past: without a backoff every alarm would fire at once and encode the
      // whole document again.
      const delay = Math.min(VERSION_RETRY_MAX_MS, VERSION_RETRY_FIRST_MS * 2 ** this.versionRetry.failures);
      this.versionRetry = { failures: this.versionRetry.failures + 1, at: now + delay };
      logEvent("version_failed", { room: this.name, error: String(error), retryInMs: delay });
      return null;
    }
  }

  /**
   * When the next automatic version is due, or null when every change is in a version: the
   * interval's, or after a failure the retry's (a failed session-end version need not wait for
   * the interval; nobody is editing).
   */
  private versionDue(): number | null {
    const since = this.history.unversionedSince;
    if (since === null) return null;
    const retrySessionEnd = this.versionRetry.failures > 0 && this.openSockets().length === 0;
    return retrySessionEnd ? this.versionRetry.at : Math.max(since + this.limits.versionIntervalMs, this.versionRetry.at);
  }

  /**
   * Closes sockets that hold a place in the room without using it: not joined within
   * {@link JOIN_TIMEOUT_MS} (4001), or no frame for {@link AWARENESS_TIMEOUT_MS} (4000; stock
   * providers renew their presence every 15 s, and `ping` never reaches the room).
   */
  private closeIdleSockets(now: number): void {
    for (const socket of this.openSockets()) {
      const session = this.sessionOf(socket);
      if (!session.joined && now - session.connectedAt >= JOIN_TIMEOUT_MS) {
        this.reject(socket, CloseCode.joinTimeout, `join timed out: no sync step 2 within ${JOIN_TIMEOUT_MS / 1000} s`);
      } else if (now - session.lastFrameAt >= AWARENESS_TIMEOUT_MS) {
        logEvent("presence_timeout", { room: this.name });
        this.reject(socket, CloseCode.presenceTimeout, `presence timed out: no frame for ${AWARENESS_TIMEOUT_MS / 1000} s`);
      }
    }
  }

  /** When the next open socket would be closed by {@link closeIdleSockets}, or null. */
  private nextSocketDeadline(): number | null {
    let next: number | null = null;
    for (const socket of this.openSockets()) {
      const session = this.sessionOf(socket);
      const due = session.joined ? session.lastFrameAt + AWARENESS_TIMEOUT_MS : session.connectedAt + JOIN_TIMEOUT_MS;
      next = next === null ? due : Math.min(next, due);
    }
    return next;
  }

  private async handle(socket: WebSocket, session: Session, message: ClientMessage): Promise<void> {
    switch (message.type) {
      case "sync-step1":
        return this.answer(socket, session, encodeSyncStep2(this.document.missingFrom(message.stateVector)));
      case "sync-step2":
      case "sync-update": {
        this.markJoined(socket, session);
        if (session.grant.mode === "read") return this.denyWrite(socket, session, message.update);
        const now = Date.now();
        const heldBefore = this.store.holdsUpdates();
        const { integrated, waits } = this.document.apply(message.update, now, this.relayTo(socket));
        if (integrated !== null) this.heldWriters.add(socket);
        this.acceptChange(integrated, this.authorOf(socket, session));
        if (waits) this.holdConfirmation(socket);
        if (this.store.heldDue(now) && !this.writeHeldUpdates()) return;
        // The first held update must be written by the alarm at the latest.
        if (!heldBefore && this.store.holdsUpdates()) this.alarmStale = true;
        if (this.alarmStale) await this.scheduleAlarm();
        return this.settleWaiting();
      }
      case "awareness":
        return this.applyAwareness(socket, session, message.update);
      case "query-awareness":
        return this.answer(socket, session, encodeAwareness(this.presence.states(this.unconfirmed.has(socket) ? socket : undefined)));
      default:
        // A message type added to the protocol but not handled here fails to compile.
        return message satisfies never;
    }
  }

  /**
   * Sends `frame` in answer to a request of `socket`, charged to its answer budget (over it:
   * 1008, the socket asks faster than it could read) and to the room's (over it: 1013).
   */
  private answer(socket: WebSocket, session: Session, frame: Uint8Array): void {
    const now = Date.now();
    // A socket may at first be sent twice its first answer (its sync, usually the document)
    // plus slack, not a full burst: asking for the document again and again is then refused
    // after a couple of encodes, not dozens, and no encode is spent just to size the budget.
    session.answers ??= new TokenBucket(SOCKET_ANSWER_BURST_BYTES, this.limits.rateBytesPerSecond, now, 2 * frame.byteLength + ANSWER_SLACK_BYTES);
    if (!session.answers.take(frame.byteLength, now)) {
      throw new ProtocolError(
        CloseCode.policyViolation,
        `answer budget exceeded: asked to be sent over ${this.limits.rateBytesPerSecond} bytes per second`,
      );
    }
    if (!this.answers.take(frame.byteLength, now)) throw new ProtocolError(CloseCode.tryAgainLater, "room busy: try again shortly");
    this.sendTo(socket, session, frame);
  }

  /**
   * Writes the updates the store holds as one log row. Runs before the room sends anything but
   * a relayed edit (the writer's save confirmation is the echo of its presence, and every
   * other frame or answer might be taken as one), when they are due, and at the alarm. On a
   * storage fault the room goes back to what is stored and closes their writers (1011): never
   * told the edits were saved, they send them again when they reconnect. Returns whether
   * everything accepted is now stored.
   */
  private writeHeldUpdates(): boolean {
    // Called before every frame but relays, per recipient: nothing held is the common case.
    if (!this.store.holdsUpdates()) {
      this.heldWriters.clear();
      return true;
    }
    const writers = [...this.heldWriters];
    this.heldWriters.clear();
    try {
      this.store.writeHeld();
      return true;
    } catch (error) {
      logEvent("room_error", { room: this.name, error: String(error) });
      this.document.discardUnstored();
      for (const socket of writers) this.reject(socket, CloseCode.internalError, "internal error");
      return false;
    }
  }

  /**
   * How the document relays a change it integrated to every socket but its sender: after every
   * check that can refuse it and before it is stored, so that others need not wait for the
   * disk (docs/storage.md). Its sender learns it is saved only from what the room sends it
   * later, which the output gate holds until the write is durable.
   */
  private relayTo(sender?: WebSocket): (integrated: Uint8Array) => void {
    return (integrated) => this.broadcast(encodeSyncUpdate(integrated), sender);
  }

  /**
   * After the document stored (and relayed) a change from a socket or the HTTP API: note it
   * for version history, and compact if the log has grown enough.
   */
  private acceptChange(integrated: Uint8Array | null, author: string | undefined): boolean {
    if (integrated === null) return false;
    this.reads.documentChanged();
    const now = Date.now();
    // The first change after a version sets when the interval version is due; the first after
    // a quiet period opens a webhook burst. Either is a time the alarm must keep.
    if (this.history.unversionedSince === null) this.alarmStale = true;
    this.history.noteChange(now, author);
    if (this.outbox?.noteChange(now)) this.alarmStale = true;
    if (this.document.needsCompaction()) this.compact();
    return true;
  }

  private openSockets(): WebSocket[] {
    return this.ctx.getWebSockets().filter((socket) => !this.closing.has(socket));
  }

  /**
   * When an idle room's storage expires (DOC_TTL_DAYS), or null when expiry is off or sockets
   * are here. A socket its client is closing is here until the room has handled its close
   * (and noted the activity): the runtime may stop listing it before that.
   */
  private expiryDue(): number | null {
    const lastActivity = this.store.lastActivity();
    const socketsHere = this.sessions.size > 0 || this.openSockets().length > 0;
    if (this.limits.docTtlDays === null || lastActivity === null || socketsHere) return null;
    return lastActivity + this.limits.docTtlDays * DAY_MS;
  }

  /** Deletes everything the room stores, version history included, and starts over with an empty document. */
  private async deleteStorage(why: "deleted" | "expired"): Promise<void> {
    const bytes = this.store.statistics().storedBytes;
    const existed = this.store.exists();
    // Webhook events still to send outlive the wipe; a document never written sends none.
    const carried = this.outbox?.carryOver() ?? [];
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.alarmAt = null;
    this.idleWorkDue = null;
    this.loadedDocument = null;
    this.heldWriters.clear();
    [this.store, this.history, this.outbox] = this.openStorage();
    logEvent(why === "expired" ? "document_expired" : "document_deleted", { room: this.name, bytes });
    if (this.outbox && existed) {
      this.outbox.restore(carried);
      this.outbox.enqueue(why === "expired" ? "document.expired" : "document.deleted", { storedBytes: bytes }, Date.now());
      await this.scheduleAlarm();
    }
  }

  private openStorage(): [DocumentStore, History, Outbox | null] {
    const transaction = <T>(body: () => T): T => this.ctx.storage.transactionSync(body);
    const store = new DocumentStore(this.ctx.storage.sql, transaction);
    const outbox = this.webhooks && new Outbox(this.ctx.storage.sql, this.webhooks, this.name ?? "");
    return [store, new History(this.ctx.storage.sql, transaction, store), outbox];
  }

  /** A read-only socket's edit: not applied, stored or relayed; the client is told why. */
  private denyWrite(socket: WebSocket, session: Session, update: Uint8Array): void {
    // A reader with nothing new answers our sync step 1 with an empty update: not an edit.
    if (RoomDocument.isEmpty(update)) return;
    logEvent("write_denied", { room: this.name, bytes: update.length });
    this.sendTo(socket, session, encodePermissionDenied("read-only access: edits are not saved"));
  }

  private async applyAwareness(socket: WebSocket, session: Session, update: Uint8Array): Promise<void> {
    const now = Date.now();
    const heldBefore = this.presence.heldCount(socket);
    const { changes, renew } = this.presence.apply(socket, readAwarenessEntries(update), now, session.grant.owner);
    if (changes.length === 0) {
      // An echo of others' states: paid from what the room sent this socket, so a stock
      // provider in a busy room is never closed for it, and a flood cannot pose as echoes.
      if (session.echoCredit >= update.byteLength) session.echoCredit -= update.byteLength;
      else if (!session.messages.take(1, now)) throw this.rateExceeded();
      return;
    }
    if (!session.messages.take(1, now)) throw this.rateExceeded();
    session.author = undefined;
    // Who is here is saved for hibernation at once; a state that only changed (a cursor move,
    // several a second while typing) at most every ACTIVITY_STAMP_INTERVAL_MS, as activity is.
    // After a wake a joiner may see a cursor up to that old until its owner's next move or
    // 15 s renewal; the saved `lastSeen` is as old at most, well inside the 30 s timeout.
    const whoChanged = this.presence.heldCount(socket) !== heldBefore || changes.some((change) => change.state === null);
    if (whoChanged || now - session.stampedAt >= ACTIVITY_STAMP_INTERVAL_MS) this.saveAttachment(socket);
    // Relayed to the sender too, as the reference server does: a provider alone in a room
    // otherwise hears nothing and reconnects after 30 s of silence. The echo also tells the
    // sender that everything it sent before is stored (client/saved.ts relies on it), so a
    // sender with an update still waiting for dependencies does not get it.
    this.broadcast(encodeAwareness(changes), this.unconfirmed.has(socket) ? socket : undefined);
    // A client back at the clock its removal went out with: its provider answers this removal
    // with its state under the next clock, which peers that saw the removal take (awareness.ts).
    if (renew.length > 0) this.sendTo(socket, session, encodeAwareness(renew));
    await this.scheduleAlarm();
  }

  /**
   * Whom a socket's edits are credited to in version history: its token's name, else the name
   * in its presence (`user.name`, as y-codemirror.next apps set it), read once per presence change.
   */
  private authorOf(socket: WebSocket, session: Session): string | undefined {
    if (session.grant.user !== undefined) return session.grant.user;
    if (session.author === undefined) {
      session.author = null;
      for (const { state } of this.presence.statesOf(socket)) {
        const name = presenceName(state);
        if (name !== null) session.author = name;
      }
    }
    return session.author ?? undefined;
  }

  private rateExceeded(): ProtocolError {
    return new ProtocolError(
      CloseCode.policyViolation,
      `rate limit exceeded: ${this.limits.rateMessagesPerSecond} messages or ${this.limits.rateBytesPerSecond} bytes per second`,
    );
  }

  /** Withholds `socket`'s save confirmation (the echo of its presence) while its update waits. */
  private holdConfirmation(socket: WebSocket): void {
    if (this.unconfirmed.has(socket)) return;
    this.unconfirmed.add(socket);
    this.saveAttachment(socket);
  }

  /**
   * After an update was applied: once nothing waits any more, everything the held sockets sent
   * is stored, so each is sent the echo of its own presence (its save confirmation). While
   * something waits, the alarm is set to drop it past its TTL.
   */
  private async settleWaiting(): Promise<void> {
    if (this.document.hasPending()) return this.scheduleAlarm();
    for (const socket of this.unconfirmed) {
      this.unconfirmed.delete(socket);
      this.saveAttachment(socket);
      const own = this.presence.statesOf(socket);
      const session = this.sessions.get(socket);
      if (own.length > 0 && session) this.sendTo(socket, session, encodeAwareness(own));
    }
  }

  /**
   * Waiting updates were dropped (TTL, or lost when the object left memory): their senders
   * still hold them, and a sync step 1 from the room makes a y-websocket client send them again.
   */
  private askToResend(sockets: Iterable<WebSocket>): void {
    for (const socket of sockets) {
      this.unconfirmed.delete(socket);
      this.saveAttachment(socket);
      const session = this.sessions.get(socket);
      if (session) this.sendTo(socket, session, encodeSyncStep1(this.document.stateVector()));
    }
  }

  /** Closes a socket that sent something we refuse; the document and other sockets are untouched. */
  private reject(socket: WebSocket, code: CloseCode, reason: string): void {
    if (this.closing.has(socket)) return;
    this.markClosing(socket);
    logEvent("frame_rejected", { room: this.name, code, reason });
    closeQuietly(socket, code, reason);
    this.dropSocket(socket);
  }

  /** Forgets a socket and tells everyone else its presence left. */
  private dropSocket(socket: WebSocket): void {
    this.sessions.delete(socket);
    this.unconfirmed.delete(socket);
    const removed = this.presence.removeSocket(socket);
    if (removed.length > 0) this.broadcast(encodeAwareness(removed), socket);
  }

  /**
   * Sends to every socket but `except`; a socket whose token expired is closed instead. At most
   * {@link MAX_RELAY_BYTES} are queued for one frame across the room: sockets past that are
   * closed with 1013 and catch up through the sync handshake when they reconnect. Those that
   * sent a frame most recently are served first: honest editors renew their presence every
   * 15 s, while a socket that stopped reading has usually stopped sending too.
   */
  private broadcast(frame: Uint8Array, except?: WebSocket): void {
    if (!isSyncUpdate(frame)) this.writeHeldUpdates();
    const now = Date.now();
    const recipients = this.ctx.getWebSockets().filter((socket) => socket !== except && !this.closing.has(socket));
    const affordable = Math.floor(MAX_RELAY_BYTES / Math.max(frame.byteLength, 1));
    if (recipients.length > affordable) recipients.sort((a, b) => this.sessionOf(b).lastFrameAt - this.sessionOf(a).lastFrameAt);
    const expired: WebSocket[] = [];
    const shed: WebSocket[] = [];
    let sent = 0;
    for (const socket of recipients) {
      const session = this.sessionOf(socket);
      if (isExpired(session, now)) expired.push(socket);
      else if (sent++ < affordable) this.sendTo(socket, session, frame);
      else shed.push(socket);
    }
    for (const socket of expired) this.reject(socket, CloseCode.tokenExpired, TOKEN_EXPIRED_REASON);
    if (shed.length > 0) logEvent("relay_shed", { room: this.name, bytes: frame.byteLength, sockets: shed.length });
    for (const socket of shed) this.reject(socket, CloseCode.tryAgainLater, "room busy: reconnect to catch up");
  }

  /**
   * Sends, ignoring a socket the peer already closed: its close handler cleans up, and the
   * frame being handled (or the other recipients of a broadcast) must not fail because of it.
   */
  private sendTo(socket: WebSocket, session: Session, frame: Uint8Array): void {
    // A writer whose held edits failed to be written was just closed: it must not hear more.
    if (!isSyncUpdate(frame) && !this.writeHeldUpdates() && this.closing.has(socket)) return;
    try {
      socket.send(frame);
      session.bytesOut += frame.byteLength;
      if (frame[0] === MessageType.awareness) {
        session.echoCredit = Math.min(ECHO_CREDIT_LIMIT_BYTES, session.echoCredit + ECHO_CREDIT_PER_BYTE_SENT * frame.byteLength);
      }
    } catch {
      // Closed by the peer; nothing to deliver.
    }
  }

  private startSession(socket: WebSocket, attachment: SocketAttachment): Session {
    const now = Date.now();
    const { mode, expiresAt, user, owner } = attachment;
    const session: Session = {
      grant: { mode, expiresAt, ...(user === undefined ? {} : { user }), ...(owner === undefined ? {} : { owner }) },
      messages: new TokenBucket(this.limits.rateMessagesPerSecond * 2, this.limits.rateMessagesPerSecond, now),
      // A full bucket always admits one frame of the maximum size.
      bytes: new TokenBucket(Math.max(this.limits.maxFrameBytes, this.limits.rateBytesPerSecond), this.limits.rateBytesPerSecond, now),
      answers: null,
      connectedAt: attachment.connectedAt,
      joined: attachment.joined,
      // The stamp may be up to one interval old; count the socket active until then.
      lastFrameAt: Math.min(now, attachment.activeAt + ACTIVITY_STAMP_INTERVAL_MS),
      stampedAt: attachment.activeAt,
      echoCredit: 0,
      bytesIn: 0,
      bytesOut: 0,
    };
    this.sessions.set(socket, session);
    return session;
  }

  private sessionOf(socket: WebSocket): Session {
    // A socket accepted before a wake whose attachment is gone is treated as a reader that expired.
    return this.sessions.get(socket) ?? this.startSession(socket, readAttachment(socket) ?? LOST_ATTACHMENT);
  }

  /** Records that `socket` sent a frame, saving the time when the saved one is an interval old. */
  private noteActivity(socket: WebSocket, session: Session, now: number): void {
    session.lastFrameAt = now;
    if (now - session.stampedAt >= ACTIVITY_STAMP_INTERVAL_MS) this.saveAttachment(socket);
  }

  private markJoined(socket: WebSocket, session: Session): void {
    if (session.joined) return;
    session.joined = true;
    this.saveAttachment(socket);
  }

  /** Remembers, through hibernation, that the room closed `socket`: its frames are never applied. */
  private markClosing(socket: WebSocket): void {
    this.closing.add(socket);
    const attachment = readAttachment(socket);
    try {
      socket.serializeAttachment({ ...(attachment ?? LOST_ATTACHMENT), presence: {}, closing: true } satisfies SocketAttachment);
    } catch {
      // Already closed by the peer: the runtime drops it, and nothing more arrives from it.
    }
  }

  private saveAttachment(socket: WebSocket): void {
    const attachment = readAttachment(socket);
    const session = this.sessions.get(socket);
    if (!attachment || !session) return;
    session.stampedAt = session.lastFrameAt;
    const { unconfirmed: _, ...rest } = attachment;
    socket.serializeAttachment({
      ...rest,
      presence: this.presence.heldBy(socket),
      joined: session.joined,
      activeAt: session.lastFrameAt,
      ...(this.unconfirmed.has(socket) ? { unconfirmed: true as const } : {}),
    } satisfies SocketAttachment);
  }

  /**
   * Compacts, logging the outcome. A failure is not the client's fault and loses nothing (the
   * transaction rolls back, the log stays), so it is logged and retried at the next trigger.
   */
  private compact(state?: Uint8Array): void {
    try {
      logEvent("compaction", { room: this.name, ...this.document.compact(state) });
    } catch (error) {
      logEvent("compaction_failed", { room: this.name, error: String(error) });
    }
  }

  /**
   * Makes sure the alarm fires by the earliest time any timed work is due. One alarm serves
   * everything; each run re-arms it for whatever is still due. `mayDelay` also moves a set
   * alarm later, which is right only when `due` covers all work there is: with no socket open
   * (socket deadlines are then moot).
   */
  private async scheduleAlarm(socketDeadline: number | null = null, mayDelay = false): Promise<void> {
    const pendingExpiry = this.loadedDocument?.pendingExpiry() ?? null;
    this.alarmStale = false;
    const due = earliest(this.store.heldWriteDue(), this.outbox?.nextDue() ?? null, this.presence.nextExpiry(), pendingExpiry, this.idleWorkDue, this.versionDue(), this.expiryDue(), socketDeadline);
    if (due === null) return;
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt === due || (!mayDelay && this.alarmAt !== null && this.alarmAt <= due)) return;
    await this.ctx.storage.setAlarm(due);
    this.alarmAt = due;
  }

  /** The document name (set because the Worker addresses rooms with `idFromName`). */
  private get name(): string | undefined {
    return this.ctx.id.name;
  }
}

/** Automatic versions that failed in a row, and when the next may be tried. */
interface VersionRetry {
  failures: number;
  at: number;
}
const NO_VERSION_RETRY: VersionRetry = { failures: 0, at: 0 };

/** Stands in for an attachment the runtime lost: a reader whose token expired, long inactive. */
const LOST_ATTACHMENT: SocketAttachment = { mode: "read", expiresAt: 0, connectedAt: 0, presence: {}, joined: true, activeAt: 0 };

/** `user.name` in an awareness state's JSON, or null (the state is remote input: anything may be there). */
function presenceName(state: string | null): string | null {
  if (state === null) return null;
  try {
    const name = (JSON.parse(state) as { user?: { name?: unknown } } | null)?.user?.name;
    return typeof name === "string" ? name : null;
  } catch {
    return null;
  }
}

function isExpired(session: Session, now: number): boolean {
  return session.grant.expiresAt !== null && now >= session.grant.expiresAt;
}

function earliest(...times: (number | null)[]): number | null {
  const known = times.filter((time): time is number => time !== null);
  return known.length > 0 ? Math.min(...known) : null;
}

function readAttachment(socket: WebSocket): SocketAttachment | null {
  return socket.deserializeAttachment() as SocketAttachment | null;
}

function closeQuietly(socket: WebSocket, code: number, reason: string): void {
  try {
    socket.close(code, truncateUtf8(reason, MAX_CLOSE_REASON_BYTES));
  } catch {
    // Already closed by the peer: there is nobody left to tell.
  }
}

function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = new TextEncoder().encode(text);
  if (bytes.length <= maxBytes) return text;
  return new TextDecoder().decode(bytes.subarray(0, maxBytes)).replace(/\uFFFD$/, "");
}
