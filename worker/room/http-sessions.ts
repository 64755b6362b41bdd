/**
 * The HTTP fallback's sessions (docs/protocol.md, "HTTP fallback"): for clients whose network
 * blocks WebSockets, the same y-websocket frames over plain requests. Each session is one more
 * {@link RoomSocket} of the core, so it joins, holds presence, pays the same budgets and is
 * closed by the same timeouts and codes as a WebSocket; only the way frames travel differs:
 *
 * - frames to the client wait in the session's queue, numbered; a poll names the last number
 *   it has (its cursor), which drops those, and is answered with the rest, or held until
 *   there are some (the Worker ends a held poll after {@link POLL_HOLD_MS});
 * - frames from the client arrive in the body of a request, and are handled one by one, in
 *   order, as if each were a WebSocket message;
 * - a close becomes the last record of an answer; a session the room does not know (it
 *   restarted, or forgot a session that ended long ago) is answered with {@link CloseCode}
 *   1012, and the client joins again: the sync handshake brings back whatever it missed.
 *
 * Sessions live in memory: a held poll keeps the object awake, and an object that left memory
 * anyway is met with a new handshake. Runtime-free, so the simulation can drive it.
 */
import type { AccessGrant } from "../access";
import { CloseCode } from "../protocol";
import { encodeAnswer, isSessionId, type SessionClose } from "./http-wire";
import type { RoomSocket } from "./ports";

/**
 * How long the Worker holds a poll that has nothing to answer: under the 30 s after which
 * common proxies and load balancers cut an idle HTTP request, and well under the room's 30 s
 * presence timeout (the client renews its presence every 15 s, which also answers its poll).
 */
export const POLL_HOLD_MS = 25_000;

/**
 * Bytes queued for one session beyond its largest frame (which may be a whole document: a
 * sync step 2 that waits for the client's next poll to acknowledge what came before it). A client that keeps its session
 * alive but stops polling could otherwise make the room keep every frame of the room for it
 * (memory counts against the isolate's 128 MB). Frames are shared between the queues of a
 * relay, so this bounds what one session pins, not a copy per session. Past it the session is
 * closed with 1013 and its client catches up through a new handshake, as a WebSocket shed by
 * the relay bound does.
 */
export const HTTP_QUEUE_MAX_BYTES = 1024 * 1024;

/**
 * Bytes queued across all of a room's sessions, each frame counted once however many queues
 * share it: sessions that never poll could otherwise pin an answer each (a sync step 2 is up
 * to a whole document) until their timeout, in the JS heap. Half of the 64 MiB one frame may
 * cost, as the relay bound (`MAX_RELAY_BYTES`). A frame that would pass it first closes, with
 * 1013, the sessions holding the most unacknowledged bytes (those not polling), so a session
 * that polls keeps its place; their clients join again shortly, as sockets shed by the relay
 * bound do.
 */
export const HTTP_QUEUED_MAX_BYTES = 32 * 1024 * 1024;

/**
 * How many ended sessions are remembered, to answer their client's next request with the close
 * (code and reason, a few dozen bytes each); older ones are answered 1012 and join again.
 */
export const MAX_ENDED_HTTP_SESSIONS = 1_000;

/** How long an ended session is remembered: a client polls again within seconds of the close. */
export const ENDED_HTTP_SESSION_KEEP_MS = 60_000;

/** Why a session is closed to make room under {@link HTTP_QUEUED_MAX_BYTES}. */
const ROOM_QUEUE_FULL: SessionClose = { code: CloseCode.tryAgainLater, reason: "room busy: join again shortly" };

/**
 * The room's queued frames, each counted once across the queues that hold it
 * ({@link HTTP_QUEUED_MAX_BYTES}), and who to close when they would pass it: whoever holds the
 * most unacknowledged bytes, not whoever the next frame happens to be for.
 */
class QueueLedger {
  private readonly holders = new Map<Uint8Array, number>();
  bytes = 0;

  /** `sessions`: the room's open sessions, whose queues hold the frames. */
  constructor(private readonly sessions: () => Iterable<HttpSession>) {}

  /**
   * Counts `frame` into `receiver`'s queue. Past the room's bound, the sessions holding the most
   * are closed until it fits; false (nothing counted) when `receiver` itself holds the most, and
   * so is the one closed. Free unless the bound is reached: every relay passes here.
   */
  hold(frame: Uint8Array, receiver: HttpSession): boolean {
    const holders = this.holders.get(frame) ?? 0;
    if (holders === 0) {
      if (!this.makeRoom(frame.byteLength, receiver)) return false;
      this.bytes += frame.byteLength;
    }
    this.holders.set(frame, holders + 1);
    return true;
  }

