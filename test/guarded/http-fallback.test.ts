/**
 * The HTTP fallback (`/sync/:name`) on a guarded deployment (vitest.config.ts: AUTH_SECRET,
 * ALLOWED_ORIGINS, MAX_SOCKETS_PER_ROOM=3, 64 KiB frames, the default rates): the same
 * refusals as the socket at the door, the same budgets and closes in the room, sessions that
 * belong to their token, and a room that forgot its sessions (evicted) making clients join again.
 */
import { SELF, env, evictDurableObject, listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import * as decoding from "lib0/decoding";
import * as Y from "yjs";
import { describe, expect, it } from "vitest";
import { CloseCode, EMPTY_STATE_VECTOR, EMPTY_UPDATE, MessageType, encodeAwareness, encodeSyncStep1, encodeSyncStep2, encodeSyncUpdate } from "../../worker/protocol";
import type { HttpSessions } from "../../worker/room/http-sessions";
import { signToken, type AccessMode } from "../../worker/tokens";
import { TestClient, roomName } from "../worker/client";
import { HttpTestClient } from "../worker/http-client";

const roomStub = (room: string) => env.ROOM.get(env.ROOM.idFromName(room));

function token(doc: string, mode: AccessMode = "write", { ttlSeconds = 600, secret = env.AUTH_SECRET!, name = "Tess", sub }: { ttlSeconds?: number; secret?: string; name?: string; sub?: string } = {}): Promise<string> {
  return signToken({ doc, mode, exp: Math.floor(Date.now() / 1000) + ttlSeconds, name, ...(sub === undefined ? {} : { sub }) }, secret);
}

/** An edit inserting `text`, as a fresh client's whole document. */
function edit(text: string): Uint8Array {
  const doc = new Y.Doc();
  doc.getText("codemirror").insert(0, text);
  return Y.encodeStateAsUpdate(doc);
}

/** The update or state vector a sync frame carries, and its sync message type. */
function syncPayload(frame: Uint8Array): { type: number; payload: Uint8Array } {
  const decoder = decoding.createDecoder(frame);
  decoding.readVarUint(decoder);
  const type = decoding.readVarUint(decoder);
  return { type, payload: decoding.readVarUint8Array(decoder) };
}

/** Applies every sync step 2 and update among `frames` to `doc`. */
function applySync(doc: Y.Doc, frames: Uint8Array[]): void {
  for (const frame of frames) {
    if (frame[0] !== MessageType.sync) continue;
    const { type, payload } = syncPayload(frame);
    if (type !== 0) Y.applyUpdate(doc, payload);
  }
}

/** Opens a session and completes the handshake with an empty document. */
async function joined(room: string, mode: AccessMode = "write", sub?: string): Promise<HttpTestClient> {
  const { client, answer } = await HttpTestClient.open(room, { token: await token(room, mode, { sub }) });
  expect(answer.status).toBe(200);
  expect(answer.frames[0]?.[0]).toBe(MessageType.sync);
  const handshake = await client.send([encodeSyncStep1(EMPTY_STATE_VECTOR), encodeSyncStep2(EMPTY_UPDATE)]);
  expect(handshake.close).toBeNull();
  return client;
}

describe("the HTTP fallback at the door: refused as a socket is, no room woken", () => {
  const refusals: { name: string; open: (room: string) => ReturnType<typeof HttpTestClient.open>; status: number; reason: RegExp }[] = [
    { name: "no token", open: async (room) => HttpTestClient.open(room), status: 401, reason: /token required/ },
    { name: "a forged token", open: async (room) => HttpTestClient.open(room, { token: await token(room, "write", { secret: "someone-else" }) }), status: 401, reason: /signature invalid/ },
    { name: "an expired token", open: async (room) => HttpTestClient.open(room, { token: await token(room, "write", { ttlSeconds: -60 }) }), status: 401, reason: /token expired/ },
    { name: "a token for another document", open: async (room) => HttpTestClient.open(room, { token: await token(`${room}-other`) }), status: 403, reason: /another document/ },
    {
      name: "a page on a foreign origin",
      open: async (room) => HttpTestClient.open(room, { token: await token(room), headers: { Origin: "https://evil.example" } }),
      status: 403,
      reason: /origin/,
    },
  ];

  it.each(refusals)("$name gets $status", async ({ open, status, reason }) => {
    const room = roomName("http-door");
    const before = (await listDurableObjectIds(env.ROOM)).length;
    const { answer } = await open(room);
    expect(answer.status).toBe(status);
    expect(answer.text).toMatch(reason);
    expect((await listDurableObjectIds(env.ROOM)).length).toBe(before);
  });

  it("a malformed session id is 400 at the door; a probe WebSocket opens and closes with no token and no room", async () => {
    const room = roomName("http-probe");
    const before = (await listDurableObjectIds(env.ROOM)).length;
    const malformed = await SELF.fetch(`http://edgedoc.test/sync/${room}?session=not-a-session&cursor=0&token=${await token(room)}`);
    expect([malformed.status, await malformed.text()]).toEqual([400, "malformed session id: 32 lowercase hex digits"]);
    const probe = await SELF.fetch(`http://edgedoc.test/ws/${room}?probe=1`, { headers: { Upgrade: "websocket" } });
    expect(probe.status).toBe(101);
    const socket = probe.webSocket!;
    const closed = new Promise<number>((resolve) => socket.addEventListener("close", (event) => resolve(event.code)));
    socket.accept();
    expect(await closed).toBe(1000);
    expect((await listDurableObjectIds(env.ROOM)).length).toBe(before);
  });

  it("a body of another type is refused 415, one over a batch 413, before the room; a frame over the limit is 1009", async () => {
    const room = roomName("http-body");
    const client = await joined(room);
    const asText = await client.send([encodeSyncUpdate(edit("x"))], undefined, { token: await token(room), headers: { "Content-Type": "text/plain" } });
    expect(asText.status).toBe(415);
    // A body may carry one client batch (1 MiB) even where frames are smaller (64 KiB here)...
    const huge = await client.send([encodeSyncUpdate(new Uint8Array(1024 * 1024 + 100))]);
    expect(huge.status).toBe(413);
    // ...and a frame in it over the frame limit closes the session as on a socket.
    const tooBig = await client.send([encodeSyncUpdate(new Uint8Array(65 * 1024))]);
    expect(tooBig.close?.code).toBe(CloseCode.messageTooBig);
  });
});

describe("the HTTP fallback in the room: the same budgets, closes and access as a socket", () => {
  it("a writer's edit reaches a WebSocket client, and the client's edit comes back in a poll", async () => {
    const room = roomName("http-edit");
    const http = await joined(room);
    const socket = await TestClient.connect(room, { token: await token(room) });
    const sent = edit("from http");
    expect((await http.send([encodeSyncUpdate(sent)])).close).toBeNull();
    await expect.poll(() => socket.text, { timeout: 5_000 }).toBe("from http");
    socket.insert(0, "ws ");
    const doc = new Y.Doc();
    Y.applyUpdate(doc, sent);
    // Polls answer at once while frames wait (presence came first); a few bring the edit.
    for (let polls = 0; polls < 5 && doc.getText("codemirror").toString() !== socket.text; polls++) applySync(doc, (await http.poll()).frames);
    expect(doc.getText("codemirror").toString()).toBe("ws from http");
    socket.close();
  });

  it("a reader's edit is refused with permission denied and stored nowhere; its presence is shown", async () => {
    const room = roomName("http-reader");
    const reader = await joined(room, "read");
    const answer = await reader.send([encodeSyncUpdate(edit("not allowed")), encodeAwareness([{ clientId: 7, clock: 1, state: '{"user":{"name":"Rita"}}' }])]);
    expect(answer.close).toBeNull();
    const polled = await reader.poll();
    expect(polled.frames.some((frame) => frame[0] === MessageType.auth)).toBe(true);
    expect(polled.frames.some((frame) => frame[0] === MessageType.awareness)).toBe(true);
    const socket = await TestClient.connect(room, { token: await token(room) });
    expect(socket.text).toBe("");
    socket.close();
  });

  it("past the message rate the session is closed with 1008, as a socket would be", async () => {
    const room = roomName("http-rate");
    const client = await joined(room);
    const flood = Array.from({ length: 1_000 }, (_, clock) => encodeAwareness([{ clientId: 9, clock: clock + 1, state: `{"n":${clock}}` }]));
    const answer = await client.send(flood);
    expect(answer.close?.code).toBe(CloseCode.policyViolation);
    // The close is what the session answers from then on.
    expect((await client.poll()).close?.code).toBe(CloseCode.policyViolation);
  });

  it("polls that cut held polls short pay a request each: a flood is closed 1008", async () => {
    const room = roomName("http-poll-flood");
    const client = await joined(room, "write", "flood");
    await client.poll();
    // 450 polls in one go, inside the object (through the Worker their arrival rate would be the
    // machine's, not the test's): each holds, and the next one answers it empty.
    await runInDurableObject(roomStub(room), (instance) => {
      const sessions = (instance as unknown as { http: HttpSessions }).http;
      for (let poll = 0; poll < 450; poll++) sessions.poll(client.session!, "flood", client.cursor);
    });
    expect((await client.poll()).close?.code).toBe(CloseCode.policyViolation);
  });

  it("a session answers only the token it was opened with", async () => {
    const room = roomName("http-owner");
    const client = await joined(room, "write", "owner-a");
    const stranger = { token: await token(room, "write", { sub: "owner-b" }) };
    expect((await client.poll(0, stranger)).close?.code).toBe(CloseCode.policyViolation);
    expect((await client.send([encodeSyncUpdate(edit("intruder"))], undefined, stranger)).close?.code).toBe(CloseCode.policyViolation);
    // The owner's session is untouched.
    expect((await client.send([encodeSyncUpdate(edit("owner"))])).close).toBeNull();
  });

  it("a batch sent twice (a retried request) is applied once", async () => {
    const room = roomName("http-retry");
    const client = await joined(room);
    const first = await client.send([encodeSyncUpdate(edit("once"))], 3);
    const again = await client.send([encodeSyncUpdate(edit("once"))], 3);
    expect([first.close, again.close]).toEqual([null, null]);
    const socket = await TestClient.connect(room, { token: await token(room) });
    expect(socket.text).toBe("once");
    socket.close();
  });

  it("a full room answers the next session's open with 1013 (MAX_SOCKETS_PER_ROOM=3)", async () => {
    const room = roomName("http-full");
    const answers = [];
    for (let i = 0; i < 5; i++) answers.push((await HttpTestClient.open(room, { token: await token(room) })).answer);
    const refused = answers.filter((answer) => answer.close !== null);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((answer) => answer.close?.code === CloseCode.tryAgainLater && /room full/.test(answer.close.reason))).toBe(true);
    expect(answers.slice(0, 3).every((answer) => answer.close === null)).toBe(true);
  });

  it("leaving removes the session's presence for everyone at once", async () => {
    const room = roomName("http-leave");
    const client = await joined(room);
    await client.send([encodeAwareness([{ clientId: 11, clock: 1, state: '{"user":{"name":"Lea"}}' }])]);
    const socket = await TestClient.connect(room, { token: await token(room) });
    await expect.poll(() => socket.presence().has(11), { timeout: 5_000 }).toBe(true);
    expect(await client.leave()).toBe(204);
    await expect.poll(() => socket.presence().has(11), { timeout: 5_000 }).toBe(false);
    expect((await client.poll()).close?.code).toBe(CloseCode.normal);
    socket.close();
  });

  it("once its token expires, a session's requests are refused 401 at the door (the client reads 4401)", async () => {
    const room = roomName("http-expiry");
    const { client } = await HttpTestClient.open(room, { token: await token(room, "write", { ttlSeconds: 1 }) });
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const answer = await client.send([encodeSyncStep1(EMPTY_STATE_VECTOR)]);
    expect(answer.status).toBe(401);
    expect(answer.text).toMatch(/token expired/);
  });

  it("after the room left memory, a session is unknown (1012); a new one joins and has the document", async () => {
    const room = roomName("http-evicted");
    const client = await joined(room);
    await client.send([encodeSyncUpdate(edit("kept"))]);
    await evictDurableObject(roomStub(room));
    const answer = await client.poll();
    expect(answer.close?.code).toBe(CloseCode.serviceRestart);
    const fresh = await joined(room);
    const doc = new Y.Doc();
    expect((await fresh.send([encodeSyncStep1(Y.encodeStateVector(doc))])).close).toBeNull();
    applySync(doc, (await fresh.poll()).frames);
    expect(doc.getText("codemirror").toString()).toBe("kept");
  });
});
