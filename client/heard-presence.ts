/**
 * Presence the room sent, remembered so that it is not sent back. The stock y-websocket
 * provider re-sends every presence change it receives; such an echo tells the room nothing (it
 * drops what it already has), but over the HTTP fallback each one would be a request: two
 * thirds of an idle client's (measured, `npm run bench -- --scenario fallback`).
 * client/http-socket.ts keeps one per connection; the simulation's model of it (sim/http.ts) too.
 */
import * as decoding from "lib0/decoding";
import { MessageType, readAwarenessEntries } from "../worker/protocol";

/** Client ids whose presence clocks are remembered; past it they start over. */
const MAX_HEARD_CLIENTS = 10_000;

export class HeardPresence {
  /** The presence clock of each client as the room last sent it. */
  private readonly clocks = new Map<number, number>();

  /** Remembers the presence clocks in a frame from the room (any other frame is ignored). */
  note(frame: Uint8Array): void {
    const entries = awarenessEntries(frame);
    if (entries === null) return;
    if (this.clocks.size > MAX_HEARD_CLIENTS) this.clocks.clear();
    for (const { clientId, clock } of entries) this.clocks.set(clientId, clock);
  }

  /** Whether `frame` is presence the room sent, every entry at the clock it came with. */
  isEcho(frame: Uint8Array): boolean {
    const entries = awarenessEntries(frame);
    return entries !== null && entries.length > 0 && entries.every(({ clientId, clock }) => this.clocks.get(clientId) === clock);
  }
}

/** The entries of an awareness frame (client and clock), or null for any other frame or one that does not decode. */
function awarenessEntries(frame: Uint8Array): { clientId: number; clock: number }[] | null {
  if (frame[0] !== MessageType.awareness) return null;
  try {
    const decoder = decoding.createDecoder(frame);
    decoding.readVarUint(decoder);
    return Array.from(readAwarenessEntries(decoding.readVarUint8Array(decoder)), ({ clientId, clock }) => ({ clientId, clock }));
  } catch {
    return null;
  }
}
