/**
 * The life of every update, written once. An update from a socket or the HTTP API goes:
 *
 *   received → checked → refused                     (its sender is closed or answered 4xx)
 *                      → waiting → integrated | dropped
 *                      → integrated → relayed → held → stored → confirmed
 *
 * `checked` is worker/update-check.ts and the document's limits; `waiting` is Yjs's pending
 * store (dependencies missing); `relayed` is before `stored`, so others need not wait for the
 * disk; `held` is the store's batch of accepted updates written together (worker/storage.ts);
 * `confirmed` is what the writer is told: the echo of its own presence, or the HTTP answer.
 *
 * Invariants: a writer is confirmed only for updates that are stored (everything held is
 * written before any frame but a relayed edit leaves, and a writer with an update waiting or
 * dropped gets no echo); an update another socket was sent is stored, or its writers are asked
 * to send it again (closed 1011, or sent sync step 1, which a y-websocket client answers with
 * everything the room lacks). After a failed write every writer is asked: the discarded batch
 * may hold edits of clients other than the sockets that sent them. What every other path does to held and waiting updates is the
 * table in docs/architecture.md; this module is where each row happens.
 */
import * as Y from "yjs";
import type { Applied, RoomDocument } from "../document";
import { logEvent } from "../log";
import { CloseCode, encodeAwareness, encodeSyncStep1, encodeSyncUpdate } from "../protocol";
import type { DocumentStore } from "../storage";
import type { PresenceRegistry } from "../awareness";
import type { RoomSocket } from "./ports";
import type { Sessions } from "./sessions";

/** The stages of one update's life, and where each may go next. */
export const UPDATE_LIFE = {
  received: ["checked", "refused"],
  checked: ["integrated", "waiting", "refused"],
  waiting: ["integrated", "dropped"],
  integrated: ["relayed"],
  relayed: ["held"],
  held: ["stored", "dropped"],
  stored: ["confirmed"],
  confirmed: [],
  refused: [],
  dropped: [],
} as const satisfies Record<string, readonly string[]>;
export type UpdateStage = keyof typeof UPDATE_LIFE;

/**
 * Why a writer's confirmation is withheld: an update of its `waiting` for dependencies, or
 * dropped from waiting (TTL, the pending bound, a reload, the object leaving memory) and the
 * writer asked to `resend` it; it is confirmed again once it has answered that request.
 */
export type Withheld = "waiting" | "resend";

/** What the life needs from the room around it. */
export interface LifeRoom<Socket extends RoomSocket> {
  /** Functions: the document is loaded at first use, and DELETE replaces the storage. */
  document(): RoomDocument;
  store(): DocumentStore;
  readonly sessions: Sessions<Socket>;
  readonly presence: PresenceRegistry<Socket>;
  now(): number;
  /** A change was integrated: history, webhooks, the read cache and compaction take note. */
  accepted(integrated: Uint8Array, author: string | undefined): void;
  readonly name: string | undefined;
}

export class UpdateLife<Socket extends RoomSocket> {
  /** Sockets whose integrated updates are held, not yet stored: a failed write closes them. */
  private readonly heldWriters = new Set<Socket>();
  private readonly withheld = new Map<Socket, Withheld>();
  /**
   * Relayed edits not yet stored, still to be relayed to read-only sockets: a writer that was
   * relayed an edit the room then lost (a failed write, a restart before it) sends it back with
   * its next sync, but a reader cannot (its updates are refused), and would keep a text that
   * is in no stored document. Readers hear an edit once it is stored: at most the hold
   * (`HELD_UPDATES_MAX_MS`, or until the writer's next frame) after the writers. Bounded by
   * the held updates, which are written past `HELD_UPDATES_MAX_BYTES`.
   */
  private unstoredForReaders: Uint8Array[] = [];

  constructor(private readonly room: LifeRoom<Socket>) {}

  /**
   * An update from `socket` (sync step 2 or a sync update), through to held. Refusals throw
   * `ProtocolError` from the document; the caller closes the sender.
   */
  fromSocket(socket: Socket, update: Uint8Array, author: string | undefined, syncAnswer: boolean): void {
    const now = this.room.now();
    // The answer to our sync step 1 carries everything the client has that the room lacks:
    // what it was asked to send again is in it, whole or waiting again.
    if (syncAnswer && this.withheld.get(socket) === "resend") this.confirmable(socket);
    const applied = this.apply(update, now, socket);
    if (applied.integrated !== null) {
      this.heldWriters.add(socket);
      this.room.accepted(applied.integrated, author);
    }
    if (applied.waits && this.waitsForOwnEdits(socket, applied)) this.withhold(socket, "waiting");
    if (this.room.store().heldDue(now)) this.writeHeld();
    // The document's first update is written at once, not held.
    else if (!this.room.store().holdsUpdates()) this.relayStoredToReaders();
  }

