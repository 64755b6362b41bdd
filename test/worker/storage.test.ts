import { env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import * as Y from "yjs";
import type { Room } from "../../worker/room";
import type { StorageStats } from "../../worker/documents";
import { RoomDocument } from "../../worker/document";
import { DocumentStore, type CompactionStep } from "../../worker/storage";
import { COMPACT_LOG_UPDATES, MAX_PENDING_UPDATE_BYTES, PENDING_UPDATE_TTL_MS, SQLITE_CHUNK_BYTES } from "../../worker/limits";
import { CloseCode, encodeSyncUpdate } from "../../worker/protocol";
import { TestClient, roomName, runAlarmWhenSet, updatesWithMissingDependency, waitFor } from "./client";

const roomStub = (room: string) => env.ROOM.get(env.ROOM.idFromName(room));

const sameState = (a: Y.Doc, b: Y.Doc) => Buffer.from(Y.encodeStateVector(a)).equals(Buffer.from(Y.encodeStateVector(b)));

/** Evicts the room as a restart would (sockets closed) and returns a fresh client's view. */
async function restartAndReconnect(room: string): Promise<TestClient> {
  await evictDurableObject(roomStub(room), { webSockets: "close" });
  return TestClient.connect(room);
}

/** Restarts the room and checks a fresh client gets exactly `reference`'s document back. */
async function expectSurvivesRestart(room: string, reference: Y.Doc): Promise<void> {
  const fresh = await restartAndReconnect(room);
  expect(fresh.text === reference.getText("codemirror").toString()).toBe(true);
  expect(sameState(fresh.doc, reference)).toBe(true);
}

/** Closes every client, then runs the room's alarm, which compacts an idle room. */
async function compactWhenIdle(room: string, clients: TestClient[]): Promise<void> {
  for (const client of clients) client.close();
  await runAlarmWhenSet(roomStub(room), "idle compaction");
}

/** Polls the room's storage figures until `check` holds. */
async function waitForStats(stub: DurableObjectStub<Room>, check: (stats: StorageStats) => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let stats = await stub.stats(); !check(stats); stats = await stub.stats()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(stats)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Compacts the room's stored document through a store and document of its own over the
 * room's real SQLite storage, crashing at `step` (the store's fault hook); returns the error.
 */
async function compactCrashingAt(stub: DurableObjectStub<Room>, step: CompactionStep): Promise<string | null> {
  return runInDurableObject(stub, (_instance: Room, state) => {
    const store = new DocumentStore(state.storage.sql, (body) => state.storage.transactionSync(body));
    store.onCompactionStep = (reached) => {
      if (reached === step) throw new Error(`simulated crash at ${reached}`);
    };
    try {
      new RoomDocument(store, Number.MAX_SAFE_INTEGER).compact();
      return null;
    } catch (error) {
      return String(error);
    }
  });
}

/** Makes every snapshot write fail (a SQLite trigger in the room's real storage), or stops doing so. */
async function holdCompaction(stub: DurableObjectStub<Room>, hold: boolean): Promise<void> {
  await runInDurableObject(stub, (_instance: Room, state) => {
    state.storage.sql.exec(
      hold
        ? "CREATE TRIGGER hold_compaction BEFORE INSERT ON edgedoc_snapshot BEGIN SELECT RAISE(ABORT, 'compaction held by the test'); END"
        : "DROP TRIGGER hold_compaction",
    );
  });
}

/** A room where alice wrote "honest", mallory has synced it, and the storage figures of that state. */
async function honestRoomWithMallory(label: string) {
  const room = roomName(label);
  const [alice, mallory] = await TestClient.connectMany(room, 2);
  alice.insert(0, "honest");
  await waitFor(() => mallory.text === "honest", "the honest edit");
  const stub = roomStub(room);
  return { room, alice, mallory, stub, before: await stub.stats() };
}

/** An update from a client whose earlier edits the room has never seen. */
describe("durable documents", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("keeps every saved edit across an eviction: content and state vector identical", async () => {
    const room = roomName("evict");
    const [alice, bob] = await TestClient.connectMany(room, 2);
    for (let i = 0; i < 50; i++) (i % 2 ? alice : bob).insert(0, `${i},`);
    await waitFor(() => alice.text === bob.text && alice.text.split(",").length === 51, "convergence");
    await Promise.all([alice.saved(), bob.saved()]);
    await expectSurvivesRestart(room, alice.doc);
  });

  it("compacts the log into a snapshot past the update threshold, content unchanged", async () => {
    const room = roomName("compact");
    const alice = await TestClient.connect(room);
    // A presence change after each edit, as an editor's cursor moves, makes each edit a log row
    // of its own (the room writes what it holds before it echoes presence).
    for (let i = 0; i < COMPACT_LOG_UPDATES + 20; i++) {
      alice.insert(alice.text.length, String(i % 10));
      alice.setPresence({ cursor: i });
    }
    await alice.saved();
    // Compaction ran at the threshold; the last updates after it are in the log.
    const stats = await roomStub(room).stats();
    expect(stats.snapshotChunks).toBe(1);
    expect(stats.logUpdates).toBeGreaterThan(0);
    expect(stats.logUpdates).toBeLessThanOrEqual(20);
    await expectSurvivesRestart(room, alice.doc);
  });

  it("compacts after the last socket leaves, so an idle room is one small snapshot", async () => {
    const room = roomName("idle");
    const alice = await TestClient.connect(room);
    for (let i = 0; i < 200; i++) alice.insert(0, "x");
    for (let i = 0; i < 150; i++) alice.doc.getText("codemirror").delete(0, 1);
    await alice.saved();
    // Edits that arrive together are written together: far fewer rows than edits.
    expect((await roomStub(room).stats()).logUpdates).toBeLessThan(350);
    const reference = new Y.Doc();
    Y.applyUpdate(reference, Y.encodeStateAsUpdate(alice.doc));
    await compactWhenIdle(room, [alice]);
    const stats = await roomStub(room).stats();
    expect(stats.logUpdates).toBe(0);
    expect(stats.snapshotChunks).toBe(1);
    // Bounded: the stored document is within a small factor of its V1 encoding.
    expect(stats.storedBytes).toBeLessThanOrEqual(2 * Y.encodeStateAsUpdate(reference).length);
    expect(reference.getText("codemirror").toString()).toBe("x".repeat(50));
    await expectSurvivesRestart(room, reference);
  });

  it("stores, compacts and reloads a 10 MB document in row-sized chunks, and refuses growth past the cap", async () => {
    const room = roomName("big");
    const alice = await TestClient.connect(room);
    const stub = roomStub(room);
    // A first edit creates the tables; then a trigger makes every snapshot write fail, which
    // rolls compaction back, so the 10 MB update stays in the log until the trigger is dropped.
    alice.insert(0, "\n");
    await waitForStats(stub, (stats) => stats.logUpdates === 1, "the first edit to be stored");
    const first = await stub.stats();
    await holdCompaction(stub, true);
    const big = Array.from({ length: 10_000_000 / 50 }, (_, i) => `line ${String(i).padStart(8, "0")} of the big test document, 50 chars.\n`).join("");
    alice.insert(0, big);
    await waitForStats(stub, (stats) => stats.logUpdates === 2, "the big update to be stored", 15_000);
    const logged = await stub.stats();
    // One row for the first edit, and the big update in row-sized parts.
    expect(logged.logRows).toBe(first.logRows + Math.ceil((logged.logBytes - first.logBytes) / SQLITE_CHUNK_BYTES));
    expect(logged.logRows).toBeGreaterThanOrEqual(11);
    expect(logged.snapshotChunks).toBe(0);
    const fromLog = await restartAndReconnect(room);
    expect(fromLog.text === big + "\n").toBe(true);
    await holdCompaction(stub, false);

    await compactWhenIdle(room, [alice, fromLog]);
    const compacted = await stub.stats();
    expect(compacted.logRows).toBe(0);
    expect(compacted.snapshotChunks).toBe(Math.ceil(compacted.snapshotBytes / SQLITE_CHUNK_BYTES));
    expect(compacted.snapshotChunks).toBeGreaterThanOrEqual(9);
    const carol = await restartAndReconnect(room);
    expect(carol.text === big + "\n").toBe(true);
    expect(sameState(carol.doc, alice.doc)).toBe(true);

    // The test config caps documents at 12 MiB: 3 MB more is refused and nothing changes.
    const before = await stub.stats();
    carol.insert(0, "y".repeat(3_000_000));
    const closed = await carol.waitForClose();
    expect(closed.code).toBe(CloseCode.documentTooLarge);
    expect(closed.reason).toMatch(/document too large/);
    expect(await stub.stats()).toEqual(before);
    const dave = await TestClient.connect(room);
    expect(dave.text === big + "\n").toBe(true);
  }, 60_000);

  it.each(["snapshot-written", "log-trimmed"] as const)(
    "leaves a loadable document when compaction crashes at %s",
    async (step) => {
      const room = roomName("crash");
      const alice = await TestClient.connect(room);
      for (let i = 0; i < 40; i++) alice.insert(alice.text.length, `${i} `);
      const stub = roomStub(room);
      await alice.saved();
      const before = await stub.stats();
      expect(await compactCrashingAt(stub, step)).toMatch(/simulated crash/);
      expect(await stub.stats()).toEqual(before);
      await expectSurvivesRestart(room, alice.doc);
    },
  );

  it("never stores an update Yjs cannot decode", async () => {
    const room = roomName("malformed");
    const [alice, mallory] = await TestClient.connectMany(room, 2);
    alice.insert(0, "kept");
    const stub = roomStub(room);
    await waitFor(() => mallory.text === "kept", "the first edit");
    const before = await stub.stats();
    const valid = Y.encodeStateAsUpdate(alice.doc);
    const corrupted = valid.slice();
    corrupted.fill(0xff, 3, 12);
    mallory.sendRaw(encodeSyncUpdate(corrupted));
    expect((await mallory.waitForClose()).code).toBe(CloseCode.invalidPayload);
    expect(await stub.stats()).toEqual(before);
    const carol = await restartAndReconnect(room);
    expect(carol.text).toBe("kept");
  });

  it("stores an update with missing dependencies only once they arrive", async () => {
    const room = roomName("pending");
    const [alice, bob] = await TestClient.connectMany(room, 2);
    const stub = roomStub(room);
    const { first, second } = updatesWithMissingDependency(424242, "tab ");
    const before = await stub.stats();
    bob.sendRaw(encodeSyncUpdate(second));
    const late = await TestClient.connect(room);
    expect(await stub.stats()).toEqual(before);
    expect(late.text).toBe("");
    expect(late.doc.store.clients.has(424242)).toBe(false);
    expect(late.doc.store.pendingStructs).toBeNull();
    bob.sendRaw(encodeSyncUpdate(first));
    await waitFor(() => alice.text === "tab tab ", "both updates to integrate and reach alice");
    expect((await stub.stats()).logUpdates).toBe(before.logUpdates + 1);
    const carol = await restartAndReconnect(room);
    expect(carol.text).toBe("tab tab ");
  });

  it("drops a forged update whose dependencies never come, without storing it", async () => {
    const { room, alice, mallory, stub, before } = await honestRoomWithMallory("forged");
    mallory.sendRaw(encodeSyncUpdate(updatesWithMissingDependency(777, "forged").second));
    // The room keeps serving; the forged struct is neither stored nor handed to joiners.
    const joiner = await TestClient.connect(room);
    expect(joiner.doc.store.clients.has(777)).toBe(false);
    expect(joiner.doc.store.pendingStructs).toBeNull();
    expect(await stub.stats()).toEqual(before);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + PENDING_UPDATE_TTL_MS + 1_000);
    await compactWhenIdle(room, [alice, mallory, joiner]);
    vi.useRealTimers();
    const carol = await restartAndReconnect(room);
    expect(carol.text).toBe("honest");
    expect(carol.doc.store.clients.has(777)).toBe(false);
  });

  it("closes a socket whose updates waiting for dependencies exceed the bound, storing nothing", async () => {
    const { room, alice, mallory, stub, before } = await honestRoomWithMallory("pendingflood");
    const { second } = updatesWithMissingDependency(888, "z".repeat(MAX_PENDING_UPDATE_BYTES + 1_000));
    mallory.sendRaw(encodeSyncUpdate(second));
    const closed = await mallory.waitForClose();
    expect(closed.code).toBe(CloseCode.policyViolation);
    expect(await stub.stats()).toEqual(before);
    alice.insert(6, "!");
    const joiner = await TestClient.connect(room);
    await waitFor(() => joiner.text === "honest!", "alice's next edit");
    expect(joiner.doc.store.clients.has(888)).toBe(false);
    expect(joiner.doc.store.pendingStructs).toBeNull();
  });
});
