/**
 * `npm run bench [-- --scenario typing,typing-latency,latency,throughput,fallback,idle,peer-check,cold-load,memory,hostile,history,crowd]
 *   [--clients 5,10,50] [--runs 3] [--latency-rate 20] [--latency-edits 300] [--url ws://host/ws] [--attacks 1,4a]
 *   [--profile dir] [--no-deflate] [--fallback-idle-seconds 60] [--idle-seconds 180]`
 *
 * Starts `wrangler dev` (bench/wrangler.toml: edgedoc, the y-partyserver peer and the relay
 * floors) on loopback ports with a temporary persist dir, runs bounded scenarios, prints tables
 * and writes the results as JSON under bench/results/. The headline is `typing` and
 * `typing-latency` (stock y-websocket providers typing, bench/typing.ts) and the 12-client
 * `crowd`, each against y-partyserver in the same run; `peer-check` runs y-partyserver alone in
 * a Worker of its own under the typing and saturation workloads. `--profile` writes a workerd
 * CPU profile of each typing and saturation run (bench/profile.ts). Latency and throughput are repeated
 * --runs times, the targets interleaved (edgedoc, peer, relay, relay+sqlite, then again), each
 * run alone on the server so that the workerd CPU it used is its own; the tables give the median
 * and the min-max of the runs, and edgedoc's ratio to the peer. With --url it measures latency
 * and throughput of any y-websocket server instead (rooms are `<url>/<room>`), without floors,
 * peer or CPU. `hostile` starts a fresh server (wrangler.toml, default limits) per attack, all
 * or those numbered in --attacks: see bench/hostile.ts. `history` replays version retention in
 * Node, then measures the version routes on a server of its own: see bench/history.ts. `crowd`
 * types with 12 stock providers (--runs times), then 20 and 50, against edgedoc and the peer: see bench/crowd.ts.
 * `fallback` measures edgedoc's HTTP fallback beside WebSockets on the shared server (--runs
 * times, interleaved with the others): typing latency and CPU with the writer or the readers on
 * HTTP, and what idle clients cost (not with --url): see bench/fallback.ts.
 * `typing` also runs y-partyserver with its default, standard sockets (`peer-standard`).
 * `idle` (issue 31) keeps rooms of five idle after a few keys, on the shared server, all at
 * once, for --idle-seconds: the app's own client in Chromium and stock providers on edgedoc, and
 * stock providers on both y-partyserver modes; frames per client-minute, the share of the
 * window the object is awake by the 10-second rule, the first edit after a sleep, and what a
 * room costs a month (bench/cost.ts): see bench/idle.ts. It needs `npm run build` (the app).
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { removePersistDir, startDevServer, type DevServer } from "../test/node/wrangler.ts";
import { IDLE_COMPACTION_DELAY_MS } from "../worker/limits.ts";
import { measureColdLoad, type ColdLoadResult } from "./cold-load.ts";
import { PEER_TARGET, measureCrowd, reportCrowd, type CrowdResult } from "./crowd.ts";
import {
  BASELINE,
  COMBINATIONS,
  IDLE_NAMES,
  measureFallbackIdle,
  measureFallbackTyping,
  reportFallback,
  type FallbackIdleResult,
  type FallbackTypingResult,
} from "./fallback.ts";
import { measureHistory, type HistoryResult } from "./history.ts";
import { MEMORY_TARGET_BYTES, measureHostile, type HostileResult } from "./hostile.ts";
import { measureIdle, type IdleRoomResult } from "./idle.ts";
import { reportIdle } from "./idle-report.ts";
import { measureIdleMemory, type MemoryResult } from "./memory.ts";
import { profiled } from "./profile.ts";
import { measureTypingLatency, measureTypingThroughput, type DriverCost, type TypingLatencyResult, type TypingThroughputResult } from "./typing.ts";
import {
  measureLatency,
  measureSaturation,
  measureThroughput,
  traceFrames,
  workerdCpuClock,
  writerFrames,
  type CpuClock,
  type CpuCost,
  type LatencyResult,
  type LatencyStats,
  type SaturationResult,
  type Target,
  type ThroughputResult,
} from "./realtime.ts";

const { values } = parseArgs({
  options: {
    scenario: { type: "string", default: "typing,typing-latency,latency,throughput,fallback,idle,peer-check,cold-load,memory,hostile,history,crowd" },
    clients: { type: "string", default: "5,10,50" },
    runs: { type: "string", default: "3" },
    // The issue's harness: 300 edits at 20/s (--latency-rate 200 --latency-edits 600: the load of earlier runs).
    "latency-rate": { type: "string", default: "20" },
    "latency-edits": { type: "string", default: "300" },
    url: { type: "string" },
    attacks: { type: "string" },
    profile: { type: "string" },
    // Stock clients negotiate permessage-deflate; this measures typing without it (a diagnostic).
    "no-deflate": { type: "boolean", default: false },
    // The fallback scenario's idle window, per transport and run.
    "fallback-idle-seconds": { type: "string", default: "60" },
    // The idle scenario's window, all rooms at once (issue 31: three minutes).
    "idle-seconds": { type: "string", default: "180" },
  },
});
const scenarios = new Set(values.scenario.split(","));
const clientCounts = values.clients.split(",").map(Number);
const throughputClients = clientCounts.includes(10) ? 10 : clientCounts[0]!;
const runs = Math.max(1, Math.min(20, Number(values.runs) || 1));
const latencyRate = Number(values["latency-rate"]);
const latencyEdits = Number(values["latency-edits"]);
/** Saturation, the issue's throughput harness: 4 writers and a reader, 32 edits in flight per writer, 5 s. */
const SATURATION = { writers: 4, inFlight: 32, seconds: 5, editsPerWriter: 30_000 };
/** The headline (issue 23): stock providers all typing, each keeping 32 edits not yet at the reader, 5 s. */
const TYPING = { clients: 5, inFlight: 32, seconds: 5 };
/** The headline crowd (issue 23): 12 stock providers, 4 keys/s each, a cursor move per key. */
const CROWD = { clients: 12, keysPerSecond: 4 };
/** The HTTP fallback (bench/fallback.ts): a writer and 4 readers typing at --latency-rate; 5 idle clients per transport. */
const FALLBACK = { clients: 5, idleClients: 5, idleSeconds: Math.max(1, Math.min(600, Number(values["fallback-idle-seconds"]) || 60)) };
/** Idle rooms (issue 31, bench/idle.ts): the window, and first edits after a sleep per room. */
const IDLE = { seconds: Math.max(30, Math.min(900, Number(values["idle-seconds"]) || 180)), repeats: 3 };

const ms = (value: number) => `${value.toFixed(1)} ms`;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
/** A latency statistic, or "none" when no sample arrived to compute it from. */
const msOrNone = (value: number) => (Number.isNaN(value) ? "none" : ms(value));
const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
const ratio = (value: number, floor: number) => (floor > 0 ? (value / floor).toFixed(2) : "n/a");

