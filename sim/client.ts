/**
 * Simulated clients. {@link SimClient} behaves like the stock y-websocket provider
 * (node_modules/y-websocket/src/y-websocket.js) with y-protocols' Awareness, on the simulated
 * clock instead of timers:
 * - on open: sync step 1, then its awareness state;
 * - answers sync step 1 with step 2, applies step 2 and updates (origin: the provider, so they
 *   are not sent back), is `synced` after the first step 2;
 * - sends every local change of its document as a sync update while connected;
 * - re-sends every awareness change it hears of, others' included (stock providers echo);
 * - renews its awareness 15 s after the last renewal and drops remote states not renewed for
 *   30 s (y-protocols' 3 s check), closes a connection that heard nothing for 30 s;
 * - reconnects with backoff (100 ms · 2^failures, at most 2.5 s) after any close but 4400-4499,
 *   after which it stops, as the stock provider does (an app may call connect() again).
 * Edits made while disconnected are sent by the sync handshake when it reconnects.
 *
 * A client with `spec.quiet` is the app's `EdgedocProvider` (client/fallback.ts) instead: the
 * same provider, whose WebSockets are quiet clients (`?presence=socket`, client/quiet-socket.ts)
 * and whose stock presence timers run only on the HTTP fallback (client/quiet-presence.ts).
 * On a quiet socket it sends an awareness frame only when it carries its own state (no echoes),
 * neither renews its state nor drops others' on a timer nor closes a connection for silence;
 * every 5 s (about once a minute in a background tab) it sends `ping` after 30 s of sending
 * nothing, and gives the connection up (1006 to the provider, which reconnects) when a ping had
 * no answer for 10 s; it answers the room's `probe` with `ping` at once. These are modelled,
 * not run: QuietSocket drives a browser WebSocket with wall-clock intervals, as the stock
 * provider does, which this file models too. Where it could drift: its three numbers, restated
 * below (that module needs the DOM's types), and page freezes (`freeze` forgets a pending ping), not
 * modelled: the clients' machines sleeping (long clock jumps) stand for them.
 *
 * The provider drives its connection through a {@link ClientLink}: a WebSocket (sim/host.ts) or,
 * for a client on the HTTP fallback, client/http-socket.ts's HttpSocket (sim/http.ts); which one
 * its next connection uses is its `transport`, as client/fallback.ts chooses it.
 *
 * Each client also runs a {@link SaveTracker} model of client/saved.ts: an edit is confirmed
 * once the room echoes exactly an awareness state (clock and JSON) the client sent, while
 * connected and synced, after the edit.
 *
 * Documents and awareness use deterministic client IDs from the schedule's seed. Awareness's
 * own 3 s interval is cleared at once (it would run on the wall clock).
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import * as awarenessProtocol from "y-protocols/awareness";
import * as syncProtocol from "y-protocols/sync";
import * as Y from "yjs";
import type { AccessGrant } from "../worker/access";
import {
  AWARENESS_TIMEOUT_MS,
  MessageType,
  PING,
  QUIET_PING_AFTER_MS,
  QUIET_PING_TIMEOUT_MS,
  QUIET_PROBE,
  QUIET_TICK_MS,
  decodeAwarenessUpdate,
  readAwarenessEntries,
} from "../worker/protocol";
import type { FrameToClient, ToClient } from "./host";

/** The text type the editor uses (y-codemirror.next's convention; worker/document.ts reads the same). */
export const SHARED_TEXT = "codemirror";

/** y-websocket's watchdog: a connection that heard nothing for this long is closed and reopened. */
const MESSAGE_RECONNECT_TIMEOUT_MS = 30_000;
/** y-protocols' awareness check runs this often; it renews the local state once half the timeout passed. */
const AWARENESS_CHECK_MS = AWARENESS_TIMEOUT_MS / 10;
/** client/saved.ts: how long after the last edit it asks for a confirmation. */
const CONFIRM_AFTER_MS = 300;
/** y-websocket's default maxBackoffTime. */
const MAX_BACKOFF_MS = 2_500;
// client/quiet-socket.ts's timing is worker/protocol.ts's QUIET_* constants, shared.
/** Chrome runs a background tab's timers about once a minute (intensive throttling). */
const BACKGROUND_TICK_MS = 60_000;

