/**
 * The HTTP fallback's cost beside WebSockets (client/http-socket.ts, worker/sync-route.ts), on
 * the same edgedoc server in the same run. Every client is a stock y-websocket
 * `WebsocketProvider` (`disableBc`), its own Y.Doc and Awareness in this process, with its
 * presence set on open; an HTTP one is the same provider given `WebSocketPolyfill: HttpSocket`
 * (its serverUrl stays `ws://.../ws`; HttpSocket maps it to `/sync`).
 *
 * - Typing: one writer types single letters at its caret at a steady rate (the typing-latency
 *   scenario's 20 keys/s), the others read; latency from the keypress to the letter in each
 *   reader's document (and until every reader has it), in three combinations: all WebSocket
 *   (the baseline), the writer on HTTP with WebSocket readers, and a WebSocket writer with
 *   every reader on HTTP. Server CPU per 1,000 edits as the other scenarios read it ({@link withCpu}).
 * - Idle: `clients` providers of one transport join one room, settle, and then do nothing for
 *   `seconds` (presence set, nobody typing): the HTTP requests each makes per minute (every
 *   `fetch` HttpSocket makes, counted by wrapping `globalThis.fetch`), the frames each sends
 *   and receives, and workerd CPU per idle client-minute, read over that window only.
 *
 * client/ imports its modules without extensions (bundler resolution), which Node cannot load,
 * so HttpSocket is bundled with esbuild first, as scripts/simulate.ts does for the simulation.
 */
import { build } from "esbuild";
import { performance } from "node:perf_hooks";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as Y from "yjs";
import { percentiles, roomName, withCpu, type CpuClock, type CpuCost, type CpuReading, type LatencyResult, type LatencyStats, type MeasureOptions, type Target } from "./realtime.ts";
import { openTypistsAt, wsSocket, type Typist } from "./typing.ts";

type HttpSocketClass = (typeof import("../client/http-socket.ts"))["HttpSocket"];

export type Transport = "websocket" | "http";

/** Who is on which transport in a typing run; `name` is the row's target in the results. */
export interface Combination {
  name: string;
  writer: Transport;
  readers: Transport;
}

/** The baseline first: the figures give each other combination's ratio to it. */
export const COMBINATIONS: readonly Combination[] = [
  { name: "WebSocket", writer: "websocket", readers: "websocket" },
  { name: "HTTP writer", writer: "http", readers: "websocket" },
  { name: "HTTP readers", writer: "websocket", readers: "http" },
];
export const BASELINE = COMBINATIONS[0]!.name;
/** The idle rows' targets. */
export const IDLE_NAMES: Record<Transport, string> = { websocket: "WebSocket", http: "HTTP" };

const CONVERGE_TIMEOUT_MS = 15_000;
const POLL_MS = 10;

/** HTTP requests by what they do (worker/sync-route.ts). */
export interface RequestCounts {
  /** POST without a session: joins. */
  open: number;
  /** GET: long polls. */
  poll: number;
  /** POST with `seq`: the client's frames. */
  send: number;
  /** DELETE: leaves. */
  leave: number;
}

/** A typing run's figures as the WebSocket latency scenario has them (`target` is the combination's name), and the fallback's own. */
export interface FallbackTypingResult extends Pick<LatencyResult, "target" | "run" | "clients" | "rate" | "edits" | "converged" | "updates" | "everyReader"> {
  writer: Transport;
  readers: Transport;
  /** HTTP requests of all clients from the first key until every reader had the last. */
  requests: RequestCounts;
  /** The HTTP clients' frame posts (the writer's keys, or the readers' presence): request sent to answer headers (the room has handled the frames). */
  sendRoundTrip: LatencyStats;
  /** Connections opened after the first, all clients (a watchdog or a server close). */
  reconnects: number;
  /** This process's CPU (every client's provider, Yjs and HTTP or WebSocket client) over the typing, in cores: near 1, the driver set the pace. */
  driverCores: number;
  presenceSettled: boolean;
  cpu: CpuCost | null;
  error?: string;
}

export interface FallbackIdleResult {
  /** {@link IDLE_NAMES}: the transport of every client. */
  target: string;
  transport: Transport;
  run: number;
  clients: number;
  /** The idle window, measured. */
  windowMs: number;
  requests: RequestCounts;
  requestsPerClientMinute: number;
  /** y-websocket frames received and sent per client and minute of the window (presence renewals and their relays). */
  framesInPerClientMinute: number;
  framesOutPerClientMinute: number;
  reconnects: number;
  /** workerd CPU over the idle window alone, and the same by process. */
  windowCpuMs: number | null;
  windowCpuPerProcessMs: Record<string, number> | null;
  cpuPerClientMinute: number | null;
  /** The whole run (joins, window, leaves, settling), as every scenario reads it. */
  cpu: CpuCost | null;
  error?: string;
}

