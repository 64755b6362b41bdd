/**
 * The stock y-websocket provider, unchanged, against a real `wrangler dev`.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import type { WebsocketProvider } from "y-websocket";
import { SaveTracker } from "../../client/saved";
import { AWARENESS_TIMEOUT_MS, CloseCode, EMPTY_UPDATE, encodeAwareness, encodeSyncStep2 } from "../../worker/protocol";
import { connectProvider, disconnectProvider, waitFor } from "./providers";
import { removePersistDir, startDevServer, type DevServer } from "./wrangler";

let server: DevServer;
const providers: WebsocketProvider[] = [];

function connect(room: string): WebsocketProvider {
  const provider = connectProvider(server, room);
  providers.push(provider);
  return provider;
}

beforeAll(async () => {
  server = await startDevServer();
});

afterAll(async () => {
  for (const provider of providers) disconnectProvider(provider);
  await server?.stop();
  if (server) removePersistDir(server.persistDir);
});
describe("stock y-websocket provider against wrangler dev", () => {
  it("two providers sync and converge on concurrent edits", async () => {
    const room = `provider-${randomUUID().slice(0, 8)}`;
    const [a, b] = [connect(room), connect(room)];
    await waitFor(() => a.synced && b.synced, "both providers to sync");
    const [textA, textB] = [a.doc.getText("codemirror"), b.doc.getText("codemirror")];
    textA.insert(0, "from a. ");
    textB.insert(0, "from b. ");
    await waitFor(() => textA.toString() === textB.toString() && textA.length === 16, "convergence");
    expect(textA.toString()).toContain("from a. ");
    expect(textA.toString()).toContain("from b. ");

    const c = connect(room);
    await waitFor(() => c.synced && c.doc.getText("codemirror").toString() === textA.toString(), "a late joiner's sync");
  });

  it("awareness round-trips between providers, and a provider that leaves disappears", async () => {
    const room = `aware-${randomUUID().slice(0, 8)}`;
    const [a, b] = [connect(room), connect(room)];
    await waitFor(() => a.synced && b.synced, "both providers to sync");
    a.awareness.setLocalStateField("user", { name: "Ada", color: "#c03" });
    b.awareness.setLocalStateField("user", { name: "Bo", color: "#03c" });
    const userOf = (p: WebsocketProvider, id: number) => (p.awareness.getStates().get(id) as { user?: { name: string } } | undefined)?.user?.name;
    await waitFor(() => userOf(b, a.doc.clientID) === "Ada" && userOf(a, b.doc.clientID) === "Bo", "each to see the other");
    a.awareness.setLocalStateField("cursor", { anchor: 3, head: 5 });
    await waitFor(() => JSON.stringify(b.awareness.getStates().get(a.doc.clientID)?.cursor) === '{"anchor":3,"head":5}', "a's cursor at b");
    b.disconnect();
    await waitFor(() => !a.awareness.getStates().has(b.doc.clientID), "b to leave a's presence");
  });

  it("the app's save tracker on a stock provider: an edit is confirmed by the server once it is stored", async () => {
    const room = `saved-${randomUUID().slice(0, 8)}`;
    const [writer, reader] = [connect(room), connect(room)];
    const tracker = new SaveTracker(writer, () => {});
    await waitFor(() => writer.synced && reader.synced, "both providers to sync");
    writer.doc.getText("codemirror").insert(0, "saved for real");
    expect(tracker.unconfirmed).toBe(true);
    await waitFor(() => !tracker.unconfirmed, "the server's confirmation");
    expect(await (await fetch(`${server.origin}/api/docs/${room}/text`)).text()).toBe("saved for real");
  });

  it("idle stock providers stay connected past the silence timeout, while silent raw sockets are closed", async () => {
    const room = `idle-${randomUUID().slice(0, 8)}`;
    const [a, b] = [connect(room), connect(room)];
    const closes: number[] = [];
    for (const provider of [a, b]) provider.on("connection-close", (event: CloseEvent | null) => closes.push(event?.code ?? 0));
    await waitFor(() => a.synced && b.synced, "both providers to sync");
    const syncedAt = Date.now();
    const closeOf = (socket: WebSocket) => new Promise<number>((resolve) => socket.once("close", (code: number) => resolve(code)));
    const neverJoins = new WebSocket(`${server.wsUrl}/${room}`);
    const joinsThenSilent = new WebSocket(`${server.wsUrl}/${room}`);
    joinsThenSilent.once("open", () => joinsThenSilent.send(encodeSyncStep2(EMPTY_UPDATE)));
    const [joinClose, silenceClose] = [closeOf(neverJoins), closeOf(joinsThenSilent)];
    // The room's alarm closes both; the providers renew their presence every 15 s and are left alone.
    expect(await joinClose).toBe(CloseCode.joinTimeout);
    expect(await silenceClose).toBe(CloseCode.presenceTimeout);
    // By now the providers sent nothing but their renewals for longer than the silence timeout.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, syncedAt + AWARENESS_TIMEOUT_MS + 2_000 - Date.now())));
    expect(closes).toEqual([]);
    a.doc.getText("codemirror").insert(0, "still here");
    await waitFor(() => b.doc.getText("codemirror").toString() === "still here", "an edit after the idle period");
  }, 90_000);

  it("a crowd of stock providers stays connected while two sockets flood their own presence", async () => {
    const room = `crowd-${randomUUID().slice(0, 8)}`;
    const crowd = Array.from({ length: 8 }, () => connect(room));
    const closes: string[] = [];
    for (const provider of crowd) provider.on("connection-close", (event: CloseEvent | null) => closes.push(`${event?.code} ${event?.reason}`));
    await waitFor(() => crowd.every((provider) => provider.synced), "the crowd to sync");
    crowd.forEach((provider, i) => provider.awareness.setLocalStateField("user", { name: `person ${i}`, color: "#30638e" }));
    // Each noisy socket changes its own presence 150 times a second, within its own rate (200/s),
    // for 4 s: every provider receives 300 changes a second and re-sends each one.
    const noisy = await Promise.all([0, 1].map(() => openNoisy(`${server.wsUrl}/${room}`)));
    const sent = await Promise.all(noisy.map((socket, i) => flood(socket, 900_000 + i, 150, 4_000)));
    expect(sent.every((count) => count >= 500)).toBe(true);
    crowd[0]!.doc.getText("codemirror").insert(0, "heard through the noise");
    await waitFor(() => crowd.every((provider) => provider.doc.getText("codemirror").toString() === "heard through the noise"), "convergence");
    const refusals = server.output().split("\n").filter((line) => /"event":"(frame_rejected|room_error)"/.test(line));
    expect(closes, refusals.slice(0, 10).join("\n")).toEqual([]);
    for (const socket of noisy) socket.close();
  }, 60_000);
});

function openNoisy(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    socket.once("open", () => {
      socket.send(encodeSyncStep2(EMPTY_UPDATE));
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Sends presence changes of `clientId` at `perSecond` for `ms`; returns how many it sent. */
async function flood(socket: WebSocket, clientId: number, perSecond: number, ms: number): Promise<number> {
  const started = Date.now();
  let clock = 0;
  while (Date.now() - started < ms && socket.readyState === WebSocket.OPEN) {
    const due = Math.floor(((Date.now() - started) * perSecond) / 1000);
    while (clock < due) {
      clock++;
      socket.send(encodeAwareness([{ clientId, clock, state: JSON.stringify({ user: { name: "noisy", color: "#c03" }, cursor: clock }) }]));
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return clock;
}