export type ClientKind = "honest" | "reader" | "rogue";

/**
 * The client's end of a connection, as the provider drives it: a WebSocket (sim/host.ts
 * SimSocket) or client/http-socket.ts's HttpSocket over the HTTP fallback (sim/http.ts HttpLink).
 */
export interface ClientLink {
  /** Whether the client may still send on it (a socket the runtime has not dropped, an HttpSocket not finished). */
  readonly usable: boolean;
  /** `ws.send`. */
  clientSend(data: ArrayBuffer | string): void;
  /** The provider detached its handlers: whatever arrives from now on is discarded. */
  abandon(): void;
  /** `ws.close()` by the client (a WebSocket's room sees 1005; an HttpSocket sends its DELETE). */
  clientClose(): void;
  /** The network dropped it: what is in flight both ways is lost. */
  clientDrop(asError: boolean): void;
  /** The client answers the room's close (a WebSocket's close handshake; nothing over HTTP). */
  answerClose(close: { code: number; reason: string }): void;
}

export interface ClientSpec {
  kind: ClientKind;
  mode: "read" | "write" | "admin";
  name: string;
  clientId: number;
  /** Token owner (docs/protocol.md "Claims"), or undefined without tokens. */
  owner?: string;
  /** Token lifetime; null without tokens (grants never expire). */
  tokenTtlMs: number | null;
  /** "http": on the HTTP fallback (client/http-socket.ts) instead of a WebSocket; absent: a WebSocket. */
  transport?: "http";
  /**
   * The app's provider (client/fallback.ts): its WebSockets are quiet clients. "background": a
   * hidden tab, whose timers run about once a minute. Absent: the stock y-websocket provider.
   */
  quiet?: "visible" | "background";
}

/** One save barrier: an awareness state sent while connected and synced, and what it follows. */
export interface Barrier {
  clock: number;
  state: string;
  edits: number;
  /** The client's own Yjs clock at that moment: every edit up to it must be stored once confirmed. */
  docClock: number;
}

/** What a client reports to the world as it processes frames. */
export interface ClientObserver {
  /** A save confirmation: the echo of `barrier` arrived in `item` (its storedClock was measured at release). */
  confirmed(client: SimClient, barrier: Barrier, item: FrameToClient): void;
  /** The client could not process a frame the room sent (a stock provider would throw or log). */
  badFrame(client: SimClient, error: string): void;
  /** --verbose: what the SaveTracker saw. */
  trace?(client: SimClient, line: string): void;
}

export class SimClient {
  readonly doc: Y.Doc;
  readonly awareness: awarenessProtocol.Awareness;
  socket: ClientLink | null = null;
  /** y-websocket's wsconnected / synced. */
  connected = false;
  synced = false;
  /** Wants to be connected (provider.shouldConnect). */
  shouldConnect = true;
  /** Set when the room closed it with 4400-4499: the stock provider stops reconnecting. */
  stopped: { code: number; reason: string } | null = null;
  /** A reader that edited, or a client that sent bad frames: its document may hold what the room refused. */
  tainted = false;
  /** How its next connection goes (client/fallback.ts's chooser): the spec's, until an `http` step switches it. */
  transport: "ws" | "http";
  reconnectAt: number | null = null;
  private unsuccessfulReconnects = 0;
  private lastMessageReceived = 0;
  private nextAwarenessCheck: number;
  /** The current connection is a quiet socket (client/quiet-socket.ts). */
  private quietLink = false;
  /** QuietSocket: when it last sent anything, when the ping still unanswered went out, its next tick. */
  private lastSentAt = 0;
  private pingSentAt: number | null = null;
  private nextQuietTick: number | null = null;
  // SaveTracker (client/saved.ts)
  edits = 0;
  confirmedEdits = 0;
  /** The highest own clock a confirmation covered. */
  confirmedClock = 0;
  barriers: Barrier[] = [];
  confirmAt: number | null = null;
  /** Frames received and closes seen, for --verbose traces. */
  closes: { code: number; reason: string; at: number }[] = [];
  grant: AccessGrant;

