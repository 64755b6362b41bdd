/**
 * `/sync/:name`: the HTTP fallback of `/ws/:name`, for networks that block WebSockets
 * (docs/protocol.md, "HTTP fallback"). The same document access as the socket (origin, token),
 * the same door limits for opening a session as for an upgrade, and the API's rule that pages
 * on other sites change nothing (same-origin.ts): every request but a poll sends frames. The
 * room answers; this route only holds polls, which the room cannot time (it keeps no timers).
 *
 *   POST   /sync/:name                          open a session: `Edgedoc-Session` header, first frames
 *   GET    /sync/:name?session=ID&cursor=N      frames after N, held up to POLL_HOLD_MS
 *   POST   /sync/:name?session=ID&seq=K         frames K, K+1, ... from the client
 *   DELETE /sync/:name?session=ID               leave
 */
import { bodyLimit } from "hono/body-limit";
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { withGrant } from "./access";
import { roomLimits } from "./config";
import { documentAccess, type DocumentEnv } from "./document-access";
import { logEvent } from "./log";
import { rateLimiter, type RateLimitOptions } from "./rate-limit";
import { MAX_BATCH_BYTES, POLL_HOLD_MS, encodeAnswer, isSessionId } from "./room/http-sessions";
import { bodyTypes, sameOriginWrites } from "./same-origin";

/** Room for the length prefixes of a batch. */
const BATCH_FRAMING_BYTES = 64;

export const sync = new Hono<DocumentEnv>();

function refuse(c: Context<DocumentEnv>, status: 400 | 413 | 415 | 429, reason: string): Response {
  logEvent("sync_refused", { room: c.req.param("name"), status, reason });
  return c.text(reason, status);
}

/** Applies `middleware` only to requests that open a session: those count as WebSocket upgrades do. */
function forOpens(middleware: MiddlewareHandler<DocumentEnv>): MiddlewareHandler<DocumentEnv> {
  return async (c, next) => (c.req.query("session") === undefined && c.req.method === "POST" ? middleware(c, next) : next());
}

const upgradeLimit = (limiter: RateLimitOptions<DocumentEnv>["limiter"], per: "address" | "subject") =>
  forOpens(rateLimiter<DocumentEnv>({ limiter, per, refuse: (c, detail) => refuse(c, 429, detail) }));

sync.use("/:name", upgradeLimit("UPGRADE_ADDRESS_LIMITER", "address"));
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
  async (c, next) => {
    // One frame of the limit, or one client batch (worker/room/http-sessions.ts), whichever is larger.
    const maxSize = Math.max(roomLimits(c.env).maxFrameBytes, MAX_BATCH_BYTES) + BATCH_FRAMING_BYTES;
    return bodyLimit({ maxSize, onError: (c) => refuse(c, 413, `body too large: frames over ${maxSize} bytes in one request`) })(c, next);
  },
);
sync.use("/:name", documentAccess());
sync.use("/:name", upgradeLimit("UPGRADE_SUBJECT_LIMITER", "subject"));

sync.on(["GET", "POST", "DELETE"], "/:name", async (c) => {
  const response = await c.var.room.fetch(withGrant(c.req.raw, c.var.grant));
  if (c.req.method !== "GET" || !response.ok) return response;
  return holdPoll(response, Number(c.req.query("cursor") ?? "0"));
});

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
  const first = await Promise.race([reader.read(), timedOut]);
  clearTimeout(timer);
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
