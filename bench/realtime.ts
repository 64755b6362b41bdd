/**
 * Latency and throughput of live edits: one writer replays the automerge-paper trace at a
 * steady rate into a room, the other clients time each update's arrival. Every timestamp is
 * taken in this one process, so clocks never need to agree. The same run measures edgedoc
 * and the relay floors (bench/worker.ts), or any y-websocket server given with --url.
 */
import * as decoding from "lib0/decoding";
import { WebSocket } from "ws";
import * as Y from "yjs";
import {
  EMPTY_UPDATE,
  MessageType,
  SyncMessageType,
  decodeAwarenessUpdate,
  encodeAwareness,
  encodeSyncStep2,
  encodeSyncUpdate,
} from "../worker/protocol.ts";
import { loadTrace, replay } from "./trace.ts";

/** Where a benchmark room lives: a URL prefix to which the room name is appended. */
export interface Target {
  name: string;
  roomUrl: (room: string) => string;
}

export interface LatencyStats {
  samples: number;
  p50: number;
  p95: number;
  p99: number;
}

export interface LatencyResult {
  target: string;
  clients: number;
  rate: number;
  /** Every listener received every edit and ended with the writer's text. */
  converged: boolean;
  updates: LatencyStats;
  awareness: LatencyStats;
}

export interface ThroughputStep {
  rate: number;
  p99: number;
  delivered: boolean;
  converged: boolean;
}

export interface ThroughputResult {
  target: string;
  clients: number;
  steps: ThroughputStep[];
  /** Highest offered rate (updates/s in) with p99 under 100 ms, every update delivered and every client identical. */
  sustainedRate: number;
  /** Deliveries per second out at that rate: rate x (clients - 1). */
  deliveriesPerSecond: number;
}

const WRITER_CLIENT_ID = 424_242;
/** A cursor move rides along every this many edits (as when typing). */
const EDITS_PER_AWARENESS = 5;
const CONNECT_TIMEOUT_MS = 15_000;
/** After the last send, how long receivers get to catch up before they count as behind. */
const DRAIN_MS = 1_500;
/** Throughput passes while p99 stays under this. */
const THROUGHPUT_P99_LIMIT_MS = 100;

/** Every edit of the trace as the y-websocket frame a provider would send, in order. */
export function traceFrames(): { frames: Uint8Array[]; textAfter: (count: number) => string } {
  const trace = loadTrace("automerge-paper");
  const doc = new Y.Doc();
  doc.clientID = WRITER_CLIENT_ID;
  const frames: Uint8Array[] = [];
  doc.on("update", (update: Uint8Array) => frames.push(encodeSyncUpdate(update)));
  replay(trace, doc.getText("codemirror"));
  return {
    frames,
    textAfter: (count) => {
      const prefix = new Y.Doc();
      prefix.transact(() => frames.slice(0, count).forEach((frame) => Y.applyUpdate(prefix, payloadOf(frame))));
      return prefix.getText("codemirror").toString();
    },
  };
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
    const doc = new Y.Doc();
    doc.transact(() => this.updateFrames.forEach((frame) => Y.applyUpdate(doc, payloadOf(frame))));
    return doc.getText("codemirror").toString();
  }
}

function payloadOf(frame: Uint8Array): Uint8Array {
  const decoder = decoding.createDecoder(frame);
  decoding.readVarUint(decoder);
  decoding.readVarUint(decoder);
  return decoding.readVarUint8Array(decoder);
}

function open(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => reject(new Error(`could not connect to ${url}`)), CONNECT_TIMEOUT_MS);
    socket.once("open", () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

function awarenessFrame(clock: number): Uint8Array {
  const state = JSON.stringify({ user: { name: "bench", color: "#30638e" }, cursor: { anchor: clock, head: clock } });
  return encodeAwareness([{ clientId: WRITER_CLIENT_ID, clock, state }]);
}

function percentiles(values: number[]): LatencyStats {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { samples: sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99) };
}

interface Run {
  updateLatencies: number[];
  awarenessLatencies: number[];
  delivered: boolean;
  converged: boolean;
}

/** One writer sends `count` trace edits at `rate`/s into a fresh room with `clients - 1` listeners. */
async function run(target: Target, frames: Uint8Array[], expectedText: string, clients: number, rate: number): Promise<Run> {
  const url = target.roomUrl(`bench-${target.name}-${clients}-${rate}-${Math.random().toString(36).slice(2, 8)}`);
  const writer = await open(url);
  const listeners = await Promise.all(Array.from({ length: clients - 1 }, async () => new Listener(await open(url))));
  // Complete the handshake as a provider with nothing new would (a room closes sockets that never do).
  for (const socket of [writer, ...listeners.map((listener) => listener.socket)]) socket.send(encodeSyncStep2(EMPTY_UPDATE));
  await new Promise((resolve) => setTimeout(resolve, 200)); // let the handshakes settle
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
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await new Promise((resolve) => setTimeout(resolve, DRAIN_MS));
  const updateLatencies = listeners.flatMap((listener) => listener.updates.map((at, index) => at - sentAt[index]!));
  const awarenessLatencies = listeners.flatMap((listener) =>
    [...listener.awareness].flatMap(([clock, at]) => (awarenessSentAt.has(clock) ? [at - awarenessSentAt.get(clock)!] : [])),
  );
  const delivered = listeners.every((listener) => listener.updates.length === frames.length);
  const converged = delivered && listeners.every((listener) => listener.text() === expectedText);
  for (const socket of [writer, ...listeners.map((listener) => listener.socket)]) socket.close();
  return { updateLatencies, awarenessLatencies, delivered, converged };
}

export async function measureLatency(
  target: Target,
  trace: ReturnType<typeof traceFrames>,
  clients: number,
  { rate = 200, seconds = 3 } = {},
): Promise<LatencyResult> {
  const count = rate * seconds;
  const result = await run(target, trace.frames.slice(0, count), trace.textAfter(count), clients, rate);
  return {
    target: target.name,
    clients,
    rate,
    converged: result.converged,
    updates: percentiles(result.updateLatencies),
    awareness: percentiles(result.awarenessLatencies),
  };
}

/** Raises the offered rate step by step (in steps of at most 1.5x) until p99 passes 100 ms or receivers fall behind. */
export async function measureThroughput(
  target: Target,
  trace: ReturnType<typeof traceFrames>,
  clients: number,
  { rates = [250, 500, 750, 1000, 1500, 2000, 3000, 4000], seconds = 2 } = {},
): Promise<ThroughputResult> {
  const steps: ThroughputStep[] = [];
  for (const rate of rates) {
    const count = rate * seconds;
    const result = await run(target, trace.frames.slice(0, count), trace.textAfter(count), clients, rate);
    const step = { rate, p99: percentiles(result.updateLatencies).p99, delivered: result.delivered, converged: result.converged };
    steps.push(step);
    if (!(step.delivered && step.converged && step.p99 < THROUGHPUT_P99_LIMIT_MS)) break;
  }
  const passing = steps.filter((step) => step.delivered && step.converged && step.p99 < THROUGHPUT_P99_LIMIT_MS);
  const sustainedRate = passing.at(-1)?.rate ?? 0;
  return { target: target.name, clients, steps, sustainedRate, deliveriesPerSecond: sustainedRate * (clients - 1) };
}
