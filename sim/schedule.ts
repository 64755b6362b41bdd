/**
 * A schedule: who takes part (its header) and the steps, each carrying every parameter it
 * needs, so that dropping steps (shrinking) leaves the others meaning the same thing, and a
 * schedule written to a file replays exactly (sim/failures/).
 */
import type { ClientSpec } from "./client";

export type ApiCall =
  | { op: "applyUpdate"; at: number; insert: string; skipPredecessor: boolean }
  | { op: "replaceText"; at: number; remove: number; insert: string }
  | { op: "saveVersion"; name: string }
  /** `pick` chooses among the versions that exist then (a fraction of the list). */
  | { op: "restoreVersion"; pick: number }
  | { op: "deleteVersion"; pick: number }
  | { op: "destroy" }
  | { op: "read"; what: "text" | "update" | "stats" | "versions" | "webhooks" };

export type Attack =
  /** An update whose predecessor (made in a private document) is never sent; `complete` sends the predecessor too, later. */
  | { kind: "missingDeps"; insert: string }
  | { kind: "completeDeps" }
  | { kind: "oversized" }
  | { kind: "malformed"; bytes: number; seed: number }
  | { kind: "truncated"; cut: number }
  | { kind: "text" }
  /** Awareness entries for other clients' IDs, with newer clocks. */
  | { kind: "spoof"; state: string }
  | { kind: "badAwareness"; tooLarge: boolean };

export type Step =
  | { k: "connect"; c: number }
  /** `vanish`: the connection goes silent both ways and the runtime never notices (sim/host.ts `vanish`); on HTTP, a drop. */
  | { k: "disconnect"; c: number; how: "clean" | "drop" | "error" | "vanish" }
  | { k: "edit"; c: number; at: number; remove: number; insert: string }
  | { k: "presence"; c: number; cursor: number }
  /** Tabs of one browser: `to` receives `from`'s whole document over BroadcastChannel (not sent to the room). */
  | { k: "share"; from: number; to: number }
  /** Delivers up to `n` items on one of client `c`'s sockets (`pick` chooses which), in the given direction. */
  | { k: "deliver"; c: number; pick: number; dir: "in" | "out" | "both"; n: number }
  | { k: "deliverAll" }
  | { k: "advance"; ms: number; alarms: boolean }
  /**
   * Time passes with everyone awake and the network working: the clock moves from timer to
   * timer (alarms on time), everything in flight is delivered after each, and the object
   * hibernates whenever it has had no event for 10 s (sim/world.ts `idle`).
   */
  | { k: "idle"; ms: number }
  | { k: "alarm"; how: "early" | "due" | "twice" }
  | { k: "evict" }
  /** The process dies at statement `at` of the next event (null: now, between events). */
  | { k: "kill"; at: number | null }
  | { k: "fault"; at: number }
  | { k: "api"; call: ApiCall }
  | { k: "endpoint"; e: number; up: boolean; failure: 500 | "timeout" }
  | { k: "attack"; c: number; attack: Attack }
  /** An app calls provider.connect() again after a 4400-4499 close (a page reload). */
  | { k: "reopen"; c: number }
  /**
   * The network of a client on the HTTP fallback (sim/http.ts): its poll or its POST reaches the
   * room now, ahead of its other requests; a poll's answer is lost (or the held poll cut), or a
   * POST is handled and its answer lost: the request fails and the client's HttpSocket, which
   * never retries, ends with 1006. `switch`: client/fallback.ts changes transport (on HTTP, a probe found WebSockets
   * working: the HTTP connection closes 1000 and leaves; on a WebSocket, they stopped working:
   * it drops), and the next connection goes the other way.
   */
  | { k: "http"; c: number; act: "poll" | "post" | "losePoll" | "losePost" | "switch" };

export interface Schedule {
  /** The run's seed and this schedule's number in it. */
  seed: number;
  index: number;
  /** Seeds the randomness the code under test asks for (Yjs client IDs, webhook ids, jitter). */
  runtimeSeed: number;
  epoch: number;
  clients: ClientSpec[];
  /** The client ID of the HTTP API writer's document. */
  apiClientId: number;
  /** How many webhook endpoints (0: webhooks off). */
  endpoints: number;
  /**
   * The alarm calls and `deleteAll` resolve a macrotask later instead of at once (sim/sqlite.ts
   * `io`): what runs beside the handler inside an event (an HTTP session's end reported to the
   * core) then runs while the handler waits, as beside real I/O. Absent: at once.
   */
  slowIo?: true;
  /**
   * Seeds what runs while an event awaits an outbound fetch (a webhook delivery): other events,
   * as workerd runs them then (sim/world.ts `whileFetching`). Absent: nothing does (the
   * schedules saved before the model had it replay as they were).
   */
  duringFetch?: number;
  steps: Step[];
}

/** One step per line, for failure reports. */
export function formatStep(step: Step, index: number): string {
  const { k, ...rest } = step;
  const fields = Object.entries(rest)
    .map(([key, value]) => `${key}=${typeof value === "string" ? JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…(${value.length})` : value) : JSON.stringify(value)}`)
    .join(" ");
  return `${String(index).padStart(3)}  ${k}${fields ? ` ${fields}` : ""}`;
}
