/**
 * Document access, the one middleware in front of `/ws/:name` and `/api/docs/:name/*`: each
 * refusal in each app's format, the Bearer scheme in any case, and RFC 6750's challenges.
 */
import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { signToken, type AccessMode } from "../../worker/tokens";
import { roomName } from "../worker/client";

const token = (doc: string, mode: AccessMode = "read", ttlSeconds = 600) =>
  signToken({ doc, mode, exp: Math.floor(Date.now() / 1000) + ttlSeconds }, env.AUTH_SECRET!);
const ws = (room: string, headers: Record<string, string> = {}) =>
  SELF.fetch(`http://edgedoc.test/ws/${room}`, { headers: { Upgrade: "websocket", ...headers } });
const api = (path: string, headers: Record<string, string> = {}) => SELF.fetch(`http://edgedoc.test/api/docs/${path}`, { headers });

describe("document access", () => {
  it("reads the Bearer scheme in any case (RFC 7235), on both routes", async () => {
    const room = roomName("bearer");
    const read = await token(room);
    for (const scheme of ["Bearer", "bearer", "bEaReR", "BEARER"]) {
      expect((await api(`${room}/text`, { Authorization: `${scheme} ${read}` })).status).toBe(200);
      const upgrade = await ws(room, { Authorization: `${scheme} ${read}` });
      expect(upgrade.status).toBe(101);
      upgrade.webSocket!.accept();
      upgrade.webSocket!.close(1000, "done");
    }
    expect((await api(`${room}/text`, { Authorization: `Basic ${read}` })).status).toBe(401);
  });

  it("answers every 401 with a Bearer challenge: no error code for a missing token, invalid_token for a bad one", async () => {
    const room = roomName("challenge");
    const missing = await api(`${room}/text`);
    expect(missing.status).toBe(401);
    expect(missing.headers.get("WWW-Authenticate")).toBe('Bearer realm="edgedoc"');
    expect(await missing.json()).toEqual({ error: "unauthorized", detail: expect.stringMatching(/token required/) });

    const expired = await ws(room, { Authorization: `Bearer ${await token(room, "read", -60)}` });
    expect(expired.status).toBe(401);
    expect(expired.headers.get("WWW-Authenticate")).toBe('Bearer realm="edgedoc", error="invalid_token", error_description="token expired"');
    expect(await expired.text()).toBe("token expired");

    const forged = await api(`${room}/text`, { Authorization: "Bearer not.a.jwt" });
    expect(forged.headers.get("WWW-Authenticate")).toMatch(/^Bearer realm="edgedoc", error="invalid_token"/);
  });

  it("renders refusals as text on /ws and as JSON on the API, with no challenge on a 403", async () => {
    const room = roomName("formats");
    const otherDocument = await token(`${room}-other`);
    const wsRefusal = await ws(room, { Authorization: `Bearer ${otherDocument}` });
    expect(wsRefusal.status).toBe(403);
    expect(wsRefusal.headers.get("WWW-Authenticate")).toBeNull();
    expect(await wsRefusal.text()).toBe("token is for another document");
    const apiRefusal = await api(`${room}`, { Authorization: `Bearer ${otherDocument}` });
    expect(apiRefusal.status).toBe(403);
    expect(await apiRefusal.json()).toEqual({ error: "forbidden", detail: "token is for another document" });

    const badName = await api("-bad", { Authorization: `Bearer ${otherDocument}` });
    expect(badName.status).toBe(400);
    expect(await badName.json()).toEqual({ error: "invalid_name", detail: expect.stringMatching(/^invalid document name: use /) });
    const readOnly = await SELF.fetch(`http://edgedoc.test/api/docs/${room}/text`, { method: "PUT", body: "x", headers: { Authorization: `Bearer ${await token(room)}` } });
    expect(readOnly.status).toBe(403);
    expect(await readOnly.json()).toEqual({ error: "forbidden", detail: "this token is read-only" });
  });
});
