/**
 * CORS preflights and the shipped rate limits (project workerd-door, whose ALLOWED_ORIGINS is
 * unset). With an allowed origin (set for one test by calling the Worker's app with its own
 * env) preflights are answered before the address is counted; with the list unset the API
 * sends no CORS headers and an OPTIONS request is an ordinary, counted, request.
 */
import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../../worker/index";
import { RETRY_AFTER_SECONDS } from "../../worker/rate-limit";
import { signToken } from "../../worker/tokens";
import { roomName } from "../worker/client";

/** wrangler.toml's API_ADDRESS_LIMITER: calls per address per 10 s window. */
const API_CALLS_PER_ADDRESS = 200;
const WINDOW_MS = 10_000;
const ORIGIN = "https://app.example";

/** Waits, if needed, until the current window has at least `neededMs` left (local counts start over at each 10 s boundary). */
async function insideOneWindow(neededMs = 6_000): Promise<void> {
  const left = WINDOW_MS - (Date.now() % WINDOW_MS);
  if (left < neededMs) await new Promise((resolve) => setTimeout(resolve, left + 100));
}

let addresses = 0;
/** A client address no other test uses (TEST-NET-2; door.test.ts takes TEST-NET-3). */
const newAddress = () => `198.51.100.${++addresses}`;

const token = (doc: string) => signToken({ doc, mode: "read", exp: Math.floor(Date.now() / 1000) + 600 }, env.AUTH_SECRET!);

const preflightHeaders = (address: string) => ({
  Origin: ORIGIN,
  "CF-Connecting-IP": address,
  "Access-Control-Request-Method": "GET",
  "Access-Control-Request-Headers": "authorization",
});

function statusCounts(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

describe("with ALLOWED_ORIGINS set", () => {
  const withOrigins = { ...env, ALLOWED_ORIGINS: ORIGIN };
  const send = (path: string, init: RequestInit) => worker.request(`http://edgedoc.test/api/docs/${path}`, init, withOrigins);

  it("preflights past the address's limit are all answered, and the address's count is untouched by them", async () => {
    await insideOneWindow();
    const [room, address] = [roomName("preflights"), newAddress()];
    const preflights = await Promise.all(
      Array.from({ length: API_CALLS_PER_ADDRESS + 50 }, async () => {
        const response = await send(`${room}/text`, { method: "OPTIONS", headers: preflightHeaders(address) });
        expect(response.headers.get("Access-Control-Allow-Origin")).toBe(ORIGIN);
        return response.status;
      }),
    );
    expect(statusCounts(preflights)).toEqual({ 204: API_CALLS_PER_ADDRESS + 50 });

    // The address still has its whole window: as many calls as the limit get through to the
    // token check (401), and only the next is refused, readable by the page that made it.
    const calls = await Promise.all(
      Array.from({ length: API_CALLS_PER_ADDRESS }, async () => {
        const response = await send(`${room}/text`, { headers: { Origin: ORIGIN, "CF-Connecting-IP": address } });
        await response.body?.cancel();
        return response.status;
      }),
    );
    expect(statusCounts(calls)).toEqual({ 401: API_CALLS_PER_ADDRESS });
    const refused = await send(`${room}/text`, { headers: { Origin: ORIGIN, "CF-Connecting-IP": address, Authorization: `Bearer ${await token(room)}` } });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("Access-Control-Allow-Origin")).toBe(ORIGIN);
    expect(refused.headers.get("Retry-After")).toBe(String(RETRY_AFTER_SECONDS));
    expect(refused.headers.get("Access-Control-Expose-Headers")).toMatch(/Retry-After/);
  });
});

describe("with ALLOWED_ORIGINS unset", () => {
  it("the API sends no CORS headers: an OPTIONS request is an ordinary request, refused without a token", async () => {
    const response = await SELF.fetch(`http://edgedoc.test/api/docs/${roomName("no-cors")}/text`, {
      method: "OPTIONS",
      headers: preflightHeaders(newAddress()),
    });
    expect(response.status).toBe(401);
    expect([...response.headers.keys()].filter((name) => name.startsWith("access-control-"))).toEqual([]);
  });
});
