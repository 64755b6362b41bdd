/**
 * Property-based fuzzing of the socket boundary: thousands of random and mutated frames,
 * derived from real sync and awareness messages, sent while an honest client edits.
 * Afterwards the room must still serve, and its document (in memory and on disk) must be
 * exactly what the honest client holds, with every honest edit in it.
 */
import { env, evictDurableObject } from "cloudflare:test";
import fc from "fast-check";
import * as encoding from "lib0/encoding";
import { describe, expect, it } from "vitest";
import * as awarenessProtocol from "y-protocols/awareness";
import * as syncProtocol from "y-protocols/sync";
import * as Y from "yjs";
import { MessageType } from "../../worker/protocol";
import { TestClient, openSocket, roomName, syncFrame, waitFor } from "./client";

/** Real frames a client sends: step 1, step 2, live updates, awareness, query-awareness. */
function seedFrames(): Uint8Array[] {
  const doc = new Y.Doc();
  const frames: Uint8Array[] = [syncFrame((encoder) => syncProtocol.writeSyncStep1(encoder, doc))];
  doc.on("update", (update: Uint8Array) => frames.push(syncFrame((encoder) => syncProtocol.writeUpdate(encoder, update))));
  const text = doc.getText("codemirror");
  text.insert(0, "fuzzing seed text");
  text.delete(3, 4);
  text.insert(5, "🦀 emoji");
  doc.getMap("settings").set("language", "javascript");
  frames.push(syncFrame((encoder) => syncProtocol.writeSyncStep2(encoder, doc)));
  const awareness = new awarenessProtocol.Awareness(doc);
  awareness.setLocalState({ user: { name: "fuzz", color: "#123456" }, cursor: { anchor: 1, head: 2 } });
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MessageType.awareness);
  encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(awareness, [doc.clientID]));
  frames.push(encoding.toUint8Array(encoder), new Uint8Array([MessageType.queryAwareness]));
  awareness.destroy();
  return frames;
}

const seeds = seedFrames();

type Mutation = { kind: "flip" | "set" | "insert" | "truncate"; at: number; value: number };

function mutate(seed: Uint8Array, mutations: Mutation[]): Uint8Array {
  let bytes = Array.from(seed);
  for (const { kind, at, value } of mutations) {
    const index = bytes.length === 0 ? 0 : at % bytes.length;
    if (kind === "flip") bytes[index] = (bytes[index] ?? 0) ^ (1 << (value % 8));
    else if (kind === "set") bytes[index] = value;
    else if (kind === "insert") bytes.splice(index, 0, value);
    else bytes = bytes.slice(0, index);
  }
  return new Uint8Array(bytes);
}

const mutation = fc.record({
  kind: fc.constantFrom<Mutation["kind"]>("flip", "set", "insert", "truncate"),
  at: fc.nat(),
  value: fc.integer({ min: 0, max: 255 }),
});

const hostileFrame: fc.Arbitrary<Uint8Array | string> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...seeds), fc.array(mutation, { minLength: 1, maxLength: 4 })).map(([seed, ms]) => mutate(seed, ms)) },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 48 }) },
  { weight: 1, arbitrary: fc.constantFrom(...seeds) },
  { weight: 1, arbitrary: fc.string({ maxLength: 16 }) },
);

describe("fuzzing the socket boundary", () => {
  it("survives thousands of random and mutated frames with the honest document intact", async () => {
    const room = roomName("fuzz");
    const honest = await TestClient.connect(room);
    honest.setPresence({ name: "honest" });
    let marker = 0;
    let framesSent = 0;

    await fc.assert(
      fc.asyncProperty(fc.array(hostileFrame, { minLength: 1, maxLength: 12 }), async (frames) => {
        const socket = await openSocket(room);
        for (const frame of frames) {
          try {
            socket.send(frame);
            framesSent += 1;
          } catch {
            break; // the room closed this socket already
          }
        }
        socket.close(1000, "fuzz batch done");
        honest.insert(honest.text.length, `[${marker++}]`);
      }),
      { numRuns: 400, interruptAfterTimeLimit: 30_000, seed: 20261126 },
    );

    expect(framesSent).toBeGreaterThan(1_000);
    const markers = Array.from({ length: marker }, (_, i) => `[${i}]`);
    const inOrder = (text: string) => markers.every((m, i) => text.indexOf(m) > (i === 0 ? -1 : text.indexOf(markers[i - 1]!)));
    honest.insert(honest.text.length, "[end]");
    const fresh = await TestClient.connect(room);
    await waitFor(() => fresh.text === honest.text && fresh.text.includes("[end]"), "a fresh client to match the honest one", 10_000);
    expect(inOrder(fresh.text)).toBe(true);
    expect(Y.encodeStateVector(fresh.doc)).toEqual(Y.encodeStateVector(honest.doc));
    await waitFor(() => fresh.presence().get(honest.doc.clientID)?.name === "honest", "the honest presence");

    await evictDurableObject(env.ROOM.get(env.ROOM.idFromName(room)), { webSockets: "close" });
    const reloaded = await TestClient.connect(room);
    expect(reloaded.text).toBe(honest.text);
    expect(Y.encodeStateVector(reloaded.doc)).toEqual(Y.encodeStateVector(honest.doc));
  }, 90_000);
});
