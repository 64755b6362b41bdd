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
 * It uses the same single `yjs` as edgedoc (check with `npm ls yjs`).
 */
import { YServer } from "y-partyserver";
import * as Y from "yjs";

export class Peer extends YServer {
  static override options = { hibernate: true };

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
}