/** The peer's onSave runs 2 s after the last edit (y-partyserver's default debounceWait). */
const PEER_SAVE_DEBOUNCE_MS = 2_000;

/**
 * The bench Worker built once, as `wrangler deploy` builds it, into a temporary directory
 * beside a copy of bench/wrangler.toml that points at the bundle (`no_bundle`). `wrangler dev`
 * on it has nothing to watch: an edit to worker/ during the runs neither reloads the server
 * (which drops every socket and restarts workerd) nor mixes two versions of edgedoc in one set
 * of runs. The bundle's hash goes into the results.
 */
function bundleBenchWorker(): { config: string; dir: string; bundleSha256: string } {
  const dir = mkdtempSync(join(tmpdir(), "edgedoc-bench-worker-"));
  execFileSync(process.execPath, ["node_modules/wrangler/bin/wrangler.js", "deploy", "--dry-run", "--config", "bench/wrangler.toml", "--outdir", dir], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, CI: "true" },
    timeout: 120_000,
  });
  const toml = readFileSync("bench/wrangler.toml", "utf8")
    .replace(/^main = .*$/m, 'main = "worker.js"\nno_bundle = true')
    // The app's assets stay where `npm run build` put them.
    .replace(/^directory = "\.\.\/dist\/client"$/m, `directory = ${JSON.stringify(join(process.cwd(), "dist/client"))}`);
  const config = join(dir, "wrangler.toml");
  writeFileSync(config, toml);
  return { config, dir, bundleSha256: createHash("sha256").update(readFileSync(join(dir, "worker.js"))).digest("hex") };
}

/** The commit the run measured, and whether the working tree differed from it (client/: the fallback scenario bundles its HttpSocket). */
function sourceVersion(): { commit: string; dirty: boolean } | null {
  try {
    const git = (...args: string[]) => execFileSync("git", args, { encoding: "utf8", timeout: 10_000 }).trim();
    return { commit: git("rev-parse", "HEAD"), dirty: git("status", "--porcelain", "--", "worker", "bench", "client").length > 0 };
  } catch {
    return null;
  }
}

function targetsFor(server: DevServer | null): Target[] {
  if (values.url) return [{ name: "server", roomUrl: (room) => `${values.url!.replace(/\/$/, "")}/${room}` }];
  const origin = server!.wsUrl.replace(/\/ws$/, "");
  return [
    // The session-end version and compaction come IDLE_COMPACTION_DELAY_MS after the last socket leaves.
    { name: "edgedoc", roomUrl: (room) => `${origin}/ws/${room}`, settleMs: IDLE_COMPACTION_DELAY_MS + 1_000 },
    { name: "peer", roomUrl: (room) => `${origin}/parties/peer/${room}`, settleMs: PEER_SAVE_DEBOUNCE_MS + 1_000 },
    { name: "relay", roomUrl: (room) => `${origin}/bench/relay/${room}`, settleMs: 500 },
    { name: "relay+sqlite", roomUrl: (room) => `${origin}/bench/relay-sqlite/${room}`, settleMs: 500 },
  ];
}

/** y-partyserver with its default, standard sockets (bench/peer.ts `PeerStandard`): typing only. */
function peerStandardTarget(server: DevServer): Target {
  const origin = server.wsUrl.replace(/\/ws$/, "");
  return { name: "peer-standard", roomUrl: (room) => `${origin}/parties/peer-standard/${room}`, settleMs: PEER_SAVE_DEBOUNCE_MS + 1_000 };
}

/** A run during which other programs used at least this share of a core counts as contended. */
const CONTENDED_CORES = 0.1;
const contended = (r: { cpu: CpuCost | null }) => (r.cpu?.othersCores ?? 0) >= CONTENDED_CORES;
const othersNote = (cpu: CpuCost | null) =>
  cpu && (cpu.othersCores >= CONTENDED_CORES || cpu.waitedForQuietMs > 1_000)
    ? `; other programs used ${cpu.othersCores.toFixed(2)} cores (waited ${(cpu.waitedForQuietMs / 1000).toFixed(0)} s for quiet)`
    : "";
/** What a typing run's log line adds after its figure: failures, then server and driver CPU. */
const typingNote = (r: TypingThroughputResult | TypingLatencyResult) =>
  `${r.converged ? "" : " NOT CONVERGED"}${r.error ? ` (${r.error})` : ""}${r.presenceSettled ? "" : " (presence never settled)"}${cpuNote(r.cpu)}${driverNote(r.driver)}`;
const driverNote = (driver: DriverCost) => `; driver ${driver.cores.toFixed(2)} cores, ELU ${driver.elu.toFixed(2)}`;
const cpuNote = (cpu: CpuCost | null) => (cpu ? ` CPU ${cpu.perThousandEdits.toFixed(0)} ms/1,000 edits${othersNote(cpu)}` : "");
const othersCell = (cpu: CpuCost | null) => (cpu ? cpu.othersCores.toFixed(2) : "");

/**
 * From this many stock providers on, each typing-latency run gets a `wrangler dev` of its own:
 * y-partyserver never gets through the presence echoes of 50 (see bench/typing.ts), and one
 * workerd serves every room, so the next run, of either target, would only measure that.
 */
const OWN_SERVER_CLIENTS = 50;
const WARM_UP_EDITS = 40;

/** Runs `body` against the target named `name` on a fresh server of the bench bundle, with that server's CPU clock. */
async function onOwnServer<R>(config: string, name: string, body: (target: Target, cpu: CpuClock) => Promise<R>): Promise<R> {
  const server = await startDevServer({ config });
  try {
    const target = targetsFor(server).find((candidate) => candidate.name === name)!;
    // A fresh isolate compiles the edit path on its first edits (a few hundred ms at 50 clients,
    // the first keys' latency): a short run in another room first, as on the shared server.
    await measureTypingLatency(target, { clients: 2, edits: WARM_UP_EDITS, rate: latencyRate });
    // ...and the work it leaves behind (edgedoc's session-end version) done before the clock starts.
    await new Promise((resolve) => setTimeout(resolve, target.settleMs ?? 0));
    return await body(target, workerdCpuClock(server.pid));
  } finally {
    await server.stop();
    removePersistDir(server.persistDir);
  }
}

let preparedSaturationFrames: Uint8Array[][] | null = null;
const saturationFramesFor = () => (preparedSaturationFrames ??= writerFrames(SATURATION.writers, SATURATION.editsPerWriter));

/**
 * The peer alone in a Worker of its own under a plain `wrangler dev` (bench/peer-only), under
 * both workloads: stock providers typing and the raw-socket saturation. Issue 23: an outside
 * run with stock providers disagreed with the bench's peer by 4x; these runs, with the bench
 * peer's in the same run, show whether the bench's peer or its workload costs more than a
 * standalone y-partyserver under real clients.
 */
