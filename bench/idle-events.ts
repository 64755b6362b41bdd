/**
 * What reached a room's object during the idle scenario (bench/idle.ts), as the objects
 * themselves log it: the bench Worker's rooms (bench/worker.ts `BenchRoom`, bench/peer.ts) write
 * one JSON line per entry point for documents named with {@link IDLE_ROOM_PREFIX}, and the
 * driver reads them back from `wrangler dev`'s output. Only those documents log: a line per
 * frame would add its own cost to the typing scenarios' CPU figures.
 *
 * Runtime-free: compiled into the bench Worker (workerd) and imported by the driver (Node).
 */

/** Documents whose objects log their events; the idle scenario names its rooms so. */
export const IDLE_ROOM_PREFIX = "idle-";

/**
 * An entry point of the object: `construct` (the constructor ran: a first start, or a wake
 * after the runtime evicted or hibernated it), `connect` (a WebSocket accepted), `message` (a
 * frame the object handled; text `ping` never gets here, the runtime answers it), `close`,
 * `alarm`.
 */
export type IdleEventKind = "construct" | "connect" | "message" | "close" | "alarm";

export interface IdleEvent {
  doc: string;
  kind: IdleEventKind;
  /** The object's `Date.now()` (the wall clock, the driver's too): when the event began. */
  at: number;
}

/** The key that marks our lines among everything else wrangler prints. */
const MARK = "benchIdleEvent";

/** Logs `kind` for document `doc` if it is one of the idle scenario's (else nothing). */
export function logIdleEvent(doc: string | undefined, kind: IdleEventKind): void {
  if (!doc?.startsWith(IDLE_ROOM_PREFIX)) return;
  console.log(JSON.stringify({ [MARK]: kind, doc, at: Date.now() }));
}

const LINE = new RegExp(`\\{"${MARK}":.*?\\}`, "g");

/** Every event logged in `output` (wrangler dev's stdout and stderr), in order of appearance. */
export function parseIdleEvents(output: string): IdleEvent[] {
  const events: IdleEvent[] = [];
  for (const match of output.matchAll(LINE)) {
    try {
      const line = JSON.parse(match[0]) as { [MARK]: IdleEventKind; doc: string; at: number };
      events.push({ doc: line.doc, kind: line[MARK], at: line.at });
    } catch {
      // A line cut by another process's output: not ours to count.
    }
  }
  return events;
}
