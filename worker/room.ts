/**
 * Room: the Durable Object that owns one document and every socket editing it.
 *
 * Built for hibernation: sockets are accepted with `ctx.acceptWebSocket`, each socket's
 * identity, access and presence live in its attachment, and everything in memory is rebuilt
 * from `ctx.getWebSockets()` and SQLite storage when the object wakes. There are no JS timers
 * (an interval would keep the object awake); one alarm does the timed work (presence sweep,
 * dropping stale pending updates, compaction after the last socket leaves), and text "ping"
 * frames are answered by the runtime's auto-response without waking the object.
 */
import { DurableObject } from "cloudflare:workers";
import { grantFrom, type AccessGrant } from "./access";
import { PresenceRegistry, type SocketPresence } from "./awareness";
import { roomLimits, type RoomLimits } from "./config";
import { RoomDocument } from "./document";
import { DAY_MS, IDLE_COMPACTION_DELAY_MS } from "./limits";
import { logEvent } from "./log";
import {
  CloseCode,
  ProtocolError,
  decodeClientMessage,
  encodeAwareness,
  encodePermissionDenied,
  encodeSyncStep1,
  encodeSyncStep2,
  encodeSyncUpdate,
  type AwarenessEntry,
  type ClientMessage,
} from "./protocol";
import { TokenBucket } from "./rate";
import { DocumentStore, type StorageStats } from "./storage";

/** What each socket carries through hibernation (serialized by the runtime, 16 KiB at most). */
export interface SocketAttachment extends AccessGrant {
  connectedAt: number;
  presence: SocketPresence;
}

/** A socket's access and rate budget, kept in memory (budgets start full again after a wake). */
interface Session {
  grant: AccessGrant;
  messages: TokenBucket;
  bytes: TokenBucket;
  /** Bytes received from and sent to this socket since the room last woke, for the close log. */
  bytesIn: number;
  bytesOut: number;
}

/** What `GET /api/docs/:name` reports. */
export interface DocumentInfo extends StorageStats {
  exists: boolean;
  /** Size of the document encoded as one Yjs V1 update. */
  encodedBytes: number;
  sockets: number;
  /** ISO time of the last edit, or null. */
  lastUpdateAt: string | null;
}

/** An HTTP API outcome: the status and, for errors, `{ error, detail }`. */
export type ApiResult<T> = { ok: true; value: T } | { ok: false; status: number; error: string; detail: string };

/** Close codes the runtime reports but which must never be sent in a Close frame (RFC 6455 §7.4.1). */
const UNSENDABLE_CLOSE_CODES = new Set([1005, 1006, 1015]);

const TOKEN_EXPIRED_REASON = "token expired: reconnect with a fresh token";

/** A WebSocket close reason may be at most 123 bytes (RFC 6455 §5.5: 125-byte control payload). */
const MAX_CLOSE_REASON_BYTES = 123;

export class Room extends DurableObject<Env> {
  private document!: RoomDocument;
  private readonly limits: RoomLimits;
  private readonly presence = new PresenceRegistry<WebSocket>();
  private readonly sessions = new Map<WebSocket, Session>();
  /** Sockets the room has closed; the runtime may still list them until the close completes. */
  private readonly closing = new WeakSet<WebSocket>();
  /** When the alarm is set for: a time, null for none, undefined when not yet read after a wake. */
  private alarmAt: number | null | undefined = undefined;
  /** When to compact because the last socket left, or null. */
  private idleCompactionDue: number | null = null;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.limits = roomLimits(env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
    for (const socket of ctx.getWebSockets()) {
      const attachment = readAttachment(socket);
      if (!attachment) continue;
      this.presence.restore(socket, attachment.presence);
      this.startSession(socket, attachment);
    }
    // Nothing is handled until the document is back from storage.
    void ctx.blockConcurrencyWhile(async () => {
      const started = Date.now();
      this.document = this.openDocument();
      logEvent("load", { room: this.name, ms: Date.now() - started, bytes: this.document.statistics().storedBytes });
    });
  }

  /** Storage figures (Durable Object RPC), cheap to read: tests watch them; `info()` adds to them. */
  async stats(): Promise<StorageStats> {
    return { ...this.document.statistics() };
  }

  /** `GET /api/docs/:name`. */
  async info(): Promise<DocumentInfo> {
    const stats = this.document.statistics();
    const lastUpdateAt = this.document.lastUpdateAt();
    return {
      exists: lastUpdateAt !== null,
      ...stats,
      encodedBytes: this.document.encode().length,
      sockets: this.openSockets().length,
      lastUpdateAt: lastUpdateAt === null ? null : new Date(lastUpdateAt).toISOString(),
    };
  }

