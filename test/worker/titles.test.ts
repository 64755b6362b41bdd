/**
 * Document titles inside workerd: the `title` of `GET /api/docs/:name`, set by real Yjs updates
 * over a socket and over the API, hostile and foreign ones included, and kept by a restore.
 */
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import type { DocumentInfo, VersionInfo } from "../../worker/documents";
import { DEFAULT_TITLE, MAX_TITLE_CHARS, SETTINGS_MAP, TITLE_KEY, documentTitle } from "../../worker/title";
import { TestClient, asBody, roomName, waitFor } from "./client";

const api = (path: string, init?: RequestInit) => SELF.fetch(`http://edgedoc.test/api/docs/${path}`, init);
const info = async (room: string) => {
  const response = await api(room);
  expect(response.status).toBe(200);
  return (await response.json()) as DocumentInfo;
};
/** Sends the whole of `doc` as one Yjs update, as a server or another app would. */
const postUpdate = async (room: string, doc: Y.Doc) =>
  expect((await api(`${room}/update`, { method: "POST", body: asBody(Y.encodeStateAsUpdate(doc)) })).status).toBe(200);
const putText = async (room: string, text: string) => expect((await api(`${room}/text`, { method: "PUT", body: text })).status).toBe(200);
const saveNamed = async (room: string, name: string) => {
  const response = await api(`${room}/versions`, { method: "POST", body: JSON.stringify({ name }), headers: { "Content-Type": "application/json" } });
  expect(response.status).toBe(201);
  return (await response.json()) as VersionInfo;
};
const restore = async (room: string, id: number) => {
  const response = await api(`${room}/versions/${id}/restore`, { method: "POST" });
  expect(response.status).toBe(200);
  return (await response.json()) as { changed: boolean };
};
/** The room's document, as a client loading it would have it. */
/** Writes a document with `text` titled `title` to `room` through the API; returns the writer's doc to go on editing. */
const writeTitled = async (room: string, text: string, title: string) => {
  const doc = new Y.Doc();
  doc.getText("codemirror").insert(0, text);
  doc.getMap(SETTINGS_MAP).set(TITLE_KEY, title);
  await postUpdate(room, doc);
  return doc;
};
const serverDoc = async (room: string) => {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, new Uint8Array(await (await api(`${room}/update`)).arrayBuffer()));
  return doc;
};

describe("the title in GET /api/docs/:name", () => {
  it(`is "${DEFAULT_TITLE}" for a name never written and a document without one, and follows renames over a socket`, async () => {
    const room = roomName("title-socket");
    expect(await info(room)).toMatchObject({ exists: false, title: DEFAULT_TITLE });
    const client = await TestClient.connect(room);
    client.insert(0, "some text");
    client.doc.getMap(SETTINGS_MAP).set("language", "markdown");
    await client.saved();
    expect((await info(room)).title).toBe(DEFAULT_TITLE);

    client.doc.getMap(SETTINGS_MAP).set(TITLE_KEY, "Quarterly plan");
    await client.saved();
    expect((await info(room)).title).toBe("Quarterly plan");
    client.doc.getMap(SETTINGS_MAP).set(TITLE_KEY, "  Quarterly   plan, v2 ");
    await client.saved();
    expect((await info(room)).title).toBe("Quarterly plan, v2");
    // Deleting the entry, or a title with nothing printable, is untitled again.
    client.doc.getMap(SETTINGS_MAP).delete(TITLE_KEY);
    await client.saved();
    expect((await info(room)).title).toBe(DEFAULT_TITLE);
    client.doc.getMap(SETTINGS_MAP).set(TITLE_KEY, "\u0000\u202e \n\t");
    await client.saved();
    expect((await info(room)).title).toBe(DEFAULT_TITLE);
    client.close();
  });

  it(`is remote input: markup stays text, control characters go, and 10,000 characters become ${MAX_TITLE_CHARS}`, async () => {
    const room = roomName("title-hostile");
    const doc = new Y.Doc();
    doc.getMap(SETTINGS_MAP).set(TITLE_KEY, `<img src=x onerror=alert(1)>\u0000\u0007\u001b[31m\n\u202e\u2066${"A".repeat(10_000)}`);
    await postUpdate(room, doc);
    const { title } = await info(room);
    // The JSON answer carries the markup as characters; whoever shows it decides how (the app: as text).
    expect(title).toBe(`<img src=x onerror=alert(1)> [31m ${"A".repeat(MAX_TITLE_CHARS - "<img src=x onerror=alert(1)> [31m ".length)}`);
    expect(Array.from(title)).toHaveLength(MAX_TITLE_CHARS);
    expect(title).not.toMatch(/[\p{Cc}\p{Cf}]/u);

    // Characters, not UTF-16 units: astral characters are never cut in half.
    doc.getMap(SETTINGS_MAP).set(TITLE_KEY, "😀".repeat(10_000));
    await postUpdate(room, doc);
    expect((await info(room)).title).toBe("😀".repeat(MAX_TITLE_CHARS));
  });

  it(`is "${DEFAULT_TITLE}" when another Yjs app made settings something else, which stays as that app left it`, async () => {
    const shapes: [string, (doc: Y.Doc) => void][] = [
      ["an array", (doc) => doc.getArray(SETTINGS_MAP).push([{ title: "not a map entry" }, "title"])],
      ["a text", (doc) => doc.getText(SETTINGS_MAP).insert(0, "title: not a map")],
      ["an XML fragment", (doc) => doc.getXmlFragment(SETTINGS_MAP).push([new Y.XmlText("title")])],
      ["a map whose title is a number", (doc) => doc.getMap(SETTINGS_MAP).set(TITLE_KEY, 42)],
      ["a map whose title is a shared type", (doc) => doc.getMap(SETTINGS_MAP).set(TITLE_KEY, new Y.Text("nested"))],
    ];
    for (const [shape, write] of shapes) {
      const room = roomName("title-foreign");
      const doc = new Y.Doc();
      doc.getText("codemirror").insert(0, `settings as ${shape}`);
      write(doc);
      await postUpdate(room, doc);
      expect(await info(room), shape).toMatchObject({ exists: true, title: DEFAULT_TITLE });
      expect(await (await api(`${room}/text`)).text()).toBe(`settings as ${shape}`);
      // The room still serves the other app's document unchanged, and takes its next edit.
      expect(Y.encodeStateAsUpdate(await serverDoc(room))).toEqual(Y.encodeStateAsUpdate(doc));
      doc.getText("codemirror").insert(0, "> ");
      await postUpdate(room, doc);
      expect(await (await api(`${room}/text`)).text()).toBe(`> settings as ${shape}`);
    }
  });

  it("documentTitle reads any document without throwing, retyping or creating anything", () => {
    const foreign = new Y.Doc();
    foreign.getArray(SETTINGS_MAP).push(["x"]);
    expect(documentTitle(foreign)).toBe(DEFAULT_TITLE);
    expect(foreign.getArray(SETTINGS_MAP).toArray()).toEqual(["x"]);

    // Loaded from an update, as the room loads it: the root is untyped until someone asks by type.
    const loaded = new Y.Doc();
    Y.applyUpdate(loaded, Y.encodeStateAsUpdate(foreign));
    expect(documentTitle(loaded)).toBe(DEFAULT_TITLE);
    expect(loaded.share.get(SETTINGS_MAP)?.constructor).toBe(Y.AbstractType);
    expect(() => loaded.getArray(SETTINGS_MAP)).not.toThrow();

    const empty = new Y.Doc();
    expect(documentTitle(empty)).toBe(DEFAULT_TITLE);
    expect(empty.share.has(SETTINGS_MAP)).toBe(false);

    const titled = new Y.Doc();
    titled.getMap(SETTINGS_MAP).set(TITLE_KEY, "Notes");
    const titledLoaded = new Y.Doc();
    Y.applyUpdate(titledLoaded, Y.encodeStateAsUpdate(titled));
    expect([documentTitle(titled), documentTitle(titledLoaded)]).toEqual(["Notes", "Notes"]);
    expect(titledLoaded.share.get(SETTINGS_MAP)?.constructor).toBe(Y.AbstractType);
  });
});

