/**
 * The runtime around the room core, simulated: hibernatable sockets with attachments and the
 * output gate, a clock that moves only when the schedule says, storage (sim/sqlite.ts) and
 * webhook endpoints.
 *
 * The output gate, as workerd keeps it (test/worker/runtime-model.test.ts): a frame or close the
 * core sends while its event has written nothing since the last commit leaves at once (even if
 * the event then writes and dies); one sent after a write is held on the socket until that
 * write commits ({@link SimHost.commit}: at the event's end, or at an outbound fetch), and a
 * kill before the commit drops it ({@link SimHost.kill}). That is what lets the room send an
 * acknowledgement in the same event as the write it acknowledges, after the write.
 *
 * A socket's life, as workerd runs it:
 * - accepted (`host.sockets()` lists it) → the core sends and eventually closes it, or the
 *   client closes it, or the network drops.
 * - After the core calls `close`, frames the client had already sent are still delivered to
 *   the core (they were on the wire); the client answers the close with its own close frame,
 *   and when that arrives the runtime reports the close to the core (`core.closed`) and stops
 *   listing the socket.
 * - A client's own close (a stock provider calls `ws.close()` without a code: the room sees
 *   1005) arrives after the frames it sent before it; a dropped connection arrives as 1006
 *   (`wasClean: false`) or as an error, and frames in flight are lost.
 * - A connection that vanished (a network cut, a laptop lid: {@link SimSocket.vanish}) is never
 *   reported: the runtime lists the socket as open, what the room sends it goes nowhere, and
 *   what its client sends never arrives. Only the room's own judgement ends it.
 *
 * The auto-response (`setWebSocketAutoResponse(ping, pong)`, worker/room/index.ts): a client's
 * text frame `ping` is answered `pong` by the runtime itself, never as an event (it neither
 * wakes the object nor reaches the core), and the time is kept for
 * `getWebSocketAutoResponseTimestamp` ({@link SimHost.lastPingAt}). The pong is not the
 * object's output, so the output gate does not hold it. A socket the room closed answers
 * nothing (RFC 6455 §5.5.1: no data frame after a Close frame).
 */
import { deserialize, serialize } from "node:v8";
import { PLATFORM_ATTACHMENT_LIMIT } from "../worker/limits";
import { PONG, QUIET_PROBE } from "../worker/protocol";
import type { HttpSession } from "../worker/room/http-sessions";
import type { RoomHost, RoomSocket } from "../worker/room/ports";
import type { ClientLink } from "./client";
import type { SimRoomSocket } from "./contract";
import type { SimStorage } from "./sqlite";

/** A frame on its way to the client, a text frame (the room's `probe`, the runtime's `pong`), or the server's close. */
export type ToClient = FrameToClient | TextToClient | { close: { code: number; reason: string } };
/** A text frame on its way to the client. */
export interface TextToClient {
  text: string;
  releasedAt: number;
}
/** A frame on its way to the client; `storedClock` is the recipient's own clock in storage at release, measured when the frame would confirm a save. */
export interface FrameToClient {
  frame: Uint8Array;
  releasedAt: number;
  storedClock?: number;
}

/** What the client has sent: a frame, its close frame, or the connection dropping. */
export type ToServer =
  | { data: ArrayBuffer | string }
  | { close: { code: number; reason: string } }
  | { drop: "close" | "error" };

export type SocketState = "open" | "closing" | "closed";

