/**
 * Rate limits at the door, against wrangler.toml's `[[ratelimits]]` as shipped (see
 * vitest.config.ts, project workerd-door): floods are refused with 429 before a room is woken.
 *
 * SELF.fetch sends no CF-Connecting-IP, so each test sets its own addresses. Local counts start
 * over at every 10 s boundary of the clock, so a test that must stay inside one window first
 * waits for enough of one to be left.
 */
import { SELF, env, listDurableObjectIds } from "cloudflare:test";
import { Hono } from "hono";
import { Jwt } from "hono/utils/jwt";
import { afterEach, describe, expect, it, vi } from "vitest";
import { RETRY_AFTER_SECONDS, UNKNOWN_ADDRESS, addressKey, rateLimiter, type DoorEnv } from "../../worker/rate-limit";
import { signToken } from "../../worker/tokens";
import { roomName, upgradeRequest } from "../worker/client";

const WINDOW_MS = 10_000;

/** Waits, if needed, until the current window has at least `neededMs` left. */
async function insideOneWindow(neededMs = 5_000): Promise<void> {
  const left = WINDOW_MS - (Date.now() % WINDOW_MS);
  if (left < neededMs) await new Promise((resolve) => setTimeout(resolve, left + 100));
}

async function nextWindow(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, WINDOW_MS - (Date.now() % WINDOW_MS) + 100));
}

let addresses = 0;
/** A client address no other test uses (TEST-NET-3). */
const newAddress = () => `203.0.113.${++addresses}`;

function token(doc: string, sub?: string): Promise<string> {
  return signToken({ doc, mode: "write", exp: Math.floor(Date.now() / 1000) + 600, ...(sub === undefined ? {} : { sub }) }, env.AUTH_SECRET!);
}

interface Caller {
  address?: string;
  token?: string;
}

/** A limited route and how it answers, so the same tests run against both. */
interface LimitedRoute {
  name: string;
  /** wrangler.toml's limits per 10 s window. */
  perAddress: number;
  perSubject: number;
  /** The status of an admitted request with a valid token. */
  admitted: number;
  /** Sends one request and returns its status, releasing any socket it opened. */
  send: (room: string, caller: Caller) => Promise<number>;
  /** Sends one request and returns the whole response. */
  fetch: (room: string, caller: Caller) => Promise<Response>;
  /** The reason in a 429's body, checking the route's format (text, or the API's JSON error). */
  refusalDetail: (response: Response) => Promise<string>;
}

const headers = ({ address }: Caller): Record<string, string> => (address === undefined ? {} : { "CF-Connecting-IP": address });

const upgrade = (room: string, caller: Caller) => SELF.fetch(upgradeRequest(room, { token: caller.token, headers: headers(caller) }));
const apiCall = (room: string, caller: Caller) =>
  SELF.fetch(`http://edgedoc.test/api/docs/${room}${caller.token === undefined ? "" : `?token=${caller.token}`}`, { headers: headers(caller) });

const routes: LimitedRoute[] = [
  {
    name: "WebSocket upgrades",
    perAddress: 100,
    perSubject: 20,
    admitted: 101,
    send: async (room, caller) => {
      const response = await upgrade(room, caller);
      if (response.webSocket) {
        response.webSocket.accept();
        response.webSocket.close(1000, "test done");
      } else {
        await response.body?.cancel();
      }
      return response.status;
    },
    fetch: upgrade,
    refusalDetail: (response) => response.text(),
  },
  {
    name: "API calls",
    perAddress: 200,
    perSubject: 40,
    admitted: 200,
    send: async (room, caller) => {
      const response = await apiCall(room, caller);
      await response.body?.cancel();
      return response.status;
    },
    fetch: apiCall,
    refusalDetail: async (response) => {
      const body = (await response.json()) as { error: string; detail: string };
      expect(body.error).toBe("rate_limited");
      return body.detail;
    },
  },
];

function statusCounts(statuses: number[]): Record<number, number> {
  const counts: Record<number, number> = {};
  for (const status of statuses) counts[status] = (counts[status] ?? 0) + 1;
  return counts;
}

/** `count` requests at once. */
function flood(count: number, send: () => Promise<number>): Promise<number[]> {
  return Promise.all(Array.from({ length: count }, send));
}

describe("the shipped limits", () => {
  it("admit a 50-person office behind one address opening a document at once: an upgrade and two API calls each", async () => {
    const [room, address] = [roomName("office"), newAddress()];
    const [upgrades, calls] = routes;
    const statuses = await Promise.all(
      Array.from({ length: 50 }, async (_, person) => {
        const caller = { address, token: await token(room, `person-${person}-${crypto.randomUUID()}`) };
        return Promise.all([upgrades!.send(room, caller), calls!.send(room, caller), calls!.send(room, caller)]);
      }),
    );
    expect(statusCounts(statuses.flat())).toEqual({ 101: 50, 200: 100 });
  });
});

