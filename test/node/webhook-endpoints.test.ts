/**
 * Who sees the webhook endpoint URLs, against a real `wrangler dev` with tokens and an endpoint
 * whose URL carries a key (`?key=...`), as many receivers' do. Nothing listens there, so the
 * event stays in the outbox with its failed attempt: an edit link's token is told only the
 * endpoint's origin, the operator's admin token (`npm run token -- --mode admin`) the whole URL.
 */
import { execFileSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, removePersistDir, startDevServer, type DevServer } from "./wrangler";

const AUTH_SECRET = "webhook-endpoints-secret";
const CAPABILITY = "k3y-that-opens-the-receiver";

let server: DevServer;
let endpointOrigin: string;

beforeAll(async () => {
  endpointOrigin = `http://127.0.0.1:${await freePort()}`;
  server = await startDevServer({
    vars: {
      AUTH_SECRET,
      WEBHOOK_URL: `${endpointOrigin}/hooks/edgedoc?key=${CAPABILITY}`,
      WEBHOOK_SECRET: `whsec_${randomBytes(32).toString("base64")}`,
      // One failed attempt, then a retry far beyond the test: the event stays listed. The edit's
      // document.updated stays collecting meanwhile, so both listings see the same events.
      WEBHOOK_RETRY_SECONDS: "3600",
      WEBHOOK_QUIET_SECONDS: "600",
      WEBHOOK_MAX_WAIT_SECONDS: "600",
    },
  });
}, 90_000);

afterAll(async () => {
  await server?.stop();
  if (server) removePersistDir(server.persistDir);
});

/** A token from `npm run token` (its first line), as the operator mints one. */
function mint(doc: string, mode: "read" | "write" | "admin"): string {
  const output = execFileSync(
    process.execPath,
    ["--experimental-transform-types", "--disable-warning=ExperimentalWarning", "scripts/token.ts", "--doc", doc, "--mode", mode, "--url", server.origin],
    { env: { ...process.env, AUTH_SECRET }, encoding: "utf8" },
  );
  return output.trim().split("\n")[0]!;
}

const api = (path: string, token: string, init: RequestInit = {}) =>
  fetch(`${server.origin}/api/docs/${path}`, {
    ...init,
    headers: { ...(init.headers as Record<string, string>), Authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  });

type Listed = { type: string; endpoint: string; attempts: number; lastError: string | null }[];

/** The listing as `token` sees it, once `ready` says so (polled; gives up after 20 s). */
async function listedOnce(room: string, token: string, ready: (events: Listed) => boolean): Promise<Listed> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const events = (await (await api(`${room}/webhooks`, token)).json()) as Listed;
    if (ready(events)) return events;
    if (Date.now() > deadline) throw new Error(`the webhook listing never got ready: ${JSON.stringify(events)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("GET /api/docs/:name/webhooks", () => {
  it("an edit link's token sees the endpoint's origin only; the admin token the whole URL; a read token nothing", async () => {
    const room = `hook-endpoints-${randomUUID().slice(0, 8)}`;
    const write = mint(room, "write");
    const admin = mint(room, "admin");
    expect((await api(`${room}/text`, write, { method: "PUT", headers: { "Content-Type": "text/plain" }, body: "draft" })).status).toBe(200);
    const saved = await api(`${room}/versions`, write, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: "v1" }) });
    expect(saved.status).toBe(201);

    const asOperator = await listedOnce(room, admin, (events) => events.some((event) => event.type === "version.created" && event.attempts === 1));
    // The failure is recorded: connection refused, in whatever words the runtime uses.
    expect(asOperator.find((event) => event.type === "version.created")!.lastError).toEqual(expect.any(String));
    for (const event of asOperator) expect(event.endpoint).toBe(`${endpointOrigin}/hooks/edgedoc?key=${CAPABILITY}`);

    const asEditor = await api(`${room}/webhooks`, write);
    expect(asEditor.status).toBe(200);
    const body = await asEditor.text();
    const listed = JSON.parse(body) as Listed;
    expect(listed.map(({ type, attempts }) => ({ type, attempts }))).toEqual(asOperator.map(({ type, attempts }) => ({ type, attempts })));
    for (const event of listed) expect(event.endpoint).toBe(endpointOrigin);
    // Nowhere in the answer, failure reasons included.
    expect(body).not.toContain(CAPABILITY);
    expect(body).not.toContain("/hooks/edgedoc");

    const asReader = await api(`${room}/webhooks`, mint(room, "read"));
    expect(asReader.status).toBe(403);
    expect(await asReader.json()).toEqual({ error: "forbidden", detail: "listing webhook events needs a write token" });
  }, 60_000);
});
