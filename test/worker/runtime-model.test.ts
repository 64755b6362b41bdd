/**
 * The runtime the simulation (sim/) models, checked against workerd itself. Each test asserts
 * one behaviour of the real Durable Object runtime that a model rule of sim/README.md ("The
 * runtime, as simulated") relies on, and names the sim file and function that model it: if
 * workerd and the model ever disagree (a new workerd, a new compatibility date), the test
 * fails here instead of the simulation passing code that breaks in production.
 *
 * The probes run inside a real Room object (`runInDurableObject`: its real `ctx`, storage and
 * hibernatable sockets) and write to a table of their own, so the room's tables are untouched.
 * `ctx.abort()` stands for a process dying mid-event: what it loses is what a crash loses.
 */
import { SELF, env, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { CloseCode, PING, PONG } from "../../worker/protocol";
import type { Room } from "../../worker/room";
import { openSocket, roomName, waitFor } from "./client";

const PROBE_TABLE = "runtime_model_probe";

function roomStub(room: string): DurableObjectStub<Room> {
  return env.ROOM.get(env.ROOM.idFromName(room));
}

/** The probe's own write: the first write of the event it runs in. */
function writeProbe(state: DurableObjectState, value: string): void {
  state.storage.sql.exec(`CREATE TABLE IF NOT EXISTS ${PROBE_TABLE} (value TEXT)`);
  state.storage.sql.exec(`INSERT INTO ${PROBE_TABLE} (value) VALUES (?)`, value);
}

/** What a new instance of the object finds of the probe's writes (after an abort, a new instance). */
function probeValues(room: string): Promise<string[]> {
  return runInDurableObject(roomStub(room), (_instance: Room, state) => {
    const table = state.storage.sql.exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", PROBE_TABLE).toArray();
    if (table.length === 0) return [];
    return state.storage.sql.exec<{ value: string }>(`SELECT value FROM ${PROBE_TABLE} ORDER BY rowid`).toArray().map((row) => row.value);
  });
}

/** Runs `probe` inside the object, which aborts it (a process kill): the call rejects. */
async function runAndAbort(room: string, probe: (state: DurableObjectState) => Promise<void> | void): Promise<void> {
  await expect(
    runInDurableObject(roomStub(room), async (_instance: Room, state) => {
      await probe(state);
      state.abort("runtime-model probe: the process dies here");
    }),
  ).rejects.toThrow();
}

/** A room with one WebSocket open through the Worker; its text frames, as the client reads them. */
async function roomWithSocket(label: string): Promise<{ room: string; socket: WebSocket; texts: string[]; closed: () => boolean; closeCode: () => number | null }> {
  const room = roomName(label);
  const socket = await openSocket(room);
  const texts: string[] = [];
  let closeCode: number | null = null;
  socket.addEventListener("message", (event) => {
    if (typeof event.data === "string") texts.push(event.data);
  });
  socket.addEventListener("close", (event) => (closeCode = event.code));
  // The room's first frames (its sync step 1) show the socket is accepted.
  await runInDurableObject(roomStub(room), (_instance: Room, state) => expect(state.getWebSockets()).toHaveLength(1));
  return { room, socket, texts, closed: () => closeCode !== null, closeCode: () => closeCode };
}

/** Lets frames in flight arrive (there is no event to wait for when a frame must NOT come). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

describe("the output gate (sim/host.ts SimSocket.send, sim/world.ts releaseOutput)", () => {
  it("sends a frame issued before the event's first write without waiting for that write; a frame issued after it waits, and dies with a commit that fails", async () => {
    const { room, texts, closed } = await roomWithSocket("gate-before-write");
    // A write that SQLite accepts but whose commit fails (a deferred foreign key): the runtime
    // resets the object at the commit, so what waits for the commit never leaves.
    await runInDurableObject(roomStub(room), (_instance: Room, state) => {
      state.storage.sql.exec("CREATE TABLE IF NOT EXISTS runtime_model_parent (id INTEGER PRIMARY KEY)");
      state.storage.sql.exec("CREATE TABLE IF NOT EXISTS runtime_model_child (parent INTEGER REFERENCES runtime_model_parent(id) DEFERRABLE INITIALLY DEFERRED)");
    });
    const outcome = runInDurableObject(roomStub(room), (_instance: Room, state) => {
      const [socket] = state.getWebSockets();
      socket!.send("before the write");
      state.storage.sql.exec("INSERT INTO runtime_model_child (parent) VALUES (42)");
      socket!.send("after the write");
    });
    await expect(outcome).rejects.toThrow(/FOREIGN KEY constraint failed/);
    await waitFor(() => texts.includes("before the write"), "the frame sent before the first write");
    await waitFor(closed, "the reset to close the socket");
    await settle();
    expect(texts).toEqual(["before the write"]);
  });

  it("releases a frame issued after a write once that write commits at an await, before the event ends", async () => {
    const { room, texts, closed } = await roomWithSocket("gate-after-commit");
    await runAndAbort(room, async (state) => {
      const [socket] = state.getWebSockets();
      writeProbe(state, "committed at the await");
      socket!.send("after the write");
      await new Promise((resolve) => setTimeout(resolve, 10));
      writeProbe(state, "written after the await");
      socket!.send("after the second write");
    });
    await waitFor(() => texts.includes("after the write"), "the frame whose write committed");
    await waitFor(closed, "the abort to close the socket");
    await settle();
    expect(texts).toEqual(["after the write"]);
    expect(await probeValues(room)).toEqual(["committed at the await"]);
  });
});

describe("commit points (sim/sqlite.ts SimStorage.checkpoint, killEvent)", () => {
  it("does not commit at an await that only waits for microtasks: an abort after it loses the write", async () => {
    const room = roomName("commit-microtask");
    await runAndAbort(room, async (state) => {
      writeProbe(state, "before a microtask");
      await Promise.resolve();
      await null;
    });
    expect(await probeValues(room)).toEqual([]);
  });

  it("commits when the event waits for the event loop (a timer): an abort after it keeps the write", async () => {
    const room = roomName("commit-macrotask");
    await runAndAbort(room, async (state) => {
      writeProbe(state, "before a timer");
      await new Promise((resolve) => setTimeout(resolve, 1));
    });
    expect(await probeValues(room)).toEqual(["before a timer"]);
  });

  it("commits at an await of an outbound fetch: an abort after it keeps the write", async () => {
    const room = roomName("commit-fetch");
    await runAndAbort(room, async (state) => {
      writeProbe(state, "before a fetch");
      const response = await SELF.fetch("http://edgedoc.test/healthz", { signal: AbortSignal.timeout(5_000) });
      expect(await response.text()).toBe("ok");
    });
    expect(await probeValues(room)).toEqual(["before a fetch"]);
  });

  it("does not commit at an awaited alarm call (setAlarm, getAlarm, deleteAlarm): an abort after it loses the write", async () => {
    for (const call of ["setAlarm", "getAlarm", "deleteAlarm"] as const) {
      const room = roomName(`commit-${call}`);
      await runAndAbort(room, async (state) => {
        writeProbe(state, `before ${call}`);
        if (call === "setAlarm") await state.storage.setAlarm(Date.now() + 3_600_000);
        else if (call === "getAlarm") await state.storage.getAlarm();
        else await state.storage.deleteAlarm();
      });
      expect(await probeValues(room), call).toEqual([]);
    }
  });
});

describe("deleteAll (sim/sqlite.ts SimStorage.deleteAll)", () => {
  it("clears the alarm at our compatibility date (delete_all_deletes_alarm, on since 2026-02-24)", async () => {
    const room = roomName("delete-all-alarm");
    const alarm = await runInDurableObject(roomStub(room), async (_instance: Room, state) => {
      await state.storage.setAlarm(Date.now() + 3_600_000);
      await state.storage.deleteAll();
      return state.storage.getAlarm();
    });
    expect(alarm).toBeNull();
  });

  it("is not undone by an abort right after it, and writes after it are lost with the abort", async () => {
    const room = roomName("delete-all-abort");
    await runInDurableObject(roomStub(room), (_instance: Room, state) => writeProbe(state, "committed before"));
    expect(await probeValues(room)).toEqual(["committed before"]);
    await runAndAbort(room, (state) => {
      writeProbe(state, "uncommitted, wiped");
      void state.storage.deleteAll();
      writeProbe(state, "after the wipe, uncommitted");
    });
    expect(await probeValues(room)).toEqual([]);
  });

  it("cannot run inside transactionSync", async () => {
    const room = roomName("delete-all-transaction");
    await runInDurableObject(roomStub(room), (_instance: Room, state) => {
      expect(() => state.storage.transactionSync(() => void state.storage.deleteAll())).toThrow();
    });
  });
});

describe("events while a handler awaits an outbound fetch (sim/world.ts World.whileFetching)", () => {
  it("runs another event of the same object to its end while one waits for its fetch", async () => {
    const room = roomName("fetch-interleaves");
    // The fetch goes to the Worker, whose route calls this same object (versions(), an RPC):
    // it can only answer if the object runs that event while this one awaits the fetch.
    const status = await runInDurableObject(roomStub(room), async () => {
      const response = await SELF.fetch(`http://edgedoc.test/api/docs/${room}/versions`, { signal: AbortSignal.timeout(5_000) });
      await response.arrayBuffer();
      return response.status;
    });
    expect(status).toBe(200);
  });
});

/** The runtime's time of its last automatic answer to the room's only socket (`getWebSocketAutoResponseTimestamp`), in ms, or null. */
function lastAutoResponse(room: string): Promise<number | null> {
  return runInDurableObject(roomStub(room), (_instance: Room, state) => {
    const [socket] = state.getWebSockets();
    return state.getWebSocketAutoResponseTimestamp(socket!)?.getTime() ?? null;
  });
}

describe("the keep-alive answered by the runtime (sim/host.ts SimHost.lastPingAt; docs/protocol.md, Quiet clients)", () => {
  it("answers the text frame `ping` with `pong` without a webSocketMessage event, and keeps the time of that answer for the object", async () => {
    const { room, socket, texts, closeCode } = await roomWithSocket("auto-response");
    expect(await lastAutoResponse(room)).toBeNull();
    const sentAt = Date.now();
    socket.send(PING);
    await waitFor(() => texts.includes(PONG), "the runtime's pong");
    // The room closes any text frame that reaches it with 1003 (worker/room/frames.ts), so a
    // `ping` that became a webSocketMessage event would have closed the socket.
    await settle();
    expect(closeCode()).toBeNull();
    const answeredAt = await lastAutoResponse(room);
    expect(answeredAt).not.toBeNull();
    expect(answeredAt!).toBeGreaterThanOrEqual(sentAt);
    expect(answeredAt!).toBeLessThanOrEqual(Date.now());

    // Each answer moves the time on.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const secondSentAt = Date.now();
    socket.send(PING);
    await waitFor(() => texts.filter((text) => text === PONG).length === 2, "the second pong");
    expect(await lastAutoResponse(room)).toBeGreaterThanOrEqual(secondSentAt);

    // Only the exact text is answered: anything else is an event the object handles (here: refuses).
    socket.send(PING.toUpperCase());
    await waitFor(() => closeCode() !== null, "the room to refuse a text frame that reached it");
    expect(closeCode()).toBe(CloseCode.unsupportedData);
    expect(texts.filter((text) => text === PONG)).toHaveLength(2);
  });

  it("keeps the time of the last answer across the object's eviction (hibernation)", async () => {
    const { room, socket, texts } = await roomWithSocket("auto-response-evicted");
    const sentAt = Date.now();
    socket.send(PING);
    await waitFor(() => texts.includes(PONG), "the runtime's pong");
    await evictDurableObject(roomStub(room));
    expect(await lastAutoResponse(room)).toBeGreaterThanOrEqual(sentAt);
  });

  it("answers `ping` to an evicted object's socket without delivering it as an event, and keeps the time", async () => {
    const { room, socket, texts, closeCode } = await roomWithSocket("auto-response-while-evicted");
    await evictDurableObject(roomStub(room));
    const sentAt = Date.now();
    socket.send(PING);
    await waitFor(() => texts.includes(PONG), "the runtime's pong");
    // Not a webSocketMessage event of a new instance either: the room would have closed it 1003.
    await settle();
    expect(closeCode()).toBeNull();
    expect(await lastAutoResponse(room)).toBeGreaterThanOrEqual(sentAt);
  });
});