export interface FallbackOptions extends MeasureOptions {
  /** Writer plus readers. Default 5. */
  clients?: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const NO_REQUESTS: RequestCounts = { open: 0, poll: 0, send: 0, leave: 0 };
const totalCpuMs = (reading: CpuReading) => Object.values(reading.perProcessMs).reduce((sum, ms) => sum + ms, 0);

let httpSocketClass: Promise<HttpSocketClass> | null = null;

/** client/http-socket.ts, bundled once per process (lib0 left to node_modules) and imported. */
function loadHttpSocket(): Promise<HttpSocketClass> {
  return (httpSocketClass ??= (async () => {
    const outfile = fileURLToPath(new URL("../node_modules/.cache/edgedoc-bench/http-socket.mjs", import.meta.url));
    await build({
      entryPoints: [fileURLToPath(new URL("../client/http-socket.ts", import.meta.url))],
      outfile,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22",
      packages: "external",
      logLevel: "warning",
    });
    return ((await import(pathToFileURL(outfile).href)) as typeof import("../client/http-socket.ts")).HttpSocket;
  })());
}

/**
 * Counts the `/sync/` requests this process makes while `counting`, by kind, and times the
 * frame posts, by wrapping `globalThis.fetch` (HttpSocket calls the global) until `restore`.
 */
class RequestCounter {
  counting = false;
  readonly counts: RequestCounts = { ...NO_REQUESTS };
  readonly sendMs: number[] = [];
  private readonly original = globalThis.fetch;

  constructor() {
    const original = this.original;
    globalThis.fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (!this.counting || !url.pathname.startsWith("/sync/")) return original(input, init);
      const method = (init?.method ?? (input instanceof Request ? input.method : "GET")).toUpperCase();
      const kind: keyof RequestCounts = method === "GET" ? "poll" : method === "DELETE" ? "leave" : url.searchParams.has("session") ? "send" : "open";
      this.counts[kind]++;
      if (kind !== "send") return original(input, init);
      const started = performance.now();
      const answered = original(input, init);
      void answered.then(() => this.sendMs.push(performance.now() - started), () => {});
      return answered;
    };
  }

  get total(): number {
    return Object.values(this.counts).reduce((sum, count) => sum + count, 0);
  }

  restore(): void {
    globalThis.fetch = this.original;
  }
}

/**
 * One typist (bench/typing.ts: a stock provider with its own Y.Doc and Awareness) per entry of
 * `transports` in the room at `url`, the HTTP ones on HttpSocket; waits as the typing scenarios do.
 */
async function openClients(url: string, transports: Transport[], cpu: CpuClock | undefined): Promise<{ clients: Typist[]; presenceSettled: boolean }> {
  const HttpSocket = await loadHttpSocket();
  const sockets = transports.map((transport) => (transport === "http" ? HttpSocket : wsSocket(true)));
  const { typists, presenceSettled } = await openTypistsAt(url, sockets, cpu, `fallback (${transports.join(", ")})`);
  return { clients: typists, presenceSettled };
}

const reconnectsOf = (clients: Typist[]) => clients.reduce((sum, client) => sum + Math.max(0, client.connections - 1), 0);
const slug = (name: string) => name.toLowerCase().replace(/\W+/g, "-");

