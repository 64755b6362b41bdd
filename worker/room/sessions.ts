/**
 * The room's sockets: each one's access, budgets and activity (a session), what it carries
 * through hibernation (its attachment), and the ways frames leave the room (one socket, or
 * everyone with the relay bound). A second transport or a relay tier is another adapter of
 * these sessions (docs/architecture.md); the update lifecycle does not change for it.
 */
import type { AccessGrant } from "../access";
import type { PresenceRegistry, SocketPresence } from "../awareness";
import type { AwarenessEntry } from "../protocol";
import type { RoomLimits } from "../config";
import {
  ACTIVITY_STAMP_INTERVAL_MS,
  ECHO_CREDIT_LIMIT_BYTES,
  ECHO_CREDIT_PER_BYTE_SENT,
  JOIN_TIMEOUT_MS,
  MAX_RELAY_BYTES,
} from "../limits";
import { logEvent } from "../log";
import { AWARENESS_TIMEOUT_MS, CloseCode, MessageType, encodeAwareness, isSyncUpdate } from "../protocol";
import { TokenBucket } from "../rate";
import type { RoomSocket } from "./ports";

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
  /** Its save confirmation is withheld (worker/room/updates.ts): an update of its waits, or was dropped and must be sent again. */
  unconfirmed?: true;
  /** A quiet client (docs/protocol.md, "Quiet clients"): its presence is kept while it is open, and its silence judged by probes (worker/room/quiet-clients.ts). */
  quiet?: true;
  /** When the room probed this quiet client and has not seen it since (worker/room/quiet-clients.ts). */
  probedAt?: number;
}

/** A socket's access, budgets and activity, kept in memory (budgets start full again after a wake). */
export interface Session {
  grant: AccessGrant;
  messages: TokenBucket;
  bytes: TokenBucket;
  /** Bytes the room may still send in answer to this socket's requests; made at its first answer. */
  answers: TokenBucket | null;
  connectedAt: number;
  joined: boolean;
  /** A quiet client: it sends nothing while nothing changes, and answers the room's probes. */
  quiet: boolean;
  /** When the room probed it, until it shows a sign of life (worker/room/quiet-clients.ts). */
  probedAt?: number;
  /** A renewing socket's: when it was last sent quiet clients' states renewed (in memory: a wake renews at its next frame). */
  quietRenewedAt: number;
  /**
   * When it last sent a frame (`ping` never reaches the room) as its silence deadline counts
   * it: after a wake, the saved stamp plus the interval it may be behind (the benefit of the doubt).
   */
  lastFrameAt: number;
  /** When it last sent a frame for certain (a frame seen, or the saved stamp), and when that was last saved. */
  frameSeenAt: number;
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

/**
 * Who hears a broadcast: everyone, or only the sockets that may write (they can send back an
 * edit the room lost) or only the read-only ones (which cannot, so they hear edits once stored).
 */
export type Audience = "everyone" | "writers" | "readers" | "quiet" | "renewing";

export const TOKEN_EXPIRED_REASON = "token expired: reconnect with a fresh token";

/** A WebSocket close reason may be at most 123 bytes (RFC 6455 §5.5: 125-byte control payload). */
const MAX_CLOSE_REASON_BYTES = 123;

/** Stands in for an attachment the runtime lost: a reader whose token expired, long inactive. */
const LOST_ATTACHMENT: SocketAttachment = { mode: "read", expiresAt: 0, connectedAt: 0, presence: {}, joined: true, activeAt: 0 };

/** What the sessions ask of the update lifecycle (worker/room/updates.ts). */
export interface SessionHooks<Socket> {
  /**
   * Before any frame but a relayed edit leaves: everything accepted must be stored first (the
   * writer's save confirmation is the echo of its presence, and any frame might be taken as
   * one). False when that write failed.
   */
  storeBeforeTelling(): boolean;
  /** Whether `socket`'s save confirmation is withheld. */
  unconfirmed(socket: Socket): boolean;
  /** `socket` left the room (closed by the room or by its peer). */
  forget(socket: Socket): void;
}

export class Sessions<Socket extends RoomSocket> {
  private readonly sessions = new Map<Socket, Session>();
  /** Sockets the room has closed; the runtime may still list them until the close completes. */
  private readonly closing = new WeakSet<Socket>();
  /** How many sessions are read-only: with none, no relay needs sorting by audience. */
  private readers = 0;
  hooks: SessionHooks<Socket> = { storeBeforeTelling: () => true, unconfirmed: () => false, forget: () => {} };

