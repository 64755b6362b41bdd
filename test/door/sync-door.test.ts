/**
 * The HTTP fallback's door with the shipped limits (project workerd-door): bodies for sessions
 * nobody opened are answered unread, every request of a session is counted, and a WebSocket
 * upgrade through `/sync` is refused, so it cannot slip past the upgrade limits.
 */
import { SELF, env, listDurableObjectIds } from "cloudflare:test";
import * as encoding from "lib0/encoding";
import { describe, expect, it } from "vitest";
import { CloseCode } from "../../worker/protocol";
import { RETRY_AFTER_SECONDS } from "../../worker/rate-limit";
import { SESSION_HEADER, decodeAnswer } from "../../worker/room/http-wire";
import { signToken } from "../../worker/tokens";
import { roomName, upgradeRequest } from "../worker/client";

const WINDOW_MS = 10_000;
/** wrangler.toml: SYNC_ADDRESS_LIMITER's, SYNC_SUBJECT_LIMITER's and UPGRADE_ADDRESS_LIMITER's limits per 10 s. */
const SESSION_REQUESTS_PER_ADDRESS = 1000;
const SESSION_REQUESTS_PER_SUBJECT = 200;
const UPGRADES_PER_ADDRESS = 100;
const MIB = 1024 * 1024;

/** Waits, if needed, until the current window has at least `neededMs` left (local counts start over at each 10 s boundary). */
async function insideOneWindow(neededMs = 8_000): Promise<void> {
  const left = WINDOW_MS - (Date.now() % WINDOW_MS);
  if (left < neededMs) await new Promise((resolve) => setTimeout(resolve, left + 100));
}

let addresses = 0;
/** A client address no other test uses (TEST-NET-1; door.test.ts takes TEST-NET-3, cors.test.ts TEST-NET-2). */
const newAddress = () => `192.0.2.${++addresses}`;

const token = (doc: string, sub?: string) =>
  signToken({ doc, mode: "write", exp: Math.floor(Date.now() / 1000) + 600, ...(sub === undefined ? {} : { sub }) }, env.AUTH_SECRET!);

/** A session id no room ever gave out. */
const nobodys = () => crypto.randomUUID().replaceAll("-", "");

/**
 * A body of `bytes` bytes (`head`, then zeros) streamed in 64 KiB chunks, produced only as the
 * server pulls them (no Content-Length, as a chunked upload): `produced()` says how far the
 * server read.
 */
function streamedBody(bytes: number, head = new Uint8Array(0)): { body: ReadableStream<Uint8Array>; produced: () => number } {
  const CHUNK = 64 * 1024;
  let produced = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (produced >= bytes) return controller.close();
      const chunk = new Uint8Array(Math.min(CHUNK, bytes - produced));
      if (produced === 0) chunk.set(head);
      produced += chunk.length;
      controller.enqueue(chunk);
    },
  });
  return { body, produced: () => produced };
}

