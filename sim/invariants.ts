/**
 * The end of a schedule: heal, bring everyone back, and check what must then be true.
 *
 * Checked after every event (sim/world.ts): bounds (pending, held, sessions), the alarm set by
 * the earliest due duty, the core never throwing out of message/closed/alarm (an RPC may throw
 * only under an injected storage fault), frames from a socket the room closed changing nothing,
 * HTTP writes stored once answered, each save confirmation backed by storage when released, and
 * each answer to a client on the HTTP fallback carrying the session's frames in order (sim/http.ts).
 *
 * Checked here, once healed (no faults, endpoints up):
 * - storage handles: no room error says a table is missing: the core never uses the storage
 *   of before a DELETE after `deleteAll` (an HTTP session's end reported inside DELETE's
 *   `deleteAll` did, for each session but the first).
 * - convergence: every surviving honest client reconnects and resyncs; once nothing is in
 *   flight and nothing is held, all their texts equal the stored document's text, storage
 *   covers every client's state vector (it holds every edit any of them holds), and no client
 *   holds structs waiting for dependencies (the room never relays such), unless the document
 *   was deleted or expired while they were relayed to it before their base.
 * - webhooks: every attempt of one event carried one id and one body, and every id attempted is
 *   delivered (2xx) once its endpoint is up again, within the retry schedule; an event the
 *   outbox accounts for in its logs (`webhook_failed`: out of retries; `webhook_dropped` with
 *   its id: past a bound, superseded unseen, deleted) is exempt.
 */
import * as Y from "yjs";
import type { SimClient } from "./client";
import type { World } from "./world";

/** Rounds of "deliver everything, run timers, let the alarm fire" before convergence must hold. */
const MAX_HEAL_ROUNDS = 300;
/** How long past the schedule the webhook check lets the retry schedule run. */
const WEBHOOK_HEAL_MS = 3 * 24 * 60 * 60 * 1000;
/**
 * Alarm runs the webhook check makes at most within {@link WEBHOOK_HEAL_MS}: only a guard against
 * an alarm that never lets the clock move. An outbox of hundreds of events (each retried on its
 * own jittered time, so one alarm run each) needs more than a thousand runs to drain in under
 * two hours; a bound of 1,000 cut the wait short there and reported it as 72 h (20261211-2931).
 */
const MAX_WEBHOOK_HEAL_FIRINGS = 50_000;

const log = ({ event, fields }: { event: string; fields: Record<string, unknown> }) => `${event} ${JSON.stringify(fields)}`;

/** Clients whose documents must converge: honest, and not stopped by a 4400-4499 close. */
export function survivors(world: World): SimClient[] {
  return world.clients.filter((client) => client.honest && client.stopped === null);
}

export async function healAndCheck(world: World): Promise<void> {
  world.step = -1;
  world.storage.disarm();
  for (const url of world.endpoints.urls) world.endpoints.set(url, { up: true, failure: 500 });
  for (const client of world.clients) {
    if (!client.honest) client.disconnect(world.now);
  }
  // Every survivor resyncs: a connected client may hold edits the room lost (it resends them only in a handshake).
  for (const client of survivors(world)) {
    if (client.socket !== null) client.disconnect(world.now);
    client.connect(world.now);
  }
  if (!(await converge(world))) return;
  checkConvergence(world);
  if (world.violations.length > 0) return;
  await checkWebhooks(world);
}

/** Delivers, runs timers and alarms until the room is quiet and every survivor is synced. Returns false (and a violation) if it never gets there. */
async function converge(world: World): Promise<boolean> {
  for (let round = 0; round < MAX_HEAL_ROUNDS; round++) {
    if (world.violations.length > 0) return false;
    if (!(await world.deliverAll())) {
      world.violate("liveness", "delivering everything did not end: frames keep coming");
      return false;
    }
    await world.runClientTimers();
    if (world.inFlight > 0) continue;
    const figures = world.figures();
    const held = figures?.heldBytes ?? 0;
    const everyoneSynced = survivors(world).every((client) => client.connected && client.synced && (!client.unconfirmed || holdsOrphans(world, client)));
    if (everyoneSynced && held === 0) return true;
    // Nothing in flight: let time pass to the next timer or alarm (held updates are written by the alarm).
    const nextClient = Math.min(...world.clients.map((client) => client.nextTimer()));
    const alarm = world.storage.alarm;
    const next = Math.min(nextClient, alarm ?? Infinity);
    await world.advance(Math.max(1, Math.min(next - world.now, 60_000)), true);
  }
  const states = survivors(world)
    .map((client) => `c${client.index}: ${client.connected ? "connected" : "offline"}${client.synced ? ", synced" : ""}${client.unconfirmed ? `, ${client.edits - client.confirmedEdits} edits unconfirmed` : ""}`)
    .join("; ");
  world.violate("liveness", `the room did not settle within ${MAX_HEAL_ROUNDS} rounds after healing (${states}; held ${world.figures()?.heldBytes ?? "?"} bytes)`);
  return false;
}

/** Whether the document was deleted or expired during the schedule. */
function wasWiped(world: World): boolean {
  return world.logs.some((log) => log.event === "document_deleted" || log.event === "document_expired");
}

