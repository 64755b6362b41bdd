/**
 * The crowd scenario (issue 14): N stock `y-websocket` providers in one room, each typing
 * `keysPerSecond` keys with a cursor move per key, against edgedoc under its default limits
 * (`wrangler.toml`, door rate limits included) and against a peer server, in the same run.
 *
 * Stock providers re-send every presence change they receive, so each client sends its own
 * 5 cursor moves a second plus an echo of everyone else's: at 50 clients about 250 awareness
 * frames a second per socket, beside 5 edits. The room must close nobody for it.
 *
 * The driver is spread over several processes (bench/crowd-client.ts), each hosting a share
 * of the clients, and each reports its own CPU and event-loop utilisation, with the server's
 * CPU (wrangler and workerd) and the machine's, so that a saturated driver is not taken for
 * a slow server. All timestamps are the machine's monotonic clock, which every process shares.
 *
 * `measureCrowd(options)` runs each size against each target in turn, each run on a fresh
 * `wrangler dev` (only one up at a time), and `reportCrowd(results)` prints the tables.
 * Standalone:
 *
 *   node --experimental-transform-types bench/crowd.ts [--sizes 20,50] [--seconds 20] [--drivers 4] [--targets edgedoc,peer]
 *     [--url ws://host/ws] [--json out.json] [--no-deflate] [--no-echo] [--nice 10] [--converge-timeout 30] [--profile dir]
 */
