/**
 * The durability guarantee against a real `wrangler dev`: an edit is on disk before its writer
 * is told it is saved (the app's save tracker, client/saved.ts), whenever the server is killed
 * with SIGKILL; others may see an edit moments before it is stored, and what they saw comes
 * back when they sync again.
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { HttpSocket } from "../../client/http-socket";
import { SaveTracker } from "../../client/saved";
import { connectProvider, disconnectProvider, textOf, waitFor } from "./providers";
import { newPersistDir, removePersistDir, startDevServer, type DevServer } from "./wrangler";

const open: { servers: DevServer[]; providers: WebsocketProvider[]; dirs: string[] } = { servers: [], providers: [], dirs: [] };

function connect(server: DevServer, room: string): WebsocketProvider {
  const provider = connectProvider(server, room);
  open.providers.push(provider);
  return provider;
}
/** Markers like [a2-1-4] (author a, round 2, burst 1, edit 4) that `authorRound` ("a2") wrote, found in a text. */
const markersBy = (authorRound: string, text: string) => text.match(new RegExp(`\\[${authorRound}-\\d+-\\d+\\]`, "g")) ?? [];

/** Restarts `wrangler dev` on `persistDir`; a fresh client there must hold every marker in `confirmed`. */
async function restartAndExpectStored(persistDir: string, room: string, confirmed: Set<string>, what: string): Promise<DevServer> {
  const restarted = await startDevServer({ persistDir });
  open.servers.push(restarted);
  const fresh = connect(restarted, room);
  await waitFor(() => fresh.synced, `${what}: a fresh client to sync after the restart`);
  const lost = [...confirmed].filter((marker) => !textOf(fresh).includes(marker));
  expect(lost, `${what}: edits confirmed saved but lost`).toEqual([]);
  return restarted;
}

afterEach(async () => {
  for (const provider of open.providers.splice(0)) disconnectProvider(provider);
  for (const server of open.servers.splice(0)) await server.stop("SIGKILL");
  for (const dir of open.dirs.splice(0)) removePersistDir(dir);
});

