/**
 * Room: the Durable Object that hosts one document's room. A shell: it adapts the runtime
 * (hibernatable WebSockets, SQLite storage, the alarm, outbound fetch) to the ports of the
 * room's core (worker/room/ports.ts) and delegates each entry point and RPC method to the core
 * (worker/room/core.ts) or its HTTP API (worker/room/http-api.ts). docs/architecture.md.
 *
 * Text "ping" frames are answered by the runtime's auto-response without waking the object.
 * Clients of the HTTP fallback are sessions kept in memory (worker/room/http-sessions.ts),
 * listed to the core beside the hibernatable sockets.
 */
import { DurableObject } from "cloudflare:workers";
import { grantFrom } from "../access";
import { roomLimits } from "../config";
import type { DocumentInfo, Outcome, StorageStats, VersionInfo } from "../documents";
import { PING, PONG, QUIET_CLIENT_PARAM, QUIET_PROBE } from "../protocol";
import { webhookSettings, type WebhookEventInfo } from "../webhooks";
import { RoomCore } from "./core";
import { RoomApi } from "./http-api";
import { answerHttpFallback } from "./http-fallback";
import { HttpSessions, type HttpSession } from "./http-sessions";
import type { RoomHost, StoragePort } from "./ports";

export type { SocketAttachment } from "./sessions";

type RoomSocket = WebSocket | HttpSession;

export class Room extends DurableObject<Env> {
  private readonly core: RoomCore<RoomSocket>;
  private readonly api: RoomApi<RoomSocket>;
  private readonly http: HttpSessions;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING, PONG));
    this.http = new HttpSessions({
      connect: (session, grant) => this.core.connect(session, grant),
      message: (session, frame) => this.core.message(session, frame),
      closed: (session, end) => this.core.closed(session, end),
      admitRequest: (session) => this.core.admitRequest(session),
      chargeResend: (session, bytes) => this.core.chargeResend(session, bytes),
      now: () => Date.now(),
    });
    // After the sessions: the core lists every socket as it starts (a wake from hibernation).
    this.core = new RoomCore(durableObjectHost(ctx, () => this.http), { limits: roomLimits(env), webhooks: webhookSettings(env) });
    this.api = new RoomApi(this.core);
    void ctx.blockConcurrencyWhile(() => this.core.wake());
  }

  /**
   * Accepts a WebSocket upgrade forwarded (and authorized) by the Worker on the socket path and
   * starts the sync handshake; a request on the fallback's path is the HTTP fallback's. The path
   * decides, not the header: each path passed its own door (`/sync` counts sessions' requests,
   * not upgrades), so a socket through `/sync` would escape the upgrade limits (400).
   */
  async fetch(request: Request): Promise<Response> {
    const upgrade = request.headers.get("Upgrade")?.toLowerCase() === "websocket";
    const { pathname, searchParams } = new URL(request.url);
    if (pathname.startsWith("/sync/") && !upgrade) {
      const room = { durable: () => this.ctx.storage.sync(), maxFrameBytes: this.core.limits.maxFrameBytes, bytesAllowed: (session: HttpSession) => this.core.bytesAllowed(session) };
      return this.settled(answerHttpFallback(this.http, request, room));
    }
    if (!pathname.startsWith("/ws/") || !upgrade) return new Response("WebSockets open on /ws/:name, the HTTP fallback is /sync/:name", { status: 400 });
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    const quiet = searchParams.get(QUIET_CLIENT_PARAM.name) === QUIET_CLIENT_PARAM.value;
    await this.settled(this.core.connect(server, grantFrom(request), quiet));
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(socket: WebSocket, message: ArrayBuffer | string): Promise<void> {
    await this.settled(this.core.message(socket, message));
  }

  async webSocketClose(socket: WebSocket, code: number, reason: string, wasClean: boolean): Promise<void> {
    await this.settled(this.core.closed(socket, { code, reason, wasClean }));
  }

  async webSocketError(socket: WebSocket, error: unknown): Promise<void> {
    await this.settled(this.core.closed(socket, { error }));
  }

  async alarm(): Promise<void> {
    await this.settled(this.core.alarm());
  }

  // The HTTP API's calls (worker/api.ts), as Durable Object RPC. `caller` names who asks a read
  // that encodes the document (a token's owner, else an address): it is charged for it.

  async stats(): Promise<StorageStats> {
    return this.settled(this.api.stats());
  }

  async info(caller: string): Promise<Outcome<DocumentInfo>> {
    return this.settled(this.api.info(caller));
  }

  async text(caller: string): Promise<Outcome<string>> {
    return this.settled(this.core.reads.text(caller));
  }

  /** The document, or what a peer with `stateVector` lacks. */
  async encodeUpdate(caller: string, stateVector?: Uint8Array): Promise<Outcome<Uint8Array>> {
    return this.settled(this.core.reads.update(caller, stateVector));
  }

  async applyUpdate(update: Uint8Array, author?: string): Promise<Outcome<{ changed: boolean; pending?: true }>> {
    return this.settled(this.api.applyUpdate(update, author));
  }

  async replaceText(text: string, author?: string): Promise<Outcome<{ changed: boolean }>> {
    return this.settled(this.api.replaceText(text, author));
  }

  async versions(): Promise<VersionInfo[]> {
    return this.settled(this.api.versions());
  }

  async version(id: number): Promise<Outcome<VersionInfo>> {
    return this.settled(this.api.version(id));
  }

  async versionText(caller: string, id: number): Promise<Outcome<string>> {
    return this.settled(this.core.reads.versionText(caller, id));
  }

  async versionUpdate(caller: string, id: number): Promise<Outcome<Uint8Array>> {
    return this.settled(this.core.reads.versionUpdate(caller, id));
  }

  async saveVersion(name: string): Promise<Outcome<VersionInfo>> {
    return this.settled(this.api.saveVersion(name));
  }

  async restoreVersion(id: number, author?: string): Promise<Outcome<{ changed: boolean }>> {
    return this.settled(this.api.restoreVersion(id, author));
  }

  async deleteVersion(id: number): Promise<Outcome<null>> {
    return this.settled(this.api.deleteVersion(id));
  }

  async destroy(): Promise<void> {
    await this.settled(this.api.destroy());
  }

  async webhookEvents(): Promise<WebhookEventInfo[]> {
    return this.settled(this.api.webhookEvents());
  }

  /**
   * Runs an entry point, then tells the core of the HTTP sessions it ended (closed, fallen
   * behind, or ended by a relay it made): after the handler, as the runtime reports a
   * socket's close, never inside it (worker/room/http-sessions.ts, `reportEnds`).
   */
  private async settled<T>(work: T | Promise<T>): Promise<T> {
    try {
      return await work;
    } finally {
      // Checked first: every socket message passes here, and almost none ended a session.
      if (this.http.endsToReport) await this.http.reportEnds();
    }
  }
}

