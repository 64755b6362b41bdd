/**
 * The HTTP fallback's door on a guarded deployment (vitest.config.ts: AUTH_SECRET, ALLOWED_ORIGINS
 * = https://edgedoc.example, 64 KiB frames): CORS for pages on the allowed origin, as the API
 * has, with the session header readable; a client's full batch taken at the door however
 * many frames it holds; and a post read no further than its session's byte rate allows.
 */
import { SELF, env, listDurableObjectIds } from "cloudflare:test";
import * as Y from "yjs";
import { describe, expect, it } from "vitest";
import { CloseCode, EMPTY_STATE_VECTOR, EMPTY_UPDATE, encodeSyncStep1, encodeSyncStep2, encodeSyncUpdate } from "../../worker/protocol";
import { MAX_BATCH_BYTES, SESSION_HEADER, decodeAnswer, encodeFrames, takeBatch } from "../../worker/room/http-wire";
import { signToken } from "../../worker/tokens";
import { TestClient, roomName } from "../worker/client";
import { HttpTestClient } from "../worker/http-client";

const ALLOWED = "https://edgedoc.example";
const ELSEWHERE = "https://elsewhere.example";

const token = (doc: string) => signToken({ doc, mode: "write", exp: Math.floor(Date.now() / 1000) + 600 }, env.AUTH_SECRET!);

/** The comma-separated list in a header, as a set of lower-case names. */
const listed = (response: Response, header: string) =>
  new Set((response.headers.get(header) ?? "").split(",").map((name) => name.trim().toLowerCase()).filter(Boolean));

