/**
 * Durable storage of one document in its Durable Object's SQLite database.
 *
 * Layout (format version {@link STORAGE_FORMAT_VERSION}):
 * - `edgedoc_meta(key, value)`: `format_version`; `snapshot_seq`, the last log sequence
 *   number folded into the snapshot; `snapshot_updated_at`, when the newest update folded into
 *   it arrived; `last_active_at`, when the last socket left (for idle expiry).
 * - `edgedoc_snapshot(part, data)`: the merged document as one Yjs V2 update, split into
 *   row-sized parts.
 * - `edgedoc_log(seq, part, data, at)`: the updates accepted since the snapshot, one entry per
 *   burst written together (the Yjs V1 merge of what the room's document emitted), each split
 *   into row-sized parts, with when its newest update arrived.
 * - `edgedoc_presence_claims(client_id, owner, at)`: which token subject claimed each awareness
 *   client ID, so a claim outlives the object: the claims the room keeps in memory, at most
 *   {@link MAX_PRESENCE_CLAIMS} rows, since it reports every claim it forgets. Added
 *   within format 1: code that predates it ignores the table, and opening a database adds it.
 * - Version history (format 2): `edgedoc_versions`, `edgedoc_version_parts`,
 *   `edgedoc_version_authors` and `edgedoc_version_text`, described and used by
 *   `worker/history.ts`. `edgedoc_version_text` was added within format 2: code that predates
 *   it ignores the table (and the bytes it adds to a version), and opening a database adds it.
 *
 * Format 1 (before version history) is migrated when opened: the history tables are added and
 * a document with content counts as changed since it was last written, so its first version
 * is taken as soon as the room next runs its alarm.
 *
 * Accepted updates are held in memory for a moment and written together as one log row (their
 * Yjs merge): once {@link HELD_UPDATES_MAX_MS} old or {@link HELD_UPDATES_MAX_BYTES} large, by
 * the alarm {@link HELD_UPDATES_ALARM_MS} after the first at the latest, and always before the
 * room tells anyone anything but the edit itself (docs/storage.md: an edit is on disk before
 * its writer is told it is saved).
 *
 * The document is the snapshot followed by the log in `seq` order. Compaction replaces the
 * snapshot and deletes the log rows it covers in one SQLite transaction, so a crash at any
 * point leaves either the old or the new layout, both loadable.
 *
 * The tables are created by the first write, not on open: reading, visiting or probing a name
 * that was never written leaves nothing behind.
 */
import { mergeUpdates } from "yjs";
import { joinChunks, splitIntoChunks } from "./chunks";
import type { StorageStats } from "./documents";
import type { SqlPort, SqlValue } from "./room/ports";
import {
  HELD_UPDATES_ALARM_MS,
  HELD_UPDATES_MAX_BYTES,
  HELD_UPDATES_MAX_MS,
  MAX_CLAIMS_PER_SOCKET,
  MAX_PRESENCE_CLAIMS,
  SQLITE_CHUNK_BYTES,
} from "./limits";

/** Bump when the layout changes, and teach {@link DocumentStore.migrate} to convert older ones. */
export const STORAGE_FORMAT_VERSION = 2;

/** A step of compaction, reported to {@link DocumentStore.onCompactionStep} (tests inject faults there). */
export type CompactionStep = "snapshot-written" | "log-trimmed";

export interface StoredDocument {
  /** The snapshot as a Yjs V2 update, or null before the first compaction. */
  snapshot: Uint8Array | null;
  /** Log updates (Yjs V1) in the order they were accepted. */
  updates: Uint8Array[];
}

export class DocumentStore {
  /**
   * Called inside the compaction transaction after each step. A throw rolls the whole
   * compaction back; tests use this to prove a crash mid-compaction loses nothing.
   */
  onCompactionStep: ((step: CompactionStep) => void) | null = null;
  private stats: StorageStats;
  private lastSeq: number;
  /** When the newest stored update arrived (ms since the epoch), or null for an empty document. */
  lastUpdateAt: number | null;
  private lastActiveAt: number | null = null;
  /** Whether edgedoc's tables exist, i.e. the document was ever written. */
  private created: boolean;
  /** Accepted updates not yet written, oldest first (see {@link hold}). */
  private held: Uint8Array[] = [];
  private heldBytes = 0;
  /** When the oldest held update arrived, or null when none is held. */
  private heldSince: number | null = null;

