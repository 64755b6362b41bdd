/**
 * The idle scenario's tables (bench/idle.ts): each room's figures beside issue 31's targets,
 * and what a room costs a month on each server (bench/cost.ts).
 */
import { describeRoomDay, roomMonth, type RoomFigures } from "./cost.ts";
import type { IdleRoomResult } from "./idle.ts";

/**
 * Issue 31's targets, for five app tabs idle three minutes after typing; stock providers are to
 * cost no more than before it (measured then: 3 providers 12 frames per person-minute, awake 60%).
 */
export const IDLE_TARGETS = { framesPerPersonMinute: 0.5, awakeShare: 0.1, firstEditP99Ms: 300 } as const;

const APP_ROOM = "edgedoc, app clients";
const STOCK_ROOM = "edgedoc, stock providers";
const PEER_ROOMS = { hibernating: "y-partyserver hibernating, stock providers", standard: "y-partyserver standard, stock providers" } as const;

const fixed = (value: number | undefined, digits = 1) => (value === undefined || Number.isNaN(value) ? "" : value.toFixed(digits));
const percent = (share: number) => (Number.isNaN(share) ? "" : `${(share * 100).toFixed(0)}%`);
const yesNo = (value: boolean | null | undefined) => (value === null || value === undefined ? "" : value ? "yes" : "NO");

export function reportIdle(rooms: IdleRoomResult[]): void {
  const window = rooms.find((r) => r.windowMs > 0)?.windowMs ?? 0;
  console.log(
    `\nIdle rooms (issue 31): five people a room, a few keys each, then idle for ${(window / 1000).toFixed(0)} s, all rooms at once.` +
      " Frames: sent by the clients in the window (text ping apart), per client-minute; object: the frames the object logged." +
      " Awake: share of the window within 10 s of an event at the object",
  );
  console.table(
    rooms.map((r) => ({
      room: r.room,
      clients: `${r.appClients} app + ${r.stockClients} stock`,
      "frames / client-min": fixed(r.framesPerClientMinute, 2),
      "app / stock": [fixed(r.framesPerClientMinuteByKind.app, 2), fixed(r.framesPerClientMinuteByKind.stock, 2)].join(" / "),
      "object frames / client-min": fixed(r.objectFramesPerClientMinute, 2),
      "pings / client-min": fixed(r.pingsPerClientMinute, 2),
      "connects, closes, alarms, constructs": `${r.events.connect}, ${r.events.close}, ${r.events.alarm}, ${r.events.construct}`,
      awake: percent(r.awakeShare),
      "longest sleep": `${(r.longestSleepMs / 1000).toFixed(0)} s`,
      "frames / key typing": fixed(r.typingFramesPerKey),
      "app lists all": yesNo(r.appPresenceComplete),
      "joiner saw all (join, end)": r.lateJoinerSawAll ? `${yesNo(r.lateJoinerSawAll.onJoin)}, ${yesNo(r.lateJoinerSawAll.atEnd)}` : "",
      error: r.error ?? (r.typingConverged ? "" : "typing NOT converged"),
    })),
  );
  console.log("\nFirst edit after a sleep: one key, until every other client has it (each typed once the object saw nothing for 11 s, or after 25 s anyway)");
  console.table(
    rooms.map((r) => ({
      room: r.room,
      "asleep / typed": `${r.firstEdits.filter((e) => e.asleep).length} / ${r.firstEdits.length}`,
      "object constructed again": `${r.firstEdits.filter((e) => e.woke).length} / ${r.firstEdits.length}`,
      "each (ms, * = awake)": r.firstEdits.map((e) => `${e.latencyMs === null ? "lost" : e.latencyMs.toFixed(0)}${e.asleep ? "" : "*"}`).join(" "),
      "p50 asleep": r.firstEdit.samples > 0 ? `${r.firstEdit.p50.toFixed(0)} ms` : "",
      "p99 asleep": r.firstEdit.samples > 0 ? `${r.firstEdit.p99.toFixed(0)} ms` : "",
      "constructed again after (s without an event)": r.constructedAfterMs.map((ms) => (ms / 1000).toFixed(1)).join(" "),
    })),
  );
  const app = rooms.find((r) => r.room === APP_ROOM);
  if (app && !app.error) {
    const met = (ok: boolean) => (ok ? "met   " : "MISSED");
    console.log("Targets (issue 31), five app tabs:");
    console.log(`  ${met(app.framesPerClientMinute <= IDLE_TARGETS.framesPerPersonMinute)} ${fixed(app.framesPerClientMinute, 2)} waking frames per person-minute (at most ${IDLE_TARGETS.framesPerPersonMinute})`);
    console.log(`  ${met(app.awakeShare <= IDLE_TARGETS.awakeShare)} awake ${percent(app.awakeShare)} of the window (at most ${percent(IDLE_TARGETS.awakeShare)})`);
    const p99 = app.firstEdit.samples > 0 ? app.firstEdit.p99 : NaN;
    console.log(`  ${met(p99 <= IDLE_TARGETS.firstEditP99Ms)} first keystroke after a sleep p99 ${Number.isNaN(p99) ? "not measured (never asleep)" : `${p99.toFixed(0)} ms`} (at most ${IDLE_TARGETS.firstEditP99Ms} ms)`);
  }
  reportCost(rooms);
}

/** The room-month on each server, from its idle room's figures. */
function reportCost(rooms: IdleRoomResult[]): void {
  const figures = (name: string, room: string, standardSockets = false): RoomFigures | null => {
    const r = rooms.find((candidate) => candidate.room === room);
    if (!r || r.error) return null;
    const minutes = r.windowMs / 60_000;
    return {
      name,
      idleFramesPerClientMinute: r.framesPerClientMinute,
      idleRequestsPerMinute: (r.events.connect + r.events.alarm) / minutes,
      // Standard sockets keep the object in memory while any is open: billed all the time.
      idleAwakeShare: standardSockets ? 1 : r.awakeShare,
      framesPerKey: r.typingFramesPerKey,
    };
  };
  const rows = [
    figures("edgedoc, the app's client", APP_ROOM),
    figures("edgedoc, stock providers", STOCK_ROOM),
    figures("y-partyserver hibernating, stock providers", PEER_ROOMS.hibernating),
    figures("y-partyserver standard, stock providers", PEER_ROOMS.standard, true),
  ].filter((row): row is RoomFigures => row !== null);
  if (rows.length === 0) return;
  console.log(`\nA room-month on Cloudflare (bench/cost.ts): ${describeRoomDay()}`);
  console.table(
    rows.map((row) => {
      const month = roomMonth(row);
      return {
        server: row.name,
        "idle frames / client-min": fixed(row.idleFramesPerClientMinute, 2),
        "idle awake": percent(row.idleAwakeShare),
        "frames / key": fixed(row.framesPerKey),
        "requests / month": Math.round(month.requests).toLocaleString("en-US"),
        "GB-s / month": Math.round(month.gbSeconds).toLocaleString("en-US"),
        requests: `$${month.requestsUsd.toFixed(3)}`,
        duration: `$${month.durationUsd.toFixed(3)}`,
        total: `$${month.totalUsd.toFixed(2)}`,
      };
    }),
  );
}
