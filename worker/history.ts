/**
 * A document's version history in its Durable Object's SQLite database (docs/history.md).
 *
 * A version is the whole document at a moment, one Yjs V2 update split into row-sized parts
 * like the snapshot (garbage collection stays on: `Y.snapshot` would need it off). Tables
 * (created with the document's others, storage format 2):
 * - `edgedoc_versions(id, created_at, name, reason, authors, bytes, items)`: one row per version;
 *   `authors` is a JSON array, `items` the Yjs items it loads as (to bound a restore's memory).
 * - `edgedoc_version_parts(id, part, data)`: its state.
 * - `edgedoc_version_text(id, part, data)`: its editor text (what `RoomDocument.text()` returns)
 *   as UTF-8 in row-sized parts, so a preview reads it instead of loading the version as a
 *   second document. Added within format 2: versions taken before it have none, and their
 *   preview loads them. `bytes` counts it, so the history's budget does.
 * - `edgedoc_version_authors(name)`: who edited since the last version, written once per new
 *   name, not per edit.
 * In `edgedoc_meta`: `last_version_id` (ids only ever increase, even after a delete) and
 * `unversioned_since`, when the first change since the last version was stored (absent when
 * the newest version is the current state), written once per version, not per edit.
 */
import { joinChunks, splitIntoChunks } from "./chunks";
import type { VersionInfo, VersionReason } from "./documents";
import { MAX_AUTHOR_NAME_CHARS, MAX_HISTORY_BYTES, MAX_NAMED_VERSIONS, MAX_VERSION_AUTHORS, SQLITE_CHUNK_BYTES } from "./limits";
import { versionsToDrop } from "./retention";
import type { DocumentStore } from "./storage";
import type { SqlPort, SqlValue } from "./room/ports";

/** A version's stored state and how many Yjs items it loads as. */
export interface VersionState {
  state: Uint8Array;
  items: number;
}

/**
 * How large a version is, known without reading it: what a read of it is charged before anything
 * is read (worker/read-budget.ts).
 */
export interface VersionSize {
  /** Bytes of its state (Yjs V2). */
  stateBytes: number;
  /** Yjs items it loads as. */
  items: number;
  /** Bytes of its stored text (UTF-8), or null when it has none (taken before texts were kept). */
  textBytes: number | null;
}

/** What {@link History.take} stores: the state, and the editor text it holds, read off the live document. */
export interface NewVersion extends VersionState {
  text: string;
}

/** Why saving a named version was refused. */
export type NamedVersionRefusal = "too-many-named" | "history-full";

interface VersionRow extends Record<string, SqlValue> {
  id: number;
  created_at: number;
  name: string | null;
  reason: string;
  authors: string;
  bytes: number;
  items: number;
}

export class History {
  /** Who edited since the last version, as stored in `edgedoc_version_authors`. */
  private readonly authors: Set<string>;
  private unversionedSinceAt: number | null;

  constructor(
    private readonly sql: SqlPort,
    private readonly transaction: <T>(body: () => T) => T,
    private readonly store: DocumentStore,
  ) {
    const exists = store.exists();
    this.authors = new Set(exists ? this.sql.exec<{ name: string }>("SELECT name FROM edgedoc_version_authors").toArray().map((row) => row.name) : []);
    this.unversionedSinceAt = exists ? store.meta("unversioned_since") : null;
  }

  /** When the first change since the newest version was stored, or null when there is none. */
  get unversionedSince(): number | null {
    return this.unversionedSinceAt;
  }

  /**
   * Records that a stored change happened, by `author` when known. Writes only for the first
   * change after a version and for a new author, so typing costs no extra write per keystroke.
   */
  noteChange(now: number, author: string | undefined): void {
    if (this.unversionedSinceAt === null) {
      this.store.setMeta("unversioned_since", now);
      this.unversionedSinceAt = now;
    }
    // Runs on every edit: a name already noted (names are usually clean already) costs one lookup.
    if (author === undefined || this.authors.has(author) || this.authors.size >= MAX_VERSION_AUTHORS) return;
    const name = cleanAuthor(author);
    if (name === "" || this.authors.has(name)) return;
    this.sql.exec("INSERT OR IGNORE INTO edgedoc_version_authors (name) VALUES (?)", name);
    this.authors.add(name);
  }