  release(frame: Uint8Array): void {
    const holders = (this.holders.get(frame) ?? 1) - 1;
    if (holders > 0) return void this.holders.set(frame, holders);
    this.holders.delete(frame);
    this.bytes -= frame.byteLength;
  }

  /**
   * Closes the largest holders until `bytes` more fit. Closing one frees only the frames no other
   * queue shares, so it may take several. Bounded: each turn closes one open session, or gives up.
   */
  private makeRoom(bytes: number, receiver: HttpSession): boolean {
    // A frame over the bound alone would never fit: closing others for it would free room in vain.
    if (bytes > HTTP_QUEUED_MAX_BYTES) return false;
    while (this.bytes + bytes > HTTP_QUEUED_MAX_BYTES) {
      const largest = this.largestHolder(receiver);
      if (largest === receiver) return false;
      largest.end(ROOM_QUEUE_FULL);
    }
    return true;
  }

  /**
   * The open session with the most unacknowledged bytes; `receiver` only when it holds more than
   * every other (it is being served; on a tie the other has waited as long without polling).
   */
  private largestHolder(receiver: HttpSession): HttpSession {
    let largest: HttpSession | null = null;
    for (const session of this.sessions()) {
      if (session === receiver || session.unacknowledgedBytes === 0) continue;
      if (largest === null || session.unacknowledgedBytes > largest.unacknowledgedBytes) largest = session;
    }
    return largest !== null && largest.unacknowledgedBytes >= receiver.unacknowledgedBytes ? largest : receiver;
  }
}

/** One HTTP client's place in the room, as the core sees it: a socket. */
export class HttpSession implements RoomSocket {
  private attachment: unknown = null;
  private queue: { seq: number; frame: Uint8Array }[] = [];
  private queuedBytes = 0;
  /** The largest frame in {@link queue}, which {@link HTTP_QUEUE_MAX_BYTES} does not count. */
  private largestQueued = 0;
  private nextSeq = 1;
  /** The number of the last frame an answer carried: a poll behind it asks for frames again. */
  private deliveredUpTo = 0;
  /** The highest client frame number handled, so a request sent twice is not applied twice. */
  receivedUpTo = 0;
  ended: SessionClose | null = null;
  /** The poll held for this session, answered when a frame or the close comes. */
  private waiter: (() => void) | null = null;

  constructor(
    readonly id: string,
    /** Whose session it is (the token's owner): another token may not use it. */
    readonly owner: string | undefined,
    /** Told once when the session ends, whoever ended it. */
    private readonly onEnd: (session: HttpSession) => void,
    private readonly ledger: QueueLedger,
  ) {}

  /** Bytes queued that the client has not acknowledged by a poll: what closing the session would let go. */
  get unacknowledgedBytes(): number {
    return this.queuedBytes;
  }

  send(frame: Uint8Array): void {
    if (this.ended) return;
    const largest = Math.max(this.largestQueued, frame.byteLength);
    if (this.queuedBytes + frame.byteLength - largest > HTTP_QUEUE_MAX_BYTES) {
      this.end({ code: CloseCode.tryAgainLater, reason: "fell behind: join again to catch up" });
      return;
    }
    if (!this.ledger.hold(frame, this)) {
      this.end(ROOM_QUEUE_FULL);
      return;
    }
    this.queue.push({ seq: this.nextSeq++, frame });
    this.queuedBytes += frame.byteLength;
    this.largestQueued = largest;
    this.wake();
  }

  close(code: number, reason: string): void {
    this.end({ code, reason });
  }

  serializeAttachment(value: unknown): void {
    this.attachment = value;
  }

  deserializeAttachment(): unknown {
    return this.attachment;
  }

  /** Ends the session: what was queued is dropped (the client joins again, or stops, either way). */
  end(close: SessionClose): void {
    if (this.ended) return;
    this.ended = close;
    for (const { frame } of this.queue) this.ledger.release(frame);
    this.queue = [];
    this.queuedBytes = 0;
    this.largestQueued = 0;
    this.wake();
    this.onEnd(this);
  }

  /** Drops the frames up to `cursor` (the client has them) and answers with the rest, or null when there are none. */
  take(cursor: number): Uint8Array | null {
    let dropped = false;
    while (this.queue.length > 0 && this.queue[0]!.seq <= cursor) {
      const { frame } = this.queue.shift()!;
      this.queuedBytes -= frame.byteLength;
      this.ledger.release(frame);
      dropped = true;
    }
    if (dropped) this.largestQueued = this.queue.reduce((largest, { frame }) => Math.max(largest, frame.byteLength), 0);
    if (this.ended) return encodeAnswer(cursor, [], this.ended);
    if (this.queue.length === 0) return null;
    const last = this.queue.at(-1)!.seq;
    this.deliveredUpTo = Math.max(this.deliveredUpTo, last);
    return encodeAnswer(last, this.queue.map(({ frame }) => frame), null);
  }

