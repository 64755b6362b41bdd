/**
 * The Worker: a thin router. It validates what it can without state (the document name, the
 * upgrade header) and forwards each document's WebSocket to that document's Durable Object,
 * which owns everything else.
 */
import { Hono } from "hono";
import { DOCUMENT_NAME_RULE, isValidDocumentName } from "./names";

export { Room } from "./room";

const app = new Hono<{ Bindings: Env }>();

// Liveness probe for load balancers and tests; touches no Durable Object.
app.get("/healthz", (c) => c.text("ok"));

// One document's WebSocket (y-websocket: `new WebsocketProvider("wss://host/ws", name, doc)`).
// Refusals are answered here so that no object is woken for them.
app.get("/ws/:name", (c) => {
  const name = c.req.param("name");
  if (!isValidDocumentName(name)) {
    return c.text(`invalid document name: use ${DOCUMENT_NAME_RULE}`, 400);
  }
  if (c.req.header("Upgrade")?.toLowerCase() !== "websocket") {
    return c.text("this endpoint only speaks WebSocket: send Upgrade: websocket", 426);
  }
  const room = c.env.ROOM.get(c.env.ROOM.idFromName(name));
  return room.fetch(c.req.raw);
});

app.notFound((c) => c.text("not found", 404));

export default app;