function statusCounts(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

describe("bodies for sessions nobody opened", () => {
  it("8 at once, 16 MiB each: answered 'session unknown' (1012) with at most a small prefix of each read", async () => {
    const room = roomName("unread");
    const address = newAddress();
    const write = await token(room);
    const bodies = Array.from({ length: 8 }, () => streamedBody(16 * MIB));
    const answers = await Promise.all(
      bodies.map(async ({ body }) => {
        const response = await SELF.fetch(`http://edgedoc.test/sync/${room}?session=${nobodys()}&seq=1&token=${write}`, {
          method: "POST",
          headers: { "Content-Type": "application/octet-stream", "CF-Connecting-IP": address },
          body,
          signal: AbortSignal.timeout(15_000),
        });
        expect(response.status).toBe(200);
        return decodeAnswer(new Uint8Array(await response.arrayBuffer()));
      }),
    );
    for (const answer of answers) expect(answer.close).toEqual({ code: CloseCode.serviceRestart, reason: "session unknown: join again" });
    // What the runtime buffered ahead of a reader, not the body: 16 MiB each before.
    for (const { produced } of bodies) expect(produced()).toBeLessThan(MIB);
  });

  it("an open session's chunked body declaring a frame over the 32 MiB limit: closed 1009, the frame never read", async () => {
    const room = roomName("bounded");
    const write = await token(room);
    const headers = { "Content-Type": "application/octet-stream", "CF-Connecting-IP": newAddress() };
    const opened = await SELF.fetch(`http://edgedoc.test/sync/${room}?token=${write}`, { method: "POST", headers });
    const session = opened.headers.get(SESSION_HEADER)!;
    await opened.arrayBuffer();
    // The length prefix of one 33 MiB frame (lib0 varUint), then the frame's bytes: 40 MiB in all.
    const prefixEncoder = encoding.createEncoder();
    encoding.writeVarUint(prefixEncoder, 33 * MIB);
    const prefix = encoding.toUint8Array(prefixEncoder);
    const { body, produced } = streamedBody(40 * MIB, prefix);
    const response = await SELF.fetch(`http://edgedoc.test/sync/${room}?session=${session}&seq=1&token=${write}`, {
      method: "POST",
      headers,
      body,
      signal: AbortSignal.timeout(15_000),
    });
    expect(response.status).toBe(200);
    const answer = decodeAnswer(new Uint8Array(await response.arrayBuffer()));
    expect(answer.close).toEqual({ code: CloseCode.messageTooBig, reason: `frame too large: over ${32 * MIB} bytes` });
    expect(produced()).toBeLessThan(MIB);
  });
});

describe("every request of a session is counted at the door", () => {
  it("polls, posts and leaves past the address's limit get 429 with Retry-After, before any token work; another address passes", async () => {
    await insideOneWindow();
    const [room, address] = [roomName("sync-flood"), newAddress()];
    const kinds: RequestInit[] = [{ method: "GET" }, { method: "POST", headers: { "Content-Type": "application/octet-stream" } }, { method: "DELETE" }];
    const send = async (kind: RequestInit, query: string): Promise<number> => {
      const response = await SELF.fetch(`http://edgedoc.test/sync/${room}?session=${nobodys()}${query}`, {
        ...kind,
        headers: { ...(kind.headers as Record<string, string>), "CF-Connecting-IP": address },
      });
      await response.body?.cancel();
      return response.status;
    };
    // Without a token: 401 until the address's limit, then 429, so the address is counted first.
    const statuses = await Promise.all(
      Array.from({ length: SESSION_REQUESTS_PER_ADDRESS + 30 }, (_, i) => send(kinds[i % 3]!, i % 3 === 0 ? "&cursor=0" : i % 3 === 1 ? "&seq=1" : "")),
    );
    expect(statusCounts(statuses)).toEqual({ 401: SESSION_REQUESTS_PER_ADDRESS, 429: 30 });

    const refused = await SELF.fetch(`http://edgedoc.test/sync/${room}?session=${nobodys()}&cursor=0&token=${await token(room)}`, { headers: { "CF-Connecting-IP": address } });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("Retry-After")).toBe(String(RETRY_AFTER_SECONDS));
    expect(await refused.text()).toBe("rate limited: too many requests from this address; retry after 10 s");

    const elsewhere = await SELF.fetch(`http://edgedoc.test/sync/${room}?session=${nobodys()}&cursor=0&token=${await token(room)}`, { headers: { "CF-Connecting-IP": newAddress() } });
    expect(elsewhere.status).toBe(200);
    await elsewhere.arrayBuffer();
  });

  it("polls with a subject past the subject's limit get 429 from any address; opens are counted apart, as upgrades", async () => {
    await insideOneWindow();
    const room = roomName("sync-subject");
    const ada = await token(room, `ada-${crypto.randomUUID()}`);
    const poll = async (address: string): Promise<number> => {
      const response = await SELF.fetch(`http://edgedoc.test/sync/${room}?session=${nobodys()}&cursor=0&token=${ada}`, { headers: { "CF-Connecting-IP": address } });
      await response.body?.cancel();
      return response.status;
    };
    const address = newAddress();
    const statuses = await Promise.all(Array.from({ length: SESSION_REQUESTS_PER_SUBJECT + 5 }, () => poll(address)));
    expect(statusCounts(statuses)).toEqual({ 200: SESSION_REQUESTS_PER_SUBJECT, 429: 5 });
    expect(await poll(newAddress())).toBe(429);
    const opened = await SELF.fetch(`http://edgedoc.test/sync/${room}?token=${ada}`, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream", "CF-Connecting-IP": newAddress() },
    });
    expect(opened.status).toBe(200);
    expect(opened.headers.get(SESSION_HEADER)).toMatch(/^[0-9a-f]{32}$/);
    await opened.arrayBuffer();
  });
});

describe("a WebSocket upgrade on /sync", () => {
  it("is refused 400 without waking a room, however many: the upgrade limits cannot be sidestepped", async () => {
    await insideOneWindow();
    const [room, address] = [roomName("sync-upgrade"), newAddress()];
    const write = await token(room);
    const before = (await listDurableObjectIds(env.ROOM)).length;
    const statuses = await Promise.all(
      Array.from({ length: UPGRADES_PER_ADDRESS + 50 }, async () => {
        const request = upgradeRequest(room, { token: write, headers: { "CF-Connecting-IP": address } });
        const response = await SELF.fetch(request.url.replace("/ws/", "/sync/"), { headers: request.headers });
        response.webSocket?.accept();
        response.webSocket?.close(1000, "test done");
        await response.body?.cancel();
        return response.status;
      }),
    );
    expect(statusCounts(statuses)).toEqual({ 400: UPGRADES_PER_ADDRESS + 50 });
    expect(await listDurableObjectIds(env.ROOM)).toHaveLength(before);
  });
});