describe("durability across SIGKILL of wrangler dev", () => {
  it("edits a writer was told are saved survive, at several kill timings, and edits others saw come back when they sync", async () => {
    const persistDir = newPersistDir();
    open.dirs.push(persistDir);
    const room = `durable-${randomUUID().slice(0, 8)}`;
    // Bursts of a's edits confirmed saved before the kill; a keeps typing an unconfirmed burst meanwhile.
    const killAfterConfirmedBursts = [1, 2, 4, 6];
    const confirmedSaved = new Set<string>();
    const seenByOthers = new Set<string>();

    for (const [round, bursts] of killAfterConfirmedBursts.entries()) {
      const server = await startDevServer({ persistDir });
      open.servers.push(server);
      const [a, b] = [connect(server, room), connect(server, room)];
      await waitFor(() => a.synced && b.synced, `round ${round}: both providers to sync`);
      // The app's own save tracker (client/saved.ts): a's edits are saved once its own presence comes back.
      let unconfirmed = false;
      new SaveTracker(a, (now) => (unconfirmed = now));
      a.awareness.setLocalStateField("user", { name: `writer ${round}` });
      const type = (burst: number) => {
        for (let i = 0; i < 5; i++) {
          const text = a.doc.getText("codemirror");
          text.insert(text.length, `[a${round}-${burst}-${i}]`);
        }
      };
      for (let burst = 0; burst < bursts; burst++) {
        type(burst);
        await waitFor(() => !unconfirmed, `round ${round}: burst ${burst} confirmed saved`);
        markersBy(`a${round}`, textOf(a)).forEach((marker) => confirmedSaved.add(marker));
      }
      // One more burst, killed while it is on its way: none of it was confirmed.
      type(bursts);
      await server.stop("SIGKILL");
      markersBy(`a${round}`, textOf(b)).forEach((marker) => seenByOthers.add(marker));
      const held = Y.encodeStateAsUpdate(b.doc);
      for (const provider of open.providers.splice(0)) disconnectProvider(provider);
      open.servers.splice(0);

      const restarted = await restartAndExpectStored(persistDir, room, confirmedSaved, `round ${round}`);

      // b held everything it saw; syncing again brings back whatever the crash took from the server.
      const returning = connect(restarted, room);
      Y.applyUpdate(returning.doc, held);
      await waitFor(() => returning.synced, `round ${round}: b's document to sync again`);
      const check = connect(restarted, room);
      await waitFor(() => check.synced && [...seenByOthers].every((marker) => textOf(check).includes(marker)), `round ${round}: every edit b saw to be stored again`);
      await restarted.stop();
      open.servers.splice(0);
      for (const provider of open.providers.splice(0)) disconnectProvider(provider);
    }
    expect(confirmedSaved.size).toBe(killAfterConfirmedBursts.reduce((sum, bursts) => sum + 5 * bursts, 0));
  }, 180_000);

  it("a restore survives SIGKILL: the editor that saw it live and a fresh client after restart both have the version", async () => {
    const persistDir = newPersistDir();
    open.dirs.push(persistDir);
    const room = `restore-${randomUUID().slice(0, 8)}`;
    const server = await startDevServer({ persistDir });
    open.servers.push(server);
    const editor = connect(server, room);
    await waitFor(() => editor.synced, "the editor to sync");
    const api = (path: string, init?: RequestInit) => fetch(`${server.origin}/api/docs/${room}${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
    const waitForStored = async (expected: string) => {
      for (let attempt = 0; (await (await api("/text")).text()) !== expected; attempt++) {
        if (attempt === 200) throw new Error(`the server never stored ${JSON.stringify(expected)}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    };
    editor.doc.getText("codemirror").insert(0, "the version to come back to");
    await waitForStored("the version to come back to");
    const saved = await api("/versions", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: "good" }) });
    expect(saved.status).toBe(201);
    const { id } = (await saved.json()) as { id: number };
    const text = editor.doc.getText("codemirror");
    text.delete(0, text.length);
    text.insert(0, "a mistake");
    await waitForStored("a mistake");

    expect(await (await api(`/versions/${id}/restore`, { method: "POST" })).json()).toEqual({ changed: true });
    await waitFor(() => textOf(editor) === "the version to come back to", "the editor to see the restore live");
    await server.stop("SIGKILL");
    for (const provider of open.providers.splice(0)) disconnectProvider(provider);
    open.servers.splice(0);

    const restarted = await startDevServer({ persistDir });
    open.servers.push(restarted);
    const fresh = connect(restarted, room);
    await waitFor(() => fresh.synced, "a fresh client to sync after the restart");
    expect(textOf(fresh)).toBe("the version to come back to");
  }, 120_000);

  it("over the HTTP fallback too: edits confirmed saved survive a SIGKILL that comes while the writer's poll is held", async () => {
    const persistDir = newPersistDir();
    open.dirs.push(persistDir);
    const room = `durable-http-${randomUUID().slice(0, 8)}`;
    const confirmedSaved = new Set<string>();
    for (const round of [0, 1]) {
      const server = await startDevServer({ persistDir });
      open.servers.push(server);
      const writer = new WebsocketProvider(server.wsUrl, room, new Y.Doc(), { WebSocketPolyfill: HttpSocket as unknown as typeof WebSocket, disableBc: true });
      open.providers.push(writer);
      await waitFor(() => writer.synced, `round ${round}: the HTTP writer to sync`);
      let unconfirmed = false;
      new SaveTracker(writer, (now) => (unconfirmed = now));
      writer.awareness.setLocalStateField("user", { name: `http writer ${round}` });
      for (let burst = 0; burst < 3; burst++) {
        const text = writer.doc.getText("codemirror");
        for (let i = 0; i < 5; i++) text.insert(text.length, `[h${round}-${burst}-${i}]`);
        await waitFor(() => !unconfirmed, `round ${round}: burst ${burst} confirmed saved`);
        markersBy(`h${round}`, textOf(writer)).forEach((marker) => confirmedSaved.add(marker));
      }
      // Idle for a moment: the writer's poll is held by the room when the kill comes, with one more burst on its way.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const text = writer.doc.getText("codemirror");
      text.insert(text.length, `[h${round}-unconfirmed]`);
      await server.stop("SIGKILL");
      for (const provider of open.providers.splice(0)) disconnectProvider(provider);
      open.servers.splice(0);

      const restarted = await restartAndExpectStored(persistDir, room, confirmedSaved, `round ${round} over HTTP`);
      await restarted.stop();
      open.servers.splice(0);
      for (const provider of open.providers.splice(0)) disconnectProvider(provider);
    }
    expect(confirmedSaved.size).toBe(30);
  }, 180_000);
});
