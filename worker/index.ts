/**
 * The Worker: a thin router. It checks what it can without state (rate limits, document name,
 * upgrade header, origin, token) and forwards each document's WebSocket to that document's
 * Durable Object, which owns everything else. Refusals are answered here, so no room is woken
 * for them.
 */
import { Hono, type Context } from "hono";
import { withGrant } from "./access";
import { api } from "./api";
import { AccessRefused, documentAccess, type DocumentEnv } from "./document-access";
import { logEvent } from "./log";
import { rateLimiter } from "./rate-limit";
import { sync } from "./sync-route";

export { Room } from "./room";

const app = new Hono<DocumentEnv>();

function refuseUpgrade(c: Context, status: 400 | 401 | 403 | 429, reason: string): Response {
  logEvent("upgrade_refused", { room: c.req.param("name"), status, reason });
  return c.text(reason, status);
}

// Refusals of document access on the WebSocket route, as text (a browser shows the socket
// only as failed; servers and CLIs read the reason).
app.onError((error, c) => {
  if (!(error instanceof AccessRefused)) throw error;
  error.headers.forEach((value, name) => c.header(name, value));
  return refuseUpgrade(c, error.status as 400 | 401 | 403, error.message);
});

// Liveness probe for load balancers and tests; touches no Durable Object and needs no token.
app.get("/healthz", (c) => c.text("ok"));

// One document's WebSocket (y-websocket: `new WebsocketProvider("wss://host/ws", name, doc, { params: { token } })`).
// Cheapest refusals first: the address's rate before any token work, the subject's after it.
app.get(
  "/ws/:name",
  rateLimiter<DocumentEnv>({ limiter: "UPGRADE_ADDRESS_LIMITER", per: "address", refuse: (c, detail) => refuseUpgrade(c, 429, detail) }),
  async function requireUpgrade(c, next) {
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
      return c.text("this endpoint only speaks WebSocket: send Upgrade: websocket", 426);
    }
    await next();
  },
  function answerProbe(c, next) {
    // A client on the HTTP fallback asking whether WebSockets pass again (client/fallback.ts):
    // it is accepted and closed here, with no token and no room.
    if (c.req.query("probe") === undefined) return next();
    const { 0: client, 1: server } = new WebSocketPair();
    server.accept();
    server.close(1000, "probe");
    return new Response(null, { status: 101, webSocket: client });
  },
  documentAccess(),
  rateLimiter<DocumentEnv>({ limiter: "UPGRADE_SUBJECT_LIMITER", per: "subject", refuse: (c, detail) => refuseUpgrade(c, 429, detail) }),
  (c) => c.var.room.fetch(withGrant(c.req.raw, c.var.grant)),
);

// The same document over plain HTTP, for networks that block WebSockets (docs/protocol.md, "HTTP fallback").
app.route("/sync", sync);

// The documents HTTP API (docs/api.md).
app.route("/api", api);

app.notFound((c) => c.text("not found", 404));

export default app;
