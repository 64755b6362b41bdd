/**
 * Generates schedule K of seed S: who takes part, and a mix of steps drawn with a seeded PRNG.
 * Steps are generated up front, without looking at the room's state (a step that finds
 * nothing to do is a no-op), so a schedule is a plain list that can be shrunk and replayed.
 *
 * The mix, roughly: a third delivering frames (one socket at a time, a few frames, in either
 * direction, so replies and relays interleave in many orders), edits and presence, clients
 * coming and going (clean closes, dropped connections), the clock moving (milliseconds to
 * days), the alarm (on time, early, late, twice), hibernation, process kills and storage
 * faults at a chosen statement of the next event, HTTP API calls, webhook endpoints failing
 * and recovering, and a rogue client's bad frames.
 *
 * Transports come from a second stream of the same seed ({@link chooseTransports}): in a little
 * under half of the schedules every client is on WebSockets (those schedules are exactly what
 * they were before the HTTP fallback existed), in the rest some or all clients are on the HTTP
 * fallback, and about one step in ten becomes an `http` step of the network around them.
 *
 * Quiet clients come from a third stream ({@link chooseQuiet}): in a quarter of the schedules
 * every honest client is the stock provider (those schedules are what they were before quiet
 * clients), in the rest some or all honest clients are the app's provider (quiet on
 * WebSockets, client/fallback.ts), a third of those in background tabs; there, some
 * disconnects become connections that vanish unnoticed, and some steps become `idle` stretches
 * (minutes with a working network, where rooms of quiet clients should sleep).
 */
import { MAX_VERSION_NAME_CHARS } from "../worker/limits";
import type { ClientSpec } from "./client";
import { mixSeed, Prng } from "./prng";
import type { ApiCall, Attack, Schedule, Step } from "./schedule";

export const DEFAULT_STEPS = 60;

/** `--transport`: the seeded mix, or every client starting on WebSockets (the schedules as before the HTTP fallback) or on HTTP. */
export const TRANSPORTS = ["mixed", "ws", "http"] as const;
export type Transports = (typeof TRANSPORTS)[number];

const STEP_MIX = {
  deliver: 30,
  deliverAll: 4,
  edit: 12,
  presence: 4,
  share: 1.5,
  connect: 3,
  disconnect: 3,
  advanceSmall: 7,
  advanceMedium: 3,
  advanceLarge: 1,
  alarm: 4,
  evict: 2,
  kill: 1.5,
  fault: 3,
  api: 5,
  endpoint: 2,
  attack: 3,
  reopen: 1,
} as const;

export function generateSchedule(seed: number, index: number, stepCount: number, transports: Transports = "mixed"): Schedule {
  const rng = new Prng(mixSeed(seed, index));
  const tokens = rng.chance(0.5);
  const honest = rng.int(2, 4);
  const clients: ClientSpec[] = [];
  const ids = new Set<number>();
  const freshId = () => {
    let id = 0;
    while (id === 0 || ids.has(id)) id = rng.uint32();
    ids.add(id);
    return id;
  };
  for (let i = 0; i < honest; i++) {
    const reader = i > 0 && rng.chance(0.2);
    clients.push({
      kind: reader ? "reader" : "honest",
      mode: reader ? "read" : rng.chance(0.2) ? "admin" : "write",
      name: `user${i}`,
      clientId: freshId(),
      ...(tokens ? { owner: `owner${i}` } : {}),
      tokenTtlMs: tokens && rng.chance(0.3) ? rng.int(20_000, 600_000) : null,
    });
  }
  if (rng.chance(0.5)) {
    clients.push({ kind: "rogue", mode: "write", name: "rogue", clientId: freshId(), ...(tokens ? { owner: "rogue" } : {}), tokenTtlMs: null });
  }
  const endpoints = rng.pick([0, 1, 1, 2, 2, 2]);
  const schedule: Schedule = {
    seed,
    index,
    runtimeSeed: rng.uint32(),
    // A fixed era with a seeded offset: times in logs stay readable, and day boundaries vary.
    epoch: Date.UTC(2027, 0, 1) + rng.int(0, 365 * 24 * 3600) * 1000,
    clients,
    apiClientId: freshId(),
    endpoints,
    steps: [],
  };
  for (let i = 0; i < stepCount; i++) schedule.steps.push(generateStep(rng, schedule, tokens));
  chooseTransports(new Prng(mixSeed(seed, index, HTTP_STREAM)), schedule, transports);
  chooseQuiet(new Prng(mixSeed(seed, index, QUIET_STREAM)), schedule);
  // From a stream of its own, so the steps stay what they were: half of the schedules with
  // webhooks run other events while a delivery's fetch is out.
  const fetches = new Prng(mixSeed(seed, index, FETCH_STREAM));
  if (endpoints > 0 && fetches.chance(0.5)) schedule.duringFetch = fetches.uint32();
  return schedule;
}

