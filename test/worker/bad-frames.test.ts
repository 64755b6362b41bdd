import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { Room } from "../../worker/room";
import * as encoding from "lib0/encoding";
import * as Y from "yjs";
import { CloseCode, MessageType, encodeSyncUpdate } from "../../worker/protocol";
import { TestClient, roomName, waitFor } from "./client";

function frame(...parts: number[]): Uint8Array {
  return new Uint8Array(parts);
}

/** A real edit, encoded as a Yjs update, for building valid and corrupted frames. */
function realUpdate(text: string): Uint8Array {
  const doc = new Y.Doc();
  doc.getText("codemirror").insert(0, text);
  return Y.encodeStateAsUpdate(doc);
}

function awarenessFrame(stateJson: string): Uint8Array {
  const update = encoding.createEncoder();
  encoding.writeVarUint(update, 1);
  encoding.writeVarUint(update, 12345);
  encoding.writeVarUint(update, 1);
  encoding.writeVarString(update, stateJson);
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MessageType.awareness);
  encoding.writeVarUint8Array(encoder, encoding.toUint8Array(update));
  return encoding.toUint8Array(encoder);
}

const validUpdate = realUpdate("injected text");
const truncatedUpdate = encodeSyncUpdate(validUpdate).subarray(0, 8);

const badFrames: { name: string; frame: Uint8Array | string; code: number; reason: RegExp }[] = [
  { name: "a text frame", frame: "hello", code: CloseCode.unsupportedData, reason: /text frames/ },
  { name: "an empty frame", frame: frame(), code: CloseCode.protocolError, reason: /empty frame/ },
  { name: "an unknown message type", frame: frame(7, 1, 2), code: CloseCode.protocolError, reason: /unknown message type 7/ },
  { name: "an auth message from a client", frame: frame(MessageType.auth, 0), code: CloseCode.protocolError, reason: /unknown message type 2/ },
  { name: "an unknown sync type", frame: frame(0, 9, 0), code: CloseCode.protocolError, reason: /unknown sync message type/ },
  { name: "garbage bytes", frame: frame(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), code: CloseCode.protocolError, reason: /malformed/ },
  { name: "a truncated sync update", frame: truncatedUpdate, code: CloseCode.protocolError, reason: /truncated sync message/ },
  { name: "trailing bytes after a message", frame: frame(MessageType.queryAwareness, 0), code: CloseCode.protocolError, reason: /trailing bytes/ },
  { name: "an update Yjs cannot decode", frame: encodeSyncUpdate(frame(0xff, 0xff, 0xff, 0x01)), code: CloseCode.invalidPayload, reason: /invalid update/ },
  { name: "an awareness state that is not JSON", frame: awarenessFrame("{not json"), code: CloseCode.invalidPayload, reason: /not JSON/ },
  { name: "an awareness update declaring a huge count", frame: frame(MessageType.awareness, 3, 0xff, 0xff, 0x7f), code: CloseCode.protocolError, reason: /count exceeds/ },
];

describe("bad frames are rejected at the socket boundary", () => {
  it.each(badFrames)("$name closes that socket with $code; the document and other sockets are untouched", async ({ frame, code, reason }) => {
    const room = roomName("bad");
    const [alice, bob, mallory] = await TestClient.connectMany(room, 3);
    alice.setPresence({ name: "alice" });
    alice.insert(0, "before. ");
    await waitFor(() => bob.text === "before. " && mallory.text === "before. ", "the first edit everywhere");
    const stub = env.ROOM.get(env.ROOM.idFromName(room));
    const before = await stub.stats();

    mallory.sendRaw(frame);
    const closed = await mallory.waitForClose();
    expect(closed.code).toBe(code);
    expect(closed.reason).toMatch(reason);
    expect(await stub.stats()).toEqual(before);

    bob.insert(bob.text.length, "after.");
    await waitFor(() => alice.text === "before. after.", "bob's edit to reach alice");
    const late = await TestClient.connect(room);
    expect(late.text).toBe("before. after.");
    await waitFor(() => late.presence().get(alice.doc.clientID)?.name === "alice", "alice's presence intact");
    expect(alice.closed).toBeNull();
    expect(bob.closed).toBeNull();
  });
});

describe("a failure inside the room", () => {
  it("closes only the socket being served with 1011 and keeps the room serving", async () => {
    const room = roomName("failure");
    const [alice, bob] = await TestClient.connectMany(room, 2);
    alice.insert(0, "safe");
    await waitFor(() => bob.text === "safe", "the first edit");
    const stub = env.ROOM.get(env.ROOM.idFromName(room));
    const before = await stub.stats();
    // Make the next write fail the way a storage fault would: a trigger in the room's real
    // SQLite aborts every insert into the update log.
    const failWrites = (fail: boolean) =>
      runInDurableObject(stub, (_instance: Room, state) => {
        state.storage.sql.exec(
          fail
            ? "CREATE TRIGGER fail_writes BEFORE INSERT ON edgedoc_log BEGIN SELECT RAISE(ABORT, 'simulated storage fault'); END"
            : "DROP TRIGGER fail_writes",
        );
      });
    await failWrites(true);
    bob.insert(0, "lost? ");
    const closed = await bob.waitForClose();
    expect(closed.code).toBe(CloseCode.internalError);
    expect(closed.reason).toBe("internal error");
    expect(await stub.stats()).toEqual(before);
    expect(alice.closed).toBeNull();
    await failWrites(false);
    // Not stored: a joiner does not get it. Alice may have seen it (others get an edit just
    // before it is written); bob, never told it was saved, sends it again when he reconnects.
    expect((await TestClient.connect(room)).text).toBe("safe");
    const bobAgain = await TestClient.connect(room);
    Y.applyUpdate(bobAgain.doc, Y.encodeStateAsUpdate(bob.doc));
    alice.setPresence({ name: "alice" });
    const late = await TestClient.connect(room);
    await waitFor(() => late.text === "lost? safe", "bob's edit, sent again, to be stored");
    await waitFor(() => alice.text === "lost? safe", "alice to hold the same text");
    await waitFor(() => late.presence().get(alice.doc.clientID)?.name === "alice", "alice's presence after the failure");
  });
});
