/**
 * The documents HTTP API, for servers: backups, search indexing, bots, imports. Each route is
 * answered by the document's room through Durable Object RPC. Reads need a read token, writes
 * a write token (when AUTH_SECRET is set); errors are JSON `{ error, detail }`. Browser pages
 * on the origins in ALLOWED_ORIGINS may call it too (CORS, cors.ts); pages on other sites may
 * change nothing, token or not (same-origin.ts).
 */
import { Hono, type Context } from "hono";
import { roomLimits } from "./config";
import { apiCors } from "./cors";
import { AccessRefused, documentAccess, type DocumentEnv } from "./document-access";
import { logEvent } from "./log";
import { addressKey, rateLimiter } from "./rate-limit";
import { bodyTypes, sameOriginWrites } from "./same-origin";
import { canWrite } from "./tokens";
import { withEndpointOrigins } from "./webhooks";
import type { HistoryRefusal, Outcome } from "./documents";
import { printable } from "./history";
import { MAX_VERSION_NAME_CHARS } from "./limits";
import { CloseCode } from "./protocol";

export const api = new Hono<DocumentEnv>();

function failure(c: Context<DocumentEnv>, status: number, error: string, detail: string): Response {
  return c.json({ error, detail }, status as 400);
}

// Refusals of document access, as JSON like every other API error.
api.onError((error, c) => {
  if (!(error instanceof AccessRefused)) throw error;
  error.headers.forEach((value, name) => c.header(name, value));
  return failure(c, error.status, error.code, error.message);
});

// CORS first (docs/api.md#cors): a preflight is answered before any count, token or room, and
// every answer, refusals included, is readable by the allowed origins.
api.use("*", apiCors());

// Every document route: log the call (never the query string: it may carry a token), count it
// against its address, refuse writes from other sites' pages (same-origin.ts), check access,
// count it against the token's subject.
api.use("/docs/:name/*", async (c, next) => {
  const started = Date.now();
  const name = c.req.param("name");
  await next();
  logEvent("api", { method: c.req.method, room: name, path: new URL(c.req.url).pathname, status: c.res.status, ms: Date.now() - started });
});
const refuseRateLimited = (c: Context<DocumentEnv>, detail: string) => failure(c, 429, "rate_limited", detail);
api.use("/docs/:name/*", rateLimiter({ limiter: "API_ADDRESS_LIMITER", per: "address", refuse: refuseRateLimited }));
api.use("/docs/:name/*", sameOriginWrites());
api.use("/docs/:name/*", documentAccess());
api.use("/docs/:name/*", async function writesNeedWriteAccess(c, next) {
  if (c.req.method !== "GET" && !canWrite(c.var.grant.mode)) throw new AccessRefused(403, "forbidden", "this token is read-only");
  await next();
});
api.use("/docs/:name/*", rateLimiter({ limiter: "API_SUBJECT_LIMITER", per: "subject", refuse: refuseRateLimited }));

/**
 * Refuses a body of another media type than the route documents (415). Updates and version
 * names take types no form or simple `fetch` can send, so a page elsewhere must be preflighted.
 */
const refuseMediaType = (c: Context<DocumentEnv>, detail: string) => failure(c, 415, "unsupported_media_type", detail);

/** The request body, refused past the same size limit as a WebSocket frame. */
async function body(c: Context<DocumentEnv>): Promise<Uint8Array | Response> {
  const limit = roomLimits(c.env).maxFrameBytes;
  if (Number(c.req.header("Content-Length") ?? 0) > limit) return failure(c, 413, "too_large", `body over ${limit} bytes`);
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  if (bytes.length > limit) return failure(c, 413, "too_large", `body over ${limit} bytes`);
  return bytes;
}

/** How each refusal of a version request is answered. */
const HISTORY_REFUSALS: Record<HistoryRefusal, [status: number, error: string]> = {
  "no-such-version": [404, "not_found"],
  "no-document": [404, "not_found"],
  "not-named": [409, "not_named"],
  "history-full": [507, "history_full"],
};

/**
 * Answers with `ok(value)`, or with the refusal as an HTTP error: an update that would make the
 * document too large is 413, anything else the room refuses (the same checks as 1007 or 1008
 * on a socket) is 400; version refusals as {@link HISTORY_REFUSALS} says; a read past its
 * caller's budget is 429, past the room's 503, both with Retry-After.
 */
function answer<T>(c: Context<DocumentEnv>, outcome: Outcome<T>, ok: (value: T) => Response): Response {
  if (outcome.ok) return ok(outcome.value);
  if ("refused" in outcome) return failure(c, ...HISTORY_REFUSALS[outcome.refused], outcome.reason);
  if ("busy" in outcome) {
    c.header("Retry-After", String(outcome.retryAfterSeconds));
    return outcome.busy === "caller" ? failure(c, 429, "rate_limited", outcome.reason) : failure(c, 503, "room_busy", outcome.reason);
  }
  if (outcome.closeCode === CloseCode.documentTooLarge) return failure(c, 413, "document_too_large", outcome.reason);
  return failure(c, 400, "invalid_update", outcome.reason);
}

/**
 * Whom a read is charged to in the room (worker/read-budget.ts): the token's owner (its `sub`,
 * else its name, else the link itself), wherever it calls from; without a token, the address.
 */
function caller(c: Context<DocumentEnv>): string {
  const owner = c.var.grant.owner;
  return owner === undefined ? `address:${addressKey(c.req.header("CF-Connecting-IP"))}` : `owner:${owner}`;
}

/** Binary bodies: RPC hands us a fresh array over an ordinary ArrayBuffer. */
const binary = (c: Context<DocumentEnv>, bytes: Uint8Array) =>
  c.body(bytes as Uint8Array<ArrayBuffer>, 200, { "Content-Type": "application/octet-stream" });

