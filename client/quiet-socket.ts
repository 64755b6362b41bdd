/**
 * The app's WebSocket as a quiet client (docs/protocol.md, "Quiet clients"): it sends the room
 * nothing while nothing changes, so a room whose people are idle can hibernate.
 *
 * It wraps a WebSocket opened with `?presence=socket`, and the y-websocket provider drives it
 * as it drives a socket (`send`, `close`, `onopen`/`onmessage`/`onclose`/`onerror`). Beside
 * what the provider does:
 *
 * - **Only our own presence leaves.** The stock provider re-sends every presence change it
 *   hears, from the room or from other tabs (BroadcastChannel); the room holds each client's
 *   presence from that client's own socket, so such frames only wake it. An awareness frame
 *   goes out only when it carries this client's own state.
 * - **`ping` keeps the socket alive** after {@link QUIET_PING_AFTER_MS} of sending nothing; the
 *   runtime answers `pong` without waking the room. The room's `probe` is answered with a
 *   `ping` at once. Neither text frame reaches the provider.
 * - **Dead is a ping unanswered for {@link QUIET_PING_TIMEOUT_MS}**, not 30 s without a message
 *   (the stock rule, which EdgedocProvider turns off on quiet sockets): an idle room sends
 *   nothing, and Chrome runs a background tab's timers about once a minute, so the stock rule
 *   would reconnect every parked tab every minute, each reconnect waking the room. A frozen
 *   page's timers and socket messages are held alike, so a ping sent before a freeze is not
 *   judged after it; the next tick pings anew.
 */
import * as decoding from "lib0/decoding";
import { MessageType, PING, PONG, QUIET_PING_AFTER_MS, QUIET_PING_TIMEOUT_MS, QUIET_PROBE, QUIET_TICK_MS, readAwarenessEntries } from "../worker/protocol";
import { WebSocketLike } from "./websocket-like";
/** What the provider is told when a ping went unanswered: the connection failed without a close (RFC 6455 §7.4.1). */
const ABNORMAL_CLOSURE = 1006;

type Handler<E> = ((event: E) => void) | null;

export class QuietSocket extends WebSocketLike {

  onopen: Handler<Event> = null;
  onmessage: Handler<MessageEvent> = null;
  onclose: Handler<CloseEvent | { code: number; reason: string; wasClean: boolean }> = null;
  onerror: Handler<Event> = null;

  /** When we last sent anything, and when the ping still unanswered went out (null: none). */
  private lastSentAt = Date.now();
  private pingSentAt: number | null = null;
  private ticker: ReturnType<typeof setInterval> | null = null;
  /** Set once the provider was told of the close (by the socket, or by us for an unanswered ping). */
  private closeReported = false;
  private readonly forgetPing = () => (this.pingSentAt = null);

  /** `clientId`: this client's awareness ID, the only presence it sends. */
  constructor(
    private readonly socket: WebSocket,
    private readonly clientId: () => number,
  ) {
    super();
    socket.binaryType = "arraybuffer";
    socket.addEventListener("open", (event) => {
      this.ticker = setInterval(() => this.tick(), QUIET_TICK_MS);
      // A page is frozen with its timers and socket messages held: a ping sent before is not judged after.
      globalThis.document?.addEventListener("freeze", this.forgetPing);
      this.onopen?.(event);
    });
    socket.addEventListener("message", (event: MessageEvent) => this.received(event));
    socket.addEventListener("close", (event) => this.reportClose(event));
    socket.addEventListener("error", (event) => this.onerror?.(event));
  }

  get readyState(): number {
    return this.socket.readyState;
  }

  get binaryType(): BinaryType {
    return this.socket.binaryType;
  }

  set binaryType(type: BinaryType) {
    this.socket.binaryType = type;
  }

  addEventListener(...args: Parameters<WebSocket["addEventListener"]>): void {
    this.socket.addEventListener(...args);
  }

  send(data: ArrayBuffer | Uint8Array<ArrayBuffer>): void {
    const frame = data instanceof Uint8Array ? data : new Uint8Array(data);
    if (frame[0] === MessageType.awareness && !this.carriesOwnPresence(frame)) return;
    this.socket.send(data);
    this.lastSentAt = Date.now();
  }

  close(code?: number, reason?: string): void {
    this.stop();
    this.socket.close(code, reason);
  }

  private received(event: MessageEvent): void {
    this.pingSentAt = null; // anything heard answers the ping
    if (typeof event.data !== "string") return this.onmessage?.(event);
    if (event.data === QUIET_PROBE) this.ping();
    // `pong` (and any other text) is ours, not the provider's: y-websocket reads binary frames only.
    else if (event.data !== PONG) console.warn(`edgedoc: unexpected text frame ${JSON.stringify(event.data.slice(0, 32))}`);
  }

  private tick(): void {
    const now = Date.now();
    if (this.pingSentAt !== null && now - this.pingSentAt >= QUIET_PING_TIMEOUT_MS) return this.giveUp();
    if (this.pingSentAt === null && now - this.lastSentAt >= QUIET_PING_AFTER_MS) this.ping();
  }

  private ping(): void {
    if (this.socket.readyState !== this.OPEN) return;
    this.socket.send(PING);
    this.lastSentAt = Date.now();
    this.pingSentAt ??= this.lastSentAt;
  }

  /**
   * The connection is gone without a close: the provider is told now (it reconnects), as the
   * stock rule does, rather than after the closing handshake times out on a dead network.
   */
  private giveUp(): void {
    this.reportClose({ code: ABNORMAL_CLOSURE, reason: "no answer to ping", wasClean: false });
    this.socket.close();
  }

  private reportClose(event: CloseEvent | { code: number; reason: string; wasClean: boolean }): void {
    this.stop();
    if (this.closeReported) return;
    this.closeReported = true;
    this.onclose?.(event);
  }

  private stop(): void {
    if (this.ticker !== null) clearInterval(this.ticker);
    this.ticker = null;
    globalThis.document?.removeEventListener("freeze", this.forgetPing);
  }

  /** Whether an awareness frame carries this client's own state (what the room holds from this socket). */
  private carriesOwnPresence(frame: Uint8Array): boolean {
    try {
      const decoder = decoding.createDecoder(frame);
      decoding.readVarUint(decoder);
      const own = this.clientId();
      for (const { clientId } of readAwarenessEntries(decoding.readVarUint8Array(decoder))) if (clientId === own) return true;
      return false;
    } catch {
      return true; // not ours to judge: the room answers a malformed frame
    }
  }
}