  /** `GET /api/docs/:name/text`. */
  async text(): Promise<string> {
    return this.document.text();
  }

  /** `GET /api/docs/:name/update`: the document, or what a peer with `stateVector` lacks. */
  async encodeUpdate(stateVector?: Uint8Array): Promise<ApiResult<Uint8Array>> {
    return this.viaApi(() => this.document.encode(stateVector));
  }

  /** `POST /api/docs/:name/update`: validated, stored and relayed like an edit from a socket. */
  async applyUpdate(update: Uint8Array): Promise<ApiResult<{ changed: boolean }>> {
    const result = this.viaApi(() => ({ changed: this.acceptChange(this.document.apply(update, Date.now())) }));
    // An update with missing dependencies waits; the alarm drops it if they never come.
    if (this.document.pendingExpiry() !== null) await this.scheduleAlarm();
    return result;
  }

  /** `PUT /api/docs/:name/text`: replaces the text as a minimal edit, relayed live. */
  async replaceText(text: string): Promise<ApiResult<{ changed: boolean }>> {
    return this.viaApi(() => ({ changed: this.acceptChange(this.document.replaceText(text, Date.now())) }));
  }

  /** `DELETE /api/docs/:name`: closes every socket with 4410 and deletes all storage. Idempotent. */
  async destroy(): Promise<void> {
    for (const socket of this.openSockets()) this.reject(socket, CloseCode.documentDeleted, "document deleted");
    await this.deleteStorage("deleted");
  }

