/**
 * The HTTP API under tokens, and the structured logs (which must never contain a token).
 */
import { SELF, env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import { signToken, type AccessMode } from "../../worker/tokens";
import { TestClient, asBody, roomName, runAlarmWhenSet } from "../worker/client";

function token(doc: string, mode: AccessMode): Promise<string> {
  return signToken({ doc, mode, exp: Math.floor(Date.now() / 1000) + 600, name: "Tess" }, env.AUTH_SECRET!);
}

const api = (path: string, init?: RequestInit) => SELF.fetch(`http://edgedoc.test/api/docs/${path}`, init);

describe("the HTTP API with tokens", () => {
  it("reads need a read token, writes a write token; bodies over the frame limit get 413", async () => {
    const room = roomName("apiauth");
    const [read, write] = [await token(room, "read"), await token(room, "write")];
    const missing = await api(`${room}/text`);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toEqual({ error: "unauthorized", detail: expect.stringMatching(/token required/) });

    const doc = new Y.Doc();
    doc.getText("codemirror").insert(0, "via the API");
    const update = Y.encodeStateAsUpdate(doc);
    const denied = await api(`${room}/update?token=${read}`, { method: "POST", body: asBody(update) });
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({ error: "forbidden", detail: "this token is read-only" });
    const posted = await api(`${room}/update`, { method: "POST", body: asBody(update), headers: { Authorization: `Bearer ${write}` } });
    expect(posted.status).toBe(200);
    expect(await (await api(`${room}/text?token=${read}`)).text()).toBe("via the API");

    const huge = await api(`${room}/text?token=${write}`, { method: "PUT", body: "x".repeat(65 * 1024) });
    expect(huge.status).toBe(413);
    expect(await huge.json()).toMatchObject({ error: "too_large" });
    expect(await (await api(`${room}/text?token=${read}`)).text()).toBe("via the API");

    const otherDoc = await api(`${roomName("other")}/text?token=${read}`);
    expect(otherDoc.status).toBe(403);
  });
});

describe("structured logs", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("emit one JSON line per connect, close, compaction and API call, never a token", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(String(line)));
    const room = roomName("logs");
    const writeToken = await token(room, "write");
    const client = await TestClient.connect(room, { token: writeToken });
    client.insert(0, "logged");
    let stored = "";
    const deadline = Date.now() + 5_000;
    while (stored !== "logged" && Date.now() < deadline) stored = await (await api(`${room}/text?token=${writeToken}`)).text();
    expect(stored).toBe("logged");
    client.close();
    const stub = env.ROOM.get(env.ROOM.idFromName(room));
    await runAlarmWhenSet(stub, "no idle alarm");

    const events = lines.map((line) => JSON.parse(line) as Record<string, unknown>).filter((event) => event.room === room);
    const find = (name: string) => events.find((event) => event.event === name);
    expect(find("connect")).toMatchObject({ mode: "write", user: "Tess" });
    expect(find("close")).toMatchObject({ code: 1000, reason: "test done", durationMs: expect.any(Number), bytesIn: expect.any(Number), bytesOut: expect.any(Number) });
    expect((find("close")!.bytesIn as number) > 0).toBe(true);
    expect(find("compaction")).toMatchObject({ ms: expect.any(Number), bytesBefore: expect.any(Number), bytesAfter: expect.any(Number) });
    expect(find("api")).toMatchObject({ method: "GET", status: 200, path: `/api/docs/${room}/text` });
    expect(lines.some((line) => line.includes(writeToken) || line.includes(writeToken.split(".")[2]!))).toBe(false);
  });
});
