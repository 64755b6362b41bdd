/**
 * The documents this browser has opened, for the home page (client/home.ts).
 *
 * They live in localStorage, one key per document (`edgedoc:recent:<name>`), so that tabs of
 * different documents never overwrite each other's entries. Nothing here leaves the browser: the
 * link token an entry keeps is sent only to this server, for that document, when the home page
 * asks when it was last edited and when the entry is opened.
 */
import { isValidDocumentName } from "../worker/names";

export interface RecentDocument {
  name: string;
  /** The link token it was opened with, or null. */
  token: string | null;
  /** Its title when this browser last saw it (client/visit.ts writes it cleaned and bounded). */
  title: string;
  /** When this browser last opened it, in ms since the epoch. */
  openedAt: number;
  /** Whether edits made in this browser were not yet confirmed by the server when it was last open. */
  unconfirmed: boolean;
}

const KEY_PREFIX = "edgedoc:recent:";

/**
 * Most entries kept; opening another drops the one opened longest ago. An entry is at most a
 * few hundred bytes (a token is the longest part), so the list stays far below localStorage's
 * 5 MB per origin.
 */
export const MAX_RECENT = 200;

/** Every entry, newest first. Entries not of the expected shape are skipped. */
export function listRecent(storage: Storage): RecentDocument[] {
  const entries: RecentDocument[] = [];
  for (let i = 0; i < storage.length; i++) {
    const key = storage.key(i);
    if (!key?.startsWith(KEY_PREFIX)) continue;
    const entry = parseEntry(key.slice(KEY_PREFIX.length), storage.getItem(key));
    if (entry) entries.push(entry);
  }
  return entries.sort((a, b) => b.openedAt - a.openedAt);
}

/** Takes `name` off this browser's list; the document itself is not touched. */
export function forgetRecent(storage: Storage, name: string): void {
  storage.removeItem(KEY_PREFIX + name);
}

/** Whether a `storage` event concerns the list (another tab recorded or removed an entry). */
export function isRecentKey(key: string | null): boolean {
  return key === null || key.startsWith(KEY_PREFIX); // null: the whole storage was cleared
}

/** The entry for `name`, or null when it has none. */
export function recentEntry(storage: Storage, name: string): RecentDocument | null {
  return parseEntry(name, storage.getItem(KEY_PREFIX + name));
}

/** Writes `entry`, and drops the entries opened longest ago beyond {@link MAX_RECENT}. */
export function saveRecent(storage: Storage, { name, ...stored }: RecentDocument): void {
  try {
    storage.setItem(KEY_PREFIX + name, JSON.stringify(stored));
  } catch (error) {
    // Storage full or disabled (some private modes): the list is a convenience, the editor goes on.
    console.warn("edgedoc: could not record this document in the list", error);
  }
  for (const { name } of listRecent(storage).slice(MAX_RECENT)) forgetRecent(storage, name);
}

/**
 * An entry as stored, checked: another version of the app, or a person, may have written it.
 * (The title is not cleaned again: the home page must not load worker/title.ts, which brings
 * Yjs, and it shows the title as text only.)
 */
function parseEntry(name: string, json: string | null): RecentDocument | null {
  if (json === null || !isValidDocumentName(name)) return null;
  try {
    const stored = JSON.parse(json) as Partial<RecentDocument> | null;
    if (typeof stored?.openedAt !== "number" || typeof stored.title !== "string") return null;
    return {
      name,
      token: typeof stored.token === "string" && stored.token !== "" ? stored.token : null,
      title: stored.title,
      openedAt: stored.openedAt,
      unconfirmed: stored.unconfirmed === true,
    };
  } catch {
    return null;
  }
}