/** The core's ports over this object's state: its storage, its sockets (hibernatable and HTTP), the clock and fetch. */
function durableObjectHost(ctx: DurableObjectState, httpSessions: () => HttpSessions): RoomHost<RoomSocket> {
  const storage: StoragePort = {
    sql: ctx.storage.sql,
    transaction: (body) => ctx.storage.transactionSync(body),
    getAlarm: () => ctx.storage.getAlarm(),
    setAlarm: (at) => ctx.storage.setAlarm(at),
    deleteAlarm: () => ctx.storage.deleteAlarm(),
    deleteAll: () => ctx.storage.deleteAll(),
  };
  return {
    storage,
    // Every relay lists the sockets: without HTTP sessions, the runtime's list as it is.
    sockets: () => (httpSessions().any ? [...ctx.getWebSockets(), ...httpSessions().listed()] : ctx.getWebSockets()),
    now: () => Date.now(),
    fetch: (url, init) => fetch(url, init),
    name: ctx.id.name,
    lastPingAt: (socket) => (socket instanceof WebSocket ? (ctx.getWebSocketAutoResponseTimestamp(socket)?.getTime() ?? null) : null),
    probe: (socket) => {
      try {
        if (socket instanceof WebSocket) socket.send(QUIET_PROBE);
      } catch {
        // Closed by the peer: its close handler removes it.
      }
    },
  };
}
