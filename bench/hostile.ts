/**
 * `--scenario hostile`: what one hostile client costs the server, and what its honest users
 * feel. Each attack runs on a fresh `wrangler dev` (wrangler.toml, so the default limits):
 * two honest editors type and read in a room for a baseline window, then keep going while the
 * attacker acts. Reported per attack: workerd's peak memory in the attack window minus the
 * baseline's, the honest relay latency in both windows, whether the honest editors converged
 * and stayed connected, and how the attacker's sockets and requests ended.
 *
 * The target (from the issue): no single frame or request grows workerd's memory by more than
 * {@link MEMORY_TARGET_BYTES}, and honest editors keep their usual latency. Close codes and
 * reasons are recorded, never asserted: the server's answers to these attacks are changing.
 * Everything talks to 127.0.0.1 only, every loop is bounded and every wait has a timeout.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import * as decoding from "lib0/decoding";
import { removePersistDir, startDevServer, type DevServer } from "../test/node/wrangler.ts";
import {
  EMPTY_UPDATE,
  WHOLE_DOCUMENT_REQUEST,
  awarenessFloodFrame,
  hugeStateVectorFrame,
  itemBombUpdates,
  pendingDeleteSetFrame,
  randomText,
  refusedAtFirstByteFrame,
  textInsertUpdate,
  undecodableUpdateFrame,
  nestedChainFrames,
} from "./hostile-frames.ts";
import {
  HonestPair,
  RssSampler,
  TrackedSocket,
  sleep,
  syncPayload,
  timedRequest,
  waitUntil,
  type LatencyWindow,
  type SocketEnd,
} from "./hostile-probes.ts";
import { MessageType, SyncMessageType, encodeSyncUpdate } from "../worker/protocol.ts";

/** The issue's bound on what one frame or request may add to workerd's memory. */
export const MEMORY_TARGET_BYTES = 64 * 1024 * 1024;

/** The honest pair types this long before the baseline starts (a new room's first edits are slow). */
const WARM_UP_MS = 1_000;
const BASELINE_MS = 5_000;
/** After the attack returns, the honest pair keeps typing at least this long inside the attack window. */
const SETTLE_MS = 2_000;
/** A safety net only: every attack bounds its own waits well within this. */
const ATTACK_TIMEOUT_MS = 120_000;
/** How long an attacker's socket gets to be answered or closed after its frame. */
const ANSWER_TIMEOUT_MS = 15_000;
const REQUEST_TIMEOUT_MS = 30_000;
/** Yjs client IDs of the attackers, far from the honest writer's. */
const ATTACKER_CLIENT = 900_000_000;
/** Yjs client ID of the text that fills a document before an attack. */
const AUTHOR_CLIENT = 800_000_000;

/** One attack's measurements, as printed and written to the JSON results. */
export interface HostileResult {
  attack: string;
  description: string;
  seconds: number;
  /** workerd RSS, summed over wrangler's workerd processes, sampled every 50 ms. */
  rss: { baselinePeakBytes: number; attackPeakBytes: number; deltaBytes: number } | null;
  /** Null for attacks measured without honest editors (they report counts). */
  honest: {
    baseline: LatencyWindow;
    attack: LatencyWindow;
    converged: boolean;
    delivered: boolean;
    closed: { who: string; code: number; reason: string }[];
  } | null;
  /** One line for the report: how the attacker's sockets or requests ended. */
  summary: string;
  details: Record<string, unknown>;
  /** Why the measurement itself failed, or null. */
  error: string | null;
}

interface AttackContext {
  /** Replaced when an attack restarts the server to force a cold load. */
  server: DevServer;
  /** The room under attack. */
  room: string;
}

interface AttackOutcome {
  summary: string;
  details: Record<string, unknown>;
  /**
   * What can only be observed by disturbing the measurement (reading what never-reading
   * sockets were sent): run after the attack window and the honest report are taken. Its
   * summary is appended to the attack's.
   */
  epilogue?: () => Promise<{ summary: string; details: Record<string, unknown> }>;
}

interface Attack {
  name: string;
  description: string;
  /** wrangler vars for this attack's server. */
  vars?: Record<string, string>;
  /** Where the honest pair edits: the attacked room, another room on the same server, or not at all. */
  honest: "same-room" | "other-room" | "none";
  /** Everything before the baseline (build frames, fill the document, restart); returns the attack itself. */
  arm: (context: AttackContext) => Promise<() => Promise<AttackOutcome>>;
}

const roomUrl = (server: DevServer, room: string) => `${server.wsUrl}/${room}`;
const apiUrl = (server: DevServer, room: string, path = "") => `${server.origin}/api/docs/${room}${path}`;

