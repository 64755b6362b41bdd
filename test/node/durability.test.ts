/**
 * The durability guarantee against a real `wrangler dev`: whatever any client has seen
 * relayed survives the server being killed with SIGKILL at any moment.
 */
import { randomUUID } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import type { WebsocketProvider } from "y-websocket";
import { connectProvider, disconnectProvider, textOf, waitFor } from "./providers";
import { newPersistDir, removePersistDir, startDevServer, type DevServer } from "./wrangler";

const open: { servers: DevServer[]; providers: WebsocketProvider[]; dirs: string[] } = { servers: [], providers: [], dirs: [] };

function connect(server: DevServer, room: string): WebsocketProvider {
  const provider = connectProvider(server, room);
  open.providers.push(provider);
  return provider;
}
/** Markers like [a2-17] (author a, round 2, edit 17) that `authorRound` ("a2") wrote, found in a text. */
const markersBy = (authorRound: string, text: string) => text.match(new RegExp(`\\[${authorRound}-\\d+\\]`, "g")) ?? [];

afterEach(async () => {
  for (const provider of open.providers.splice(0)) disconnectProvider(provider);
  for (const server of open.servers.splice(0)) await server.stop("SIGKILL");
  for (const dir of open.dirs.splice(0)) removePersistDir(dir);
});

describe("durability across SIGKILL of wrangler dev", () => {
  it("a fresh client after restart sees every edit any client had seen relayed, at several kill timings", async () => {
    const persistDir = newPersistDir();
    open.dirs.push(persistDir);
    const room = `durable-${randomUUID().slice(0, 8)}`;
    // How many of a's edits b must have seen relayed before the kill; a keeps typing meanwhile.
    const killAfterSeen = [1, 7, 30, 60];
    const mustSurvive = new Set<string>();

    for (const [round, threshold] of killAfterSeen.entries()) {
      const server = await startDevServer({ persistDir });
      open.servers.push(server);
      const [a, b] = [connect(server, room), connect(server, room)];
      await waitFor(() => a.synced && b.synced, `round ${round}: both providers to sync`);

      b.doc.getText("codemirror").insert(0, `[b${round}-0]`);
      await waitFor(() => markersBy(`b${round}`, textOf(a)).length === 1, `round ${round}: b's edit relayed to a`);
      let typing = true;
      const typist = (async () => {
        for (let i = 0; i < 200 && typing; i++) {
          const text = a.doc.getText("codemirror");
          text.insert(text.length, `[a${round}-${i}]`);
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
      })();
      await waitFor(() => markersBy(`a${round}`, textOf(b)).length >= threshold, `round ${round}: ${threshold} relays`);
      await server.stop("SIGKILL");
      typing = false;
      await typist;

      markersBy(`a${round}`, textOf(b)).forEach((marker) => mustSurvive.add(marker));
      markersBy(`b${round}`, textOf(a)).forEach((marker) => mustSurvive.add(marker));
      for (const provider of open.providers.splice(0)) disconnectProvider(provider);
      open.servers.splice(0);

      const restarted = await startDevServer({ persistDir });
      open.servers.push(restarted);
      const fresh = connect(restarted, room);
      await waitFor(() => fresh.synced, `round ${round}: a fresh client to sync after the restart`);
      const survived = textOf(fresh);
      const lost = [...mustSurvive].filter((marker) => !survived.includes(marker));
      expect(lost, `round ${round}: edits seen relayed but lost`).toEqual([]);
      await restarted.stop();
      open.servers.splice(0);
      for (const provider of open.providers.splice(0)) disconnectProvider(provider);
    }
    expect(mustSurvive.size).toBeGreaterThan(killAfterSeen.reduce((sum, n) => sum + n, 0));
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
    const saved = await api("/versions", { method: "POST", body: JSON.stringify({ name: "good" }) });
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
});
