/**
 * Tells whether this browser's edits are confirmed by the server.
 *
 * y-websocket has no acknowledgement, but this server gives one implicitly: it handles a
 * socket's frames in order, stores every document update before it sends anything that
 * follows, and echoes each awareness update to its sender. So once our own awareness state
 * comes back, every edit we sent before it is durably stored.
 *
 * Only an echo of exactly what we sent counts: the clock of a state we sent while synced and
 * the same JSON, arriving on the server's socket. A frame with a higher clock (which anyone
 * relaying presence could invent) or another state under our clock proves nothing, and
 * neither does our state coming back from another tab over the BroadcastChannel: stock
 * providers re-broadcast every state they receive.
 */
import * as decoding from "lib0/decoding";
import type { WebsocketProvider } from "y-websocket";
import { decodeAwarenessUpdate, MessageType, type AwarenessEntry } from "../worker/protocol";

/** How long after the last edit we ask for a confirmation, if typing has not produced one. */
const CONFIRM_AFTER_MS = 300;

export class SaveTracker {
  /** Counts local edits; `confirmed` is the count the server has confirmed. */
  private edits = 0;
  private confirmed = 0;
  /** Our awareness states sent while connected (clock and JSON, as the provider encodes them), each with the edit count it follows. */
  private barriers: { clock: number; state: string; edits: number }[] = [];
  private confirmTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly provider: WebsocketProvider,
    private readonly onChange: (unconfirmed: boolean) => void,
  ) {
    const { doc, awareness } = provider;
    doc.on("update", (_update: Uint8Array, origin: unknown) => {
      if (origin === provider) return; // came from the server (or another tab via it)
      this.edits += 1;
      this.onChange(true);
      this.scheduleConfirmation();
    });
    awareness.on("update", ({ updated, added }: { updated: number[]; added: number[] }) => {
      const ours = [...updated, ...added].includes(doc.clientID);
      if (ours && provider.wsconnected && provider.synced) {
        this.barriers.push({ clock: this.ownClock(), state: JSON.stringify(awareness.getLocalState()), edits: this.edits });
      }
    });
    provider.on("sync", (synced: boolean) => {
      // Edits made while disconnected were just sent in the sync handshake: ask for a confirmation.
      if (synced && this.unconfirmed) this.scheduleConfirmation();
    });
    provider.on("connection-close", () => {
      this.barriers = []; // never coming back on this connection
    });
    this.watchEchoes();
  }

  get unconfirmed(): boolean {
    return this.confirmed < this.edits;
  }

  private scheduleConfirmation(): void {
    if (this.confirmTimer !== null) clearTimeout(this.confirmTimer);
    this.confirmTimer = setTimeout(() => {
      this.confirmTimer = null;
      const { awareness } = this.provider;
      // Re-sending our state unchanged bumps its clock; the echo is the confirmation.
      if (this.unconfirmed && this.provider.wsconnected && this.provider.synced) awareness.setLocalState(awareness.getLocalState());
    }, CONFIRM_AFTER_MS);
  }

  /** Wraps the provider's awareness handler to see our own state come back. */
  private watchEchoes(): void {
    const handlers = this.provider.messageHandlers;
    const handleAwareness = handlers[MessageType.awareness]!;
    // The provider passes emitSynced = true for frames from its WebSocket, false for frames
    // from other tabs (BroadcastChannel): only the first come from the server.
    handlers[MessageType.awareness] = (encoder, decoder, provider, fromServer, messageType) => {
      if (fromServer) {
        const peek = decoding.clone(decoder);
        const echoed = decodeAwarenessUpdate(decoding.readVarUint8Array(peek)).find((e) => e.clientId === provider.doc.clientID);
        if (echoed) this.confirmEcho(echoed);
      }
      handleAwareness(encoder, decoder, provider, fromServer, messageType);
    };
  }

  /** Confirms the edits before `echo` if it is a state we sent, exactly as we sent it. */
  private confirmEcho(echo: AwarenessEntry): void {
    const sent = this.barriers.find((barrier) => barrier.clock === echo.clock);
    if (sent === undefined || sent.state !== echo.state) {
      // Our state back under a clock that is no barrier: y-protocols answered the room's removal
      // of it under the next clock (not a change of ours, so no barrier). Ask again, or a quiet
      // client, which never renews, would stay unconfirmed until its next edit.
      if (this.unconfirmed) this.scheduleConfirmation();
      return;
    }
    const reached = this.barriers.filter((barrier) => barrier.clock <= echo.clock);
    this.barriers = this.barriers.filter((barrier) => barrier.clock > echo.clock);
    this.confirmed = Math.max(this.confirmed, ...reached.map((barrier) => barrier.edits));
    this.onChange(this.unconfirmed);
  }

  private ownClock(): number {
    return this.provider.awareness.meta.get(this.provider.doc.clientID)?.clock ?? 0;
  }
}