  constructor(
    private readonly sql: SqlPort,
    private readonly transaction: <T>(body: () => T) => T,
  ) {
    this.lastSeq = 0;
    this.lastUpdateAt = null;
    this.stats = emptyStats();
    this.created = this.tableExists("edgedoc_meta");
    if (!this.created) return;
    this.migrate();
    // Tables added within a format: a database written before them gets them when opened.
    this.sql.exec(CLAIMS_TABLE);
    this.sql.exec(VERSION_TEXT_TABLE);
    this.stats = this.measure();
    const log = this.one<{ seq: number | null; at: number | null }>("SELECT MAX(seq) AS seq, MAX(at) AS at FROM edgedoc_log");
    this.lastSeq = log.seq ?? this.meta("snapshot_seq") ?? 0;
    this.lastUpdateAt = log.at ?? this.meta("snapshot_updated_at");
    this.lastActiveAt = this.meta("last_active_at");
  }

  /** Whether the document was ever written (its tables exist). */
  exists(): boolean {
    return this.created;
  }

  /** Whether anything is in the log (compacting an empty log would only rewrite the snapshot). */
  hasLog(): boolean {
    return this.stats.logUpdates > 0 || this.held.length > 0;
  }

  /** Reads the whole document. */
  load(): StoredDocument {
    if (!this.created) return { snapshot: null, updates: [] };
    const snapshotRows = this.sql.exec<{ data: ArrayBuffer }>("SELECT data FROM edgedoc_snapshot ORDER BY part").toArray();
    const snapshot = snapshotRows.length > 0 ? joinChunks(snapshotRows.map((row) => new Uint8Array(row.data))) : null;
    const updates: Uint8Array[] = [];
    let parts: Uint8Array[] = [];
    let partsSeq = -1;
    for (const row of this.sql.exec<{ seq: number; data: ArrayBuffer }>("SELECT seq, data FROM edgedoc_log ORDER BY seq, part")) {
      if (row.seq !== partsSeq && parts.length > 0) {
        updates.push(joinChunks(parts));
        parts = [];
      }
      partsSeq = row.seq;
      parts.push(new Uint8Array(row.data));
    }
    if (parts.length > 0) updates.push(joinChunks(parts));
    return { snapshot, updates };
  }

  /**
   * Keeps one accepted update to be written with the next few (see {@link writeHeld}): one
   * insert per burst rather than per keystroke. The caller writes them before it tells anyone
   * anything but the edit itself, and by {@link heldWriteDue} at the latest. The document's
   * first update is written at once (it creates the tables; throws on a storage fault).
   */
  hold(update: Uint8Array, at: number): void {
    // The first update creates the tables, which the rest of the room's bookkeeping needs at once
    // (and the document exists only once it is written).
    if (!this.created) {
      this.append(update, at);
      this.lastUpdateAt = at;
      return;
    }
    this.lastUpdateAt = at;
    this.held.push(update);
    this.heldBytes += update.length;
    this.heldSince ??= at;
  }

  /** Whether updates are held that are not yet written. */
  holdsUpdates(): boolean {
    return this.held.length > 0;
  }

  /** Bytes held, not yet written (written once {@link HELD_UPDATES_MAX_BYTES} or more). */
  heldByteCount(): number {
    return this.heldBytes;
  }

  /** The updates held, not yet written, oldest first: a reload of the document brings them back. */
  heldUpdates(): readonly Uint8Array[] {
    return this.held;
  }

  /** When the held updates must be written at the latest, or null when none are held. */
  heldWriteDue(): number | null {
    return this.heldSince === null ? null : this.heldSince + HELD_UPDATES_ALARM_MS;
  }

  /** Whether the held updates are due to be written now: old enough, or large enough. */
  heldDue(now: number): boolean {
    return this.heldSince !== null && (now >= this.heldSince + HELD_UPDATES_MAX_MS || this.heldBytes >= HELD_UPDATES_MAX_BYTES);
  }

  /**
   * Writes the held updates as one log row, their Yjs merge (the same document as applying them
   * in order). Throws on a storage fault; the updates are then dropped, not kept to retry: the
   * caller goes back to what is stored.
   */
  writeHeld(): void {
    if (this.held.length === 0) return;
    const held = this.held;
    this.discardHeld();
    // Holding an update set lastUpdateAt.
    this.append(held.length === 1 ? held[0]! : mergeUpdates(held), this.lastUpdateAt!);
  }

  /** Forgets the held updates (after a failed write, when the room goes back to what is stored). */
  discardHeld(): void {
    this.held = [];
    this.heldBytes = 0;
    this.heldSince = null;
  }

