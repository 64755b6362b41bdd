/**
 * The document view's part of the home page's list (client/recent.ts): it records the visit and
 * keeps the entry's title and unconfirmed-edits flag current while the document is open.
 */
import type * as Y from "yjs";
import { documentTitle, SETTINGS_MAP } from "../worker/title";
import { recentEntry, saveRecent, type RecentDocument } from "./recent";

/**
 * Records that this browser opened document `name` now, and from then on keeps `doc`'s title in
 * the entry as it changes. A visit without a token keeps the token an earlier one had, so the
 * list goes on opening what that link granted. Returns what to call when the server's
 * confirmation of this browser's edits changes (client/saved.ts).
 */
export function recordVisit(storage: Storage, name: string, token: string | null, doc: Y.Doc): (unconfirmed: boolean) => void {
  const previous = recentEntry(storage, name);
  let entry: RecentDocument = {
    name,
    token: token ?? previous?.token ?? null,
    // The document is still empty here: its title arrives with its content, from IndexedDB or the server.
    title: previous?.title ?? documentTitle(doc),
    openedAt: Date.now(),
    unconfirmed: previous?.unconfirmed ?? false,
  };
  const save = (change: Partial<RecentDocument>) => {
    entry = { ...entry, ...change };
    saveRecent(storage, entry);
  };
  save({});
  doc.getMap(SETTINGS_MAP).observe(() => {
    const title = documentTitle(doc);
    if (title !== entry.title) save({ title });
  });
  return (unconfirmed) => {
    if (unconfirmed !== entry.unconfirmed) save({ unconfirmed });
  };
}