export class SimSocket implements RoomSocket, ClientLink {
  state: SocketState = "open";
  /** The core called `close` on it (in a committed event): frames from it must change nothing. */
  closedByCore: { code: number; reason: string } | null = null;
  /** The client no longer reads it: frames released to it are discarded. */
  clientGone = false;
  /** The core was told it ended (`core.closed`). */
  endReported = false;
  /** Its end reached the runtime (its client's close, or the drop): the event reporting it to the core is under way or done. */
  ending = false;
  /** Opened as a quiet client (`?presence=socket`: the core's `connect(socket, grant, true)`). */
  quiet = false;
  /** When the runtime last answered its `ping` (`getWebSocketAutoResponseTimestamp`), or null. */
  lastPingAt: number | null = null;
  /** When the runtime last heard from it (a frame delivered, or a `ping` answered); its acceptance counts, as the room's `lastFrameAt` starts then. */
  lastSignAt: number;
  /** When the room sent it a `probe` (issued; a probe is gated like any send). */
  readonly probes: number[] = [];
  /** When its connection vanished (nothing arrives either way, and the runtime never notices), or null. */
  vanishedAt: number | null = null;
  /** Its client sent its own removal (`disconnect()`): the room may remove its presence while it is open. */
  ownRemovalSent = false;
  /** What the room last showed its client of each client ID's presence (at release): when, and whether present. */
  readonly shown = new Map<number, { at: number; present: boolean }>();
  readonly toClient: ToClient[] = [];
  readonly toServer: ToServer[] = [];
  /** What the core sent during the current event, held by the output gate. */
  private gated: ToClient[] = [];
  private attachment: Buffer | null = null;
  /** A close the core asked for during the current event (gated like frames). */
  private closeRequested: { code: number; reason: string } | null = null;

  constructor(
    /** Numbered per host (not per process), so a schedule replays the same whatever ran before it. */
    readonly id: number,
    /** Which simulated client opened it (index into the world's clients). */
    readonly client: number,
    private readonly host: SimHost,
  ) {
    this.lastSignAt = host.time;
  }

  send(frame: Uint8Array): void {
    if (this.state === "closed") throw new Error("WebSocket send() after the connection closed.");
    if (this.closeRequested !== null || this.closedByCore !== null) throw new TypeError("Can't call WebSocket send() after close().");
    if (!(frame instanceof Uint8Array)) throw new TypeError("simulation: the core sent a frame that is not a Uint8Array");
    this.gated.push({ frame: frame.slice(), releasedAt: 0 });
    this.host.noteSend(this);
  }

  /** `ws.send(text)`: the room's `probe` (gated like any send). */
  sendText(text: string): void {
    if (this.state === "closed") throw new Error("WebSocket send() after the connection closed.");
    if (this.closeRequested !== null || this.closedByCore !== null) throw new TypeError("Can't call WebSocket send() after close().");
    this.gated.push({ text, releasedAt: 0 });
    this.host.noteSend(this);
  }

  close(code: number, reason: string): void {
    if (this.state === "closed") throw new Error("WebSocket close() after the connection closed.");
    if (this.closeRequested !== null || this.closedByCore !== null) throw new TypeError("WebSocket already closed.");
    if (!validCloseCode(code)) throw new TypeError(`Invalid WebSocket close code: ${code}.`);
    if (new TextEncoder().encode(reason).length > 123) throw new TypeError("WebSocket close reason too long.");
    this.closeRequested = { code, reason };
    this.gated.push({ close: { code, reason } });
    this.host.noteSend(this);
  }

  serializeAttachment(value: unknown): void {
    if (this.state === "closed") throw new Error("serializeAttachment() on a closed WebSocket.");
    const bytes = serialize(value);
    if (bytes.byteLength > PLATFORM_ATTACHMENT_LIMIT) {
      throw new Error(`Serialized attachment is ${bytes.byteLength} bytes, over the limit of ${PLATFORM_ATTACHMENT_LIMIT}.`);
    }
    this.attachment = bytes;
  }

  deserializeAttachment(): unknown {
    return this.attachment === null ? null : deserialize(this.attachment);
  }

  /** The output gate opens: what the event sent goes on the wire. */
  release(now: number): ToClient[] {
    const released = this.gated;
    this.gated = [];
    if (this.closeRequested !== null) {
      this.closedByCore = this.closeRequested;
      this.closeRequested = null;
      if (this.state === "open") this.state = "closing";
    }
    if (this.clientGone || this.vanishedAt !== null) return [];
    for (const item of released) if (!("close" in item)) item.releasedAt = now;
    this.toClient.push(...released);
    return released;
  }

  /** The event was killed: what it sent never leaves. */
  discardGated(): void {
    this.gated = [];
    this.closeRequested = null;
  }

  // --- The client's end (sim/client.ts) ------------------------------------------------------

  get usable(): boolean {
    return this.state !== "closed";
  }