  /**
   * Whether what waits of a socket's update holds its own edits: structs under a client ID of
   * its presence (a y-websocket client edits under the ID it announces), or deletions (which
   * name no author). Structs of other clients it forwards may wait for good (a client that
   * was relayed edits and lost their base to a DELETE sends them with every sync), and must
   * not keep its own saved edits from being confirmed. Without presence, anything waiting counts.
   */
  private waitsForOwnEdits(socket: Socket, applied: Applied): boolean {
    const waitingClients = applied.waitingClients ?? [];
    const own = this.room.presence.heldBy(socket);
    if (waitingClients.length === 0 || Object.keys(own).length === 0) return true;
    return waitingClients.some((client) => client in own);
  }

  /**
   * A write over HTTP (an update, a text replacement, a restore), through to stored. Its caller
   * is answered only once it is written anyway, so it is relayed only then: a storage fault
   * leaves nobody holding it (a reader could never send it back). Throws when the write failed.
   */
  fromHttp(change: (relay: (integrated: Uint8Array) => void) => Applied, author: string | undefined): Applied {
    const relayed: Uint8Array[] = [];
    let applied: Applied;
    try {
      applied = change((integrated) => relayed.push(integrated));
      if (applied.integrated !== null) this.room.accepted(applied.integrated, author);
    } catch (error) {
      // A fault after the change was integrated (a restore's before-restore version, say): the
      // caller is answered 500, so nothing of it may stay.
      if (relayed.length > 0) this.goBackToStored(error);
      throw error;
    } finally {
      this.afterDocumentWork();
    }
    if (!this.writeHeld()) throw new Error("storage write failed");
    const now = this.room.now();
    for (const integrated of relayed) this.room.sessions.broadcast(encodeSyncUpdate(integrated), now);
    return applied;
  }

  private apply(update: Uint8Array, now: number, sender?: Socket) {
    // An update may let waiting ones of others integrate with it: what is relayed then holds
    // edits its sender lacks, so it goes to the sender too (Yjs skips what it has).
    const relayToSender = this.room.document().hasPending();
    try {
      return this.room.document().apply(update, now, this.relay(relayToSender ? undefined : sender));
    } finally {
      this.afterDocumentWork();
    }
  }

  /**
   * Relays what the document integrated to every socket but its sender: after every check that
   * can refuse it and before it is stored (docs/storage.md). Its sender learns it is saved only
   * from what the room sends it later, which the output gate holds until the write is durable.
   */
  private relay(sender?: Socket): (integrated: Uint8Array) => void {
    return (integrated) => {
      const frame = encodeSyncUpdate(integrated);
      this.room.sessions.broadcast(frame, this.room.now(), sender, "writers");
      if (this.room.sessions.anyReaders) this.unstoredForReaders.push(frame);
    };
  }

  /** Everything integrated is stored: read-only sockets hear the edits relayed to writers before. */
  private relayStoredToReaders(): void {
    const frames = this.unstoredForReaders;
    if (frames.length === 0) return;
    this.unstoredForReaders = [];
    for (const frame of frames) this.room.sessions.broadcast(frame, this.room.now(), undefined, "readers");
  }

  /**
   * Writes the held updates as one log row. Runs before the room sends anything but a relayed
   * edit, when they are due, and at the alarm. On a storage fault the document goes back to
   * what is stored and their writers are closed (1011): never told the edits were saved, they
   * send them again when they reconnect. Returns whether everything accepted is now stored.
   */
  writeHeld(): boolean {
    // Called before every frame but relays, per recipient: nothing held is the common case.
    if (!this.room.store().holdsUpdates()) {
      this.heldWriters.clear();
      this.relayStoredToReaders();
      return true;
    }
    const writers = [...this.heldWriters];
    const held = [...this.room.store().heldUpdates()];
    this.heldWriters.clear();
    try {
      this.room.store().writeHeld();
      this.relayStoredToReaders();
      return true;
    } catch (error) {
      this.goBackToStored(error, writers, held);
      return false;
    }
  }

