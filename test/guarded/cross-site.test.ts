/**
 * Cross-site writes in a guarded deployment (vitest.config.ts: AUTH_SECRET, and ALLOWED_ORIGINS
 * = https://edgedoc.example): a page on the listed origin changes documents with a write token,
 * as CORS lets it; a page anywhere else cannot, not even with a valid write token in hand.
 */
import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { signToken, type AccessMode } from "../../worker/tokens";
import { roomName } from "../worker/client";

const LISTED = "https://edgedoc.example";
const FOREIGN = "https://evil.example";

const token = (doc: string, mode: AccessMode) => signToken({ doc, mode, exp: Math.floor(Date.now() / 1000) + 600 }, env.AUTH_SECRET!);
const call = (path: string, init: RequestInit & { headers: Record<string, string> }) => SELF.fetch(`http://edgedoc.test/api/docs/${path}`, init);

describe("state-changing routes with an Origin", () => {
  it("from the listed origin, a write token saves, restores, replaces, deletes", async () => {
    const room = roomName("listed-writes");
    const auth = { Authorization: `Bearer ${await token(room, "write")}`, Origin: LISTED };
    expect((await call(`${room}/text`, { method: "PUT", headers: { ...auth, "Content-Type": "text/plain" }, body: "first" })).status).toBe(200);
    const saved = await call(`${room}/versions`, { method: "POST", headers: { ...auth, "Content-Type": "application/json" }, body: JSON.stringify({ name: "first" }) });
    expect(saved.status).toBe(201);
    expect(saved.headers.get("Access-Control-Allow-Origin")).toBe(LISTED);
    const { id } = (await saved.json()) as { id: number };
    expect((await call(`${room}/text`, { method: "PUT", headers: { ...auth, "Content-Type": "text/plain" }, body: "second" })).status).toBe(200);
    expect(await (await call(`${room}/versions/${id}/restore`, { method: "POST", headers: auth })).json()).toEqual({ changed: true });
    expect(await (await call(`${room}/text`, { headers: auth })).text()).toBe("first");
    expect((await call(`${room}/versions/${id}`, { method: "DELETE", headers: auth })).status).toBe(204);
    expect((await call(room, { method: "DELETE", headers: auth })).status).toBe(204);
    expect(await (await call(room, { headers: auth })).json()).toMatchObject({ exists: false });
  });

  it("from another origin, a write token changes nothing: 403, readable by nobody", async () => {
    const room = roomName("foreign-writes");
    const write = `Bearer ${await token(room, "write")}`;
    expect((await call(`${room}/text`, { method: "PUT", headers: { Authorization: write, "Content-Type": "text/plain" }, body: "kept" })).status).toBe(200);
    const foreign = { Authorization: write, Origin: FOREIGN };
    const attempts: [path: string, init: RequestInit & { headers: Record<string, string> }][] = [
      [`${room}/text`, { method: "PUT", headers: { ...foreign, "Content-Type": "text/plain" }, body: "replaced" }],
      [`${room}/versions`, { method: "POST", headers: { ...foreign, "Content-Type": "application/json" }, body: JSON.stringify({ name: "x" }) }],
      [room, { method: "DELETE", headers: foreign }],
    ];
    for (const [path, init] of attempts) {
      const response = await call(path, init);
      expect(response.status, init.method).toBe(403);
      expect(response.headers.get("Access-Control-Allow-Origin")).toBeNull();
      expect(await response.json()).toEqual({ error: "forbidden", detail: expect.stringMatching(/^cross-site write refused: origin https:\/\/evil\.example/) });
    }
    expect(await (await call(`${room}/text`, { headers: { Authorization: write } })).text()).toBe("kept");
    expect(await (await call(`${room}/versions`, { headers: { Authorization: write } })).json()).toEqual([]);
  });

  it("an admin token writes like a write token", async () => {
    const room = roomName("admin-writes");
    const admin = { Authorization: `Bearer ${await token(room, "admin")}` };
    expect((await call(`${room}/text`, { method: "PUT", headers: { ...admin, "Content-Type": "text/plain" }, body: "by the operator" })).status).toBe(200);
    expect(await (await call(`${room}/text`, { headers: admin })).text()).toBe("by the operator");
  });
});
