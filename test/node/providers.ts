/**
 * The stock y-websocket provider in Node, pointed at a DevServer, for tests and the benchmark.
 */
import { WebSocket } from "ws";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import type { DevServer } from "./wrangler.ts";

type ProviderOptions = NonNullable<ConstructorParameters<typeof WebsocketProvider>[3]>;

/** Every wait gives up after this long, so a broken test fails instead of hanging. */
export const WAIT_MS = 15_000;

export async function waitFor(check: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A stock provider on a fresh Y.Doc, connected to `room` on `server`. */
export function connectProvider(server: DevServer, room: string): WebsocketProvider {
  return new WebsocketProvider(server.wsUrl, room, new Y.Doc(), {
    WebSocketPolyfill: WebSocket as unknown as ProviderOptions["WebSocketPolyfill"],
    // Providers in one process would otherwise sync through a BroadcastChannel, bypassing the server.
    disableBc: true,
  });
}

/** Destroys the provider and its document; the document owns the awareness interval timer. */
export function disconnectProvider(provider: WebsocketProvider): void {
  provider.destroy();
  provider.doc.destroy();
}

export const textOf = (provider: WebsocketProvider): string => provider.doc.getText("codemirror").toString();