  /** Appends one update to the log; one statement, atomic by itself, unless it needs several rows. */
  private append(update: Uint8Array, at: number): void {
    const seq = this.lastSeq + 1;
    const chunks = splitIntoChunks(update, SQLITE_CHUNK_BYTES);
    const insert = () =>
      chunks.forEach((chunk, part) => this.sql.exec("INSERT INTO edgedoc_log (seq, part, data, at) VALUES (?, ?, ?, ?)", seq, part, chunk, at));
    if (this.created && chunks.length === 1) insert();
    else this.write(insert);
    this.lastSeq = seq;
    this.stats.logBytes += update.length;
    this.stats.storedBytes += update.length;
    this.stats.logRows += chunks.length;
    this.stats.logUpdates += 1;
  }

  /** Replaces snapshot and log with `snapshot` (a V2 update of the whole document), atomically. */
  replaceWithSnapshot(snapshot: Uint8Array): void {
    const coveredSeq = this.lastSeq;
    this.write(() => {
      this.sql.exec("DELETE FROM edgedoc_snapshot");
      splitIntoChunks(snapshot, SQLITE_CHUNK_BYTES).forEach((chunk, part) =>
        this.sql.exec("INSERT INTO edgedoc_snapshot (part, data) VALUES (?, ?)", part, chunk),
      );
      this.onCompactionStep?.("snapshot-written");
      this.sql.exec("DELETE FROM edgedoc_log WHERE seq <= ?", coveredSeq);
      this.onCompactionStep?.("log-trimmed");
      this.setMeta("snapshot_seq", coveredSeq);
      if (this.lastUpdateAt !== null) this.setMeta("snapshot_updated_at", this.lastUpdateAt);
    });
    // The snapshot is the document in memory, held updates included: they need no row of their own.
    this.discardHeld();
    this.stats = this.measure();
  }

  /** Presence claims kept by {@link saveClaims}, oldest first. */
  loadClaims(): [clientId: number, owner: string][] {
    if (!this.created && !this.tableExists("edgedoc_presence_claims")) return [];
    return this.sql
      .exec<{ client_id: number; owner: string }>("SELECT client_id, owner FROM edgedoc_presence_claims ORDER BY at, client_id")
      .toArray()
      .map((row) => [row.client_id, row.owner]);
  }

  /**
   * Applies, in order and in one transaction, the claim changes one awareness update (or a
   * wake) made: a client ID with its owner is claimed, with `null` forgotten. The presence
   * registry decides which claims to forget (its caps are per owner, not by age alone), so the
   * table holds what it holds and loads back the same. A handful of rows per update: a socket
   * claims at most {@link MAX_CLAIMS_PER_SOCKET}. A document never written keeps them too, in
   * that table alone, while sockets are here (a wake would otherwise forget them, and an echo of
   * a departed client's state claim its ID for another owner): {@link dropUnwrittenClaims}
   * removes it when the last one leaves, so visiting a name leaves nothing behind.
   */
  saveClaims(changes: readonly [clientId: number, owner: string | null][], at: number): void {
    this.transaction(() => {
      if (!this.created) this.sql.exec(CLAIMS_TABLE);
      for (const [clientId, owner] of changes) {
        if (owner === null) this.sql.exec("DELETE FROM edgedoc_presence_claims WHERE client_id = ?", clientId);
        else this.sql.exec("INSERT OR REPLACE INTO edgedoc_presence_claims (client_id, owner, at) VALUES (?, ?, ?)", clientId, owner, at);
      }
    });
  }

  /** The last socket left a document never written: its presence claims go (see {@link saveClaims}). */
  dropUnwrittenClaims(): void {
    if (!this.created) this.sql.exec("DROP TABLE IF EXISTS edgedoc_presence_claims");
  }

  /** Records when the last socket left, for idle expiry; a document never written has nothing to expire. */
  markActive(at: number): void {
    if (!this.created) return;
    this.setMeta("last_active_at", at);
    this.lastActiveAt = at;
  }

  /** When the document last changed or was last left by a socket, whichever is later; null if never. */
  lastActivity(): number | null {
    const times = [this.lastUpdateAt, this.lastActiveAt].filter((time): time is number => time !== null);
    return times.length > 0 ? Math.max(...times) : null;
  }

  /** Current figures, kept in memory so that reading them (on every update) costs no query. */
  statistics(): Readonly<StorageStats> {
    return this.stats;
  }

  private tableExists(name: string): boolean {
    return this.sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray().length > 0;
  }