  /** Bytes of frames after `cursor` that an answer already carried: what a poll at `cursor` would be sent again. */
  resentBytes(cursor: number): number {
    let bytes = 0;
    for (const { seq, frame } of this.queue) if (seq > cursor && seq <= this.deliveredUpTo) bytes += frame.byteLength;
    return bytes;
  }

  /**
   * Waits for a frame or the close; a newer poll of the same session answers this one first.
   * `release`: this poll stopped waiting (the Worker ended its hold), so it holds nothing.
   */
  wait(): { woken: Promise<void>; release: () => void } {
    this.wake();
    let waiter: () => void = () => {};
    const woken = new Promise<void>((resolve) => (waiter = resolve));
    this.waiter = waiter;
    return { woken, release: () => void (this.waiter === waiter && (this.waiter = null)) };
  }

  /** Whether a poll is waiting. */
  get holding(): boolean {
    return this.waiter !== null;
  }

  /** Whether a cursor names frames this session could have sent. */
  knows(cursor: number): boolean {
    return Number.isSafeInteger(cursor) && cursor >= 0 && cursor < this.nextSeq;
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = null;
    waiter?.();
  }
}

/** What the room does for each request of the HTTP fallback; the core runs the session's frames. */
export interface HttpSessionRoom {
  connect(session: HttpSession, grant: AccessGrant): Promise<void>;
  message(session: HttpSession, frame: ArrayBuffer): Promise<void>;
  closed(session: HttpSession, end: { code: number; reason: string; wasClean: boolean }): Promise<void>;
  /** Charges one request to the session's message rate, as a frame is; false when it is spent. */
  admitRequest(session: HttpSession): boolean;
  /** Charges frames sent again to the session's answer budgets; the close when they are spent. */
  chargeResend(session: HttpSession, bytes: number): SessionClose | null;
  now(): number;
}

/** The room's HTTP sessions: open ones (listed to the core with its WebSockets) and recently ended ones. */
export class HttpSessions {
  private readonly open = new Map<string, HttpSession>();
  private readonly ended = new Map<string, { close: SessionClose; at: number }>();
  /** What all open sessions have queued, each frame once. */
  private readonly ledger = new QueueLedger(() => this.open.values());
  /** Sessions that ended and whose end the core has not heard yet ({@link reportEnds}). */
  private readonly unreported: HttpSession[] = [];

  constructor(
    private readonly room: HttpSessionRoom,
    private readonly newId: () => string = randomSessionId,
  ) {}

  /** The open sessions, for `host.sockets()`. */
  listed(): HttpSession[] {
    return [...this.open.values()];
  }

  /** Whether any session is open (the shell lists none on every relay when none is). */
  get any(): boolean {
    return this.open.size > 0;
  }

  /** Whether a session ended that the core has not heard of ({@link reportEnds}). */
  get endsToReport(): boolean {
    return this.unreported.length > 0;
  }

  /**
   * A new session: joins the room and answers with its id and first frames (sync step 1,
   * presence). `replaces` names the client's previous session, ended first: a client that lost
   * its network could not say it left, and its old session would hold its presence ID (which
   * the room gives no other connection) until the presence timeout, 30 s without a save
   * confirmation. A WebSocket cut the same way lingers as long; a socket has no id to name it by.
   */
  async start(grant: AccessGrant, replaces: string | null = null): Promise<{ id: string; answer: Uint8Array }> {
    this.forgetOldEnded();
    const previous = replaces === null ? undefined : this.open.get(replaces);
    if (previous !== undefined && previous.owner === grant.owner) {
      previous.end({ code: CloseCode.normal, reason: "replaced by the client's new session" });
      await this.reportEnds();
    }
    const session = new HttpSession(this.newId(), grant.owner, (ended) => this.reportEnd(ended), this.ledger);
    this.open.set(session.id, session);
    await this.room.connect(session, grant);
    return { id: session.id, answer: session.take(0) ?? encodeAnswer(0, [], null) };
  }

  /**
   * A poll: the frames after `cursor`, now, or once there are some. Returns the answer, or a
   * promise of it and a way to give up waiting (the Worker stopped holding the poll). Polls are
   * free while they follow one another, as a socket's frames to read are; one that cuts a held
   * poll short pays a request, and one that asks again for frames it was sent (an answer lost
   * on the way) pays their bytes as an answer: either, repeated, would make the room work or
   * send for nothing.
   */
  poll(id: string, owner: string | undefined, cursor: number): Uint8Array | { held: Promise<Uint8Array>; release: () => void } {
    const found = this.find(id, owner);
    if (!(found instanceof HttpSession)) return found;
    if (!found.knows(cursor)) {
      found.end({ code: CloseCode.serviceRestart, reason: "cursor unknown: join again" });
      return found.take(0)!;
    }
    if (found.holding && !this.admit(found)) return found.take(0)!;
    const resent = found.resentBytes(cursor);
    const spent = resent > 0 ? this.room.chargeResend(found, resent) : null;
    if (spent !== null) {
      found.end(spent);
      return found.take(0)!;
    }
    const now = found.take(cursor);
    if (now !== null) return now;
    const { woken, release } = found.wait();
    return { held: woken.then(() => found.take(cursor) ?? encodeAnswer(cursor, [], null)), release };
  }