async function checkPeer(results: Results, frames: Uint8Array[][]): Promise<PeerCheck[]> {
  const server = await startDevServer({ config: "bench/peer-only/wrangler.toml" });
  const checks: PeerCheck[] = [];
  try {
    const cpu = workerdCpuClock(server.pid);
    const origin = server.origin.replace(/^http/, "ws");
    const target: Target = { name: "peer (own worker)", roomUrl: (room) => `${origin}/parties/peer/${room}`, settleMs: PEER_SAVE_DEBOUNCE_MS + 1_000 };
    for (let run = 1; run <= runs; run++) {
      const typing = await measureTypingThroughput(target, { clients: TYPING.clients, inFlight: TYPING.inFlight, seconds: TYPING.seconds, deflate: !values["no-deflate"], run, cpu });
      const saturation = await measureSaturation(target, frames, { inFlight: SATURATION.inFlight, seconds: SATURATION.seconds, run, cpu });
      console.log(
        `run ${run}/${runs} peer check, own worker: typing ${typing.editsPerSecond.toFixed(0)} edits/s${cpuNote(typing.cpu)}${driverNote(typing.driver)};` +
          ` saturation ${saturation.editsPerSecond.toFixed(0)} edits/s${cpuNote(saturation.cpu)}`,
      );
      checks.push({ worker: "own", workload: "typing", run, editsPerSecond: typing.editsPerSecond, cpuPerThousand: typing.cpu?.perThousandEdits ?? NaN, ok: typing.converged });
      checks.push({ worker: "own", workload: "saturation", run, editsPerSecond: saturation.editsPerSecond, cpuPerThousand: saturation.cpu?.perThousandEdits ?? NaN, ok: saturation.converged });
    }
  } finally {
    await server.stop();
    removePersistDir(server.persistDir);
  }
  const peerRuns = <R extends { target: string; run: number; editsPerSecond: number; converged: boolean; cpu: CpuCost | null }>(list: R[], workload: PeerCheck["workload"]) =>
    list.filter((r) => r.target === "peer").map((r) => ({ worker: "bench" as const, workload, run: r.run, editsPerSecond: r.editsPerSecond, cpuPerThousand: r.cpu?.perThousandEdits ?? NaN, ok: r.converged }));
  return [...peerRuns(results.typingThroughput, "typing"), ...peerRuns(results.saturation, "saturation"), ...checks];
}

/** With --profile, `body` under the runtime's CPU profiler (bench/profile.ts), its hottest functions printed. */
async function withProfile<R>(server: DevServer | null, name: string, body: () => Promise<R>): Promise<R> {
  if (!values.profile || !server) return body();
  const result = await profiled(server.inspectorPort, values.profile, name, body);
  console.log(`  profile ${result.profile.file}: ${result.profile.busyMs.toFixed(0)} ms in JavaScript; most self time:`);
  for (const hot of result.profile.top.slice(0, 15)) console.log(`    ${(hot.share * 100).toFixed(1).padStart(5)}% ${hot.selfMs.toFixed(0).padStart(6)} ms  ${hot.name}`);
  return result;
}