  /**
   * Brings an older layout up to {@link STORAGE_FORMAT_VERSION} in one transaction, and refuses
   * a newer one: never guessing keeps the data intact for newer code.
   */
  private migrate(): void {
    const stored = this.meta("format_version") ?? 1;
    if (stored > STORAGE_FORMAT_VERSION) {
      throw new Error(`storage format ${stored} is newer than this code understands (${STORAGE_FORMAT_VERSION})`);
    }
    if (stored === STORAGE_FORMAT_VERSION) return;
    this.transaction(() => {
      // 1 -> 2: version history. Whatever the document holds has no version yet.
      this.sql.exec(HISTORY_TABLES);
      const changedAt = this.one<{ at: number | null }>("SELECT MAX(at) AS at FROM edgedoc_log").at ?? this.meta("snapshot_updated_at");
      if (changedAt !== null) this.setMeta("unversioned_since", changedAt);
      this.setMeta("format_version", STORAGE_FORMAT_VERSION);
    });
  }

  /**
   * Runs `body` in one transaction, creating the tables first if this is the first write. A
   * failed transaction rolls the tables back too, so whether they exist is read again then.
   */
  private write(body: () => void): void {
    try {
      this.transaction(() => {
        this.createTables();
        body();
      });
    } catch (error) {
      this.created = this.tableExists("edgedoc_meta");
      throw error;
    }
  }

  private createTables(): void {
    if (this.created) return;
    this.sql.exec(`
      CREATE TABLE IF NOT EXISTS edgedoc_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS edgedoc_snapshot (part INTEGER PRIMARY KEY, data BLOB NOT NULL);
      CREATE TABLE IF NOT EXISTS edgedoc_log (
        seq INTEGER NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (seq, part)
      );
      ${CLAIMS_TABLE}
      ${HISTORY_TABLES}
    `);
    this.setMeta("format_version", STORAGE_FORMAT_VERSION);
    this.created = true;
  }

  /** A number kept in `edgedoc_meta`, or null; the history keeps its own keys there too. */
  meta(key: string): number | null {
    if (!this.created) return null;
    return this.sql.exec<{ value: number }>("SELECT value FROM edgedoc_meta WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  setMeta(key: string, value: number): void {
    this.sql.exec("INSERT OR REPLACE INTO edgedoc_meta (key, value) VALUES (?, ?)", key, value);
  }

  deleteMeta(key: string): void {
    this.sql.exec("DELETE FROM edgedoc_meta WHERE key = ?", key);
  }

  private measure(): StorageStats {
    const snapshot = this.one<{ bytes: number | null; chunks: number }>(
      "SELECT SUM(LENGTH(data)) AS bytes, COUNT(*) AS chunks FROM edgedoc_snapshot",
    );
    const log = this.one<{ bytes: number | null; rows: number; updates: number }>(
      "SELECT SUM(LENGTH(data)) AS bytes, COUNT(*) AS rows, COUNT(DISTINCT seq) AS updates FROM edgedoc_log",
    );
    const snapshotBytes = snapshot.bytes ?? 0;
    const logBytes = log.bytes ?? 0;
    return {
      storedBytes: snapshotBytes + logBytes,
      snapshotBytes,
      snapshotChunks: snapshot.chunks,
      logBytes,
      logRows: log.rows,
      logUpdates: log.updates,
    };
  }

  private one<Row extends Record<string, SqlValue>>(query: string): Row {
    return this.sql.exec<Row>(query).one();
  }
}

const CLAIMS_TABLE = "CREATE TABLE IF NOT EXISTS edgedoc_presence_claims (client_id INTEGER PRIMARY KEY, owner TEXT NOT NULL, at INTEGER NOT NULL);";

const VERSION_TEXT_TABLE =
  "CREATE TABLE IF NOT EXISTS edgedoc_version_text (id INTEGER NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (id, part));";

const HISTORY_TABLES = `
  CREATE TABLE IF NOT EXISTS edgedoc_versions (
    id INTEGER PRIMARY KEY, created_at INTEGER NOT NULL, name TEXT, reason TEXT NOT NULL,
    authors TEXT NOT NULL, bytes INTEGER NOT NULL, items INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS edgedoc_version_parts (id INTEGER NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (id, part));
  CREATE TABLE IF NOT EXISTS edgedoc_version_authors (name TEXT PRIMARY KEY);
  ${VERSION_TEXT_TABLE}
`;

function emptyStats(): StorageStats {
  return { storedBytes: 0, snapshotBytes: 0, snapshotChunks: 0, logBytes: 0, logRows: 0, logUpdates: 0 };
}

/**
 * Drops every table the room made, inside the caller's transaction (unlike `deleteAll()`, which
 * commits at once by itself). The runtime's own tables (`_cf_*`) are not the room's to touch,
 * nor SQLite's (`sqlite_*`).
 */
export function dropTables(sql: SqlPort): void {
  const tables = sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'").toArray();
  for (const { name } of tables) sql.exec(`DROP TABLE IF EXISTS "${name.replaceAll('"', '""')}"`);
}