  /**
   * Stores `state` (the whole document, Yjs V2, loading as `items` items) and its `text` as a
   * new version, which costs (`bytes`) both, and applies the retention policy. A named version
   * is refused when the named ones would pass their count or the history's byte budget: only
   * automatic versions are ever dropped.
   */
  take(
    version: NewVersion,
    reason: VersionReason,
    now: number,
    name: string | null = null,
  ): { ok: true; value: VersionInfo } | { ok: false; refusal: NamedVersionRefusal } {
    const text = new TextEncoder().encode(version.text);
    const bytes = version.state.length + text.length;
    if (reason === "named") {
      const named = this.sql
        .exec<{ count: number; bytes: number | null }>("SELECT COUNT(*) AS count, SUM(bytes) AS bytes FROM edgedoc_versions WHERE name IS NOT NULL")
        .one();
      if (named.count >= MAX_NAMED_VERSIONS) return { ok: false, refusal: "too-many-named" };
      if ((named.bytes ?? 0) + bytes > MAX_HISTORY_BYTES) return { ok: false, refusal: "history-full" };
    }
    const id = (this.store.meta("last_version_id") ?? 0) + 1;
    const authors = [...this.authors];
    this.transaction(() => {
      this.sql.exec(
        "INSERT INTO edgedoc_versions (id, created_at, name, reason, authors, bytes, items) VALUES (?, ?, ?, ?, ?, ?, ?)",
        id,
        now,
        name,
        reason,
        JSON.stringify(authors),
        bytes,
        version.items,
      );
      splitIntoChunks(version.state, SQLITE_CHUNK_BYTES).forEach((chunk, part) =>
        this.sql.exec("INSERT INTO edgedoc_version_parts (id, part, data) VALUES (?, ?, ?)", id, part, chunk),
      );
      splitIntoChunks(text, SQLITE_CHUNK_BYTES).forEach((chunk, part) =>
        this.sql.exec("INSERT INTO edgedoc_version_text (id, part, data) VALUES (?, ?, ?)", id, part, chunk),
      );
      this.store.setMeta("last_version_id", id);
      this.store.deleteMeta("unversioned_since");
      this.sql.exec("DELETE FROM edgedoc_version_authors");
      this.thin(now);
    });
    this.unversionedSinceAt = null;
    this.authors.clear();
    return { ok: true, value: { id, createdAt: new Date(now).toISOString(), name, reason, authors, bytes } };
  }

  /** Every version, newest first. The retention policy is applied first, so old ones age out even without new versions. */
  list(now: number): VersionInfo[] {
    if (!this.store.exists()) return [];
    this.transaction(() => this.thin(now));
    return this.sql.exec<VersionRow>("SELECT * FROM edgedoc_versions ORDER BY id DESC").toArray().map(toInfo);
  }

  get(id: number): VersionInfo | null {
    if (!this.store.exists()) return null;
    const row = this.sql.exec<VersionRow>("SELECT * FROM edgedoc_versions WHERE id = ?", id).toArray()[0];
    return row ? toInfo(row) : null;
  }

  /** A version's state, or null when there is no such version. */
  load(id: number): VersionState | null {
    if (!this.store.exists()) return null;
    const row = this.sql.exec<{ items: number }>("SELECT items FROM edgedoc_versions WHERE id = ?", id).toArray()[0];
    if (!row) return null;
    const parts = this.sql
      .exec<{ data: ArrayBuffer }>("SELECT data FROM edgedoc_version_parts WHERE id = ? ORDER BY part", id)
      .toArray()
      .map((part) => new Uint8Array(part.data));
    return { state: joinChunks(parts), items: row.items };
  }