import { fork, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { cpus, setPriority } from "node:os";
import { parseArgs } from "node:util";
import { removePersistDir, startDevServer, type DevServer } from "../test/node/wrangler.ts";
import { now, type ChildCommand, type ChildReply, type ClientDigest, type ClientReport, type DriverUsage } from "./crowd-client.ts";

/** A server to measure: one `wrangler dev` started for it, or a running one at `url`. */
export interface CrowdTarget {
  name: string;
  /** A running server's provider URL (the WebsocketProvider serverUrl; the room is appended). No server is started. */
  url?: string;
  /** The wrangler config to start. Default: the root wrangler.toml (edgedoc with its default limits). */
  config?: string;
  /** The provider URL on the started server. */
  serverUrl?: (server: DevServer) => string;
}

/** edgedoc as deployed: the root wrangler.toml, default limits (200 messages/s per socket, door rate limits). */
export const EDGEDOC_TARGET: CrowdTarget = { name: "edgedoc", serverUrl: (server) => server.wsUrl };

/**
 * The peer: y-partyserver in the benchmark's Worker (bench/wrangler.toml). Its rooms are
 * `/parties/<party>/<room>`, so the provider URL is `/parties/<party>`.
 */
export const PEER_TARGET: CrowdTarget = {
  name: "y-partyserver",
  config: "bench/wrangler.toml",
  serverUrl: (server) => `${server.origin.replace(/^http/, "ws")}/parties/${PEER_PARTY}`,
};
/** The party name bench/worker.ts serves y-partyserver under. */
export const PEER_PARTY = "peer";

export interface CrowdOptions {
  /** Clients in the room, one run each. Default [20, 50]. */
  sizes?: number[];
  /** Seconds of typing per run. Default 20. */
  seconds?: number;
  /** Keys per client per second, each with a cursor move. Default 5. */
  keysPerSecond?: number;
  /** Driver processes the clients are spread over. Default 4. */
  drivers?: number;
  /** Default: edgedoc, then the peer. */
  targets?: CrowdTarget[];
  /** How long the clients get, once typing stops, to end with the same text. Default 30 s. */
  convergeTimeoutMs?: number;
  /** permessage-deflate, which `ws` (like browsers) negotiates by default. Default true. */
  deflate?: boolean;
  /**
   * Stock providers re-send every presence change they receive. false makes each client send
   * only its own (not stock: a diagnostic of what the echoes cost). Default true.
   */
  echo?: boolean;
  /**
   * Scheduling niceness of the driver processes. Default 10: on a machine with fewer cores than
   * driver processes plus the server's threads, the server then gets the CPU first and an
   * overloaded driver shows as its own lag (typing lag, ELU), not as the server's latency.
   */
  nice?: number;
  /** Write a V8 CPU profile of each driver process into this directory. */
  cpuProfileDir?: string;
  /** Progress lines. Default: console.log. */
  log?: (line: string) => void;
}

export interface Percentiles {
  samples: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

export interface CrowdResult {
  target: string;
  clients: number;
  drivers: number;
  keysPerSecond: number;
  /** Whether the clients negotiated permessage-deflate, and echoed others' presence (both true for stock clients). */
  deflate: boolean;
  echo: boolean;
  /** Niceness of the driver processes. */
  nice: number;
  /** Typing window, s. */
  seconds: number;
  /** Keys typed (one edit and one cursor move each). */
  editsSent: number;
  /** Edits times the other clients: what should arrive. */
  deliveriesExpected: number;
  deliveriesSeen: number;
  /** Closes no client asked for, by code ("1006" for a dropped socket). Must be empty. */
  serverCloses: Record<string, number>;
  closeReasons: string[];
  /** When the unasked closes came, in s from the start of typing (distinct tenths, at most 10). */
  closeTimes: number[];
  /**
   * Times wrangler reloaded the server during the run (it rebuilds when a source file changes,
   * dropping every socket with 1006): a run with a reload measured an edit, not the server.
   */
  serverReloads: number;
  /** Closes by a provider's own watchdog (no frame from the server for 30 s). Must be 0 too. */
  watchdogCloses: number;
  connectionErrors: number;
  reconnects: number;
  /** Every client ended with the same text, holding every key typed. */
  converged: boolean;
  /** From the last key typed to the last remote edit any client integrated; null if not converged. */
  convergeMs: number | null;
  /** Keystroke at the sender to the edit being in each other client's document, ms. */
  editLatency: Percentiles;
  /** Edit latency p50 of the keys typed in each quarter of the window: growing means a queue builds up somewhere. */
  editP50ByQuarter: number[];
  /** Cursor move at the sender to the presence applied at each other client, ms. */
  cursorLatency: Percentiles;
  cursorDeliveriesExpected: number;
  /** Due time to the key actually typed, ms: the driver's own lag. */
  typingLag: Percentiles;
  /** Per client per second, in the typing window. */
  awarenessReceivedPerClientPerSecond: number;
  updatesReceivedPerClientPerSecond: number;
  /** Own cursor moves plus echoes of others' (stock provider behaviour). */
  awarenessSentPerClientPerSecond: number;
  driverUsage: DriverUsage[];
  /** CPU of all driver processes, in cores (1.0 = one core busy). */
  driverCores: number;
  /** CPU of this coordinating process (it only waits), in cores. */
  coordinatorCores: number;
  /** CPU of the server's process group (wrangler, its proxy and workerd), in cores; null when not measurable. */
  serverCores: number | null;
  /** The server's busiest thread: near 1.0 means the room's isolate thread is saturated. */
  serverBusiestThread: { name: string; cores: number } | null;
  /** The machine's busy CPU, in cores, and its cores. */
  machineCores: number | null;
  cores: number;
  error?: string;
}

const CONNECT_TIMEOUT_MS = 45_000;
const SETTLE_MS = 1_000;
const START_DELAY_MS = 500;
const REPLY_TIMEOUT_MS = 30_000;
const DIGEST_INTERVAL_MS = 100;
const CLIENT_MODULE = new URL("./crowd-client.ts", import.meta.url);

export async function measureCrowd(options: CrowdOptions = {}): Promise<CrowdResult[]> {
  const { sizes = [20, 50], targets = [EDGEDOC_TARGET, PEER_TARGET], log = console.log } = options;
  const results: CrowdResult[] = [];
  // A fresh server for every run: a room that fell behind keeps its server's one isolate
  // thread busy long after its clients left, and the door's rate limits start from zero.
  for (const clients of sizes) {
    for (const target of targets) {
      log(`crowd: ${target.name}, ${clients} clients`);
      let server: DevServer | null = null;
      let result: CrowdResult;
      try {
        if (!target.url) server = await startDevServer(target.config ? { config: target.config } : {});
        result = await runCrowd(target.name, target.url ?? target.serverUrl!(server!), clients, server, options);
      } catch (error) {
        result = failed(target.name, clients, options, String(error));
      } finally {
        await server?.stop();
        if (server) removePersistDir(server.persistDir);
      }
      results.push(result);
      log(`crowd: ${summary(result)}`);
    }
  }
  return results;
}

/** A driver process and its replies, taken in order by type. */
class Driver {
  readonly child: ChildProcess;
  private readonly inbox: ChildReply[] = [];
  private waiter: (() => void) | null = null;
  exited = false;
  stderr = "";

  constructor(
    readonly clientIndexes: number[],
    nice: number,
    cpuProfileDir?: string,
  ) {
    this.child = fork(CLIENT_MODULE, [], {
      execArgv: ["--experimental-transform-types", "--disable-warning=ExperimentalWarning", ...(cpuProfileDir ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfileDir}`] : [])],
      serialization: "advanced",
      stdio: ["ignore", "inherit", "pipe", "ipc"],
    });
    try {
      setPriority(this.child.pid!, nice);
    } catch {
      // Not permitted here: the driver competes with the server at the same priority.
    }
    this.child.stderr!.on("data", (chunk) => (this.stderr = (this.stderr + chunk).slice(-4_000)));
    this.child.on("message", (message: ChildReply) => {
      this.inbox.push(message);
      this.waiter?.();
    });
    this.child.on("exit", () => {
      this.exited = true;
      this.waiter?.();
    });
  }

  send(command: ChildCommand): void {
    this.child.send(command);
  }

  /** The next reply of one of `types` (earlier replies of other types are dropped), or an error after `timeoutMs`. */
  async next<T extends ChildReply["type"]>(types: T[], timeoutMs: number): Promise<Extract<ChildReply, { type: T }>> {
    const deadline = now() + timeoutMs;
    for (;;) {
      const index = this.inbox.findIndex((message) => (types as string[]).includes(message.type));
      if (index >= 0) return this.inbox.splice(0, index + 1).at(-1) as Extract<ChildReply, { type: T }>;
      if (this.exited) throw new Error(`driver ${this.child.pid} exited (${this.child.exitCode}) waiting for ${types.join("/")}: ${this.stderr}`);
      const left = deadline - now();
      if (left <= 0) throw new Error(`driver ${this.child.pid}: no ${types.join("/")} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = null;
    }
  }

  async close(): Promise<void> {
    if (this.exited) return;
    try {
      this.send({ type: "close" });
      await this.next(["closed"], 5_000);
    } catch {
      // Killed below.
    }
    const exited = new Promise<void>((resolve) => (this.exited ? resolve() : this.child.once("exit", () => resolve())));
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 3_000);
    await exited;
    clearTimeout(timer);
  }
}

async function runCrowd(target: string, serverUrl: string, clients: number, server: DevServer | null, options: CrowdOptions): Promise<CrowdResult> {
  const { seconds = 20, keysPerSecond = 5, drivers: driverCount = 4, convergeTimeoutMs = 30_000, deflate = true, echo = true } = options;
  const room = `crowd-${clients}-${Math.random().toString(36).slice(2, 10)}`;
  const shares = Array.from({ length: Math.min(driverCount, clients) }, (_, d) =>
    Array.from({ length: clients }, (_, index) => index).filter((index) => index % Math.min(driverCount, clients) === d),
  );
  const drivers = shares.map((share) => new Driver(share, options.nice ?? 10, options.cpuProfileDir));
  const outputMark = server?.output().length ?? 0;
  const reloads = () => (server ? (server.output().slice(outputMark).match(/Reloading local server/g) ?? []).length : 0);
  try {
    // Connect every client and wait until each has synced (bounded).
    for (const driver of drivers) driver.send({ type: "connect", serverUrl, room, clientIndexes: driver.clientIndexes, deflate, echo });
    const failures = [];
    for (const driver of drivers) {
      const reply = await driver.next(["connected", "connect-failed"], CONNECT_TIMEOUT_MS);
      if (reply.type === "connect-failed") failures.push(reply.error);
    }
    if (failures.length > 0) throw new Error(failures.join("; "));
    await new Promise((resolve) => setTimeout(resolve, SETTLE_MS)); // presence of everyone settles

    // Type, all drivers on one schedule; sample the server's and the machine's CPU over the same window.
    const durationMs = seconds * 1000;
    const startAt = now() + START_DELAY_MS;
    for (const driver of drivers) driver.send({ type: "type", startAt, durationMs, keysPerSecond });
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - now())));
    const cpuStart = { at: now(), server: server ? groupCpu(server.pid) : null, machine: machineCpu(), coordinator: process.cpuUsage() };
    const typed = [];
    for (const driver of drivers) typed.push(await driver.next(["typed"], durationMs + REPLY_TIMEOUT_MS));
    const windowMs = now() - cpuStart.at;
    const serverEnd = server ? groupCpu(server.pid) : null;
    const machineEnd = machineCpu();
    const coordinator = process.cpuUsage(cpuStart.coordinator);
    const editsSent = typed.reduce((sum, reply) => sum + reply.keys, 0);
    const lastSentAt = Math.max(...typed.map((reply) => reply.lastSentAt));

    // Wait (bounded) until every client holds the same text with every key in it.
    const convergeDeadline = now() + convergeTimeoutMs;
    let converged = false;
    while (!converged && now() < convergeDeadline) {
      const digests: ClientDigest[] = [];
      for (const driver of drivers) {
        driver.send({ type: "digest" });
        digests.push(...(await driver.next(["digest"], REPLY_TIMEOUT_MS)).digests);
      }
      converged = digests.every((digest) => digest.length === editsSent && digest.hash === digests[0]!.hash);
      if (!converged) await new Promise((resolve) => setTimeout(resolve, DIGEST_INTERVAL_MS));
    }

    const reports: ClientReport[] = [];
    for (const driver of drivers) {
      driver.send({ type: "report" });
      reports.push(...(await driver.next(["report"], REPLY_TIMEOUT_MS)).clients);
    }
    const usage = typed.map((reply) => reply.usage);
    return {
      serverReloads: reloads(),
      ...analyse(reports, { target, clients, drivers: drivers.length, keysPerSecond, deflate, echo, nice: options.nice ?? 10, seconds, editsSent, converged, lastSentAt, startAt }),
      driverUsage: usage,
      driverCores: usage.reduce((sum, u) => sum + u.cpuMs, 0) / windowMs,
      coordinatorCores: (coordinator.user + coordinator.system) / 1000 / windowMs,
      serverCores: serverUsage(cpuStart.server, serverEnd, windowMs)?.cores ?? null,
      serverBusiestThread: serverUsage(cpuStart.server, serverEnd, windowMs)?.busiestThread ?? null,
      machineCores: cpuStart.machine && machineEnd ? ((machineEnd.busy - cpuStart.machine.busy) / (machineEnd.total - cpuStart.machine.total)) * cpus().length : null,
      cores: cpus().length,
    };
  } catch (error) {
    return { ...failed(target, clients, options, String(error)), serverReloads: reloads() };
  } finally {
    await Promise.all(drivers.map((driver) => driver.close()));
  }
}

