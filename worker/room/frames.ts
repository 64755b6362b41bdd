/**
 * What the room does with each frame a socket sends: the budgets it pays first, then one case
 * per y-websocket message type. Edits go on through the update life (worker/room/updates.ts);
 * presence through the registry (worker/awareness.ts). Anything refused throws
 * `ProtocolError`, and the core closes that socket only.
 */
import { RoomDocument } from "../document";
import { ACTIVITY_STAMP_INTERVAL_MS, ANSWER_SLACK_BYTES, SOCKET_ANSWER_BURST_BYTES } from "../limits";
import { logEvent } from "../log";
import {
  CloseCode,
  MessageType,
  ProtocolError,
  decodeClientMessage,
  encodeAwareness,
  encodePermissionDenied,
  encodeSyncStep2,
  readAwarenessEntries,
  type ClientMessage,
} from "../protocol";
import { TokenBucket } from "../rate";
import type { RoomCore } from "./core";
import type { RoomSocket } from "./ports";
import { TOKEN_EXPIRED_REASON, isExpired, type Session } from "./sessions";

export class FrameHandler<Socket extends RoomSocket> {
  constructor(private readonly room: RoomCore<Socket>) {}

  /** Checks a frame against the socket's token and budgets, then handles it. */
  async handle(socket: Socket, message: ArrayBuffer | string): Promise<void> {
    const { sessions, limits } = this.room;
    const now = this.room.host.now();
    const session = sessions.of(socket, now);
    sessions.noteActivity(session, now);
    if (isExpired(session, now)) throw new ProtocolError(CloseCode.tokenExpired, TOKEN_EXPIRED_REASON);
    if (typeof message === "string") {
      throw new ProtocolError(CloseCode.unsupportedData, "text frames are not supported; send binary y-websocket frames");
    }
    if (message.byteLength > limits.maxFrameBytes) {
      throw new ProtocolError(CloseCode.messageTooBig, `frame too large: over ${limits.maxFrameBytes} bytes`);
    }
    session.bytesIn += message.byteLength;
    const frame = new Uint8Array(message);
    // An awareness frame pays for its message once the room knows whether it is an echo.
    const paysNow = frame[0] !== MessageType.awareness;
    if (!session.bytes.take(frame.byteLength, now) || (paysNow && !session.messages.take(1, now))) throw this.rateExceeded();
    await this.dispatch(socket, session, decodeClientMessage(frame));
    // Saved once the frame is handled, with the presence it may have changed: saved before, the
    // attachment would lag a change behind, and after a wake the room would announce the
    // socket's removal under a clock its peers have passed (which y-protocols ignores).
    sessions.stampIfDue(socket, session, now);
  }

  private async dispatch(socket: Socket, session: Session, message: ClientMessage): Promise<void> {
    const room = this.room;
    switch (message.type) {
      case "sync-step1":
        // Written before the answer is encoded: a failed write sends the room back to what is
        // stored, and the answer must not carry what it discarded.
        room.life.writeHeld();
        return this.answer(socket, session, encodeSyncStep2(room.document.missingFrom(message.stateVector)));
      case "sync-step2":
      case "sync-update": {
        room.sessions.markJoined(socket, session);
        if (session.grant.mode === "read") return this.denyWrite(socket, session, message.update);
        const heldBefore = room.store.holdsUpdates();
        const waitedBefore = room.document.hasPending();
        room.life.fromSocket(socket, message.update, this.authorOf(socket, session), message.type === "sync-step2");
        // The first held update must be written by the alarm at the latest; the first waiting
        // one dropped past its TTL (the core moves the alarm once the frame is handled).
        if ((!heldBefore && room.store.holdsUpdates()) || (!waitedBefore && room.document.hasPending())) room.alarmStale = true;
        return room.life.settle();
      }
      case "awareness":
        return this.applyAwareness(socket, session, message.update);
      case "query-awareness":
        // Written first: a failed write withholds this socket's confirmation, so its own state is left out.
        room.life.writeHeld();
        return this.answer(socket, session, encodeAwareness(room.presence.statesFor(this.room.host.now(), socket, !room.life.isWithheld(socket), !session.quiet)));
      default:
        // A message type added to the protocol but not handled here fails to compile.
        return message satisfies never;
    }
  }

  /**
   * Sends `frame` in answer to a request of `socket`, charged to its answer budget (over it:
   * 1008, the socket asks faster than it could read) and to the room's (over it: 1013).
   */
  private answer(socket: Socket, session: Session, frame: Uint8Array): void {
    this.chargeAnswer(session, frame.byteLength);
    this.room.sessions.send(socket, session, frame);
  }