  constructor(
    private readonly listed: () => Socket[],
    private readonly limits: RoomLimits,
    private readonly presence: PresenceRegistry<Socket>,
    private readonly room: string | undefined,
  ) {}

  /**
   * Rebuilds the sessions from what the runtime lists (a wake from hibernation): returns the
   * sockets whose save confirmation was withheld.
   */
  restore(now: number): Socket[] {
    const unconfirmed: Socket[] = [];
    for (const socket of this.listed()) {
      const attachment = readAttachment(socket);
      if (attachment?.closing) this.closing.add(socket);
      if (!attachment || attachment.closing) continue;
      this.presence.restore(socket, attachment.presence, attachment.owner, attachment.quiet === true);
      this.start(socket, attachment, now);
      if (attachment.unconfirmed) unconfirmed.push(socket);
    }
    return unconfirmed;
  }

  /** Opens a session for a socket the runtime just accepted; `quiet` for a quiet client. */
  open(socket: Socket, grant: AccessGrant, now: number, quiet = false): Session {
    const attachment: SocketAttachment = { ...grant, connectedAt: now, presence: {}, joined: false, activeAt: now, ...(quiet ? { quiet: true as const } : {}) };
    socket.serializeAttachment(attachment);
    if (quiet) this.presence.keepWhileOpen(socket);
    return this.start(socket, attachment, now);
  }

  private start(socket: Socket, attachment: SocketAttachment, now: number): Session {
    const { mode, expiresAt, user, owner } = attachment;
    const session: Session = {
      grant: { mode, expiresAt, ...(user === undefined ? {} : { user }), ...(owner === undefined ? {} : { owner }) },
      messages: new TokenBucket(this.limits.rateMessagesPerSecond * 2, this.limits.rateMessagesPerSecond, now),
      // A full bucket always admits one frame of the maximum size.
      bytes: new TokenBucket(Math.max(this.limits.maxFrameBytes, this.limits.rateBytesPerSecond), this.limits.rateBytesPerSecond, now),
      answers: null,
      connectedAt: attachment.connectedAt,
      joined: attachment.joined,
      quiet: attachment.quiet === true,
      quietRenewedAt: -Infinity,
      ...(attachment.probedAt === undefined ? {} : { probedAt: attachment.probedAt }),
      // The stamp may be up to one interval old; count the socket active until then.
      lastFrameAt: Math.min(now, attachment.activeAt + ACTIVITY_STAMP_INTERVAL_MS),
      frameSeenAt: attachment.activeAt,
      stampedAt: attachment.activeAt,
      echoCredit: 0,
      bytesIn: 0,
      bytesOut: 0,
    };
    this.sessions.set(socket, session);
    if (mode === "read") this.readers++;
    return session;
  }

  /** Forgets `socket`'s session (the socket keeps its attachment). */
  private end(socket: Socket): void {
    if (this.sessions.get(socket)?.grant.mode === "read") this.readers--;
    this.sessions.delete(socket);
  }

  /** Whether any session is read-only (worker/room/updates.ts relays to them once stored). */
  get anyReaders(): boolean {
    return this.readers > 0;
  }

  /** `socket`'s session; a socket accepted before a wake whose attachment is gone is a reader that expired. */
  of(socket: Socket, now: number): Session {
    return this.sessions.get(socket) ?? this.start(socket, readAttachment(socket) ?? LOST_ATTACHMENT, now);
  }

  get(socket: Socket): Session | undefined {
    return this.sessions.get(socket);
  }

  /** Whether any socket has a session (a socket its client is closing counts until its close is handled). */
  any(): boolean {
    return this.sessions.size > 0;
  }

  /** The sockets the room has not closed. */
  openSockets(): Socket[] {
    return this.listed().filter((socket) => !this.closing.has(socket));
  }

  isClosing(socket: Socket): boolean {
    return this.closing.has(socket);
  }

  /** Remembers, through hibernation, that the room closed `socket`: its frames are never applied. */
  markClosing(socket: Socket): void {
    this.closing.add(socket);
    try {
      socket.serializeAttachment({ ...(readAttachment(socket) ?? LOST_ATTACHMENT), presence: {}, closing: true } satisfies SocketAttachment);
    } catch {
      // Already closed by the peer: the runtime drops it, and nothing more arrives from it.
    }
  }

