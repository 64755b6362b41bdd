/**
 * The life of an update where features meet (worker/room/updates.ts, docs/architecture.md):
 * writers whose waiting updates are dropped are asked to send them again and are not told
 * they are saved meanwhile; a duty that fails does not stop the others.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import * as Y from "yjs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_PENDING_UPDATE_BYTES } from "../../worker/limits";
import { CloseCode, MessageType, encodeSyncUpdate } from "../../worker/protocol";
import { TestClient, roomName, runAlarmWhenSet, updatesWithMissingDependency, waitFor } from "./client";

const stub = (room: string) => env.ROOM.get(env.ROOM.idFromName(room));
const storedText = async (room: string) => (await stub(room).text("192.0.2.30")) as { ok: true; value: string };
const sql = (room: string, query: string) => runInDurableObject(stub(room), (_instance, state) => void state.storage.sql.exec(query));

/** Whether `frame` is a sync step 1 from the room: it asks the client for what the room lacks. */
const isSyncStep1 = (frame: Uint8Array) => frame[0] === MessageType.sync && frame[1] === 0;

/**
 * A writer whose update waits in the room for a dependency it holds itself (it sent the
 * second half of its edit only): the room must not tell it the edit is saved.
 */
async function writerWithWaitingUpdate(room: string, text: string): Promise<TestClient> {
  const writer = await TestClient.connect(room);
  // Written under another client ID, as an offline edit merged from another tab would be (Yjs
  // would change the writer's own ID if it saw that ID in an update it did not make).
  const { first, second } = updatesWithMissingDependency(writer.doc.clientID + 1, text);
  // Its document has both halves (applied as if from the room, so not sent by the client).
  Y.applyUpdate(writer.doc, first, writer);
  Y.applyUpdate(writer.doc, second, writer);
  writer.sendRaw(encodeSyncUpdate(second));
  return writer;
}

afterEach(() => {
  vi.useRealTimers();
});

/**
 * A room whose one writer stored `text` and left, with `table` renamed away (a storage fault for
 * the duty that writes it), after the alarm ran for the session's end. The clock is faked.
 */
async function sessionEndedWithoutTable(label: string, text: string, table: string): Promise<string> {
  vi.useFakeTimers({ toFake: ["Date"] });
  const room = roomName(label);
  const writer = await TestClient.connect(room);
  writer.insert(0, text);
  await writer.saved();
  await sql(room, `ALTER TABLE ${table} RENAME TO ${table}_away`);
  writer.close();
  await runAlarmWhenSet(stub(room), "the session's end");
  return room;
}

describe("a writer whose waiting update is dropped", () => {
  it("by another writer past the pending bound is asked to resend, and is told it is saved only once it is", async () => {
    const room = roomName("pending-bound");
    const carol = await TestClient.connect(room);
    const alice = await writerWithWaitingUpdate(room, "alice waits. ");
    const mallory = await TestClient.connect(room);
    const framesBefore = alice.received.length;
    // Mallory's update waits too, and takes what waits past the bound: everything waiting is dropped.
    const { second: tooMuch } = updatesWithMissingDependency(424242, "m".repeat(MAX_PENDING_UPDATE_BYTES + 1024));
    mallory.sendRaw(encodeSyncUpdate(tooMuch));
    expect((await mallory.waitForClose()).code).toBe(CloseCode.policyViolation);
    // Alice's half was dropped with it: the room asks her for what it lacks...
    await waitFor(() => alice.received.slice(framesBefore).some(isSyncStep1), "the room to ask alice to resend");
    // ...and an edit by someone else does not confirm hers meanwhile.
    carol.insert(0, "carol. ");
    await alice.saved();
    const stored = await storedText(room);
    expect(stored.value).toContain("alice waits. alice waits. ");
    expect(stored.value).toContain("carol. ");
    expect(alice.closed).toBeNull();
  });

  it("by a storage fault that sent the room back to what is stored is asked to resend", async () => {
    const room = roomName("fault-waiting");
    const carol = await TestClient.connect(room);
    carol.insert(0, "stored. ");
    await carol.saved();
    const alice = await writerWithWaitingUpdate(room, "alice waits. ");
    const framesBefore = alice.received.length;
    await sql(room, "CREATE TRIGGER fail_writes BEFORE INSERT ON edgedoc_log BEGIN SELECT RAISE(ABORT, 'simulated storage fault'); END");
    carol.insert(0, "lost? ");
    expect((await carol.waitForClose()).code).toBe(CloseCode.internalError);
    await sql(room, "DROP TRIGGER fail_writes");
    // The room went back to what is stored, which forgets what waited: alice is asked again.
    await waitFor(() => alice.received.slice(framesBefore).some(isSyncStep1), "the room to ask alice to resend");
    await alice.saved();
    expect((await storedText(room)).value).toContain("alice waits. alice waits. ");
  });
});

describe("duties", () => {
  it("one that fails (versions) backs off while compaction and expiry still run, and the alarm is re-armed", async () => {
    const room = await sessionEndedWithoutTable("duty-fault", "kept", "edgedoc_version_parts");
    // The session-end version failed, the compaction after it ran.
    const stats = await stub(room).stats();
    expect(stats.logUpdates).toBe(0);
    expect(await stub(room).versions()).toEqual([]);
    const alarmAt = await runInDurableObject(stub(room), (_instance, state) => state.storage.getAlarm());
    expect(alarmAt).toBeGreaterThan(Date.now());
    // A day later (DOC_TTL_DAYS is 1 in this project) the idle document expires though versions still fail.
    vi.setSystemTime(Date.now() + 25 * 60 * 60_000);
    await runDurableObjectAlarm(stub(room));
    await runDurableObjectAlarm(stub(room));
    expect((await storedText(room)).value).toBe("");
    expect((await stub(room).stats()).storedBytes).toBe(0);
  });

  it("one that fails (compaction) is retried after its backoff, without waiting for a new trigger", async () => {
    const room = await sessionEndedWithoutTable("compaction-fault", "folded later", "edgedoc_snapshot");
    // The version was taken; the compaction failed and keeps the log.
    expect(await stub(room).versions()).toMatchObject([{ reason: "session-end" }]);
    expect((await stub(room).stats()).logUpdates).toBe(1);
    const retryAt = await runInDurableObject(stub(room), (_instance, state) => state.storage.getAlarm());
    expect(retryAt).toBeGreaterThanOrEqual(Date.now() + 30_000);
    await sql(room, "ALTER TABLE edgedoc_snapshot_away RENAME TO edgedoc_snapshot");
    vi.setSystemTime(retryAt!);
    expect(await runDurableObjectAlarm(stub(room))).toBe(true);
    expect((await stub(room).stats()).logUpdates).toBe(0);
    expect((await storedText(room)).value).toBe("folded later");
  });
});
