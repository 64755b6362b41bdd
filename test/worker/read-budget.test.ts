/**
 * HTTP reads pay for what they cost (worker/read-budget.ts, docs/limits.md "HTTP reads"): a
 * caller past its read budget is refused 429 while others read on, the room past its answer
 * budget refuses 503, both with Retry-After; cached answers are the fresh bytes and never
 * outlive a change; and editors on sockets keep editing while a reader is refused. Callers
 * are told apart by address, as the Worker does without tokens.
 */
import { SELF, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import type { DocumentInfo, VersionInfo } from "../../worker/documents";
import { READ_CALLER_BURST_BYTES, YJS_ITEM_HEAP_BYTES } from "../../worker/limits";
import { TestClient, asBody, roomName, waitFor } from "./client";

/** A request to the documents API from `address` (CF-Connecting-IP, as Cloudflare sets it). */
function api(path: string, address = "192.0.2.1", init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`http://edgedoc.test/api/docs/${path}`, { ...init, headers: { "CF-Connecting-IP": address, ...init.headers } });
}

/** A Yjs update of `count` one-character items that cannot merge (each inserted at position 0). */
function unmergeableItems(count: number): Uint8Array {
  const doc = new Y.Doc();
  doc.transact(() => {
    for (let i = 0; i < count; i++) doc.getText("codemirror").insert(0, "x");
  });
  return Y.encodeStateAsUpdate(doc);
}

/** A Yjs update inserting `text` at the start. */
function textUpdate(text: string): Uint8Array {
  const doc = new Y.Doc();
  doc.getText("codemirror").insert(0, text);
  return Y.encodeStateAsUpdate(doc);
}

async function write(room: string, update: Uint8Array): Promise<void> {
  const response = await api(`${room}/update`, "192.0.2.250", { method: "POST", body: asBody(update) });
  expect(response.status).toBe(200);
}

async function saveVersion(room: string, name: string): Promise<number> {
  const response = await api(`${room}/versions`, "192.0.2.250", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as VersionInfo).id;
}

/** A document whose version costs more to load than a caller's whole burst: each load is the caller's one read for a while. */
/**
 * A version whose text must be read by loading it: its stored text is removed, as for a
 * version taken before versions kept their text (the load path budgets exist for).
 */
async function costlyVersion(room: string): Promise<number> {
  const items = Math.ceil((1.5 * READ_CALLER_BURST_BYTES) / YJS_ITEM_HEAP_BYTES);
  await write(room, unmergeableItems(items));
  const id = await saveVersion(room, "costly");
  await runInDurableObject(env.ROOM.get(env.ROOM.idFromName(room)), (_instance, state) => void state.storage.sql.exec("DELETE FROM edgedoc_version_text"));
  return id;
}

describe("a caller's read budget", () => {
  it("refuses a caller that keeps reading version text 429 with Retry-After, while another caller reads on", async () => {
    const room = roomName("read-caller");
    const first = await costlyVersion(room);
    const second = await saveVersion(room, "another");
    // A full budget admits one load however costly; the next load must wait for it to be paid back.
    expect((await api(`${room}/versions/${first}/text`, "192.0.2.1")).status).toBe(200);
    const refused = await api(`${room}/versions/${second}/text`, "192.0.2.1");
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ error: "rate_limited" });
    // Another address has a budget of its own.
    const other = await api(`${room}/versions/${second}/text`, "198.51.100.7");
    expect(other.status).toBe(200);
    expect((await other.text()).length).toBeGreaterThan(0);
  });

  it("refuses 503 with Retry-After once the room's answer budget is spent, whoever asks", async () => {
    const room = roomName("read-room");
    // 10 MB of text: each whole update is 10 MB to encode and send, too large to keep.
    await write(room, textUpdate("y".repeat(10_000_000)));
    const statuses: number[] = [];
    let busy: Response | null = null;
    // Each caller is new (a full budget), so only the room's budget (64 MiB) can refuse.
    for (let caller = 1; caller <= 30 && busy === null; caller++) {
      const response = await api(`${room}/update`, `203.0.113.${caller}`);
      statuses.push(response.status);
      if (response.status === 503) busy = response;
      else await response.arrayBuffer();
    }
    expect(busy, `statuses: ${statuses.join(",")}`).not.toBeNull();
    expect(Number(busy!.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect(await busy!.json()).toMatchObject({ error: "room_busy" });
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
  });
});