describe.each(routes)("$name", (route) => {
  it("past the address's limit get 429 with Retry-After, before any token work and without waking a room; other addresses pass", async () => {
    await insideOneWindow();
    const [room, address] = [roomName("flood"), newAddress()];
    // Without a token: 401 until the address's limit, then 429, so the address is counted first.
    const statuses = await flood(route.perAddress + 10, () => route.send(room, { address }));
    expect(statusCounts(statuses)).toEqual({ 401: route.perAddress, 429: 10 });

    const before = (await listDurableObjectIds(env.ROOM)).length;
    const valid = await token(room);
    const refused = await route.fetch(room, { address, token: valid });
    expect(refused.status).toBe(429);
    expect(refused.headers.get("Retry-After")).toBe(String(RETRY_AFTER_SECONDS));
    expect(await route.refusalDetail(refused)).toBe("rate limited: too many requests from this address; retry after 10 s");
    expect(await listDurableObjectIds(env.ROOM)).toHaveLength(before);

    expect(await route.send(room, { address: newAddress(), token: valid })).toBe(route.admitted);
  });

  it("with a subject: past the subject's limit get 429 from any address; another subject and a share link from the same address pass", async () => {
    await insideOneWindow();
    const [room, address] = [roomName("subject"), newAddress()];
    const ada = await token(room, `ada-${crypto.randomUUID()}`);
    const statuses = await flood(route.perSubject + 5, () => route.send(room, { address, token: ada }));
    expect(statusCounts(statuses)).toEqual({ [route.admitted]: route.perSubject, 429: 5 });

    const elsewhere = await route.fetch(room, { address: newAddress(), token: ada });
    expect(elsewhere.status).toBe(429);
    expect(elsewhere.headers.get("Retry-After")).toBe(String(RETRY_AFTER_SECONDS));
    expect(await route.refusalDetail(elsewhere)).toBe("rate limited: too many requests for this token's subject; retry after 10 s");

    // The address has used perSubject + 5 of its perAddress: people behind it still get in.
    expect(await route.send(room, { address, token: await token(room, `grace-${crypto.randomUUID()}`) })).toBe(route.admitted);
    expect(await route.send(room, { address, token: await token(room) })).toBe(route.admitted);
  });
});

describe("a refused address", () => {
  it("is admitted again in the next window: a flood is slowed, not shut out", { timeout: 30_000 }, async () => {
    await insideOneWindow();
    const [room, address] = [roomName("storm"), newAddress()];
    const [upgrades] = routes;
    const statuses = await flood(upgrades!.perAddress + 1, () => upgrades!.send(room, { address }));
    expect(statuses.filter((status) => status === 429)).toHaveLength(1);
    await nextWindow();
    expect(await upgrades!.send(room, { address, token: await token(room) })).toBe(101);
  });
});

describe("requests without CF-Connecting-IP", () => {
  it("share one bucket rather than go uncounted", async () => {
    await insideOneWindow();
    const [upgrades] = routes;
    const statuses = await flood(upgrades!.perAddress + 1, () => upgrades!.send(roomName("anonymous"), {}));
    expect(statusCounts(statuses)).toEqual({ 401: upgrades!.perAddress, 429: 1 });
  });
});

describe("address keys", () => {
  it("are IPv4 addresses as they are, IPv6 addresses by /64 however written, and one shared key when unknown", () => {
    expect(addressKey("192.0.2.7")).toBe("192.0.2.7");
    expect(addressKey("::ffff:192.0.2.7")).toBe("192.0.2.7");
    for (const spelling of ["2001:db8:a:b::1", "2001:0DB8:000a:b:ffff:1:2:3", "2001:db8:a:b:0:0:0:0"]) {
      expect(addressKey(spelling)).toBe("2001:db8:a:b::/64");
    }
    expect(addressKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(addressKey("2001:db8:a:c::1")).not.toBe(addressKey("2001:db8:a:b::1"));
    expect(addressKey(undefined)).toBe(UNKNOWN_ADDRESS);
  });
});

describe("the rate limiter", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  const app = new Hono<DoorEnv>().get(
    "/",
    rateLimiter({ limiter: "UPGRADE_ADDRESS_LIMITER", per: "address", refuse: (c, detail) => c.text(detail, 429) }),
    (c) => c.text("admitted"),
  );

  it("admits when the binding fails, and logs it: a limiter outage must not take documents down", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(String(line)));
    const failing: RateLimit = { limit: () => Promise.reject(new Error("limiter unreachable")) };
    const response = await app.request("/", {}, { ...env, UPGRADE_ADDRESS_LIMITER: failing });
    expect(await response.text()).toBe("admitted");
    expect(lines.map((line) => JSON.parse(line))).toContainEqual({ event: "rate_limit_error", limiter: "UPGRADE_ADDRESS_LIMITER", error: "Error: limiter unreachable" });
  });

  it("admits when the binding is absent (a config without [[ratelimits]]), and says so once", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(String(line)));
    const unbound = { ...env, UPGRADE_ADDRESS_LIMITER: undefined };
    for (let i = 0; i < 3; i++) expect(await (await app.request("/", {}, unbound)).text()).toBe("admitted");
    expect(lines.filter((line) => line.includes("rate_limit_unbound"))).toHaveLength(1);
  });
});

describe("the sub claim", () => {
  it.each([
    ["empty", ""],
    ["not a string", 42],
  ])("is refused as malformed when %s", async (_, sub) => {
    const room = roomName("badsub");
    const malformed = await Jwt.sign({ doc: room, mode: "write", exp: Math.floor(Date.now() / 1000) + 600, sub }, env.AUTH_SECRET!, "HS256");
    const response = await upgrade(room, { address: newAddress(), token: malformed });
    expect(response.status).toBe(401);
    expect(await response.text()).toMatch(/sub must be a non-empty string/);
  });
});
