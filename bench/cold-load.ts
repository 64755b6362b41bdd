/**
 * Cold load and storage of a large document, end to end against a real `wrangler dev`.
 *
 * Builds the automerge-paper document keystroke by keystroke (and, with `copies`, a document
 * that many times larger), uploads it through the stock y-websocket provider, lets the idle
 * room compact, then measures what is stored and how long a fresh client takes from socket
 * open to synced after a server restart (the room must load from SQLite).
 */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import type { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { connectProvider, disconnectProvider, waitFor } from "../test/node/providers.ts";
import { removePersistDir, startDevServer, type DevServer } from "../test/node/wrangler.ts";
import { loadTrace, replayIntoDoc } from "./trace.ts";

/** The room compacts 5 s after its last socket leaves (IDLE_COMPACTION_DELAY_MS); wait a little longer. */
const AFTER_IDLE_COMPACTION_MS = 7_000;
const SYNC_TIMEOUT_MS = 60_000;

export interface ColdLoadResult {
  document: string;
  copies: number;
  keystrokes: number;
  textChars: number;
  encodedV1Bytes: number;
  encodedV2Bytes: number;
  storedBytesAfterUpload: number;
  storedBytesAfterCompaction: number;
  /** Socket open to synced, one per server restart, in ms. */
  coldLoadMs: number[];
}

export async function measureColdLoad({ copies = 1, restarts = 3 } = {}): Promise<ColdLoadResult> {
  const trace = loadTrace("automerge-paper");
  const source = replayIntoDoc(trace, copies);
  const room = `bench-cold-${copies}x-${Date.now()}`;
  const expected = (doc: Y.Doc) => doc.getText("codemirror").toString() === trace.endContent;

  let server = await startDevServer();
  try {
    const writer = connectProvider(server, room);
    await synced(writer);
    Y.applyUpdate(writer.doc, Y.encodeStateAsUpdate(source));
    const reader = connectProvider(server, room);
    await synced(reader, () => sameState(reader.doc, source));
    disconnectProvider(writer);
    disconnectProvider(reader);
    const storedBytesAfterUpload = storedBytes(server);
    await new Promise((resolve) => setTimeout(resolve, AFTER_IDLE_COMPACTION_MS));
    const storedBytesAfterCompaction = storedBytes(server);

    const coldLoadMs: number[] = [];
    for (let i = 0; i < restarts; i++) {
      await server.stop();
      server = await startDevServer({ persistDir: server.persistDir });
      const started = performance.now();
      const fresh = connectProvider(server, room);
      await synced(fresh, () => expected(fresh.doc));
      coldLoadMs.push(performance.now() - started);
      if (!sameState(fresh.doc, source)) throw new Error("the reloaded document differs from the uploaded one");
      disconnectProvider(fresh);
    }
    return {
      document: "automerge-paper",
      copies,
      keystrokes: trace.txns.length * copies,
      textChars: trace.endContent.length * copies,
      encodedV1Bytes: Y.encodeStateAsUpdate(source).length,
      encodedV2Bytes: Y.encodeStateAsUpdateV2(source).length,
      storedBytesAfterUpload,
      storedBytesAfterCompaction,
      coldLoadMs,
    };
  } finally {
    await server.stop();
    removePersistDir(server.persistDir);
  }
}

function synced(provider: WebsocketProvider, also: () => boolean = () => true): Promise<void> {
  return waitFor(() => provider.synced && also(), "a provider to sync", SYNC_TIMEOUT_MS);
}

function sameState(a: Y.Doc, b: Y.Doc): boolean {
  return Buffer.from(Y.encodeStateVector(a)).equals(Buffer.from(Y.encodeStateVector(b)));
}

/**
 * Document bytes in the room's SQLite tables (snapshot plus log), read from the persist dir.
 * Reading while wrangler runs is safe: SQLite's WAL lets a reader see the last commit.
 */
function storedBytes(server: DevServer): number {
  const dir = join(server.persistDir, "v3", "do", "edgedoc-Room");
  let total = 0;
  for (const file of readdirSync(dir).filter((name) => name.endsWith(".sqlite"))) {
    const db = new DatabaseSync(join(dir, file), { readOnly: true });
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE name IN ('edgedoc_snapshot', 'edgedoc_log')").all();
      for (const { name } of tables as { name: string }[]) {
        total += Number((db.prepare(`SELECT COALESCE(SUM(LENGTH(data)), 0) AS bytes FROM ${name}`).get() as { bytes: number }).bytes);
      }
    } finally {
      db.close();
    }
  }
  return total;
}