async function main(): Promise<void> {
  const machine = { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  const results: Results = { runs, build: null, idle: [], peerCheck: [], typingThroughput: [], typingLatency: [], latency: [], throughput: [], saturation: [], summary: [], coldLoad: [], memory: [], hostile: [], history: null, crowd: [], fallbackTyping: [], fallbackIdle: [] };
  const started = Date.now();
  // First, on a server of its own, so that nothing else has been allocated yet.
  if (!values.url && scenarios.has("memory")) results.memory = await measureIdleMemory();
  const fallback = !values.url && scenarios.has("fallback");
  const idle = !values.url && scenarios.has("idle");
  const live = scenarios.has("typing") || scenarios.has("typing-latency") || scenarios.has("latency") || scenarios.has("throughput") || fallback || idle;
  // Only latency and throughput use this server; the other scenarios start their own.
  const bundle = values.url || !live ? null : bundleBenchWorker();
  if (bundle) results.build = { ...sourceVersion(), bundleSha256: bundle.bundleSha256 };
  const server = bundle ? await startDevServer({ config: bundle.config }) : null;
  try {
    const targets = live ? targetsFor(server) : [];
    // Stock providers need a server that speaks the protocol: the relay floors only forward frames.
    const stockTargets = values.url ? targets : targets.filter((target) => target.name === "edgedoc" || target.name === "peer");
    // Typing throughput also measures y-partyserver's default, standard sockets.
    const typingTargets = server ? [...stockTargets, peerStandardTarget(server)] : stockTargets;
    const cpu: CpuClock | undefined = server ? workerdCpuClock(server.pid) : undefined;
    const trace = live ? traceFrames() : null;
    const edgedoc = targets.find((target) => target.name === "edgedoc");
    const saturationFrames = scenarios.has("throughput") ? saturationFramesFor() : null;
    // One measurement at a time (they share one workerd, whose CPU each one reads), the targets
    // interleaved within each figure, and the whole set repeated.
    for (let run = 1; run <= runs; run++) {
      const at = `run ${run}/${runs}`;
      if (scenarios.has("typing")) {
        for (const target of typingTargets) {
          const r = await withProfile(server, `typing-${target.name}-run${run}`, () =>
            measureTypingThroughput(target, { clients: TYPING.clients, inFlight: TYPING.inFlight, seconds: TYPING.seconds, deflate: !values["no-deflate"], run, cpu }),
          );
          results.typingThroughput.push(r);
          console.log(
            `${at} typing ${r.clients} stock providers ${target.name}: ${r.editsPerSecond.toFixed(0)} remote edits/s at the reader` +
              typingNote(r),
          );
        }
      }
      if (scenarios.has("typing-latency")) {
        for (const clients of clientCounts) {
          for (const target of stockTargets) {
            const options = { clients, rate: latencyRate, edits: latencyEdits, deflate: !values["no-deflate"], run };
            const r =
              clients >= OWN_SERVER_CLIENTS && bundle
                ? await onOwnServer(bundle.config, target.name, (own, ownCpu) => measureTypingLatency(own, { ...options, cpu: ownCpu }))
                : await measureTypingLatency(target, { ...options, cpu });
            results.typingLatency.push(r);
            console.log(
              `${at} typing latency ${clients} stock providers ${target.name}: every reader p50 ${msOrNone(r.everyReader.p50)} p99 ${msOrNone(r.everyReader.p99)}` +
                typingNote(r),
            );
          }
        }
      }
      if (scenarios.has("latency")) {
        for (const clients of clientCounts) {
          for (const target of targets) {
            const r = await measureLatency(target, trace!, clients, { rate: latencyRate, edits: latencyEdits, run, cpu });
            results.latency.push(r);
            console.log(
              `${at} latency ${clients} clients ${target.name}: every reader p50 ${msOrNone(r.everyReader.p50)} p99 ${msOrNone(r.everyReader.p99)}` +
                `${r.converged ? "" : " NOT CONVERGED"}${cpuNote(r.cpu)}`,
            );
          }
        }
      }
      if (scenarios.has("throughput")) {
        for (const target of targets) {
          const r = await withProfile(server, `saturation-${target.name}-run${run}`, () =>
            measureSaturation(target, saturationFrames!, { inFlight: SATURATION.inFlight, seconds: SATURATION.seconds, run, cpu }),
          );
          results.saturation.push(r);
          console.log(
            `${at} saturation ${target.name}: ${r.editsPerSecond.toFixed(0)} edits/s at the reader` +
              `${r.converged ? "" : " NOT CONVERGED"}${r.exhausted ? " (writers ran out of edits)" : ""}${cpuNote(r.cpu)}`,
          );
        }
        for (const target of targets) {
          const r = await measureThroughput(target, trace!, throughputClients, { run, cpu });
          results.throughput.push(r);
          console.log(`${at} stepped throughput ${target.name}: ${r.sustainedRate} edits/s${cpuNote(r.cpu)}`);
        }
      }
      if (fallback && edgedoc) {
        for (const combination of COMBINATIONS) {
          const r = await measureFallbackTyping(edgedoc, combination, { clients: FALLBACK.clients, rate: latencyRate, edits: latencyEdits, run, cpu });
          results.fallbackTyping.push(r);
          console.log(
            `${at} fallback typing, ${combination.name} (writer ${combination.writer}, readers ${combination.readers}): p50 ${msOrNone(r.updates.p50)} p99 ${msOrNone(r.updates.p99)}` +
              `${r.converged ? "" : " NOT CONVERGED"}${r.error ? ` (${r.error})` : ""}${r.reconnects > 0 ? ` ${r.reconnects} reconnects` : ""}${cpuNote(r.cpu)}`,
          );
        }
        for (const transport of ["websocket", "http"] as const) {
          const r = await measureFallbackIdle(edgedoc, transport, { clients: FALLBACK.idleClients, seconds: FALLBACK.idleSeconds, run, cpu });
          results.fallbackIdle.push(r);
          console.log(
            `${at} fallback idle, ${r.clients} ${IDLE_NAMES[transport]} clients for ${(r.windowMs / 1000).toFixed(0)} s: ${r.requestsPerClientMinute.toFixed(1)} requests/client-min,` +
              ` CPU ${r.cpuPerClientMinute?.toFixed(1) ?? "n/a"} ms/client-min${r.reconnects > 0 ? `, ${r.reconnects} reconnects` : ""}${r.error ? ` (${r.error})` : ""}${othersNote(r.cpu)}`,
          );
        }
      }
    }
    if (idle && server) {
      console.log(`idle: ${IDLE.seconds} s window, all rooms at once, then ${IDLE.repeats} first edits after a sleep per room`);
      results.idle = await measureIdle(server, { idleSeconds: IDLE.seconds, repeats: IDLE.repeats });
    }
  } finally {
    await server?.stop();
    if (server) removePersistDir(server.persistDir);
    if (bundle) rmSync(bundle.dir, { recursive: true, force: true });
  }
  if (!values.url && scenarios.has("peer-check")) results.peerCheck = await checkPeer(results, saturationFramesFor());
  if (!values.url && scenarios.has("cold-load")) {
    results.coldLoad = [await measureColdLoad({ copies: 1 }), await measureColdLoad({ copies: 10 })];
  }
  if (!values.url && scenarios.has("hostile")) results.hostile = await measureHostile(values.attacks?.split(","));
  if (!values.url && scenarios.has("history")) results.history = await measureHistory();
  // Stock providers in crowds of their own sizes (not --clients), on fresh servers with wrangler.toml's default limits.
  if (!values.url && scenarios.has("crowd")) {
    for (let run = 1; run <= runs; run++) {
      for (const r of await measureCrowd({ sizes: [CROWD.clients], keysPerSecond: CROWD.keysPerSecond })) results.crowd.push({ ...r, run });
    }
    for (const r of await measureCrowd({ sizes: [20, 50] })) results.crowd.push({ ...r, run: 1 });
  }
  results.summary = summarize(results);
  report(results);
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  // One file per run (never overwrite a run kept for the README).
  const file = new URL(`./results/bench-${new Date().toISOString().slice(0, 19).replace(/:/g, "-")}.json`, import.meta.url);
  const seconds = Math.round((Date.now() - started) / 1000);
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), seconds, machine, url: values.url ?? null, ...results }, null, 2)}\n`);
  console.log(`\n${seconds} s; results written to ${file.pathname}`);
}

interface Results {
  runs: number;
  /** What latency and throughput measured: the commit, uncommitted changes under worker/, bench/ or client/, the bundle's hash. */
  build: { commit?: string; dirty?: boolean; bundleSha256: string } | null;
  /** The headline: stock providers typing (bench/typing.ts). */
  typingThroughput: TypingThroughputResult[];
  typingLatency: TypingLatencyResult[];
  latency: LatencyResult[];
  /** Stepped throughput (one writer, rising rates). */
  throughput: ThroughputResult[];
  /** The issue's throughput: writers keeping edits in flight, edits/s at a reader. */
  saturation: SaturationResult[];
  /** Each figure over the runs: median, min and max per target, ratios to the peer, targets. */
  summary: Figure[];
  coldLoad: ColdLoadResult[];
  memory: MemoryResult[];
  hostile: HostileResult[];
  history: HistoryResult | null;
  /** The peer in the bench Worker and alone in its own, under both workloads (checkPeer). */
  peerCheck: PeerCheck[];
  /** Stock providers typing together: bench/crowd.ts; the headline size repeated (`run`), the larger ones once. */
  crowd: (CrowdResult & { run: number })[];
  /** The HTTP fallback beside WebSockets (bench/fallback.ts): typing per combination of transports, each run. */
  fallbackTyping: FallbackTypingResult[];
  /** ...and idle clients per transport, each run. */
  fallbackIdle: FallbackIdleResult[];
  /** Idle rooms (issue 31, bench/idle.ts), once, all at the same time. */
  idle: IdleRoomResult[];
}

interface PeerCheck {
  /** The bench Worker (beside edgedoc, bench/worker.ts) or a Worker of its own (bench/peer-only). */
  worker: "bench" | "own";
  workload: "typing" | "saturation";
  run: number;
  editsPerSecond: number;
  cpuPerThousand: number;
  ok: boolean;
}

/** A figure over the runs, for one target. */
interface Spread {
  median: number;
  min: number;
  max: number;
  values: number[];
  /** Runs whose edits did not all arrive or whose texts differ (their values are still counted). */
  failedRuns: number;
  /** Runs during which other programs used the machine (still counted). */
  contendedRuns: number;
}

/** One figure of the issue (a latency percentile, a throughput, a CPU cost) across targets and runs. */
interface Figure {
  /**
   * "typing" and "crowd": the headline, stock providers (issue 23); "fallback": edgedoc's HTTP
   * fallback beside WebSockets, its targets the combinations of transports (no peer); the
   * others: raw-socket clients replaying a trace (issue 14).
   */
  kind: "typing" | "crowd" | "latency" | "throughput" | "cpu" | "fallback";
  figure: string;
  unit: string;
  perTarget: Record<string, Spread>;
  /** Ratios of medians. */
  edgedocVsPeer: number | null;
  floorVsPeer: number | null;
  edgedocVsFloor: number | null;
  /** edgedoc / peer within each run (the targets of a run ran minutes apart at most). */
  edgedocVsPeerPerRun: number[];
  goal: { text: string; limit: number; atLeast: boolean } | null;
  /** met; missed, with the floor missing too (explained); missed, with the floor meeting it (not explained). */
  verdict: "met" | "missed (floor misses too)" | "missed (floor meets it)" | "missed (no floor)" | null;
  /** "fallback": each other target's median over the WebSocket baseline's, by "target / baseline" (no target to meet). */
  ratios?: Record<string, number | null>;
}

const middle = (list: number[]) => {
  const sorted = [...list].sort((a, b) => a - b);
  const half = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[half]! : (sorted[half - 1]! + sorted[half]!) / 2;
};

function spread(entries: { value: number; ok: boolean; contended: boolean }[]): Spread {
  const list = entries.map((entry) => entry.value).filter((value) => !Number.isNaN(value));
  return {
    median: list.length > 0 ? middle(list) : NaN,
    min: Math.min(...list),
    max: Math.max(...list),
    values: entries.map((entry) => entry.value),
    failedRuns: entries.filter((entry) => !entry.ok).length,
    contendedRuns: entries.filter((entry) => entry.contended).length,
  };
}

function figure<R extends { target: string; run: number; cpu: CpuCost | null }>(
  kind: Figure["kind"],
  name: string,
  unit: string,
  results: R[],
  value: (result: R) => number,
  ok: (result: R) => boolean,
  goal: Figure["goal"],
): Figure | null {
  if (results.length === 0) return null;
  const names = [...new Set(results.map((r) => r.target))];
  const perTarget = Object.fromEntries(names.map((target) => [target, spread(results.filter((r) => r.target === target).map((r) => ({ value: value(r), ok: ok(r), contended: contended(r) })))]));
  const of = (target: string) => perTarget[target]?.median;
  const quotient = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 && !Number.isNaN(a) ? a / b : null);
  const edgedocVsPeer = quotient(of("edgedoc"), of("peer"));
  const floorVsPeer = quotient(of("relay+sqlite"), of("peer"));
  const edgedocVsPeerPerRun = [...new Set(results.map((r) => r.run))].flatMap((run) => {
    const at = (target: string) => results.find((r) => r.run === run && r.target === target);
    const q = quotient(at("edgedoc") && value(at("edgedoc")!), at("peer") && value(at("peer")!));
    return q === null ? [] : [q];
  });
  const meets = (q: number | null) => q !== null && goal !== null && (goal.atLeast ? q >= goal.limit : q <= goal.limit);
  const missed = floorVsPeer === null ? "missed (no floor)" : meets(floorVsPeer) ? "missed (floor meets it)" : "missed (floor misses too)";
  const verdict = goal === null || edgedocVsPeer === null ? null : meets(edgedocVsPeer) ? "met" : missed;
  return {
    kind,
    figure: name,
    unit,
    perTarget,
    edgedocVsPeer,
    floorVsPeer,
    edgedocVsFloor: quotient(of("edgedoc"), of("relay+sqlite")),
    edgedocVsPeerPerRun,
    goal,
    verdict,
  };
}

/** The headline figures of issue 23 (stock providers), each with its target, a multiple of the peer's in the same run. */
function summarizeTyping({ typingThroughput, typingLatency }: Results): (Figure | null)[] {
  const figures: (Figure | null)[] = [];
  const converged = (r: { converged: boolean }) => r.converged;
  figures.push(
    figure("typing", `typing throughput, ${TYPING.clients} stock providers x ${TYPING.inFlight} in flight`, "remote edits/s at a reader", typingThroughput, (r) => r.editsPerSecond, converged, {
      text: ">= 1.0x peer",
      limit: 1.0,
      atLeast: true,
    }),
  );
  const perThousand = (r: { cpu: CpuCost | null }) => r.cpu?.perThousandEdits ?? NaN;
  const cpuGoal = { text: "<= 1.2x peer", limit: 1.2, atLeast: false };
  if (typingThroughput.some((r) => r.cpu)) figures.push(figure("typing", "CPU, typing throughput", "ms per 1,000 edits", typingThroughput, perThousand, converged, cpuGoal));
  for (const clients of clientCounts) {
    const at = typingLatency.filter((r) => r.clients === clients);
    figures.push(figure("typing", `typing latency p50, ${clients} stock providers`, "ms", at, (r) => r.everyReader.p50, converged, { text: "<= 1.1x peer", limit: 1.1, atLeast: false }));
    figures.push(figure("typing", `typing latency p99, ${clients} stock providers`, "ms", at, (r) => r.everyReader.p99, converged, { text: "<= 1.2x peer", limit: 1.2, atLeast: false }));
  }
  for (const clients of clientCounts) {
    const at = typingLatency.filter((r) => r.clients === clients);
    if (at.some((r) => r.cpu)) figures.push(figure("typing", `CPU, typing latency, ${clients} stock providers`, "ms per 1,000 edits", at, perThousand, converged, cpuGoal));
  }
  return figures;
}

/** The headline crowd's edit latency, its runs' medians against the peer's (bench/crowd.ts names the peer y-partyserver). */
function summarizeCrowd(crowd: Results["crowd"]): (Figure | null)[] {
  const runsOf = crowd
    .filter((r) => r.clients === CROWD.clients && r.keysPerSecond === CROWD.keysPerSecond)
    .map((r) => ({ ...r, target: r.target === PEER_TARGET.name ? "peer" : r.target, cpu: null }));
  const ok = (r: CrowdResult) => r.converged && !r.error && Object.keys(r.serverCloses).length === 0;
  const goal = { text: "<= 1.2x peer", limit: 1.2, atLeast: false };
  const name = `crowd, ${CROWD.clients} stock providers x ${CROWD.keysPerSecond} keys/s with cursor moves`;
  return [
    figure("crowd", `${name}, edit p50`, "ms", runsOf, (r) => r.editLatency.p50, ok, goal),
    figure("crowd", `${name}, edit p99`, "ms", runsOf, (r) => r.editLatency.p99, ok, goal),
  ];
}

/**
 * The HTTP fallback's figures, each target's median over the baseline's in the same run
 * (WebSocket): figures to document, no target to meet.
 */
function summarizeFallback({ fallbackTyping, fallbackIdle }: Results): (Figure | null)[] {
  const typed = (r: FallbackTypingResult) => r.converged && !r.error;
  const idled = (r: FallbackIdleResult) => !r.error && r.reconnects === 0;
  const keys = `1 writer + ${FALLBACK.clients - 1} readers, ${latencyRate} keys/s`;
  const perThousand = (r: { cpu: CpuCost | null }) => r.cpu?.perThousandEdits ?? NaN;
  const figures = [
    figure("fallback", `typing latency p50, ${keys}`, "ms", fallbackTyping, (r) => r.updates.p50, typed, null),
    figure("fallback", `typing latency p95, ${keys}`, "ms", fallbackTyping, (r) => r.updates.p95, typed, null),
    figure("fallback", `typing latency p99, ${keys}`, "ms", fallbackTyping, (r) => r.updates.p99, typed, null),
    figure("fallback", `typing latency until every reader, p99, ${keys}`, "ms", fallbackTyping, (r) => r.everyReader.p99, typed, null),
    fallbackTyping.some((r) => r.cpu) ? figure("fallback", `CPU, typing, ${keys}`, "ms per 1,000 edits", fallbackTyping, perThousand, typed, null) : null,
    figure("fallback", `idle requests, ${FALLBACK.idleClients} clients`, "per client-minute", fallbackIdle, (r) => r.requestsPerClientMinute, idled, null),
    figure("fallback", `idle frames in + out, ${FALLBACK.idleClients} clients`, "per client-minute", fallbackIdle, (r) => r.framesInPerClientMinute + r.framesOutPerClientMinute, idled, null),
    fallbackIdle.some((r) => r.cpuPerClientMinute !== null)
      ? figure("fallback", `idle CPU, ${FALLBACK.idleClients} clients`, "ms per client-minute", fallbackIdle, (r) => r.cpuPerClientMinute ?? NaN, idled, null)
      : null,
  ];
  for (const f of figures) {
    const baseline = f?.perTarget[BASELINE]?.median;
    if (!f || baseline === undefined) continue;
    f.ratios = Object.fromEntries(
      Object.entries(f.perTarget)
        .filter(([name]) => name !== BASELINE)
        .map(([name, s]) => [`${name} / ${BASELINE}`, baseline > 0 && !Number.isNaN(s.median) ? s.median / baseline : null]),
    );
  }
  return figures;
}

/** Every figure with its target, a multiple of the peer's: issue 23's headline, then issue 14's (latency and CPU at most, throughput at least). */
function summarize(results: Results): Figure[] {
  const { latency, saturation, throughput } = results;
  const figures: (Figure | null)[] = [...summarizeTyping(results), ...summarizeCrowd(results.crowd), ...summarizeFallback(results)];
  const p50Goal = { text: "<= 1.2x peer", limit: 1.2, atLeast: false };
  const p99Goal = { text: "<= 1.5x peer", limit: 1.5, atLeast: false };
  const cpuGoal = { text: "<= 1.5x peer", limit: 1.5, atLeast: false };
  const throughputGoal = { text: ">= 0.8x peer", limit: 0.8, atLeast: true };
  for (const clients of clientCounts) {
    const at = latency.filter((r) => r.clients === clients);
    const ok = (r: LatencyResult) => r.converged;
    figures.push(figure("latency", `latency p50, ${clients} clients`, "ms", at, (r) => r.everyReader.p50, ok, p50Goal));
    figures.push(figure("latency", `latency p99, ${clients} clients`, "ms", at, (r) => r.everyReader.p99, ok, p99Goal));
  }
  const saturated = (r: SaturationResult) => r.converged && !r.exhausted;
  figures.push(figure("throughput", `throughput, ${SATURATION.writers} writers x ${SATURATION.inFlight} in flight`, "edits/s at a reader", saturation, (r) => r.editsPerSecond, saturated, throughputGoal));
  figures.push(
    figure("throughput", `stepped throughput, ${throughputClients} clients, p99 < 100 ms`, "edits/s", throughput, (r) => r.sustainedRate, (r) => r.sustainedRate > 0, throughputGoal),
  );
  const perThousand = (r: { cpu: CpuCost | null }) => r.cpu?.perThousandEdits ?? NaN;
  if (latency.some((r) => r.cpu)) {
    for (const clients of clientCounts) {
      figures.push(figure("cpu", `CPU, latency run, ${clients} clients`, "ms per 1,000 edits", latency.filter((r) => r.clients === clients), perThousand, (r) => r.converged, cpuGoal));
    }
  }
  if (saturation.some((r) => r.cpu)) figures.push(figure("cpu", "CPU, saturation", "ms per 1,000 edits", saturation, perThousand, saturated, cpuGoal));
  if (throughput.some((r) => r.cpu)) figures.push(figure("cpu", "CPU, stepped throughput", "ms per 1,000 edits", throughput, perThousand, () => true, cpuGoal));
  return figures.filter((f): f is Figure => f !== null);
}

function reportFigures(title: string, figures: Figure[]): void {
  if (figures.length === 0) return;
  console.log(`\n${title}`);
  const names = [...new Set(figures.flatMap((f) => Object.keys(f.perTarget)))];
  const digits = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(1));
  const cell = (s: Spread | undefined) =>
    !s || Number.isNaN(s.median)
      ? ""
      : `${digits(s.median)}${s.values.length > 1 ? ` (${digits(s.min)}-${digits(s.max)})` : ""}${s.failedRuns > 0 ? ` !${s.failedRuns}` : ""}${s.contendedRuns > 0 ? ` ~${s.contendedRuns}` : ""}`;
  const q = (value: number | null | undefined) => (value === null || value === undefined ? "" : `${value.toFixed(2)}x`);
  // Figures with their own ratios (the fallback's, to its baseline) have no peer, floor or target.
  const ratioNames = [...new Set(figures.flatMap((f) => Object.keys(f.ratios ?? {})))];
  console.table(
    figures.map((f) => ({
      figure: `${f.figure} (${f.unit})`,
      ...Object.fromEntries(names.map((name) => [name, cell(f.perTarget[name])])),
      ...(f.ratios
        ? Object.fromEntries(ratioNames.map((name) => [name, q(f.ratios![name])]))
        : {
            "edgedoc/peer": q(f.edgedocVsPeer),
            "per run": f.edgedocVsPeerPerRun.map((value) => value.toFixed(2)).join(" "),
            "relay+sqlite/peer": q(f.floorVsPeer),
            "edgedoc/relay+sqlite": q(f.edgedocVsFloor),
            target: f.goal?.text ?? "",
            verdict: f.verdict ?? "",
          }),
    })),
  );
}

/** The columns a latency run has whatever its clients: size, outcome, per delivery and per edit until every reader has it. */
function latencyCells(r: { clients: number; converged: boolean; updates: LatencyStats; everyReader: LatencyStats }) {
  return {
    clients: r.clients,
    converged: r.converged ? "yes" : "NO",
    "delivery p50": ms(r.updates.p50),
    "delivery p95": ms(r.updates.p95),
    "delivery p99": ms(r.updates.p99),
    "every reader p50": msOrNone(r.everyReader.p50),
    "every reader p99": msOrNone(r.everyReader.p99),
  };
}

function report({ runs: repetitions, peerCheck, typingThroughput, typingLatency, latency, throughput, saturation, summary, coldLoad, memory, hostile, history, crowd, fallbackTyping, fallbackIdle, idle }: Results): void {
  const over =
    `median (min-max) of ${repetitions} run${repetitions === 1 ? "" : "s"}; !n: n runs did not deliver everything or converge;` +
    ` ~n: other programs used at least ${CONTENDED_CORES} of a core during n runs`;
  const driverCell = (driver: DriverCost) => `${driver.cores.toFixed(2)} cores, ELU ${driver.elu.toFixed(2)}`;
  if (typingThroughput.length > 0) {
    console.log(
      `\nTyping, each run (the headline): ${TYPING.clients} stock y-websocket providers type at their own carets, each keeping ${TYPING.inFlight} keys not yet at the reader, for ${TYPING.seconds} s;` +
        " remote edits/s arriving at the reader. Driver: this process, where the providers run (ELU near 1: the driver set the pace)",
    );
    console.table(
      typingThroughput.map((r) => ({
        run: r.run,
        target: r.target,
        "edits/s at reader": Math.round(r.editsPerSecond),
        typed: r.typed,
        converged: r.converged ? "yes" : "NO",
        "CPU ms / 1,000 edits": r.cpu ? r.cpu.perThousandEdits.toFixed(0) : "",
        "CPU split": r.cpu ? Object.entries(r.cpu.perProcessMs).map(([role, cpuMs]) => `${role} ${cpuMs.toFixed(0)} ms`).join(", ") : "",
        driver: driverCell(r.driver),
        "others (cores)": othersCell(r.cpu),
      })),
    );
  }
  if (typingLatency.length > 0) {
    console.log(`\nTyping latency, each run: one stock provider types ${latencyEdits} keys at ${latencyRate}/s, the others read; keystroke to the edit in every reader's document`);
    console.table(
      typingLatency.map((r) => ({
        run: r.run,
        target: r.target,
        ...latencyCells(r),
        "presence settled": r.presenceSettled ? "yes" : "NO",
        "frames in / key (sync, awareness)": r.edits > 0 ? `${((r.framesIn[0] ?? 0) / r.edits).toFixed(1)}, ${((r.framesIn[1] ?? 0) / r.edits).toFixed(2)}` : "",
        "CPU ms / 1,000 edits": r.cpu ? r.cpu.perThousandEdits.toFixed(0) : "",
        driver: driverCell(r.driver),
        "others (cores)": othersCell(r.cpu),
      })),
    );
  }
  if (peerCheck.length > 0) {
    console.log("\nThe peer in the bench Worker and alone in a Worker of its own (bench/peer-only), each workload: median (min-max) of the runs");
    const cell = (worker: PeerCheck["worker"], workload: PeerCheck["workload"], value: (c: PeerCheck) => number) => {
      const list = peerCheck.filter((c) => c.worker === worker && c.workload === workload).map(value);
      return list.length === 0 ? "" : `${middle(list).toFixed(0)} (${Math.min(...list).toFixed(0)}-${Math.max(...list).toFixed(0)})`;
    };
    console.table(
      (["bench", "own"] as const).map((worker) => ({
        worker,
        "typing, edits/s": cell(worker, "typing", (c) => c.editsPerSecond),
        "typing, CPU ms / 1,000": cell(worker, "typing", (c) => c.cpuPerThousand),
        "saturation, edits/s": cell(worker, "saturation", (c) => c.editsPerSecond),
        "saturation, CPU ms / 1,000": cell(worker, "saturation", (c) => c.cpuPerThousand),
      })),
    );
  }
  reportFigures(`The headline: stock providers (issue 23), ${over}`, summary.filter((f) => f.kind === "typing" || f.kind === "crowd"));
  if (latency.length > 0) {
    console.log(
      `\nLatency, each run: one writer replays automerge-paper at ${latencyRate} edits/s (a cursor move every 5 edits), ${latencyEdits} edits;` +
        " per delivery (to each other client) and per edit until every reader has it",
    );
    console.table(
      latency.map((r) => ({
        run: r.run,
        target: r.target,
        ...latencyCells(r),
        "cursor p50": msOrNone(r.awareness.p50),
        "cursor p99": msOrNone(r.awareness.p99),
        "CPU ms / 1,000 edits": r.cpu ? r.cpu.perThousandEdits.toFixed(0) : "",
        "others (cores)": othersCell(r.cpu),
      })),
    );
  }
  if (saturation.length > 0) {
    const first = saturation[0]!;
    console.log(
      `\nSaturation, each run: ${first.writers} writers each keeping ${first.inFlight} edits in flight (sent, not yet at the reader) for ${first.seconds} s; edits/s arriving at the reader`,
    );
    console.table(
      saturation.map((r) => ({
        run: r.run,
        target: r.target,
        "edits/s at reader": Math.round(r.editsPerSecond),
        sent: r.sent,
        converged: r.converged ? "yes" : r.delivered ? "NO (texts differ)" : "NO (not all delivered)",
        exhausted: r.exhausted ? "YES" : "",
        "latency p50": msOrNone(r.latency.p50),
        "latency p99": msOrNone(r.latency.p99),
        "CPU ms / 1,000 edits": r.cpu ? r.cpu.perThousandEdits.toFixed(0) : "",
        "CPU split": r.cpu ? Object.entries(r.cpu.perProcessMs).map(([role, cpuMs]) => `${role} ${cpuMs.toFixed(0)} ms`).join(", ") : "",
        "others (cores)": othersCell(r.cpu),
      })),
    );
  }
  if (throughput.length > 0) {
    console.log(`\nStepped throughput, each run, ${throughput[0]!.clients} clients: highest offered rate with p99 < 100 ms, all delivered, all identical`);
    console.table(
      throughput.map((r) => ({
        run: r.run,
        target: r.target,
        "edits/s in": r.sustainedRate,
        "deliveries/s out": r.deliveriesPerSecond,
        steps: r.steps.map((s) => `${s.rate}:${s.p99.toFixed(0)}ms${s.delivered && s.converged ? "" : "!"}`).join(" "),
        "CPU ms / 1,000 edits": r.cpu ? r.cpu.perThousandEdits.toFixed(0) : "",
        "others (cores)": othersCell(r.cpu),
      })),
    );
  }
  reportFigures(`Latency until every reader has the edit, ${over}`, summary.filter((f) => f.kind === "latency"));
  reportFigures(`Throughput, ${over}`, summary.filter((f) => f.kind === "throughput"));
  reportFigures(
    `Server CPU per 1,000 edits (utime + stime of wrangler's workerd processes, its proxy included, over each run and the work it left behind), ${over}`,
    summary.filter((f) => f.kind === "cpu"),
  );
  reportFallback(fallbackTyping, fallbackIdle);
  reportFigures(
    `The HTTP fallback beside WebSockets, edgedoc, stock providers; ratios to the all-WebSocket baseline (figures to document, no target), ${over}`,
    summary.filter((f) => f.kind === "fallback"),
  );
  const judged = summary.filter((f) => f.verdict !== null);
  if (judged.length > 0) {
    console.log("\nTargets against the peer (a miss is explained only where relay+sqlite misses it against the peer too):");
    for (const f of judged) {
      console.log(`  ${f.verdict === "met" ? "met   " : "MISSED"} ${f.figure}: edgedoc/peer ${f.edgedocVsPeer!.toFixed(2)}x (${f.goal!.text})${f.verdict === "met" ? "" : `, ${f.verdict}${f.floorVsPeer === null ? "" : `: relay+sqlite/peer ${f.floorVsPeer.toFixed(2)}x`}`}`);
    }
  }
  if (coldLoad.length > 0) {
    console.log("\nCold load and storage (stock provider; server restarted; socket open to synced)");
    console.table(
      coldLoad.map((r) => ({
        document: r.copies === 1 ? r.document : `${r.document} x${r.copies}`,
        keystrokes: r.keystrokes,
        "V1 state": kib(r.encodedV1Bytes),
        "V2 state": kib(r.encodedV2Bytes),
        "stored (log)": kib(r.storedBytesAfterUpload),
        "stored (compacted)": kib(r.storedBytesAfterCompaction),
        "stored / V1": (r.storedBytesAfterCompaction / r.encodedV1Bytes).toFixed(2),
        "cold load median": ms(median(r.coldLoadMs)),
      })),
    );
  }
  if (memory.length > 0) {
    console.log("\nworkerd memory with idle connections in one room (wrangler dev runs two workerd processes: proxy + runtime)");
    const base = memory[0]!;
    console.table(
      memory.map((r) => ({
        connections: r.connections,
        hibernated: r.connections === 0 ? "" : r.hibernated ? "yes" : "NO",
        "RSS per process": r.rssBytesPerProcess.map(kib).join(" + "),
        "per connection": r.connections > 0 ? `${((r.rssBytes - base.rssBytes) / r.connections / 1024).toFixed(1)} KiB` : "",
        "per connection, each process": r.connections > 0
          ? r.rssBytesPerProcess.map((bytes, i) => `${((bytes - base.rssBytesPerProcess[i]!) / r.connections / 1024).toFixed(1)} KiB`).join(" + ")
          : "",
      })),
    );
  }
  if (idle.length > 0) reportIdle(idle);
  if (hostile.length > 0) reportHostile(hostile);
  if (history) reportHistory(history);
  if (crowd.length > 0) reportCrowd(crowd);
}

