/**
 * The HTTP fallback's own bounds, inside workerd (open deployment, rates lifted): what sessions
 * that never poll may make the room keep, and a body the room cannot read.
 */
import { SELF } from "cloudflare:test";
import * as Y from "yjs";
import { describe, expect, it } from "vitest";
import { CloseCode, EMPTY_STATE_VECTOR, encodeSyncStep1, encodeSyncUpdate } from "../../worker/protocol";
import { HTTP_QUEUED_MAX_BYTES } from "../../worker/room/http-sessions";
import { TestClient, asBody, roomName } from "./client";
import { HttpTestClient } from "./http-client";

async function writeText(room: string, text: string): Promise<void> {
  const doc = new Y.Doc();
  doc.getText("codemirror").insert(0, text);
  const response = await SELF.fetch(`http://edgedoc.test/api/docs/${room}/update`, { method: "POST", body: asBody(Y.encodeStateAsUpdate(doc)) });
  expect(response.status).toBe(200);
}

describe("the HTTP fallback's bounds", () => {
  it("sessions that ask for a 10 MB document and never poll pin at most 32 MiB; the next is closed 1013, and a poll frees room", async () => {
    const room = roomName("http-pinned");
    await writeText(room, "z".repeat(10_000_000));
    const closes: (number | null)[] = [];
    const sessions: HttpTestClient[] = [];
    for (let i = 0; i < 5; i++) {
      const { client } = await HttpTestClient.open(room);
      sessions.push(client);
      // Its sync step 1 of an empty document: the answer is the whole document, queued for a poll that never comes.
      closes.push((await client.send([encodeSyncStep1(EMPTY_STATE_VECTOR)])).close?.code ?? null);
    }
    const held = Math.floor(HTTP_QUEUED_MAX_BYTES / 10_000_000);
    expect(closes).toEqual([...Array<null>(held).fill(null), ...Array<number>(5 - held).fill(CloseCode.tryAgainLater)]);
    // A WebSocket client is not disturbed meanwhile.
    const socket = await TestClient.connect(room);
    expect(socket.text.length).toBe(10_000_000);
    socket.close();
    // The first session reads its answer: the next one fits again.
    const first = await sessions[0]!.poll();
    expect(first.frames.some((frame) => frame.byteLength > 10_000_000)).toBe(true);
    await sessions[0]!.poll();
    const { client } = await HttpTestClient.open(room);
    expect((await client.send([encodeSyncStep1(EMPTY_STATE_VECTOR)])).close).toBeNull();
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
