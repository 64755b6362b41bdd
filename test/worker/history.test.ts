/**
 * Version history inside workerd: real rooms, real sockets, real SQLite, the alarm driven by
 * the test and the clock moved with `vi.setSystemTime` (the room shares the test's isolate).
 */
import { SELF, env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import type { DocumentInfo, VersionInfo } from "../../worker/documents";
import { DAY_MS, HOUR_MS, SQLITE_CHUNK_BYTES } from "../../worker/limits";
import { TestClient, asBody, roomName, runAlarmWhenSet, waitFor } from "./client";

const api = (path: string, init?: RequestInit) => SELF.fetch(`http://edgedoc.test/api/docs/${path}`, init);
const stub = (room: string) => env.ROOM.get(env.ROOM.idFromName(room));
const versions = async (room: string) => (await (await api(`${room}/versions`)).json()) as VersionInfo[];
const info = async (room: string) => (await (await api(room)).json()) as DocumentInfo;
/** The live text, read by `address` (CF-Connecting-IP: each has a read budget of its own). */
const storedText = async (room: string, address = "192.0.2.1") => (await api(`${room}/text`, { headers: { "CF-Connecting-IP": address } })).text();
const saveNamed = (room: string, name: string) =>
  api(`${room}/versions`, { method: "POST", body: JSON.stringify({ name }), headers: { "Content-Type": "application/json" } });
const restore = async (room: string, id: number) => {
  const response = await api(`${room}/versions/${id}/restore`, { method: "POST" });
  expect(response.status).toBe(200);
  return (await response.json()) as { changed: boolean };
};
const putText = async (room: string, text: string) => expect((await api(`${room}/text`, { method: "PUT", body: text })).status).toBe(200);
/** A version's text, read by `address` (CF-Connecting-IP: each has a read budget of its own). */
const versionText = async (room: string, id: number, address = "192.0.2.1") => {
  const response = await api(`${room}/versions/${id}/text`, { headers: { "CF-Connecting-IP": address } });
  expect(response.status).toBe(200);
  return response.text();
};
/** Runs `query` in the room's SQLite database and returns its rows. */
const sqlRows = <Row extends Record<string, SqlStorageValue>>(room: string, query: string, ...bindings: SqlStorageValue[]) =>
  runInDurableObject(stub(room), (_instance, state) => state.storage.sql.exec<Row>(query, ...bindings).toArray());
/** How many rows of stored text each version has, by id. */
const textParts = async (room: string) =>
  Object.fromEntries(
    (await sqlRows<{ id: number; parts: number }>(room, "SELECT id, COUNT(*) AS parts FROM edgedoc_version_text GROUP BY id")).map((row) => [row.id, row.parts]),
  );
/** Makes a version look taken before texts were stored: without its text rows. */
const forgetText = (room: string, id: number) => sqlRows(room, "DELETE FROM edgedoc_version_text WHERE id = ?", id);

async function waitForStoredText(room: string, text: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while ((await storedText(room)) !== text) {
    if (Date.now() > deadline) throw new Error(`the room never held ${JSON.stringify(text)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe("automatic versions", () => {
  it("are taken when the last editor leaves, crediting who edited, and not again when nothing changed", async () => {
    const room = roomName("session-end");
    const alice = await TestClient.connect(room);
    alice.setPresence({ user: { name: "Alice\u0000 Liddell", color: "#ff0000" } });
    alice.insert(0, "the first session");
    await waitForStoredText(room, "the first session");
    alice.close();
    await runAlarmWhenSet(stub(room), "session end");
    const [first, ...rest] = await versions(room);
    expect(rest).toEqual([]);
    expect(first).toMatchObject({ id: 1, name: null, reason: "session-end", authors: ["Alice Liddell"] });
    expect(await (await api(`${room}/versions/1/text`)).text()).toBe("the first session");

    // A visit without edits makes no version.
    const visitor = await TestClient.connect(room);
    visitor.close();
    await runAlarmWhenSet(stub(room), "second session end");
    expect(await versions(room)).toHaveLength(1);
  });

  it("are taken every interval while editing goes on, and once the session ends", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const room = roomName("interval");
    const writer = await TestClient.connect(room);
    writer.insert(0, "draft one");
    await waitForStoredText(room, "draft one");
    // Ten minutes later the writer is still there (its presence renews), and types on.
    vi.setSystemTime(Date.now() + 10 * 60_000 + 1_000);
    writer.insert(9, ", still typing");
    await waitForStoredText(room, "draft one, still typing");
    await runDurableObjectAlarm(stub(room));
    expect((await versions(room)).map((version) => version.reason)).toEqual(["interval"]);
    expect(await (await api(`${room}/versions/1/text`)).text()).toBe("draft one, still typing");
    // Nothing new: the next interval passes without a version.
    vi.setSystemTime(Date.now() + 11 * 60_000);
    writer.setPresence({ user: { name: "still here" } });
    await waitFor(() => writer.presence().size > 0, "presence echo");
    await runDurableObjectAlarm(stub(room));
    expect(await versions(room)).toHaveLength(1);
    writer.insert(0, "> ");
    await waitForStoredText(room, "> draft one, still typing");
    writer.close();
    await runAlarmWhenSet(stub(room), "session end");
    expect((await versions(room)).map((version) => version.reason)).toEqual(["session-end", "interval"]);
  });

  it("are taken for documents written only through the HTTP API", async () => {
    const room = roomName("api-only");
    await putText(room, "written by a backend");
    await runAlarmWhenSet(stub(room), "idle work after the API write");
    expect(await versions(room)).toMatchObject([{ reason: "session-end", authors: [] }]);
    expect(await info(room)).toMatchObject({ versions: 1 });
    expect((await info(room)).historyBytes).toBeGreaterThan(0);
    // Deleting the document deletes its history.
    expect((await api(room, { method: "DELETE" })).status).toBe(204);
    expect(await versions(room)).toEqual([]);
    expect(await info(room)).toMatchObject({ versions: 0, historyBytes: 0 });
  });
});

describe("named versions", () => {
  it("are saved, listed newest first, read back in every form, and deleted; automatic ones are not deleted by hand", async () => {
    const room = roomName("named");
    await putText(room, "version one");
    const saved = await saveNamed(room, "  Before the\nrewrite  ");
    expect(saved.status).toBe(201);
    const version = (await saved.json()) as VersionInfo;
    expect(version).toMatchObject({ id: 1, name: "Before the rewrite", reason: "named" });
    await putText(room, "version two");
    await runAlarmWhenSet(stub(room), "idle work");
    const list = await versions(room);
    expect(list.map((entry) => [entry.id, entry.reason])).toEqual([
      [2, "session-end"],
      [1, "named"],
    ]);
    expect(await (await api(`${room}/versions/1`)).json()).toEqual(version);
    expect(await (await api(`${room}/versions/1/text`)).text()).toBe("version one");
    const update = new Uint8Array(await (await api(`${room}/versions/1/update`)).arrayBuffer());
    const copy = new Y.Doc();
    Y.applyUpdate(copy, update);
    expect(copy.getText("codemirror").toString()).toBe("version one");

    expect((await api(`${room}/versions/2`, { method: "DELETE" })).status).toBe(409);
    expect((await api(`${room}/versions/1`, { method: "DELETE" })).status).toBe(204);
    expect((await api(`${room}/versions/1`)).status).toBe(404);
    expect((await versions(room)).map((entry) => entry.id)).toEqual([2]);
    // Ids keep increasing after a delete.
    expect(((await (await saveNamed(room, "again")).json()) as VersionInfo).id).toBe(3);
  });

  it("refuses bad names, unknown versions and documents that were never written", async () => {
    const room = roomName("named-refusals");
    expect((await saveNamed(room, "nothing here")).status).toBe(404);
    await putText(room, "content");
    expect((await saveNamed(room, "")).status).toBe(400);
    expect((await saveNamed(room, "x".repeat(101))).status).toBe(400);
    expect((await api(`${room}/versions`, { method: "POST", body: "not json", headers: { "Content-Type": "application/json" } })).status).toBe(400);
    for (const path of ["versions/7", "versions/0/text", "versions/abc/update", "versions/1.5"]) {
      expect((await api(`${room}/${path}`)).status, path).toBe(404);
    }
    expect((await api(`${room}/versions/9/restore`, { method: "POST" })).status).toBe(404);
    expect(await versions(room)).toEqual([]);
  });
});

describe("retention", () => {
  it("keeps every version of the last day, one per hour for a week, one per day before that, and named ones always", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const room = roomName("retention");
    // In the future, so the runtime never fires an alarm set at a simulated time before the test runs it.
    const start = Date.UTC(2027, 0, 5, 0, 30);
    // Three sessions a day (00:30, 08:30, 16:30) for two weeks, and a named version on the first day.
    const sessions = 42;
    for (let session = 0; session < sessions; session++) {
      vi.setSystemTime(start + session * 8 * HOUR_MS);
      await putText(room, `session ${session}`);
      if (session === 1) expect((await saveNamed(room, "keep me")).status).toBe(201);
      await runAlarmWhenSet(stub(room), `session ${session}`);
    }
    const now = Date.now();
    const kept = await versions(room);
    expect(kept.filter((version) => version.name === "keep me")).toHaveLength(1);
    const ages = kept.filter((version) => version.name === null).map((version) => now - Date.parse(version.createdAt));
    // The last day: all three sessions. Then a week of hourly buckets, each holding one session: all 18.
    expect(ages.filter((age) => age < DAY_MS)).toHaveLength(3);
    expect(ages.filter((age) => age >= DAY_MS && age < 7 * DAY_MS)).toHaveLength(18);
    // Older: the newest session of each calendar day.
    const olderSessions = Array.from({ length: sessions }, (_, session) => start + session * 8 * HOUR_MS).filter((at) => now - at >= 7 * DAY_MS);
    const olderDays = new Set(olderSessions.map((at) => Math.floor(at / DAY_MS)));
    expect(ages.filter((age) => age >= 7 * DAY_MS)).toHaveLength(olderDays.size);
    expect(olderDays.size).toBeLessThan(olderSessions.length);
  });
});

describe("restore", () => {
  /** Waits until every client holds the same text as the room, and returns it. */
  async function converged(room: string, clients: TestClient[]): Promise<string> {
    let stored = "";
    const deadline = Date.now() + 5_000;
    for (;;) {
      stored = await storedText(room);
      if (clients.every((client) => client.text === stored)) return stored;
      if (Date.now() > deadline) throw new Error(`clients never converged on ${JSON.stringify(stored)}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  it("is a live edit: two editors and a third typing during it converge on the version, with the typing kept and the language back", async () => {
    const room = roomName("restore-live");
    const [alice, bob, carol] = await TestClient.connectMany(room, 3);
    alice.insert(0, "The quick brown fox jumps over the lazy dog.");
    alice.doc.getMap("settings").set("language", "markdown");
    await converged(room, [alice, bob, carol]);
    const original = (await (await saveNamed(room, "original")).json()) as VersionInfo;

    alice.doc.getText("codemirror").delete(4, "quick brown".length);
    alice.insert(4, "slow red");
    bob.insert(bob.text.length, " THE END");
    bob.doc.getMap("settings").set("language", "javascript");
    expect(await converged(room, [alice, bob, carol])).toBe("The slow red fox jumps over the lazy dog. THE END");
    await waitFor(() => carol.doc.getMap("settings").get("language") === "javascript", "the language change");

    // Carol's cursor sits before "lazy", text nobody changed. She types there while the restore
    // is on its way: her keystrokes and the restore cross, neither has seen the other (her
    // keystrokes go out once the restore is done, made on a copy that never saw it).
    const carolText = carol.doc.getText("codemirror");
    const cursor = Y.createRelativePositionFromTypeIndex(carolText, carol.text.indexOf("lazy"));
    const typing = new Y.Doc();
    Y.applyUpdate(typing, Y.encodeStateAsUpdate(carol.doc));
    for (let i = 0; i < 10; i++) {
      typing.getText("codemirror").insert(Y.createAbsolutePositionFromRelativePosition(cursor, typing)!.index, "~");
    }
    const beforeRestore = Y.encodeStateVector(carol.doc);
    expect(await restore(room, original.id)).toEqual({ changed: true });
    Y.applyUpdate(carol.doc, Y.encodeStateAsUpdate(typing, beforeRestore));

    const final = await converged(room, [alice, bob, carol]);
    expect(final).toBe(`The quick brown fox jumps over the ${"~".repeat(10)}lazy dog.`);
    for (const client of [alice, bob, carol]) {
      await waitFor(() => client.doc.getMap("settings").get("language") === "markdown", "the language to be restored");
    }
    // The cursor kept its place in the unchanged text: right before "lazy", after her keystrokes.
    expect(Y.createAbsolutePositionFromRelativePosition(cursor, carol.doc)!.index).toBe(final.indexOf("lazy"));
  });

  it("can be undone by restoring the before-restore version it took; restoring the current state changes nothing", async () => {
    const room = roomName("restore-undo");
    await putText(room, "first text");
    const first = (await (await saveNamed(room, "first")).json()) as VersionInfo;
    await putText(room, "second text, longer");
    expect(await restore(room, first.id)).toEqual({ changed: true });
    expect(await storedText(room)).toBe("first text");
    const [beforeRestore] = await versions(room);
    expect(beforeRestore).toMatchObject({ reason: "before-restore", name: null });
    expect(await (await api(`${room}/versions/${beforeRestore!.id}/text`)).text()).toBe("second text, longer");

    expect(await restore(room, beforeRestore!.id)).toEqual({ changed: true });
    expect(await storedText(room)).toBe("second text, longer");
    // Already that state: no edit, and no before-restore version for nothing.
    const count = (await versions(room)).length;
    expect(await restore(room, beforeRestore!.id)).toEqual({ changed: false });
    expect(await versions(room)).toHaveLength(count);
  });

  it("survives an eviction: the restored text is what the room loads from storage", async () => {
    const room = roomName("restore-durable");
    await putText(room, "kept");
    const kept = (await (await saveNamed(room, "kept")).json()) as VersionInfo;
    await putText(room, "replaced");
    await restore(room, kept.id);
    await evictDurableObject(stub(room));
    expect(await storedText(room)).toBe("kept");
  });
});

describe("version text", () => {
  it("is read from storage as it was when taken: after the text changed, after an eviction, without loading the version", async () => {
    const room = roomName("version-text");
    const first = "naïve café: 日本語, 🎉\nand a second line";
    await putText(room, first);
    const saved = (await (await saveNamed(room, "first")).json()) as VersionInfo;
    await putText(room, "replaced");
    expect(await storedText(room)).toBe("replaced");
    expect(await versionText(room, saved.id)).toBe(first);
    expect(await textParts(room)).toEqual({ [saved.id]: 1 });
    // `bytes` is what the version stores: its state and its text as UTF-8.
    const [{ state }] = (await sqlRows<{ state: number }>(room, "SELECT SUM(LENGTH(data)) AS state FROM edgedoc_version_parts WHERE id = ?", saved.id)) as [
      { state: number },
    ];
    expect(saved.bytes).toBe(state + new TextEncoder().encode(first).length);
    expect((await info(room)).historyBytes).toBe(saved.bytes);

    await evictDurableObject(stub(room));
    expect(await versionText(room, saved.id)).toBe(first);
    // Without its state the version could not be loaded: the text is read from its own rows.
    await sqlRows(room, "DELETE FROM edgedoc_version_parts WHERE id = ?", saved.id);
    expect(await versionText(room, saved.id)).toBe(first);
  });

  it("is stored for every kind of version, even an empty text, and its rows go with the version: deleted by hand or by retention", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const room = roomName("version-text-removed");
    // In the future, so the runtime never fires an alarm set at a simulated time before the test runs it.
    const start = Date.UTC(2027, 1, 1, 12);
    vi.setSystemTime(start);
    await putText(room, "aging");
    await runAlarmWhenSet(stub(room), "the first session's end");
    await putText(room, "");
    const named = (await (await saveNamed(room, "empty")).json()) as VersionInfo;
    expect((await versions(room)).map((version) => [version.id, version.reason])).toEqual([
      [2, "named"],
      [1, "session-end"],
    ]);
    expect(await textParts(room)).toEqual({ 1: 1, 2: 1 });
    expect(await versionText(room, named.id)).toBe("");

    expect((await api(`${room}/versions/${named.id}`, { method: "DELETE" })).status).toBe(204);
    expect(await textParts(room)).toEqual({ 1: 1 });

    // 91 days later the next version is taken, and retention drops the first, too old, with its text.
    vi.setSystemTime(start + 91 * DAY_MS);
    await putText(room, "fresh");
    await runAlarmWhenSet(stub(room), "the second session's end");
    expect((await versions(room)).map((version) => version.id)).toEqual([3]);
    expect(await textParts(room)).toEqual({ 3: 1 });
    expect(await versionText(room, 3)).toBe("fresh");
  });

  it("of a version taken before texts were stored is read by loading the version, charged as a load", async () => {
    const room = roomName("version-text-legacy");
    // 20,000 one-character items that cannot merge: loading them takes a second copy's heap, 4.9 MB, past a caller's 1 MiB burst.
    const client = new Y.Doc();
    client.transact(() => {
      for (let i = 0; i < 20_000; i++) client.getText("codemirror").insert(0, String.fromCharCode(97 + (i % 26)));
    });
    const expected = client.getText("codemirror").toString();
    expect((await api(`${room}/update`, { method: "POST", body: asBody(Y.encodeStateAsUpdate(client)) })).status).toBe(200);
    const ids: number[] = [];
    for (const name of ["one", "two"]) ids.push(((await (await saveNamed(room, name)).json()) as VersionInfo).id);
    const [one, two] = ids as [number, number];
    // Read from storage, each is charged its 40 KB: one caller reads both at once.
    expect(await versionText(room, one)).toBe(expected);
    expect(await versionText(room, two)).toBe(expected);

    // Versions from before the change have no text rows; a new object (and read budget) opens them.
    await forgetText(room, one);
    await forgetText(room, two);
    expect(await textParts(room)).toEqual({});
    await evictDurableObject(stub(room));
    expect(await versionText(room, one)).toBe(expected);
    // That load was charged the heap it took: the same caller waits before loading the other.
    expect((await api(`${room}/versions/${two}/text`, { headers: { "CF-Connecting-IP": "192.0.2.1" } })).status).toBe(429);
  });

  it("gets its table when a format-2 database written before it is opened", async () => {
    const room = roomName("version-text-table");
    await putText(room, "before the table");
    await saveNamed(room, "old");
    await sqlRows(room, "DROP TABLE edgedoc_version_text");
    await evictDurableObject(stub(room));

    await putText(room, "after the table");
    const saved = (await (await saveNamed(room, "new")).json()) as VersionInfo;
    expect(await textParts(room)).toEqual({ [saved.id]: 1 });
    expect(await versionText(room, saved.id)).toBe("after the table");
    expect(await versionText(room, 1)).toBe("before the table");
  });
});

describe("large documents", () => {
  it("a 10 MB document's versions are stored in row-sized parts and read back whole", async () => {
    const room = roomName("large-history");
    // Varied text, so the V2 encoding cannot shrink it below the row size.
    const large = Array.from({ length: 10 * 1024 * 1024 / 16 }, (_, i) => (i * 2654435761 >>> 0).toString(16).padStart(16, "0")).join("");
    const client = new Y.Doc();
    client.getText("codemirror").insert(0, large);
    expect((await api(`${room}/update`, { method: "POST", body: asBody(Y.encodeStateAsUpdate(client)) })).status).toBe(200);
    const version = (await (await saveNamed(room, "ten megabytes")).json()) as VersionInfo;
    const rows = (table: string) =>
      sqlRows<{ part: number; bytes: number }>(room, `SELECT part, LENGTH(data) AS bytes FROM ${table} WHERE id = ? ORDER BY part`, version.id);
    const [parts, textRows] = [await rows("edgedoc_version_parts"), await rows("edgedoc_version_text")];
    const stateBytes = parts.reduce((sum, part) => sum + part.bytes, 0);
    expect(stateBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(parts.length).toBe(Math.ceil(stateBytes / SQLITE_CHUNK_BYTES));
    // The text (ASCII: a byte a character) is stored beside the state, in parts of its own, and counted in `bytes`.
    expect(textRows.map((row) => row.part)).toEqual(Array.from({ length: Math.ceil(large.length / SQLITE_CHUNK_BYTES) }, (_, part) => part));
    expect(textRows.reduce((sum, row) => sum + row.bytes, 0)).toBe(large.length);
    expect(version.bytes).toBe(stateBytes + large.length);
    expect(Math.max(...parts.map((part) => part.bytes), ...textRows.map((row) => row.bytes))).toBeLessThanOrEqual(SQLITE_CHUNK_BYTES);
    expect(await versionText(room, version.id)).toBe(large);
  });
});

describe("storage format 2", () => {
  it("migrates a format-1 database: the document loads unchanged and gets its first version once someone opens it", async () => {
    const room = roomName("format-1");
    const old = new Y.Doc();
    old.getText("codemirror").insert(0, "written by format 1");
    const update = Y.encodeStateAsUpdate(old);
    const writtenAt = Date.now() - DAY_MS;
    // The layout format 1 wrote (worker/storage.ts before version history), written directly.
    await runInDurableObject(stub(room), (_instance, state) => {
      state.storage.sql.exec(`
        CREATE TABLE edgedoc_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        CREATE TABLE edgedoc_snapshot (part INTEGER PRIMARY KEY, data BLOB NOT NULL);
        CREATE TABLE edgedoc_log (seq INTEGER NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (seq, part));
        CREATE TABLE edgedoc_presence_claims (client_id INTEGER PRIMARY KEY, owner TEXT NOT NULL, at INTEGER NOT NULL);
      `);
      state.storage.sql.exec("INSERT INTO edgedoc_meta (key, value) VALUES ('format_version', 1)");
      state.storage.sql.exec("INSERT INTO edgedoc_log (seq, part, data, at) VALUES (1, 0, ?, ?)", update, writtenAt);
    });
    await evictDurableObject(stub(room));

    expect(await storedText(room)).toBe("written by format 1");
    expect(await versions(room)).toEqual([]);
    const format = await runInDurableObject(stub(room), (_instance, state) =>
      state.storage.sql.exec<{ value: number }>("SELECT value FROM edgedoc_meta WHERE key = 'format_version'").one().value,
    );
    expect(format).toBe(2);
    const visitor = await TestClient.connect(room);
    expect(visitor.text).toBe("written by format 1");
    visitor.close();
    // Its content counts as changed a day ago, so the version is due at once: the runtime may
    // run that alarm itself while the visitor is there ("interval"), or the test runs the
    // session-end alarm first.
    for (let attempt = 0; (await versions(room)).length === 0; attempt++) {
      if (attempt === 100) throw new Error("no version was taken");
      await runDurableObjectAlarm(stub(room));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const [first, ...rest] = await versions(room);
    expect(rest).toEqual([]);
    expect(first!.id).toBe(1);
    expect(await (await api(`${room}/versions/1/text`)).text()).toBe("written by format 1");
  });
});

describe("memory bound of preview and restore", () => {
  it("refuses (413) a preview and a restore whose second copy would pass the document item limit, changing nothing", async () => {
    const room = roomName("restore-too-large");
    // 135,000 one-character items that cannot merge (each typed before the previous one), sent
    // in three updates: the room admits an update only if it cannot pass the limit even when
    // each new item splits two others.
    const client = new Y.Doc();
    const text = client.getText("codemirror");
    for (let part = 0; part < 3; part++) {
      const before = Y.encodeStateVector(client);
      client.transact(() => {
        for (let i = 0; i < 45_000; i++) text.insert(0, String.fromCharCode(97 + (i % 26)));
      });
      const update = Y.encodeStateAsUpdate(client, before);
      expect((await api(`${room}/update`, { method: "POST", body: asBody(update) })).status).toBe(200);
    }
    expect((await info(room)).items).toBeGreaterThanOrEqual(135_000);
    const version = (await (await saveNamed(room, "large")).json()) as VersionInfo;
    const edited = new Y.Doc();
    Y.applyUpdate(edited, Y.encodeStateAsUpdate(client));
    const before = Y.encodeStateVector(edited);
    edited.getText("codemirror").insert(0, "!");
    expect((await api(`${room}/update`, { method: "POST", body: asBody(Y.encodeStateAsUpdate(edited, before)) })).status).toBe(200);
    const current = await storedText(room);

    const restoring = await api(`${room}/versions/${version.id}/restore`, { method: "POST" });
    expect(restoring.status).toBe(413);
    expect(await restoring.json()).toMatchObject({ error: "document_too_large" });
    // Another caller: reading the live text of 135,000 items spent the first one's read budget.
    expect(await storedText(room, "192.0.2.4")).toBe(current);
    // The preview reads the stored text: no second copy, nothing to refuse.
    expect(await versionText(room, version.id, "192.0.2.2")).toBe(text.toString());
    // A version without it is loaded: the live document (loaded) and the version would hold 135,000 items each.
    await forgetText(room, version.id);
    expect((await api(`${room}/versions/${version.id}/text`, { headers: { "CF-Connecting-IP": "192.0.2.3" } })).status).toBe(413);
    expect((await versions(room)).map((entry) => entry.reason)).toEqual(["named"]);
  });
});

describe("a restore the document cannot take", () => {
  it("is refused (413) before it writes anything: no before-restore version, the text as it was", async () => {
    const room = roomName("restore-refused");
    // The room's test config allows 12 MiB stored. A version of 7 MiB of text; then the text
    // deleted and 5.5 MiB of other text written: the restore brings the 7 MiB back as new text
    // beside the 5.5 MiB still stored, and the apply refuses it (its own check, on items, passes).
    const writer = new Y.Doc();
    const text = writer.getText("codemirror");
    const send = async (change: () => void) => {
      const sent = Y.encodeStateVector(writer);
      change();
      expect((await api(`${room}/update`, { method: "POST", body: asBody(Y.encodeStateAsUpdate(writer, sent)) })).status).toBe(200);
    };
    await send(() => text.insert(0, "a".repeat(7 * 1024 * 1024)));
    const version = (await (await saveNamed(room, "large")).json()) as VersionInfo;
    await send(() => text.delete(0, text.length));
    await send(() => text.insert(0, "b".repeat(5.5 * 1024 * 1024)));
    // 5.5 MiB reads: each from an address of its own, within its read budget.
    const textAt = async (address: string) => (await api(`${room}/text`, { headers: { "CF-Connecting-IP": address } })).text();
    const current = await textAt("192.0.2.10");
    expect(current.length).toBe(5.5 * 1024 * 1024);
    const before = await versions(room);

    const restoring = await api(`${room}/versions/${version.id}/restore`, { method: "POST" });
    expect(restoring.status).toBe(413);
    expect(await restoring.json()).toMatchObject({ error: "document_too_large" });
    expect(await versions(room)).toEqual(before);
    expect(await textAt("192.0.2.11")).toBe(current);
  });
});

describe("a version that fails", () => {
  it("is retried after a backoff, not by an alarm firing back to back, and taken once storage works again", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const room = roomName("version-fault");
    const sql = (query: string) => runInDurableObject(stub(room), (_instance, state) => void state.storage.sql.exec(query));
    const alarmAt = () => runInDurableObject(stub(room), (_instance, state) => state.storage.getAlarm());
    const writer = await TestClient.connect(room);
    writer.insert(0, "kept through a storage fault");
    await waitForStoredText(room, "kept through a storage fault");
    // A storage fault for versions only: their parts cannot be written.
    await sql("ALTER TABLE edgedoc_version_parts RENAME TO edgedoc_version_parts_away");
    // The change is older than the version interval: its version is overdue.
    vi.setSystemTime(Date.now() + 11 * 60_000);
    writer.close();
    await runAlarmWhenSet(stub(room), "session end");
    expect(await versions(room)).toEqual([]);
    // The unversioned change was due before now: without a backoff the alarm would be set in the past.
    expect(await alarmAt()).toBeGreaterThan(Date.now());
    // An alarm that fires early anyway (or twice) does not try again before the backoff.
    await runDurableObjectAlarm(stub(room));
    expect(await versions(room)).toEqual([]);
    expect(await alarmAt()).toBeGreaterThan(Date.now());

    await sql("ALTER TABLE edgedoc_version_parts_away RENAME TO edgedoc_version_parts");
    vi.setSystemTime(Date.now() + 31_000);
    await runDurableObjectAlarm(stub(room));
    expect(await versions(room)).toMatchObject([{ id: 1, reason: "session-end" }]);
    expect(await (await api(`${room}/versions/1/text`)).text()).toBe("kept through a storage fault");
    expect(await storedText(room)).toBe("kept through a storage fault");
  });
});

describe("HTTP writers", () => {
  it("a run of writes with nobody connected is one session: each write moves the idle version later", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const room = roomName("api-session");
    const alarmAt = () => runInDurableObject(stub(room), (_instance, state) => state.storage.getAlarm());
    for (let write = 0; write < 5; write++) {
      vi.setSystemTime(Date.now() + 2_000);
      await putText(room, `write ${write}`);
      expect(await alarmAt()).toBe(Date.now() + 5_000);
    }
    await runAlarmWhenSet(stub(room), "the session's end");
    expect(await versions(room)).toMatchObject([{ id: 1, reason: "session-end" }]);
    expect(await (await api(`${room}/versions/1/text`)).text()).toBe("write 4");
  });
});