function reportHistory({ retention, server }: HistoryResult): void {
  console.log("\nVersion history, retention over time: automerge-paper as 100 sessions, an automatic version (V2 state) at each end, worker/retention.ts applied after each");
  console.table(
    retention.map((r) => ({
      document: r.copies === 1 ? r.document : `${r.document} x${r.copies}`,
      schedule: r.schedule,
      days: Number(r.spanDays.toFixed(1)),
      "versions kept": `${r.versionsKept}/${r.sessions}`,
      "history kept": kib(r.historyBytes),
      "all 100 versions": kib(r.allVersionsBytes),
      "final V2": kib(r.finalV2Bytes),
      "kept / final V2": (r.historyBytes / r.finalV2Bytes).toFixed(1),
    })),
  );
  if ("error" in server) {
    console.log(`Version history on the server: MEASUREMENT FAILED: ${server.error}`);
    return;
  }
  const reasons = Object.entries(server.versionsByReason).map(([reason, count]) => `${count} ${reason}`).join(", ");
  console.log(`\nVersion history on the server: ${server.sessions} sessions, each one POST /update of its delta, then a named version`);
  console.log(
    `  history: ${kib(server.historyBytes)} in ${server.versions} versions (${reasons}), ` +
      `${(server.historyBytes / server.finalV2Bytes).toFixed(1)}x the final V2 state (${kib(server.finalV2Bytes)}; V1 ${kib(server.finalV1Bytes)}); ` +
      `listed ${kib(server.listedVersionBytes)}, list JSON ${kib(server.listJsonBytes)}; document storedBytes ${kib(server.storedBytes)}`,
  );
  console.log(
    `  checks: version texts match the replay: ${server.versionTextsMatch ? "yes" : "NO"}; every restore changed the text to the version's: ${server.restoresChangedAndMatch ? "yes" : "NO"}`,
  );
  console.log(
    `  after the restores: history ${kib(server.historyBytesAfterRestores)} in ${server.versionsAfterRestores} versions; ` +
      `document ${kib(server.encodedBytesBeforeRestores)} -> ${kib(server.encodedBytesAfterRestores)} V1, ${server.itemsBeforeRestores} -> ${server.itemsAfterRestores} items`,
  );
  const floor = server.timings[0]!.medianMs;
  console.table(
    server.timings.map((t) => ({
      operation: t.operation,
      n: t.samples,
      median: ms(t.medianMs),
      p95: t.samples > 1 ? ms(t.p95Ms) : "",
      "median / floor": ratio(t.medianMs, floor),
    })),
  );
}

