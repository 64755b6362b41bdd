import { describe, expect, it } from "vitest";
import { PresenceRegistry } from "../../worker/awareness";
import { AWARENESS_TIMEOUT_MS, ProtocolError } from "../../worker/protocol";

const state = (name: string) => JSON.stringify({ name });

describe("presence registry rules", () => {
  it("accepts only newer clocks, and a removal at the same clock", () => {
    const registry = new PresenceRegistry<string>();
    expect(registry.apply("a", [{ clientId: 1, clock: 2, state: state("v2") }], 0)).toHaveLength(1);
    expect(registry.apply("a", [{ clientId: 1, clock: 2, state: state("again") }], 0)).toHaveLength(0);
    expect(registry.apply("a", [{ clientId: 1, clock: 1, state: state("older") }], 0)).toHaveLength(0);
    expect(registry.states()).toEqual([{ clientId: 1, clock: 2, state: state("v2") }]);
    expect(registry.apply("a", [{ clientId: 1, clock: 2, state: null }], 0)).toHaveLength(1);
    expect(registry.states()).toEqual([]);
  });

  it("refuses a stale echo of a removed client but lets it come back at its own clock", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("a", [{ clientId: 1, clock: 5, state: state("alice") }], 0);
    registry.removeSocket("a");
    expect(registry.apply("b", [{ clientId: 1, clock: 4, state: state("stale") }], 0)).toHaveLength(0);
    expect(registry.apply("a2", [{ clientId: 1, clock: 5, state: state("alice") }], 0)).toHaveLength(1);
  });

  it("drops entries for a client another socket controls", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("a", [{ clientId: 1, clock: 1, state: state("alice") }], 0);
    expect(registry.apply("m", [{ clientId: 1, clock: 9, state: state("mallory") }], 0)).toHaveLength(0);
    expect(registry.apply("m", [{ clientId: 1, clock: 9, state: null }], 0)).toHaveLength(0);
    expect(registry.heldBy("a")).toEqual({ 1: { clock: 1, state: state("alice"), lastSeen: 0 } });
  });

  it("rejects a socket's states over the budget without changing anything", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("a", [{ clientId: 1, clock: 1, state: state("alice") }], 0);
    const huge = state("x".repeat(9_000));
    expect(() => registry.apply("a", [{ clientId: 2, clock: 1, state: huge }], 0)).toThrow(ProtocolError);
    expect(registry.states()).toEqual([{ clientId: 1, clock: 1, state: state("alice") }]);
  });

  it("sweeps clients not renewed within the timeout and reports sockets left silent", () => {
    const registry = new PresenceRegistry<string>();
    registry.apply("a", [{ clientId: 1, clock: 1, state: state("alice") }], 0);
    registry.apply("b", [{ clientId: 2, clock: 1, state: state("bob") }], 0);
    registry.apply("b", [{ clientId: 2, clock: 2, state: state("bob") }], AWARENESS_TIMEOUT_MS - 1);
    expect(registry.nextExpiry()).toBe(AWARENESS_TIMEOUT_MS);
    const swept = registry.sweep(AWARENESS_TIMEOUT_MS);
    expect(swept.removed).toEqual([{ clientId: 1, clock: 1, state: null }]);
    expect(swept.silentSockets).toEqual(["a"]);
    expect(registry.states().map((entry) => entry.clientId)).toEqual([2]);
  });
});