  /** Saves what `socket` carries through hibernation. */
  save(socket: Socket): void {
    const attachment = readAttachment(socket);
    const session = this.sessions.get(socket);
    if (!attachment || !session) return;
    session.stampedAt = session.frameSeenAt;
    const { unconfirmed: _, probedAt: __, ...rest } = attachment;
    socket.serializeAttachment({
      ...rest,
      presence: this.presence.heldBy(socket),
      joined: session.joined,
      // What a frame showed, not the estimate after a wake: saved back, that would creep an interval each wake.
      activeAt: session.frameSeenAt,
      ...(this.hooks.unconfirmed(socket) ? { unconfirmed: true as const } : {}),
      ...(session.probedAt === undefined ? {} : { probedAt: session.probedAt }),
    } satisfies SocketAttachment);
  }

  /** Records that `socket` sent a frame; {@link stampIfDue} saves it once the frame is handled. */
  noteActivity(session: Session, now: number): void {
    session.lastFrameAt = now;
    session.frameSeenAt = now;
  }

  /** Saves what `socket` carries when the saved activity stamp is an interval old. */
  stampIfDue(socket: Socket, session: Session, now: number): void {
    if (now - session.stampedAt >= ACTIVITY_STAMP_INTERVAL_MS) this.save(socket);
  }

  /** Records that the room probed a quiet client (`probedAt`), or saw it since (undefined), through hibernation. */
  noteProbe(socket: Socket, session: Session, probedAt: number | undefined): void {
    if (probedAt === undefined) delete session.probedAt;
    else session.probedAt = probedAt;
    this.save(socket);
  }

  /** The open sockets of quiet clients that joined: those worker/room/quiet-clients.ts judges. */
  quietSockets(now: number): Socket[] {
    return this.openSockets().filter((socket) => {
      const session = this.of(socket, now);
      return session.quiet && session.joined;
    });
  }

  markJoined(socket: Socket, session: Session): void {
    if (session.joined) return;
    session.joined = true;
    this.save(socket);
  }

