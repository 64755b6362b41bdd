/**
 * Version history behind tokens: a read token lists and previews versions but cannot save or
 * restore them; versions credit writers by their token's name.
 */
import { SELF, env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { VersionInfo } from "../../worker/documents";
import { signToken, type AccessMode } from "../../worker/tokens";
import { roomName } from "../worker/client";

const token = (doc: string, mode: AccessMode, name?: string) =>
  signToken({ doc, mode, exp: Math.floor(Date.now() / 1000) + 600, ...(name ? { name } : {}) }, env.AUTH_SECRET!);
const api = (path: string, bearer: string, init: RequestInit = {}) =>
  SELF.fetch(`http://edgedoc.test/api/docs/${path}`, { ...init, headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${bearer}` } });

describe("version history with tokens", () => {
  it("read tokens list and preview versions; only write tokens save and restore; writers are credited by name", async () => {
    const room = roomName("history-access");
    const writer = await token(room, "write", "Ada (backend)");
    const reader = await token(room, "read");
    expect((await api(`${room}/text`, writer, { method: "PUT", body: "first" })).status).toBe(200);
    const saved = await api(`${room}/versions`, writer, { method: "POST", body: JSON.stringify({ name: "first" }), headers: { "Content-Type": "application/json" } });
    expect(saved.status).toBe(201);
    expect(await saved.json()).toMatchObject({ name: "first", authors: ["Ada (backend)"] });
    expect((await api(`${room}/text`, writer, { method: "PUT", body: "second" })).status).toBe(200);

    const list = (await (await api(`${room}/versions`, reader)).json()) as VersionInfo[];
    expect(list.map((version) => version.name)).toEqual(["first"]);
    expect(await (await api(`${room}/versions/1/text`, reader)).text()).toBe("first");
    expect((await api(`${room}/versions/1/update`, reader)).status).toBe(200);

    for (const [path, method] of [
      ["versions", "POST"],
      ["versions/1/restore", "POST"],
      ["versions/1", "DELETE"],
    ] as const) {
      const refused = await api(`${room}/${path}`, reader, { method, body: method === "POST" ? JSON.stringify({ name: "mine" }) : undefined });
      expect(refused.status, `${method} ${path}`).toBe(403);
    }
    expect(await (await api(`${room}/text`, reader)).text()).toBe("second");
    expect(await (await api(`${room}/versions`, reader)).json()).toHaveLength(1);

    expect((await api(`${room}/versions/1/restore`, writer, { method: "POST" })).status).toBe(200);
    expect(await (await api(`${room}/text`, reader)).text()).toBe("first");
    // Tidy: the idle alarm the writes set would otherwise run after the test.
    await runDurableObjectAlarm(env.ROOM.get(env.ROOM.idFromName(room)));
  });
});
