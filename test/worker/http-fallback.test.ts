/**
 * The HTTP fallback's own bounds, inside workerd (open deployment, rates lifted): what sessions
 * that never poll may make the room keep, and a body the room cannot read.
 */
import { SELF } from "cloudflare:test";
import * as Y from "yjs";
import { describe, expect, it } from "vitest";
import { CloseCode, EMPTY_STATE_VECTOR, EMPTY_UPDATE, encodeSyncStep1, encodeSyncStep2, encodeSyncUpdate } from "../../worker/protocol";
import { HTTP_QUEUED_MAX_BYTES } from "../../worker/room/http-sessions";
import { TestClient, asBody, roomName } from "./client";
import { HttpTestClient } from "./http-client";

async function writeText(room: string, text: string): Promise<void> {
  const doc = new Y.Doc();
  doc.getText("codemirror").insert(0, text);
  const response = await SELF.fetch(`http://edgedoc.test/api/docs/${room}/update`, { method: "POST", body: asBody(Y.encodeStateAsUpdate(doc)) });
  expect(response.status).toBe(200);
}

/** A client's join, as the provider sends it: its sync step 1 (of an empty document) and step 2 (it has nothing), so the room's join timeout does not close it. */
const JOIN = [encodeSyncStep1(EMPTY_STATE_VECTOR), encodeSyncStep2(EMPTY_UPDATE)];

