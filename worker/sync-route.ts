/**
 * `/sync/:name`: the HTTP fallback of `/ws/:name`, for networks that block WebSockets
 * (docs/protocol.md, "HTTP fallback"). One door for every request, as hono chains it: CORS for
 * the allowed origins (cors.ts), the address's door limit, the API's rule that pages on other
 * sites change nothing (same-origin.ts; every request but a poll sends frames), the body's
 * type and declared size, document access (origin, token), the subject's door limit. Opening a
 * session counts as a WebSocket upgrade does; every other request (poll, post, leave) counts
 * against the fallback's own limits, since an honest client makes many. A WebSocket upgrade is
 * refused here: it would pass the door that counts requests, not upgrades. The room answers;
 * this route only holds polls, which the room cannot time (it keeps no timers).
 *
 *   POST   /sync/:name                          open a session: `Edgedoc-Session` header, first frames
 *   GET    /sync/:name?session=ID&cursor=N      frames after N, held up to POLL_HOLD_MS
 *   POST   /sync/:name?session=ID&seq=K         frames K, K+1, ... from the client
 *   DELETE /sync/:name?session=ID               leave
 */
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { withGrant } from "./access";
import { roomLimits } from "./config";
import { syncCors } from "./cors";
import { documentAccess, type DocumentEnv } from "./document-access";
import { logEvent } from "./log";
import { CloseCode } from "./protocol";
import { rateLimiter, type LimiterName } from "./rate-limit";
import { maxBodyBytes } from "./room/body-frames";
import { POLL_HOLD_MS } from "./room/http-sessions";
import { ANSWER_HEADERS, encodeAnswer, isSessionId } from "./room/http-wire";
import { bodyTypes, sameOriginWrites } from "./same-origin";

export const sync = new Hono<DocumentEnv>();

function refuse(c: Context<DocumentEnv>, status: 400 | 413 | 415 | 429, reason: string): Response {
  logEvent("sync_refused", { room: c.req.param("name"), status, reason });
  return c.text(reason, status);
}

/** A request that opens a session: a POST that names none. */
const opensSession = (c: Context<DocumentEnv>) => c.req.method === "POST" && c.req.query("session") === undefined;

/**
 * The door limit `per` address or subject: an open counts against `opens` (the upgrade
 * limiters, as a socket's upgrade), every other request of a session against `requests`.
 */
function doorLimit(per: "address" | "subject", opens: LimiterName, requests: LimiterName): MiddlewareHandler<DocumentEnv> {
  const limiter = (name: LimiterName) => rateLimiter<DocumentEnv>({ limiter: name, per, refuse: (c, detail) => refuse(c, 429, detail) });
  const [forOpens, forRequests] = [limiter(opens), limiter(requests)];
  return (c, next) => (opensSession(c) ? forOpens(c, next) : forRequests(c, next));
}

// Preflights are answered before any count, token or room; every answer, refusals included, is
// readable by the allowed origins, and the open's `Edgedoc-Session` header with it.
sync.use("/:name", syncCors());
sync.use("/:name", async function noUpgrades(c, next) {
  if (c.req.header("Upgrade")?.toLowerCase() === "websocket") return refuse(c, 400, "this endpoint speaks plain HTTP: open WebSockets on /ws/:name");
  await next();
});
sync.use("/:name", doorLimit("address", "UPGRADE_ADDRESS_LIMITER", "SYNC_ADDRESS_LIMITER"));
sync.use("/:name", async function wellFormedSession(c, next) {
  // Anything but a session id never reaches a room.
  const session = c.req.query("session");
  if (session !== undefined && !isSessionId(session)) return refuse(c, 400, "malformed session id: 32 lowercase hex digits");
  await next();
});
sync.use("/:name", sameOriginWrites());
sync.post(
  "/:name",
  bodyTypes<DocumentEnv>(["application/octet-stream"], (c, detail) => refuse(c, 415, detail)),
  async function declaredBodyBound(c, next) {
    // A body that says it is too large is refused unread; one that does not say (chunked) is
    // read by the room only while it stays within the bound (worker/room/body-frames.ts).
    const bound = maxBodyBytes(roomLimits(c.env).maxFrameBytes);
    if (Number(c.req.header("Content-Length") ?? 0) > bound) return refuse(c, 413, `body too large: over ${bound} bytes of frames in one request`);
    await next();
  },
);
sync.use("/:name", documentAccess());
sync.use("/:name", doorLimit("subject", "UPGRADE_SUBJECT_LIMITER", "SYNC_SUBJECT_LIMITER"));

sync.on(["GET", "POST", "DELETE"], "/:name", async (c) => {
  let response: Response;
  try {
    response = await c.var.room.fetch(bodyAsRead(withGrant(c.req.raw, c.var.grant)));
  } catch (error) {
    // The object was reset under the request (a deploy, a crash): its sessions went with it,
    // which is what the room itself answers a session it does not know. An open just fails.
    if (opensSession(c)) throw error;
    return roomRestarted();
  }
  if (c.req.method !== "GET" || !response.ok) return response;
  return holdPoll(response, Number(c.req.query("cursor") ?? "0"));
});

/** The answer for a session whose room restarted under its request: join again (docs/protocol.md, "HTTP fallback"). */
function roomRestarted(): Response {
  const close = { code: CloseCode.serviceRestart, reason: "room restarted: join again" };
  return new Response(encodeAnswer(0, [], close), { headers: ANSWER_HEADERS });
}

/**
 * `request` with its body passed on only as the room reads it. The room answers a post for a
 * session it does not know, or one past the bound, without reading the rest; the runtime's own
 * pump of a forwarded body would go on reading the client's upload after the answer was sent,
 * and fail with "Can't read from request stream after response has been sent". Here the room
 * cancelling its body cancels the upload's.
 */
function bodyAsRead(request: Request): Request {
  if (request.body === null) return request;
  const upload = request.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const next = await upload.read();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel: (reason) => upload.cancel(reason),
  });
  return new Request(request, { body });
}

/**
 * Waits up to {@link POLL_HOLD_MS} for the room's answer to a poll to start, then answers with
 * no frames (the same cursor): the client polls again, and cancelling the body tells the room
 * to stop waiting. An answer that starts in time is passed on as it streams, never gathered
 * here (it may be a whole document).
 */
async function holdPoll(response: Response, cursor: number): Promise<Response> {
  const reader = response.body!.getReader();
  let expire: (value: null) => void = () => {};
  const timedOut = new Promise<null>((resolve) => (expire = resolve));
  const timer = setTimeout(() => expire(null), POLL_HOLD_MS);
  // A stream that fails before its first bytes is a room reset while the poll was held.
  const first = await Promise.race([reader.read(), timedOut]).catch(() => "reset" as const);
  clearTimeout(timer);
  if (first === "reset") return roomRestarted();
  if (first === null) {
    void reader.cancel().catch(() => {});
    return new Response(encodeAnswer(Number.isSafeInteger(cursor) ? cursor : 0, [], null), { headers: response.headers });
  }
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      if (first.done) controller.close();
      else controller.enqueue(first.value);
    },
    async pull(controller) {
      const next = await reader.read();
      if (next.done) controller.close();
      else controller.enqueue(next.value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  return new Response(body, { headers: response.headers });
}
