import { env, evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import * as awarenessProtocol from "y-protocols/awareness";
import * as Y from "yjs";
import { AWARENESS_TIMEOUT_MS, CloseCode } from "../../worker/protocol";
import { TestClient, roomName, waitFor } from "./client";

function sees(observer: TestClient, subject: TestClient, name: string): boolean {
  return observer.presence().get(subject.doc.clientID)?.name === name;
}

describe("presence (awareness)", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("relays awareness to everyone, the sender included, and gives a late joiner every state", async () => {
    const room = roomName("aware");
    const [alice, bob] = await TestClient.connectMany(room, 2);
    const aliceFrames = alice.received.length;
    alice.setPresence({ name: "alice" });
    bob.setPresence({ name: "bob" });
    await waitFor(() => sees(bob, alice, "alice") && sees(alice, bob, "bob"), "each to see the other");
    // The room echoes the sender's own state back (the stock provider's liveness check needs traffic).
    await waitFor(() => alice.received.length >= aliceFrames + 2, "alice's own state and bob's");
    const carol = await TestClient.connect(room);
    await waitFor(() => sees(carol, alice, "alice") && sees(carol, bob, "bob"), "the late joiner to see both");
  });

  it("removes only the closed socket's clients and tells the others", async () => {
    const room = roomName("leave");
    const [alice, bob, carol] = await TestClient.connectMany(room, 3);
    alice.setPresence({ name: "alice" });
    bob.setPresence({ name: "bob" });
    carol.setPresence({ name: "carol" });
    await waitFor(() => sees(alice, carol, "carol") && sees(carol, bob, "bob") && sees(alice, bob, "bob"), "all present");
    bob.close();
    await waitFor(() => !alice.presence().has(bob.doc.clientID) && !carol.presence().has(bob.doc.clientID), "bob gone");
    expect(sees(alice, carol, "carol")).toBe(true);
    expect(sees(carol, alice, "alice")).toBe(true);
    const dave = await TestClient.connect(room);
    await waitFor(() => sees(dave, alice, "alice") && sees(dave, carol, "carol"), "dave to see who is left");
    expect(dave.presence().has(bob.doc.clientID)).toBe(false);
  });

  it("drops awareness for a client ID that another socket controls", async () => {
    const room = roomName("spoof");
    const [alice, mallory, observer] = await TestClient.connectMany(room, 3);
    alice.setPresence({ name: "alice" });
    await waitFor(() => sees(observer, alice, "alice"), "alice to appear");
    // Mallory forges alice's client ID with a newer clock, then tries to remove her.
    const forged = new awarenessProtocol.Awareness(new Y.Doc());
    forged.clientID = alice.doc.clientID;
    for (let i = 0; i < 5; i++) forged.setLocalState({ name: "mallory was here" });
    mallory.sendAwareness(awarenessProtocol.encodeAwarenessUpdate(forged, [alice.doc.clientID]));
    forged.setLocalState(null);
    mallory.sendAwareness(awarenessProtocol.encodeAwarenessUpdate(forged, [alice.doc.clientID]));
    forged.destroy();
    // Mallory's own, honest state still goes through, and it arrives after the forgeries.
    mallory.setPresence({ name: "mallory" });
    await waitFor(() => sees(observer, mallory, "mallory"), "mallory's own state");
    expect(sees(observer, alice, "alice")).toBe(true);
    expect(mallory.closed).toBeNull();
  });

  it("rejects awareness state over the per-socket budget with 1009, keeping others' presence", async () => {
    const room = roomName("bigaware");
    const [alice, bob] = await TestClient.connectMany(room, 2);
    alice.setPresence({ name: "alice" });
    await waitFor(() => sees(bob, alice, "alice"), "alice to appear");
    bob.setPresence({ name: "bob", blob: "x".repeat(20_000) });
    expect((await bob.waitForClose()).code).toBe(CloseCode.messageTooBig);
    const carol = await TestClient.connect(room);
    await waitFor(() => sees(carol, alice, "alice"), "alice still present");
    expect(carol.presence().has(bob.doc.clientID)).toBe(false);
  });

  it("keeps presence through hibernation: a joiner after eviction sees everyone, and edits still flow", async () => {
    const room = roomName("hibernate");
    const [alice, bob] = await TestClient.connectMany(room, 2);
    alice.setPresence({ name: "alice" });
    bob.setPresence({ name: "bob" });
    await waitFor(() => sees(alice, bob, "bob") && sees(bob, alice, "alice"), "both present");
    await evictDurableObject(env.ROOM.get(env.ROOM.idFromName(room)));
    const carol = await TestClient.connect(room);
    await waitFor(() => sees(carol, alice, "alice") && sees(carol, bob, "bob"), "carol to see both after the wake");
    alice.insert(0, "after the wake");
    await waitFor(() => bob.text === "after the wake" && carol.text === "after the wake", "the edit to reach both");
    bob.close();
    await waitFor(() => !alice.presence().has(bob.doc.clientID) && !carol.presence().has(bob.doc.clientID), "bob gone");
    expect(sees(carol, alice, "alice")).toBe(true);
  });

  it("sweeps a client that stopped renewing its presence and closes its socket", async () => {
    const room = roomName("sweep");
    const [alice, ghost] = await TestClient.connectMany(room, 2);
    ghost.setPresence({ name: "ghost" });
    await waitFor(() => sees(alice, ghost, "ghost"), "the ghost to appear");
    // Alice keeps renewing; the ghost goes quiet. Move the clock past the timeout.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + AWARENESS_TIMEOUT_MS + 1_000);
    alice.setPresence({ name: "alice" });
    await waitFor(() => alice.presence().get(alice.doc.clientID)?.name === "alice", "alice's renewal", 5_000);
    await waitFor(() => sees(ghost, alice, "alice"), "alice's renewal to reach the room");
    expect(await runDurableObjectAlarm(env.ROOM.get(env.ROOM.idFromName(room)))).toBe(true);
    const closed = await ghost.waitForClose();
    expect(closed.code).toBe(CloseCode.presenceTimeout);
    await waitFor(() => !alice.presence().has(ghost.doc.clientID), "the ghost removed for alice");
    expect(alice.closed).toBeNull();
  });
});