/** The preflight Chromium sends before `EdgedocProvider`'s `method` with a binary body. */
const preflight = (room: string, origin: string, method: string) =>
  SELF.fetch(`http://edgedoc.test/sync/${room}`, {
    method: "OPTIONS",
    headers: { Origin: origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": "content-type" },
  });

describe("CORS on /sync", () => {
  it("preflights from the allowed origin: 204 for open, poll, post and leave, with no token and no room", async () => {
    const room = roomName("sync-preflight");
    const before = (await listDurableObjectIds(env.ROOM)).length;
    for (const method of ["POST", "GET", "DELETE"]) {
      const response = await preflight(room, ALLOWED, method);
      expect(response.status).toBe(204);
      expect(response.headers.get("Access-Control-Allow-Origin")).toBe(ALLOWED);
      expect(listed(response, "Access-Control-Allow-Methods")).toEqual(new Set(["get", "post", "delete"]));
      expect(listed(response, "Access-Control-Allow-Headers")).toContain("content-type");
    }
    expect((await preflight(room, ELSEWHERE, "POST")).headers.get("Access-Control-Allow-Origin")).toBeNull();
    expect(await listDurableObjectIds(env.ROOM)).toHaveLength(before);
  });

  it("a session opened from the allowed origin: its answer is readable and exposes Edgedoc-Session; refusals are readable too", async () => {
    const room = roomName("sync-cors");
    const { client, answer } = await HttpTestClient.open(room, { token: await token(room), headers: { Origin: ALLOWED } });
    expect(answer.status).toBe(200);
    expect(client.session).toMatch(/^[0-9a-f]{32}$/);
    const opened = await SELF.fetch(`http://edgedoc.test/sync/${room}?token=${await token(room)}`, {
      method: "POST",
      headers: { Origin: ALLOWED, "Content-Type": "application/octet-stream" },
    });
    expect(opened.headers.get("Access-Control-Allow-Origin")).toBe(ALLOWED);
    expect(listed(opened, "Access-Control-Expose-Headers")).toContain(SESSION_HEADER.toLowerCase());
    expect(opened.headers.get(SESSION_HEADER)).toMatch(/^[0-9a-f]{32}$/);
    await opened.arrayBuffer();

    const left = await SELF.fetch(`http://edgedoc.test/sync/${room}?session=${client.session}&token=${await token(room)}`, { method: "DELETE", headers: { Origin: ALLOWED } });
    expect(left.status).toBe(204);
    expect(left.headers.get("Access-Control-Allow-Origin")).toBe(ALLOWED);

    const refused = await SELF.fetch(`http://edgedoc.test/sync/${room}`, { method: "POST", headers: { Origin: ALLOWED, "Content-Type": "application/octet-stream" } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("Access-Control-Allow-Origin")).toBe(ALLOWED);
    expect(await refused.text()).toMatch(/token required/);
  });
});

/** Edits of `text` chars each, as sync update frames from one client, then one from another client filling the sum to exactly `total` bytes. */
function framesSummingTo(total: number, chars: number): { frames: Uint8Array[]; text: number } {
  const doc = new Y.Doc();
  const frames: Uint8Array[] = [];
  doc.on("update", (update: Uint8Array) => frames.push(encodeSyncUpdate(update)));
  let bytes = 0;
  let text = 0;
  while (total - bytes > 2 * chars) {
    doc.getText("codemirror").insert(0, "b".repeat(chars));
    bytes += frames.at(-1)!.byteLength;
    text += chars;
  }
  // The last edit's size found by trying: an update's overhead is a few bytes, varying with its numbers.
  for (let fill = total - bytes - 40, tries = 0; tries < 50; tries++) {
    const filler = new Y.Doc();
    filler.getText("codemirror").insert(0, "f".repeat(fill));
    const frame = encodeSyncUpdate(Y.encodeStateAsUpdate(filler));
    if (bytes + frame.byteLength === total) return { frames: [...frames, frame], text: text + fill };
    fill += total - bytes - frame.byteLength;
  }
  throw new Error("no filler edit of the right size");
}

/** A session of `room` that has done the sync handshake (one without its step 2 is closed 4001 after 10 s): frames 1 and 2. */
async function joinedSession(room: string, write: string): Promise<HttpTestClient> {
  const { client } = await HttpTestClient.open(room, { token: write });
  expect((await client.send([encodeSyncStep1(EMPTY_STATE_VECTOR), encodeSyncStep2(EMPTY_UPDATE)])).close).toBeNull();
  return client;
}

/** Posts `frames` as HttpSocket does (batches taken off its outbox in order), each batch taken whole. */
async function postAsHttpSocket(client: HttpTestClient, frames: readonly Uint8Array[]): Promise<void> {
  const outbox = [...frames];
  for (let posts = 0; outbox.length > 0 && posts < 5; posts++) {
    const answer = await client.send(takeBatch(outbox));
    expect(answer.status).toBe(200);
    expect(answer.close).toBeNull();
  }
  expect(outbox).toEqual([]);
}

describe("a client's batch", () => {
  it("of hundreds of small frames summing to MAX_BATCH_BYTES is taken at the door, and every edit in it reaches the others", async () => {
    const room = roomName("sync-batch");
    const write = await token(room);
    const client = await joinedSession(room, write);
    const { frames, text } = framesSummingTo(MAX_BATCH_BYTES, 3_000);
    expect(frames.length).toBeGreaterThan(300);
    await postAsHttpSocket(client, frames);
    const reader = await TestClient.connect(room, { token: write });
    expect(reader.text.length).toBe(text);
    reader.close();
  });
});

describe("a session's post past its byte rate", () => {
  it("is read no further than the session may still send: closed 1008, the rest of the body unread", async () => {
    const room = roomName("sync-rate");
    const write = await token(room);
    const client = await joinedSession(room, write);
    // Spend the session's byte budget (the larger of RATE_BYTES_PER_SECOND, 1 MiB, and one 64 KiB frame).
    const { frames } = framesSummingTo(MAX_BATCH_BYTES, 3_000);
    await postAsHttpSocket(client, frames);
    const seq = 3 + frames.length;
    // At once, 8 MiB more of the same frames, produced only as the room pulls them.
    const again = encodeFrames(frames);
    let produced = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (produced >= 8 * again.length) return controller.close();
        controller.enqueue(again);
        produced += again.length;
      },
    });
    const response = await SELF.fetch(`http://edgedoc.test/sync/${room}?session=${client.session}&seq=${seq}&token=${write}`, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body,
      signal: AbortSignal.timeout(15_000),
    });
    const answer = decodeAnswer(new Uint8Array(await response.arrayBuffer()));
    expect(answer.close).toEqual({ code: CloseCode.policyViolation, reason: "rate limit exceeded: more bytes than this session may send now" });
    // Read: what refilled since (1 MiB a second) and what the runtime pulls ahead, not the 8 MiB.
    expect(produced).toBeLessThan(3 * again.length);
  });
});
