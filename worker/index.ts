/**
 * The Worker: a thin router. It checks what it can without state (document name, upgrade
 * header, origin, token) and forwards each document's WebSocket to that document's Durable
 * Object, which owns everything else. Refusals are answered here, so no room is woken for them.
 */
import { Hono } from "hono";
import { withGrant } from "./access";
import { api } from "./api";
import { authorize } from "./auth";
import { logEvent } from "./log";
import { DOCUMENT_NAME_RULE, isValidDocumentName } from "./names";
import { TokenRefused } from "./tokens";

export { Room } from "./room";

const app = new Hono<{ Bindings: Env }>();

// Liveness probe for load balancers and tests; touches no Durable Object and needs no token.
app.get("/healthz", (c) => c.text("ok"));

// One document's WebSocket (y-websocket: `new WebsocketProvider("wss://host/ws", name, doc, { params: { token } })`).
app.get("/ws/:name", async (c) => {
  const name = c.req.param("name");
  if (!isValidDocumentName(name)) {
    return c.text(`invalid document name: use ${DOCUMENT_NAME_RULE}`, 400);
  }
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    return c.text("this endpoint only speaks WebSocket: send Upgrade: websocket", 426);
  }
  const grant = await authorize(c.req.raw, c.env, name);
  if (grant instanceof TokenRefused) {
    logEvent("upgrade_refused", { room: name, status: grant.status, reason: grant.message });
    return c.text(grant.message, grant.status);
  }
  const room = c.env.ROOM.get(c.env.ROOM.idFromName(name));
  return room.fetch(withGrant(c.req.raw, grant));
});

// The documents HTTP API (README, "API").
app.route("/api", api);

app.notFound((c) => c.text("not found", 404));

export default app;
