/**
 * The stock y-websocket provider, unchanged, against a real `wrangler dev`.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WebsocketProvider } from "y-websocket";
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
});
