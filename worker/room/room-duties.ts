/**
 * The room's duties, in the order the alarm runs them (worker/room/duties.ts runs each in
 * isolation). docs/architecture.md lists them with their due times.
 */
import { encodeAwareness } from "../protocol";
import { attemptDelivery } from "../webhooks";
import type { RoomCore } from "./core";
import type { Duty } from "./duties";
import type { RoomSocket } from "./ports";

export function roomDuties<Socket extends RoomSocket>(room: RoomCore<Socket>): Duty[] {
  const nobodyHere = () => room.sessions.openSockets().length === 0;
  return [
    {
      // Accepted updates are written HELD_UPDATES_ALARM_MS after the first at the latest.
      name: "held-writes",
      nextDue: () => room.store.heldWriteDue(),
      run: () => void room.life.writeHeld(),
    },
    {
      // An idle document past DOC_TTL_DAYS is deleted; the other duties then find nothing to do.
      name: "expiry",
      nextDue: () => room.expiryDue(),
      run: async (now) => {
        const due = room.expiryDue();
        if (due !== null && now >= due) await room.deleteStorage("expired");
      },
    },
    {
      // Sockets that never joined (4001) or went silent (4000) give their place back.
      name: "socket-timeouts",
      nextDue: () => room.socketDeadline,
      run: (now) => room.sessions.closeIdle(now),
    },
    {
      // Quiet clients that showed no sign of life are probed, and closed when they do not answer (worker/room/quiet-clients.ts).
      name: "quiet-liveness",
      nextDue: (now) => room.quiet.nextDue(now),
      run: (now) => room.quiet.check(now),
    },
    {
      // Updates waiting for dependencies past their TTL are dropped; their writers are asked again.
      name: "waiting-ttl",
      nextDue: () => room.documentIfLoaded?.pendingExpiry() ?? null,
      run: (now) => room.life.expirePending(now),
    },
    {
      // The last socket left (or HTTP writes paused) a moment ago: the session has ended.
      name: "session-end",
      nextDue: () => room.idleWorkDue,
      run: () => {
        room.idleWorkDue = null;
      },
    },
    {
      // `session-end` once the session ended, `interval` while editing goes on.
      name: "versions",
      nextDue: () => {
        const since = room.history.unversionedSince;
        if (since === null) return null;
        return nobodyHere() ? (room.idleWorkDue ?? since) : since + room.limits.versionIntervalMs;
      },
      run: (now) => {
        const since = room.history.unversionedSince;
        if (since === null) return;
        const sessionEnded = nobodyHere() && room.idleWorkDue === null;
        if (!sessionEnded && now < since + room.limits.versionIntervalMs) return;
        const version = room.currentVersion();
        room.takeVersion(sessionEnded ? "session-end" : "interval", null, version);
        room.encodedThisAlarm = version.state;
      },
    },
    {
      // Once nobody is here the log is folded into the snapshot (the session-end version's
      // encoding is the same state: encoded once).
      name: "compaction",
      nextDue: (now) => (nobodyHere() && room.store.hasLog() ? (room.idleWorkDue ?? now) : null),
      run: () => {
        if (nobodyHere() && room.idleWorkDue === null && room.store.hasLog()) room.compact(room.encodedThisAlarm ?? undefined, true);
      },
    },
    {
      // Presence not renewed (peers that vanished without a close) is removed for everyone.
      name: "presence-sweep",
      nextDue: () => room.presence.nextExpiry(),
      run: (now) => {
        const { removed, changedSockets } = room.presence.sweep(now);
        for (const socket of changedSockets) room.sessions.save(socket);
        if (removed.length > 0) room.sessions.broadcast(encodeAwareness(removed), now);
      },
    },
    {
      name: "webhooks",
      nextDue: () => room.outbox?.nextDue() ?? null,
      run: (now) => deliverWebhooks(room, now),
    },
  ];
}

/**
 * Closes a due `document.updated` burst and attempts the events that are due, in parallel, each
 * bounded in time; failures are recorded for a later attempt. Other events may run meanwhile:
 * if the document's storage was deleted during the attempts, the outcome is not recorded (the
 * deletion carried the events over, so they are attempted again with the same id, which
 * receivers drop as a duplicate).
 */
async function deliverWebhooks<Socket extends RoomSocket>(room: RoomCore<Socket>, now: number): Promise<void> {
  const outbox = room.outbox;
  if (outbox === null) return;
  outbox.closeBurst(now, () => {
    const updatedAt = room.store.lastUpdateAt;
    return { updatedAt: updatedAt === null ? null : new Date(updatedAt).toISOString(), storedBytes: room.store.statistics().storedBytes };
  });
  await Promise.all(
    outbox.due(now).map(async (row) => {
      const started = room.host.now();
      const result = await attemptDelivery(row, outbox.settings.key, (url, init) => room.host.fetch(url, init));
      if (room.outbox === outbox) outbox.recordAttempt(row, result, room.host.now(), room.host.now() - started);
    }),
  );
  if (room.outbox === outbox) outbox.tidy(room.host.now(), room.store.exists());
}