type RunFacts = Pick<CrowdResult, "target" | "clients" | "drivers" | "keysPerSecond" | "deflate" | "echo" | "nice" | "seconds" | "editsSent" | "converged"> & {
  lastSentAt: number;
  startAt: number;
};

function analyse(reports: ClientReport[], facts: RunFacts): Omit<CrowdResult, "driverUsage" | "driverCores" | "coordinatorCores" | "serverCores" | "serverBusiestThread" | "machineCores" | "cores" | "serverReloads"> {
  const { lastSentAt, startAt, ...rest } = facts;
  const edit: number[] = [];
  const quarters: number[][] = [[], [], [], []];
  const quarterOf = (sentAt: number) => Math.max(0, Math.min(3, Math.floor((4 * (sentAt - startAt)) / (facts.seconds * 1000))));
  const cursor: number[] = [];
  const lag: number[] = [];
  let deliveriesExpected = 0;
  let cursorDeliveriesExpected = 0;
  for (const sender of reports) {
    for (let k = 0; k < sender.sent.length; k++) lag.push(sender.sent[k]! - sender.scheduled[k]!);
    const cursorsSent = sender.cursorsSent;
    for (const receiver of reports) {
      if (receiver === sender) continue;
      const seen = receiver.seen.get(sender.clientId);
      deliveriesExpected += sender.sent.length;
      for (let k = 0; k < sender.sent.length; k++) {
        const at = seen?.[k];
        if (at === undefined || Number.isNaN(at)) continue;
        edit.push(at - sender.sent[k]!);
        quarters[quarterOf(sender.sent[k]!)]!.push(at - sender.sent[k]!);
      }
      const seenCursors = new Map<number, number>();
      const pairs = receiver.cursorsSeen.get(sender.clientId) ?? new Float64Array();
      for (let i = 0; i < pairs.length; i += 2) seenCursors.set(pairs[i]!, pairs[i + 1]!);
      for (let i = 0; i < cursorsSent.length; i += 2) {
        cursorDeliveriesExpected++;
        const at = seenCursors.get(cursorsSent[i]!);
        if (at !== undefined) cursor.push(at - cursorsSent[i + 1]!);
      }
    }
  }
  const serverCloses: Record<string, number> = {};
  const closeReasons = new Set<string>();
  const closeTimes = new Set<number>();
  for (const report of reports) {
    for (const close of report.closes) {
      closeTimes.add(Math.round((close.at - startAt) / 100) / 10);
      serverCloses[close.code] = (serverCloses[close.code] ?? 0) + 1;
      if (close.reason) closeReasons.add(`${close.code} ${close.reason}`);
    }
  }
  const perClientPerSecond = (count: (report: ClientReport) => number) =>
    reports.reduce((sum, report) => sum + count(report), 0) / reports.length / facts.seconds;
  const lastChange = Math.max(...reports.map((report) => report.lastRemoteChangeAt));
  return {
    ...rest,
    deliveriesExpected,
    deliveriesSeen: edit.length,
    serverCloses,
    closeReasons: [...closeReasons].slice(0, 5),
    closeTimes: [...closeTimes].sort((a, b) => a - b).slice(0, 10),
    watchdogCloses: reports.reduce((sum, report) => sum + report.watchdogCloses, 0),
    connectionErrors: reports.reduce((sum, report) => sum + report.connectionErrors, 0),
    reconnects: reports.reduce((sum, report) => sum + report.reconnects, 0),
    convergeMs: facts.converged ? Math.max(0, lastChange - lastSentAt) : null,
    editLatency: percentiles(edit),
    editP50ByQuarter: quarters.map((quarter) => percentiles(quarter).p50),
    cursorLatency: percentiles(cursor),
    cursorDeliveriesExpected,
    typingLag: percentiles(lag),
    awarenessReceivedPerClientPerSecond: perClientPerSecond((report) => report.receivedInWindow[1] ?? 0),
    updatesReceivedPerClientPerSecond: perClientPerSecond((report) => report.receivedInWindow[0] ?? 0),
    awarenessSentPerClientPerSecond: perClientPerSecond((report) => report.sentInWindow[1] ?? 0),
  };
}

