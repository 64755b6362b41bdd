/**
 * The benchmark's Worker: edgedoc unchanged, plus two floors to measure it against, served by
 * the same `wrangler dev` (bench/wrangler.toml):
 * - `/bench/relay/:name`: a bare relay object. Hibernating sockets; each frame is forwarded to
 *   the room's other sockets. No Yjs, no storage: the least a room can do on this runtime.
 * - `/bench/relay-sqlite/:name`: the same, with one SQLite insert per frame before forwarding:
 *   the cost of write-before-relay on this runtime.
 * And a peer to measure it beside: y-partyserver's YServer (bench/peer.ts) at
 * `/parties/peer/:name` (hibernating sockets) and `/parties/peer-standard/:name` (its default,
 * standard sockets), routed by partyserver's `routePartykitRequest` as its users do.
 *
 * edgedoc's room is bound as {@link BenchRoom}: the Room unchanged, logging what reaches it in
 * the idle scenario's documents (bench/idle-events.ts). The app (dist/client) is served beside
 * it, as wrangler.toml serves it, for the idle scenario's browser clients.
 */
import { DurableObject } from "cloudflare:workers";
import { routePartykitRequest } from "partyserver";
import app, { Room } from "../worker/index";
import { logIdleEvent } from "./idle-events";
import type { Peer, PeerStandard } from "./peer";

export { Peer, PeerStandard } from "./peer";

interface BenchEnv extends Env {
  RELAY: DurableObjectNamespace<RelayRoom>;
  SQLITE_RELAY: DurableObjectNamespace<SqliteRelayRoom>;
  PEER: DurableObjectNamespace<Peer>;
  PEER_STANDARD: DurableObjectNamespace<PeerStandard>;
}

/**
 * edgedoc's Room, each entry point that can wake it logged first (for the idle scenario's
 * documents only): its constructor (a start, or a wake after the runtime evicted it),
 * WebSocket upgrades, frames (text `ping` never arrives: the runtime answers it), closes and
 * alarms. RPC calls and the HTTP fallback are left alone: the scenario makes none.
 */
export class BenchRoom extends Room {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    logIdleEvent(ctx.id.name, "construct");
  }

  override async fetch(request: Request): Promise<Response> {
    if (request.headers.get("Upgrade")?.toLowerCase() === "websocket") logIdleEvent(this.ctx.id.name, "connect");
    return super.fetch(request);
  }

  override async webSocketMessage(socket: WebSocket, message: ArrayBuffer | string): Promise<void> {
    logIdleEvent(this.ctx.id.name, "message");
    return super.webSocketMessage(socket, message);
  }

  override async webSocketClose(socket: WebSocket, code: number, reason: string, wasClean: boolean): Promise<void> {
    logIdleEvent(this.ctx.id.name, "close");
    return super.webSocketClose(socket, code, reason, wasClean);
  }

  override async alarm(): Promise<void> {
    logIdleEvent(this.ctx.id.name, "alarm");
    return super.alarm();
  }
}

export class RelayRoom extends DurableObject<BenchEnv> {
  async fetch(): Promise<Response> {
    const { 0: client, 1: server } = new WebSocketPair();
    this.ctx.acceptWebSocket(server);
    return new Response(null, { status: 101, webSocket: client });
  }

  async webSocketMessage(socket: WebSocket, message: ArrayBuffer | string): Promise<void> {
    this.store(message);
    for (const other of this.ctx.getWebSockets()) {
      if (other === socket) continue;
      try {
        other.send(message);
      } catch {
        // A closing socket; the benchmark does not care.
      }
    }
  }

  async webSocketClose(socket: WebSocket, code: number): Promise<void> {
    if (code !== 1005 && code !== 1006) socket.close(code, "bye");
  }

  /** Nothing for the bare relay. */
  protected store(_message: ArrayBuffer | string): void {}
}

export class SqliteRelayRoom extends RelayRoom {
  constructor(ctx: DurableObjectState, env: BenchEnv) {
    super(ctx, env);
    ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS frames (seq INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB NOT NULL)");
  }

  protected override store(message: ArrayBuffer | string): void {
    this.ctx.storage.sql.exec("INSERT INTO frames (data) VALUES (?)", message);
  }
}

export default {
  async fetch(request: Request, env: BenchEnv, ctx: ExecutionContext): Promise<Response> {
    const path = new URL(request.url).pathname;
    // Only the peers' parties: routePartykitRequest would route any namespace of env (edgedoc's ROOM too).
    if (path.startsWith("/parties/peer/") || path.startsWith("/parties/peer-standard/")) return (await routePartykitRequest(request, env)) ?? new Response("Not Found", { status: 404 });
    const match = /^\/bench\/(relay|relay-sqlite)\/([^/]+)$/.exec(path);
    if (!match) return app.fetch(request, env, ctx);
    const namespace = match[1] === "relay" ? env.RELAY : env.SQLITE_RELAY;
    return namespace.get(namespace.idFromName(match[2]!)).fetch(request);
  },
};
