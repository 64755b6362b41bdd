import { describe, expect, it } from "vitest";
import { PresenceRegistry } from "../../worker/awareness";
import { MAX_CLAIMS_PER_SOCKET } from "../../worker/limits";
import { AWARENESS_TIMEOUT_MS, ProtocolError, type WireAwarenessEntry } from "../../worker/protocol";

const state = (name: string) => JSON.stringify({ name });

/** An entry as it arrives on the wire: the state's JSON as UTF-8 bytes (`null` for a removal). */
const wire = (clientId: number, clock: number, json: string | null): WireAwarenessEntry => ({
  clientId,
  clock,
  state: new TextEncoder().encode(json ?? "null"),
});

describe("presence registry rules", () => {
  it("accepts only newer clocks, and a removal at the same clock", () => {
    const registry = new PresenceRegistry<string>();
    expect(registry.apply("a", [wire(1, 2, state("v2"))], 0)).toHaveLength(1);
    expect(registry.apply("a", [wire(1, 2, state("again"))], 0)).toHaveLength(0);
    expect(registry.apply("a", [wire(1, 1, state("older"))], 0)).toHaveLength(0);
    expect(registry.states()).toEqual([{ clientId: 1, clock: 2, state: state("v2") }]);
    expect(registry.apply("a", [wire(1, 2, null)], 0)).toHaveLength(1);
    expect(registry.states()).toEqual([]);
  });

  it("refuses a stale echo of a removed client but lets it come back at its own clock", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("a", [wire(1, 5, state("alice"))], 0);
    registry.removeSocket("a");
    expect(registry.apply("b", [wire(1, 4, state("stale"))], 0)).toHaveLength(0);
    expect(registry.apply("a2", [wire(1, 5, state("alice"))], 0)).toHaveLength(1);
  });

  it("drops entries for a client another socket controls", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("a", [wire(1, 1, state("alice"))], 0);
    expect(registry.apply("m", [wire(1, 9, state("mallory"))], 0)).toHaveLength(0);
    expect(registry.apply("m", [wire(1, 9, null)], 0)).toHaveLength(0);
    expect(registry.heldBy("a")).toEqual({ 1: { clock: 1, state: state("alice"), lastSeen: 0 } });
  });

  it("rejects a socket's states over the budget without changing anything", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("a", [wire(1, 1, state("alice"))], 0);
    const huge = state("x".repeat(9_000));
    expect(() => registry.apply("a", [wire(2, 1, huge)], 0)).toThrow(ProtocolError);
    expect(registry.states()).toEqual([{ clientId: 1, clock: 1, state: state("alice") }]);
  });

  it("sweeps clients not renewed within the timeout and reports the sockets that lost them", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("a", [wire(1, 1, state("alice"))], 0);
    registry.apply("b", [wire(2, 1, state("bob"))], 0);
    registry.apply("b", [wire(2, 2, state("bob"))], AWARENESS_TIMEOUT_MS - 1);
    expect(registry.nextExpiry()).toBe(AWARENESS_TIMEOUT_MS);
    const swept = registry.sweep(AWARENESS_TIMEOUT_MS);
    expect(swept.removed).toEqual([{ clientId: 1, clock: 1, state: null }]);
    expect(swept.changedSockets).toEqual(["a"]);
    expect(registry.states().map((entry) => entry.clientId)).toEqual([2]);
  });

  it("counts presence in UTF-8 bytes, which bound the attachment, not UTF-16 units", () => {
    const registry = new PresenceRegistry<string>();
    // 3,000 CJK characters: 3,000 UTF-16 units, but 9,000 UTF-8 bytes, over the 8 KiB budget.
    expect(() => registry.apply("a", [wire(1, 1, state("漢".repeat(3_000)))], 0)).toThrow(/awareness state too large/);
    expect(registry.apply("a", [wire(1, 1, state("漢".repeat(2_000)))], 0)).toHaveLength(1);
  });

  it("refuses a flood of entries at the budget, after decoding no more than the budget", () => {
    const registry = new PresenceRegistry<string>();
    let decoded = 0;
    function* flood(): Generator<WireAwarenessEntry> {
      for (let id = 1; id <= 2_000_000; id++) {
        decoded++;
        yield wire(id, 1, "{}");
      }
    }
    expect(() => registry.apply("m", flood(), 0)).toThrow(/awareness state too large/);
    // Each entry is charged 32 bytes of overhead plus its JSON: the budget stops it at about 240.
    expect(decoded).toBeLessThan(300);
    expect(registry.states()).toEqual([]);
  });

  it("changes a client named many times in one update once, and skips entries another socket owns undecoded", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("a", [wire(1, 1, state("alice"))], 0);
    const notJson = { clientId: 1, clock: 99, state: new TextEncoder().encode("{not json") };
    // Owned by "a": "m" cannot change it, and its bytes are never decoded (they are not JSON).
    expect(registry.apply("m", [notJson], 0)).toEqual([]);
    const changes = registry.apply("m", [wire(2, 1, state("m1")), wire(2, 2, state("m2")), wire(2, 3, state("m3"))], 0);
    expect(changes).toEqual([{ clientId: 2, clock: 3, state: state("m3") }]);
  });

  it("claims at most MAX_CLAIMS_PER_SOCKET client IDs per socket, handed to the room once per update", () => {
    const kept: [number, string][][] = [];
    const registry = new PresenceRegistry<string>((claims) => kept.push(claims));
    const many = Array.from({ length: MAX_CLAIMS_PER_SOCKET + 10 }, (_, i) => wire(100 + i, 1, "{}"));
    expect(registry.apply("m", many, 0, "mallory")).toHaveLength(many.length);
    expect(kept).toHaveLength(1);
    expect(kept[0]).toHaveLength(MAX_CLAIMS_PER_SOCKET);
    // The unclaimed ones can be taken by another owner once the socket is gone; the claimed cannot.
    registry.removeSocket("m");
    expect(registry.apply("a", [wire(100 + MAX_CLAIMS_PER_SOCKET, 2, "{}")], 0, "alice")).toHaveLength(1);
    expect(registry.apply("a", [wire(100, 2, "{}")], 0, "alice")).toHaveLength(0);
  });
});