function percentiles(values: number[]): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  return { samples: sorted.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: sorted.at(-1) ?? NaN };
}

const NO_STATS: Percentiles = { samples: 0, p50: NaN, p95: NaN, p99: NaN, max: NaN };

function failed(target: string, clients: number, options: CrowdOptions, error: string): CrowdResult {
  return {
    target,
    clients,
    drivers: Math.min(options.drivers ?? 4, clients),
    keysPerSecond: options.keysPerSecond ?? 5,
    deflate: options.deflate ?? true,
    echo: options.echo ?? true,
    nice: options.nice ?? 10,
    seconds: options.seconds ?? 20,
    editsSent: 0,
    deliveriesExpected: 0,
    deliveriesSeen: 0,
    serverCloses: {},
    closeReasons: [],
    closeTimes: [],
    serverReloads: 0,
    watchdogCloses: 0,
    connectionErrors: 0,
    reconnects: 0,
    converged: false,
    convergeMs: null,
    editLatency: NO_STATS,
    editP50ByQuarter: [],
    cursorLatency: NO_STATS,
    cursorDeliveriesExpected: 0,
    typingLag: NO_STATS,
    awarenessReceivedPerClientPerSecond: 0,
    updatesReceivedPerClientPerSecond: 0,
    awarenessSentPerClientPerSecond: 0,
    driverUsage: [],
    driverCores: 0,
    coordinatorCores: 0,
    serverCores: null,
    serverBusiestThread: null,
    machineCores: null,
    cores: cpus().length,
    error,
  };
}