describe("cached answers", () => {
  it("are the bytes a fresh read gives, and change with the document", async () => {
    const room = roomName("read-cache");
    await write(room, textUpdate("hello"));
    const fresh = new Uint8Array(await (await api(`${room}/update`)).arrayBuffer());
    const cached = new Uint8Array(await (await api(`${room}/update`)).arrayBuffer());
    expect(cached).toEqual(fresh);
    const info = (await (await api(room)).json()) as DocumentInfo;
    expect(info.encodedBytes).toBe(fresh.length);
    expect(await (await api(`${room}/text`)).text()).toBe("hello");

    const [editor, watcher] = await Promise.all([TestClient.connect(room), TestClient.connect(room)]);
    editor.insert(5, " world");
    // Once another socket has the edit, the room has applied it: every read from then on must show it.
    await waitFor(() => watcher.text === "hello world", "the edit to be relayed");
    const after = new Uint8Array(await (await api(`${room}/update`)).arrayBuffer());
    const doc = new Y.Doc();
    Y.applyUpdate(doc, after);
    expect(doc.getText("codemirror").toString()).toBe("hello world");
    expect(await (await api(`${room}/text`)).text()).toBe("hello world");
    expect(((await (await api(room)).json()) as DocumentInfo).encodedBytes).toBe(after.length);
    editor.close();
    watcher.close();
  });

  it("of a version are never served once it is gone, nor after the document is deleted and written again", async () => {
    const room = roomName("read-version-cache");
    await write(room, textUpdate("first life"));
    const id = await saveVersion(room, "kept");
    expect(await (await api(`${room}/versions/${id}/text`)).text()).toBe("first life");
    const update = new Uint8Array(await (await api(`${room}/versions/${id}/update`)).arrayBuffer());
    expect(new Uint8Array(await (await api(`${room}/versions/${id}/update`)).arrayBuffer())).toEqual(update);

    expect((await api(`${room}/versions/${id}`, undefined, { method: "DELETE" })).status).toBe(204);
    expect((await api(`${room}/versions/${id}/text`)).status).toBe(404);

    // Deleting the document starts its version ids over: the same id names another version.
    await write(room, textUpdate("doomed "));
    const doomed = await saveVersion(room, "doomed");
    expect(await (await api(`${room}/versions/${doomed}/text`)).text()).toMatch(/doomed/);
    expect((await api(room, undefined, { method: "DELETE" })).status).toBe(204);
    await write(room, textUpdate("second life"));
    const reborn = await saveVersion(room, "reborn");
    expect(reborn).toBe(1);
    expect(await (await api(`${room}/versions/${reborn}/text`)).text()).toBe("second life");
    expect(await (await api(`${room}/text`)).text()).toBe("second life");
  });
});

describe("honest editors", () => {
  it("keep exchanging edits while a reader is refused", async () => {
    const room = roomName("read-honest");
    const id = await costlyVersion(room);
    const [alice, bob] = await Promise.all([TestClient.connect(room), TestClient.connect(room)]);
    expect((await api(`${room}/versions/${id}/text`, "192.0.2.9")).status).toBe(200);
    const statuses: number[] = [];
    for (let round = 0; round < 5; round++) {
      const read = await api(`${room}/update`, "192.0.2.9");
      statuses.push(read.status);
      await read.arrayBuffer();
      alice.insert(0, `a${round}`);
      await waitFor(() => bob.text.includes(`a${round}`), `bob to see alice's edit ${round}`);
    }
    expect(statuses).toEqual([429, 429, 429, 429, 429]);
    bob.insert(0, "b");
    await waitFor(() => alice.text.startsWith("b"), "alice to see bob's edit");
    alice.close();
    bob.close();
  });
});
