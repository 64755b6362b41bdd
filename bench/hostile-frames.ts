/**
 * Hostile frames and updates for bench/hostile.ts, written byte by byte where Yjs or the
 * provider would never produce them. Each one is well-formed by worker/protocol.ts's grammar
 * (so the room's frame decoder lets it through) and hurts only by what it declares.
 */
import { randomBytes } from "node:crypto";
import * as encoding from "lib0/encoding";
import * as Y from "yjs";
import { MessageType, encodeSyncStep1, encodeSyncUpdate } from "../worker/protocol.ts";

/** The editor's shared text, as y-codemirror.next names it; crafted structs go there too. */
const TEXT_NAME = "codemirror";

/**
 * A Yjs update that adds nothing: what a client with nothing new answers a sync step 1 with.
 * Defined here, with the request below, rather than taken from worker/protocol.ts, so that
 * this benchmark also runs against commits from before the room's defenses.
 */
export const EMPTY_UPDATE = Uint8Array.of(0, 0);

/** A sync step 1 with an empty state vector: "send me the whole document" in 4 bytes. */
export const WHOLE_DOCUMENT_REQUEST = encodeSyncStep1(Y.encodeStateVector(new Y.Doc()));

function bytes(write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  write(encoder);
  return encoding.toUint8Array(encoder);
}

/**
 * One awareness frame announcing `entries` distinct clients, each with clock 1 and state "{}".
 * Written directly rather than through `encodeAwareness`, which would need an object per entry.
 */
export function awarenessFloodFrame(entries: number): Uint8Array {
  const update = bytes((encoder) => {
    encoding.writeVarUint(encoder, entries);
    for (let clientId = 1; clientId <= entries; clientId++) {
      encoding.writeVarUint(encoder, clientId);
      encoding.writeVarUint(encoder, 1);
      encoding.writeVarString(encoder, "{}");
    }
  });
  return bytes((encoder) => {
    encoding.writeVarUint(encoder, MessageType.awareness);
    encoding.writeVarUint8Array(encoder, update);
  });
}

/**
 * `size` bytes starting with an unknown message type, which the room refuses at its first byte
 * (1002): what any frame of that size costs just to arrive, the floor the other frames are
 * read against.
 */
export function refusedAtFirstByteFrame(size: number): Uint8Array {
  const frame = new Uint8Array(size);
  frame[0] = 0x7f;
  return frame;
}

/**
 * A sync step 1 whose state vector lists `clients` clients the room has never seen. IDs start
 * at one billion so each takes 5 bytes: 6 bytes an entry, 5 million entries just under 32 MiB.
 */
export function hugeStateVectorFrame(clients: number): Uint8Array {
  const firstClient = 1_000_000_000;
  const stateVector = bytes((encoder) => {
    encoding.writeVarUint(encoder, clients);
    for (let i = 0; i < clients; i++) {
      encoding.writeVarUint(encoder, firstClient + i);
      encoding.writeVarUint(encoder, 1);
    }
  });
  return encodeSyncStep1(stateVector);
}

/**
 * An update with no structs and a delete set of `ranges` one-clock ranges (every other clock)
 * for `client`, which the room has never seen: Yjs keeps such deletions pending, in the hope
 * the client's structs arrive, and re-reads them on every later update.
 */
export function pendingDeleteSetFrame(client: number, ranges: number): Uint8Array {
  const update = bytes((encoder) => {
    encoding.writeVarUint(encoder, 0); // no structs
    encoding.writeVarUint(encoder, 1); // one client in the delete set
    encoding.writeVarUint(encoder, client);
    encoding.writeVarUint(encoder, ranges);
    for (let i = 0; i < ranges; i++) {
      encoding.writeVarUint(encoder, 2 * i);
      encoding.writeVarUint(encoder, 1);
    }
  });
  return encodeSyncUpdate(update);
}

/**
 * An update that passes a structural check but that Yjs cannot apply: one JSON-content item
 * (content ref 2) whose JSON text is "{". A structural walk only reads the string; Yjs's
 * decoder calls JSON.parse on it and throws before integrating anything.
 */
export function undecodableUpdateFrame(client: number): Uint8Array {
  const jsonContentWithoutOrigins = 2;
  const update = bytes((encoder) => {
    encoding.writeVarUint(encoder, 1); // one client
    encoding.writeVarUint(encoder, 1); // one struct
    encoding.writeVarUint(encoder, client);
    encoding.writeVarUint(encoder, 0); // clock
    encoding.writeUint8(encoder, jsonContentWithoutOrigins);
    encoding.writeVarUint(encoder, 1); // parent named by a root type key...
    encoding.writeVarString(encoder, TEXT_NAME); // ...this one
    encoding.writeVarUint(encoder, 1); // one JSON value
    encoding.writeVarString(encoder, "{");
    encoding.writeVarUint(encoder, 0); // empty delete set
  });
  return encodeSyncUpdate(update);
}

/**
 * `frames` updates of `itemsPerFrame` single characters each, every one inserted at position
 * 0. Inserted that way no item can merge with its neighbour (its left origin is null, not the
 * previous character), so the document keeps one Yjs Item per character: small when encoded,
 * large in memory.
 */
export function itemBombUpdates(frames: number, itemsPerFrame: number, client: number): Uint8Array[] {
  const doc = new Y.Doc();
  doc.clientID = client;
  const updates: Uint8Array[] = [];
  doc.on("update", (update: Uint8Array) => updates.push(update));
  const text = doc.getText(TEXT_NAME);
  for (let frame = 0; frame < frames; frame++) {
    doc.transact(() => {
      for (let i = 0; i < itemsPerFrame; i++) text.insert(0, "x");
    });
  }
  doc.destroy();
  return updates;
}

/** A Yjs update inserting `chars` characters of random text, as `client`. */
export function textInsertUpdate(chars: number, client: number): Uint8Array {
  const doc = new Y.Doc();
  doc.clientID = client;
  doc.getText(TEXT_NAME).insert(0, randomText(chars));
  const update = Y.encodeStateAsUpdate(doc);
  doc.destroy();
  return update;
}

/** `length` characters of random lowercase words (ASCII, so characters = bytes). */
export function randomText(length: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz     \n";
  const random = randomBytes(length);
  for (let i = 0; i < length; i++) random[i] = alphabet.charCodeAt(random[i]! % alphabet.length);
  return random.toString("latin1");
}

/**
 * Issue 21, row 1: an update holding a chain of `depth` nested Y.Maps (each one an entry of the
 * previous) by `client`, and the 7-byte update deleting the outer map. Yjs 13.6 deletes and
 * garbage-collects nested types recursing per level: the deletion overflows the stack of a
 * room (or peer) that accepted the chain. The deletion is written by hand, since making it
 * with Yjs would throw here too.
 */
export function nestedChainFrames(depth: number, client: number): { chain: Uint8Array; deletion: Uint8Array } {
  const doc = new Y.Doc();
  doc.clientID = client;
  doc.transact(() => {
    let map = doc.getMap("nested");
    for (let i = 0; i < depth; i++) map = map.set("k", new Y.Map());
  });
  const deletion = bytes((encoder) => {
    encoding.writeVarUint(encoder, 0); // no structs
    encoding.writeVarUint(encoder, 1); // one client's deletions
    encoding.writeVarUint(encoder, client);
    encoding.writeVarUint(encoder, 1); // one range: the outer map, clock 0, length 1
    encoding.writeVarUint(encoder, 0);
    encoding.writeVarUint(encoder, 1);
  });
  return { chain: encodeSyncUpdate(Y.encodeStateAsUpdate(doc)), deletion: encodeSyncUpdate(deletion) };
}