describe("restoring a version", () => {
  it("brings the text and the language back, not the old title; everyone connected keeps the current one", async () => {
    const room = roomName("restore-title");
    const [alice, bob] = await TestClient.connectMany(room, 2);
    const settings = alice.doc.getMap(SETTINGS_MAP);
    alice.insert(0, "first draft");
    settings.set("language", "markdown");
    settings.set(TITLE_KEY, "Draft");
    await alice.saved();
    const draft = await saveNamed(room, "draft");

    alice.doc.getText("codemirror").delete(0, alice.text.length);
    alice.insert(0, "final text");
    settings.set("language", "javascript");
    settings.set(TITLE_KEY, "Final report");
    await alice.saved();

    expect(await restore(room, draft.id)).toEqual({ changed: true });
    expect(await (await api(`${room}/text`)).text()).toBe("first draft");
    expect((await info(room)).title).toBe("Final report");
    for (const client of [alice, bob]) {
      await waitFor(() => client.text === "first draft" && client.doc.getMap(SETTINGS_MAP).get("language") === "markdown", "the restore");
      expect(client.doc.getMap(SETTINGS_MAP).get(TITLE_KEY)).toBe("Final report");
    }
    alice.close();
    bob.close();
  });

  it("keeps a title added since the version, and keeps a document untitled whose version had one", async () => {
    const room = roomName("restore-title-added");
    await putText(room, "untitled text");
    const untitled = await saveNamed(room, "untitled");
    const titling = await serverDoc(room);
    titling.getText("codemirror").insert(0, "titled ");
    titling.getMap(SETTINGS_MAP).set(TITLE_KEY, "Named later");
    await postUpdate(room, titling);
    expect(await restore(room, untitled.id)).toEqual({ changed: true });
    expect(await (await api(`${room}/text`)).text()).toBe("untitled text");
    expect((await info(room)).title).toBe("Named later");

    const other = roomName("restore-title-removed");
    const doc = await writeTitled(other, "titled text", "Old name");
    const titled = await saveNamed(other, "titled");
    doc.getMap(SETTINGS_MAP).delete(TITLE_KEY);
    doc.getText("codemirror").insert(0, "now untitled, ");
    await postUpdate(other, doc);
    expect((await info(other)).title).toBe(DEFAULT_TITLE);
    expect(await restore(other, titled.id)).toEqual({ changed: true });
    expect(await (await api(`${other}/text`)).text()).toBe("titled text");
    expect((await info(other)).title).toBe(DEFAULT_TITLE);
    expect((await serverDoc(other)).getMap(SETTINGS_MAP).has(TITLE_KEY)).toBe(false);
  });

  it("of a version that differs only in its title changes nothing", async () => {
    const room = roomName("restore-title-only");
    const doc = await writeTitled(room, "same text", "Before");
    const before = await saveNamed(room, "before");
    doc.getMap(SETTINGS_MAP).set(TITLE_KEY, "After");
    await postUpdate(room, doc);
    expect(await restore(room, before.id)).toEqual({ changed: false });
    expect((await info(room)).title).toBe("After");
  });
});