/**
 * Memory is judged against the issue's target; latency against the same run's baseline, with
 * a rule of thumb for "usual": p99 at most twice the baseline's plus 50 ms (wrangler, workerd
 * and this driver share the machine, which shows blips of that size), and no edit lost.
 */
function reportHostile(hostile: HostileResult[]): void {
  console.log(
    `\nHostile clients (fresh wrangler dev each): workerd RSS peak in the attack window minus the baseline's (target: under ${mib(MEMORY_TARGET_BYTES)});` +
      " honest relay latency, writer to reader at 20 edits/s, baseline -> attack",
  );
  const latencyUsual = (r: HostileResult) =>
    r.honest!.attack.delivered === r.honest!.attack.sent && r.honest!.attack.p99 <= 2 * r.honest!.baseline.p99 + 50;
  console.table(
    hostile.map((r) => ({
      attack: r.attack,
      "RSS delta": r.rss ? mib(r.rss.deltaBytes) : "",
      memory: r.rss ? (r.rss.deltaBytes <= MEMORY_TARGET_BYTES ? "ok" : "OVER") : "",
      "p50 base -> attack": r.honest ? `${msOrNone(r.honest.baseline.p50)} -> ${msOrNone(r.honest.attack.p50)}` : "",
      "p99 base -> attack": r.honest ? `${msOrNone(r.honest.baseline.p99)} -> ${msOrNone(r.honest.attack.p99)}` : "",
      "max attack": r.honest ? msOrNone(r.honest.attack.max) : "",
      "delivered (attack)": r.honest ? `${r.honest.attack.delivered}/${r.honest.attack.sent}` : "",
      latency: r.honest ? (latencyUsual(r) ? "ok" : "SLOW") : "",
      honest: r.honest ? honestVerdict(r.honest) : "",
    })),
  );
  console.log("Outcomes:");
  for (const r of hostile) console.log(`  ${r.attack}: ${r.error ? `MEASUREMENT FAILED: ${r.error}` : r.summary}`);
}

function honestVerdict(honest: NonNullable<HostileResult["honest"]>): string {
  const closed = honest.closed.map((c) => `${c.who} closed ${c.code}`);
  return [honest.converged ? "converged" : "NOT converged", ...closed].join(", ");
}

await main();
