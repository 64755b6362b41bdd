/**
 * Shared types nested past MAX_YJS_TYPE_DEPTH are refused before Yjs sees them (Yjs deletes and
 * garbage-collects nested types recursing per level, and overflows the stack at about 1,950
 * levels in workerd), however the nesting arrives; and when Yjs throws anyway, the room goes back
 * to a whole document and its honest editors keep editing.
 */
import { SELF, env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import * as encoding from "lib0/encoding";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { MAX_YJS_TYPE_DEPTH } from "../../worker/limits";
import { CloseCode, SyncMessageType } from "../../worker/protocol";
import { checkUpdateStructure } from "../../worker/update-check";
import { TestClient, roomName, syncFrame, waitFor } from "./client";

/** How long an honest edit may take to reach the other editor while an attack goes on. */
const PROMPT_MS = 1_000;

const stub = (room: string) => env.ROOM.get(env.ROOM.idFromName(room));

/** A document of client `clientId` whose root map "m" holds `depth` nested maps, each under "k". */
function chainDoc(depth: number, clientId = 4242): Y.Doc {
  const doc = new Y.Doc();
  doc.clientID = clientId;
  doc.transact(() => {
    let map = doc.getMap("m");
    for (let i = 0; i < depth; i++) map = map.set("k", new Y.Map());
  });
  return doc;
}

/**
 * The update deleting the outer map of {@link chainDoc}'s chain: a delete set only, 7 bytes.
 * Written by hand, since deleting a 3,000-level chain throws in this test's own Yjs too.
 */
function deleteOuter(clientId: number): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, 0); // no structs
  encoding.writeVarUint(encoder, 1); // one client's deletions
  encoding.writeVarUint(encoder, clientId);
  encoding.writeVarUint(encoder, 1); // one range: clock 0 (the outer map), length 1
  encoding.writeVarUint(encoder, 0);
  encoding.writeVarUint(encoder, 1);
  return encoding.toUint8Array(encoder);
}

/** How many maps are nested under the root map "m" of `doc`. */
function chainDepth(doc: Y.Doc): number {
  let depth = 0;
  // Bounded: each turn goes one level down a finite document.
  for (let map = doc.getMap("m").get("k"); map instanceof Y.Map; map = map.get("k")) depth++;
  return depth;
}

function sendUpdate(client: TestClient, update: Uint8Array): void {
  client.sendRaw(
    syncFrame((encoder) => {
      encoding.writeVarUint(encoder, SyncMessageType.update);
      encoding.writeVarUint8Array(encoder, update);
    }),
  );
}

/** Alice types `text` at the end and Bob must see it within {@link PROMPT_MS}. */
async function relayedPromptly(alice: TestClient, bob: TestClient, text: string): Promise<void> {
  alice.insert(alice.text.length, text);
  await waitFor(() => bob.text === alice.text, `"${text}" to reach the other editor`, PROMPT_MS);
}

/** Log rows stored for `room`, read without making the room write what it holds. */
function storedLogRows(room: string): Promise<number> {
  return runInDurableObject(stub(room), (_room, state) => state.storage.sql.exec<{ rows: number }>("SELECT COUNT(*) AS rows FROM edgedoc_log").one().rows);
}

describe("the structural check counts nesting of types", () => {
  it("accepts a chain at the limit and refuses one level more", () => {
    expect(() => checkUpdateStructure(Y.encodeStateAsUpdate(chainDoc(MAX_YJS_TYPE_DEPTH)))).not.toThrow();
    expect(() => checkUpdateStructure(Y.encodeStateAsUpdate(chainDoc(MAX_YJS_TYPE_DEPTH + 1)))).toThrow(/types nested too deeply/);
  });

  it("follows origins and parents across clients, whichever comes first in the update", () => {
    // Each level is an array holding a number, then the next array: that array names no parent
    // (its left origin is the number), and the levels alternate between two clients, so half the
    // parents are written before their holders.
    const doc = new Y.Doc();
    let array = doc.getArray<unknown>("a");
    for (let i = 0; i <= MAX_YJS_TYPE_DEPTH; i++) {
      doc.clientID = i % 2 === 0 ? 5 : 900;
      array.insert(0, [i]);
      const next = new Y.Array<unknown>();
      array.insert(1, [next]);
      array = next;
    }
    expect(() => checkUpdateStructure(Y.encodeStateAsUpdate(doc))).toThrow(/types nested too deeply/);
  });
});

