/**
 * One way a socket ends: an error the runtime reports ends it exactly like a close (one log
 * line, presence removed, the idle work scheduled when it was the last socket).
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { Room } from "../../worker/room";
import { isBenignTeardownError } from "../../worker/teardown";
import { TestClient, roomName, waitFor } from "./client";

describe("teardown errors", () => {
  it("tells a vanished peer from a fault", () => {
    expect(isBenignTeardownError(new Error("Network connection lost."))).toBe(true);
    expect(isBenignTeardownError(new Error("WebSocket peer disconnected"))).toBe(true);
    expect(isBenignTeardownError(Object.assign(new Error("anything"), { retryable: true }))).toBe(true);
    expect(isBenignTeardownError(new Error("internal error; reference = 1234"))).toBe(false);
    expect(isBenignTeardownError("Network connection lost")).toBe(false);
    expect(isBenignTeardownError(null)).toBe(false);
  });
});

describe("one end path", () => {
  it("a socket ended by an error logs one close line, leaves presence and schedules the idle compaction", async () => {
    const room = roomName("socket-error");
    const stub = env.ROOM.get(env.ROOM.idFromName(room));
    const [alice, bob] = await TestClient.connectMany(room, 2);
    alice.insert(0, "kept");
    alice.setPresence({ name: "alice" });
    await waitFor(() => bob.presence().has(alice.doc.clientID) && bob.text === "kept", "alice's edit and presence at bob");
    bob.close();
    const openSockets = () =>
      runInDurableObject(stub, (_instance: Room, state) =>
        state.getWebSockets().filter((socket) => (socket.deserializeAttachment() as { closing?: true } | null)?.closing !== true),
      );
    for (let tries = 0; (await openSockets()).length > 1; tries++) {
      if (tries > 100) throw new Error("timed out waiting for bob's close to reach the room");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const log = vi.spyOn(console, "log");
    // The runtime reports alice's connection lost: the room sees it as an error, not a close.
    await runInDurableObject(stub, async (instance: Room, state) => {
      const [socket] = state.getWebSockets().filter((candidate) => (candidate.deserializeAttachment() as { closing?: true } | null)?.closing !== true);
      await instance.webSocketError(socket!, new Error("Network connection lost."));
    });
    const lines = log.mock.calls.map(([line]) => JSON.parse(String(line)) as { event: string; benign?: boolean });
    log.mockRestore();
    expect(lines.filter((line) => line.event === "close")).toEqual([expect.objectContaining({ event: "close", error: "Error: Network connection lost.", benign: true })]);
    // The last socket is gone: the idle compaction runs by alarm, as after a close.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await stub.stats()).logUpdates).toBe(0);
    expect((await stub.stats()).snapshotBytes).toBeGreaterThan(0);
  });
});
