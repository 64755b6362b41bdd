/**
 * client/fallback.ts's choice against a real `wrangler dev`: WebSockets first, HTTP after three
 * attempts that never opened, one that opened and dropped not counted, and back to WebSockets
 * once a probe finds them working again, with one connection to the room at a time.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import * as Y from "yjs";
import { EdgedocProvider, type Transport } from "../../client/fallback";
import { HttpSocket } from "../../client/http-socket";
import { connectProvider, disconnectProvider, textOf, waitFor } from "./providers";
import { freePort, removePersistDir, startDevServer, type DevServer } from "./wrangler";

let server: DevServer;
/** A loopback port nothing listens on: a WebSocket there is refused at once, never opened. */
let deadPort: number;

beforeAll(async () => {
  [server, deadPort] = await Promise.all([startDevServer(), freePort()]);
});

afterAll(async () => {
  await server?.stop();
  if (server) removePersistDir(server.persistDir);
});

/** `ws`, sent to the dead port while `blocked()` says the network refuses WebSockets; counts attempts and open sockets. */
function networkWebSocket(blocked: () => boolean, counts: { attempts: number; open: number; maxOpen: number; latest?: WebSocket }): typeof globalThis.WebSocket {
  return class extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(blocked() ? url.replace(/:\d+\//, `:${deadPort}/`) : url, protocols);
      if (!url.includes("probe=1")) counts.attempts += 1;
      counts.latest = this;
      this.on("open", () => (counts.maxOpen = Math.max(counts.maxOpen, ++counts.open)));
      this.on("close", () => (counts.open = Math.max(0, counts.open - 1)));
    }
  } as unknown as typeof globalThis.WebSocket;
}

describe("the provider chooses its transport", () => {
  it("falls back after three refused WebSockets, edits with a stock provider, and returns to WebSockets when a probe opens", async () => {
    const room = `choice-${randomUUID().slice(0, 8)}`;
    let blocked = true;
    const counts = { attempts: 0, open: 0, maxOpen: 0 };
    const changes: Transport[] = [];
    const provider = new EdgedocProvider(server.wsUrl, room, new Y.Doc(), {
      disableBc: true,
      fallback: { WebSocketImpl: networkWebSocket(() => blocked, counts), probeIntervalMs: 1_000 },
    });
    provider.onTransport((transport) => changes.push(transport));
    const stock = connectProvider(server, room);
    try {
      await waitFor(() => provider.synced, "the provider to sync over HTTP");
      expect(provider.transport).toBe("http");
      expect(provider.ws).toBeInstanceOf(HttpSocket);
      expect(counts.attempts).toBe(3);
      provider.doc.getText("codemirror").insert(0, "over http. ");
      await waitFor(() => textOf(stock).includes("over http."), "the stock provider to see the HTTP edit");

      blocked = false;
      await waitFor(() => provider.transport === "websocket" && provider.synced && !(provider.ws instanceof HttpSocket), "a probe to bring the provider back to WebSockets", 10_000);
      expect(changes).toEqual(["http", "websocket"]);
      provider.doc.getText("codemirror").insert(0, "over ws. ");
      await waitFor(() => textOf(stock).startsWith("over ws."), "the stock provider to see the WebSocket edit");
      // The room had one of the provider's connections at a time: its socket opened only after the HTTP session ended.
      expect(counts.maxOpen).toBe(1);
    } finally {
      provider.destroy();
      disconnectProvider(stock);
    }
  }, 60_000);

  it("on HTTP, presence the room sent is not posted back: a stock provider's echoes would each be a request", async () => {
    const room = `choice-echo-${randomUUID().slice(0, 8)}`;
    const counts = { attempts: 0, open: 0, maxOpen: 0 };
    const provider = new EdgedocProvider(server.wsUrl, room, new Y.Doc(), { disableBc: true, fallback: { WebSocketImpl: networkWebSocket(() => true, counts) } });
    const stock = connectProvider(server, room);
    const realFetch = globalThis.fetch;
    const posts: string[] = [];
    globalThis.fetch = (input, init) => {
      if (init?.method === "POST" && String(input).includes("seq=")) posts.push(String(input));
      return realFetch(input, init);
    };
    try {
      await waitFor(() => provider.synced && stock.synced, "both to sync");
      const seen = () => (provider.awareness.getStates().get(stock.doc.clientID) as { n?: number } | undefined)?.n;
      await waitFor(() => provider.awareness.getStates().size === 1 || seen() === undefined, "settled");
      const before = posts.length;
      for (let n = 1; n <= 5; n++) {
        stock.awareness.setLocalStateField("n", n);
        await waitFor(() => seen() === n, `the HTTP provider to see presence change ${n}`);
      }
      // Give any echo time to leave.
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(posts.length - before).toBe(0);
      // Its own presence still goes out, and comes back to the stock provider.
      provider.awareness.setLocalStateField("user", { name: "on http" });
      await waitFor(() => (stock.awareness.getStates().get(provider.doc.clientID) as { user?: { name?: string } } | undefined)?.user?.name === "on http", "its own presence to arrive");
      expect(posts.length - before).toBe(1);
    } finally {
      globalThis.fetch = realFetch;
      provider.destroy();
      disconnectProvider(stock);
    }
  }, 60_000);

  it("a WebSocket that opened and later dropped is not a reason to fall back", async () => {
    const room = `choice-drop-${randomUUID().slice(0, 8)}`;
    const counts: { attempts: number; open: number; maxOpen: number; latest?: WebSocket } = { attempts: 0, open: 0, maxOpen: 0 };
    const provider = new EdgedocProvider(server.wsUrl, room, new Y.Doc(), { disableBc: true, fallback: { WebSocketImpl: networkWebSocket(() => false, counts) } });
    try {
      for (let drop = 0; drop < 4; drop++) {
        await waitFor(() => provider.synced, `sync ${drop}`);
        // Cut, as a network drop does (no close handshake).
        counts.latest!.terminate();
        await waitFor(() => !provider.synced, `drop ${drop}`);
      }
      await waitFor(() => provider.synced, "the last sync");
      expect(provider.transport).toBe("websocket");
      expect(counts.attempts).toBe(5);
    } finally {
      provider.destroy();
    }
  }, 60_000);
});