// What the room holds: sizes, sockets, last edit.
api.get("/docs/:name", async (c) => answer(c, await c.var.room.info(caller(c)), (info) => c.json(info)));

// The editor's text.
api.get("/docs/:name/text", async (c) => answer(c, await c.var.room.text(caller(c)), (text) => c.text(text)));

// The document as a binary Yjs update; with ?since=<base64url state vector>, only what that state lacks.
api.get("/docs/:name/update", async (c) => {
  const since = c.req.query("since");
  const stateVector = since === undefined ? undefined : fromBase64Url(since);
  if (stateVector === null) return failure(c, 400, "invalid_state_vector", "since must be a base64url-encoded Yjs state vector");
  return answer(c, await c.var.room.encodeUpdate(caller(c), stateVector), (update) => binary(c, update));
});

// Apply a binary Yjs update: validated, stored and relayed live like any client edit. An
// update waiting for dependencies is not stored yet: 202 `{ pending: true }`, not 200.
api.post("/docs/:name/update", bodyTypes(["application/octet-stream"], refuseMediaType), async (c) => {
  const update = await body(c);
  if (update instanceof Response) return update;
  return answer(c, await c.var.room.applyUpdate(update, c.var.grant.user), (result) => c.json(result, result.pending ? 202 : 200));
});

// Replace the text with the body as a minimal edit, so connected editors keep their cursors.
// Any text type, read as UTF-8 (text/plain, text/markdown, ...): a PUT is never a simple
// request, so a page elsewhere is preflighted whatever type it sends.
api.put("/docs/:name/text", bodyTypes(["text/*"], refuseMediaType), async (c) => {
  const bytes = await body(c);
  if (bytes instanceof Response) return bytes;
  return answer(c, await c.var.room.replaceText(new TextDecoder().decode(bytes), c.var.grant.user), (result) => c.json(result));
});

// Version history (docs/history.md): list, save a named version, read one, restore, delete a named one.
api.get("/docs/:name/versions", async (c) => c.json(await c.var.room.versions()));

api.post("/docs/:name/versions", bodyTypes(["application/json"], refuseMediaType), async (c) => {
  const name = await versionName(c);
  if (name instanceof Response) return name;
  return answer(c, await c.var.room.saveVersion(name), (version) => c.json(version, 201));
});

api.get("/docs/:name/versions/:id", (c) => withVersion(c, async (id) => answer(c, await c.var.room.version(id), (version) => c.json(version))));

api.get("/docs/:name/versions/:id/text", (c) => withVersion(c, async (id) => answer(c, await c.var.room.versionText(caller(c), id), (text) => c.text(text))));

api.get("/docs/:name/versions/:id/update", (c) =>
  withVersion(c, async (id) => answer(c, await c.var.room.versionUpdate(caller(c), id), (update) => binary(c, update))),
);

api.post("/docs/:name/versions/:id/restore", (c) =>
  withVersion(c, async (id) => answer(c, await c.var.room.restoreVersion(id, c.var.grant.user), (result) => c.json(result))),
);

api.delete("/docs/:name/versions/:id", (c) =>
  withVersion(c, async (id) => answer(c, await c.var.room.deleteVersion(id), () => c.body(null, 204))),
);

// Close the room's sockets (4410) and delete its storage. Deleting a missing document is fine.
api.delete("/docs/:name", async (c) => {
  await c.var.room.destroy();
  return c.body(null, 204);
});

// Webhook events not yet delivered, failed ones included (docs/webhooks.md): a write token
// sees each endpoint's origin only, an admin token (the operator's) its whole URL, which may
// carry a capability. Without AUTH_SECRET nobody is an operator, so origins only.
api.get("/docs/:name/webhooks", async (c) => {
  if (!canWrite(c.var.grant.mode)) throw new AccessRefused(403, "forbidden", "listing webhook events needs a write token");
  const events = await c.var.room.webhookEvents();
  return c.json(c.var.grant.mode === "admin" ? events : withEndpointOrigins(events));
});

api.all("*", (c) => failure(c, 404, "not_found", "no such API route"));

/** Runs `route` with the version id in the path; an id that is not a positive integer names no version. */
function withVersion(c: Context<DocumentEnv>, route: (id: number) => Promise<Response>): Promise<Response> | Response {
  const id = Number(c.req.param("id"));
  return Number.isSafeInteger(id) && id > 0 ? route(id) : failure(c, 404, "not_found", "no such version");
}

/** Largest body of `POST /versions`: a name of {@link MAX_VERSION_NAME_CHARS} characters in JSON, with room to spare. */
const VERSION_REQUEST_BYTES = 4 * 1024;

/** The name in a `POST /versions` body (`{ "name": "..." }`), or the refusal to send. */
async function versionName(c: Context<DocumentEnv>): Promise<string | Response> {
  const invalid = () => failure(c, 400, "invalid_name", `send JSON { "name": "..." } with 1 to ${MAX_VERSION_NAME_CHARS} characters`);
  if (Number(c.req.header("Content-Length") ?? 0) > VERSION_REQUEST_BYTES) return invalid();
  const bytes = await c.req.arrayBuffer();
  if (bytes.byteLength > VERSION_REQUEST_BYTES) return invalid();
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return invalid();
  }
  const name = typeof body === "object" && body !== null && "name" in body && typeof body.name === "string" ? printable(body.name) : "";
  return name === "" || Array.from(name).length > MAX_VERSION_NAME_CHARS ? invalid() : name;
}

function fromBase64Url(text: string): Uint8Array | null {
  try {
    const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    return Uint8Array.from(binary, (char) => char.charCodeAt(0));
  } catch {
    return null;
  }
}