  /**
   * Frames from the client, numbered from `firstSeq`: each is handled as a WebSocket message
   * would be, in order; those already handled (a retried request) are skipped. Answers with the
   * close if one of them ended the session.
   */
  async receive(id: string, owner: string | undefined, firstSeq: number, frames: Iterable<Uint8Array>): Promise<Uint8Array> {
    const found = this.find(id, owner);
    if (!(found instanceof HttpSession)) return found;
    const reader = frames[Symbol.iterator]();
    let handled = 0;
    for (let seq = firstSeq; ; seq++) {
      let next: IteratorResult<Uint8Array>;
      try {
        next = reader.next();
      } catch {
        // Framing the room cannot read: the frames before it were handled, as a socket's would be.
        found.end({ code: CloseCode.protocolError, reason: "malformed frame: a request body's framing is broken" });
        break;
      }
      if (next.done) break;
      if (seq <= found.receivedUpTo) continue;
      if (seq !== found.receivedUpTo + 1) {
        found.end({ code: CloseCode.serviceRestart, reason: "frames missing: join again" });
        break;
      }
      found.receivedUpTo = seq;
      handled += 1;
      await this.room.message(found, next.value.slice().buffer);
      if (found.ended) break;
    }
    // Each frame handled paid as a message; a request that brought none (empty, or only frames
    // already handled) pays as one.
    if (handled === 0 && !found.ended) this.admit(found);
    return encodeAnswer(0, [], found.ended);
  }

  /** The client left (`DELETE`): its presence goes at once, as a WebSocket's close does. */
  async leave(id: string, owner: string | undefined): Promise<void> {
    const found = this.find(id, owner);
    if (found instanceof HttpSession) found.end({ code: CloseCode.normal, reason: "client left" });
    await this.reportEnds();
  }

  /** Charges a request to its session; past its rate the session is closed (1008), as a socket would be. */
  private admit(session: HttpSession): boolean {
    if (this.room.admitRequest(session)) return true;
    session.end({ code: CloseCode.policyViolation, reason: "rate limit exceeded: too many requests for this session" });
    return false;
  }

  /**
   * The open session `id` of `owner`, or the answer to give instead (its close, or "join
   * again"): a post looks its session up before it reads a byte of its body, so a body for a
   * session that is unknown, ended or another token's is never read.
   */
  find(id: string, owner: string | undefined): HttpSession | Uint8Array {
    this.forgetOldEnded();
    const session = isSessionId(id) ? this.open.get(id) : undefined;
    if (session === undefined) {
      const ended = this.ended.get(id)?.close ?? { code: CloseCode.serviceRestart, reason: "session unknown: join again" };
      return encodeAnswer(0, [], ended);
    }
    // A session id is a capability, but only for the token it was opened with.
    if (session.owner !== owner) return encodeAnswer(0, [], { code: CloseCode.policyViolation, reason: "this session belongs to another token" });
    return session;
  }

  /**
   * Tells the core of every session that ended since, in order. The shell calls it when each
   * entry point (a request, a socket event, the alarm, an RPC call) is done, as the runtime
   * reports a WebSocket's close as an event of its own: never from inside another handler
   * while it awaits (DELETE's `deleteAll`, say), where the core's storage is half replaced.
   */
  async reportEnds(): Promise<void> {
    // Bounded: each session ends once, and a report can only end sessions still open.
    for (let session = this.unreported.shift(); session !== undefined; session = this.unreported.shift()) {
      await this.room.closed(session, { ...session.ended!, wasClean: true });
    }
  }

  /** A session ended (by the room, by its client, or by falling behind): it stops being listed, and the core hears of it at {@link reportEnds}. */
  private reportEnd(session: HttpSession): void {
    this.open.delete(session.id);
    this.ended.set(session.id, { close: session.ended!, at: this.room.now() });
    if (this.ended.size > MAX_ENDED_HTTP_SESSIONS) this.ended.delete(this.ended.keys().next().value!);
    this.unreported.push(session);
  }

  private forgetOldEnded(): void {
    const now = this.room.now();
    for (const [id, { at }] of this.ended) {
      if (now - at < ENDED_HTTP_SESSION_KEEP_MS) break;
      this.ended.delete(id);
    }
  }

}

function randomSessionId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
