/**
 * Version history (issue 13): the automerge-paper trace replayed as 100 editing sessions.
 *
 * 1. Retention over time, in Node with real Yjs and no server: after each session the version
 *    a room would take (the whole document as one V2 update) is added to a simulated history,
 *    its session end placed on a schedule (all in one day, one a day, three a weekday, ...),
 *    and worker/retention.ts `versionsToDrop` is applied, as the room does after each version.
 *    What is kept at the last session is compared with the final document's V2 size.
 * 2. Against the benchmark's `wrangler dev`: the same 100 sessions written through
 *    `POST /api/docs/:name/update` (each session's delta), each followed by a named version
 *    (`POST .../versions`; the room's own session-end versions wait 5 s after the last socket
 *    leaves, and HTTP writes open no socket). Then the history bytes the room reports, and
 *    the time to list versions, fetch a version's text and restore one, against the floor of
 *    `GET .../text` (one room round trip) on the same document.
 *
 * Loopback only; every request has a timeout and every loop a bound.
 */
import * as Y from "yjs";
import { removePersistDir, startDevServer, type DevServer } from "../test/node/wrangler.ts";
import { versionsToDrop, type RetainedVersion } from "../worker/retention.ts";
import { loadTrace, type Trace } from "./trace.ts";

const SESSIONS = 100;
/** Requests timed per read operation (list, version text, the floor). */
const READ_SAMPLES = 40;
/** Restores alternating between two middle versions, after the first one. */
const ALTERNATING_RESTORES = 8;
const FETCH_TIMEOUT_MS = 30_000;
const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;
const DAY_MS = 24 * HOUR_MS;
/** Simulated calendars start on a Monday at midnight UTC. */
const MONDAY = Date.UTC(2026, 0, 5);

export interface RetentionRow {
  document: string;
  copies: number;
  schedule: string;
  /** First to last session end, in days. */
  spanDays: number;
  sessions: number;
  versionsKept: number;
  /** Bytes of the versions kept after the last session's version and its retention pass. */
  historyBytes: number;
  /** Bytes of all 100 versions, had none been dropped. */
  allVersionsBytes: number;
  /** The final document as one V2 update. */
  finalV2Bytes: number;
  /** Sessions (1-based) whose version survived. */
  keptSessions: number[];
}

export interface TimingStats {
  operation: string;
  samples: number;
  medianMs: number;
  p95Ms: number;
  samplesMs: number[];
}

export interface ServerHistoryResult {
  room: string;
  sessions: number;
  finalV1Bytes: number;
  finalV2Bytes: number;
  /** `GET /api/docs/:name` after the 100 sessions and their versions. */
  storedBytes: number;
  historyBytes: number;
  versions: number;
  /**
   * Versions by reason after the 100 sessions. Besides the named ones, the room may take a
   * `session-end` version of its own: its idle alarm fires 5 s after an HTTP write with no
   * socket open, and sees an unversioned change when it falls between a session's update and
   * its named version.
   */
  versionsByReason: Record<string, number>;
  /** Sum of `bytes` over the version list (should equal historyBytes). */
  listedVersionBytes: number;
  /** Length of the `GET .../versions` JSON answer. */
  listJsonBytes: number;
  /** Every version's text (sampled ones) equalled the local replay's text at that session. */
  versionTextsMatch: boolean;
  /** Every restore answered `changed: true` and left the document's text equal to the version's. */
  restoresChangedAndMatch: boolean;
  historyBytesAfterRestores: number;
  versionsAfterRestores: number;
  /**
   * The live document before and after the restores (V1 bytes, Yjs items): a restore brings
   * back old text as new items, so the document grows by what it re-inserts.
   */
  encodedBytesBeforeRestores: number;
  encodedBytesAfterRestores: number;
  itemsBeforeRestores: number;
  itemsAfterRestores: number;
  /** The document's V1 bytes after each restore, in order. */
  encodedBytesAfterEachRestore: number[];
  timings: TimingStats[];
}

export interface HistoryResult {
  retention: RetentionRow[];
  server: ServerHistoryResult | { error: string };
}

/** The trace as 100 equal sessions of keystrokes (each patch its own transaction, as `replay` does). */
class SessionReplay {
  readonly doc = new Y.Doc();
  private readonly steps: number;
  private done = 0;

