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

  /** `POST /api/docs/:name/update`: validated, stored, then relayed like an edit from a socket. */
  async applyUpdate(update: Uint8Array, author?: string): Promise<Outcome<{ changed: boolean; pending?: true }>> {
    const { room } = this;
    return this.write(() => {
      const result = outcomeOf(() => {
        const { integrated, waits } = room.life.fromHttp((relay) => room.document.apply(update, room.host.now(), relay), author);
        return { changed: integrated !== null, ...(waits ? { pending: true as const } : {}) };
      });
      room.life.settle();
      return result;
    });
  }

  /** `PUT /api/docs/:name/text`: replaces the text as a small edit, stored, then relayed live. */
  async replaceText(text: string, author?: string): Promise<Outcome<{ changed: boolean }>> {
    const { room } = this;
    return this.write(() =>
      outcomeOf(() => {
        const { integrated } = room.life.fromHttp((relay) => ({ integrated: room.document.replaceText(text, room.host.now(), relay), waits: false }), author);
        return { changed: integrated !== null };
      }),
    );
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
    const result = await this.write(() =>
      outcomeOf(() => {
        const update = room.document.restoreUpdate(version);
        if (update === null) return { changed: false };
        // The version of what the restore replaces is read first but written only once the
        // apply, which can still refuse the restore (4413), has taken it: a refused restore
        // leaves no version and no webhook event behind.
        const replaced = room.currentVersion();
        const { integrated } = room.life.fromHttp((relay) => {
          const applied = room.document.apply(update, room.host.now(), relay);
          // Before the restore counts as a change, so the restored state is the one left unversioned.
          if (applied.integrated !== null) room.takeVersion("before-restore", null, replaced);
          return applied;
        }, author);
        return { changed: integrated !== null };
      }),
    );
    if (result.ok && result.value.changed) logEvent("version_restored", { room: room.name, id });
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
    room.sessions.closeAll(CloseCode.documentDeleted, "document deleted", room.host.now());
    try {
      await room.deleteStorage("deleted");
    } finally {
      // A fault part way (after the alarm was deleted) must not leave what is due without one.
      room.alarmStale = true;
      await room.rearmIfStale();
    }
  }

  /** `GET /api/docs/:name/webhooks`: events not yet delivered, failed ones included (none with webhooks off). */
  webhookEvents(): WebhookEventInfo[] {
    return this.room.outbox?.list() ?? [];
  }

  /**
   * Runs a write through the API, then the same timed work as after a socket session, so a
   * document only ever written over HTTP is compacted, versioned and expires too. With nobody
   * connected, a run of writes is a session: each write pushes the idle work back, so its
   * version is taken once writes pause (and every interval while they go on), not every
   * few seconds. Whatever the write did, even when it threw, the alarm is moved for it.
   */
  private async write<T>(change: () => T): Promise<T> {
    const { room } = this;
    try {
      const result = change();
      if (room.sessions.openSockets().length === 0 && room.hasIdleWork()) room.idleWorkDue = room.host.now() + IDLE_COMPACTION_DELAY_MS;
      return result;
    } finally {
      room.alarmStale = true;
      await room.rearmIfStale();
    }
  }
}
