/**
 * What committed storage holds, read the way the room itself would after a restart: a fresh
 * DocumentStore (worker/storage.ts) on the database between events, inside a transaction that
 * is rolled back (sim/sqlite.ts `peek`), then Yjs. Cached per commit generation: most steps do
 * not write.
 */
import * as Y from "yjs";
import { joinChunks } from "../worker/chunks";
import { versionText } from "../worker/document";
import { DocumentStore } from "../worker/storage";
import { SHARED_TEXT } from "./client";
import type { SimStorage } from "./sqlite";

export interface StoredDocument {
  text: string;
  /** Client ID → clock, as Y.decodeStateVector gives it. */
  stateVector: Map<number, number>;
  /** The document as one V1 update (the API writer builds on it). */
  update: Uint8Array;
  exists: boolean;
}

export class StoredView {
  private cached: { generation: number; document: StoredDocument } | null = null;

  constructor(private readonly storage: SimStorage) {}

  document(): StoredDocument {
    if (this.cached?.generation === this.storage.generation) return this.cached.document;
    const document = this.storage.peek((sql) => {
      const store = new DocumentStore(sql, (body) => body());
      const { snapshot, updates } = store.load();
      const doc = new Y.Doc({ gc: true });
      try {
        doc.transact(() => {
          if (snapshot) Y.applyUpdateV2(doc, snapshot);
          for (const update of updates) Y.applyUpdate(doc, update);
        });
        return {
          text: doc.getText(SHARED_TEXT).toString(),
          stateVector: Y.decodeStateVector(Y.encodeStateVector(doc)),
          update: Y.encodeStateAsUpdate(doc),
          exists: store.exists(),
        };
      } finally {
        doc.destroy();
      }
    });
    this.cached = { generation: this.storage.generation, document };
    return document;
  }

  clock(clientId: number): number {
    return this.document().stateVector.get(clientId) ?? 0;
  }

  /** A version's text, from its stored state (null if there is no such version). */
  versionText(id: number): string | null {
    return this.storage.peek((sql) => {
      if (!tableExists(sql, "edgedoc_version_parts")) return null;
      const rows = sql.exec<{ data: ArrayBuffer }>("SELECT data FROM edgedoc_version_parts WHERE id = ? ORDER BY part", id).toArray();
      if (rows.length === 0) return null;
      return versionText(joinChunks(rows.map((row) => new Uint8Array(row.data))));
    });
  }

  /** Version ids that exist, oldest first. */
  versionIds(): number[] {
    return this.storage.peek((sql) =>
      tableExists(sql, "edgedoc_versions") ? sql.exec<{ id: number }>("SELECT id FROM edgedoc_versions ORDER BY id").toArray().map((row) => row.id) : [],
    );
  }

  /** Webhook rows not delivered and not given up on (the outbox's own table, docs/webhooks.md). */
  webhooksOutstanding(): { id: string; type: string; endpoint: string; state: string }[] {
    return this.storage.peek((sql) =>
      tableExists(sql, "edgedoc_webhooks")
        ? sql.exec<{ id: string; type: string; endpoint: string; state: string }>("SELECT id, type, endpoint, state FROM edgedoc_webhooks WHERE state != 'failed'").toArray()
        : [],
    );
  }
}

function tableExists(sql: import("../worker/room/ports").SqlPort, name: string): boolean {
  return sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray().length > 0;
}
