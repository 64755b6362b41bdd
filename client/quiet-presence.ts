/**
 * The stock timers of presence, kept only where they belong. y-protocols' `Awareness` renews the
 * local state every 15 s and drops a remote state not renewed for 30 s; the y-websocket provider
 * reconnects after 30 s without a message. On a quiet socket (client/quiet-socket.ts) all three
 * are wrong: the room holds our state while the socket lives and removes others' when their
 * sockets end (renewals would wake it for nothing), it sends nothing while nobody changes
 * anything (the provider would reconnect every 30 s), and the socket has its own liveness rule.
 * On the HTTP fallback they stay: its sessions keep the stock rules (docs/protocol.md).
 *
 * So `EdgedocProvider` stops both timers and runs the same rules here, only while its
 * connection is not quiet, with y-protocols' and y-websocket's own numbers.
 */
import { outdatedTimeout, removeAwarenessStates } from "y-protocols/awareness";
import type { WebsocketProvider } from "y-websocket";

/** y-websocket's `messageReconnectTimeout`: no message for this long and a stock connection is presumed dead. */
const STOCK_MESSAGE_TIMEOUT_MS = 30_000;
/** How often the stock rules run (y-protocols checks every tenth of its timeout). */
const STOCK_CHECK_MS = outdatedTimeout / 10;

/** Replaces the provider's and its awareness's timers; `stockRules` says when the stock rules apply. Returns the stop. */
export function keepStockTimersOnlyWhen(provider: WebsocketProvider, stockRules: () => boolean): () => void {
  const { awareness } = provider;
  clearInterval(awareness._checkInterval);
  clearInterval(provider._checkInterval);
  const timer = setInterval(() => {
    if (!stockRules()) return;
    const now = Date.now();
    const own = awareness.meta.get(awareness.clientID);
    if (awareness.getLocalState() !== null && own !== undefined && outdatedTimeout / 2 <= now - own.lastUpdated) {
      awareness.setLocalState(awareness.getLocalState()); // the renewal: same state, next clock
    }
    const outdated = [...awareness.meta]
      .filter(([clientId, meta]) => clientId !== awareness.clientID && outdatedTimeout <= now - meta.lastUpdated && awareness.states.has(clientId))
      .map(([clientId]) => clientId);
    if (outdated.length > 0) removeAwarenessStates(awareness, outdated, "timeout");
    if (provider.wsconnected && STOCK_MESSAGE_TIMEOUT_MS < now - provider.wsLastMessageReceived) provider.ws?.close();
  }, STOCK_CHECK_MS);
  return () => clearInterval(timer);
}
