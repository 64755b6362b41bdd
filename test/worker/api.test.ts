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

/**
 * This project runs as issue 21 found it: AUTH_SECRET and ALLOWED_ORIGINS unset, so no token
 * and no CORS stand between a page on another site and the API. Requests carry the `Origin` a
 * browser would send.
 */
describe("cross-site writes", () => {
  const OWN = "http://edgedoc.test";
  const FOREIGN = "https://evil.example";
  const versions = async (room: string) => (await (await api(`${room}/versions`)).json()) as { id: number; name: string | null }[];

  /** A document holding `text`, with a socket on it and one named version. */
  async function documentWithVersion(label: string, text: string): Promise<{ room: string; alice: TestClient; versionId: number }> {
    const { room, alice } = await roomWithText(label, text);
    const saved = await api(`${room}/versions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: "kept" }) });
    expect(saved.status).toBe(201);
    return { room, alice, versionId: ((await saved.json()) as { id: number }).id };
  }

  /** An update that appends `text` to the room's document. */
  async function appending(room: string, text: string): Promise<Uint8Array> {
    const doc = new Y.Doc();
    Y.applyUpdate(doc, new Uint8Array(await (await api(`${room}/update`)).arrayBuffer()));
    const before = Y.encodeStateVector(doc);
    doc.getText("codemirror").insert(doc.getText("codemirror").length, text);
    return Y.encodeStateAsUpdate(doc, before);
  }

  /** Every state-changing request on `room`, as a page would send it; the simple ones (text/plain, no preflight) first. */
  function writes(room: string, versionId: number, update: Uint8Array): [label: string, path: string, init: RequestInit][] {
    const json = JSON.stringify({ name: "planted" });
    return [
      ["simple POST /update", `${room}/update`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: asBody(update) }],
      ["POST /update", `${room}/update`, { method: "POST", body: asBody(update) }],
      ["simple POST /versions", `${room}/versions`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: json }],
      ["POST /versions", `${room}/versions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: json }],
      ["simple POST /restore", `${room}/versions/${versionId}/restore`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: "" }],
      ["PUT /text", `${room}/text`, { method: "PUT", body: "replaced from elsewhere" }],
      ["PATCH", room, { method: "PATCH", body: "x" }],
      ["DELETE a version", `${room}/versions/${versionId}`, { method: "DELETE" }],
      ["DELETE the document", room, { method: "DELETE" }],
    ];
  }

  it("from a page on another site (or Origin: null), every state-changing route is refused 403 and nothing changes", async () => {
    const { room, alice, versionId } = await documentWithVersion("cross-site", "mine. ");
    await api(`${room}/text`, { method: "PUT", body: "mine, edited. " });
    await waitFor(() => alice.text === "mine, edited. ", "the edit at alice");
    const update = await appending(room, "planted");
    const before = await versions(room);
    for (const origin of [FOREIGN, "null"]) {
      for (const [label, path, init] of writes(room, versionId, update)) {
        const response = await api(path, { ...init, headers: { ...(init.headers as Record<string, string>), Origin: origin } });
        expect(response.status, `${label} from ${origin}`).toBe(403);
        expect(await response.json()).toEqual({ error: "forbidden", detail: `cross-site write refused: origin ${origin} is not this site's and not in ALLOWED_ORIGINS` });
      }
    }
    expect(await (await api(`${room}/text`)).text()).toBe("mine, edited. ");
    expect(await versions(room)).toEqual(before);
    expect(await info(room)).toMatchObject({ exists: true, sockets: 1 });
    expect(alice.text).toBe("mine, edited. ");
    // Reading is CORS's business: answered, without CORS headers, so the foreign page's browser hides it.
    const read = await api(`${room}/text`, { headers: { Origin: FOREIGN } });
    expect(read.status).toBe(200);
    expect(read.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });

  it("from the app's own origin, and from servers (no Origin), every write goes through", async () => {
    for (const origin of [OWN, undefined]) {
      const { room, alice, versionId } = await documentWithVersion("same-site", "first. ");
      const headers = (type?: string) => ({ ...(origin ? { Origin: origin } : {}), ...(type ? { "Content-Type": type } : {}) });
      const update = await appending(room, "second.");
      expect((await api(`${room}/update`, { method: "POST", headers: headers("application/octet-stream"), body: asBody(update) })).status).toBe(200);
      await waitFor(() => alice.text === "first. second.", "the posted update at alice");
      expect((await api(`${room}/text`, { method: "PUT", headers: headers("text/plain"), body: "third." })).status).toBe(200);
      await waitFor(() => alice.text === "third.", "the new text at alice");
      const saved = await api(`${room}/versions`, { method: "POST", headers: headers("application/json"), body: JSON.stringify({ name: "third" }) });
      expect(saved.status).toBe(201);
      expect(await (await api(`${room}/versions/${versionId}/restore`, { method: "POST", headers: headers() })).json()).toEqual({ changed: true });
      await waitFor(() => alice.text === "first. ", "the restored text at alice");
      expect((await api(`${room}/versions/${((await saved.json()) as { id: number }).id}`, { method: "DELETE", headers: headers() })).status).toBe(204);
      expect((await api(room, { method: "DELETE", headers: headers() })).status).toBe(204);
      expect(await alice.waitForClose()).toMatchObject({ code: CloseCode.documentDeleted });
    }
  });

  it("bodies of another type than documented are refused 415 and change nothing", async () => {
    const { room, alice } = await documentWithVersion("media-type", "unchanged");
    const update = await appending(room, " but for this");
    const before = await versions(room);
    const refused: [label: string, path: string, init: RequestInit][] = [
      ["an update as text/plain", `${room}/update`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: asBody(update) }],
      ["an update with no type", `${room}/update`, { method: "POST", body: update as Uint8Array<ArrayBuffer> }],
      ["a version name as text/plain", `${room}/versions`, { method: "POST", headers: { "Content-Type": "text/plain" }, body: JSON.stringify({ name: "x" }) }],
      ["a version name as a form", `${room}/versions`, { method: "POST", body: new URLSearchParams({ name: "x" }) }],
      ["a version name as multipart", `${room}/versions`, { method: "POST", body: (() => { const form = new FormData(); form.set("name", "x"); return form; })() }],
      ["text as a form (curl --data-binary)", `${room}/text`, { method: "PUT", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: "replaced" }],
      ["text in Latin-1", `${room}/text`, { method: "PUT", headers: { "Content-Type": "text/plain; charset=iso-8859-1" }, body: "replaced" }],
      ["text with no type", `${room}/text`, { method: "PUT", body: new TextEncoder().encode("replaced") }],
    ];
    for (const [label, path, init] of refused) {
      const response = await api(path, init);
      expect(response.status, label).toBe(415);
      expect(await response.json(), label).toEqual({ error: "unsupported_media_type", detail: expect.stringMatching(/^send the body as /) });
    }
    expect(await (await api(`${room}/text`)).text()).toBe("unchanged");
    expect(await versions(room)).toEqual(before);
    // Any text type is text: a Markdown file imports as itself.
    expect((await api(`${room}/text`, { method: "PUT", headers: { "Content-Type": "text/markdown; charset=UTF-8" }, body: "# imported" })).status).toBe(200);
    await waitFor(() => alice.text === "# imported", "the imported text at alice");
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