  /** Accepts a WebSocket upgrade forwarded (and authorized) by the Worker and starts the sync handshake. */
  async fetch(request: Request): Promise<Response> {
    const grant = grantFrom(request);
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    if (this.ctx.getWebSockets().length > this.limits.maxSocketsPerRoom) {
      // Accept-then-close, so the client gets a close code and reason rather than a bare HTTP error.
      logEvent("room_full", { room: this.name, sockets: this.limits.maxSocketsPerRoom });
      this.closing.add(server);
      closeQuietly(server, CloseCode.tryAgainLater, `room full: ${this.limits.maxSocketsPerRoom} connections`);
      return new Response(null, { status: 101, webSocket: client });
    }
    const attachment: SocketAttachment = { ...grant, connectedAt: Date.now(), presence: {} };
    server.serializeAttachment(attachment);
    const session = this.startSession(server, attachment);
    this.sendTo(server, session, encodeSyncStep1(this.document.stateVector()));
    const states = this.presence.states();
    if (states.length > 0) this.sendTo(server, session, encodeAwareness(states));
    logEvent("connect", { room: this.name, mode: grant.mode, user: grant.user, sockets: this.ctx.getWebSockets().length });
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(socket: WebSocket, message: ArrayBuffer | string): Promise<void> {
    const session = this.sessionOf(socket);
    const now = Date.now();
    try {
      if (isExpired(session, now)) throw new ProtocolError(CloseCode.tokenExpired, TOKEN_EXPIRED_REASON);
      if (typeof message === "string") {
        throw new ProtocolError(CloseCode.unsupportedData, "text frames are not supported; send binary y-websocket frames");
      }
      if (message.byteLength > this.limits.maxFrameBytes) {
        throw new ProtocolError(CloseCode.messageTooBig, `frame too large: over ${this.limits.maxFrameBytes} bytes`);
      }
      session.bytesIn += message.byteLength;
      if (!session.messages.take(1, now) || !session.bytes.take(message.byteLength, now)) {
        throw new ProtocolError(
          CloseCode.policyViolation,
          `rate limit exceeded: ${this.limits.rateMessagesPerSecond} messages or ${this.limits.rateBytesPerSecond} bytes per second`,
        );
      }
      await this.handle(socket, session, decodeClientMessage(new Uint8Array(message)));
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
    this.closing.add(socket);
    const attachment = readAttachment(socket);
    const session = this.sessions.get(socket);
    logEvent("close", {
      room: this.name,
      code,
      reason,
      wasClean,
      durationMs: attachment ? Date.now() - attachment.connectedAt : undefined,
      bytesIn: session?.bytesIn,
      bytesOut: session?.bytesOut,
    });
    this.dropSocket(socket);
    if (!UNSENDABLE_CLOSE_CODES.has(code)) closeQuietly(socket, code, reason);
    if (this.openSockets().length === 0) {
      const now = Date.now();
      this.document.markActive(now);
      this.idleCompactionDue = now + IDLE_COMPACTION_DELAY_MS;
      await this.scheduleAlarm();
    }
  }

  async webSocketError(socket: WebSocket, error: unknown): Promise<void> {
    this.closing.add(socket);
    logEvent("socket_error", { room: this.name, error: String(error) });
    this.dropSocket(socket);
  }

  /**
   * The room's timed work: sweep presence that was not renewed (peers that vanished without a
   * close), drop pending updates past their TTL, and compact once nobody is connected.
   */
  async alarm(): Promise<void> {
    this.alarmAt = null;
    this.idleCompactionDue = null;
    const now = Date.now();
    const expiry = this.expiryDue();
    if (expiry !== null && now >= expiry) return this.deleteStorage("expired");
    if (this.document.expirePending(now)) logEvent("pending_dropped", { room: this.name });
    if (this.ctx.getWebSockets().length === 0 && this.document.hasLog()) this.compact();
    const { removed, changedSockets, silentSockets } = this.presence.sweep(now);
    for (const socket of changedSockets) this.saveAttachment(socket);
    for (const socket of silentSockets) {
      logEvent("presence_timeout", { room: this.name });
      closeQuietly(socket, CloseCode.presenceTimeout, "presence timed out: no awareness renewal for 30 s");
    }
    if (removed.length > 0) this.broadcast(encodeAwareness(removed));
    await this.scheduleAlarm();
  }

  private async handle(socket: WebSocket, session: Session, message: ClientMessage): Promise<void> {
    switch (message.type) {
      case "sync-step1":
        this.sendTo(socket, session, encodeSyncStep2(this.document.missingFrom(message.stateVector)));
        return;
      case "sync-step2":
      case "sync-update":
        if (session.grant.mode === "read") return this.denyWrite(socket, session, message.update);
        this.acceptChange(this.document.apply(message.update, Date.now()), socket);
        if (this.document.pendingExpiry() !== null) await this.scheduleAlarm();
        return;
      case "awareness":
        return this.applyAwareness(socket, message.entries);
      case "query-awareness":
        this.sendTo(socket, session, encodeAwareness(this.presence.states()));
        return;
    }
  }

  /**
   * After the document stored a change (from a socket or the HTTP API): relay it to every
   * other socket, and compact if the log has grown enough. The relay happens after the write,
   * so the output gate holds it until the write is durable.
   */
  private acceptChange(integrated: Uint8Array | null, from?: WebSocket): boolean {
    if (integrated === null) return false;
    this.broadcast(encodeSyncUpdate(integrated), from);
    if (this.document.needsCompaction()) this.compact();
    return true;
  }

  /** Runs an HTTP API operation, turning a refusal into `{ error, detail }` with its status. */
  private viaApi<T>(operation: () => T): ApiResult<T> {
    try {
      return { ok: true, value: operation() };
    } catch (error) {
      if (!(error instanceof ProtocolError)) throw error;
      const status = error.closeCode === CloseCode.documentTooLarge ? 413 : 400;
      return { ok: false, status, error: status === 413 ? "document_too_large" : "invalid_update", detail: error.message };
    }
  }

  private openSockets(): WebSocket[] {
    return this.ctx.getWebSockets().filter((socket) => !this.closing.has(socket));
  }

  /** When an idle room's storage expires (DOC_TTL_DAYS), or null when expiry is off or sockets are open. */
  private expiryDue(): number | null {
    const lastActivity = this.document.lastActivity();
    if (this.limits.docTtlDays === null || lastActivity === null || this.openSockets().length > 0) return null;
    return lastActivity + this.limits.docTtlDays * DAY_MS;
  }

  /** Deletes everything the room stores and starts over with an empty document. */
  private async deleteStorage(why: "deleted" | "expired"): Promise<void> {
    const bytes = this.document.statistics().storedBytes;
    await this.ctx.storage.deleteAlarm();
    await this.ctx.storage.deleteAll();
    this.alarmAt = null;
    this.idleCompactionDue = null;
    this.document = this.openDocument();
    logEvent(why === "expired" ? "document_expired" : "document_deleted", { room: this.name, bytes });
  }

  private openDocument(): RoomDocument {
    const store = new DocumentStore(this.ctx.storage.sql, (body) => this.ctx.storage.transactionSync(body));
    return new RoomDocument(store, this.limits.maxDocumentBytes);
  }

  /** A read-only socket's edit: not applied, stored or relayed; the client is told why. */
  private denyWrite(socket: WebSocket, session: Session, update: Uint8Array): void {
    // A reader with nothing new answers our sync step 1 with an empty update: not an edit.
    if (RoomDocument.isEmpty(update)) return;
    logEvent("write_denied", { room: this.name, bytes: update.length });
    this.sendTo(socket, session, encodePermissionDenied("read-only access: edits are not saved"));
  }

  private async applyAwareness(socket: WebSocket, entries: AwarenessEntry[]): Promise<void> {
    const changes = this.presence.apply(socket, entries, Date.now());
    if (changes.length === 0) return;
    this.saveAttachment(socket);
    // Relayed to the sender too, as the reference server does: a provider alone in a room
    // otherwise hears nothing and reconnects after 30 s of silence. The echo also tells the
    // sender that everything it sent before is stored (client/saved.ts relies on it).
    this.broadcast(encodeAwareness(changes));
    await this.scheduleAlarm();
  }

  /** Closes a socket that sent something we refuse; the document and other sockets are untouched. */
  private reject(socket: WebSocket, code: CloseCode, reason: string): void {
    if (this.closing.has(socket)) return;
    this.closing.add(socket);
    logEvent("frame_rejected", { room: this.name, code, reason });
    closeQuietly(socket, code, reason);
    this.dropSocket(socket);
  }

  /** Forgets a socket and tells everyone else its presence left. */
  private dropSocket(socket: WebSocket): void {
    this.sessions.delete(socket);
    const removed = this.presence.removeSocket(socket);
    if (removed.length > 0) this.broadcast(encodeAwareness(removed), socket);
  }

  /** Sends to every socket but `except`; a socket whose token expired is closed instead. */
  private broadcast(frame: Uint8Array, except?: WebSocket): void {
    const now = Date.now();
    const expired: WebSocket[] = [];
    for (const socket of this.openSockets()) {
      if (socket === except) continue;
      const session = this.sessionOf(socket);
      if (isExpired(session, now)) {
        expired.push(socket);
        continue;
      }
      this.sendTo(socket, session, frame);
    }
    for (const socket of expired) this.reject(socket, CloseCode.tokenExpired, TOKEN_EXPIRED_REASON);
  }

  /**
   * Sends, ignoring a socket the peer already closed: its close handler cleans up, and the
   * frame being handled (or the other recipients of a broadcast) must not fail because of it.
   */
  private sendTo(socket: WebSocket, session: Session, frame: Uint8Array): void {
    try {
      socket.send(frame);
      session.bytesOut += frame.byteLength;
    } catch {
      // Closed by the peer; nothing to deliver.
    }
  }

  private startSession(socket: WebSocket, grant: AccessGrant): Session {
    const now = Date.now();
    const session: Session = {
      grant: { mode: grant.mode, expiresAt: grant.expiresAt, ...(grant.user === undefined ? {} : { user: grant.user }) },
      messages: new TokenBucket(this.limits.rateMessagesPerSecond * 2, this.limits.rateMessagesPerSecond, now),
      // A full bucket always admits one frame of the maximum size.
      bytes: new TokenBucket(Math.max(this.limits.maxFrameBytes, this.limits.rateBytesPerSecond), this.limits.rateBytesPerSecond, now),
      bytesIn: 0,
      bytesOut: 0,
    };
    this.sessions.set(socket, session);
    return session;
  }

  private sessionOf(socket: WebSocket): Session {
    // A socket accepted before a wake whose attachment is gone is treated as a reader that expired.
    return this.sessions.get(socket) ?? this.startSession(socket, readAttachment(socket) ?? { mode: "read", expiresAt: 0 });
  }

  private saveAttachment(socket: WebSocket): void {
    const attachment = readAttachment(socket);
    if (!attachment) return;
    socket.serializeAttachment({ ...attachment, presence: this.presence.heldBy(socket) } satisfies SocketAttachment);
  }

  /**
   * Compacts, logging the outcome. A failure is not the client's fault and loses nothing (the
   * transaction rolls back, the log stays), so it is logged and retried at the next trigger.
   */
  private compact(): void {
    try {
      logEvent("compaction", { room: this.name, ...this.document.compact() });
    } catch (error) {
      logEvent("compaction_failed", { room: this.name, error: String(error) });
    }
  }

  /**
   * Makes sure the alarm fires by the earliest time any timed work is due. One alarm serves
   * everything; each run re-arms it for whatever is still due.
   */
  private async scheduleAlarm(): Promise<void> {
    const due = earliest(this.presence.nextExpiry(), this.document.pendingExpiry(), this.idleCompactionDue, this.expiryDue());
    if (due === null) return;
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt !== null && this.alarmAt <= due) return;
    await this.ctx.storage.setAlarm(due);
    this.alarmAt = due;
  }

  /** The document name (set because the Worker addresses rooms with `idFromName`). */
  private get name(): string | undefined {
    return this.ctx.id.name;
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
