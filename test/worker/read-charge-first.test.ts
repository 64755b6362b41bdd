/**
 * Reads are charged before the work (issue 30, item 5; worker/read-budget.ts): a caller whose
 * read budget cannot pay what a version read is estimated to cost is refused 429 before the
 * room reads any of the version. What the room reads is seen where it reads it: the bytes of
 * the stored blobs its SQL queries hand back, counted around the object's own `sql.exec`
 * (the real one runs; nothing is answered in its place).
 */
import { SELF, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import type { VersionInfo } from "../../worker/documents";
import { READ_CALLER_BURST_BYTES } from "../../worker/limits";
import { asBody, roomName } from "./client";

const CALLER = "192.0.2.77";

function api(path: string, address: string, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`http://edgedoc.test/api/docs/${path}`, { ...init, headers: { "CF-Connecting-IP": address, ...init.headers } });
}

/** Adds `text` to the document (an update of a client of its own) and saves the result as a named version. */
async function versionWith(room: string, text: string, name: string): Promise<number> {
  const doc = new Y.Doc();
  doc.getText("codemirror").insert(0, text);
  expect((await api(`${room}/update`, "192.0.2.250", { method: "POST", body: asBody(Y.encodeStateAsUpdate(doc)) })).status).toBe(200);
  const saved = await api(`${room}/versions`, "192.0.2.250", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ name }),
  });
  expect(saved.status).toBe(201);
  return ((await saved.json()) as VersionInfo).id;
}

/**
 * Runs `request` while counting the bytes of every blob the room's SQL queries return: each
 * query still runs on the object's real storage; its rows are only looked at on their way.
 */
async function blobBytesReadDuring<T>(room: string, request: () => Promise<T>): Promise<{ result: T; blobBytes: number }> {
  const stub = env.ROOM.get(env.ROOM.idFromName(room));
  let blobBytes = 0;
  const count = (row: Record<string, unknown>) => {
    for (const value of Object.values(row)) if (value instanceof ArrayBuffer) blobBytes += value.byteLength;
    return row;
  };
  let restore = () => {};
  await runInDurableObject(stub, (_instance, state) => {
    const sql = state.storage.sql;
    const exec = sql.exec;
    sql.exec = ((query: string, ...bindings: unknown[]) => {
      const cursor = exec.call(sql, query, ...bindings);
      return {
        toArray: () => cursor.toArray().map(count),
        one: () => count(cursor.one()),
        *[Symbol.iterator]() {
          for (const row of cursor) yield count(row);
        },
      };
    }) as typeof sql.exec;
    restore = () => void (sql.exec = exec);
  });
  try {
    return { result: await request(), blobBytes };
  } finally {
    await runInDurableObject(stub, () => restore());
  }
}

describe("a read the caller cannot afford", () => {
  it("is refused 429 before the room reads the version it asks for", async () => {
    const room = roomName("read-first");
    // A version whose text costs three quarters of a full budget (two bytes a character), and
    // one whose update costs more than a full budget: only a full budget could pay it.
    const threeQuarters = await versionWith(room, "q".repeat((3 * READ_CALLER_BURST_BYTES) / 8), "three quarters");
    const large = await versionWith(room, "L".repeat(3 * READ_CALLER_BURST_BYTES), "large");

    expect((await api(`${room}/versions/${threeQuarters}/text`, CALLER)).status).toBe(200);
    // A quarter of the budget is left (refilled within the next 3 s), not enough for the large one.
    const { result: refused, blobBytes } = await blobBytesReadDuring(room, () => api(`${room}/versions/${large}/update`, CALLER));
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({ error: "rate_limited" });
    // Not one byte of the 3 MiB version (nor of anything else) was read for it.
    expect(blobBytes).toBe(0);

    // Another caller, with its budget full, reads it: the version is there to be read.
    const { result: admitted, blobBytes: readForIt } = await blobBytesReadDuring(room, () => api(`${room}/versions/${large}/update`, "198.51.100.77"));
    expect(admitted.status).toBe(200);
    const doc = new Y.Doc();
    Y.applyUpdate(doc, new Uint8Array(await admitted.arrayBuffer()));
    expect(doc.getText("codemirror").length).toBe((3 + 3 / 8) * READ_CALLER_BURST_BYTES);
    expect(readForIt).toBeGreaterThan(3 * READ_CALLER_BURST_BYTES);
  });
});
