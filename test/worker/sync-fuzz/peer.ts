/**
 * One person of the fuzz: a real Y.Doc edited as the app edits it (`Y.Text` "codemirror"),
 * the app's own provider (`EdgedocProvider`, client/fallback.ts: the stock y-websocket provider
 * whose connections are `HttpSocket`s once WebSockets failed) on a network that blocks
 * WebSockets, so every connection is the real `HttpSocket` with `replaces` as the app passes
 * it, and the app's save tracker (client/saved.ts) saying when its edits are stored.
 */
import * as Y from "yjs";
import { SaveTracker } from "../../../client/saved";
import { CLIENT_PARAM, closeViolation } from "./network";
import type { AppProvider, AppProviderClass } from "./app-provider";
import type { FuzzLog } from "./log";

/** The provider's longest wait before joining again: short, so that a run spends its time on traffic. */
const MAX_BACKOFF_MS = 200;

/** The close HttpSocket reports for a request that failed on the network. */
const NETWORK_FAILURE = 1006;

export class FuzzPeer {
  readonly doc = new Y.Doc();
  readonly text = this.doc.getText("codemirror");
  readonly provider: AppProvider;
  /**
   * This client's own Yjs clock when the save tracker last said every edit was saved: the
   * stored document must hold at least this much of it (checked after restarts).
   */
  savedClock = 0;
  private readonly saves: SaveTracker;

  constructor(
    Provider: AppProviderClass,
    readonly index: number,
    room: string,
    private readonly log: FuzzLog,
  ) {
    this.provider = new Provider("ws://edgedoc.test/ws", room, this.doc, {
      connect: false,
      disableBc: true,
      maxBackoffTime: MAX_BACKOFF_MS,
      params: { [CLIENT_PARAM]: String(index) },
    });
    // WebSockets are blocked on this network: the chooser has fallen back, so every attempt is an HttpSocket.
    this.provider.chooser.transport = "http";
    this.saves = new SaveTracker(this.provider, (unconfirmed) => {
      if (!unconfirmed) this.savedClock = Y.getState(this.doc.store, this.doc.clientID);
    });
    this.provider.on("connection-close", (event) => this.closed(event as { code: number; reason: string } | null));
    this.provider.awareness.setLocalStateField("user", { name: `peer ${index}`, color: "#3366cc" });
    this.provider.connect();
  }

  get connected(): boolean {
    return this.provider.wsconnected && this.provider.synced;
  }

  /** Whether the provider will (re)connect: false after it left, or after a close that says retrying cannot help. */
  get joining(): boolean {
    return this.provider.shouldConnect;
  }

  get unconfirmed(): boolean {
    return this.saves.unconfirmed;
  }

  /** Inserts `content` at `where` (0-1) of the text. */
  insert(where: number, content: string): void {
    this.text.insert(Math.floor(where * (this.text.length + 1)), content);
  }

  /** Deletes up to `length` characters from `where` (0-1) of the text. */
  delete(where: number, length: number): void {
    const index = Math.floor(where * this.text.length);
    const count = Math.min(length, this.text.length - index);
    if (count > 0) this.text.delete(index, count);
  }

  setPresence(cursor: number): void {
    this.provider.awareness.setLocalStateField("cursor", { anchor: cursor, head: cursor });
  }

  leave(): void {
    this.provider.disconnect();
  }

  rejoin(): void {
    this.provider.connect();
  }

  destroy(): void {
    this.provider.destroy();
    this.doc.destroy();
  }

  private closed(event: { code: number; reason: string } | null): void {
    if (event === null) return;
    this.log.trace(`c${this.index} closed ${event.code} "${event.reason}"`);
    // Network failures and the client's own leave are the client's closes; the rest came from the room.
    if (event.code === NETWORK_FAILURE || (event.code === 1000 && event.reason === "")) return;
    const wrong = closeViolation(event);
    if (wrong !== null) this.log.violation(`c${this.index}: ${wrong}`);
  }
}