  /**
   * Charges `bytes` the room is asked to send a socket to its answer budget (throws 1008 past
   * it) and to the room's (1013): sync answers, presence queries, and what the HTTP fallback
   * sends a session again because it asked for frames it already had.
   */
  chargeAnswer(session: Session, bytes: number): void {
    const now = this.room.host.now();
    // A socket may at first be sent twice its first answer (its sync, usually the document)
    // plus slack, not a full burst: asking for the document again and again is then refused
    // after a couple of encodes, not dozens, and no encode is spent just to size the budget.
    session.answers ??= new TokenBucket(SOCKET_ANSWER_BURST_BYTES, this.room.limits.rateBytesPerSecond, now, 2 * bytes + ANSWER_SLACK_BYTES);
    if (!session.answers.take(bytes, now)) {
      throw new ProtocolError(
        CloseCode.policyViolation,
        `answer budget exceeded: asked to be sent over ${this.room.limits.rateBytesPerSecond} bytes per second`,
      );
    }
    if (!this.room.answers.take(bytes, now)) throw new ProtocolError(CloseCode.tryAgainLater, "room busy: try again shortly");
  }

  /** A read-only socket's edit: not applied, stored or relayed; the client is told why. */
  private denyWrite(socket: Socket, session: Session, update: Uint8Array): void {
    // A reader with nothing new answers our sync step 1 with an empty update: not an edit.
    if (RoomDocument.isEmpty(update)) return;
    logEvent("write_denied", { room: this.room.name, bytes: update.length });
    this.room.sessions.send(socket, session, encodePermissionDenied("read-only access: edits are not saved"));
  }

  private applyAwareness(socket: Socket, session: Session, update: Uint8Array): void {
    const { presence, sessions } = this.room;
    const now = this.room.host.now();
    const heldBefore = presence.heldCount(socket);
    const { changes, shown, renew, heldElsewhere } = presence.apply(socket, readAwarenessEntries(update), now, session.grant.owner);
    // A quiet client back on a new connection: its old one is asked now, so that its presence
    // moves here within a probe's grace rather than at the next periodic check.
    for (const holder of heldElsewhere) if (this.room.quiet.probe(holder, now)) this.room.alarmStale = true;
    if (changes.length === 0) {
      // An echo of others' states: paid from what the room sent this socket, so a stock
      // provider in a busy room is never closed for it, and a flood cannot pose as echoes.
      if (session.echoCredit >= update.byteLength) session.echoCredit -= update.byteLength;
      else if (!session.messages.take(1, now)) throw this.rateExceeded();
      // A state behind its removal changes nothing, but its sender is told (see below).
      if (renew.length > 0) sessions.send(socket, session, encodeAwareness(renew));
      return;
    }
    if (!session.messages.take(1, now)) throw this.rateExceeded();
    session.author = undefined;
    // Who is here is saved for hibernation at once, and so is every state of a quiet client:
    // renewing sockets are shown it under clocks raised from the one the room holds, and after a
    // wake a clock the attachment lagged behind would show them lower clocks than they saw, which
    // y-protocols ignores. A stock client's state that only changed (a cursor move,
    // several a second while typing) at most every ACTIVITY_STAMP_INTERVAL_MS, as activity is.
    // After a wake a joiner may see a cursor up to that old until its owner's next move or
    // 15 s renewal; the saved `lastSeen` is as old at most, well inside the 30 s timeout.
    const whoChanged = presence.heldCount(socket) !== heldBefore || changes.some((change) => change.state === null);
    if (whoChanged || session.quiet || now - session.stampedAt >= ACTIVITY_STAMP_INTERVAL_MS) sessions.save(socket);
    // Relayed to the sender too, as the reference server does: a provider alone in a room
    // otherwise hears nothing and reconnects after 30 s of silence. The echo also tells the
    // sender that everything it sent before is stored (client/saved.ts relies on it), so a
    // sender whose confirmation is withheld does not get it.
    // Whether its confirmation is withheld is asked once what is held is written: a failed write withholds it.
    this.room.life.writeHeld();
    // A state the room renewed is shown to renewing sockets under its raised clock; the sender, a quiet client, hears the clocks it sent.
    sessions.broadcastPresence(changes, shown, now, this.room.life.isWithheld(socket) ? socket : undefined);
    // A client back at (or behind) the clock its removal went out with: its provider answers
    // this removal with its state under the next clock, which peers that saw the removal take
    // (awareness.ts).
    if (renew.length > 0) sessions.send(socket, session, encodeAwareness(renew));
    // Presence is swept when not renewed: a new or removed client may change when that is next
    // due, and the core then moves the alarm. A renewal (a cursor move, per keystroke) only
    // moves its own sweep later, which the alarm already set covers.
    if (whoChanged) this.room.alarmStale = true;
  }

  /**
   * Whom a socket's edits are credited to in version history: its token's name, else the name
   * in its presence (`user.name`, as y-codemirror.next apps set it), read once per presence change.
   */
  private authorOf(socket: Socket, session: Session): string | undefined {
    if (session.grant.user !== undefined) return session.grant.user;
    if (session.author === undefined) {
      session.author = null;
      for (const { state } of this.room.presence.statesOf(socket)) {
        const name = presenceName(state);
        if (name !== null) session.author = name;
      }
    }
    return session.author ?? undefined;
  }

  private rateExceeded(): ProtocolError {
    const { rateMessagesPerSecond, rateBytesPerSecond } = this.room.limits;
    return new ProtocolError(CloseCode.policyViolation, `rate limit exceeded: ${rateMessagesPerSecond} messages or ${rateBytesPerSecond} bytes per second`);
  }
}

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
