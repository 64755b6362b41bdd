/**
 * Latency and throughput of live edits, and the server CPU they cost. Every timestamp is taken
 * in this one process, so clocks never need to agree. The same run measures edgedoc, the
 * y-partyserver peer and the relay floors (bench/worker.ts), or any y-websocket server given
 * with --url.
 *
 * - Latency: one writer replays the automerge-paper trace at a steady rate into a room, the
 *   other clients time each update's arrival.
 * - Saturation (the throughput): four writers each keep 32 edits in flight (sent and
 *   not yet at the reader) for 5 s; the figure is edits/s arriving at the one reader.
 * - Stepped throughput: one writer at rising offered rates, the highest with p99 under 100 ms.
 *
 * Every client opens the way a stock y-websocket provider does: it sends its sync step 1 and
 * step 2 (it has nothing, so both are empty), and the measurement starts once the server has
 * answered (see {@link handshake}).
 *
 * CPU: given a {@link CpuClock} (utime + stime of wrangler's workerd processes), each run reads
 * it before its sockets open and again once the target has finished the work its run left
 * behind ({@link Target.settleMs}), so that runs one after another never share a reading.
 * The machine's busy time is read too: CPU used by programs other than ours (another
 * benchmark, a test suite) slows every figure, so each run first waits for it to stop (for a
 * bounded time) and records how much of it there was.
 */