  constructor(
    readonly index: number,
    readonly spec: ClientSpec,
    private readonly observer: ClientObserver,
    now: number,
  ) {
    this.transport = spec.transport ?? "ws";
    this.doc = new Y.Doc({ gc: true });
    this.doc.clientID = spec.clientId;
    this.awareness = new awarenessProtocol.Awareness(this.doc);
    clearInterval(this.awareness._checkInterval);
    this.nextAwarenessCheck = now + AWARENESS_CHECK_MS;
    this.grant = this.freshGrant(now);
    // The provider's handlers, registered first as in its constructor.
    this.doc.on("update", (update: Uint8Array, origin: unknown) => {
      if (origin === this) return;
      this.sendFrame(frame((encoder) => {
        encoding.writeVarUint(encoder, MessageType.sync);
        syncProtocol.writeUpdate(encoder, update);
      }));
      // SaveTracker: a local edit.
      this.edits += 1;
      this.confirmAt = now0(this) + CONFIRM_AFTER_MS;
    });
    this.awareness.on("update", ({ added, updated, removed }: AwarenessChange) => {
      const changed = [...added, ...updated, ...removed];
      this.sendFrame(frame((encoder) => {
        encoding.writeVarUint(encoder, MessageType.awareness);
        encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(this.awareness, changed));
      }));
      // SaveTracker: our own state sent while connected and synced is a barrier.
      const ours = [...updated, ...added].includes(this.doc.clientID);
      if (ours && this.connected && this.synced) {
        this.barriers.push({
          clock: this.ownAwarenessClock(),
          state: JSON.stringify(this.awareness.getLocalState()),
          edits: this.edits,
          docClock: Y.getState(this.doc.store, this.doc.clientID),
        });
      }
    });
    this.awareness.setLocalState({ user: { name: spec.name }, cursor: 0 });
  }

  get honest(): boolean {
    return this.spec.kind !== "rogue" && !this.tainted;
  }

  get unconfirmed(): boolean {
    return this.confirmedEdits < this.edits;
  }

  text(): string {
    return this.doc.getText(SHARED_TEXT).toString();
  }

  /** A grant as the Worker would make it from a fresh token. */
  freshGrant(now: number): AccessGrant {
    return {
      mode: this.spec.mode,
      expiresAt: this.spec.tokenTtlMs === null ? null : now + this.spec.tokenTtlMs,
      user: this.spec.name,
      ...(this.spec.owner === undefined ? {} : { owner: this.spec.owner }),
    };
  }

  // --- Connection ------------------------------------------------------------------------------

  /** Whether the world should open a connection for it now. */
  wantsToConnect(now: number): boolean {
    return this.shouldConnect && this.socket === null && this.reconnectAt !== null && this.reconnectAt <= now;
  }

  /** Whether its next WebSocket is a quiet client (`?presence=socket`): the app's provider's are. */
  get quietOnWebSocket(): boolean {
    return this.spec.quiet !== undefined;
  }

  /** The upgrade succeeded (the room handled its connect event): as the provider's onopen. `quiet`: a quiet socket. */
  open(socket: ClientLink, now: number, quiet = false): void {
    this.socket = socket;
    this.reconnectAt = null;
    this.connected = true;
    this.synced = false;
    this.lastMessageReceived = now;
    this.quietLink = quiet;
    this.lastSentAt = now;
    this.pingSentAt = null;
    this.nextQuietTick = quiet ? now + this.quietTickMs : null;
    this.sendFrame(frame((encoder) => {
      encoding.writeVarUint(encoder, MessageType.sync);
      syncProtocol.writeSyncStep1(encoder, this.doc);
    }));
    if (this.awareness.getLocalState() !== null) {
      this.sendFrame(frame((encoder) => {
        encoding.writeVarUint(encoder, MessageType.awareness);
        encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(this.awareness, [this.doc.clientID]));
      }));
    }
  }

  /** The upgrade failed (the process died during it): counts as a closed connection. */
  openFailed(now: number): void {
    this.unsuccessfulReconnects++;
    this.scheduleReconnect(now);
  }

  /** provider.connect(): also after a 4400-4499 close (an app deciding to try again). */
  connect(now: number): void {
    this.shouldConnect = true;
    this.stopped = null;
    if (this.socket === null) this.reconnectAt = now;
  }

  /**
   * provider.disconnect(): announces its state as gone (same clock, `null`), closes the socket
   * (the room sees 1005, frames already sent still arrive first), and stays offline.
   */
  disconnect(now: number): void {
    this.shouldConnect = false;
    this.reconnectAt = null;
    if (this.socket === null) return;
    this.sendFrame(frame((encoder) => {
      encoding.writeVarUint(encoder, MessageType.awareness);
      encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(this.awareness, [this.doc.clientID], new Map()));
    }));
    const socket = this.socket;
    this.closeConnection(null, now);
    socket.clientClose();
  }

  /** The network dropped: the client sees 1006 at once; frames in flight both ways are lost. */
  dropConnection(now: number, asError: boolean): void {
    const socket = this.socket;
    if (socket === null) return;
    this.closeConnection({ code: 1006, reason: "" }, now);
    socket.clientDrop(asError);
  }

  /** y-websocket's closeWebsocketConnection: `event` null when the client closed it itself. */
  private closeConnection(event: { code: number; reason: string } | null, now: number): void {
    const socket = this.socket;
    if (socket === null) return;
    socket.abandon();
    this.socket = null;
    this.quietLink = false;
    this.nextQuietTick = null;
    this.barriers = []; // SaveTracker: never coming back on this connection
    if (this.connected) {
      this.connected = false;
      this.synced = false;
      awarenessProtocol.removeAwarenessStates(
        this.awareness,
        [...this.awareness.getStates().keys()].filter((client) => client !== this.doc.clientID),
        this,
      );
    }
    this.unsuccessfulReconnects++;
    if (event !== null) this.closes.push({ ...event, at: now });
    // client/token-session.ts reconnects with a fresh token after 4401; other 4400-4499 codes stop the provider.
    const renewsToken = event?.code === 4401 && this.spec.tokenTtlMs !== null;
    if (event !== null && event.code >= 4400 && event.code < 4500 && !renewsToken) {
      this.shouldConnect = false;
      this.stopped = event;
    }
    this.scheduleReconnect(now);
  }

  private scheduleReconnect(now: number): void {
    if (!this.shouldConnect) return;
    this.reconnectAt = now + Math.min(2 ** this.unsuccessfulReconnects * 100, MAX_BACKOFF_MS);
  }

  // --- Frames from the room ----------------------------------------------------------------------

  /** Processes one item from the room, as the provider's onmessage / onclose. */
  receive(item: ToClient, now: number): void {
    if ("close" in item) {
      const socket = this.socket;
      if (socket === null) return;
      this.closeConnection(item.close, now);
      socket.answerClose(item.close);
      return;
    }
    if ("text" in item) return this.receiveText(item.text, now);
    // QuietSocket: anything heard answers the ping.
    this.pingSentAt = null;
    this.lastMessageReceived = now;
    try {
      this.readMessage(item);
    } catch (error) {
      this.observer.badFrame(this, String(error));
    }
  }

  private readMessage(item: FrameToClient): void {
    const decoder = decoding.createDecoder(item.frame);
    const encoder = encoding.createEncoder();
    const messageType = decoding.readVarUint(decoder);
    switch (messageType) {
      case MessageType.sync: {
        encoding.writeVarUint(encoder, MessageType.sync);
        const syncType = syncProtocol.readSyncMessage(decoder, encoder, this.doc, this);
        if (syncType === syncProtocol.messageYjsSyncStep2 && !this.synced) this.setSynced();
        break;
      }
      case MessageType.queryAwareness:
        encoding.writeVarUint(encoder, MessageType.awareness);
        encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(this.awareness, [...this.awareness.getStates().keys()]));
        break;
      case MessageType.awareness: {
        const update = decoding.readVarUint8Array(decoder);
        this.watchEcho(update, item);
        // client/quiet-presence.ts followRoomRemovals: on a quiet socket, removals below the clock
        // y-protocols knows (which it ignores) are followed: another client's is applied, our own
        // is answered with our state under the next clock.
        const ignored = this.quietLink
          ? decodeAwarenessUpdate(update).filter((entry) => entry.state === null && entry.clock < (this.awareness.meta.get(entry.clientId)?.clock ?? 0))
          : [];
        awarenessProtocol.applyAwarenessUpdate(this.awareness, update, this);
        const others = ignored.filter((entry) => entry.clientId !== this.doc.clientID).map((entry) => entry.clientId);
        if (others.length > 0) awarenessProtocol.removeAwarenessStates(this.awareness, others, this);
        if (ignored.some((entry) => entry.clientId === this.doc.clientID) && this.awareness.getLocalState() !== null) this.awareness.setLocalState(this.awareness.getLocalState());
        break;
      }
      case MessageType.auth:
        // Permission denied: the stock provider only logs it.
        break;
      default:
        throw new Error(`unknown message type ${messageType}`);
    }
    if (encoding.length(encoder) > 1) this.sendFrame(encoding.toUint8Array(encoder));
  }

  /**
   * A text frame: on a quiet socket QuietSocket reads it (`probe` is answered with `ping`, `pong`
   * answers ours) and the provider never sees it; a stock provider would try to decode it.
   */
  private receiveText(text: string, now: number): void {
    if (!this.quietLink) {
      this.observer.badFrame(this, `a text frame ${JSON.stringify(text.slice(0, 32))} reached a stock provider`);
      return;
    }
    this.pingSentAt = null;
    if (text === QUIET_PROBE) this.ping(now);
  }

  /** QuietSocket.ping: only on a socket it holds as open; the ping still unanswered keeps its time. */
  private ping(now: number): void {
    const socket = this.socket;
    if (socket === null) return;
    if (socket.usable) socket.clientSend(PING);
    this.lastSentAt = now;
    this.pingSentAt ??= now;
  }

  /** QuietSocket's tick: a ping unanswered for 10 s gives the connection up; 30 s of sending nothing sends one. */
  private quietTick(now: number): void {
    if (this.pingSentAt !== null && now - this.pingSentAt >= QUIET_PING_TIMEOUT_MS) return this.giveUp(now);
    if (this.pingSentAt === null && now - this.lastSentAt >= QUIET_PING_AFTER_MS) this.ping(now);
  }

  /** QuietSocket.giveUp: the provider hears 1006 (and reconnects), and the socket is closed (the room sees 1005 if it is still there). */
  private giveUp(now: number): void {
    const socket = this.socket;
    if (socket === null) return;
    this.closeConnection({ code: 1006, reason: "no answer to ping" }, now);
    socket.clientClose();
  }

  private get quietTickMs(): number {
    return this.spec.quiet === "background" ? BACKGROUND_TICK_MS : QUIET_TICK_MS;
  }

  /** client/quiet-presence.ts: the app's provider runs the stock timers only on the HTTP fallback; a stock provider always. */
  private get stockTimers(): boolean {
    return !this.quietOnWebSocket || (this.socket !== null && !this.quietLink);
  }

  private setSynced(): void {
    this.synced = true;
    this.unsuccessfulReconnects = 0;
    // SaveTracker: edits made while disconnected were just sent in the handshake.
    if (this.unconfirmed) this.confirmAt = now0(this) + CONFIRM_AFTER_MS;
  }

  /** SaveTracker.confirmEcho: only an echo of exactly a state we sent counts. */
  private watchEcho(update: Uint8Array, item: FrameToClient): void {
    const echoed = decodeAwarenessUpdate(update).find((entry) => entry.clientId === this.doc.clientID);
    if (echoed === undefined) return;
    const sent = this.barriers.find((barrier) => barrier.clock === echoed.clock);
    if (sent === undefined || sent.state !== echoed.state) {
      if (this.unconfirmed) {
        this.observer.trace?.(this, `own echo clock ${echoed.clock} matches no barrier (barriers at ${this.barriers.map((b) => b.clock).join(",") || "none"}; ${this.edits - this.confirmedEdits} edits unconfirmed): asks again`);
        // client/saved.ts: asks for a confirmation again.
        this.confirmAt = now0(this) + CONFIRM_AFTER_MS;
      }
      return;
    }
    const reached = this.barriers.filter((barrier) => barrier.clock <= echoed.clock);
    this.barriers = this.barriers.filter((barrier) => barrier.clock > echoed.clock);
    const best = reached.reduce((a, b) => (b.edits > a.edits ? b : a), sent);
    this.confirmedEdits = Math.max(this.confirmedEdits, best.edits);
    this.confirmedClock = Math.max(this.confirmedClock, ...reached.map((barrier) => barrier.docClock));
    for (const barrier of reached) this.observer.confirmed(this, barrier, item);
  }

  /**
   * Whether an awareness frame about to be released to this client would confirm a barrier
   * (so the world measures storage at release, when the room claimed it was saved).
   */
  wouldConfirm(frameBytes: Uint8Array): boolean {
    if (frameBytes[0] !== MessageType.awareness || this.barriers.length === 0) return false;
    try {
      const decoder = decoding.createDecoder(frameBytes);
      decoding.readVarUint(decoder);
      const echoed = decodeAwarenessUpdate(decoding.readVarUint8Array(decoder)).find((entry) => entry.clientId === this.doc.clientID);
      return echoed !== undefined && this.barriers.some((barrier) => barrier.clock === echoed.clock && barrier.state === echoed.state);
    } catch {
      return false;
    }
  }

  // --- What the person does ----------------------------------------------------------------------

  /** A local edit: delete `remove` characters at `at` (a fraction of the text) and insert `insert`. */
  edit(at: number, remove: number, insert: string): void {
    const text = this.doc.getText(SHARED_TEXT);
    // Positions and lengths in code points, as an editor moves: never half a surrogate pair.
    const { index, length } = codePointRange(text.toString(), at, remove);
    this.doc.transact(() => {
      if (length > 0) text.delete(index, length);
      if (insert.length > 0) text.insert(index, insert);
    });
    if (this.spec.mode === "read") this.tainted = true;
  }

  /** Moves its cursor: a presence change (sent and echoed). */
  setCursor(cursor: number): void {
    this.awareness.setLocalStateField("cursor", cursor);
  }

  /** Another tab of the same browser shares its document over BroadcastChannel: applied with the provider as origin, so not sent. */
  receiveFromTab(update: Uint8Array): void {
    Y.applyUpdate(this.doc, update, this);
  }

  // --- Timers, on the simulated clock --------------------------------------------------------

  /** The next time one of its timers is due (reconnect, confirmation, awareness check). */
  nextTimer(): number {
    return Math.min(this.reconnectAt ?? Infinity, this.confirmAt ?? Infinity, this.nextAwarenessCheck, this.nextQuietTick ?? Infinity);
  }

  /** Runs the timers due at `now` (the world opens connections for {@link wantsToConnect}). */
  runTimers(now: number): void {
    if (this.confirmAt !== null && this.confirmAt <= now) {
      this.confirmAt = null;
      // Re-sending our state unchanged bumps its clock; the echo is the confirmation.
      if (this.unconfirmed && this.connected && this.synced) this.awareness.setLocalState(this.awareness.getLocalState());
    }
    if (this.nextQuietTick !== null && this.nextQuietTick <= now) {
      this.nextQuietTick = now + this.quietTickMs;
      this.quietTick(now);
    }
    if (this.nextAwarenessCheck <= now) {
      this.nextAwarenessCheck = now + AWARENESS_CHECK_MS;
      if (!this.stockTimers) return;
      this.awarenessCheck(now);
      if (this.connected && now - this.lastMessageReceived > MESSAGE_RECONNECT_TIMEOUT_MS) {
        const socket = this.socket!;
        this.closeConnection(null, now);
        socket.clientClose();
      }
    }
  }

  /** y-protocols' interval: renew our state at half the timeout, drop remote states past it. */
  private awarenessCheck(now: number): void {
    const local = this.awareness.meta.get(this.doc.clientID);
    if (this.awareness.getLocalState() !== null && local !== undefined && AWARENESS_TIMEOUT_MS / 2 <= now - local.lastUpdated) {
      this.awareness.setLocalState(this.awareness.getLocalState());
    }
    const remove: number[] = [];
    this.awareness.meta.forEach((meta, client) => {
      if (client !== this.doc.clientID && AWARENESS_TIMEOUT_MS <= now - meta.lastUpdated && this.awareness.states.has(client)) remove.push(client);
    });
    if (remove.length > 0) awarenessProtocol.removeAwarenessStates(this.awareness, remove, "timeout");
  }

  /** Sends like broadcastMessage: only on an open, connected socket; a quiet socket lets out only awareness frames carrying our own state. */
  sendFrame(bytes: Uint8Array): void {
    if (!this.connected || this.socket === null) return;
    if (this.quietLink) {
      if (bytes[0] === MessageType.awareness && !this.carriesOwnPresence(bytes)) return;
      this.lastSentAt = now0(this);
    }
    if (!this.socket.usable) return;
    this.socket.clientSend(bytes.slice().buffer);
  }

  /** QuietSocket.carriesOwnPresence: a frame it cannot read is not its to judge (it goes out). */
  private carriesOwnPresence(bytes: Uint8Array): boolean {
    try {
      const decoder = decoding.createDecoder(bytes);
      decoding.readVarUint(decoder);
      for (const { clientId } of readAwarenessEntries(decoding.readVarUint8Array(decoder))) if (clientId === this.doc.clientID) return true;
      return false;
    } catch {
      return true;
    }
  }

  /** Sends anything (adversarial frames), bypassing the provider's rules but for needing a socket. */
  sendRaw(data: ArrayBuffer | string): void {
    if (this.socket === null || !this.socket.usable) return;
    this.socket.clientSend(data);
  }

  private ownAwarenessClock(): number {
    return this.awareness.meta.get(this.doc.clientID)?.clock ?? 0;
  }

  destroy(): void {
    this.awareness.destroy();
    clearInterval(this.awareness._checkInterval);
    this.doc.destroy();
  }
}

interface AwarenessChange {
  added: number[];
  updated: number[];
  removed: number[];
}

/** The simulated time, as the client's libraries read it (Date.now is the sim clock, sim/determinism.ts). */
function now0(_client: SimClient): number {
  return Date.now();
}

/**
 * The UTF-16 offset of the code point at fraction `at` of `text`, and the UTF-16 length of the
 * `count` code points from there: edits an editor could make (one never splits a surrogate pair).
 */
export function codePointRange(text: string, at: number, count: number): { index: number; length: number } {
  const points = Array.from(text);
  const start = Math.min(points.length, Math.floor(at * (points.length + 1)));
  const end = Math.min(points.length, start + count);
  const index = points.slice(0, start).join("").length;
  return { index, length: points.slice(start, end).join("").length };
}

function frame(write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  write(encoder);
  return encoding.toUint8Array(encoder);
}