  /**
   * After a storage fault: the document goes back to what is stored and the sockets that sent
   * what was held are closed (1011). What was discarded may hold edits of others than those
   * sockets (another tab's, shared with the one that sent them): a socket whose presence names
   * an author of a discarded update is asked to send what the room lacks, and told nothing
   * until it has; so is one whose waiting update the reload forgot.
   */
  private goBackToStored(error: unknown, writers = [...this.heldWriters], lost = [...this.room.store().heldUpdates()]): void {
    logEvent("room_error", { room: this.room.name, error: String(error) });
    const authors = authorsOf(lost);
    this.heldWriters.clear();
    // Readers never heard what was lost.
    this.unstoredForReaders = [];
    this.room.document().discardUnstored();
    this.room.document().takeLostWaiting();
    const now = this.room.now();
    for (const socket of writers) this.room.sessions.reject(socket, CloseCode.internalError, "internal error", now);
    const authoredLost = (socket: Socket) => Object.keys(this.room.presence.heldBy(socket)).some((client) => authors.has(Number(client)));
    this.askToResend([...this.withheld.keys(), ...this.room.sessions.openSockets().filter(authoredLost)]);
  }

  /**
   * Once nothing waits, everything a waiting writer sent is integrated (and stored before the
   * frame leaves), so each is sent the echo of its own presence: its save confirmation.
   */
  settle(): void {
    if (this.withheld.size === 0 || this.room.document().hasPending()) return;
    // Written first: a failed write asks writers to resend, and those are not confirmed here.
    this.writeHeld();
    for (const [socket, why] of this.withheld) {
      if (why !== "waiting") continue;
      this.confirmable(socket);
      const own = this.room.presence.statesOf(socket);
      const session = this.room.sessions.get(socket);
      if (own.length > 0 && session) this.room.sessions.send(socket, session, encodeAwareness(own));
    }
  }

  /**
   * Waiting updates were dropped (TTL, the pending bound, a reload, or lost when the object
   * left memory): their senders still hold them, and a sync step 1 from the room makes a
   * y-websocket client send them again. Their confirmation stays withheld until it answers.
   */
  askToResend(sockets: readonly Socket[]): void {
    if (sockets.length === 0) return;
    // Written first, so the state vector asked against is what is stored (a fault re-enters here).
    this.writeHeld();
    for (const socket of sockets) {
      const session = this.room.sessions.get(socket);
      if (!session || this.room.sessions.isClosing(socket)) continue;
      this.withhold(socket, "resend");
      this.room.sessions.send(socket, session, encodeSyncStep1(this.room.document().stateVector()));
    }
  }

  /** Whether `socket`'s save confirmation is withheld (it then gets no echo of its presence). */
  isWithheld(socket: Socket): boolean {
    return this.withheld.has(socket);
  }

  /** `socket` left: nothing of it is withheld or held any more (what it sent is written or its client keeps it). */
  forget(socket: Socket): void {
    this.withheld.delete(socket);
    this.heldWriters.delete(socket);
  }

  /** Whether `socket` has integrated updates held, not yet stored. */
  holdsFor(socket: Socket): boolean {
    return this.heldWriters.has(socket);
  }

  /** Everything held or waiting is gone with the storage (DELETE, expiry): nobody waits for it. */
  reset(): void {
    this.heldWriters.clear();
    this.withheld.clear();
    this.unstoredForReaders = [];
  }

  /** After the document worked: if it dropped waiting updates or went back to storage, ask their writers again. */
  private afterDocumentWork(): void {
    if (this.room.document().takeLostWaiting()) {
      logEvent("pending_dropped", { room: this.room.name });
      this.askToResend([...this.withheld.keys()]);
    }
  }

  /** Drops waiting updates past their TTL (the pending duty). */
  expirePending(now: number): void {
    this.room.document().expirePending(now);
    this.afterDocumentWork();
  }

  private withhold(socket: Socket, why: Withheld): void {
    const before = this.withheld.get(socket);
    if (before === why) return;
    this.withheld.set(socket, why);
    // The attachment says only whether it is withheld: after a wake it is asked to resend either way.
    if (before === undefined) this.room.sessions.save(socket);
  }

  private confirmable(socket: Socket): void {
    if (!this.withheld.delete(socket)) return;
    this.room.sessions.save(socket);
  }
}

/**
 * The client IDs whose structs the updates carry, read from their structs without loading
 * them. Not from `encodeStateVectorFromUpdate`: it leaves out every client whose structs in
 * the update do not start at clock 0, which is every client of an integrated diff but a new
 * one (a tab's later edits, relayed by another tab, went unnoticed when their write failed).
 */
function authorsOf(updates: readonly Uint8Array[]): Set<number> {
  const authors = new Set<number>();
  for (const update of updates) for (const client of Y.parseUpdateMeta(update).from.keys()) authors.add(client);
  return authors;
}
