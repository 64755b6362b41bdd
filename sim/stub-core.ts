/**
 * A deliberately small room core for testing the simulation itself (`--core stub`): it stores
 * every update before relaying it, echoes awareness, and has no timed work. It is not the
 * room; it exists so the harness (storage, host, clients, invariants, shrinking) can be
 * exercised without worker/room/core.ts, and so that the harness's checks can be shown to
 * catch a known bug (`--core stub-lossy` confirms saves it never wrote).
 */
import * as Y from "yjs";
import type { AccessGrant } from "../worker/access";
import type { Outcome } from "../worker/documents";
import { decodeClientMessage, decodeAwarenessUpdate, encodeAwareness, encodeSyncStep1, encodeSyncStep2, encodeSyncUpdate, type AwarenessEntry } from "../worker/protocol";
import { DocumentStore } from "../worker/storage";
import type { RoomHost } from "../worker/room/ports";
import type { CoreFigures, RoomConfig, SimRoomSocket, SimulatedCore, SocketEnd } from "./contract";

interface StubAttachment {
  grant: AccessGrant;
  presence: Record<number, { clock: number; state: string | null }>;
  closing?: true;
}

export class StubCore implements SimulatedCore {
  private readonly store: DocumentStore;
  private doc: Y.Doc;

  constructor(
    private readonly host: RoomHost<SimRoomSocket>,
    _config: RoomConfig,
    /** The known bug: updates are held in memory and never written, yet echoes go out. */
    private readonly lossy = false,
  ) {
    this.store = new DocumentStore(host.storage.sql, (body) => host.storage.transaction(body));
    this.doc = this.load();
  }

  private load(): Y.Doc {
    const doc = new Y.Doc({ gc: true });
    const { snapshot, updates } = this.store.load();
    if (snapshot) Y.applyUpdateV2(doc, snapshot);
    for (const update of updates) Y.applyUpdate(doc, update);
    return doc;
  }

  private attachment(socket: SimRoomSocket): StubAttachment | null {
    return socket.deserializeAttachment() as StubAttachment | null;
  }

  private open(): SimRoomSocket[] {
    return this.host.sockets().filter((socket) => !this.attachment(socket)?.closing);
  }

  async wake(): Promise<void> {}

  async connect(socket: SimRoomSocket, grant: AccessGrant): Promise<void> {
    socket.serializeAttachment({ grant, presence: {} } satisfies StubAttachment);
    socket.send(encodeSyncStep1(Y.encodeStateVector(this.doc)));
    const states = this.states();
    if (states.length > 0) socket.send(encodeAwareness(states));
  }

  private states(): AwarenessEntry[] {
    return this.open().flatMap((socket) => Object.entries(this.attachment(socket)?.presence ?? {}).map(([id, record]) => ({ clientId: Number(id), ...record })));
  }

  async message(socket: SimRoomSocket, message: ArrayBuffer | string): Promise<void> {
    const attachment = this.attachment(socket);
    if (attachment === null || attachment.closing) return;
    try {
      if (typeof message === "string") throw new Error("text");
      const decoded = decodeClientMessage(new Uint8Array(message));
      switch (decoded.type) {
        case "sync-step1":
          socket.send(encodeSyncStep2(Y.encodeStateAsUpdate(this.doc, decoded.stateVector)));
          return;
        case "sync-step2":
        case "sync-update": {
          if (attachment.grant.mode === "read") return;
          let integrated: Uint8Array | null = null;
          const capture = (update: Uint8Array) => (integrated = update);
          this.doc.on("update", capture);
          try {
            Y.applyUpdate(this.doc, decoded.update);
          } finally {
            this.doc.off("update", capture);
          }
          if (integrated === null) return;
          if (!this.lossy) {
            this.store.hold(integrated, this.host.now());
            this.store.writeHeld();
          }
          for (const other of this.open()) if (other !== socket) other.send(encodeSyncUpdate(integrated));
          return;
        }
        case "awareness": {
          const entries = decodeAwarenessUpdate(decoded.update);
          for (const entry of entries) attachment.presence[entry.clientId] = { clock: entry.clock, state: entry.state };
          socket.serializeAttachment(attachment);
          const frame = encodeAwareness(entries);
          for (const other of this.open()) other.send(frame);
          return;
        }
        case "query-awareness":
          socket.send(encodeAwareness(this.states()));
          return;
      }
    } catch {
      this.reject(socket, 1002);
    }
  }

  private reject(socket: SimRoomSocket, code: number): void {
    const attachment = this.attachment(socket);
    if (attachment === null || attachment.closing) return;
    socket.serializeAttachment({ ...attachment, presence: {}, closing: true });
    socket.close(code, "refused");
    this.announceGone(attachment);
  }

  private announceGone(attachment: StubAttachment): void {
    const removed = Object.entries(attachment.presence).map(([id, record]) => ({ clientId: Number(id), clock: record.clock, state: null }));
    if (removed.length === 0) return;
    const frame = encodeAwareness(removed);
    for (const other of this.open()) other.send(frame);
  }

  async closed(socket: SimRoomSocket, _end: SocketEnd): Promise<void> {
    const attachment = this.attachment(socket);
    if (attachment === null || attachment.closing) return;
    try {
      socket.serializeAttachment({ ...attachment, presence: {}, closing: true });
    } catch {
      // Already gone.
    }
    this.announceGone(attachment);
  }

  async alarm(): Promise<void> {}

  async applyUpdate(update: Uint8Array): Promise<Outcome<{ changed: boolean }>> {
    const before = Y.encodeStateVector(this.doc);
    Y.applyUpdate(this.doc, update);
    const integrated = Y.encodeStateAsUpdate(this.doc, before);
    this.store.hold(integrated, this.host.now());
    this.store.writeHeld();
    for (const socket of this.open()) socket.send(encodeSyncUpdate(integrated));
    return { ok: true, value: { changed: true } };
  }

  async replaceText(): Promise<Outcome<{ changed: boolean }>> {
    return { ok: false, refused: "no-document", reason: "stub" };
  }

  async saveVersion(): Promise<Outcome<{ id: number }>> {
    return { ok: false, refused: "no-document", reason: "stub" };
  }

  async restoreVersion(id: number): Promise<Outcome<{ changed: boolean }>> {
    return { ok: false, refused: "no-such-version", reason: `no version ${id}` };
  }

  async deleteVersion(id: number): Promise<Outcome<null>> {
    return { ok: false, refused: "no-such-version", reason: `no version ${id}` };
  }

  async versions(): Promise<{ id: number; name: string | null }[]> {
    return [];
  }

  async destroy(): Promise<void> {
    for (const socket of this.open()) this.reject(socket, 4410);
    await this.host.storage.deleteAll();
    this.doc = new Y.Doc({ gc: true });
  }

  async webhookEvents(): Promise<{ id: string; type: string; endpoint: string; state: string }[]> {
    return [];
  }

  async text(): Promise<Outcome<string>> {
    return { ok: true, value: this.doc.getText("codemirror").toString() };
  }

  async encodeUpdate(): Promise<Outcome<Uint8Array>> {
    return { ok: true, value: Y.encodeStateAsUpdate(this.doc) };
  }

  async stats(): Promise<unknown> {
    return this.store.statistics();
  }

  inspect(): CoreFigures {
    return { stateVector: Y.encodeStateVector(this.doc), pendingBytes: 0, heldBytes: 0, openSessions: this.open().length, nextDue: null };
  }
}
