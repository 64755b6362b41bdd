/**
 * Presence IDs have owners: with tokens, a client ID belongs to the token subject that first
 * claimed it, so nobody else can take it over once its socket closes, across an eviction too.
 */
import { env, evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { encodeAwareness } from "../../worker/protocol";
import { signToken } from "../../worker/tokens";
import { TestClient, roomName, waitFor } from "../worker/client";

const tokenFor = (room: string, sub: string) =>
  signToken({ doc: room, mode: "write", exp: Math.floor(Date.now() / 1000) + 3_600, sub, name: sub }, env.AUTH_SECRET!);

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
});