  /**
   * A version's size, or null when there is no such version: its row, and the lengths of its
   * parts, which SQLite reads from each row's header without the blob itself. A version has a
   * stored text when it was taken since texts were kept; before, its text is in its state only.
   */
  size(id: number): VersionSize | null {
    if (!this.store.exists()) return null;
    const row = this.sql
      .exec<{ items: number; state_bytes: number; text_parts: number; text_bytes: number }>(
        `SELECT items,
           (SELECT COALESCE(SUM(length(data)), 0) FROM edgedoc_version_parts WHERE id = v.id) AS state_bytes,
           (SELECT COUNT(*) FROM edgedoc_version_text WHERE id = v.id) AS text_parts,
           (SELECT COALESCE(SUM(length(data)), 0) FROM edgedoc_version_text WHERE id = v.id) AS text_bytes
         FROM edgedoc_versions v WHERE id = ?`,
        id,
      )
      .toArray()[0];
    if (!row) return null;
    return { stateBytes: row.state_bytes, items: row.items, textBytes: row.text_parts > 0 ? row.text_bytes : null };
  }

  /** A version's stored text, or null when it has none (see {@link size}). */
  text(id: number): string | null {
    if (!this.store.exists()) return null;
    const parts = this.sql
      .exec<{ data: ArrayBuffer }>("SELECT data FROM edgedoc_version_text WHERE id = ? ORDER BY part", id)
      .toArray()
      .map((part) => new Uint8Array(part.data));
    // Keeps a leading U+FEFF: it is the text's own character, not a byte order mark.
    return parts.length === 0 ? null : new TextDecoder("utf-8", { fatal: false, ignoreBOM: true }).decode(joinChunks(parts));
  }

  /** Deletes a version; returns false when there was none. */
  delete(id: number): boolean {
    if (this.get(id) === null) return false;
    this.transaction(() => this.remove([id]));
    return true;
  }

  /** Bytes and count of the versions kept. */
  statistics(): { historyBytes: number; versions: number } {
    if (!this.store.exists()) return { historyBytes: 0, versions: 0 };
    const row = this.sql.exec<{ bytes: number | null; count: number }>("SELECT SUM(bytes) AS bytes, COUNT(*) AS count FROM edgedoc_versions").one();
    return { historyBytes: row.bytes ?? 0, versions: row.count };
  }

  private thin(now: number): void {
    const versions = this.sql
      .exec<{ id: number; created_at: number; name: string | null; bytes: number }>("SELECT id, created_at, name, bytes FROM edgedoc_versions")
      .toArray()
      .map((row) => ({ id: row.id, createdAt: row.created_at, named: row.name !== null, bytes: row.bytes }));
    const drop = versionsToDrop(versions, now);
    if (drop.length > 0) this.remove(drop);
  }

  private remove(ids: readonly number[]): void {
    for (const id of ids) {
      this.sql.exec("DELETE FROM edgedoc_versions WHERE id = ?", id);
      this.sql.exec("DELETE FROM edgedoc_version_parts WHERE id = ?", id);
      this.sql.exec("DELETE FROM edgedoc_version_text WHERE id = ?", id);
    }
  }
}

function toInfo(row: VersionRow): VersionInfo {
  return {
    id: row.id,
    createdAt: new Date(row.created_at).toISOString(),
    name: row.name,
    reason: row.reason as VersionReason,
    authors: JSON.parse(row.authors) as string[],
    bytes: row.bytes,
  };
}

const UNPRINTABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

/** `text` with control and format characters as spaces, runs of spaces collapsed, trimmed: names are shown as one line. */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, " ").replace(/\s+/g, " ").trim();
}

/** An author name as stored: printable, at most {@link MAX_AUTHOR_NAME_CHARS} code points (never half a character). */
function cleanAuthor(name: string): string {
  return Array.from(printable(name)).slice(0, MAX_AUTHOR_NAME_CHARS).join("").trim();
}