describe("deeply nested types over sockets", () => {
  it("refuses the issue's 3,000-level chain and its deletion; the honest editors never notice", async () => {
    const room = roomName("nested-attack");
    const [alice, bob, mallory] = await TestClient.connectMany(room, 3);
    await relayedPromptly(alice, bob, "before ");
    const before = await stub(room).stats();
    const chain = chainDoc(3_000);
    const update = Y.encodeStateAsUpdate(chain);
    const deletion = deleteOuter(chain.clientID);
    expect(deletion.length).toBe(7);

    sendUpdate(mallory, update);
    const closed = await mallory.waitForClose();
    expect(closed).toEqual({ code: CloseCode.invalidPayload, reason: "invalid update: types nested too deeply" });
    expect(await stub(room).stats()).toEqual(before);
    await relayedPromptly(bob, alice, "during ");

    // The deletion alone names nothing the room has: it waits, and changes nothing anyone sees.
    const second = await TestClient.connect(room);
    sendUpdate(second, deletion);
    await relayedPromptly(alice, bob, "after ");
    await relayedPromptly(bob, alice, "again");
    expect([alice.closed, bob.closed]).toEqual([null, null]);
    expect(chainDepth(alice.doc)).toBe(0);
    const text = alice.text;
    expect(text).toBe("before during after again");
    await bob.saved();

    for (const client of [alice, bob, second]) client.close();
    await evictDurableObject(stub(room), { webSockets: "close" });
    const reloaded = await TestClient.connect(room);
    expect(reloaded.text).toBe(text);
    expect(chainDepth(reloaded.doc)).toBe(0);
  });

  it("accepts a chain at the limit, relays and deletes it, and reloads it", async () => {
    const room = roomName("nested-limit");
    const [writer, reader] = await TestClient.connectMany(room, 2);
    let map = writer.doc.getMap("m");
    writer.doc.transact(() => {
      for (let i = 0; i < MAX_YJS_TYPE_DEPTH; i++) map = map.set("k", new Y.Map());
    });
    await waitFor(() => chainDepth(reader.doc) === MAX_YJS_TYPE_DEPTH, "the chain to reach the reader");
    writer.doc.getMap("m").delete("k");
    await waitFor(() => chainDepth(reader.doc) === 0, "the deletion to reach the reader");
    writer.insert(0, "still here");
    await waitFor(() => reader.text === "still here", "a later edit");
    expect(writer.closed).toBeNull();
    await writer.saved();

    writer.close();
    reader.close();
    await evictDurableObject(stub(room), { webSockets: "close" });
    const reloaded = await TestClient.connect(room);
    expect(reloaded.text).toBe("still here");
    expect(chainDepth(reloaded.doc)).toBe(0);
  });

  it("refuses a chain grown one level per update at the same depth", async () => {
    const room = roomName("nested-grown");
    const [writer, reader] = await TestClient.connectMany(room, 2);
    let map = writer.doc.getMap("m");
    // Each set is its own transaction, so its own update: one level on the deepest type.
    for (let i = 0; i <= MAX_YJS_TYPE_DEPTH; i++) map = map.set("k", new Y.Map());
    const closed = await writer.waitForClose();
    expect(closed).toEqual({ code: CloseCode.invalidPayload, reason: "invalid update: types nested too deeply" });
    await waitFor(() => chainDepth(reader.doc) === MAX_YJS_TYPE_DEPTH, "every level up to the limit");
    const late = await TestClient.connect(room);
    expect(chainDepth(late.doc)).toBe(MAX_YJS_TYPE_DEPTH);
  });

  it("refuses a chain that waits for its base, once the base arrives", async () => {
    const room = roomName("nested-waiting");
    const [alice, bob, mallory] = await TestClient.connectMany(room, 3);
    // The base: 100 levels by one client; on top of its innermost map, 200 more by another.
    const base = chainDoc(100, 11);
    const top = new Y.Doc();
    Y.applyUpdate(top, Y.encodeStateAsUpdate(base));
    top.clientID = 12;
    const before = Y.encodeStateVector(top);
    let map = top.getMap("m");
    for (let i = 0; i < 100; i++) map = map.get("k") as Y.Map<unknown>;
    top.transact(() => {
      for (let i = 0; i < 200; i++) map = map.set("k", new Y.Map());
    });

    // 200 levels on a base the room lacks: within the limit on their own, so they wait.
    sendUpdate(mallory, Y.encodeStateAsUpdate(top, before));
    await relayedPromptly(alice, bob, "waiting ");
    expect(mallory.closed).toBeNull();
    sendUpdate(mallory, Y.encodeStateAsUpdate(base));
    const closed = await mallory.waitForClose();
    expect(closed).toEqual({ code: CloseCode.invalidPayload, reason: "invalid update: types nested too deeply" });
    await relayedPromptly(bob, alice, "refused");
    expect(chainDepth(alice.doc)).toBe(0);
  });
});

