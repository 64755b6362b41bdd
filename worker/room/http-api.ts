/**
 * What the HTTP API asks of a room (worker/api.ts maps the outcomes to statuses). Writes go
 * through the same update life as a socket's edits (worker/room/updates.ts) and are stored
 * before the answer; reads that encode the document are charged to their caller
 * (worker/http-reads.ts).
 */
import type { DocumentInfo, Outcome, StorageStats, VersionInfo } from "../documents";
import { IDLE_COMPACTION_DELAY_MS } from "../limits";
import { logEvent } from "../log";
import { noSuchVersion, outcomeOf } from "../outcome";
import { CloseCode } from "../protocol";
import type { WebhookEventInfo } from "../webhooks";
import type { RoomCore } from "./core";
import type { RoomSocket } from "./ports";

export class RoomApi<Socket extends RoomSocket> {
  constructor(private readonly room: RoomCore<Socket>) {}

  /** Storage figures, cheap to read: tests watch them; {@link info} adds to them. */
  stats(): StorageStats {
    this.room.life.writeHeld();
    return { ...this.room.store.statistics() };
  }

  /**
   * `GET /api/docs/:name` for `caller` (a token's owner, else an address). `encodedBytes` costs
   * one encode per change, shared with `GET /update` and charged like it.
   */
  info(caller: string): Outcome<DocumentInfo> {
    const { room } = this;
    const encodedBytes = room.reads.encodedSize(caller);
    if (!encodedBytes.ok) return encodedBytes;
    const lastUpdateAt = room.store.lastUpdateAt;
    return {
      ok: true,
      value: {
        exists: lastUpdateAt !== null,
        title: room.document.title(),
        ...room.store.statistics(),
        encodedBytes: encodedBytes.value,
        items: room.document.itemCount(),
        sockets: room.sessions.openSockets().length,
        lastUpdateAt: lastUpdateAt === null ? null : new Date(lastUpdateAt).toISOString(),
        ...room.history.statistics(),
      },
    };
  }

  /** `POST /api/docs/:name/update`: validated, stored and relayed like an edit from a socket. */
  async applyUpdate(update: Uint8Array, author?: string): Promise<Outcome<{ changed: boolean; pending?: true }>> {
    const result = outcomeOf(() => {
      const { integrated, waits } = this.room.life.fromApi(update, author);
      return { changed: integrated, ...(waits ? { pending: true as const } : {}) };
    });
    this.room.life.settle();
    await this.afterWrite();
    return result;
  }

  /** `PUT /api/docs/:name/text`: replaces the text as a small edit, relayed live. */
  async replaceText(text: string, author?: string): Promise<Outcome<{ changed: boolean }>> {
    const now = this.room.host.now();
    const result = outcomeOf(() => ({ changed: this.room.life.fromRoom((relay) => this.room.document.replaceText(text, now, relay), author) }));
    await this.afterWrite();
    return result;
  }

  versions(): VersionInfo[] {
    return this.room.history.list(this.room.host.now());
  }

  version(id: number): Outcome<VersionInfo> {
    const version = this.room.history.get(id);
    return version ? { ok: true, value: version } : noSuchVersion(id);
  }

  /** `POST /api/docs/:name/versions`: the current state under `name`. */
  async saveVersion(name: string): Promise<Outcome<VersionInfo>> {
    const { room } = this;
    room.life.writeHeld();
    if (!room.store.exists()) return { ok: false, refused: "no-document", reason: "the document has never been written" };
    const taken = room.takeVersion("named", name);
    await room.scheduleAlarm();
    if (taken.ok) return taken;
    return {
      ok: false,
      refused: "history-full",
      reason: taken.refusal === "too-many-named" ? "too many named versions: delete some first" : "named versions fill the history budget: delete some first",
    };
  }

  /**
   * `POST /api/docs/:name/versions/:id/restore`: one edit that makes the document equal to the
   * version, stored and relayed like any other, preceded by a `before-restore` version of the
   * current state so that the restore itself can be undone by restoring that.
   */
  async restoreVersion(id: number, author?: string): Promise<Outcome<{ changed: boolean }>> {
    const { room } = this;
    const version = room.history.load(id);
    if (!version) return noSuchVersion(id);
    const result = outcomeOf(() => {
      const update = room.document.restoreUpdate(version);
      if (update === null) return { changed: false };
      // The version of what the restore replaces is read first but written only once the
      // apply, which can still refuse the restore (4413), has taken it: a refused restore
      // leaves no version and no webhook event behind.
      const replaced = room.currentVersion();
      const changed = room.life.fromRoom((relay) => {
        const { integrated } = room.document.apply(update, room.host.now(), relay);
        // Before the restore counts as a change, so the restored state is the one left unversioned.
        if (integrated !== null) room.takeVersion("before-restore", null, replaced);
        return integrated;
      }, author);
      return { changed };
    });
    if (result.ok && result.value.changed) logEvent("version_restored", { room: room.name, id });
    await this.afterWrite();
    return result;
  }

  /** `DELETE /api/docs/:name/versions/:id`: named versions only; automatic ones are left to retention. */
  deleteVersion(id: number): Outcome<null> {
    const version = this.room.history.get(id);
    if (!version) return noSuchVersion(id);
    if (version.name === null) return { ok: false, refused: "not-named", reason: "automatic versions are removed by retention, not by hand" };
    this.room.history.delete(id);
    return { ok: true, value: null };
  }

  /**
   * `DELETE /api/docs/:name`: closes every socket with 4410 and deletes all storage, without
   * loading the document (it may be over a limit). Idempotent.
   */
  async destroy(): Promise<void> {
    const { room } = this;
    const now = room.host.now();
    for (const socket of room.sessions.openSockets()) room.sessions.reject(socket, CloseCode.documentDeleted, "document deleted", now);
    await room.deleteStorage("deleted");
  }

  /** `GET /api/docs/:name/webhooks`: events not yet delivered, failed ones included (none with webhooks off). */
  webhookEvents(): WebhookEventInfo[] {
    return this.room.outbox?.list() ?? [];
  }

  /**
   * After a write through the API: the same timed work as after a socket session, so a
   * document only ever written over HTTP is compacted, versioned and expires too. With nobody
   * connected, a run of writes is a session: each write pushes the idle work back, so its
   * version is taken once writes pause (and every interval while they go on), not every
   * few seconds. An update with missing dependencies waits, and the alarm drops it if they
   * never come.
   */
  private async afterWrite(): Promise<void> {
    const { room } = this;
    // The answer tells the caller its edit is saved.
    if (!room.life.writeHeld()) throw new Error("storage write failed");
    if (room.sessions.openSockets().length === 0 && room.hasIdleWork()) room.idleWorkDue = room.host.now() + IDLE_COMPACTION_DELAY_MS;
    await room.scheduleAlarm();
  }
}