/**
 * Runs the attacks, each on a fresh server, one after the other: all of them, or those whose
 * number is listed in `only` (e.g. ["3", "4a"]), to re-measure one fix at a time.
 */
export async function measureHostile(only?: string[]): Promise<HostileResult[]> {
  const results: HostileResult[] = [];
  for (const attack of ATTACKS.filter((a) => !only || only.some((number) => a.name.startsWith(`${number}-`)))) {
    const result = await runAttack(attack);
    console.log(`hostile ${attack.name}: ${result.error ?? result.summary} (${result.seconds} s)`);
    results.push(result);
  }
  return results;
}

async function runAttack(attack: Attack): Promise<HostileResult> {
  const started = performance.now();
  const context: AttackContext = {
    server: await startDevServer({ vars: attack.vars ?? {} }),
    room: `hostile-${attack.name}-${Math.random().toString(36).slice(2, 8)}`,
  };
  let honest: HonestPair | null = null;
  let sampler: RssSampler | null = null;
  const result = (fields: Partial<HostileResult>): HostileResult => ({
    attack: attack.name,
    description: attack.description,
    seconds: Math.round((performance.now() - started) / 1000),
    rss: null,
    honest: null,
    summary: "",
    details: {},
    error: null,
    ...fields,
  });
  try {
    const fire = await attack.arm(context);
    // Started before the honest pair: finding workerd's processes spawns `ps`, which would stall their timing.
    sampler = RssSampler.start(context.server);
    if (attack.honest !== "none") {
      const honestRoom = attack.honest === "same-room" ? context.room : `${context.room}-honest`;
      honest = await HonestPair.connect(roomUrl(context.server, honestRoom));
    }
    await sleep(honest ? WARM_UP_MS : 0);
    honest?.startWindow("baseline");
    sampler.takeWindow();
    await sleep(BASELINE_MS);
    const baselinePeakBytes = sampler.takeWindow();
    honest?.startWindow("attack");
    const attackStarted = performance.now();
    const outcome = await withTimeout(fire(), ATTACK_TIMEOUT_MS, `the attack did not finish within ${ATTACK_TIMEOUT_MS} ms`);
    // At least as long as the baseline, so that both windows hold about as many edits.
    await sleep(Math.max(SETTLE_MS, attackStarted + BASELINE_MS - performance.now()));
    const attackPeakBytes = sampler.takeWindow();
    const report = await honest?.finish();
    const afterwards = (await outcome.epilogue?.()) ?? { summary: "", details: {} };
    return result({
      rss: { baselinePeakBytes, attackPeakBytes, deltaBytes: attackPeakBytes - baselinePeakBytes },
      honest: report
        ? {
            baseline: report.windows.baseline!,
            attack: report.windows.attack!,
            converged: report.converged,
            delivered: report.delivered,
            closed: report.closed,
          }
        : null,
      summary: outcome.summary + afterwards.summary,
      details: { ...outcome.details, ...afterwards.details },
    });
  } catch (error) {
    return result({ error: error instanceof Error ? error.message : String(error) });
  } finally {
    honest?.close();
    sampler?.stop();
    await context.server.stop();
    removePersistDir(context.server.persistDir);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A socket's end relative to `since`, for details; null while it is open. */
function endDetails(end: SocketEnd | null, since: number): { code: number; reason: string; afterMs: number } | null {
  return end && { code: end.code, reason: end.reason, afterMs: Math.round(end.at - since) };
}

/** How a socket ended, without when: for counting equal endings. */
function describeClose(end: SocketEnd | null): string {
  return end ? `closed ${end.code} "${end.reason}"` : "still open";
}

function describeEnd(end: SocketEnd | null, since: number): string {
  return end ? `${describeClose(end)} after ${Math.round(end.at - since)} ms` : describeClose(end);
}

/** Counts equal descriptions: "3x 1013 room full", ... */
function tally(descriptions: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const description of descriptions) counts[description] = (counts[description] ?? 0) + 1;
  return counts;
}

const tallyText = (counts: Record<string, number>) =>
  Object.entries(counts).map(([what, count]) => `${count}x ${what}`).join(", ") || "none";

// ---------------------------------------------------------------------------------------------
// The attacks, in the issue's order.

/**
 * One socket sends one frame and waits until the room answers it (a frame that `isAnswer`
 * recognizes: the attacker also receives the honest pair's traffic) or closes the socket. The
 * frame is built while arming, so its construction does not fall into the measured window.
 */
function singleFrameAttack(buildFrame: () => Uint8Array, isAnswer: (frame: Uint8Array) => boolean): Attack["arm"] {
  return async ({ server, room }) => {
    const frame = buildFrame();
    return async () => {
      const attacker = await TrackedSocket.join(roomUrl(server, room));
      const answers: { at: number; bytes: number }[] = [];
      attacker.onFrame((received, at) => {
        if (isAnswer(received)) answers.push({ at, bytes: received.length });
      });
      const sentAt = performance.now();
      await attacker.send(frame);
      const written = performance.now();
      await waitUntil(() => attacker.end !== null || answers.length > 0, ANSWER_TIMEOUT_MS);
      // An answer may be followed by a close; give it a moment to arrive.
      await attacker.waitForEnd(500);
      const answered = answers[0] ?? null;
      const details = {
        frameBytes: frame.length,
        writeMs: Math.round(written - sentAt),
        answer: answered && { bytes: answered.bytes, afterMs: Math.round(answered.at - sentAt) },
        end: endDetails(attacker.end, sentAt),
      };
      attacker.terminate();
      const answerText = answered ? `answered (${answered.bytes} bytes) after ${Math.round(answered.at - sentAt)} ms, ` : "no answer, ";
      return { summary: `${(frame.length / 2 ** 20).toFixed(1)} MiB frame: ${answerText}${describeEnd(attacker.end, sentAt)}`, details };
    };
  };
}

/** An awareness frame whose first entry is one of the flood's clients (1..`entries`): its echo. */
function isFloodEcho(entries: number): (frame: Uint8Array) => boolean {
  return (frame) => {
    try {
      const decoder = decoding.createDecoder(frame);
      if (decoding.readVarUint(decoder) !== MessageType.awareness) return false;
      const update = decoding.createDecoder(decoding.readVarUint8Array(decoder));
      const count = decoding.readVarUint(update);
      const firstClient = count > 0 ? decoding.readVarUint(update) : 0;
      return firstClient >= 1 && firstClient <= entries;
    } catch {
      return false;
    }
  };
}

const isSyncStep2 = (frame: Uint8Array) => syncPayload(frame, [SyncMessageType.step2]) !== null;

/** Fills the room's document with `chars` characters through the HTTP API. */
async function fillDocument(server: DevServer, room: string, chars: number): Promise<void> {
  const update = textInsertUpdate(chars, AUTHOR_CLIENT);
  // Yjs encodes into an ordinary ArrayBuffer; the DOM typings cannot know that.
  const body = update as Uint8Array<ArrayBuffer>;
  const response = await timedRequest(apiUrl(server, room, "/update"), { method: "POST", body, headers: { "Content-Type": "application/octet-stream" } }, REQUEST_TIMEOUT_MS);
  if (response.status !== 200) throw new Error(`could not fill the document: ${response.status} ${response.detail}`);
}

/** 3: a socket that never reads asks for a 2 MB document 300 times. */
const neverReadingAsker: Attack["arm"] = async ({ server, room }) => {
  const documentChars = 2_000_000;
  const requests = 300;
  await fillDocument(server, room, documentChars);
  return async () => {
    const attacker = await TrackedSocket.join(roomUrl(server, room));
    // Counted when finally read: the attacker also receives the honest pair's traffic.
    const answers = { frames: 0, bytes: 0 };
    attacker.onFrame((frame) => {
      if (!isSyncStep2(frame)) return;
      answers.frames++;
      answers.bytes += frame.length;
    });
    attacker.stopReading();
    const sentAt = performance.now();
    for (let i = 0; i < requests; i++) void attacker.send(WHOLE_DOCUMENT_REQUEST);
    // The room answers each with the whole document; nothing reads the answers.
    await sleep(8_000);
    return {
      summary: `${requests} requests for a ${documentChars / 1e6} MB document, never reading for 8 s`,
      details: { documentChars, requests, frameBytes: WHOLE_DOCUMENT_REQUEST.length },
      epilogue: async () => {
        attacker.resumeReading();
        await waitUntil(() => attacker.end !== null || answers.frames >= requests, 10_000);
        attacker.terminate();
        return {
          summary: `; once read: ${answers.frames} answers (${(answers.bytes / 1e6).toFixed(1)} MB), ${describeClose(attacker.end)}`,
          details: { answers: answers.frames, answerBytes: answers.bytes, end: endDetails(attacker.end, sentAt) },
        };
      },
    };
  };
};

/** 4: replace `chars` stored characters with as many unrelated ones through PUT /text. */
function textReplacement(chars: number, timeoutMs: number): Attack["arm"] {
  return async ({ server, room }) => {
    const initial = await timedRequest(apiUrl(server, room, "/text"), { method: "PUT", body: randomText(chars) }, REQUEST_TIMEOUT_MS);
    if (initial.status !== 200) throw new Error(`could not set the initial text: ${initial.status} ${initial.detail}`);
    const replacement = randomText(chars);
    return async () => {
      const response = await timedRequest(apiUrl(server, room, "/text"), { method: "PUT", body: replacement }, timeoutMs);
      const answer = response.status === null ? response.detail : `HTTP ${response.status} after ${(response.ms / 1000).toFixed(1)} s`;
      return {
        summary: `PUT ${chars / 1000} KB unrelated text: ${answer}`,
        details: { chars, initialPutMs: Math.round(initial.ms), status: response.status, requestMs: Math.round(response.ms), body: response.detail },
      };
    };
  };
}

/** 5: 30 API reads and 30 socket visits to names nobody writes; then count the databases left behind. */
const probeNames: Attack["arm"] = async (context) => async () => {
  const probes = 30;
  const statuses: string[] = [];
  for (let i = 0; i < probes; i++) {
    const response = await timedRequest(apiUrl(context.server, randomName()), {}, 10_000);
    statuses.push(response.status === null ? response.detail : `HTTP ${response.status}`);
  }
  const visits: string[] = [];
  for (let i = 0; i < probes; i++) visits.push(await visit(roomUrl(context.server, randomName())));
  await context.server.stop();
  const databases = roomDatabases(context.server.persistDir);
  const withTables = databases.filter((db) => db.tables.length > 0);
  return {
    summary: `${2 * probes} probes left ${databases.length} room .sqlite files, ${withTables.length} with tables of the room's own`,
    details: {
      apiReads: tally(statuses),
      socketVisits: tally(visits),
      sqliteFiles: databases.length,
      filesWithTables: withTables.length,
      tables: tally(withTables.map((db) => db.tables.join(","))),
      sqliteBytes: databases.reduce((sum, db) => sum + db.fileBytes, 0),
    },
  };
};

const randomName = () => `probe-${Math.random().toString(36).slice(2, 12)}`;

/** Connects, waits for the room's first frame, closes; says whether a frame came, or why the socket did not open. */
async function visit(url: string): Promise<string> {
  try {
    const socket = await TrackedSocket.open(url, { timeoutMs: 10_000 });
    await waitUntil(() => socket.framesReceived > 0 || socket.end !== null, 5_000);
    // 1000, not the default "no status": the room echoes a close code it can send, and only then
    // does the closing handshake end at once.
    socket.socket.close(1000);
    await socket.waitForEnd(2_000);
    socket.terminate();
    return socket.framesReceived > 0 ? "received a frame" : "no frame";
  } catch (error) {
    return `open failed: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/**
 * Every room's SQLite file in the persist dir (miniflare keeps one per Durable Object, plus a
 * `metadata.sqlite` per class, skipped), with the tables the room made (not miniflare's
 * `__miniflare_*` or workerd's `_cf_*`) and the document bytes they hold.
 */
function roomDatabases(persistDir: string): { fileBytes: number; tables: string[]; documentBytes: number }[] {
  const root = join(persistDir, "v3", "do");
  if (!existsSync(root)) return [];
  const files = (readdirSync(root, { recursive: true }) as string[]).filter(
    (name) => name.endsWith(".sqlite") && !name.endsWith("metadata.sqlite"),
  );
  return files.map((file) => {
    const path = join(root, file);
    const db = new DatabaseSync(path, { readOnly: true });
    try {
      const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[])
        .map(({ name }) => name)
        .filter((name) => !/^(_cf_|__miniflare|sqlite_)/.test(name));
      let documentBytes = 0;
      for (const table of tables.filter((name) => name === "edgedoc_snapshot" || name === "edgedoc_log")) {
        documentBytes += Number((db.prepare(`SELECT COALESCE(SUM(LENGTH(data)), 0) AS bytes FROM ${table}`).get() as { bytes: number }).bytes);
      }
      return { fileBytes: statSync(path).size, tables, documentBytes };
    } finally {
      db.close();
    }
  });
}

/** 6: three sockets that never send hold a room capped at three; an honest client knocks every 5 s. */
const silentSockets: Attack["arm"] = async ({ server, room }) => async () => {
  const url = roomUrl(server, room);
  const started = performance.now();
  const squatters = await Promise.all([0, 1, 2].map(() => TrackedSocket.open(url)));
  const attempts: { atMs: number; admitted: boolean; answer: string }[] = [];
  for (let attempt = 0; attempt <= 15 && !attempts.some((a) => a.admitted); attempt++) {
    await sleep(Math.max(0, started + attempt * 5_000 - performance.now()));
    const atMs = Math.round(performance.now() - started);
    attempts.push({ atMs, ...(await tryToJoin(url)) });
  }
  const admittedAt = attempts.find((a) => a.admitted)?.atMs;
  const squatterEnds = squatters.map((socket) => describeClose(socket.end));
  squatters.forEach((socket) => socket.terminate());
  const refusals = tally(attempts.filter((a) => !a.admitted).map((a) => a.answer));
  return {
    summary: `${admittedAt === undefined ? "honest client never got in" : `honest client got in after ${(admittedAt / 1000).toFixed(0)} s`}; refused: ${tallyText(refusals)}; squatters: ${tallyText(tally(squatterEnds))}`,
    details: { admittedAfterMs: admittedAt ?? null, attempts, squatters: squatters.map((socket) => endDetails(socket.end, started)) },
  };
};

/** An honest client's attempt to join: admitted once it has the document and is still open shortly after. */
async function tryToJoin(url: string): Promise<{ admitted: boolean; answer: string }> {
  let socket: TrackedSocket;
  try {
    socket = await TrackedSocket.open(url, { timeoutMs: 5_000, answer: () => EMPTY_UPDATE });
  } catch (error) {
    return { admitted: false, answer: `open failed: ${error instanceof Error ? error.message : String(error)}` };
  }
  const synced = (await requestDocument(socket, 3_000)) !== null;
  await socket.waitForEnd(300);
  const admitted = synced && socket.end === null;
  socket.terminate();
  return { admitted, answer: admitted ? "admitted" : describeClose(socket.end) };
}

/** Asks for the whole document; resolves how long the answer (a sync step 2) took, or null if none came. */
async function requestDocument(socket: TrackedSocket, timeoutMs: number): Promise<number | null> {
  let answeredAt: number | null = null;
  socket.onFrame((frame, at) => {
    if (answeredAt === null && isSyncStep2(frame)) answeredAt = at;
  });
  const sentAt = performance.now();
  await socket.send(WHOLE_DOCUMENT_REQUEST);
  await waitUntil(() => answeredAt !== null || socket.end !== null, timeoutMs);
  return answeredAt === null ? null : Math.round(answeredAt - sentAt);
}

/**
 * 7: a document of many unmergeable one-character items, small once stored; the room is
 * compacted and the server restarted, so the attack window measures the cold load. The items
 * go up in frames, each sent once the previous one is stored; a room that refuses one ends
 * the upload, and whatever it stored is loaded: the largest such document it admits.
 */
const itemBomb: Attack["arm"] = async (context) => {
  const frames = 10;
  const itemsPerFrame = 50_000;
  const updates = itemBombUpdates(frames, itemsPerFrame, ATTACKER_CLIENT);
  const upload = await uploadAndCompact(context, updates, itemsPerFrame);
  await context.server.stop();
  const storedBytes = roomDatabases(context.server.persistDir).reduce((sum, db) => sum + db.documentBytes, 0);
  context.server = await startDevServer({ persistDir: context.server.persistDir });
  const { server, room } = context;
  return async () => {
    const loader = await TrackedSocket.join(roomUrl(server, room));
    const sentAt = performance.now();
    const syncedMs = await requestDocument(loader, 60_000);
    loader.terminate();
    const refusal = upload.refusal ? `upload ${upload.refusal}; ` : "";
    const load = syncedMs === null ? `failed: ${describeEnd(loader.end, sentAt)}` : `synced in ${syncedMs} ms`;
    return {
      summary: `${refusal}${upload.storedItems} of ${frames * itemsPerFrame} items stored in ${(storedBytes / 1024).toFixed(0)} KiB; cold load ${load}`,
      details: {
        items: frames * itemsPerFrame,
        uploadedBytes: updates.reduce((sum, update) => sum + update.length, 0),
        ...upload,
        storedBytes,
        syncedMs,
        roomLoadMs: logLines(server, "load", room).at(-1)?.ms ?? null,
        documentBytesSent: loader.bytesReceived,
        end: endDetails(loader.end, sentAt),
      },
    };
  };
};

/**
 * Sends `updates` of `charsPerUpdate` characters each through one socket, each once the room
 * holds the previous one, until all are stored or the room closes the socket; then waits for
 * the idle compaction after the socket leaves.
 */
async function uploadAndCompact(
  { server, room }: AttackContext,
  updates: Uint8Array[],
  charsPerUpdate: number,
): Promise<{ storedItems: number; refusal: string | null }> {
  const writer = await TrackedSocket.join(roomUrl(server, room));
  const started = performance.now();
  for (const [index, update] of updates.entries()) {
    await writer.send(encodeSyncUpdate(update));
    const expected = (index + 1) * charsPerUpdate;
    const stored = await waitUntilAsync(async () => writer.end !== null || (await textLength(server, room)) >= expected, 30_000);
    if (!stored || writer.end !== null) break;
  }
  const storedItems = await textLength(server, room);
  const refusal = writer.end && describeEnd(writer.end, started);
  const compactionsBefore = logLines(server, "compaction", room).length;
  writer.socket.close(1000);
  // The room compacts 5 s after its last socket leaves, if its log holds anything; a large
  // upload may have been compacted on the way already, and then there is nothing to wait for.
  await waitUntil(() => logLines(server, "compaction", room).length > compactionsBefore, 10_000);
  writer.terminate();
  return { storedItems, refusal };
}

/** Length of the room's text, or -1 when it does not answer. */
async function textLength(server: DevServer, room: string): Promise<number> {
  try {
    const response = await fetch(apiUrl(server, room, "/text"), { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    return (await response.text()).length;
  } catch {
    return -1;
  }
}

async function waitUntilAsync(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return true;
    await sleep(250);
  }
  return false;
}

/** The room's structured log lines of one event (worker/log.ts prints one JSON object per line). */
function logLines(server: DevServer, event: string, room: string): Record<string, number | string>[] {
  return server
    .output()
    .split("\n")
    .filter((line) => line.includes(`"event":"${event}"`) && line.includes(`"room":"${room}"`))
    .flatMap((line) => {
      try {
        return [JSON.parse(line.slice(line.indexOf("{"))) as Record<string, number | string>];
      } catch {
        return []; // wrangler wrapped or cut the line: not one of ours to read
      }
    });
}

/** 8: deletions for an unknown client stay pending; the honest pair keeps editing for 8 s. */
const pendingDeleteSet: Attack["arm"] = async ({ server, room }) => {
  const ranges = 300_000;
  const frame = pendingDeleteSetFrame(ATTACKER_CLIENT, ranges);
  return async () => {
    const attacker = await TrackedSocket.join(roomUrl(server, room));
    const sentAt = performance.now();
    await attacker.send(frame);
    await sleep(8_000);
    const end = attacker.end;
    attacker.terminate();
    return {
      summary: `${ranges} pending delete ranges (${(frame.length / 2 ** 20).toFixed(1)} MiB frame), then 8 s of honest editing: attacker ${describeEnd(end, sentAt)}`,
      details: { ranges, frameBytes: frame.length, end: endDetails(end, sentAt) },
    };
  };
};

/** 9: 50 updates Yjs cannot decode, into a 2 MB document; a closed attacker reconnects. */
const undecodableUpdates: Attack["arm"] = async ({ server, room }) => {
  const documentChars = 2_000_000;
  const count = 50;
  await fillDocument(server, room, documentChars);
  const frames = Array.from({ length: count }, (_, i) => undecodableUpdateFrame(ATTACKER_CLIENT + 1 + i));
  return async () => {
    const url = roomUrl(server, room);
    const started = performance.now();
    const sockets: TrackedSocket[] = [];
    const deadline = started + 30_000;
    let sent = 0;
    for (const frame of frames) {
      if (performance.now() > deadline) break;
      if (!sockets.at(-1)?.isOpen) sockets.push(await TrackedSocket.join(url));
      await sockets.at(-1)!.send(frame);
      sent++;
      // Paced, and long enough for a room that reloads its document per refused update to close the socket.
      await waitUntil(() => sockets.at(-1)!.end !== null, 300);
    }
    await Promise.all(sockets.map((socket) => socket.waitForEnd(2_000)));
    const ends = tally(sockets.map((socket) => describeClose(socket.end)));
    sockets.forEach((socket) => socket.terminate());
    return {
      summary: `${sent} undecodable updates over ${sockets.length} sockets: ${tallyText(ends)}`,
      details: { documentChars, framesSent: sent, sockets: sockets.length, ends, ms: Math.round(performance.now() - started) },
    };
  };
};

/**
 * 10: `listeners` never-reading sockets in the room; one update of 8 MiB is relayed to all of
 * them. With none, it is the floor: what accepting and storing the update costs by itself.
 */
/** The chain's depth in issue 21, row 1 (27 KB): past where Yjs 13.6 can delete it. */
const NESTED_CHAIN_DEPTH = 3_000;

/**
 * Issue 21, row 1: one socket sends a chain of nested maps, another the 7-byte update deleting
 * its outer map (so that a room which accepted the chain throws deleting it), each waiting to be
 * closed or left alone.
 */
const nestedChain: Attack["arm"] = async ({ server, room }) => {
  const { chain, deletion } = nestedChainFrames(NESTED_CHAIN_DEPTH, ATTACKER_CLIENT);
  return async () => {
    const ends: NonNullable<ReturnType<typeof endDetails>>[] = [];
    const described: string[] = [];
    for (const frame of [chain, deletion]) {
      const socket = await TrackedSocket.join(roomUrl(server, room));
      const sentAt = performance.now();
      await socket.send(frame);
      // A refused frame closes its socket at once; an accepted one gets no answer.
      await socket.waitForEnd(2_000);
      described.push(describeEnd(socket.end, sentAt));
      const end = endDetails(socket.end, sentAt);
      if (end) ends.push(end);
      socket.terminate();
    }
    return {
      summary: `${chain.length}-byte chain of ${NESTED_CHAIN_DEPTH} maps: ${described[0]}; ${deletion.length}-byte deletion: ${described[1]}`,
      details: { depth: NESTED_CHAIN_DEPTH, chainFrameBytes: chain.length, deletionFrameBytes: deletion.length, ends },
    };
  };
};

const relayFanOut = (listeners: number): Attack["arm"] => async ({ server, room }) => {
  const frame = encodeSyncUpdate(textInsertUpdate(8 * 2 ** 20, ATTACKER_CLIENT));
  return async () => {
    const url = roomUrl(server, room);
    const stalled: TrackedSocket[] = [];
    for (let batch = 0; batch < listeners; batch += 10) {
      stalled.push(...(await Promise.all(Array.from({ length: 10 }, () => TrackedSocket.join(url)))));
    }
    stalled.forEach((socket) => socket.stopReading());
    const attacker = await TrackedSocket.join(url);
    const sentAt = performance.now();
    await attacker.send(frame);
    await sleep(8_000);
    const attackerEnd = attacker.end;
    attacker.terminate();
    return {
      summary: `${(frame.length / 2 ** 20).toFixed(1)} MiB update relayed to ${listeners} never-reading sockets: its sender ${describeEnd(attackerEnd, sentAt)}`,
      details: { listeners, frameBytes: frame.length, senderEnd: endDetails(attackerEnd, sentAt) },
      epilogue: async () => {
        const gotUpdate = (socket: TrackedSocket) => socket.bytesReceived > frame.length / 2;
        stalled.forEach((socket) => socket.resumeReading());
        // Each was sent the room's step 1 and then, if the room relayed it, the update.
        await waitUntil(() => stalled.every((socket) => socket.end !== null || gotUpdate(socket)), 15_000);
        const seen = tally(stalled.map((socket) => `${describeClose(socket.end)}, ${gotUpdate(socket) ? "got the update" : "no update"}`));
        stalled.forEach((socket) => socket.terminate());
        return { summary: `; the stalled sockets, once read: ${tallyText(seen)}`, details: { stalledSockets: seen } };
      },
    };
  };
};

/**
 * 11r: one address reads, at the door's own limit (20 API calls a second), what the room must
 * build for each answer: the text and V1 update of several named versions of a 100,000-item
 * document (one character per item, so every load and encode walks them all), the live
 * document's update and its stats, for 8 s while the honest pair types in the same room.
 */
const httpReads: Attack["arm"] = async ({ server, room }) => {
  const items = 100_000;
  const versionCount = 4;
  const callsPerSecond = 20;
  const seconds = 8;
  for (const update of itemBombUpdates(2, items / 2, AUTHOR_CLIENT)) {
    const body = update as Uint8Array<ArrayBuffer>;
    const headers = { "Content-Type": "application/octet-stream" };
    const response = await timedRequest(apiUrl(server, room, "/update"), { method: "POST", headers, body }, REQUEST_TIMEOUT_MS);
    if (response.status !== 200) throw new Error(`could not fill the document: ${response.status} ${response.detail}`);
  }
  const ids: number[] = [];
  for (let i = 0; i < versionCount; i++) {
    const response = await fetch(apiUrl(server, room, "/versions"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: `read me ${i}` }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (response.status !== 201) throw new Error(`could not save a version: ${response.status} ${await response.text()}`);
    ids.push(((await response.json()) as { id: number }).id);
  }
  // Distinct versions first: each is a second document to load, where a cache would hold one.
  const paths = [...ids.map((id) => `/versions/${id}/text`), `/versions/${ids[0]}/update`, "/update", ""];
  return async () => {
    const started = performance.now();
    const calls: Promise<{ path: string; status: number | null; ms: number }>[] = [];
    for (let call = 0; call < callsPerSecond * seconds; call++) {
      await sleep(Math.max(0, started + (call * 1000) / callsPerSecond - performance.now()));
      const path = paths[call % paths.length]!;
      calls.push(timedRequest(apiUrl(server, room, path), {}, REQUEST_TIMEOUT_MS).then(({ status, ms }) => ({ path, status, ms })));
    }
    const answers = await Promise.all(calls);
    const byPath = Object.fromEntries(
      paths.map((path) => {
        const mine = answers.filter((answer) => answer.path === path);
        const okMs = mine.filter((answer) => answer.status === 200).map((answer) => answer.ms).sort((a, b) => a - b);
        return [`GET /api/docs/:name${path}`, { statuses: tally(mine.map((answer) => String(answer.status ?? "no answer"))), okP50Ms: Math.round(okMs[Math.floor(okMs.length / 2)] ?? NaN), okMaxMs: Math.round(okMs.at(-1) ?? NaN) }];
      }),
    );
    const statuses = tally(answers.map((answer) => (answer.status === null ? "no answer" : `HTTP ${answer.status}`)));
    return {
      summary: `${answers.length} reads of a ${items}-item document (${versionCount} versions) in ${seconds} s: ${tallyText(statuses)}`,
      details: { items, versions: versionCount, calls: answers.length, statuses, byPath, ms: Math.round(performance.now() - started) },
    };
  };
};

const ATTACKS: Attack[] = [
  {
    name: "0-floor-refused-frame",
    description: "the floor: a 28.6 MiB frame refused at its first byte (the size of attack 2's frame)",
    honest: "same-room",
    arm: singleFrameAttack(() => refusedAtFirstByteFrame(hugeStateVectorFrame(5_000_000).length), () => false),
  },
  {
    name: "1-awareness-flood",
    description: "one awareness frame with 2 million clients (clock 1, state {})",
    honest: "same-room",
    arm: singleFrameAttack(() => awarenessFloodFrame(2_000_000), isFloodEcho(2_000_000)),
  },
  {
    name: "2-huge-state-vector",
    description: "sync step 1 whose state vector lists 5 million unknown clients",
    honest: "same-room",
    arm: singleFrameAttack(() => hugeStateVectorFrame(5_000_000), isSyncStep2),
  },
  {
    name: "3-never-reading-asker",
    description: "a socket that never reads sends 300 sync step 1 (empty state vector) for a 2 MB document",
    honest: "same-room",
    arm: neverReadingAsker,
  },
  {
    name: "4a-text-replace-40k",
    description: "PUT /api/docs/:name/text: 40 KB of random text over 40 KB of unrelated text",
    honest: "same-room",
    arm: textReplacement(40_000, 60_000),
  },
  {
    name: "4b-text-replace-200k",
    description: "PUT /api/docs/:name/text: 200 KB of random text over 200 KB of unrelated text",
    honest: "same-room",
    arm: textReplacement(200_000, 30_000),
  },
  {
    name: "5-probe-names",
    description: "30 GET /api/docs/<random> and 30 socket visits to names nobody writes",
    honest: "none",
    arm: probeNames,
  },
  {
    name: "6-silent-sockets",
    description: "MAX_SOCKETS_PER_ROOM=3: three sockets that never send; an honest client tries every 5 s for 75 s",
    vars: { MAX_SOCKETS_PER_ROOM: "3" },
    honest: "other-room",
    arm: silentSockets,
  },
  {
    name: "7-item-bomb",
    description: "up to 500,000 unmergeable one-character items (10 frames), compacted; cold load after a restart",
    honest: "other-room",
    arm: itemBomb,
  },
  {
    name: "8-pending-delete-set",
    description: "an update deleting 300,000 ranges of an unknown client, then honest editing",
    honest: "same-room",
    arm: pendingDeleteSet,
  },
  {
    name: "9-undecodable-updates",
    description: "50 structurally valid updates that Yjs cannot decode, into a 2 MB document",
    honest: "same-room",
    arm: undecodableUpdates,
  },
  {
    name: "10-relay-fan-out",
    description: "50 never-reading sockets in the room; one 8 MiB update",
    honest: "same-room",
    arm: relayFanOut(50),
  },
  {
    name: "10f-relay-floor",
    description: "the floor of 10: the same 8 MiB update with no other socket in the room",
    honest: "same-room",
    arm: relayFanOut(0),
  },
  {
    name: "12-nested-chain",
    description: "a 3,000-level chain of nested Y.Maps (a 36 KB frame), then the update deleting its outer map (a 13-byte frame)",
    honest: "same-room",
    arm: nestedChain,
  },
  {
    name: "11r-http-reads",
    description: "one address reads version texts and updates, the live update and stats of a 100,000-item document, 20 calls a second for 8 s",
    honest: "same-room",
    arm: httpReads,
  },
];
