/**
 * CORS on the documents API in a guarded deployment (see vitest.config.ts: AUTH_SECRET, and
 * ALLOWED_ORIGINS = https://edgedoc.example): the allowed origin gets its preflights answered
 * without a token and may read every answer; other origins get no Access-Control-Allow-Origin.
 */
import { SELF, env, listDurableObjectIds } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CORS_POLICY } from "../../worker/cors";
import { signToken, type AccessMode } from "../../worker/tokens";
import { roomName } from "../worker/client";

const ALLOWED = "https://edgedoc.example";
const ELSEWHERE = "https://elsewhere.example";

const token = (doc: string, mode: AccessMode = "read") =>
  signToken({ doc, mode, exp: Math.floor(Date.now() / 1000) + 600 }, env.AUTH_SECRET!);

/** The preflight a browser on `origin` sends before a `method` with a Bearer token and a body type. */
const preflight = (path: string, origin: string, method = "GET") =>
  SELF.fetch(`http://edgedoc.test/api/docs/${path}`, {
    method: "OPTIONS",
    headers: { Origin: origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": "authorization,content-type" },
  });

const call = (path: string, headers: Record<string, string>, init: RequestInit = {}) =>
  SELF.fetch(`http://edgedoc.test/api/docs/${path}`, { ...init, headers });

/** The comma-separated list in a header, as a set of lower-case names. */
const listed = (response: Response, header: string) =>
  new Set((response.headers.get(header) ?? "").split(",").map((name) => name.trim().toLowerCase()).filter(Boolean));

describe("preflights", () => {
  it("from the allowed origin: 204 with the methods, headers and max-age, without a token and without waking a room", async () => {
    const room = roomName("preflight");
    const before = await listDurableObjectIds(env.ROOM);
    for (const [path, method] of [[`${room}/text`, "GET"], [`${room}/text`, "PUT"], [`${room}/update`, "POST"], [room, "DELETE"]] as const) {
      const response = await preflight(path, ALLOWED, method);
      expect(response.status).toBe(204);
      expect(response.headers.get("Access-Control-Allow-Origin")).toBe(ALLOWED);
      expect(listed(response, "Access-Control-Allow-Methods")).toEqual(new Set(["get", "post", "put", "delete"]));
      expect(listed(response, "Access-Control-Allow-Headers")).toEqual(new Set(["authorization", "content-type"]));
      expect(response.headers.get("Access-Control-Max-Age")).toBe(String(CORS_POLICY.maxAge));
      expect(response.headers.get("Access-Control-Allow-Credentials")).toBeNull();
      expect(listed(response, "Vary")).toContain("origin");
    }
    expect(await listDurableObjectIds(env.ROOM)).toHaveLength(before.length);
  });

  it("from another origin: no Access-Control-Allow-Origin, so the browser sends nothing after it", async () => {
    const response = await preflight(`${roomName("foreign")}/text`, ELSEWHERE);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBeNull();
    // A preflight without Origin is no browser's; it is told nothing either.
    const bare = await SELF.fetch(`http://edgedoc.test/api/docs/${roomName("bare")}/text`, { method: "OPTIONS" });
    expect(bare.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });
});

describe("calls with an Origin", () => {
  it("from the allowed origin with a Bearer token: the answer carries Access-Control-Allow-Origin", async () => {
    const room = roomName("cors-read");
    const write = await token(room, "write");
    expect((await call(`${room}/text`, { Authorization: `Bearer ${write}`, Origin: ALLOWED, "Content-Type": "text/plain" }, { method: "PUT", body: "hello from elsewhere" })).status).toBe(200);

    const response = await call(`${room}/text`, { Authorization: `Bearer ${await token(room)}`, Origin: ALLOWED });
    expect(response.status).toBe(200);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe(ALLOWED);
    expect(listed(response, "Vary")).toContain("origin");
    expect(await response.text()).toBe("hello from elsewhere");
  });

  it("from the allowed origin, refused: the refusal is readable too, its challenge exposed", async () => {
    const room = roomName("cors-refused");
    const response = await call(`${room}/text`, { Origin: ALLOWED });
    expect(response.status).toBe(401);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBe(ALLOWED);
    expect(listed(response, "Access-Control-Expose-Headers")).toEqual(new Set(["www-authenticate", "retry-after"]));
    expect(response.headers.get("WWW-Authenticate")).toBe('Bearer realm="edgedoc"');
    expect(await response.json()).toEqual({ error: "unauthorized", detail: expect.stringMatching(/token required/) });
  });

  it("from another origin, even with a valid token: 403 and no Access-Control-Allow-Origin", async () => {
    const room = roomName("cors-foreign");
    const response = await call(`${room}/text`, { Authorization: `Bearer ${await token(room)}`, Origin: ELSEWHERE });
    expect(response.status).toBe(403);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBeNull();
    expect(await response.json()).toEqual({ error: "forbidden", detail: "origin not allowed" });
  });

  it("none, from a server: answered as always, with no Access-Control-Allow-Origin", async () => {
    const room = roomName("cors-server");
    const response = await call(room, { Authorization: `Bearer ${await token(room)}` });
    expect(response.status).toBe(200);
    expect(response.headers.get("Access-Control-Allow-Origin")).toBeNull();
  });
});