  constructor(
    private readonly trace: Trace,
    private readonly copies: number,
  ) {
    this.steps = trace.txns.length * copies;
  }

  /** Replays session `index` (0-based): the keystrokes up to its share of the whole. */
  session(index: number): void {
    const end = Math.floor(((index + 1) * this.steps) / SESSIONS);
    const keystrokes = this.trace.txns.length;
    for (; this.done < end; this.done++) {
      const copy = Math.floor(this.done / keystrokes);
      const text = this.doc.getText(copy === 0 ? "codemirror" : `codemirror-copy-${copy}`);
      for (const [position, deleteCount, insert] of this.trace.txns[this.done % keystrokes]!.patches) {
        this.doc.transact(() => {
          if (deleteCount > 0) text.delete(position, deleteCount);
          if (insert) text.insert(position, insert);
        });
      }
    }
  }

  checkFinal(): void {
    for (let copy = 0; copy < this.copies; copy++) {
      const text = this.doc.getText(copy === 0 ? "codemirror" : `codemirror-copy-${copy}`);
      if (text.toString() !== this.trace.endContent) throw new Error(`session replay of copy ${copy} does not match the trace's endContent`);
    }
  }
}

interface Schedule {
  name: string;
  /** When session `index` (0-based) ends, ms since the epoch. */
  at: (index: number) => number;
}

const SCHEDULES: Schedule[] = [
  { name: "all in one day (one every 14 min)", at: (i) => MONDAY + i * 14 * MINUTE_MS },
  { name: "one a day for 100 days (10:00)", at: (i) => MONDAY + i * DAY_MS + 10 * HOUR_MS },
  {
    name: "three a weekday (10:00, 14:00, 17:00)",
    at: (i) => {
      const weekday = Math.floor(i / 3);
      const day = Math.floor(weekday / 5) * 7 + (weekday % 5);
      return MONDAY + day * DAY_MS + [10, 14, 17][i % 3]! * HOUR_MS;
    },
  },
  {
    // The room's interval versions while editing goes on (VERSION_INTERVAL_MINUTES, default 10).
    name: "every 10 min, 9:00-17:00 (3 working days)",
    at: (i) => {
      const day = Math.floor(i / 48);
      return MONDAY + day * DAY_MS + 9 * HOUR_MS + (i % 48) * 10 * MINUTE_MS;
    },
  },
];

/** Version sizes (V2 state after each session) of the trace replayed `copies` times. */
function sessionVersionBytes(trace: Trace, copies: number): number[] {
  const replay = new SessionReplay(trace, copies);
  const bytes: number[] = [];
  for (let i = 0; i < SESSIONS; i++) {
    replay.session(i);
    bytes.push(Y.encodeStateAsUpdateV2(replay.doc).length);
  }
  replay.checkFinal();
  return bytes;
}

function simulateRetention(versionBytes: number[], schedule: Schedule): { kept: RetainedVersion[] } {
  let kept: RetainedVersion[] = [];
  for (let i = 0; i < versionBytes.length; i++) {
    const now = schedule.at(i);
    kept.push({ id: i + 1, createdAt: now, named: false, bytes: versionBytes[i]! });
    const drop = new Set(versionsToDrop(kept, now));
    kept = kept.filter((version) => !drop.has(version.id));
  }
  return { kept };
}

export async function measureRetention(copiesList = [1, 10]): Promise<RetentionRow[]> {
  const trace = loadTrace("automerge-paper");
  const rows: RetentionRow[] = [];
  for (const copies of copiesList) {
    const versionBytes = sessionVersionBytes(trace, copies);
    const finalV2Bytes = versionBytes[versionBytes.length - 1]!;
    for (const schedule of SCHEDULES) {
      const { kept } = simulateRetention(versionBytes, schedule);
      rows.push({
        document: "automerge-paper",
        copies,
        schedule: schedule.name,
        spanDays: (schedule.at(SESSIONS - 1) - schedule.at(0)) / DAY_MS,
        sessions: SESSIONS,
        versionsKept: kept.length,
        historyBytes: kept.reduce((sum, version) => sum + version.bytes, 0),
        allVersionsBytes: versionBytes.reduce((sum, bytes) => sum + bytes, 0),
        finalV2Bytes,
        keptSessions: kept.map((version) => version.id).sort((a, b) => a - b),
      });
    }
  }
  return rows;
}