import { readdirSync, readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import * as decoding from "lib0/decoding";
import { WebSocket } from "ws";
import * as Y from "yjs";
import {
  EMPTY_STATE_VECTOR,
  EMPTY_UPDATE,
  MessageType,
  SyncMessageType,
  decodeAwarenessUpdate,
  encodeAwareness,
  encodeSyncStep1,
  encodeSyncStep2,
  encodeSyncUpdate,
} from "../worker/protocol.ts";
import { loadTrace, replay, type Trace } from "./trace.ts";

/** Where a benchmark room lives: a URL prefix to which the room name is appended. */
export interface Target {
  name: string;
  roomUrl: (room: string) => string;
  /**
   * How long after its last socket closes the target may still work for the run (a debounced
   * save, a session-end version): the CPU reading waits this long, then until workerd is quiet.
   */
  settleMs?: number;
}

export interface LatencyStats {
  samples: number;
  p50: number;
  p95: number;
  p99: number;
}

/** Server CPU of one run: the delta of utime + stime over wrangler's workerd processes. */
export interface CpuCost {
  /** CPU milliseconds, all workerd processes (the runtime and wrangler's proxy). */
  ms: number;
  /** The same per process, by role. */
  perProcessMs: Record<string, number>;
  /** Edits the run sent (and the server applied: checked by delivery to the readers). */
  edits: number;
  perThousandEdits: number;
  /** Wall time from the last socket's close to the second reading. */
  settledMs: number;
  /** Of `ms`, what the target spent after its sockets closed: the work a run leaves behind (a session-end version and compaction, a debounced save). */
  afterCloseMs: number;
  /**
   * CPU other programs used on the machine while the run's sockets were open, in cores (0.5:
   * half a core all along): with two cores, anything but ~0 means this run's figures are
   * slowed by something else.
   */
  othersCores: number;
  /** How long the run waited for other programs to quiet down before it started. */
  waitedForQuietMs: number;
}

export interface LatencyResult {
  target: string;
  run: number;
  clients: number;
  rate: number;
  edits: number;
  /** Every listener received every edit and ended with the writer's text. */
  converged: boolean;
  /** Per delivery: writer's send to one reader's receipt, over every (edit, reader). */
  updates: LatencyStats;
  /** Per edit: writer's send until the last reader has it (the definition). */
  everyReader: LatencyStats;
  awareness: LatencyStats;
  cpu: CpuCost | null;
}

export interface ThroughputStep {
  rate: number;
  p99: number;
  delivered: boolean;
  converged: boolean;
}

export interface ThroughputResult {
  target: string;
  run: number;
  clients: number;
  steps: ThroughputStep[];
  /** Highest offered rate (updates/s in) with p99 under 100 ms, every update delivered and every client identical. */
  sustainedRate: number;
  /** Deliveries per second out at that rate: rate x (clients - 1). */
  deliveriesPerSecond: number;
  cpu: CpuCost | null;
}

export interface SaturationResult {
  target: string;
  run: number;
  /** Writers plus the one reader. */
  clients: number;
  writers: number;
  inFlight: number;
  seconds: number;
  /** Edits that reached the reader within the window, per second: the throughput figure. */
  editsPerSecond: number;
  sent: number;
  /** The reader received every edit sent (within the drain timeout after the window). */
  delivered: boolean;
  /** ...and its document's text equals that of all edits sent. */
  converged: boolean;
  /** A writer ran out of prepared edits before the window ended: the figure is a lower bound. */
  exhausted: boolean;
  /** Per edit at the reader, for the record (closed loop: this is queueing, not responsiveness). */
  latency: LatencyStats;
  cpu: CpuCost | null;
}

const WRITER_CLIENT_ID = 424_242;
/** A cursor move rides along every this many edits (as when typing). */
const EDITS_PER_AWARENESS = 5;
const CONNECT_TIMEOUT_MS = 15_000;
/** How long clients wait for the server's answer to their sync step 1 before measuring anyway. */
const HANDSHAKE_TIMEOUT_MS = 5_000;
/** After the handshakes, before the first edit. */
const SETTLE_BEFORE_MS = 200;
/** After the last send, how long receivers get to catch up before they count as behind. */
const DRAIN_MS = 1_500;
/** Saturation: after the window, how long the reader may take to receive what is in flight. */
const SATURATION_DRAIN_TIMEOUT_MS = 10_000;
/** Throughput passes while p99 stays under this. */
const THROUGHPUT_P99_LIMIT_MS = 100;
/** After a target's settle time, workerd counts as quiet once it used at most this much CPU in {@link QUIET_WINDOW_MS}. */
const QUIET_CPU_MS = 20;
const QUIET_WINDOW_MS = 500;
/**
 * At most this much longer than the settle time is waited for quiet: a target that fell behind
 * (y-partyserver relaying the presence echoes of 50 stock providers) keeps the one workerd
 * busy after its clients left, and the next run, of another target, must not pay for it.
 */
const QUIET_MAX_EXTRA_MS = 60_000;
/** Before a run, the machine counts as quiet while other programs use under this share of one core... */
const OTHERS_QUIET_CORES = 0.1;
/** ...and a run waits at most this long for that, then goes ahead (its othersCores tells). */
const MACHINE_QUIET_MAX_WAIT_MS = 10_000;

const SYNC_STEP1 = encodeSyncStep1(EMPTY_STATE_VECTOR);
const SYNC_STEP2 = encodeSyncStep2(EMPTY_UPDATE);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every edit of the trace as the y-websocket frame a provider would send, in order. */
export function traceFrames(): { frames: Uint8Array[]; textAfter: (count: number) => string } {
  const trace = loadTrace("automerge-paper");
  const doc = new Y.Doc();
  doc.clientID = WRITER_CLIENT_ID;
  const frames: Uint8Array[] = [];
  doc.on("update", (update: Uint8Array) => frames.push(encodeSyncUpdate(update)));
  replay(trace, doc.getText("codemirror"));
  return { frames, textAfter: (count) => textOf(frames.slice(0, count)) };
}

/**
 * Frames for `writers` independent writers, each the first `editsEach` keystrokes of the
 * trace typed by its own client into its own document: each writer's edits only refer to
 * its own, so any interleaving of the writers' streams is valid and converges.
 */
export function writerFrames(writers: number, editsEach: number): Uint8Array[][] {
  const trace = loadTrace("automerge-paper");
  return Array.from({ length: writers }, (_, index) => replayFirst(trace, writerClientId(index), editsEach));
}

const writerClientId = (index: number) => WRITER_CLIENT_ID + 1 + index;

function replayFirst(trace: Trace, clientId: number, count: number): Uint8Array[] {
  const doc = new Y.Doc();
  doc.clientID = clientId;
  const text = doc.getText("codemirror");
  const frames: Uint8Array[] = [];
  doc.on("update", (update: Uint8Array) => frames.push(encodeSyncUpdate(update)));
  for (const { patches } of trace.txns) {
    for (const [position, deleteCount, insert] of patches) {
      if (frames.length >= count) return frames;
      doc.transact(() => {
        if (deleteCount > 0) text.delete(position, deleteCount);
        if (insert) text.insert(position, insert);
      });
    }
  }
  return frames;
}

function textOf(frames: Uint8Array[]): string {
  const doc = new Y.Doc();
  doc.transact(() => frames.forEach((frame) => Y.applyUpdate(doc, payloadOf(frame))));
  return doc.getText("codemirror").toString();
}

/** A client that records when each frame arrives and does nothing else while timing. */
class Listener {
  readonly updates: number[] = [];
  readonly updateFrames: Uint8Array[] = [];
  readonly awareness = new Map<number, number>();

  constructor(readonly socket: WebSocket) {
    socket.on("message", (data: Buffer) => {
      const at = performance.now();
      const frame = new Uint8Array(data);
      const decoder = decoding.createDecoder(frame);
      const type = decoding.readVarUint(decoder);
      if (type === MessageType.sync && decoding.readVarUint(decoder) === SyncMessageType.update) {
        this.updates.push(at);
        this.updateFrames.push(frame);
      } else if (type === MessageType.awareness) {
        for (const entry of decodeAwarenessUpdate(decoding.readVarUint8Array(decoder))) {
          if (entry.clientId === WRITER_CLIENT_ID && !this.awareness.has(entry.clock)) this.awareness.set(entry.clock, at);
        }
      }
    });
  }

  /** The text this client would show, from every update it received. */
  text(): string {
    return textOf(this.updateFrames);
  }
}

function payloadOf(frame: Uint8Array): Uint8Array {
  const decoder = decoding.createDecoder(frame);
  decoding.readVarUint(decoder);
  decoding.readVarUint(decoder);
  return decoding.readVarUint8Array(decoder);
}

/**
 * The Yjs client whose edit a sync update frame carries: the first struct group's client, or
 * for a deletion alone the delete set's first client (a V1 update: structs, then delete set).
 */
function clientOf(frame: Uint8Array): number {
  const decoder = decoding.createDecoder(payloadOf(frame));
  if (decoding.readVarUint(decoder) > 0) {
    decoding.readVarUint(decoder); // structs in the group
    return decoding.readVarUint(decoder);
  }
  return decoding.readVarUint(decoder) > 0 ? decoding.readVarUint(decoder) : -1;
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`could not connect to ${url}`));
    }, CONNECT_TIMEOUT_MS);
    socket.once("open", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/**
 * The client's side of the sync handshake, as a stock provider with an empty document does
 * it: its sync step 1 (asking for the document) and its step 2 (nothing new, answering the
 * server's step 1; a room may close a socket that never sends it). Then waits, at most
 * {@link HANDSHAKE_TIMEOUT_MS}, until every socket has received a sync step 2 (the server's
 * answer; through a relay floor, another client's), and {@link SETTLE_BEFORE_MS} more.
 */
async function handshake(sockets: WebSocket[]): Promise<void> {
  const handlers: [WebSocket, (data: Buffer) => void][] = [];
  const answered = sockets.map(
    (socket) =>
      new Promise<void>((resolve) => {
        const onMessage = (data: Buffer) => {
          if (data[0] === MessageType.sync && data[1] === SyncMessageType.step2) {
            socket.off("message", onMessage);
            resolve();
          }
        };
        handlers.push([socket, onMessage]);
        socket.on("message", onMessage);
      }),
  );
  for (const socket of sockets) {
    socket.send(SYNC_STEP1);
    socket.send(SYNC_STEP2);
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([Promise.all(answered), new Promise((resolve) => (timer = setTimeout(resolve, HANDSHAKE_TIMEOUT_MS)))]);
  clearTimeout(timer);
  for (const [socket, onMessage] of handlers) socket.off("message", onMessage);
  await sleep(SETTLE_BEFORE_MS);
}

function awarenessFrame(clock: number): Uint8Array {
  const state = JSON.stringify({ user: { name: "bench", color: "#30638e" }, cursor: { anchor: clock, head: clock } });
  return encodeAwareness([{ clientId: WRITER_CLIENT_ID, clock, state }]);
}

export function percentiles(values: number[]): LatencyStats {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { samples: sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

export const roomName = (target: Target, kind: string) => `bench-${target.name.replace(/\W/g, "-")}-${kind}-${Math.random().toString(36).slice(2, 8)}`;

// ---------------------------------------------------------------------------------------------
// Server CPU

export interface CpuReading {
  /** CPU milliseconds used so far by each workerd process, by role. */
  perProcessMs: Record<string, number>;
  /** ...by everything of ours: wrangler's whole process group (workerd, its node, esbuild) and this driver. */
  oursMs: number;
  /** Busy CPU milliseconds of the whole machine, all cores (/proc/stat). */
  machineBusyMs: number;
  /** performance.now() when read. */
  at: number;
}

/** Reads the CPU time used so far by the server under test, and by the machine. */
export type CpuClock = () => CpuReading;

/**
 * A clock over the processes in the process group of wrangler `pid`: the workerd processes
 * (wrangler dev runs two: its proxy, which holds the sockets' public port, and the runtime,
 * which has the inspector) are the server; the others (wrangler's node, esbuild) are counted
 * only to tell our load from that of other programs on the machine. Found once, through
 * /proc; each reading is utime + stime of /proc/<pid>/stat.
 */
export function workerdCpuClock(pid: number): CpuClock {
  const ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  const toMs = (ticks: number) => (ticks * 1000) / ticksPerSecond;
  const processes: { pid: string; role: string | null }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const processGroup = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
      if (processGroup !== pid) continue;
      const workerd = comm === "workerd";
      const commandLine = workerd ? readFileSync(`/proc/${entry}/cmdline`, "utf8") : "";
      processes.push({ pid: entry, role: workerd ? (commandLine.includes("--inspector-addr") ? "runtime" : "proxy") : null });
    } catch {
      // The process ended while we looked.
    }
  }
  if (!processes.some(({ role }) => role !== null)) throw new Error(`no workerd process in process group ${pid}`);
  // Two of a role (should wrangler ever change): tell them apart.
  const roles = processes.map(({ role }, index) => (role !== null && processes.filter((p) => p.role === role).length > 1 ? `${role}${index}` : role));
  const processMs = (processId: string, role: string | null) => {
    try {
      // Fields after "(comm) ": state is the first; utime and stime are the 12th and 13th.
      const fields = readFileSync(`/proc/${processId}/stat`, "utf8").split(") ")[1]!.split(" ");
      return toMs(Number(fields[11]) + Number(fields[12]));
    } catch {
      // A workerd gone means wrangler restarted it: the readings no longer cover the server.
      if (role !== null) throw new Error(`workerd (${role}, pid ${processId}) is gone: wrangler restarted it during the benchmark`);
      return 0;
    }
  };
  return () => {
    const perProcessMs: Record<string, number> = {};
    let oursMs = 0;
    processes.forEach(({ pid: processId }, index) => {
      const ms = processMs(processId, roles[index] ?? null);
      oursMs += ms;
      if (roles[index]) perProcessMs[roles[index]] = ms;
    });
    const { user, system } = process.cpuUsage();
    oursMs += (user + system) / 1000;
    // cpu  user nice system idle iowait irq softirq steal ...
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const machineBusyMs = toMs(fields[0]! + fields[1]! + fields[2]! + fields[5]! + fields[6]! + fields[7]!);
    return { perProcessMs, oursMs, machineBusyMs, at: performance.now() };
  };
}

const totalMs = (reading: CpuReading) => Object.values(reading.perProcessMs).reduce((sum, ms) => sum + ms, 0);
/** CPU used by other programs between two readings, in cores (1 = one core busy all the time). */
const othersCores = (from: CpuReading, to: CpuReading) =>
  Math.max(0, to.machineBusyMs - from.machineBusyMs - (to.oursMs - from.oursMs)) / Math.max(1, to.at - from.at);

/**
 * Before a run: waits, at most {@link MACHINE_QUIET_MAX_WAIT_MS}, until other programs use
 * under {@link OTHERS_QUIET_CORES} of a core (over {@link QUIET_WINDOW_MS}). Returns how long it waited.
 */
async function awaitQuietMachine(cpu: CpuClock): Promise<number> {
  const started = performance.now();
  let last = cpu();
  while (performance.now() - started < MACHINE_QUIET_MAX_WAIT_MS) {
    await sleep(QUIET_WINDOW_MS);
    const now = cpu();
    const quiet = othersCores(last, now) < OTHERS_QUIET_CORES;
    last = now;
    if (quiet) break;
  }
  return performance.now() - started;
}

/**
 * Runs `body` between two readings of `cpu`. The second waits for the target's settle time
 * after `body` (which closes its sockets) and then until workerd has been quiet for
 * {@link QUIET_WINDOW_MS}, so that work the run left behind is counted in it, not in the next.
 * Before the first, waits (bounded) for other programs to leave the machine quiet, and
 * records how much CPU they used during the run. Without a clock, just runs `body`.
 */
/**
 * Waits, at most `maxMs`, until workerd used at most {@link QUIET_CPU_MS} in
 * {@link QUIET_WINDOW_MS}: it has handled every frame it was sent, including those it answers
 * with nothing (an echo of presence), which no client can see. Returns the last reading.
 */
export async function awaitQuietServer(cpu: CpuClock, maxMs: number): Promise<{ quiet: boolean; last: CpuReading }> {
  const quietBy = performance.now() + maxMs;
  let last = cpu();
  while (performance.now() < quietBy) {
    await sleep(QUIET_WINDOW_MS);
    const now = cpu();
    const quiet = totalMs(now) - totalMs(last) <= QUIET_CPU_MS;
    last = now;
    if (quiet) return { quiet, last };
  }
  return { quiet: false, last };
}

export async function withCpu<R extends { edits: number }>(target: Target, cpu: CpuClock | undefined, body: () => Promise<R>): Promise<R & { cpu: CpuCost | null }> {
  if (!cpu) return { ...(await body()), cpu: null };
  const waitedForQuietMs = await awaitQuietMachine(cpu);
  const before = cpu();
  const result = await body();
  const closedAt = performance.now();
  const bodyEnd = cpu();
  await sleep(target.settleMs ?? 0);
  const { last } = await awaitQuietServer(cpu, QUIET_MAX_EXTRA_MS);
  const perProcessMs = Object.fromEntries(Object.entries(last.perProcessMs).map(([role, ms]) => [role, ms - (before.perProcessMs[role] ?? 0)]));
  const ms = totalMs(last) - totalMs(before);
  return {
    ...result,
    cpu: {
      ms,
      perProcessMs,
      edits: result.edits,
      perThousandEdits: result.edits > 0 ? (ms / result.edits) * 1000 : NaN,
      settledMs: performance.now() - closedAt,
      afterCloseMs: totalMs(last) - totalMs(bodyEnd),
      othersCores: othersCores(before, bodyEnd),
      waitedForQuietMs,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// One writer at a steady rate

interface Run {
  updateLatencies: number[];
  everyReaderLatencies: number[];
  awarenessLatencies: number[];
  delivered: boolean;
  converged: boolean;
  edits: number;
}

/** One writer sends `frames` at `rate`/s into a fresh room with `clients - 1` listeners. */
async function run(target: Target, frames: Uint8Array[], expectedText: string, clients: number, rate: number): Promise<Run> {
  const url = target.roomUrl(roomName(target, `${clients}-${rate}`));
  const writer = await open(url);
  const listeners = await Promise.all(Array.from({ length: clients - 1 }, async () => new Listener(await open(url))));
  const sockets = [writer, ...listeners.map((listener) => listener.socket)];
  try {
    await handshake(sockets);
    for (const listener of listeners) listener.updates.length = listener.updateFrames.length = 0;
    const sentAt: number[] = [];
    const awarenessSentAt = new Map<number, number>();
    const started = performance.now();
    while (sentAt.length < frames.length) {
      const due = Math.min(frames.length, Math.floor(((performance.now() - started) * rate) / 1000) + 1);
      while (sentAt.length < due) {
        const index = sentAt.length;
        sentAt.push(performance.now());
        writer.send(frames[index]!);
        if (index % EDITS_PER_AWARENESS === 0) {
          const clock = index / EDITS_PER_AWARENESS + 1;
          awarenessSentAt.set(clock, performance.now());
          writer.send(awarenessFrame(clock));
        }
      }
      await sleep(1);
    }
    await sleep(DRAIN_MS);
    const updateLatencies = listeners.flatMap((listener) => listener.updates.map((at, index) => at - sentAt[index]!));
    const everyReaderLatencies = sentAt.flatMap((sent, index) =>
      listeners.every((listener) => listener.updates.length > index) ? [Math.max(...listeners.map((listener) => listener.updates[index]!)) - sent] : [],
    );
    const awarenessLatencies = listeners.flatMap((listener) =>
      [...listener.awareness].flatMap(([clock, at]) => (awarenessSentAt.has(clock) ? [at - awarenessSentAt.get(clock)!] : [])),
    );
    const delivered = listeners.every((listener) => listener.updates.length === frames.length);
    const converged = delivered && listeners.every((listener) => listener.text() === expectedText);
    return { updateLatencies, everyReaderLatencies, awarenessLatencies, delivered, converged, edits: frames.length };
  } finally {
    for (const socket of sockets) socket.close();
  }
}

export interface MeasureOptions {
  /** Which repetition this is (1-based), for the results. */
  run?: number;
  cpu?: CpuClock;
}

export async function measureLatency(
  target: Target,
  trace: ReturnType<typeof traceFrames>,
  clients: number,
  { rate = 20, edits = 300, run: repetition = 1, cpu }: MeasureOptions & { rate?: number; edits?: number } = {},
): Promise<LatencyResult> {
  const expected = trace.textAfter(edits);
  const result = await withCpu(target, cpu, () => run(target, trace.frames.slice(0, edits), expected, clients, rate));
  return {
    target: target.name,
    run: repetition,
    clients,
    rate,
    edits,
    converged: result.converged,
    updates: percentiles(result.updateLatencies),
    everyReader: percentiles(result.everyReaderLatencies),
    awareness: percentiles(result.awarenessLatencies),
    cpu: result.cpu,
  };
}

/**
 * Raises the offered rate step by step (in steps of at most 1.5x) until p99 passes 100 ms or
 * receivers fall behind. When the first rate already fails, lower ones are tried instead,
 * down to the last of `lowerRates`, until one passes.
 */
export async function measureThroughput(
  target: Target,
  trace: ReturnType<typeof traceFrames>,
  clients: number,
  {
    rates = [250, 500, 750, 1000, 1500, 2000, 3000, 4000],
    lowerRates = [150, 100, 50],
    seconds = 2,
    run: repetition = 1,
    cpu,
  }: MeasureOptions & { rates?: number[]; lowerRates?: number[]; seconds?: number } = {},
): Promise<ThroughputResult> {
  const { steps, cpu: cost } = await withCpu(target, cpu, async () => {
    const steps: ThroughputStep[] = [];
    let edits = 0;
    const passes = (step: ThroughputStep) => step.delivered && step.converged && step.p99 < THROUGHPUT_P99_LIMIT_MS;
    const measure = async (rate: number) => {
      const count = rate * seconds;
      const result = await run(target, trace.frames.slice(0, count), trace.textAfter(count), clients, rate);
      edits += count;
      const step = { rate, p99: percentiles(result.updateLatencies).p99, delivered: result.delivered, converged: result.converged };
      steps.push(step);
      return passes(step);
    };
    for (const rate of rates) if (!(await measure(rate))) break;
    if (!passes(steps[0]!)) for (const rate of lowerRates) if (await measure(rate)) break;
    return { steps, edits };
  });
  const passing = steps.filter((step) => step.delivered && step.converged && step.p99 < THROUGHPUT_P99_LIMIT_MS);
  const sustainedRate = Math.max(0, ...passing.map((step) => step.rate));
  return { target: target.name, run: repetition, clients, steps, sustainedRate, deliveriesPerSecond: sustainedRate * (clients - 1), cpu: cost };
}

// ---------------------------------------------------------------------------------------------
// Saturation: writers keeping edits in flight

/**
 * The throughput harness: `frames.length` writers and one reader in a fresh room. Each
 * writer keeps `inFlight` of its edits sent and not yet received by the reader, for `seconds`;
 * the figure is the edits that reached the reader in that window, per second. No cursor
 * moves. Then the reader must receive everything sent and end with the text of all of it.
 */
export async function measureSaturation(
  target: Target,
  frames: Uint8Array[][],
  { inFlight = 32, seconds = 5, run: repetition = 1, cpu }: MeasureOptions & { inFlight?: number; seconds?: number } = {},
): Promise<SaturationResult> {
  const writers = frames.length;
  const result = await withCpu(target, cpu, async () => {
    const url = target.roomUrl(roomName(target, "saturation"));
    const writerSockets = await Promise.all(frames.map(() => open(url)));
    const reader = await open(url);
    const sockets = [...writerSockets, reader];
    try {
      await handshake(sockets);
      const writerOf = new Map(frames.map((_, index) => [writerClientId(index), index]));
      const sent = frames.map(() => 0);
      const received = frames.map(() => 0);
      const sentAt = frames.map(() => [] as number[]);
      const latencies: number[] = [];
      const readerFrames: Uint8Array[] = [];
      let inWindow = 0;
      let exhausted = false;
      let stray = 0;
      const started = performance.now();
      const end = started + seconds * 1000;
      const pump = (writer: number) => {
        while (sent[writer]! - received[writer]! < inFlight && performance.now() < end) {
          if (sent[writer]! >= frames[writer]!.length) {
            exhausted = true;
            return;
          }
          sentAt[writer]!.push(performance.now());
          writerSockets[writer]!.send(frames[writer]![sent[writer]!++]!);
        }
      };
      reader.on("message", (data: Buffer) => {
        const at = performance.now();
        if (data[0] !== MessageType.sync || data[1] !== SyncMessageType.update) return;
        const frame = new Uint8Array(data);
        readerFrames.push(frame);
        const writer = writerOf.get(clientOf(frame));
        if (writer === undefined) {
          stray++;
          return;
        }
        latencies.push(at - sentAt[writer]![received[writer]!]!);
        received[writer]!++;
        if (at <= end) inWindow++;
        pump(writer);
      });
      frames.forEach((_, writer) => pump(writer));
      await sleep(seconds * 1000);
      const drainBy = performance.now() + SATURATION_DRAIN_TIMEOUT_MS;
      while (performance.now() < drainBy && received.some((count, writer) => count < sent[writer]!)) await sleep(20);
      const delivered = stray === 0 && received.every((count, writer) => count === sent[writer]);
      const expected = textOf(frames.flatMap((writerFrames, writer) => writerFrames.slice(0, sent[writer])));
      const converged = delivered && textOf(readerFrames) === expected;
      const total = sent.reduce((sum, count) => sum + count, 0);
      return { editsPerSecond: inWindow / seconds, sent: total, delivered, converged, exhausted, latency: percentiles(latencies), edits: total };
    } finally {
      for (const socket of sockets) socket.close();
    }
  });
  return {
    target: target.name,
    run: repetition,
    clients: writers + 1,
    writers,
    inFlight,
    seconds,
    editsPerSecond: result.editsPerSecond,
    sent: result.sent,
    delivered: result.delivered,
    converged: result.converged,
    exhausted: result.exhausted,
    latency: result.latency,
    cpu: result.cpu,
  };
}
