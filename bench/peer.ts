/**
 * The benchmark's peer: y-partyserver's `YServer`, configured the way its README tells its users
 * to, served by the bench Worker (bench/worker.ts) at `/parties/peer/<document>` through
 * partyserver's `routePartykitRequest`. A stock y-websocket provider reaches it with the
 * serverUrl `ws://host/parties/peer` and the document as its room name.
 *
 * - Persistence through the documented `onLoad`/`onSave` hooks, into the object's SQLite:
 *   `onSave` stores the whole document (`Y.encodeStateAsUpdate`), `onLoad` applies it.
 * - `onSave`'s default debounce (`callbackOptions` left alone: 2 s after the last edit, at
 *   least every 10 s while edits go on).
 * - Hibernation on, as a Durable Object serving sockets should be.
 *
 * {@link PeerStandard} is the same server with partyserver's default, standard sockets
 * (`hibernate: false`), at `/parties/peer-standard/<document>`: the object then stays in
 * memory, and is billed for duration, as long as a socket is open.
 *
 * Both log what reaches them in the idle scenario's documents (bench/idle-events.ts): the
 * constructor, connects, frames and closes. They set no alarm.
 *
 * It uses the same single `yjs` as edgedoc (check with `npm ls yjs`).
 */
import type { Connection, ConnectionContext, WSMessage } from "partyserver";
import { YServer } from "y-partyserver";
import * as Y from "yjs";
import { logIdleEvent } from "./idle-events";

export class Peer extends YServer {
  static override options = { hibernate: true };

  constructor(...args: ConstructorParameters<typeof YServer>) {
    super(...args);
    // partyserver addresses its objects by name (idFromName), so the id carries it here already.
    logIdleEvent(args[0].id.name, "construct");
  }

  override async onLoad(): Promise<void> {
    this.ctx.storage.sql.exec("CREATE TABLE IF NOT EXISTS documents (name TEXT PRIMARY KEY, state BLOB NOT NULL)");
    const row = this.ctx.storage.sql.exec<{ state: ArrayBuffer }>("SELECT state FROM documents WHERE name = ?", this.name).toArray()[0];
    if (row) Y.applyUpdate(this.document, new Uint8Array(row.state));
  }

  override async onSave(): Promise<void> {
    this.ctx.storage.sql.exec(
      "INSERT INTO documents (name, state) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET state = excluded.state",
      this.name,
      Y.encodeStateAsUpdate(this.document),
    );
  }

  override onConnect(connection: Connection, context: ConnectionContext): void {
    logIdleEvent(this.name, "connect");
    super.onConnect(connection, context);
  }

  override onMessage(connection: Connection, message: WSMessage): void {
    logIdleEvent(this.name, "message");
    super.onMessage(connection, message);
  }

  override onClose(connection: Connection, code: number, reason: string, wasClean: boolean): void {
    logIdleEvent(this.name, "close");
    super.onClose(connection, code, reason, wasClean);
  }
}

/** The peer with y-partyserver's default sockets: standard, not hibernatable. */
export class PeerStandard extends Peer {
  static override options = { hibernate: false };
}