/** One writer types `edits` keys at `rate`/s; the others read. See the module comment. */
export async function measureFallbackTyping(
  target: Target,
  combination: Combination,
  { clients = 5, rate = 20, edits = 300, run = 1, cpu }: FallbackOptions & { rate?: number; edits?: number } = {},
): Promise<FallbackTypingResult> {
  const requests = new RequestCounter();
  try {
    const result = await withCpu(target, cpu, async () => {
      const url = target.roomUrl(roomName(target, `fallback-${slug(combination.name)}`));
      const transports = [combination.writer, ...Array.from({ length: clients - 1 }, () => combination.readers)];
      const opened = await openClients(url, transports, cpu).catch(String);
      const failed = { converged: false, presenceSettled: false, updates: percentiles([]), everyReader: percentiles([]), reconnects: 0, driverCores: 0, edits: 0 };
      if (typeof opened === "string") return { ...failed, error: opened };
      const { clients: all, presenceSettled } = opened;
      try {
        const [writer, ...readers] = all as [Typist, ...Typist[]];
        const typedAt: number[] = [];
        const arrivedAt = readers.map(() => [] as number[]);
        readers.forEach((reader, index) =>
          reader.doc.on("afterTransaction", (transaction: Y.Transaction) => {
            const before = transaction.beforeState.get(writer.doc.clientID) ?? 0;
            const after = transaction.afterState.get(writer.doc.clientID) ?? 0;
            const at = performance.now();
            for (let key = before; key < after; key++) arrivedAt[index]![key] = at;
          }),
        );
        requests.counting = true;
        const driverBefore = process.cpuUsage();
        const started = performance.now();
        // Bounded by the schedule: `edits` keys at `rate`/s.
        while (writer.keys < edits) {
          const due = Math.min(edits, Math.floor(((performance.now() - started) * rate) / 1000) + 1);
          while (writer.keys < due) {
            typedAt.push(performance.now());
            // At the caret, no jumps: the letters the readers are timed on go where the writer types.
            writer.typeKey(0);
          }
          await sleep(1);
        }
        const convergedBy = performance.now() + CONVERGE_TIMEOUT_MS;
        const text = () => writer.text.toString();
        while (!readers.every((reader) => reader.holds(writer) === edits && reader.text.toString() === text())) {
          if (performance.now() > convergedBy) break;
          await sleep(POLL_MS);
        }
        requests.counting = false;
        const driverUsed = process.cpuUsage(driverBefore);
        const driverCores = (driverUsed.user + driverUsed.system) / 1000 / Math.max(1, performance.now() - started);
        const converged = readers.every((reader) => reader.holds(writer) === edits && reader.text.toString() === text());
        const updates = arrivedAt.flatMap((times) => times.flatMap((at, key) => (at === undefined ? [] : [at - typedAt[key]!])));
        const everyReader = typedAt.flatMap((typed, key) => (arrivedAt.every((times) => times[key] !== undefined) ? [Math.max(...arrivedAt.map((times) => times[key]!)) - typed] : []));
        return { converged, presenceSettled, updates: percentiles(updates), everyReader: percentiles(everyReader), reconnects: reconnectsOf(all), driverCores, edits };
      } finally {
        for (const client of all) client.close();
      }
    });
    return {
      target: combination.name,
      run,
      writer: combination.writer,
      readers: combination.readers,
      clients,
      rate,
      ...result,
      edits,
      requests: { ...requests.counts },
      sendRoundTrip: percentiles(requests.sendMs),
    };
  } finally {
    requests.restore();
  }
}

/** `clients` providers on `transport` idle in one room for `seconds`. See the module comment. */
export async function measureFallbackIdle(
  target: Target,
  transport: Transport,
  { clients = 5, seconds = 60, run = 1, cpu }: FallbackOptions & { seconds?: number } = {},
): Promise<FallbackIdleResult> {
  const requests = new RequestCounter();
  try {
    const result = await withCpu(target, cpu, async () => {
      const url = target.roomUrl(roomName(target, `fallback-idle-${transport}`));
      const opened = await openClients(url, Array.from({ length: clients }, () => transport), cpu).catch(String);
      const failed = { windowMs: 0, framesIn: 0, framesOut: 0, reconnects: 0, windowCpuMs: null, windowCpuPerProcessMs: null, edits: 0 };
      if (typeof opened === "string") return { ...failed, error: opened };
      const { clients: all } = opened;
      try {
        const framesBefore = all.map((client) => [client.framesInTotal, client.framesOut] as const);
        const reconnectsBefore = reconnectsOf(all);
        const before = cpu?.();
        requests.counting = true;
        const started = performance.now();
        await sleep(seconds * 1000);
        const windowMs = performance.now() - started;
        requests.counting = false;
        const after = cpu?.();
        const framesIn = all.reduce((sum, client, index) => sum + client.framesInTotal - framesBefore[index]![0], 0);
        const framesOut = all.reduce((sum, client, index) => sum + client.framesOut - framesBefore[index]![1], 0);
        const windowCpuMs = before && after ? totalCpuMs(after) - totalCpuMs(before) : null;
        const windowCpuPerProcessMs =
          before && after ? Object.fromEntries(Object.entries(after.perProcessMs).map(([role, cpuMs]) => [role, cpuMs - (before.perProcessMs[role] ?? 0)])) : null;
        return { windowMs, framesIn, framesOut, reconnects: reconnectsOf(all) - reconnectsBefore, windowCpuMs, windowCpuPerProcessMs, edits: 0 };
      } finally {
        for (const client of all) client.close();
      }
    });
    const clientMinutes = (clients * result.windowMs) / 60_000;
    const perClientMinute = (value: number) => (clientMinutes > 0 ? value / clientMinutes : NaN);
    return {
      target: IDLE_NAMES[transport],
      transport,
      run,
      clients,
      windowMs: result.windowMs,
      requests: { ...requests.counts },
      requestsPerClientMinute: perClientMinute(requests.total),
      framesInPerClientMinute: perClientMinute(result.framesIn),
      framesOutPerClientMinute: perClientMinute(result.framesOut),
      reconnects: result.reconnects,
      windowCpuMs: result.windowCpuMs,
      windowCpuPerProcessMs: result.windowCpuPerProcessMs,
      cpuPerClientMinute: result.windowCpuMs === null ? null : perClientMinute(result.windowCpuMs),
      cpu: result.cpu,
      ...("error" in result ? { error: result.error } : {}),
    };
  } finally {
    requests.restore();
  }
}

