/**
 * Room: the Durable Object that owns one document and every socket editing it.
 *
 * Built for hibernation: sockets are accepted with `ctx.acceptWebSocket`, each socket's
 * identity and presence live in its attachment, and everything in memory is rebuilt from
 * `ctx.getWebSockets()` when the object wakes. There are no JS timers (an interval would keep
 * the object awake); the presence sweep runs from an alarm, and text "ping" frames are
 * answered by the runtime's auto-response without waking the object.
 */
import { DurableObject } from "cloudflare:workers";
import { PresenceRegistry, type SocketPresence } from "./awareness";
import { RoomDocument } from "./document";
import { MAX_FRAME_BYTES } from "./limits";
import { logEvent } from "./log";
import {
  CloseCode,
  ProtocolError,
  decodeClientMessage,
  encodeAwareness,
  encodeSyncStep1,
  encodeSyncStep2,
  encodeSyncUpdate,
  type AwarenessEntry,
  type ClientMessage,
} from "./protocol";

/** Request header by which the Worker tells the room its document name (for logs). */
export const ROOM_NAME_HEADER = "X-Edgedoc-Room";

/** What each socket carries through hibernation (serialized by the runtime, 16 KiB at most). */
export interface SocketAttachment {
  room: string;
  connectedAt: number;
  presence: SocketPresence;
}

/** Close codes the runtime reports but which must never be sent in a Close frame (RFC 6455 §7.4.1). */
const UNSENDABLE_CLOSE_CODES = new Set([1005, 1006, 1015]);

/** A WebSocket close reason may be at most 123 bytes (RFC 6455 §5.5: 125-byte control payload). */
const MAX_CLOSE_REASON_BYTES = 123;

export class Room extends DurableObject<Env> {
  private readonly document = new RoomDocument();
  private readonly presence = new PresenceRegistry<WebSocket>();
  /** Whether a sweep alarm is known to be set; unknown (false) after a wake. */
  private sweepScheduled = false;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
    for (const socket of ctx.getWebSockets()) {
      const attachment = readAttachment(socket);
      if (attachment) this.presence.restore(socket, attachment.presence);
    }
  }

  /** Accepts a WebSocket upgrade forwarded by the Worker and starts the sync handshake. */
  async fetch(request: Request): Promise<Response> {
    const room = request.headers.get(ROOM_NAME_HEADER) ?? "";
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    const attachment: SocketAttachment = { room, connectedAt: Date.now(), presence: {} };
    server.serializeAttachment(attachment);
    server.send(encodeSyncStep1(this.document.stateVector()));
    const states = this.presence.states();
    if (states.length > 0) server.send(encodeAwareness(states));
    logEvent("connect", { room, sockets: this.ctx.getWebSockets().length });
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(socket: WebSocket, message: ArrayBuffer | string): Promise<void> {
    try {
      if (typeof message === "string") {
        throw new ProtocolError(CloseCode.unsupportedData, "text frames are not supported; send binary y-websocket frames");
      }
      if (message.byteLength > MAX_FRAME_BYTES) {
        throw new ProtocolError(CloseCode.messageTooBig, `frame too large: over ${MAX_FRAME_BYTES} bytes`);
      }
      await this.handle(socket, decodeClientMessage(new Uint8Array(message)));
    } catch (error) {
      if (error instanceof ProtocolError) {
        this.reject(socket, error.closeCode, error.message);
      } else {
        logEvent("room_error", { room: roomOf(socket), error: String(error) });
        this.reject(socket, CloseCode.internalError, "internal error");
      }
    }
  }

  async webSocketClose(socket: WebSocket, code: number, reason: string, wasClean: boolean): Promise<void> {
    const attachment = readAttachment(socket);
    logEvent("close", {
      room: attachment?.room,
      code,
      reason,
      wasClean,
      durationMs: attachment ? Date.now() - attachment.connectedAt : undefined,
    });
    this.dropSocket(socket);
    if (!UNSENDABLE_CLOSE_CODES.has(code)) closeQuietly(socket, code, reason);
  }

  async webSocketError(socket: WebSocket, error: unknown): Promise<void> {
    logEvent("socket_error", { room: roomOf(socket), error: String(error) });
    this.dropSocket(socket);
  }

  /** Sweeps presence that was not renewed: peers that vanished without a close. */
  async alarm(): Promise<void> {
    this.sweepScheduled = false;
    const { removed, changedSockets, silentSockets } = this.presence.sweep(Date.now());
    for (const socket of changedSockets) this.saveAttachment(socket);
    for (const socket of silentSockets) {
      logEvent("presence_timeout", { room: roomOf(socket) });
      closeQuietly(socket, CloseCode.presenceTimeout, "presence timed out: no awareness renewal for 30 s");
    }
    if (removed.length > 0) this.broadcast(encodeAwareness(removed));
    await this.scheduleSweep();
  }

  private async handle(socket: WebSocket, message: ClientMessage): Promise<void> {
    switch (message.type) {
      case "sync-step1":
        socket.send(encodeSyncStep2(this.document.missingFrom(message.stateVector)));
        return;
      case "sync-step2":
      case "sync-update": {
        const integrated = this.document.apply(message.update);
        if (integrated !== null) this.broadcast(encodeSyncUpdate(integrated), socket);
        return;
      }
      case "awareness":
        return this.applyAwareness(socket, message.entries);
      case "query-awareness":
        socket.send(encodeAwareness(this.presence.states()));
        return;
    }
  }

  private async applyAwareness(socket: WebSocket, entries: AwarenessEntry[]): Promise<void> {
    const changes = this.presence.apply(socket, entries, Date.now());
    if (changes.length === 0) return;
    this.saveAttachment(socket);
    // Relayed to the sender too, as the reference server does: a provider alone in a room
    // otherwise hears nothing and reconnects after 30 s of silence.
    this.broadcast(encodeAwareness(changes));
    await this.scheduleSweep();
  }

  /** Closes a socket that sent something we refuse; the document and other sockets are untouched. */
  private reject(socket: WebSocket, code: CloseCode, reason: string): void {
    logEvent("frame_rejected", { room: roomOf(socket), code, reason });
    this.dropSocket(socket);
    closeQuietly(socket, code, reason);
  }

  /** Forgets a socket's presence and tells everyone else it left. */
  private dropSocket(socket: WebSocket): void {
    const removed = this.presence.removeSocket(socket);
    if (removed.length > 0) this.broadcast(encodeAwareness(removed), socket);
  }

  private broadcast(frame: Uint8Array, except?: WebSocket): void {
    for (const socket of this.ctx.getWebSockets()) {
      if (socket === except) continue;
      try {
        socket.send(frame);
      } catch {
        // The socket is closing; its close handler cleans up. Others must still get the frame.
      }
    }
  }

  private saveAttachment(socket: WebSocket): void {
    const attachment = readAttachment(socket);
    if (!attachment) return;
    socket.serializeAttachment({ ...attachment, presence: this.presence.heldBy(socket) } satisfies SocketAttachment);
  }

  /** Makes sure an alarm will sweep presence; one alarm at a time, re-armed by each sweep. */
  private async scheduleSweep(): Promise<void> {
    const due = this.presence.nextExpiry();
    if (due === null || this.sweepScheduled) return;
    if ((await this.ctx.storage.getAlarm()) === null) await this.ctx.storage.setAlarm(due);
    this.sweepScheduled = true;
  }
}

function readAttachment(socket: WebSocket): SocketAttachment | null {
  return socket.deserializeAttachment() as SocketAttachment | null;
}

function roomOf(socket: WebSocket): string | undefined {
  return readAttachment(socket)?.room;
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