/** Seeds the stream of what runs beside an outbound fetch ("FTCH"). */
const FETCH_STREAM = 0x46544348;

/** Seeds the stream of quiet-client choices ("QUIE"), so that the other choices stay as they were. */
const QUIET_STREAM = 0x51554945;

/** Which honest clients are the app's provider (quiet on WebSockets), which connections vanish, and the `idle` stretches. */
function chooseQuiet(rng: Prng, schedule: Schedule): void {
  const mix = rng.weighted({ stock: 1, mixed: 2, quiet: 1 });
  if (mix === "stock") return;
  for (const client of schedule.clients) {
    if (client.kind === "rogue" || (mix === "mixed" && rng.chance(0.5))) continue;
    client.quiet = rng.chance(0.33) ? "background" : "visible";
  }
  for (let i = 0; i < schedule.steps.length; i++) {
    const step = schedule.steps[i]!;
    if (step.k === "disconnect" && step.how !== "clean" && rng.chance(0.4)) schedule.steps[i] = { ...step, how: "vanish" };
    else if (step.k !== "http" && rng.chance(0.03)) schedule.steps[i] = { k: "idle", ms: rng.int(20_000, 20 * 60_000) };
  }
}

/** Seeds the stream of HTTP choices ("HTTP"), apart from the main one so that WebSocket-only schedules stay as they were. */
const HTTP_STREAM = 0x48545450;

/** Which clients are on the HTTP fallback, and the `http` steps that replace some of the others. */
function chooseTransports(rng: Prng, schedule: Schedule, transports: Transports): void {
  const drawn = rng.weighted({ ws: 4, mixed: 4, http: 2 });
  const mix = transports === "mixed" ? drawn : transports;
  if (mix === "ws") return;
  for (const client of schedule.clients) if (mix === "http" || rng.chance(0.5)) client.transport = "http";
  const http = schedule.clients.flatMap((client, index) => (client.transport === "http" ? [index] : []));
  if (http.length === 0) return;
  // Half of them with storage calls that take a macrotask: the other order of what runs beside a handler.
  if (rng.chance(0.5)) schedule.slowIo = true;
  for (let i = 0; i < schedule.steps.length; i++) {
    if (!rng.chance(0.1)) continue;
    const act = rng.weighted({ poll: 3, post: 3, losePoll: 2, losePost: 2, switch: 0.5 });
    // Any client may change transport; the network steps are for clients that start on HTTP.
    schedule.steps[i] = { k: "http", c: act === "switch" ? rng.int(0, schedule.clients.length - 1) : rng.pick(http), act };
  }
}

