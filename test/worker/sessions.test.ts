/**
 * Sessions you can trust: a client is told its edits are saved only when they are stored, and
 * a socket the room closed never has another frame applied.
 */
import { SELF, env, evictDurableObject } from "cloudflare:test";
import * as decoding from "lib0/decoding";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { CloseCode, MessageType, decodeAwarenessUpdate, encodeSyncUpdate } from "../../worker/protocol";
import { TestClient, asBody, roomName, updatesWithMissingDependency, waitFor } from "./client";

const api = (path: string, init?: RequestInit) => SELF.fetch(`http://edgedoc.test/api/docs/${path}`, init);
const storedText = async (room: string) => (await api(`${room}/text`)).text();

/** How many awareness frames `client` received that carry a state of its own client ID. */
function ownEchoes(client: TestClient): number {
  return client.received.filter((frame) => {
    const decoder = decoding.createDecoder(frame);
    if (decoding.readVarUint(decoder) !== MessageType.awareness) return false;
    return decodeAwarenessUpdate(decoding.readVarUint8Array(decoder)).some((entry) => entry.clientId === client.doc.clientID && entry.state !== null);
  }).length;
}

describe("saved means stored", () => {
  it("a writer whose update waits for dependencies gets no echo of its presence until it is stored; others still do", async () => {
    const room = roomName("unconfirmed");
    const [alice, bob] = await TestClient.connectMany(room, 2);
    const { first, second } = updatesWithMissingDependency(515151, "tab ");
    bob.sendRaw(encodeSyncUpdate(second));
    bob.setPresence({ name: "bob" });
    alice.setPresence({ name: "alice" });
    // Alice sees bob's presence and gets her own echo; bob gets no echo while his update waits.
    await waitFor(() => alice.presence().has(bob.doc.clientID) && ownEchoes(alice) > 0, "presence to flow");
    await waitFor(() => bob.presence().has(alice.doc.clientID), "alice's presence at bob");
    expect(ownEchoes(bob)).toBe(0);
    bob.sendRaw(encodeSyncUpdate(first));
    await waitFor(() => ownEchoes(bob) === 1, "bob's confirmation once his updates are stored");
    await waitFor(() => alice.text === "tab tab ", "both updates at alice");
    expect(await storedText(room)).toBe("tab tab ");
  });

  it("POST /update answers 202 { pending: true } for an update that waits, 200 once it is stored", async () => {
    const room = roomName("api-pending");
    const { first, second } = updatesWithMissingDependency(616161, "later ");
    const waiting = await api(`${room}/update`, { method: "POST", body: asBody(second) });
    expect(waiting.status).toBe(202);
    expect(await waiting.json()).toEqual({ changed: false, pending: true });
    expect(await storedText(room)).toBe("");
    const stored = await api(`${room}/update`, { method: "POST", body: asBody(first) });
    expect(stored.status).toBe(200);
    expect(await stored.json()).toEqual({ changed: true });
    expect(await storedText(room)).toBe("later later ");
  });
});

describe("closed means closed", () => {
  it("edits a socket sends after DELETE closed it reach neither the emptied document nor anyone, also after an eviction", async () => {
    const room = roomName("after-delete");
    const [alice, mallory] = await TestClient.connectMany(room, 2);
    alice.insert(0, "before");
    await waitFor(() => mallory.text === "before", "the first edit");
    const deleted = api(room, { method: "DELETE" });
    // Frames mallory keeps sending as the close races them in.
    const sendRegardless = (text: string) => {
      const doc = new Y.Doc();
      doc.getText("codemirror").insert(0, text);
      try {
        mallory.socket.send(encodeSyncUpdate(Y.encodeStateAsUpdate(doc)));
      } catch {
        // The socket is closed on this side too: nothing more can be sent.
      }
    };
    for (let i = 0; i < 20; i++) sendRegardless(`late ${i} `);
    expect((await deleted).status).toBe(204);
    for (let i = 0; i < 20; i++) sendRegardless(`later ${i} `);
    await evictDurableObject(env.ROOM.get(env.ROOM.idFromName(room)));
    for (let i = 0; i < 20; i++) sendRegardless(`after eviction ${i} `);
    const joiner = await TestClient.connect(room);
    expect(joiner.text).toBe("");
    joiner.insert(0, "fresh");
    const second = await TestClient.connect(room);
    expect(second.text).toBe("fresh");
    expect(await storedText(room)).toBe("fresh");
  });
});

describe("presence limits bound the attachment", () => {
  it("8,000 CJK characters of presence are refused with 1009 (counted in UTF-8 bytes), not 1011 from an overflowing attachment", async () => {
    const room = roomName("cjk");
    const [alice, mallory] = await TestClient.connectMany(room, 2);
    mallory.setPresence({ name: "漢".repeat(8_000) });
    expect(await mallory.waitForClose()).toMatchObject({ code: CloseCode.messageTooBig, reason: expect.stringMatching(/awareness state too large/) });
    alice.setPresence({ name: "アリス" });
    const joiner = await TestClient.connect(room);
    await waitFor(() => (joiner.presence().get(alice.doc.clientID) as { name?: string } | undefined)?.name === "アリス", "alice's presence");
    expect(alice.closed).toBeNull();
  });
});
