/**
 * Budgets: what one frame or request may make the room spend (docs/limits.md). Each case
 * sends the hostile input through a real socket or the real API, then checks the documented
 * refusal, that honest editors in the same room were not closed and still converge, and that
 * the stored document is what the honest editors wrote. Peak memory is measured by
 * `npm run bench -- --scenario hostile`, where workerd's RSS can be read.
 */
import { SELF, env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import * as encoding from "lib0/encoding";
import { afterEach, describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import {
  JOIN_TIMEOUT_MS,
  MAX_DOCUMENT_ITEMS,
  MAX_PENDING_DELETE_RANGES,
  MAX_RELAY_BYTES,
} from "../../worker/limits";
import {
  AWARENESS_TIMEOUT_MS,
  CloseCode,
  EMPTY_STATE_VECTOR,
  MessageType,
  SyncMessageType,
  encodeSyncStep1,
  encodeSyncUpdate,
} from "../../worker/protocol";
import { TestClient, asBody, openSocket, roomName, waitFor } from "./client";

const stub = (room: string) => env.ROOM.get(env.ROOM.idFromName(room));
const api = (path: string, init?: RequestInit) => SELF.fetch(`http://edgedoc.test/api/docs/${path}`, init);
const storedText = async (room: string) => (await api(`${room}/text`)).text();

/** Two honest editors with some text; after an attack, `stillFine` checks they noticed nothing. */
async function honestPair(room: string, text = "honest text") {
  const [alice, bob] = await TestClient.connectMany(room, 2);
  alice.insert(0, text);
  await waitFor(() => bob.text === text, "the honest edit to reach bob");
  return {
    alice,
    bob,
    /** Alice types once more: bob must get it promptly, nobody was closed, the store agrees. */
    async stillFine(): Promise<void> {
      alice.insert(alice.text.length, "!");
      await waitFor(() => bob.text === alice.text, "a later honest edit to reach bob", 2_000);
      expect(alice.closed).toBeNull();
      expect(bob.closed).toBeNull();
      await waitFor(() => bob.text.endsWith("!"), "bob to converge");
      expect(await storedText(room)).toBe(alice.text);
    },
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("inbound frames are measured before they are spent on", () => {
  it("an awareness frame of two million tiny entries is refused with 1009 at the presence budget", async () => {
    const room = roomName("awareness-flood");
    const honest = await honestPair(room);
    const mallory = await TestClient.connect(room);
    const entries = encoding.createEncoder();
    encoding.writeVarUint(entries, 2_000_000);
    for (let id = 1; id <= 2_000_000; id++) {
      encoding.writeVarUint(entries, id);
      encoding.writeVarUint(entries, 1);
      encoding.writeVarString(entries, "{}");
    }
    const frame = encoding.createEncoder();
    encoding.writeVarUint(frame, MessageType.awareness);
    encoding.writeVarUint8Array(frame, encoding.toUint8Array(entries));
    const bytes = encoding.toUint8Array(frame);
    expect(bytes.length).toBeGreaterThan(10 * 1024 * 1024);
    mallory.sendRaw(bytes);
    const closed = await mallory.waitForClose();
    expect(closed).toMatchObject({ code: CloseCode.messageTooBig, reason: expect.stringMatching(/awareness state too large/) });
    // Nothing of the flood is anyone's presence.
    expect([...honest.bob.presence().keys()].every((id) => id > 2_000_000 || id === honest.bob.doc.clientID)).toBe(true);
    await honest.stillFine();
  });

  it("a sync step 1 listing a million unknown clients is answered from the clients the document has", async () => {
    const room = roomName("huge-sv");
    const honest = await honestPair(room, "the whole document");
    const mallory = await TestClient.connect(room);
    const stateVector = encoding.createEncoder();
    encoding.writeVarUint(stateVector, 1_000_000);
    for (let client = 1; client <= 1_000_000; client++) {
      encoding.writeVarUint(stateVector, client * 7 + 3);
      encoding.writeVarUint(stateVector, 5);
    }
    const received = mallory.received.length;
    mallory.sendRaw(encodeSyncStep1(encoding.toUint8Array(stateVector)));
    // The answer is a normal sync step 2 carrying everything (no listed client is ours).
    await waitFor(() => mallory.received.length > received, "the answer to the huge state vector");
    const answer = new Y.Doc();
    const frame = mallory.received.at(-1)!;
    expect([frame[0], frame[1]]).toEqual([MessageType.sync, SyncMessageType.step2]);
    Y.applyUpdate(answer, stepPayload(frame));
    expect(answer.getText("codemirror").toString()).toBe("the whole document");
    expect(mallory.closed).toBeNull();
    await honest.stillFine();
  });

  it("a state vector whose count exceeds its bytes is refused with 1007 before anything is read", async () => {
    const room = roomName("lying-sv");
    const honest = await honestPair(room);
    const mallory = await TestClient.connect(room);
    mallory.sendRaw(encodeSyncStep1(new Uint8Array([0xff, 0xff, 0xff, 0x7f, 1, 1])));
    expect(await mallory.waitForClose()).toMatchObject({ code: CloseCode.invalidPayload, reason: "invalid state vector" });
    await honest.stillFine();
  });
});

/** The update carried by a sync frame: type, sync type, then the varByteArray. */
function stepPayload(frame: Uint8Array): Uint8Array {
  let offset = 2;
  let length = 0;
  for (let shift = 0; ; shift += 7) {
    const byte = frame[offset++]!;
    length += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) break;
  }
  return frame.subarray(offset, offset + length);
}

describe("outbound is budgeted", () => {
  it("a socket asking again and again for a 2 MB document is closed with 1008 once its answers pass the budget", async () => {
    const room = roomName("asker");
    const honest = await honestPair(room, "x".repeat(2 * 1024 * 1024));
    const mallory = await TestClient.connect(room);
    const askFrame = encodeSyncStep1(EMPTY_STATE_VECTOR);
    for (let i = 0; i < 300 && !mallory.closed; i++) mallory.sendRaw(askFrame);
    const closed = await mallory.waitForClose();
    expect(closed).toMatchObject({ code: CloseCode.policyViolation, reason: expect.stringMatching(/answer budget exceeded/) });
    // A joiner may be sent the whole document twice (plus 1 MiB of slack) before its budget
    // refills: its first sync and one more, then a little refill, not hundreds of encodes.
    const answers = mallory.received.filter((frame) => frame[0] === MessageType.sync && frame[1] === SyncMessageType.step2);
    expect(answers.length).toBeLessThanOrEqual(3);
    await honest.stillFine();
  });

  it(`one relay queues at most ${MAX_RELAY_BYTES / 2 ** 20} MiB: sockets past it are closed with 1013 and catch up on reconnect`, async () => {
    const room = roomName("fanout");
    const writer = await TestClient.connect(room);
    const readers = await TestClient.connectMany(room, 10);
    // Two readers are active (they just sent presence): they are served before the quiet ones.
    const active = readers.slice(8);
    for (const reader of active) reader.setPresence({ name: "active" });
    await waitFor(() => active.every((reader) => writer.presence().has(reader.doc.clientID)), "the active readers' presence");
    // 8 MiB to 10 readers would queue 80 MiB.
    const big = "y".repeat(8 * 1024 * 1024);
    writer.insert(0, big);
    await waitFor(() => readers.every((reader) => reader.text === big || reader.closed !== null), "the relay or a close for every reader", 15_000);
    const shed = readers.filter((reader) => reader.closed !== null);
    expect(shed.length).toBe(10 - Math.floor(MAX_RELAY_BYTES / (8 * 1024 * 1024 + 16)));
    for (const reader of shed) expect(reader.closed).toMatchObject({ code: CloseCode.tryAgainLater, reason: expect.stringMatching(/room busy/) });
    for (const reader of active) expect(reader.closed).toBeNull();
    const again = await TestClient.connect(room);
    expect(again.text).toBe(big);
    expect(writer.closed).toBeNull();
  });
});

describe("PUT /text is bounded by the work its diff does", () => {
  /** `bytes` of lines of random words: no line of one text is likely in another. */
  function randomText(bytes: number): string {
    const lines: string[] = [];
    let length = 0;
    while (length < bytes) {
      const line = `${Array.from({ length: 8 }, () => Math.random().toString(36).slice(2, 7)).join(" ")}\n`;
      lines.push(line);
      length += line.length;
    }
    return lines.join("");
  }

  it("200 KB of text unrelated to the 200 KB stored is replaced promptly, and editors converge on it", async () => {
    const room = roomName("put-unrelated");
    const honest = await honestPair(room);
    const before = randomText(200 * 1024);
    expect((await api(`${room}/text`, { method: "PUT", body: before })).status).toBe(200);
    await waitFor(() => honest.bob.text === before, "the first text at bob");
    const after = randomText(200 * 1024);
    const started = Date.now();
    const put = await api(`${room}/text`, { method: "PUT", body: after });
    // A generous bound that only a quadratic diff would break (fast-diff took 31 s on 40 KB).
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await put.json()).toEqual({ changed: true });
    await waitFor(() => honest.alice.text === after && honest.bob.text === after, "the new text at both editors");
    await honest.stillFine();
  });

  it("a small edit to a large text keeps a collaborator's cursor in unchanged text", async () => {
    const room = roomName("put-small");
    const honest = await honestPair(room);
    const text = randomText(200 * 1024);
    await api(`${room}/text`, { method: "PUT", body: text });
    await waitFor(() => honest.bob.text === text, "the text at bob");
    const ytext = honest.bob.doc.getText("codemirror");
    const cursor = Y.createRelativePositionFromTypeIndex(ytext, 150_000);
    const expectedAfterCursor = text.slice(150_000, 150_100);
    const edited = `${text.slice(0, 1_000)}a new sentence. ${text.slice(1_000)}`;
    await api(`${room}/text`, { method: "PUT", body: edited });
    await waitFor(() => honest.bob.text === edited, "the edit at bob");
    const index = Y.createAbsolutePositionFromRelativePosition(cursor, honest.bob.doc)!.index;
    expect(index).toBe(150_000 + "a new sentence. ".length);
    expect(honest.bob.text.slice(index, index + 100)).toBe(expectedAfterCursor);
  });
});

describe("documents are bounded by what they cost to load", () => {
  /** An update of `count` one-character items that cannot merge (each inserted before the last). */
  function itemBomb(count: number): Uint8Array {
    const doc = new Y.Doc();
    const text = doc.getText("codemirror");
    for (let i = 0; i < count; i++) text.insert(0, "z");
    return Y.encodeStateAsUpdate(doc);
  }

  it(`an update that could take the document past ${MAX_DOCUMENT_ITEMS} items is refused with 4413, over a socket and over HTTP`, async () => {
    const room = roomName("items");
    const honest = await honestPair(room);
    const bomb = itemBomb(Math.ceil(MAX_DOCUMENT_ITEMS / 3) + 1);
    // Small on disk (about 1 MB as V1), but 250,000 items would take about 60 MiB of heap.
    expect(bomb.length).toBeLessThan(2 * 1024 * 1024);
    const mallory = await TestClient.connect(room);
    mallory.sendRaw(encodeSyncUpdate(bomb));
    expect(await mallory.waitForClose()).toMatchObject({ code: CloseCode.documentTooLarge, reason: expect.stringMatching(/items/) });
    const posted = await api(`${room}/update`, { method: "POST", body: asBody(bomb) });
    expect(posted.status).toBe(413);
    expect(await posted.json()).toMatchObject({ error: "document_too_large", detail: expect.stringMatching(/items/) });
    await honest.stillFine();
    const info = await (await api(room)).json<{ items: number }>();
    expect(info.items).toBeLessThan(10);
  });

  it("deletes a document without loading it", async () => {
    const room = roomName("delete-unloaded");
    const { alice, bob } = await honestPair(room, "to be deleted");
    alice.close();
    bob.close();
    await evictDurableObject(stub(room));
    const log = vi.spyOn(console, "log");
    const deleted = await api(room, { method: "DELETE" });
    const events = log.mock.calls.map(([line]) => String(line));
    log.mockRestore();
    expect(deleted.status).toBe(204);
    expect(events.some((line) => line.includes('"event":"document_deleted"'))).toBe(true);
    expect(events.some((line) => line.includes('"event":"load"'))).toBe(false);
    expect(await storedText(room)).toBe("");
  });
});

describe("waiting and failing updates stay cheap", () => {
  /** An update with no structs whose delete set names `ranges` ranges of an unknown client. */
  function danglingDeletions(ranges: number): Uint8Array {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, 0);
    encoding.writeVarUint(encoder, 1);
    encoding.writeVarUint(encoder, 424242);
    encoding.writeVarUint(encoder, ranges);
    for (let i = 0; i < ranges; i++) {
      encoding.writeVarUint(encoder, 2 * i);
      encoding.writeVarUint(encoder, 1);
    }
    return encoding.toUint8Array(encoder);
  }

  it(`deletions for content nobody has wait only up to ${MAX_PENDING_DELETE_RANGES} ranges; more are refused with 1008`, async () => {
    const room = roomName("pending-ds");
    const honest = await honestPair(room);
    const patient = await TestClient.connect(room);
    patient.sendRaw(encodeSyncUpdate(danglingDeletions(100)));
    const mallory = await TestClient.connect(room);
    mallory.sendRaw(encodeSyncUpdate(danglingDeletions(300_000)));
    expect(await mallory.waitForClose()).toMatchObject({ code: CloseCode.policyViolation, reason: expect.stringMatching(/delete ranges/) });
    await honest.stillFine();
    expect(patient.closed).toBeNull();
  });

  it("an update Yjs cannot apply closes its socket without reloading the document", async () => {
    const room = roomName("undecodable");
    const honest = await honestPair(room);
    const log = vi.spyOn(console, "log");
    // Structurally sound (found by mutating a real update), but its map entry's JSON content is
    // `a`, which is not JSON: Yjs throws while reading it, before integrating anything.
    const broken = new Uint8Array([
      1, 2, 178, 181, 208, 215, 5, 0, 4, 1, 10, 99, 111, 100, 101, 109, 105, 114, 114, 111, 114, 5, 104, 101, 108, 108, 111, 5, 1, 8,
      115, 101, 116, 116, 105, 110, 103, 115, 1, 97, 1, 248, 1, 0,
    ]);
    for (let i = 0; i < 5; i++) {
      const mallory = await TestClient.connect(room);
      mallory.sendRaw(encodeSyncUpdate(broken));
      const closed = await mallory.waitForClose();
      expect(closed.code).toBe(CloseCode.invalidPayload);
    }
    const loads = log.mock.calls.filter(([line]) => typeof line === "string" && line.includes('"event":"load"'));
    log.mockRestore();
    expect(loads).toHaveLength(0);
    await honest.stillFine();
  });
});

describe("sockets that hold a place without using it are closed", () => {
  it(`closes a socket that never completes the sync handshake within ${JOIN_TIMEOUT_MS / 1000} s with 4001`, async () => {
    const room = roomName("silent-join");
    const honest = await honestPair(room);
    const silent = await openSocket(room);
    let closed: { code: number; reason: string } | null = null;
    silent.addEventListener("close", (event) => (closed = { code: event.code, reason: event.reason }));
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + JOIN_TIMEOUT_MS + 1_000);
    honest.alice.setPresence({ name: "alice" });
    honest.bob.setPresence({ name: "bob" });
    await waitFor(() => honest.alice.presence().has(honest.bob.doc.clientID), "bob's presence at alice");
    expect(await runDurableObjectAlarm(stub(room))).toBe(true);
    await waitFor(() => closed !== null, "the silent socket to be closed");
    expect(closed).toMatchObject({ code: CloseCode.joinTimeout, reason: expect.stringMatching(/join timed out/) });
    await honest.stillFine();
  });

  it(`closes a joined socket that sends nothing for ${AWARENESS_TIMEOUT_MS / 1000} s with 4000, though it never had presence`, async () => {
    const room = roomName("silent-joined");
    const honest = await honestPair(room);
    const quiet = await TestClient.connect(room);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + AWARENESS_TIMEOUT_MS + 1_000);
    honest.alice.setPresence({ name: "alice" });
    honest.bob.setPresence({ name: "bob" });
    await waitFor(() => honest.alice.presence().has(honest.bob.doc.clientID), "bob's presence at alice");
    expect(await runDurableObjectAlarm(stub(room))).toBe(true);
    expect(await quiet.waitForClose()).toMatchObject({ code: CloseCode.presenceTimeout });
    await honest.stillFine();
  });
});