  clientSend(data: ArrayBuffer | string): void {
    if (this.vanishedAt === null) this.toServer.push({ data });
  }

  abandon(): void {
    this.clientGone = true;
    this.toClient.length = 0;
  }

  /** A stock provider calls `ws.close()` without a code: the room sees 1005, after the frames sent before it. */
  clientClose(): void {
    if (this.state !== "closed" && this.vanishedAt === null) this.toServer.push({ close: { code: 1005, reason: "" } });
  }

  clientDrop(asError: boolean): void {
    this.toServer.length = 0;
    if (this.state !== "closed" && this.vanishedAt === null) this.toServer.push({ drop: asError ? "error" : "close" });
  }

  /** The client completes the close handshake (unless the connection is simply gone). */
  answerClose(close: { code: number; reason: string }): void {
    if (close.code !== 1006 && this.state !== "closed" && this.vanishedAt === null) this.toServer.push({ close });
  }

  /**
   * The connection vanished without a close (a network cut, a laptop lid): what is in flight
   * either way is lost, nothing more gets through, and the runtime keeps listing the socket.
   * Its client does not know yet (it still holds the socket and sends into the void).
   */
  vanish(now: number): void {
    if (this.vanishedAt !== null || this.state === "closed") return;
    this.vanishedAt = now;
    this.toServer.length = 0;
    this.toClient.length = 0;
  }

  /**
   * The runtime's auto-response to the client's `ping`: `pong` goes straight back (no event, no
   * output gate) and the time is kept; a socket the room closed answers nothing.
   */
  autoRespond(now: number): boolean {
    if (this.closedByCore !== null || this.closeRequested !== null) return false;
    this.lastPingAt = now;
    this.lastSignAt = now;
    if (!this.clientGone) this.toClient.push({ text: PONG, releasedAt: now });
    return true;
  }

  /** Whether anything is queued in either direction. */
  get inFlight(): number {
    return (this.clientGone || this.vanishedAt !== null ? 0 : this.toClient.length) + (this.state === "closed" ? 0 : this.toServer.length);
  }
}

/** RFC 6455 codes an endpoint may send (workerd refuses the reserved ones). */
function validCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  if (code >= 3000 && code <= 4999) return true;
  return code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006;
}

/** One webhook delivery attempt as the receiving endpoint saw it. */
export interface WebhookAttempt {
  endpoint: string;
  id: string;
  type: string;
  body: string;
  at: number;
  outcome: number | "timeout";
}

export interface EndpointState {
  up: boolean;
  /** How it fails while down. */
  failure: 500 | "timeout";
}

/** Webhook receivers: up (200) or down (500, or no answer until the request times out). */
export class Endpoints {
  readonly attempts: WebhookAttempt[] = [];
  private readonly states = new Map<string, EndpointState>();

  constructor(readonly urls: readonly string[]) {
    for (const url of urls) this.states.set(url, { up: true, failure: 500 });
  }

  set(url: string, state: EndpointState): void {
    this.states.set(url, state);
  }

  state(url: string): EndpointState | undefined {
    return this.states.get(url);
  }

  async fetch(url: string, init: RequestInit, now: number): Promise<Response> {
    const state = this.states.get(url);
    if (state === undefined) throw new TypeError(`simulation: fetch to an unknown endpoint ${url}`);
    const headers = new Headers(init.headers);
    const body = typeof init.body === "string" ? init.body : String(init.body ?? "");
    let type = "";
    try {
      type = String((JSON.parse(body) as { type?: unknown }).type ?? "");
    } catch {
      type = "(not JSON)";
    }
    const outcome: number | "timeout" = state.up ? 200 : state.failure;
    this.attempts.push({ endpoint: url, id: headers.get("webhook-id") ?? "", type, body, at: now, outcome });
    if (outcome === "timeout") throw new DOMException("The operation was aborted due to timeout", "TimeoutError");
    return new Response(outcome === 200 ? "ok" : "down", { status: outcome });
  }
}

