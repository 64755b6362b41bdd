/**
 * What the room answers over Durable Object RPC, shared by the Worker's API, the app and the
 * tests. Types only: no runtime imports, so the browser app can use them too.
 */
import type { CloseCode } from "./protocol";

/** What the store holds, for compaction decisions, limits, tests and the stats endpoint. */
export interface StorageStats {
  /** Bytes of document data stored: snapshot plus log. */
  storedBytes: number;
  snapshotBytes: number;
  snapshotChunks: number;
  logBytes: number;
  /** Rows in the log table (an update over one chunk takes several). */
  logRows: number;
  /** Updates in the log. */
  logUpdates: number;
}

/** What `GET /api/docs/:name` reports. */
export interface DocumentInfo extends StorageStats {
  exists: boolean;
  /** The title everyone sees (worker/title.ts): cleaned, at most `MAX_TITLE_CHARS` characters, "Untitled" when it has none. */
  title: string;
  /** Size of the document encoded as one Yjs V1 update. */
  encodedBytes: number;
  /** Yjs items (structs) it holds, against `MAX_DOCUMENT_ITEMS`. */
  items: number;
  sockets: number;
  /** ISO time of the last edit, or null. */
  lastUpdateAt: string | null;
  /** Bytes of versions kept (docs/history.md), apart from `storedBytes`, and how many. */
  historyBytes: number;
  versions: number;
}

/**
 * A room operation's outcome in the room's own terms: a value, or a refusal with the close
 * code a socket would get for the same input. The HTTP API decides what status that is.
 */
export type Outcome<T> =
  | { ok: true; value: T }
  | { ok: false; closeCode: CloseCode; reason: string }
  | { ok: false; refused: HistoryRefusal; reason: string }
  | { ok: false; busy: ReadBusy; retryAfterSeconds: number; reason: string };

/**
 * Whose budget refused a read that encodes or builds a document (worker/read-budget.ts): the
 * caller's, past its own share, or the room's, which every caller and socket answer share.
 */
export type ReadBusy = "caller" | "room";

/** Why the room refused a version request, apart from the checks every edit passes. */
export type HistoryRefusal = "no-such-version" | "no-document" | "not-named" | "history-full";

/** What caused a version: the last socket left, editing went on for an interval, someone named it, or a restore was about to replace the text. */
export type VersionReason = "session-end" | "interval" | "named" | "before-restore";

/** One version as the HTTP API and the app see it (`GET /api/docs/:name/versions`). */
export interface VersionInfo {
  /** Increasing per document. */
  id: number;
  /** ISO time the version was taken. */
  createdAt: string;
  /** The name someone gave it, or null for an automatic version. */
  name: string | null;
  reason: VersionReason;
  /** Who edited since the previous version: token names, else presence names. */
  authors: string[];
  /** Stored size: the whole document as one Yjs V2 update. */
  bytes: number;
}