const ms = (value: number) => (Number.isNaN(value) ? "none" : `${value.toFixed(1)} ms`);
/** workerd CPU by process: wrangler dev's proxy (which every request and socket passes) and the runtime. */
const cpuSplit = (cpu: Pick<CpuCost, "perProcessMs">) => Object.entries(cpu.perProcessMs).map(([role, cpuMs]) => `${role} ${cpuMs.toFixed(0)} ms`).join(", ");
const requestsText = (counts: RequestCounts) =>
  Object.entries(counts)
    .filter(([, count]) => count > 0)
    .map(([kind, count]) => `${count} ${kind}`)
    .join(", ");

/** Each run's rows: typing per combination, then idle per transport. */
export function reportFallback(typing: FallbackTypingResult[], idle: FallbackIdleResult[]): void {
  if (typing.length > 0) {
    const { clients, rate, edits } = typing[0]!;
    console.log(
      `\nHTTP fallback, typing, each run: one stock provider types ${edits} keys at ${rate}/s, ${clients - 1} read; keypress to the letter in a reader's document` +
        " (per delivery, and until every reader has it); HTTP requests from the first key until every reader had the last",
    );
    console.table(
      typing.map((r) => ({
        run: r.run,
        combination: r.target,
        "writer / readers": `${r.writer} / ${r.readers}`,
        converged: r.error ? `FAILED (${r.error})` : r.converged ? "yes" : "NO",
        "p50": ms(r.updates.p50),
        "p95": ms(r.updates.p95),
        "p99": ms(r.updates.p99),
        "every reader p50 / p99": `${ms(r.everyReader.p50)} / ${ms(r.everyReader.p99)}`,
        "HTTP requests / key": r.edits > 0 && Object.values(r.requests).some((count) => count > 0) ? `${(Object.values(r.requests).reduce((a, b) => a + b, 0) / r.edits).toFixed(2)} (${requestsText(r.requests)})` : "",
        "frame POSTs p50 / p99": r.sendRoundTrip.samples > 0 ? `${ms(r.sendRoundTrip.p50)} / ${ms(r.sendRoundTrip.p99)}` : "",
        reconnects: r.reconnects,
        "presence settled": r.presenceSettled ? "yes" : "NO",
        "driver (cores)": r.driverCores.toFixed(2),
        "CPU ms / 1,000 edits": r.cpu ? r.cpu.perThousandEdits.toFixed(0) : "",
        "CPU split": r.cpu ? cpuSplit(r.cpu) : "",
        "others (cores)": r.cpu ? r.cpu.othersCores.toFixed(2) : "",
      })),
    );
  }
  if (idle.length > 0) {
    const { clients, windowMs } = idle[0]!;
    console.log(`\nHTTP fallback, idle, each run: ${clients} stock providers, presence set, nobody typing, for ${(windowMs / 1000).toFixed(0)} s; per client and minute of that window`);
    console.table(
      idle.map((r) => ({
        run: r.run,
        transport: r.target,
        "requests / client-min": r.error ? `FAILED (${r.error})` : r.requestsPerClientMinute.toFixed(1),
        requests: requestsText(r.requests),
        "frames in / out per client-min": `${r.framesInPerClientMinute.toFixed(1)} / ${r.framesOutPerClientMinute.toFixed(1)}`,
        reconnects: r.reconnects,
        "workerd CPU in window": r.windowCpuMs === null ? "" : `${r.windowCpuMs.toFixed(0)} ms (${cpuSplit({ perProcessMs: r.windowCpuPerProcessMs ?? {} })})`,
        "CPU ms / client-min": r.cpuPerClientMinute === null ? "" : r.cpuPerClientMinute.toFixed(1),
        "others (cores)": r.cpu ? r.cpu.othersCores.toFixed(2) : "",
      })),
    );
  }
}