describe("names never written store nothing", () => {
  const edgedocTables = (room: string) =>
    runInDurableObject(stub(room), (_instance, state) =>
      state.storage.sql
        .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'edgedoc_%'")
        .toArray()
        .map((row) => row.name),
    );

  it("reading or visiting a name creates no tables; the first write does", async () => {
    const room = roomName("probe");
    expect((await api(room)).status).toBe(200);
    expect(await (await api(`${room}/text`)).text()).toBe("");
    expect(await (await api(`${room}/versions`)).json()).toEqual([]);
    const visitor = await TestClient.connect(room);
    visitor.setPresence({ name: "just looking" });
    visitor.close();
    expect(await edgedocTables(room)).toEqual([]);
    const written = await api(`${room}/text`, { method: "PUT", body: "now it exists" });
    expect(written.status).toBe(200);
    expect((await edgedocTables(room)).sort()).toEqual([
      "edgedoc_log",
      "edgedoc_meta",
      "edgedoc_presence_claims",
      "edgedoc_snapshot",
      "edgedoc_version_authors",
      "edgedoc_version_parts",
      "edgedoc_version_text",
      "edgedoc_versions",
    ]);
  });

  it("a document written only over HTTP is compacted by its alarm and expires like any other", async () => {
    const room = roomName("http-only");
    await api(`${room}/text`, { method: "PUT", body: "written by a bot" });
    expect(await runDurableObjectAlarm(stub(room))).toBe(true);
    const stats = await stub(room).stats();
    expect(stats.logUpdates).toBe(0);
    expect(stats.snapshotBytes).toBeGreaterThan(0);
    // DOC_TTL_DAYS is 1 in this project: a day later the alarm deletes it.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 24 * 60 * 60 * 1000 + 60_000);
    expect(await runDurableObjectAlarm(stub(room))).toBe(true);
    expect(await edgedocTables(room)).toEqual([]);
    expect(await storedText(room)).toBe("");
  });
});
