/**
 * The documents HTTP API, over real HTTP into real rooms, with WebSocket clients connected.
 */
import { SELF, env, runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import type { DocumentInfo } from "../../worker/documents";
import { CloseCode } from "../../worker/protocol";
import { TestClient, asBody, roomName, runAlarmWhenSet, waitFor } from "./client";

const api = (path: string, init?: RequestInit) => SELF.fetch(`http://edgedoc.test/api/docs/${path}`, init);
const info = async (room: string) => (await (await api(room)).json()) as DocumentInfo;
const base64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

/** Waits until the room's stored text, read over HTTP, is `text`. */
async function waitForStoredText(room: string, text: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while ((await (await api(`${room}/text`)).text()) !== text) {
    if (Date.now() > deadline) throw new Error(`the room never held ${JSON.stringify(text)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function roomWithText(label: string, text: string): Promise<{ room: string; alice: TestClient }> {
  const room = roomName(label);
  const alice = await TestClient.connect(room);
  alice.insert(0, text);
  await waitForStoredText(room, text);
  return { room, alice };
}

describe("GET", () => {
  it("/api/docs/:name reports a missing document, then a stored one", async () => {
    const room = roomName("info");
    expect(await info(room)).toMatchObject({ exists: false, storedBytes: 0, sockets: 0, lastUpdateAt: null });
    const { room: written } = await roomWithText("info", "some text");
    const stored = await info(written);
    expect(stored).toMatchObject({ exists: true, sockets: 1, logRows: 1, snapshotChunks: 0 });
    expect(stored.storedBytes).toBeGreaterThan(0);
    expect(stored.encodedBytes).toBeGreaterThan("some text".length);
    expect(Date.parse(stored.lastUpdateAt!)).toBeGreaterThan(Date.now() - 60_000);
  });

  it("/text is the editor text as text/plain", async () => {
    const { room } = await roomWithText("text", "héllo\nwörld");
    const response = await api(`${room}/text`);
    expect(response.headers.get("Content-Type")).toMatch(/^text\/plain/);
    expect(await response.text()).toBe("héllo\nwörld");
  });

  it("/update is the document as a Yjs update, and ?since= only what a state lacks", async () => {
    const { room, alice } = await roomWithText("update", "first part");
    const partial = new Y.Doc();
    Y.applyUpdate(partial, Y.encodeStateAsUpdate(alice.doc));
    alice.insert(alice.text.length, ", second part");
    await waitForStoredText(room, "first part, second part");
    const full = await api(`${room}/update`);
    expect(full.headers.get("Content-Type")).toBe("application/octet-stream");
    const fullBytes = new Uint8Array(await full.arrayBuffer());
    const fresh = new Y.Doc();
    Y.applyUpdate(fresh, fullBytes);
    expect(fresh.getText("codemirror").toString()).toBe("first part, second part");

    const since = await api(`${room}/update?since=${base64url(Y.encodeStateVector(partial))}`);
    const diffBytes = new Uint8Array(await since.arrayBuffer());
    expect(diffBytes.length).toBeLessThan(fullBytes.length);
    Y.applyUpdate(partial, diffBytes);
    expect(partial.getText("codemirror").toString()).toBe("first part, second part");

    const bad = await api(`${room}/update?since=!!!`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: "invalid_state_vector" });
  });
});

describe("writes", () => {
  it("POST /update is validated, stored and relayed to connected editors", async () => {
    const { room, alice } = await roomWithText("post", "from the socket. ");
    const server = new Y.Doc();
    const response = await api(`${room}/update`, { method: "GET" });
    Y.applyUpdate(server, new Uint8Array(await response.arrayBuffer()));
    const before = Y.encodeStateVector(server);
    server.getText("codemirror").insert(server.getText("codemirror").length, "from a bot.");
    const posted = await api(`${room}/update`, { method: "POST", body: asBody(Y.encodeStateAsUpdate(server, before)) });
    expect(posted.status).toBe(200);
    expect(await posted.json()).toEqual({ changed: true });
    await waitFor(() => alice.text === "from the socket. from a bot.", "the posted edit to reach the socket");

    const stats = await info(room);
    const garbage = await api(`${room}/update`, { method: "POST", body: asBody(new Uint8Array([0xff, 0xff, 0x01])) });
    expect(garbage.status).toBe(400);
    expect(await garbage.json()).toMatchObject({ error: "invalid_update", detail: expect.stringMatching(/invalid update/) });
    expect((await info(room)).storedBytes).toBe(stats.storedBytes);
  });

  it("PUT /text replaces the text as a minimal edit: a connected cursor stays on the same text", async () => {
    const { room, alice } = await roomWithText("put", "hello world, how are you");
    const ytext = alice.doc.getText("codemirror");
    // Alice's cursor sits before "world".
    const cursor = Y.createRelativePositionFromTypeIndex(ytext, 6);
    const put = await api(`${room}/text`, { method: "PUT", body: "hello brave world, how are we" });
    expect(await put.json()).toEqual({ changed: true });
    await waitFor(() => alice.text === "hello brave world, how are we", "the new text at alice");
    const index = Y.createAbsolutePositionFromRelativePosition(cursor, alice.doc)!.index;
    expect(alice.text.slice(index)).toMatch(/^world/);
    const again = await api(`${room}/text`, { method: "PUT", body: "hello brave world, how are we" });
    expect(await again.json()).toEqual({ changed: false });
  });

  it("DELETE closes the room's sockets with 4410, empties the document, and is idempotent", async () => {
    const { room, alice } = await roomWithText("delete", "doomed");
    const deleted = await api(room, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    const closed = await alice.waitForClose();
    expect(closed).toEqual({ code: CloseCode.documentDeleted, reason: "document deleted" });
    expect(await info(room)).toMatchObject({ exists: false, storedBytes: 0, sockets: 0 });
    expect(await (await api(`${room}/text`)).text()).toBe("");
    expect((await api(room, { method: "DELETE" })).status).toBe(204);
    const fresh = await TestClient.connect(room);
    expect(fresh.text).toBe("");
  });
});

describe("errors", () => {
  it("answers bad names and unknown routes with JSON errors", async () => {
    const badName = await api("bad%20name");
    expect(badName.status).toBe(400);
    expect(await badName.json()).toMatchObject({ error: "invalid_name" });
    const unknown = await SELF.fetch("http://edgedoc.test/api/nothing");
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ error: "not_found" });
  });
});

describe("idle expiry (DOC_TTL_DAYS=1 in the test config)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("deletes a room's storage by alarm after a day with no connection and no edit", async () => {
    const { room, alice } = await roomWithText("ttl", "abandoned");
    alice.close();
    const stub = env.ROOM.get(env.ROOM.idFromName(room));
    await runAlarmWhenSet(stub, "no alarm after the last socket left");
    expect(await info(room)).toMatchObject({ exists: true, logRows: 0, snapshotChunks: 1 });
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 25 * 60 * 60 * 1000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await info(room)).toMatchObject({ exists: false, storedBytes: 0, snapshotChunks: 0 });
  });

  it("keeps a room whose last activity is within the TTL", async () => {
    const { room, alice } = await roomWithText("ttlkeep", "still wanted");
    alice.close();
    const stub = env.ROOM.get(env.ROOM.idFromName(room));
    await runAlarmWhenSet(stub, "no alarm after the last socket left");
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 23 * 60 * 60 * 1000);
    await runDurableObjectAlarm(stub);
    expect(await info(room)).toMatchObject({ exists: true });
  });
});