/** CPU (user plus system, ms) of every thread of every process in process group `pgid`, by "pid/tid comm" (Linux /proc); null elsewhere. */
function groupCpu(pgid: number): Map<string, number> | null {
  const threads = new Map<string, number>();
  const fieldsOf = (stat: string) => ({ comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), fields: stat.slice(stat.lastIndexOf(")") + 2).split(" ") });
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((entry) => /^\d+$/.test(entry));
  } catch {
    return null;
  }
  for (const pid of pids) {
    try {
      // Fields after "(comm)": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
      if (Number(fieldsOf(readFileSync(`/proc/${pid}/stat`, "utf8")).fields[2]) !== pgid) continue;
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const { comm, fields } = fieldsOf(readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8"));
        threads.set(`${pid}/${tid} ${comm}`, (Number(fields[11]) + Number(fields[12])) * TICK_MS);
      }
    } catch {
      // The process ended meanwhile.
    }
  }
  return threads;
}

/** USER_HZ is 100 on Linux: a tick of /proc CPU times is 10 ms. */
const TICK_MS = 10;

/** The server's CPU over a window, in cores: all of it, and its busiest thread (the room's isolate, when it is the bottleneck). */
function serverUsage(start: Map<string, number> | null, end: Map<string, number> | null, windowMs: number): { cores: number; busiestThread: { name: string; cores: number } } | null {
  if (!start || !end) return null;
  let total = 0;
  let busiest = { name: "", cores: 0 };
  for (const [name, ms] of end) {
    const used = ms - (start.get(name) ?? 0);
    total += used;
    if (used / windowMs > busiest.cores) busiest = { name: name.replace(/^\d+\//, ""), cores: used / windowMs };
  }
  return { cores: total / windowMs, busiestThread: busiest };
}

/** The machine's busy and total CPU time since boot (Linux /proc/stat), or null. */
function machineCpu(): { busy: number; total: number } | null {
  try {
    const fields = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.slice(0, 8).reduce((sum, value) => sum + value, 0);
    const idle = fields[3]! + fields[4]!; // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

const ms = (value: number) => (Number.isNaN(value) ? "none" : `${value.toFixed(1)} ms`);
const cores = (value: number | null) => (value === null ? "n/a" : value.toFixed(2));

function closesText(r: CrowdResult): string {
  const entries = Object.entries(r.serverCloses).map(([code, count]) => `${count}x${code}`);
  if (r.watchdogCloses > 0) entries.push(`${r.watchdogCloses}x watchdog`);
  if (r.connectionErrors > 0) entries.push(`${r.connectionErrors} connection errors`);
  return entries.length === 0 ? "0" : entries.join(" ");
}

function summary(r: CrowdResult): string {
  if (r.error) return `${r.target} ${r.clients}: FAILED: ${r.error}`;
  return (
    `${r.target} ${r.clients}: ${r.editsSent} edits, closes ${closesText(r)}${r.serverReloads ? ` (SERVER RELOADED ${r.serverReloads}x)` : ""}, converged ${r.converged ? `yes (${ms(r.convergeMs!)})` : "NO"}, ` +
    `edit p50/p99 ${ms(r.editLatency.p50)}/${ms(r.editLatency.p99)}, driver ${cores(r.driverCores)} cores, server ${cores(r.serverCores)}, machine ${cores(r.machineCores)}/${r.cores}`
  );
}

/** Prints the crowd tables: outcome and latency, load and CPU, each driver process, and the first target against the others. */
export function reportCrowd(results: CrowdResult[]): void {
  if (results.length === 0) return;
  const { keysPerSecond, seconds, deflate, echo } = results[0]!;
  const variant = [deflate ? "" : "without permessage-deflate", echo ? "" : "NOT echoing others' presence (not stock)"].filter(Boolean).join(", ");
  console.log(
    `\nCrowd: ${variant ? "" : "stock "}y-websocket providers${variant ? ` (${variant})` : ""} in one room, each typing ${keysPerSecond} keys/s with a cursor move per key, for ${seconds} s; ` +
      "latency from a key typed to the edit in each other client's document",
  );
  console.table(
    results.map((r) => ({
      target: r.target,
      clients: r.clients,
      edits: r.editsSent,
      "server closes": r.error ? "FAILED" : closesText(r),
      reconnects: r.reconnects,
      converged: r.converged ? `yes, ${ms(r.convergeMs!)}` : "NO",
      delivered: `${r.deliveriesSeen}/${r.deliveriesExpected}`,
      "edit p50": ms(r.editLatency.p50),
      "edit p95": ms(r.editLatency.p95),
      "edit p99": ms(r.editLatency.p99),
      "edit max": ms(r.editLatency.max),
      "cursor p50 / p99": `${ms(r.cursorLatency.p50)} / ${ms(r.cursorLatency.p99)}`,
    })),
  );
  console.log("Load over the typing window (cores: 1.00 = one core busy; other = the machine's busy CPU not used by driver, server or coordinator):");
  console.table(
    results.map((r) => ({
      target: r.target,
      clients: r.clients,
      "awareness in / out per client/s": `${Math.round(r.awarenessReceivedPerClientPerSecond)} / ${Math.round(r.awarenessSentPerClientPerSecond)}`,
      "edits in per client/s": Math.round(r.updatesReceivedPerClientPerSecond),
      "edit p50 by quarter": r.editP50ByQuarter.map((p50) => (Number.isNaN(p50) ? "-" : p50.toFixed(0))).join(" / "),
      "typing lag p99": ms(r.typingLag.p99),
      "driver cores": cores(r.driverCores),
      "driver max ELU": r.driverUsage.length ? Math.max(...r.driverUsage.map((u) => u.elu)).toFixed(2) : "n/a",
      "server cores": cores(r.serverCores),
      "server busiest thread": r.serverBusiestThread ? `${r.serverBusiestThread.cores.toFixed(2)} ${r.serverBusiestThread.name}` : "n/a",
      "other cores": r.machineCores === null ? "n/a" : cores(r.machineCores - r.driverCores - (r.serverCores ?? 0) - r.coordinatorCores),
      "machine busy": r.machineCores === null ? "n/a" : `${r.machineCores.toFixed(2)}/${r.cores}`,
    })),
  );
  console.log("Driver processes (CPU of each whole process, zlib threads included, in % of one core; ELU of its event loop):");
  console.table(
    results.map((r) => ({
      target: r.target,
      clients: r.clients,
      drivers: r.driverUsage.map((u) => `${u.clients} clients: ${((100 * u.cpuMs) / u.windowMs).toFixed(0)}% cpu, elu ${u.elu.toFixed(2)}`).join("; "),
    })),
  );
  const [first, ...others] = [...new Set(results.map((r) => r.target))];
  if (others.length > 0) {
    console.log(`Ratios ${first} / peer, same run (below 1: ${first} faster):`);
    const ratio = (x?: number, y?: number) => (x && y && !Number.isNaN(x) && !Number.isNaN(y) ? (x / y).toFixed(2) : "n/a");
    console.table(
      others.flatMap((other) =>
        [...new Set(results.map((r) => r.clients))].map((clients) => {
          const a = results.find((r) => r.target === first && r.clients === clients);
          const b = results.find((r) => r.target === other && r.clients === clients);
          return {
            clients,
            peer: other,
            "edit p50": ratio(a?.editLatency.p50, b?.editLatency.p50),
            "edit p99": ratio(a?.editLatency.p99, b?.editLatency.p99),
            "cursor p50": ratio(a?.cursorLatency.p50, b?.cursorLatency.p50),
            "cursor p99": ratio(a?.cursorLatency.p99, b?.cursorLatency.p99),
          };
        }),
      ),
    );
  }
  for (const r of results) if (r.error) console.log(`  ${r.target} ${r.clients}: MEASUREMENT FAILED: ${r.error}`);
  for (const r of results) {
    if (Object.keys(r.serverCloses).length > 0) {
      console.log(`  ${r.target} ${r.clients}: closes at ${r.closeTimes.join(", ")} s from the start of typing${r.closeReasons.length ? `; reasons: ${r.closeReasons.join("; ")}` : ""}`);
    }
    if (r.serverReloads > 0) console.log(`  ${r.target} ${r.clients}: wrangler reloaded the server ${r.serverReloads}x during the run (a source file changed): not a measurement of the server`);
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      sizes: { type: "string", default: "20,50" },
      seconds: { type: "string", default: "20" },
      drivers: { type: "string", default: "4" },
      targets: { type: "string", default: "edgedoc,peer" },
      url: { type: "string" },
      json: { type: "string" },
      "no-deflate": { type: "boolean", default: false },
      "no-echo": { type: "boolean", default: false },
      profile: { type: "string" },
      nice: { type: "string", default: "10" },
      "converge-timeout": { type: "string", default: "30" },
    },
  });
  const known: Record<string, CrowdTarget> = { edgedoc: EDGEDOC_TARGET, peer: PEER_TARGET };
  const targets = values.url ? [{ name: "server", url: values.url }] : values.targets.split(",").map((name) => known[name] ?? { name, url: name });
  const results = await measureCrowd({
    sizes: values.sizes.split(",").map(Number),
    seconds: Number(values.seconds),
    drivers: Number(values.drivers),
    targets,
    deflate: !values["no-deflate"],
    echo: !values["no-echo"],
    cpuProfileDir: values.profile,
    nice: Number(values.nice),
    convergeTimeoutMs: Number(values["converge-timeout"]) * 1000,
  });
  reportCrowd(results);
  if (values.json) (await import("node:fs")).writeFileSync(values.json, `${JSON.stringify(results, (_k, v) => (Number.isNaN(v) ? null : v), 2)}\n`);
}
