/**
 * workerd's memory with idle connections: RSS with 0, 100 and 500 sockets in one room, each
 * reading taken after the room has had time to hibernate, on a server of its own (so the
 * other scenarios' garbage is not counted). Whether the room really hibernated is checked,
 * not assumed: a frame after the reading must make the room log a fresh `load`.
 */
import { execFileSync } from "node:child_process";
import { WebSocket } from "ws";
import { removePersistDir, startDevServer, type DevServer } from "../test/node/wrangler.ts";
import { EMPTY_STATE_VECTOR, EMPTY_UPDATE, encodeSyncStep1, encodeSyncStep2 } from "../worker/protocol.ts";

/**
 * Local workerd evicts an object about 10 s after its last event. The room's join-timeout
 * alarm (10 s after the last socket connected) can be that last event, so wait for both; and
 * stay under the room's 30 s silence timeout, after which idle sockets are closed.
 */
const HIBERNATE_AFTER_MS = 22_000;

/**
 * A sync step 2 with an empty update: what a client with nothing new sends to complete the
 * handshake. Sent once on join and again before each reading, the way a stock provider's
 * presence renewal keeps it from being closed as silent (without changing the document).
 */
const EMPTY_SYNC_STEP2 = encodeSyncStep2(EMPTY_UPDATE);
/** A sync step 1 with an empty state vector: it needs the document, so it makes the room load. */
const EMPTY_SYNC_STEP1 = encodeSyncStep1(EMPTY_STATE_VECTOR);
/** How long to wait for the room's `load` log line after poking it. */
const WAKE_TIMEOUT_MS = 5_000;

export interface MemoryResult {
  connections: number;
  /** Resident memory of each workerd process (wrangler dev runs two: its proxy and the runtime). */
  rssBytesPerProcess: number[];
  rssBytes: number;
  /** The room had left memory while its sockets stayed open. */
  hibernated: boolean;
}

function workerdRss(server: DevServer): number[] {
  const lines = execFileSync("ps", ["-o", "rss=,comm=", "-g", String(server.pid)], { encoding: "utf8" }).trim().split("\n");
  return lines.filter((line) => line.includes("workerd")).map((line) => Number(line.trim().split(/\s+/)[0]) * 1024);
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once("open", () => resolve(socket));
    socket.once("error", reject);
  });
}

const loads = (server: DevServer, room: string) => server.output().split("\n").filter((line) => line.includes('"event":"load"') && line.includes(room)).length;

/** Pokes the room through `socket` and reports whether it had to load again (it had hibernated). */
async function wokeFromHibernation(server: DevServer, room: string, socket: WebSocket): Promise<boolean> {
  const before = loads(server, room);
  socket.send(EMPTY_SYNC_STEP1);
  const deadline = Date.now() + WAKE_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (loads(server, room) > before) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

export async function measureIdleMemory(counts = [0, 100, 500]): Promise<MemoryResult[]> {
  // The benchmark's config: it has no door rate limits, and this opens 500 sockets from one address.
  const server = await startDevServer({ config: "bench/wrangler.toml" });
  const room = `bench-idle-${Date.now()}`;
  const url = `${server.wsUrl}/${room}`;
  const sockets: WebSocket[] = [];
  const results: MemoryResult[] = [];
  try {
    (await open(url)).close(); // the room exists, with no connection
    for (const connections of counts) {
      while (sockets.length < connections) {
        const batch = Math.min(50, connections - sockets.length);
        sockets.push(...(await Promise.all(Array.from({ length: batch }, () => open(url)))));
      }
      for (const socket of sockets) socket.send(EMPTY_SYNC_STEP2);
      await new Promise((resolve) => setTimeout(resolve, HIBERNATE_AFTER_MS));
      const rssBytesPerProcess = workerdRss(server);
      const hibernated = connections > 0 && (await wokeFromHibernation(server, room, sockets[0]!));
      results.push({ connections, rssBytesPerProcess, rssBytes: rssBytesPerProcess.reduce((a, b) => a + b, 0), hibernated });
    }
  } finally {
    for (const socket of sockets) socket.close();
    await server.stop();
    removePersistDir(server.persistDir);
  }
  return results;
}
