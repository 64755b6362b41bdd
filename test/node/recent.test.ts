/**
 * The home page's list of this browser's documents (client/recent.ts) and the document view's
 * record of a visit (client/visit.ts), over an in-memory Storage and a real Y.Doc.
 */
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { forgetRecent, listRecent, MAX_RECENT, recentEntry } from "../../client/recent.ts";
import { recordVisit } from "../../client/visit.ts";
import { MAX_TITLE_CHARS, SETTINGS_MAP, TITLE_KEY } from "../../worker/title.ts";

/** localStorage's interface over a Map, counting writes. */
class MemoryStorage implements Storage {
  private readonly items = new Map<string, string>();
  writes = 0;
  get length(): number {
    return this.items.size;
  }
  key(index: number): string | null {
    return [...this.items.keys()][index] ?? null;
  }
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.writes += 1;
    this.items.set(key, String(value));
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
  clear(): void {
    this.items.clear();
  }
}

const setTitle = (doc: Y.Doc, title: string) => doc.getMap(SETTINGS_MAP).set(TITLE_KEY, title);

describe("the list of this browser's documents", () => {
  it("records a visit, and keeps the title as the document's changes, cleaned and bounded", () => {
    const storage = new MemoryStorage();
    const doc = new Y.Doc();
    recordVisit(storage, "plan", null, doc);
    expect(recentEntry(storage, "plan")).toMatchObject({ name: "plan", token: null, title: "Untitled", unconfirmed: false });

    setTitle(doc, "  Release\nplan\u202e ");
    expect(recentEntry(storage, "plan")!.title).toBe("Release plan");
    setTitle(doc, "x".repeat(10_000));
    expect(recentEntry(storage, "plan")!.title).toHaveLength(MAX_TITLE_CHARS);
    doc.getMap(SETTINGS_MAP).delete(TITLE_KEY);
    expect(recentEntry(storage, "plan")!.title).toBe("Untitled");

    // The next visit starts from the title last seen, before the document has loaded.
    setTitle(doc, "Release plan");
    recordVisit(storage, "plan", null, new Y.Doc());
    expect(recentEntry(storage, "plan")!.title).toBe("Release plan");
  });

  it("keeps a link's token across visits without one, and takes a newer token", () => {
    const storage = new MemoryStorage();
    recordVisit(storage, "shared", "token-1", new Y.Doc());
    recordVisit(storage, "shared", null, new Y.Doc());
    expect(recentEntry(storage, "shared")!.token).toBe("token-1");
    recordVisit(storage, "shared", "token-2", new Y.Doc());
    expect(recentEntry(storage, "shared")!.token).toBe("token-2");
  });

  it("writes the unconfirmed flag only when it changes, and keeps it for the next visit", () => {
    const storage = new MemoryStorage();
    const noteUnconfirmed = recordVisit(storage, "notes", null, new Y.Doc());
    const writes = storage.writes;
    for (let i = 0; i < 5; i++) noteUnconfirmed(true);
    expect(storage.writes).toBe(writes + 1);
    expect(recentEntry(storage, "notes")!.unconfirmed).toBe(true);
    recordVisit(storage, "notes", null, new Y.Doc());
    expect(recentEntry(storage, "notes")!.unconfirmed).toBe(true);
  });

  it("lists newest first, skips malformed entries, and forgets one on request", () => {
    const storage = new MemoryStorage();
    const entry = (title: string, openedAt: number) => JSON.stringify({ title, openedAt, token: null, unconfirmed: false });
    storage.setItem("edgedoc:recent:old", entry("Old", 1_000));
    storage.setItem("edgedoc:recent:new", entry("New", 3_000));
    storage.setItem("edgedoc:recent:middle", entry("Middle", 2_000));
    storage.setItem("edgedoc:recent:not json", entry("Bad name", 4_000));
    storage.setItem("edgedoc:recent:broken", "{");
    storage.setItem("edgedoc:recent:untimed", JSON.stringify({ title: "No time" }));
    storage.setItem("edgedoc:identity", "{}");
    expect(listRecent(storage).map((item) => item.name)).toEqual(["new", "middle", "old"]);
    forgetRecent(storage, "middle");
    expect(listRecent(storage).map((item) => item.name)).toEqual(["new", "old"]);
  });

  it(`keeps the ${MAX_RECENT} opened last`, () => {
    const storage = new MemoryStorage();
    for (let i = 0; i <= MAX_RECENT; i++) {
      storage.setItem(`edgedoc:recent:doc-${i}`, JSON.stringify({ title: `Doc ${i}`, openedAt: i, token: null, unconfirmed: false }));
    }
    recordVisit(storage, "opened-now", null, new Y.Doc());
    const names = listRecent(storage).map((item) => item.name);
    expect(names).toHaveLength(MAX_RECENT);
    expect(names[0]).toBe("opened-now");
    expect(names).not.toContain("doc-0");
    expect(names).not.toContain("doc-1");
  });
});