/**
 * A client relayed edits whose base a DELETE or expiry then removed holds them waiting for good
 * (Yjs keeps them, and the stock provider sends them with every sync). Its own edits made on
 * top of them wait with them: they can never be stored, so the room rightly never confirms
 * them (docs/architecture.md, known limits). Such a client is exempt from being confirmed.
 */
function holdsOrphans(world: World, client: SimClient): boolean {
  return wasWiped(world) && (client.doc.store.pendingStructs !== null || client.doc.store.pendingDs !== null);
}

function checkConvergence(world: World): void {
  const stored = world.stored.document();
  // A reader cannot bring back what a deletion or expiry removed (its sync step 2 is refused): it keeps its copy.
  const wiped = wasWiped(world);
  for (const client of survivors(world)) {
    if (client.spec.mode === "read" && wiped) continue;
    const text = client.text();
    if (text !== stored.text) {
      world.violate("convergence", `client ${client.index}'s text differs from the stored document's: ${JSON.stringify(text.slice(0, 60))} vs ${JSON.stringify(stored.text.slice(0, 60))} (lengths ${text.length}, ${stored.text.length})`);
    }
    for (const [id, clock] of Y.decodeStateVector(Y.encodeStateVector(client.doc))) {
      const have = stored.stateVector.get(id) ?? 0;
      if (have < clock) world.violate("convergence", `client ${client.index} holds client ${id}'s edits up to clock ${clock}, storage only up to ${have}`);
    }
    // After a DELETE or expiry a client may hold edits relayed to it whose base it never got
    // and nobody has any more: Yjs keeps them waiting for good (the room withholds nothing for them).
    if ((client.doc.store.pendingStructs !== null || client.doc.store.pendingDs !== null) && !wiped) {
      world.violate("convergence", `client ${client.index} holds updates waiting for dependencies: the room sent it something it could not integrate`);
    }
  }
}

async function checkWebhooks(world: World): Promise<void> {
  if (world.endpoints.urls.length === 0) return;
  // Nobody connected: the room's own timed work (bursts closing, retries) runs on the alarm.
  for (const client of world.clients) client.disconnect(world.now);
  await world.deliverAll();
  const healedAt = world.now;
  const until = healedAt + WEBHOOK_HEAL_MS;
  let firings = 0;
  for (; firings < MAX_WEBHOOK_HEAL_FIRINGS && world.now < until && world.violations.length === 0; firings++) {
    if (world.stored.webhooksOutstanding().length === 0) break;
    const alarm = world.storage.alarm;
    if (alarm === null) break;
    await world.advance(Math.max(0, alarm - world.now), true);
  }
  const outstanding = world.stored.webhooksOutstanding();
  if (outstanding.length > 0) {
    const sample = outstanding.slice(0, 3).map((row) => `${row.type} ${row.state} ${row.id}`).join(", ");
    // Say how long it really waited: the guard on alarm runs may end the wait before the deadline.
    const waited = `${((world.now - healedAt) / 3_600_000).toFixed(2)} h (${firings} waits for the alarm${firings >= MAX_WEBHOOK_HEAL_FIRINGS ? ", the guard's bound" : ""})`;
    world.violate("webhooks", `${outstanding.length} webhook events still undelivered ${waited} after every endpoint came back (${sample}; alarm ${world.storage.alarm === null ? "not set" : world.rel(world.storage.alarm)})`);
  }
  const missingTable = world.logs.find((log) => /no such table/.test(String(log.fields["error"] ?? "")));
  if (missingTable) world.violate("storage-handles", `the room used a table that was not there: ${log(missingTable)}`);
  // Accounted for by the outbox itself: out of retries, or dropped by a documented bound (webhook_dropped lists ids).
  const accounted = new Set<string>();
  for (const log of world.logs) {
    if (log.event === "webhook_failed") accounted.add(String(log.fields["id"]));
    if (log.event === "webhook_dropped") for (const id of (log.fields["ids"] as unknown[] | undefined) ?? []) accounted.add(String(id));
  }
  for (const url of world.endpoints.urls) {
    const attempts = world.endpoints.attempts.filter((attempt) => attempt.endpoint === url);
    const byId = new Map<string, typeof attempts>();
    const idsByBody = new Map<string, Set<string>>();
    for (const attempt of attempts) {
      byId.set(attempt.id, [...(byId.get(attempt.id) ?? []), attempt]);
      idsByBody.set(attempt.body, (idsByBody.get(attempt.body) ?? new Set()).add(attempt.id));
    }
    for (const [body, ids] of idsByBody) {
      if (ids.size > 1) world.violate("webhooks", `one event was sent to ${url} under ${ids.size} webhook-ids (receivers cannot deduplicate it): ${[...ids].join(", ")} for ${body.slice(0, 120)}`);
    }
    for (const [id, tries] of byId) {
      if (id === "") world.violate("webhooks", `an attempt to ${url} carried no webhook-id`);
      const types = new Set(tries.map((attempt) => `${attempt.type} ${attempt.body}`));
      if (types.size > 1) world.violate("webhooks", `webhook-id ${id} was sent to ${url} with ${types.size} different events`);
      if (tries.some((attempt) => attempt.outcome === 200) || accounted.has(id)) continue;
      const first = tries[0]!;
      world.violate("webhooks", `${first.type} ${id} was attempted ${tries.length} times to ${url} and never delivered after the endpoint came back`);
    }
  }
}