function generateStep(rng: Prng, schedule: Schedule, tokens: boolean): Step {
  const clients = schedule.clients;
  const anyClient = () => rng.int(0, clients.length - 1);
  const rogue = clients.findIndex((client) => client.kind === "rogue");
  const writers = clients.flatMap((client, index) => (client.kind !== "rogue" && client.mode !== "read" ? [index] : []));
  const kind = rng.weighted(STEP_MIX);
  switch (kind) {
    case "deliver":
      return { k: "deliver", c: anyClient(), pick: round(rng.next()), dir: rng.pick(["in", "out", "both", "both"] as const), n: rng.int(1, 6) };
    case "deliverAll":
      return { k: "deliverAll" };
    case "edit": {
      // Readers edit too, now and then: a read-only client trying to write.
      const c = rng.chance(0.9) && writers.length > 0 ? rng.pick(writers) : anyClient();
      const paste = rng.chance(0.02);
      return { k: "edit", c, at: round(rng.next()), remove: rng.chance(0.3) ? rng.int(1, 8) : 0, insert: paste ? "p".repeat(rng.int(2_000, 24_000)) : rng.text(12) };
    }
    case "presence":
      return { k: "presence", c: anyClient(), cursor: rng.int(0, 500) };
    case "share": {
      if (writers.length < 2) return { k: "deliverAll" };
      const from = rng.pick(writers);
      const to = rng.pick(writers.filter((w) => w !== from));
      return { k: "share", from, to };
    }
    case "connect":
      return { k: "connect", c: anyClient() };
    case "disconnect":
      return { k: "disconnect", c: anyClient(), how: rng.pick(["clean", "drop", "drop", "error"] as const) };
    case "advanceSmall":
      return { k: "advance", ms: rng.int(1, 3_000), alarms: rng.chance(0.85) };
    case "advanceMedium":
      return { k: "advance", ms: rng.int(3_000, 70_000), alarms: rng.chance(0.85) };
    case "advanceLarge":
      return { k: "advance", ms: rng.int(10 * 60_000, 3 * 24 * 3_600_000), alarms: rng.chance(0.9) };
    case "alarm":
      return { k: "alarm", how: rng.pick(["early", "due", "due", "twice"] as const) };
    case "evict":
      return { k: "evict" };
    case "kill":
      return { k: "kill", at: rng.chance(0.2) ? null : rng.int(1, 14) };
    case "fault":
      return { k: "fault", at: rng.int(1, 14) };
    case "api":
      return { k: "api", call: apiCall(rng) };
    case "endpoint":
      return { k: "endpoint", e: rng.int(0, 1), up: rng.chance(0.5), failure: rng.pick([500, "timeout"] as const) };
    case "attack":
      if (rogue < 0) return { k: "presence", c: anyClient(), cursor: rng.int(0, 500) };
      return { k: "attack", c: rogue, attack: attack(rng, tokens) };
    case "reopen":
      return { k: "reopen", c: anyClient() };
  }
}

function apiCall(rng: Prng): ApiCall {
  const op = rng.weighted({ applyUpdate: 3, replaceText: 3, saveVersion: 2, restoreVersion: 2, deleteVersion: 0.5, destroy: 0.4, read: 2 });
  switch (op) {
    case "applyUpdate":
      return { op, at: round(rng.next()), insert: rng.text(10), skipPredecessor: rng.chance(0.15) };
    case "replaceText":
      return { op, at: round(rng.next()), remove: rng.int(0, 10), insert: rng.text(10) };
    case "saveVersion":
      return { op, name: `v${rng.int(1, 999)}`.slice(0, MAX_VERSION_NAME_CHARS) };
    case "restoreVersion":
    case "deleteVersion":
      return { op, pick: round(rng.next()) };
    case "destroy":
      return { op };
    case "read":
      return { op, what: rng.pick(["text", "update", "stats", "versions", "webhooks"] as const) };
  }
}

function attack(rng: Prng, tokens: boolean): Attack {
  const kinds = ["missingDeps", "missingDeps", "completeDeps", "oversized", "malformed", "truncated", "text", "badAwareness", ...(tokens ? (["spoof"] as const) : [])] as const;
  const kind = rng.pick(kinds);
  switch (kind) {
    case "missingDeps":
      return { kind, insert: rng.text(8) };
    case "malformed":
      return { kind, bytes: rng.int(1, 64), seed: rng.uint32() };
    case "truncated":
      return { kind, cut: round(rng.next()) };
    case "spoof":
      return { kind, state: JSON.stringify({ user: { name: "spoofed" } }) };
    case "badAwareness":
      return { kind, tooLarge: rng.chance(0.5) };
    default:
      return { kind };
  }
}

/** Fractions with three decimals: readable in printed schedules, and exact in JSON. */
function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
