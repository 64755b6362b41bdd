/**
 * The benchmark's Worker: edgedoc unchanged, plus two floors to measure it against, served by
 * the same `wrangler dev` (bench/wrangler.toml):
 * - `/bench/relay/:name`: a bare relay object. Hibernating sockets; each frame is forwarded to
 *   the room's other sockets. No Yjs, no storage: the least a room can do on this runtime.
 * - `/bench/relay-sqlite/:name`: the same, with one SQLite insert per frame before forwarding:
 *   the cost of write-before-relay on this runtime.
 */
import { DurableObject } from "cloudflare:workers";
import app from "../worker/index";

export { Room } from "../worker/index";

interface BenchEnv extends Env {
  RELAY: DurableObjectNamespace<RelayRoom>;
  SQLITE_RELAY: DurableObjectNamespace<SqliteRelayRoom>;
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
  fetch(request: Request, env: BenchEnv, ctx: ExecutionContext): Response | Promise<Response> {
    const match = /^\/bench\/(relay|relay-sqlite)\/([^/]+)$/.exec(new URL(request.url).pathname);
    if (!match) return app.fetch(request, env, ctx);
    const namespace = match[1] === "relay" ? env.RELAY : env.SQLITE_RELAY;
    return namespace.get(namespace.idFromName(match[2]!)).fetch(request);
  },
};
