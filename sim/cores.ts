/**
 * The cores the simulation can drive. `room` is the real one (worker/room/core.ts, with its HTTP
 * API in worker/room/http-api.ts, as the Durable Object shell wires them); the stubs test the
 * harness itself (sim/stub-core.ts).
 */
import { RoomCore } from "../worker/room/core";
import { RoomApi } from "../worker/room/http-api";
import type { CoreFactory, SimRoomSocket, SimulatedCore } from "./contract";
import { StubCore } from "./stub-core";

/** The real room: RoomCore for sockets and the alarm, RoomApi for the HTTP API, as worker/room/index.ts delegates. */
const room: CoreFactory = (host, config) => {
  const core = new RoomCore<SimRoomSocket>(host, config);
  const api = new RoomApi(core);
  return {
    wake: () => core.wake(),
    connect: (socket, grant, quiet) => core.connect(socket, grant, quiet),
    message: (socket, message) => core.message(socket, message),
    closed: (socket, end) => core.closed(socket, end),
    admitRequest: (socket) => core.admitRequest(socket),
    chargeResend: (socket, bytes) => core.chargeResend(socket, bytes),
    alarm: () => core.alarm(),
    applyUpdate: (update, author) => api.applyUpdate(update, author),
    replaceText: (text, author) => api.replaceText(text, author),
    saveVersion: (name) => api.saveVersion(name),
    restoreVersion: (id, author) => api.restoreVersion(id, author),
    deleteVersion: async (id) => api.deleteVersion(id),
    versions: async () => api.versions(),
    destroy: () => api.destroy(),
    webhookEvents: async () => api.webhookEvents(),
    text: async (caller) => core.reads.text(caller),
    encodeUpdate: async (caller, stateVector) => core.reads.update(caller, stateVector),
    stats: async () => api.stats(),
    inspect: () => core.inspect(),
    quiet: () => {
      const now = host.now();
      const sockets = core.sessions.openSockets().map((socket) => {
        const session = core.sessions.of(socket, now);
        return { socket, quiet: session.quiet, joined: session.joined, probedAt: session.probedAt ?? null };
      });
      const quietPresence = new Map<number, SimRoomSocket>();
      for (const { socket, quiet } of sockets) {
        if (!quiet) continue;
        for (const id of Object.keys(core.presence.heldBy(socket))) quietPresence.set(Number(id), socket);
      }
      // The last check's time and the duty list are private to the room: read as dutyReport reads them.
      const checkedAt = core.quiet.lastCheckAt;
      const duties = Object.fromEntries(dutyList(core).map((duty) => [duty.name, dueOrNull(duty, now)]));
      return { checkedAt, duties, sockets, quietPresence };
    },
    raw: core,
    // Diagnostics for violation messages: reaches into the private duty list (worker/room/duties.ts).
    dutyReport: () => {
      const now = host.now();
      return dutyList(core).map((duty) => `${duty.name}=${due(duty, now)}`).join(" ");
    },
  } satisfies SimulatedCore;
};

interface DutyView {
  name: string;
  nextDue(now: number): number | null;
}

/**
 * The room's private duty list (worker/room/duties.ts), each due time pushed back by its
 * backoff as the alarm sees it. Read without `dueOf`, which records a failure when a question
 * throws: reading must change nothing.
 */
function dutyList(core: RoomCore<SimRoomSocket>): DutyView[] {
  const duties = (core as unknown as { duties: { duties: readonly DutyView[]; backoff: Map<string, { retryAt: number }> } }).duties;
  return duties.duties.map((duty) => ({
    name: duty.name,
    nextDue: (now: number) => {
      const due = duty.nextDue(now);
      const retryAt = duties.backoff.get(duty.name)?.retryAt;
      return due === null || retryAt === undefined ? due : Math.max(due, retryAt);
    },
  }));
}

function dueOrNull(duty: DutyView, now: number): number | null {
  try {
    return duty.nextDue(now);
  } catch {
    return null;
  }
}

function due(duty: { nextDue(now: number): number | null }, now: number): string {
  try {
    const at = duty.nextDue(now);
    return at === null ? "-" : `now${at - now >= 0 ? "+" : ""}${at - now}`;
  } catch (error) {
    return `threw(${String(error)})`;
  }
}

export const CORES: Readonly<Record<string, CoreFactory>> = {
  room,
  stub: (host, config) => new StubCore(host, config),
  "stub-lossy": (host, config) => new StubCore(host, config, true),
};