describe("restore", () => {
  const api = (path: string, init?: RequestInit) => SELF.fetch(`http://edgedoc.test/api/docs/${path}`, init);

  it("brings back a chain at the limit that was deleted since the version", async () => {
    // The restore compares versions by walking their types, and Yjs's undo re-creates a
    // deleted type recursing per level: both stay within the limit.
    const room = roomName("nested-restore");
    const [writer, reader] = await TestClient.connectMany(room, 2);
    writer.doc.transact(() => {
      let map = writer.doc.getMap("m");
      for (let i = 0; i < MAX_YJS_TYPE_DEPTH; i++) map = map.set("k", new Y.Map());
    });
    await waitFor(() => chainDepth(reader.doc) === MAX_YJS_TYPE_DEPTH, "the chain to reach the reader");
    await writer.saved();
    const saved = await api(`${room}/versions`, { method: "POST", body: JSON.stringify({ name: "deep" }), headers: { "Content-Type": "application/json" } });
    const { id } = (await saved.json()) as { id: number };
    writer.doc.getMap("m").delete("k");
    await waitFor(() => chainDepth(reader.doc) === 0, "the deletion to reach the reader");
    await writer.saved();

    const restored = await api(`${room}/versions/${id}/restore`, { method: "POST" });
    expect(restored.status).toBe(200);
    await waitFor(() => chainDepth(reader.doc) === MAX_YJS_TYPE_DEPTH, "the restored chain to reach the reader");
    expect(chainDepth(writer.doc)).toBe(MAX_YJS_TYPE_DEPTH);
  });

  it("refuses (1007, 400) a version stored before the limit that nests deeper, and changes nothing", async () => {
    const room = roomName("nested-old-version");
    const writer = await TestClient.connect(room);
    writer.insert(0, "today's text");
    await writer.saved();
    const saved = await api(`${room}/versions`, { method: "POST", body: JSON.stringify({ name: "old" }), headers: { "Content-Type": "application/json" } });
    const { id } = (await saved.json()) as { id: number };
    // As a version taken before the limit existed: a chain 300 levels deep, as its state.
    const deep = Y.encodeStateAsUpdateV2(chainDoc(MAX_YJS_TYPE_DEPTH + 44));
    await runInDurableObject(stub(room), (_instance, state) => {
      state.storage.sql.exec("DELETE FROM edgedoc_version_parts WHERE id = ?", id);
      state.storage.sql.exec("INSERT INTO edgedoc_version_parts (id, part, data) VALUES (?, 0, ?)", id, deep);
    });
    const versionsBefore = await (await api(`${room}/versions`)).text();

    const restored = await api(`${room}/versions/${id}/restore`, { method: "POST" });
    expect(restored.status).toBe(400);
    expect(await restored.json()).toMatchObject({ error: "invalid_update", detail: "invalid update: types nested too deeply" });
    expect(await (await api(`${room}/versions`)).text()).toBe(versionsBefore);
    expect(await (await api(`${room}/text`)).text()).toBe("today's text");
    writer.insert(0, "still editing: ");
    await writer.saved();
    expect(await (await api(`${room}/text`, { headers: { "CF-Connecting-IP": "192.0.2.20" } })).text()).toBe("still editing: today's text");
  });
});

describe("when Yjs throws anyway", () => {
  /**
   * Two items of client 50: "X" into the text, then "Y" whose left origin is client 50's clock 5,
   * which does not exist. Yjs does not wait for its own client's origins: it integrates "X",
   * then throws looking for the origin (yjs 13.6: "Cannot read properties of undefined").
   */
  function throwsAfterIntegrating(): Uint8Array {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 1); // one client
    encoding.writeVarUint(encoder, 2); // two structs
    encoding.writeVarUint(encoder, 50); // client
    encoding.writeVarUint(encoder, 0); // clock
    encoding.writeUint8(encoder, 4); // a string, parent named by a root type key
    encoding.writeVarUint(encoder, 1);
    encoding.writeVarString(encoder, "codemirror");
    encoding.writeVarString(encoder, "X");
    encoding.writeUint8(encoder, 4 | 0b1000_0000); // a string with a left origin
    encoding.writeVarUint(encoder, 50);
    encoding.writeVarUint(encoder, 5);
    encoding.writeVarString(encoder, "Y");
    encoding.writeVarUint(encoder, 0); // empty delete set
    return encoding.toUint8Array(encoder);
  }

  it("goes back to what is stored and held: the others keep editing and a joiner gets their edits", async () => {
    const room = roomName("yjs-throws");
    const [alice, bob, mallory] = await TestClient.connectMany(room, 3);
    await relayedPromptly(alice, bob, "stored ");
    await alice.saved();
    const rows = await storedLogRows(room);

    // Alice's edit is relayed at once but held for a moment before it is written (up to 2 s
    // when no other frame comes, HELD_UPDATES_ALARM_MS).
    alice.insert(alice.text.length, "held ");
    await waitFor(() => bob.text === "stored held ", "the held edit to be relayed", PROMPT_MS);
    sendUpdate(mallory, throwsAfterIntegrating());
    const closed = await mallory.waitForClose();
    expect(closed).toEqual({ code: CloseCode.invalidPayload, reason: "invalid update: Yjs could not decode it" });
    // The recovery happened while the edit was still held, not yet written.
    expect(await storedLogRows(room)).toBe(rows);
    const joiner = await TestClient.connect(room);
    expect(joiner.text).toBe("stored held ");

    await relayedPromptly(bob, alice, "after");
    await waitFor(() => joiner.text === "stored held after", "the joiner to get later edits", PROMPT_MS);
    expect([alice.closed, bob.closed]).toEqual([null, null]);
    await bob.saved();
    for (const client of [alice, bob, joiner]) client.close();
    await evictDurableObject(stub(room), { webSockets: "close" });
    expect((await TestClient.connect(room)).text).toBe("stored held after");
  });
});
