/**
 * The benchmark's Worker: edgedoc unchanged, plus two floors to measure it against, served by
 * the same `wrangler dev` (bench/wrangler.toml):
 * - `/bench/relay/:name`: a bare relay object. Hibernating sockets; each frame is forwarded to
 *   the room's other sockets. No Yjs, no storage: the least a room can do on this runtime.
 * - `/bench/relay-sqlite/:name`: the same, with one SQLite insert per frame before forwarding:
 *   the cost of write-before-relay on this runtime.
 * And a peer to measure it beside: y-partyserver's YServer (bench/peer.ts) at
 * `/parties/peer/:name`, routed by partyserver's `routePartykitRequest` as its users do.
 */
import { DurableObject } from "cloudflare:workers";
import { routePartykitRequest } from "partyserver";
import app from "../worker/index";
import type { Peer } from "./peer";

export { Room } from "../worker/index";
export { Peer } from "./peer";

interface BenchEnv extends Env {
  RELAY: DurableObjectNamespace<RelayRoom>;
  SQLITE_RELAY: DurableObjectNamespace<SqliteRelayRoom>;
  PEER: DurableObjectNamespace<Peer>;
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
    // Only the peer's party: routePartykitRequest would route any namespace of env (edgedoc's ROOM too).
    if (path.startsWith("/parties/peer/")) return (await routePartykitRequest(request, env)) ?? new Response("Not Found", { status: 404 });
    const match = /^\/bench\/(relay|relay-sqlite)\/([^/]+)$/.exec(path);
    if (!match) return app.fetch(request, env, ctx);
    const namespace = match[1] === "relay" ? env.RELAY : env.SQLITE_RELAY;
    return namespace.get(namespace.idFromName(match[2]!)).fetch(request);
  },
};