export class SimHost implements RoomHost<SimRoomSocket> {
  readonly name = "sim-doc";
  private readonly all: SimSocket[] = [];
  private socketCount = 0;
  /** Sockets the core sent to (or closed) during the current event. */
  private readonly touched = new Set<SimSocket>();
  time: number;
  /** Called as outbound HTTP leaves (the world commits what the event wrote before it: the output gate). */
  beforeFetch: (() => void) | null = null;
  /** Awaited while the request is out: the world may run other events then (sim/world.ts). */
  whileFetching: (() => Promise<void>) | null = null;
  /** Called when the core sends with nothing uncommitted: the world lets it out at once. */
  releaseUngated: (() => void) | null = null;
  /** The open sessions of the HTTP fallback, listed beside the sockets (worker/room/index.ts); null without HTTP clients. */
  httpSessions: (() => HttpSession[]) | null = null;

  constructor(
    readonly storage: SimStorage,
    readonly endpoints: Endpoints,
    epoch: number,
  ) {
    this.time = epoch;
  }

  /** What the core lists (`ctx.getWebSockets()` and the HTTP fallback's open sessions). */
  sockets(): SimRoomSocket[] {
    const sockets = this.webSockets();
    return this.httpSessions === null ? sockets : [...sockets, ...this.httpSessions()];
  }

  /** The WebSockets the runtime lists. */
  webSockets(): SimSocket[] {
    return this.all.filter((socket) => socket.state !== "closed");
  }

  now(): number {
    return this.time;
  }

  /** `getWebSocketAutoResponseTimestamp`: when the runtime last answered the socket's `ping`; null for HTTP sessions. */
  lastPingAt(socket: SimRoomSocket): number | null {
    return socket instanceof SimSocket ? socket.lastPingAt : null;
  }

  /** Sends `probe` as worker/room/index.ts does: a send like any other (gated), ignored on a socket already closed. */
  probe(socket: SimRoomSocket): void {
    if (!(socket instanceof SimSocket)) return;
    socket.probes.push(this.time);
    try {
      socket.sendText(QUIET_PROBE);
    } catch {
      // Closed by the peer: its close handler removes it.
    }
  }

  async fetch(url: string, init: RequestInit): Promise<Response> {
    this.beforeFetch?.();
    const response = this.endpoints.fetch(url, init, this.time);
    // Read after the other events: a failure is handled then, as the core awaits it.
    response.catch(() => {});
    await this.whileFetching?.();
    return response;
  }

  /** Every socket the world still tracks, those the runtime no longer lists included (frames may still be on their way to the client). */
  everySocket(): SimSocket[] {
    return this.all;
  }

  /** The id the next accepted socket will get (for trace labels). */
  get nextSocketId(): number {
    return this.socketCount + 1;
  }

  /** The runtime accepted a socket from client `client`. */
  accept(client: number): SimSocket {
    const socket = new SimSocket(++this.socketCount, client, this);
    this.all.push(socket);
    return socket;
  }

  /** The socket is gone for the runtime: no longer listed, nothing more arrives from it. */
  remove(socket: SimSocket): void {
    socket.state = "closed";
  }

  noteSend(socket: SimSocket): void {
    this.touched.add(socket);
    if (!this.storage.holdsOutput) this.releaseUngated?.();
  }

  /** The event committed: the output gate releases what it sent. Returns what was released, per socket. */
  commit(): [SimSocket, ToClient[]][] {
    const released: [SimSocket, ToClient[]][] = [];
    for (const socket of this.touched) released.push([socket, socket.release(this.time)]);
    this.touched.clear();
    return released;
  }

  /**
   * The process died: what the event sent is dropped, and every socket is gone (its client
   * sees 1006; the core is never told). Storage is rolled back by the caller.
   */
  kill(): SimSocket[] {
    for (const socket of this.touched) socket.discardGated();
    this.touched.clear();
    const lost = this.webSockets();
    for (const socket of lost) {
      socket.state = "closed";
      socket.toServer.length = 0;
    }
    return lost;
  }

  /** Drops sockets the world no longer needs to remember (closed and drained). */
  prune(): void {
    for (let i = this.all.length - 1; i >= 0; i--) {
      const socket = this.all[i]!;
      if (socket.state === "closed" && (socket.clientGone || socket.toClient.length === 0)) this.all.splice(i, 1);
    }
  }
}