describe("the HTTP fallback's bounds", () => {
  it("sessions that ask for a 10 MB document and never poll pin at most 32 MiB: the oldest of them are closed 1013 for the next, and a poll frees room", async () => {
    const room = roomName("http-pinned");
    await writeText(room, "z".repeat(10_000_000));
    const sessions: HttpTestClient[] = [];
    for (let i = 0; i < 5; i++) {
      const { client } = await HttpTestClient.open(room);
      sessions.push(client);
      // Its join: the answer is the whole document, queued for a poll that never comes.
      expect((await client.send(JOIN)).close).toBeNull();
    }
    // Each answer that did not fit closed the session holding the most: the oldest, as all hold as much.
    const held = Math.floor(HTTP_QUEUED_MAX_BYTES / 10_000_000);
    const closes: (number | null)[] = [];
    for (const session of sessions.slice(0, 5 - held)) closes.push((await session.poll()).close?.code ?? null);
    expect(closes).toEqual(Array<number>(5 - held).fill(CloseCode.tryAgainLater));
    // A WebSocket client is not disturbed meanwhile.
    const socket = await TestClient.connect(room);
    expect(socket.text.length).toBe(10_000_000);
    socket.close();
    // The first session still open reads its answer: the next one fits again, and nobody is closed for it.
    const [reader, ...others] = sessions.slice(5 - held);
    const first = await reader!.poll();
    expect(first.close).toBeNull();
    expect(first.frames.some((frame) => frame.byteLength > 10_000_000)).toBe(true);
    const acknowledged = reader!.poll();
    const { client } = await HttpTestClient.open(room);
    expect((await client.send(JOIN)).close).toBeNull();
    // An edit answers the poll held meanwhile.
    await writeText(room, "!");
    expect((await acknowledged).close).toBeNull();
    for (const other of [...others, client]) expect((await other.poll()).close).toBeNull();
  });

  it("past 32 MiB the readers holding the most are closed 1013, never a session that polls, nor a new one", async () => {
    const room = roomName("http-hoarders");
    const documentChars = 6_600_000;
    await writeText(room, "h".repeat(documentChars));
    // An honest session joins first (so relays reach it before the others) and reads everything.
    const honest = (await HttpTestClient.open(room)).client;
    expect((await honest.send(JOIN)).close).toBeNull();
    expect((await honest.poll()).frames.some((frame) => frame.byteLength > documentChars)).toBe(true);
    // Its next poll acknowledges that and waits for what comes next, as the client's does.
    let honestPoll = honest.poll();
    // Five readers ask for the document and never poll: 33 MB of answers, just under the bound.
    const hoarders: HttpTestClient[] = [];
    for (let i = 0; i < Math.floor(HTTP_QUEUED_MAX_BYTES / documentChars); i++) {
      const { client } = await HttpTestClient.open(room);
      hoarders.push(client);
      expect((await client.send(JOIN)).close).toBeNull();
    }
    // An edit the queues cannot also hold (each reader may hold 1 MiB beyond its answer), relayed to the honest session first.
    const editChars = 800_000;
    await writeText(room, "e".repeat(editChars));
    const edited = await honestPoll;
    expect(edited.close).toBeNull();
    expect(edited.frames.some((frame) => frame.byteLength > editChars)).toBe(true);
    honestPoll = honest.poll();
    // A new client's answer (the whole document) does not fit either.
    const newcomer = (await HttpTestClient.open(room)).client;
    expect((await newcomer.send(JOIN)).close).toBeNull();
    const joined = await newcomer.poll();
    expect(joined.close).toBeNull();
    expect(joined.frames.some((frame) => frame.byteLength > documentChars + editChars)).toBe(true);
    // A small edit later still reaches the honest session.
    await writeText(room, "50 bytes of an ordinary edit, relayed to everyone.");
    const small = await honestPoll;
    expect(small.close).toBeNull();
    expect(small.frames.length).toBeGreaterThan(0);
    // Two readers made room, one for each answer that did not fit; the others still hold theirs.
    const closes: (number | null)[] = [];
    for (const hoarder of hoarders) closes.push((await hoarder.poll()).close?.code ?? null);
    expect(closes).toEqual([CloseCode.tryAgainLater, CloseCode.tryAgainLater, null, null, null]);
  });

  it("polling again and again for a 2 MB answer already sent pays its bytes: the session is closed 1008, as a socket asking too much", async () => {
    const room = roomName("http-resend");
    await writeText(room, "r".repeat(2_000_000));
    const { client } = await HttpTestClient.open(room);
    expect((await client.send([encodeSyncStep1(EMPTY_STATE_VECTOR)])).close).toBeNull();
    const closes: (number | null)[] = [];
    // Each poll names the open answer's cursor, so the document comes again and again.
    for (let poll = 0; poll < 20 && closes.at(-1) !== CloseCode.policyViolation; poll++) {
      const answer = await client.poll(1);
      closes.push(answer.close?.code ?? null);
    }
    expect(closes.at(-1)).toBe(CloseCode.policyViolation);
    // The first answer and a couple of resends fit the budget (twice the first answer plus 1 MiB); not 20.
    expect(closes.length).toBeLessThanOrEqual(5);
  });

  it("a session that stops polling is closed 1013 once 1 MiB of relays wait for it; one that polls is not", async () => {
    const room = roomName("http-behind");
    const stalled = (await HttpTestClient.open(room)).client;
    const polling = (await HttpTestClient.open(room)).client;
    for (const session of [stalled, polling]) expect((await session.send([encodeSyncStep1(EMPTY_STATE_VECTOR)])).close).toBeNull();
    // 20 edits of 100 KB from the API, each relayed to both sessions; one of them reads as they come.
    for (let i = 0; i < 20; i++) {
      await writeText(room, String(i % 10).repeat(100_000));
      const polled = await polling.poll();
      expect(polled.close).toBeNull();
    }
    const answer = await stalled.poll(0);
    expect(answer.close).toEqual({ code: CloseCode.tryAgainLater, reason: "fell behind: join again to catch up" });
  });

  it("DELETE answers a held poll with 4410 and stores nothing the session sends after it", async () => {
    const room = roomName("http-deleted");
    await writeText(room, "to be deleted");
    const { client } = await HttpTestClient.open(room);
    expect((await client.send([encodeSyncStep1(EMPTY_STATE_VECTOR)])).close).toBeNull();
    await client.poll();
    // Nothing to answer: this poll is held until the delete.
    const held = client.poll();
    const deleted = await SELF.fetch(`http://edgedoc.test/api/docs/${room}`, { method: "DELETE" });
    expect(deleted.status).toBe(204);
    expect((await held).close?.code).toBe(CloseCode.documentDeleted);
    const doc = new Y.Doc();
    doc.getText("codemirror").insert(0, "after the delete");
    expect((await client.send([encodeSyncUpdate(Y.encodeStateAsUpdate(doc))])).close?.code).toBe(CloseCode.documentDeleted);
    const text = await SELF.fetch(`http://edgedoc.test/api/docs/${room}/text`);
    expect(await text.text()).toBe("");
  });

  it("a body whose framing breaks closes the session with 1002 after the frames before it", async () => {
    const room = roomName("http-malformed");
    const { client } = await HttpTestClient.open(room);
    const body = new Uint8Array([2, 0, 0, 200]); // one frame (sync step 1 of an empty state), then a length past the end
    const response = await SELF.fetch(`http://edgedoc.test/sync/${room}?session=${client.session}&seq=1`, {
      method: "POST",
      body: new Blob([body], { type: "application/octet-stream" }),
    });
    const answer = await response.arrayBuffer();
    expect(response.status).toBe(200);
    expect((await client.poll()).close?.code).toBe(CloseCode.protocolError);
    expect(answer.byteLength).toBeGreaterThan(1);
  });
});
