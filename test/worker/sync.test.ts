import { describe, expect, it } from "vitest";
import { TestClient, roomName, waitFor } from "./client";

describe("document sync", () => {
  it("two clients converge on concurrent edits", async () => {
    const room = roomName("two");
    const [alice, bob] = await TestClient.connectMany(room, 2);
    alice.insert(0, "hello from alice. ");
    bob.insert(0, "hello from bob. ");
    await waitFor(() => alice.text === bob.text && alice.text.length === 34, "convergence");
    expect(alice.text).toContain("hello from alice. ");
    expect(bob.text).toContain("hello from bob. ");
  });

  it("five clients converge on concurrent edits, and a late joiner gets the document", async () => {
    const room = roomName("five");
    const clients = await Promise.all(Array.from({ length: 5 }, () => TestClient.connect(room)));
    clients.forEach((client, i) => {
      for (let round = 0; round < 10; round++) client.insert(0, `${i}:${round};`);
    });
    const expectedLength = clients.reduce((sum, _, i) => sum + Array.from({ length: 10 }, (_, r) => `${i}:${r};`).join("").length, 0);
    await waitFor(
      () => clients.every((client) => client.text.length === expectedLength && client.text === clients[0]!.text),
      "five-way convergence",
    );
    const late = await TestClient.connect(room);
    expect(late.text).toBe(clients[0]!.text);
  });

  it("relays an edit to the other sockets but not back to its sender", async () => {
    const room = roomName("relay");
    const [alice, bob] = await TestClient.connectMany(room, 2);
    const aliceFramesBefore = alice.received.length;
    bob.insert(0, "ping");
    await waitFor(() => alice.text === "ping", "the edit to reach alice");
    const bobFramesBefore = bob.received.length;
    alice.insert(4, "!");
    await waitFor(() => bob.text === "ping!", "the edit to reach bob");
    expect(alice.received.length).toBe(aliceFramesBefore + 1);
    expect(bob.received.length).toBe(bobFramesBefore + 1);
  });
});