function stats(operation: string, samplesMs: number[]): TimingStats {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  // The same rank rule as the latency tables (bench/realtime.ts).
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { operation, samples: sorted.length, medianMs: at(0.5), p95Ms: at(0.95), samplesMs };
}

interface VersionListed {
  id: number;
  createdAt: string;
  name: string | null;
  reason: string;
  authors: string[];
  bytes: number;
}

interface DocInfo {
  storedBytes: number;
  /** The document as one V1 update. */
  encodedBytes: number;
  items: number;
  historyBytes: number;
  versions: number;
}

class Api {
  constructor(
    private readonly origin: string,
    private readonly room: string,
  ) {}

  /** One call to `/api/docs/<room><path>`; refuses an unexpected status. Returns the body and the time to read it. */
  async call(path: string, { method = "GET", body, expect = 200 }: { method?: string; body?: Uint8Array | string; expect?: number } = {}) {
    const headers: Record<string, string> = {};
    if (typeof body === "string") headers["Content-Type"] = "application/json";
    else if (body) headers["Content-Type"] = "application/octet-stream";
    const started = performance.now();
    const response = await fetch(`${this.origin}/api/docs/${this.room}${path}`, {
      method,
      headers,
      body: body as BodyInit | undefined,
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    const text = await response.text();
    const ms = performance.now() - started;
    if (response.status !== expect) throw new Error(`${method} ${path}: ${response.status} (expected ${expect}): ${text.slice(0, 300)}`);
    return { text, ms };
  }

  async json<T>(path: string, options?: Parameters<Api["call"]>[1]): Promise<{ value: T; ms: number; bytes: number }> {
    const { text, ms } = await this.call(path, options);
    return { value: JSON.parse(text) as T, ms, bytes: text.length };
  }
}

/** `count` timed calls after one untimed warm-up. */
async function timed(count: number, call: (i: number) => Promise<{ ms: number }>): Promise<number[]> {
  await call(-1);
  const samples: number[] = [];
  for (let i = 0; i < count; i++) samples.push((await call(i)).ms);
  return samples;
}

export async function measureServerHistory(): Promise<ServerHistoryResult> {
  const trace = loadTrace("automerge-paper");
  const room = `bench-history-${Date.now()}`;
  const server: DevServer = await startDevServer({ config: "bench/wrangler.toml" });
  try {
    const api = new Api(server.origin, room);
    const replay = new SessionReplay(trace, 1);
    const text = replay.doc.getText("codemirror");
    const sessionTexts: string[] = [];
    const updateMs: number[] = [];
    const versionMs: number[] = [];
    const versionIds: number[] = [];
    for (let i = 0; i < SESSIONS; i++) {
      const before = Y.encodeStateVector(replay.doc);
      replay.session(i);
      sessionTexts.push(text.toString());
      const delta = Y.encodeStateAsUpdate(replay.doc, before);
      const update = await api.json<{ changed: boolean }>("/update", { method: "POST", body: delta });
      if (!update.value.changed) throw new Error(`session ${i + 1}: the update changed nothing`);
      updateMs.push(update.ms);
      const version = await api.json<VersionListed>("/versions", { method: "POST", body: JSON.stringify({ name: `session ${i + 1}` }), expect: 201 });
      versionMs.push(version.ms);
      versionIds.push(version.value.id);
    }
    replay.checkFinal();
    const finalV1Bytes = Y.encodeStateAsUpdate(replay.doc).length;
    const finalV2Bytes = Y.encodeStateAsUpdateV2(replay.doc).length;
    const info = (await api.json<DocInfo>("")).value;
    const serverText = (await api.call("/text")).text;
    if (serverText !== trace.endContent) throw new Error("the room's text after 100 sessions differs from the trace's");

    // The floor: one room round trip that returns the document's text. Below it, for scale,
    // a request the Worker answers without the room (wrangler's proxy and the Worker).
    const floorMs = await timed(READ_SAMPLES, () => api.call("/text"));
    const healthMs = await timed(READ_SAMPLES, async () => {
      const started = performance.now();
      const response = await fetch(`${server.origin}/healthz`, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
      await response.text();
      if (!response.ok) throw new Error(`GET /healthz: ${response.status}`);
      return { ms: performance.now() - started };
    });
    const infoMs = await timed(READ_SAMPLES, () => api.call(""));
    let list: VersionListed[] = [];
    let listJsonBytes = 0;
    const listMs = await timed(READ_SAMPLES, async () => {
      const answer = await api.json<VersionListed[]>("/versions");
      list = answer.value;
      listJsonBytes = answer.bytes;
      return answer;
    });

    // Version texts: the middle session's and the last (largest) one's, checked against the replay.
    const middle = SESSIONS / 2 - 1;
    let versionTextsMatch = true;
    const versionText = (session: number) => async () => {
      const answer = await api.call(`/versions/${versionIds[session]}/text`);
      if (answer.text !== sessionTexts[session]) versionTextsMatch = false;
      return answer;
    };
    const middleTextMs = await timed(READ_SAMPLES, versionText(middle));
    const lastTextMs = await timed(READ_SAMPLES, versionText(SESSIONS - 1));

    // Restores: the final text back to session 50, then alternately sessions 51 and 50, so
    // each restore changes something. The two differ by 1% of the edits, but a restore brings
    // old text back as new items, so each one re-inserts what the version's own items lost.
    let restoresChangedAndMatch = true;
    const encodedBytesAfterEachRestore: number[] = [];
    const restore = async (session: number) => {
      const answer = await api.json<{ changed: boolean }>(`/versions/${versionIds[session]}/restore`, { method: "POST" });
      const now = (await api.call("/text")).text;
      if (!answer.value.changed || now !== sessionTexts[session]) restoresChangedAndMatch = false;
      encodedBytesAfterEachRestore.push((await api.json<DocInfo>("")).value.encodedBytes);
      return answer.ms;
    };
    const firstRestoreMs = await restore(middle);
    const alternatingMs: number[] = [];
    for (let i = 0; i < ALTERNATING_RESTORES; i++) alternatingMs.push(await restore(i % 2 === 0 ? middle + 1 : middle));
    const after = (await api.json<DocInfo>("")).value;

    return {
      room,
      sessions: SESSIONS,
      finalV1Bytes,
      finalV2Bytes,
      storedBytes: info.storedBytes,
      historyBytes: info.historyBytes,
      versions: info.versions,
      versionsByReason: byReason(list),
      listedVersionBytes: list.reduce((sum, version) => sum + version.bytes, 0),
      listJsonBytes,
      versionTextsMatch,
      restoresChangedAndMatch,
      historyBytesAfterRestores: after.historyBytes,
      versionsAfterRestores: after.versions,
      encodedBytesBeforeRestores: info.encodedBytes,
      encodedBytesAfterRestores: after.encodedBytes,
      itemsBeforeRestores: info.items,
      itemsAfterRestores: after.items,
      encodedBytesAfterEachRestore,
      timings: [
        stats("GET /text (floor)", floorMs),
        stats("GET /healthz (Worker only, no room)", healthMs),
        stats("GET /api/docs/:name (info)", infoMs),
        stats(`GET /versions (${list.length} versions)`, listMs),
        stats(`GET /versions/:id/text (session ${middle + 1})`, middleTextMs),
        stats(`GET /versions/:id/text (session ${SESSIONS})`, lastTextMs),
        stats(`POST /versions/:id/restore (final -> session ${middle + 1})`, [firstRestoreMs]),
        stats(`POST /versions/:id/restore (sessions ${middle + 1} <-> ${middle + 2})`, alternatingMs),
        stats("POST /update (one session's delta, during the replay)", updateMs),
        stats("POST /versions (named, during the replay)", versionMs),
      ],
    };
  } finally {
    await server.stop();
    removePersistDir(server.persistDir);
  }
}

function byReason(list: VersionListed[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const version of list) counts[version.reason] = (counts[version.reason] ?? 0) + 1;
  return counts;
}

export async function measureHistory(): Promise<HistoryResult> {
  const retention = await measureRetention();
  let server: HistoryResult["server"];
  try {
    server = await measureServerHistory();
  } catch (error) {
    // Part 1 stands on its own; report why part 2 could not be measured.
    server = { error: error instanceof Error ? error.message : String(error) };
  }
  return { retention, server };
}
