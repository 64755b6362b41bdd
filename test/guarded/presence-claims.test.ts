/**
 * Presence IDs have owners: with tokens, a client ID belongs to the token subject that first
 * claimed it, so nobody else can take it over once its socket closes, across an eviction too;
 * what others send for it leaves no trace, and no owner can push out another's claims.
 */
import { env, evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { MAX_CLAIMS_PER_OWNER, MAX_CLAIMS_PER_SOCKET } from "../../worker/limits";
import { MessageType, decodeAwarenessUpdate, encodeAwareness, type AwarenessEntry } from "../../worker/protocol";
import { signToken } from "../../worker/tokens";
import * as decoding from "lib0/decoding";
import { TestClient, roomName, waitFor } from "../worker/client";

const tokenFor = (room: string, sub: string, mode: "read" | "write" = "write") =>
  signToken({ doc: room, mode, exp: Math.floor(Date.now() / 1000) + 3_600, sub, name: sub }, env.AUTH_SECRET!);

const ALICE_ID = 31337;
const stateOf = (name: string) => JSON.stringify({ user: { name, color: "#30638e" } });
const nameSeenBy = (client: TestClient, clientId: number) => (client.presence().get(clientId) as { user?: { name: string } } | undefined)?.user?.name;

describe("presence claims", () => {
  it.each([false, true])("another subject cannot take over a closed socket's ID; its owner brings it back (evicted in between: %s)", async (evict) => {
    const room = roomName("claims");
    const observer = await TestClient.connect(room, { token: await tokenFor(room, "olga") });
    const alice = await TestClient.connect(room, { token: await tokenFor(room, "alice") });
    // A write makes the document exist, so its claims are kept in storage too.
    alice.insert(0, "alice was here");
    alice.sendRaw(encodeAwareness([{ clientId: ALICE_ID, clock: 1, state: stateOf("Alice") }]));
    await waitFor(() => nameSeenBy(observer, ALICE_ID) === "Alice", "alice's presence at the observer");
    alice.close();
    await waitFor(() => !observer.presence().has(ALICE_ID), "alice's removal, which reveals her ID");
    if (evict) await evictDurableObject(env.ROOM.get(env.ROOM.idFromName(room)));

    const mallory = await TestClient.connect(room, { token: await tokenFor(room, "mallory") });
    mallory.sendRaw(encodeAwareness([{ clientId: ALICE_ID, clock: 99, state: stateOf("Mallory as Alice") }]));
    mallory.setPresence({ user: { name: "Mallory", color: "#c03" } });
    await waitFor(() => nameSeenBy(observer, mallory.doc.clientID) === "Mallory", "mallory's own presence");
    expect(observer.presence().has(ALICE_ID)).toBe(false);

    const back = await TestClient.connect(room, { token: await tokenFor(room, "alice") });
    back.sendRaw(encodeAwareness([{ clientId: ALICE_ID, clock: 2, state: stateOf("Alice again") }]));
    await waitFor(() => nameSeenBy(observer, ALICE_ID) === "Alice again", "alice back under her own ID");
    expect(mallory.closed).toBeNull();
  });

  it("entries refused for another's ID are not relayed and do not change what its owner's return needs", async () => {
    const room = roomName("claims-trace");
    const observer = await TestClient.connect(room, { token: await tokenFor(room, "olga") });
    const alice = await TestClient.connect(room, { token: await tokenFor(room, "alice") });
    alice.insert(0, "alice was here");
    alice.sendRaw(encodeAwareness([{ clientId: ALICE_ID, clock: 5, state: stateOf("Alice") }]));
    await waitFor(() => nameSeenBy(observer, ALICE_ID) === "Alice", "alice's presence at the observer");
    const mallory = await TestClient.connect(room, { token: await tokenFor(room, "mallory", "read") });
    /** Mallory's forgeries for alice's ID, then her own state: once that arrives, the room has handled them. */
    const forge = async (mark: string) => {
      mallory.sendRaw(encodeAwareness([{ clientId: ALICE_ID, clock: 105, state: stateOf("Mallory as Alice") }]));
      mallory.sendRaw(encodeAwareness([{ clientId: ALICE_ID, clock: 105, state: null }]));
      mallory.setPresence({ user: { name: mark } });
      await waitFor(() => nameSeenBy(observer, mallory.doc.clientID) === mark, `mallory's own presence (${mark})`);
    };
    await forge("Mallory while alice is here");
    expect(nameSeenBy(observer, ALICE_ID)).toBe("Alice");
    alice.close();
    await waitFor(() => !observer.presence().has(ALICE_ID), "alice's removal");
    await forge("Mallory while alice is away");
    expect(clocksSeen(observer, ALICE_ID)).toEqual([5, 5]);

    // Alice's provider comes back with her state unchanged, at the clock her removal went out
    // with: the observer ignores that (y-protocols), so the room sends her that removal back...
    const back = await TestClient.connect(room, { token: await tokenFor(room, "alice") });
    back.sendRaw(encodeAwareness([{ clientId: ALICE_ID, clock: 5, state: stateOf("Alice") }]));
    await waitFor(() => awarenessSeen(back).some((e) => e.clientId === ALICE_ID && e.clock === 5 && e.state === null), "the room's request to renew");
    // ...and a stock provider answers it under the next clock, which the observer takes: had
    // mallory's clock 105 reached it, it would ignore everything up to 105.
    back.sendRaw(encodeAwareness([{ clientId: ALICE_ID, clock: 6, state: stateOf("Alice") }]));
    await waitFor(() => nameSeenBy(observer, ALICE_ID) === "Alice", "alice back at the observer");
    expect(mallory.closed).toBeNull();
  });

  it("one owner cycling client IDs over many sockets cannot push out another's claim, kept in storage alike", async () => {
    const room = roomName("claims-flood");
    const alice = await TestClient.connect(room, { token: await tokenFor(room, "alice") });
    alice.insert(0, "alice was here");
    alice.sendRaw(encodeAwareness([{ clientId: ALICE_ID, clock: 1, state: stateOf("Alice") }]));
    await waitFor(() => nameSeenBy(alice, ALICE_ID) === "Alice", "alice's presence echoed");
    alice.close();

    // More sockets, each claiming as many new IDs as one may, than one owner may hold claims:
    // under an oldest-first rule, Alice's would be the first to go. (Past the room's cap the
    // owner holding the most loses its oldest: presence-registry.test.ts.) This room admits 3
    // sockets, so they come one after another, as reloads would.
    const token = await tokenFor(room, "mallory");
    const sockets = Math.ceil(MAX_CLAIMS_PER_OWNER / MAX_CLAIMS_PER_SOCKET) + 2;
    for (let socket = 0; socket < sockets; socket++) {
      const mallory = await TestClient.connect(room, { token });
      const ids = Array.from({ length: MAX_CLAIMS_PER_SOCKET }, (_, i) => 1_000_000 + socket * MAX_CLAIMS_PER_SOCKET + i);
      mallory.sendRaw(encodeAwareness(ids.map((clientId) => ({ clientId, clock: 1, state: "{}" }))));
      await waitFor(() => ids.every((id) => mallory.presence().has(id)), `socket ${socket}'s states echoed`);
      mallory.close();
    }
    // The claims come back from storage: the rules held there too.
    await evictDurableObject(env.ROOM.get(env.ROOM.idFromName(room)));

    const observer = await TestClient.connect(room, { token: await tokenFor(room, "olga") });
    const mallory = await TestClient.connect(room, { token });
    mallory.sendRaw(encodeAwareness([{ clientId: ALICE_ID, clock: 99, state: stateOf("Mallory as Alice") }]));
    mallory.setPresence({ user: { name: "Mallory" } });
    await waitFor(() => nameSeenBy(observer, mallory.doc.clientID) === "Mallory", "mallory's own presence");
    expect(observer.presence().has(ALICE_ID)).toBe(false);
    mallory.close();

    const back = await TestClient.connect(room, { token: await tokenFor(room, "alice") });
    back.sendRaw(encodeAwareness([{ clientId: ALICE_ID, clock: 2, state: stateOf("Alice again") }]));
    await waitFor(() => nameSeenBy(observer, ALICE_ID) === "Alice again", "alice back under her own ID");
  }, 120_000);
});

/** Every awareness entry `client` received from the room, in order. */
function awarenessSeen(client: TestClient): AwarenessEntry[] {
  return client.received
    .filter((frame) => frame[0] === MessageType.awareness)
    .flatMap((frame) => {
      const decoder = decoding.createDecoder(frame);
      decoding.readVarUint(decoder);
      return decodeAwarenessUpdate(decoding.readVarUint8Array(decoder));
    });
}

/** The clocks of every entry for `clientId` that `client` received. */
const clocksSeen = (client: TestClient, clientId: number): number[] => awarenessSeen(client).filter((e) => e.clientId === clientId).map((e) => e.clock);