  /**
   * Sends, ignoring a socket the peer already closed: its close handler cleans up, and the
   * frame being handled (or the other recipients of a broadcast) must not fail because of it.
   */
  send(socket: Socket, session: Session, frame: Uint8Array): void {
    // A writer whose held edits failed to be written was just closed: it must not hear more.
    if (!isSyncUpdate(frame) && !this.hooks.storeBeforeTelling() && this.closing.has(socket)) return;
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

  /**
   * Sends to every socket but `except`; a socket whose token expired is closed instead. At most
   * {@link MAX_RELAY_BYTES} are queued for one frame across the room: sockets past that are
   * closed with 1013 and catch up through the sync handshake when they reconnect. Those that
   * sent a frame most recently are served first: honest editors renew their presence every
   * 15 s, while a socket that stopped reading has usually stopped sending too.
   */
  broadcast(frame: Uint8Array, now: number, except?: Socket, audience: Audience = "everyone"): void {
    if (!isSyncUpdate(frame)) this.hooks.storeBeforeTelling();
    const everyone = audience === "everyone" || (audience === "writers" && !this.anyReaders);
    const heard = (socket: Socket) => {
      if (everyone) return true;
      const session = this.of(socket, now);
      if (audience === "quiet" || audience === "renewing") return session.quiet === (audience === "quiet");
      return (session.grant.mode === "read") === (audience === "readers");
    };
    const recipients = this.listed().filter((socket) => socket !== except && !this.closing.has(socket) && heard(socket));
    const affordable = Math.floor(MAX_RELAY_BYTES / Math.max(frame.byteLength, 1));
    if (recipients.length > affordable) recipients.sort((a, b) => this.of(b, now).lastFrameAt - this.of(a, now).lastFrameAt);
    const expired: Socket[] = [];
    const shed: Socket[] = [];
    let sent = 0;
    for (const socket of recipients) {
      const session = this.of(socket, now);
      if (isExpired(session, now)) expired.push(socket);
      else if (sent++ < affordable) this.send(socket, session, frame);
      else shed.push(socket);
    }
    for (const socket of expired) this.reject(socket, CloseCode.tokenExpired, TOKEN_EXPIRED_REASON, now);
    if (shed.length > 0) logEvent("relay_shed", { room: this.room, bytes: frame.byteLength, sockets: shed.length });
    for (const socket of shed) this.reject(socket, CloseCode.tryAgainLater, "room busy: reconnect to catch up", now);
  }

  /** Closes a socket that sent something we refuse; the document and other sockets are untouched. */
  reject(socket: Socket, code: CloseCode, reason: string, now: number): void {
    if (this.closing.has(socket)) return;
    this.markClosing(socket);
    logEvent("frame_rejected", { room: this.room, code, reason });
    closeQuietly(socket, code, reason);
    this.drop(socket, now);
  }

  /**
   * Closes every open socket with `code`, all before any is forgotten: forgetting one tells the
   * others its presence left, which first writes what is held, and a write that fails would
   * close its writers with 1011 instead (DELETE closes everyone with 4410).
   */
  closeAll(code: CloseCode, reason: string, now: number): void {
    const sockets = this.openSockets();
    for (const socket of sockets) {
      this.markClosing(socket);
      logEvent("frame_rejected", { room: this.room, code, reason });
      closeQuietly(socket, code, reason);
    }
    for (const socket of sockets) this.drop(socket, now);
  }

  /** Closes a socket just accepted (1013): the room cannot take it now. */
  refuseNew(socket: Socket, reason: string): void {
    this.end(socket);
    this.markClosing(socket);
    closeQuietly(socket, CloseCode.tryAgainLater, reason);
  }

  /** Forgets a socket and tells everyone else its presence left. */
  drop(socket: Socket, now: number): void {
    this.end(socket);
    this.hooks.forget(socket);
    const { removed, shown } = this.presence.removeSocket(socket, now);
    if (removed.length > 0) this.broadcastPresence(removed, shown, now, socket);
  }

  /**
   * Sends presence changes to every socket but `except`: quiet clients under the clocks their
   * senders sent, renewing sockets under the raised clocks they were shown (`shown`; the same
   * array when nothing is raised, and then one frame goes to everyone). See worker/awareness.ts.
   */
  broadcastPresence(changes: AwarenessEntry[], shown: AwarenessEntry[], now: number, except?: Socket): void {
    if (shown === changes) return this.broadcast(encodeAwareness(changes), now, except);
    this.broadcast(encodeAwareness(changes), now, except, "quiet");
    this.broadcast(encodeAwareness(shown), now, except, "renewing");
  }

  /**
   * Closes sockets that hold a place in the room without using it: not joined within
   * {@link JOIN_TIMEOUT_MS} (4001), or no frame for {@link AWARENESS_TIMEOUT_MS} (4000; stock
   * providers renew their presence every 15 s, and `ping` never reaches the room). A quiet
   * client that joined sends nothing while nothing changes: its silence is judged by probes
   * (worker/room/quiet-clients.ts), not here.
   */
  closeIdle(now: number): void {
    for (const socket of this.openSockets()) {
      const session = this.of(socket, now);
      if (!session.joined && now - session.connectedAt >= JOIN_TIMEOUT_MS) {
        this.reject(socket, CloseCode.joinTimeout, `join timed out: no sync step 2 within ${JOIN_TIMEOUT_MS / 1000} s`, now);
      } else if (session.joined && session.quiet) {
        continue;
      } else if (now - session.lastFrameAt >= AWARENESS_TIMEOUT_MS) {
        logEvent("presence_timeout", { room: this.room });
        this.reject(socket, CloseCode.presenceTimeout, `presence timed out: no frame for ${AWARENESS_TIMEOUT_MS / 1000} s`, now);
      }
    }
  }

  /** When the next open socket would be closed by {@link closeIdle}, or null. */
  nextDeadline(now: number): number | null {
    let next: number | null = null;
    for (const socket of this.openSockets()) {
      const session = this.of(socket, now);
      if (session.joined && session.quiet) continue;
      const due = session.joined ? session.lastFrameAt + AWARENESS_TIMEOUT_MS : session.connectedAt + JOIN_TIMEOUT_MS;
      next = next === null ? due : Math.min(next, due);
    }
    return next;
  }
}

export function isExpired(session: Session, now: number): boolean {
  return session.grant.expiresAt !== null && now >= session.grant.expiresAt;
}

export function readAttachment(socket: RoomSocket): SocketAttachment | null {
  return socket.deserializeAttachment() as SocketAttachment | null;
}

export function closeQuietly(socket: RoomSocket, code: number, reason: string): void {
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
