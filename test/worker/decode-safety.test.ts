/**
 * Updates built to make Yjs loop, allocate or recurse without bound are refused by the
 * structural check before Yjs sees them; real updates of every content type pass.
 */
import { env } from "cloudflare:test";
import * as encoding from "lib0/encoding";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { MAX_YJS_CLOCK, MAX_YJS_CONTENT_DEPTH } from "../../worker/limits";
import { CloseCode, SyncMessageType } from "../../worker/protocol";
import { checkUpdateStructure } from "../../worker/update-check";
import { TestClient, roomName, syncFrame, waitFor } from "./client";

function bytes(write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  write(encoder);
  return encoding.toUint8Array(encoder);
}

/** One client's structs: count, client 7, clock 0, then `writeStructs`; then an empty delete set. */
function oneClientUpdate(count: number, writeStructs: (encoder: encoding.Encoder) => void): Uint8Array {
  return bytes((encoder) => {
    encoding.writeVarUint(encoder, 1);
    encoding.writeVarUint(encoder, count);
    encoding.writeVarUint(encoder, 7);
    encoding.writeVarUint(encoder, 0);
    writeStructs(encoder);
    encoding.writeVarUint(encoder, 0);
  });
}

/** An item whose parent is the root type "t", with content ref 8 (any) holding `depth` nested arrays. */
function deeplyNested(depth: number): Uint8Array {
  return oneClientUpdate(1, (encoder) => {
    encoding.writeUint8(encoder, 8);
    encoding.writeVarUint(encoder, 1); // parent is a root type, by name
    encoding.writeVarString(encoder, "t");
    encoding.writeVarUint(encoder, 1); // one value
    for (let i = 0; i < depth; i++) {
      encoding.writeUint8(encoder, 117); // array
      encoding.writeVarUint(encoder, 1);
    }
    encoding.writeUint8(encoder, 126); // null
  });
}

const hostile: { name: string; update: Uint8Array; reason: RegExp }[] = [
  { name: "a zero-length update (yjs #498)", update: new Uint8Array(), reason: /truncated/ },
  { name: "garbage bytes (yjs #479)", update: new TextEncoder().encode("garbagedoc"), reason: /invalid update/ },
  {
    name: "a huge client count in three bytes",
    update: bytes((encoder) => encoding.writeVarUint(encoder, 2 ** 31)),
    reason: /count exceeds/,
  },
  { name: "a huge struct count (yjs #687)", update: oneClientUpdate(2 ** 30, () => {}), reason: /count exceeds/ },
  {
    name: "a GC struct past the clock range",
    update: oneClientUpdate(1, (encoder) => {
      encoding.writeUint8(encoder, 0);
      encoding.writeVarUint(encoder, 2 ** 40);
    }),
    reason: /clock out of range/,
  },
  {
    name: "a delete range past the clock range",
    update: bytes((encoder) => {
      encoding.writeVarUint(encoder, 0);
      encoding.writeVarUint(encoder, 1);
      encoding.writeVarUint(encoder, 7);
      encoding.writeVarUint(encoder, 1);
      encoding.writeVarUint(encoder, MAX_YJS_CLOCK);
      encoding.writeVarUint(encoder, 10);
    }),
    reason: /out of range/,
  },
  { name: "content nested past the depth limit", update: deeplyNested(MAX_YJS_CONTENT_DEPTH + 10), reason: /nested too deeply/ },
  {
    name: "an unknown content type",
    update: oneClientUpdate(1, (encoder) => {
      encoding.writeUint8(encoder, 15);
      encoding.writeVarUint(encoder, 1);
      encoding.writeVarString(encoder, "t");
    }),
    reason: /unknown content type/,
  },
  { name: "trailing bytes after a valid update", update: new Uint8Array([0, 0, 42]), reason: /trailing bytes/ },
];

describe("structural check of updates", () => {
  it("accepts real updates of every content type, including deletions", () => {
    const doc = new Y.Doc();
    const updates: Uint8Array[] = [];
    doc.on("update", (update: Uint8Array) => updates.push(update));
    const text = doc.getText("codemirror");
    text.insert(0, "héllo wörld 👋");
    text.format(0, 5, { bold: true });
    text.insertEmbed(3, { image: "x.png" });
    text.delete(2, 4);
    const map = doc.getMap("settings");
    map.set("language", "markdown");
    map.set("nested", { a: [1, 2.5, null, true, { b: "c" }], big: 2n ** 40n, bytes: new Uint8Array([1, 2]) });
    map.set("binary", new Uint8Array([9, 9, 9]));
    const array = doc.getArray("list");
    array.insert(0, [1, "two", { three: 3 }]);
    array.insert(0, [new Y.Map(), new Y.Array(), new Y.Text("inner")]);
    array.delete(1, 2);
    const xml = doc.getXmlFragment("xml");
    const element = new Y.XmlElement("p");
    element.setAttribute("class", "lead");
    element.insert(0, [new Y.XmlText("para")]);
    // Yjs accepts an XmlHook in a fragment at run time; its type declarations leave it out.
    xml.insert(0, [new Y.XmlHook("hook") as unknown as Y.XmlElement]);
    xml.insert(0, [element]);
    map.set("sub", new Y.Doc());
    for (const update of [...updates, Y.encodeStateAsUpdate(doc)]) expect(() => checkUpdateStructure(update)).not.toThrow();
  });

  it("accepts content nested up to the depth limit", () => {
    expect(() => checkUpdateStructure(deeplyNested(MAX_YJS_CONTENT_DEPTH))).not.toThrow();
  });

  it.each(hostile)("refuses $name with 1007 before Yjs sees it; nothing is stored", async ({ update, reason }) => {
    expect(() => checkUpdateStructure(update)).toThrow(reason);
    const room = roomName("hostile");
    const [alice, mallory] = await TestClient.connectMany(room, 2);
    alice.insert(0, "intact");
    await waitFor(() => mallory.text === "intact", "the honest edit");
    const stub = env.ROOM.get(env.ROOM.idFromName(room));
    const before = await stub.stats();
    mallory.sendRaw(
      syncFrame((encoder) => {
        encoding.writeVarUint(encoder, SyncMessageType.update);
        encoding.writeVarUint8Array(encoder, update);
      }),
    );
    const closed = await mallory.waitForClose();
    expect(closed.code).toBe(CloseCode.invalidPayload);
    expect(closed.reason).toMatch(reason);
    expect(await stub.stats()).toEqual(before);
    alice.insert(6, "!");
    const late = await TestClient.connect(room);
    expect(late.text).toBe("intact!");
  });
});
