/**
 * Presence of a quiet client (docs/protocol.md, "Quiet clients").
 *
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
 *
 * The room is the authority on who left. On a quiet socket nothing times out, so a removal the
 * room sends must not be lost to y-protocols' clock rule, which ignores one below the clock it
 * knows:
 * - a removal of another client is applied whatever its clock: the room's copy of a state may
 *   be older than the last it relayed (it saves presence to the socket's attachment at most
 *   every 10 s, and a wake restores that copy), and the room removes a client only when its
 *   socket is gone;
 * - a removal of our own state below our clock is answered with our state under the next clock
 *   (y-protocols does so itself at or above it). It comes when we came back on a new connection
 *   while the room still held the old one: our state was refused then (the old socket held our
 *   ID), and the old one's removal carries its clock. A stock provider shows again at its next
 *   renewal; a quiet client, which does not renew, must announce itself.
 */
import * as decoding from "lib0/decoding";
import { outdatedTimeout, removeAwarenessStates } from "y-protocols/awareness";
import type { WebsocketProvider } from "y-websocket";
import { MessageType, decodeAwarenessUpdate } from "../worker/protocol";

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

/** Wraps the provider's awareness handler with the rules above, applied to frames from the room while `quiet()`. */
export function followRoomRemovals(provider: WebsocketProvider, quiet: () => boolean): void {
  const handlers = provider.messageHandlers;
  const handleAwareness = handlers[MessageType.awareness]!;
  handlers[MessageType.awareness] = (encoder, decoder, from, fromServer, messageType) => {
    if (!fromServer || !quiet()) return handleAwareness(encoder, decoder, from, fromServer, messageType);
    const { awareness } = from;
    const removals = decodeAwarenessUpdate(decoding.readVarUint8Array(decoding.clone(decoder))).filter((entry) => entry.state === null);
    // Below the clock we know: y-protocols ignores them.
    const ignored = removals.filter((entry) => entry.clock < (awareness.meta.get(entry.clientId)?.clock ?? 0));
    handleAwareness(encoder, decoder, from, fromServer, messageType);
    const others = ignored.filter((entry) => entry.clientId !== awareness.clientID).map((entry) => entry.clientId);
    if (others.length > 0) removeAwarenessStates(awareness, others, from);
    if (ignored.some((entry) => entry.clientId === awareness.clientID) && awareness.getLocalState() !== null) {
      awareness.setLocalState(awareness.getLocalState()); // our state again, under the next clock
    }
  };
}
