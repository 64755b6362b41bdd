import { describe, expect, it } from "vitest";
import { PresenceRegistry, type ClaimChange } from "../../worker/awareness";
import { MAX_CLAIMS_PER_OWNER, MAX_CLAIMS_PER_SOCKET, MAX_PRESENCE_CLAIMS } from "../../worker/limits";
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
    expect(registry.apply("a", [wire(1, 2, state("v2"))], 0).changes).toHaveLength(1);
    expect(registry.apply("a", [wire(1, 2, state("again"))], 0).changes).toHaveLength(0);
    expect(registry.apply("a", [wire(1, 1, state("older"))], 0).changes).toHaveLength(0);
    expect(registry.statesFor(0)).toEqual([{ clientId: 1, clock: 2, state: state("v2") }]);
    expect(registry.apply("a", [wire(1, 2, null)], 0).changes).toHaveLength(1);
    expect(registry.statesFor(0)).toEqual([]);
  });

  it("refuses a stale echo of a removed client but lets it come back at its own clock", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("a", [wire(1, 5, state("alice"))], 0);
    registry.removeSocket("a", 0);
    expect(registry.apply("b", [wire(1, 4, state("stale"))], 0).changes).toHaveLength(0);
    expect(registry.apply("a2", [wire(1, 5, state("alice"))], 0).changes).toHaveLength(1);
  });

  it("drops entries for a client another socket controls", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("a", [wire(1, 1, state("alice"))], 0);
    expect(registry.apply("m", [wire(1, 9, state("mallory"))], 0).changes).toHaveLength(0);
    expect(registry.apply("m", [wire(1, 9, null)], 0).changes).toHaveLength(0);
    expect(registry.heldBy("a")).toEqual({ 1: { clock: 1, state: state("alice"), lastSeen: 0 } });
  });

  it("rejects a socket's states over the budget without changing anything", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("a", [wire(1, 1, state("alice"))], 0);
    const huge = state("x".repeat(9_000));
    expect(() => registry.apply("a", [wire(2, 1, huge)], 0)).toThrow(ProtocolError);
    expect(registry.statesFor(0)).toEqual([{ clientId: 1, clock: 1, state: state("alice") }]);
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
    expect(registry.statesFor(0).map((entry) => entry.clientId)).toEqual([2]);
  });

  it("counts presence in UTF-8 bytes, which bound the attachment, not UTF-16 units", () => {
    const registry = new PresenceRegistry<string>();
    // 3,000 CJK characters: 3,000 UTF-16 units, but 9,000 UTF-8 bytes, over the 8 KiB budget.
    expect(() => registry.apply("a", [wire(1, 1, state("漢".repeat(3_000)))], 0)).toThrow(/awareness state too large/);
    expect(registry.apply("a", [wire(1, 1, state("漢".repeat(2_000)))], 0).changes).toHaveLength(1);
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
    expect(registry.statesFor(0)).toEqual([]);
  });

  it("changes a client named many times in one update once, and skips entries another socket owns undecoded", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("a", [wire(1, 1, state("alice"))], 0);
    const notJson = { clientId: 1, clock: 99, state: new TextEncoder().encode("{not json") };
    // Owned by "a": "m" cannot change it, and its bytes are never decoded (they are not JSON).
    expect(registry.apply("m", [notJson], 0).changes).toEqual([]);
    const { changes } = registry.apply("m", [wire(2, 1, state("m1")), wire(2, 2, state("m2")), wire(2, 3, state("m3"))], 0);
    expect(changes).toEqual([{ clientId: 2, clock: 3, state: state("m3") }]);
  });

  it("claims at most MAX_CLAIMS_PER_SOCKET client IDs per socket, handed to the room once per update", () => {
    const kept: ClaimChange[][] = [];
    const registry = new PresenceRegistry<string>((claims) => kept.push(claims));
    const many = Array.from({ length: MAX_CLAIMS_PER_SOCKET + 10 }, (_, i) => wire(100 + i, 1, "{}"));
    expect(registry.apply("m", many, 0, "mallory").changes).toHaveLength(many.length);
    expect(kept).toHaveLength(1);
    expect(kept[0]).toHaveLength(MAX_CLAIMS_PER_SOCKET);
    // The unclaimed ones can be taken by another owner once the socket is gone; the claimed cannot.
    registry.removeSocket("m", 0);
    expect(registry.apply("a", [wire(100 + MAX_CLAIMS_PER_SOCKET, 2, "{}")], 0, "alice").changes).toHaveLength(1);
    expect(registry.apply("a", [wire(100, 2, "{}")], 0, "alice").changes).toHaveLength(0);
  });

  it("leaves no trace of refused entries: nothing relayed, and the owner's return needs no more than its own clock", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("ada", [wire(1, 5, state("ada"))], 0, "ada");
    // Held by ada's socket: refused, whatever the clock or state.
    expect(registry.apply("mallory", [wire(1, 105, state("mallory")), wire(1, 105, null)], 0, "mallory")).toMatchObject({ changes: [], renew: [] });
    expect(registry.apply("ada", [wire(1, 6, state("ada moved"))], 0, "ada").changes).toEqual([{ clientId: 1, clock: 6, state: state("ada moved") }]);
    expect(registry.removeSocket("ada", 0).removed).toEqual([{ clientId: 1, clock: 6, state: null }]);
    // Departed but claimed by ada: refused too, and no tombstone moves.
    expect(registry.apply("mallory", [wire(1, 106, state("mallory")), wire(1, 106, null)], 0, "mallory")).toMatchObject({ changes: [], renew: [] });
    expect(registry.apply("ada again", [wire(1, 6, state("ada moved"))], 0, "ada").changes).toHaveLength(1);
  });

  it("asks a client back at its removal's clock to renew, since peers that saw the removal ignore that state", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("a", [wire(1, 5, state("alice"))], 0);
    registry.removeSocket("a", 0);
    // A stock provider reconnecting re-sends its state unchanged: relayed, and sent its removal back.
    expect(registry.apply("a2", [wire(1, 5, state("alice"))], 0)).toMatchObject({
      changes: [{ clientId: 1, clock: 5, state: state("alice") }],
      renew: [{ clientId: 1, clock: 5, state: null }],
    });
    // Its answer, under the next clock, is an ordinary change; so is a return under a newer clock.
    expect(registry.apply("a2", [wire(1, 6, state("alice"))], 0).renew).toEqual([]);
    registry.removeSocket("a2", 0);
    expect(registry.apply("a3", [wire(1, 7, state("alice"))], 0)).toMatchObject({ changes: [{ clientId: 1, clock: 7, state: state("alice") }], renew: [] });
  });

  it("caps claims per owner: one owner cycling IDs over many sockets replaces only its own, and storage mirrors the claims", () => {
    const stored = new Map<number, string>();
    const keep = (changes: ClaimChange[]) => {
      for (const [clientId, owner] of changes) owner === null ? stored.delete(clientId) : stored.set(clientId, owner);
    };
    const registry = new PresenceRegistry<string>(keep);
    registry.apply("alice", [wire(1, 1, "{}")], 0, "alice");
    registry.removeSocket("alice", 0);
    // Enough sockets to have pushed every other claim out under a room-wide oldest-first rule.
    const sockets = Math.ceil(MAX_PRESENCE_CLAIMS / MAX_CLAIMS_PER_SOCKET) + 1;
    for (let socket = 0; socket < sockets; socket++) {
      const ids = Array.from({ length: MAX_CLAIMS_PER_SOCKET }, (_, i) => wire(1_000 + socket * MAX_CLAIMS_PER_SOCKET + i, 1, "{}"));
      registry.apply(`mallory-${socket}`, ids, 0, "mallory");
      registry.removeSocket(`mallory-${socket}`, 0);
    }
    expect([...stored.values()].filter((owner) => owner === "mallory")).toHaveLength(MAX_CLAIMS_PER_OWNER);
    expect(stored.get(1)).toBe("alice");
    expect(registry.apply("mallory", [wire(1, 2, "{}")], 0, "mallory").changes).toEqual([]);
    // What storage kept loads back into the same rules.
    const reloaded = new PresenceRegistry<string>(keep);
    reloaded.restoreClaims(stored);
    expect(reloaded.apply("mallory", [wire(1, 2, "{}")], 0, "mallory").changes).toEqual([]);
    expect(reloaded.apply("alice", [wire(1, 2, "{}")], 0, "alice").changes).toHaveLength(1);
  });

  it("past the room's cap forgets a claim of the owner holding the most, never of one holding fewer", () => {
    const stored = new Map<number, string>();
    const registry = new PresenceRegistry<string>((changes) => {
      for (const [clientId, owner] of changes) owner === null ? stored.delete(clientId) : stored.set(clientId, owner);
    });
    registry.apply("alice", [wire(1, 1, "{}")], 0, "alice");
    registry.removeSocket("alice", 0);
    // Many owners, each at its own cap: together they fill the room's claims to the brim.
    const owners = MAX_PRESENCE_CLAIMS / MAX_CLAIMS_PER_OWNER;
    let id = 1_000;
    for (let owner = 0; owner < owners; owner++) {
      for (let socket = 0; socket < MAX_CLAIMS_PER_OWNER / MAX_CLAIMS_PER_SOCKET; socket++) {
        const ids = Array.from({ length: MAX_CLAIMS_PER_SOCKET }, () => wire(id++, 1, "{}"));
        registry.apply(`s${id}`, ids, 0, `owner-${owner}`);
        registry.removeSocket(`s${id}`, 0);
      }
    }
    expect(stored.size).toBe(MAX_PRESENCE_CLAIMS);
    expect(stored.get(1)).toBe("alice");
    expect(registry.apply("mallory", [wire(1, 2, "{}")], 0, "owner-0").changes).toEqual([]);
  });
});
