/**
 * The Worker: a thin router. It checks what it can without state (rate limits, document name,
 * upgrade header, origin, token) and forwards each document's WebSocket to that document's
 * Durable Object, which owns everything else. Refusals are answered here, so no room is woken
 * for them.
 */
import { Hono, type Context } from "hono";
import { withGrant } from "./access";
import { api } from "./api";
import { authorize } from "./auth";
import { logEvent } from "./log";
import { DOCUMENT_NAME_RULE, isValidDocumentName } from "./names";
import { rateLimiter, type DoorEnv } from "./rate-limit";
import { TokenRefused } from "./tokens";

export { Room } from "./room";

const app = new Hono<DoorEnv>();

function refuseUpgrade(c: Context<DoorEnv>, status: 401 | 403 | 429, reason: string): Response {
  logEvent("upgrade_refused", { room: c.req.param("name"), status, reason });
  return c.text(reason, status);
}

// Liveness probe for load balancers and tests; touches no Durable Object and needs no token.
app.get("/healthz", (c) => c.text("ok"));

// One document's WebSocket (y-websocket: `new WebsocketProvider("wss://host/ws", name, doc, { params: { token } })`).
// Cheapest refusals first: the address's rate before any token work, the subject's after it.
app.get(
  "/ws/:name",
  rateLimiter({ limiter: "UPGRADE_ADDRESS_LIMITER", per: "address", refuse: (c, detail) => refuseUpgrade(c, 429, detail) }),
  async function admitUpgrade(c, next) {
    const name = c.req.param("name");
    if (!isValidDocumentName(name)) {
      return c.text(`invalid document name: use ${DOCUMENT_NAME_RULE}`, 400);
    }
    if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
      return c.text("this endpoint only speaks WebSocket: send Upgrade: websocket", 426);
    }
    const grant = await authorize(c.req.raw, c.env, name);
    if (grant instanceof TokenRefused) return refuseUpgrade(c, grant.status, grant.message);
    c.set("grant", grant);
    await next();
  },
  rateLimiter({ limiter: "UPGRADE_SUBJECT_LIMITER", per: "subject", refuse: (c, detail) => refuseUpgrade(c, 429, detail) }),
  async (c) => {
    const name = c.req.param("name");
    const room = c.env.ROOM.get(c.env.ROOM.idFromName(name));
    return room.fetch(withGrant(c.req.raw, c.var.grant));
  },
);

// The documents HTTP API (README, "API").
app.route("/api", api);

app.notFound((c) => c.text("not found", 404));

export default app;
