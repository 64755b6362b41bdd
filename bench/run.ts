/**
 * `npm run bench [-- --scenario latency,throughput,cold-load,memory] [--clients 2,10,50] [--url ws://host/ws]`
 *
 * Starts `wrangler dev` (bench/wrangler.toml: edgedoc plus the relay floors) on loopback
 * ports with a temporary persist dir, runs bounded scenarios, prints tables and writes the
 * results as JSON under bench/results/. With --url it measures latency and throughput of any
 * y-websocket server instead (rooms are `<url>/<room>`), without floors.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { removePersistDir, startDevServer, type DevServer } from "../test/node/wrangler.ts";
import { measureColdLoad, type ColdLoadResult } from "./cold-load.ts";
import { measureIdleMemory, type MemoryResult } from "./memory.ts";
import { measureLatency, measureThroughput, traceFrames, type LatencyResult, type Target, type ThroughputResult } from "./realtime.ts";

const { values } = parseArgs({
  options: {
    scenario: { type: "string", default: "latency,throughput,cold-load,memory" },
    clients: { type: "string", default: "2,10,50" },
    url: { type: "string" },
  },
});
const scenarios = new Set(values.scenario.split(","));
const clientCounts = values.clients.split(",").map(Number);
const throughputClients = clientCounts.includes(10) ? 10 : clientCounts[0]!;

const ms = (value: number) => `${value.toFixed(1)} ms`;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
const ratio = (value: number, floor: number) => (floor > 0 ? (value / floor).toFixed(2) : "n/a");

function targetsFor(server: DevServer | null): Target[] {
  if (values.url) return [{ name: "server", roomUrl: (room) => `${values.url!.replace(/\/$/, "")}/${room}` }];
  const origin = server!.wsUrl.replace(/\/ws$/, "");
  return [
    { name: "edgedoc", roomUrl: (room) => `${origin}/ws/${room}` },
    { name: "relay", roomUrl: (room) => `${origin}/bench/relay/${room}` },
    { name: "relay+sqlite", roomUrl: (room) => `${origin}/bench/relay-sqlite/${room}` },
  ];
}

async function main(): Promise<void> {
  const machine = { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  const results: { latency: LatencyResult[]; throughput: ThroughputResult[]; coldLoad: ColdLoadResult[]; memory: MemoryResult[] } = {
    latency: [],
    throughput: [],
    coldLoad: [],
    memory: [],
  };
  const started = Date.now();
  // First, on a server of its own, so that nothing else has been allocated yet.
  if (!values.url && scenarios.has("memory")) results.memory = await measureIdleMemory();
  const server = values.url ? null : await startDevServer({ config: "bench/wrangler.toml" });
  try {
    const targets = targetsFor(server);
    const trace = scenarios.has("latency") || scenarios.has("throughput") ? traceFrames() : null;
    if (scenarios.has("latency")) {
      for (const clients of clientCounts) for (const target of targets) results.latency.push(await measureLatency(target, trace!, clients));
    }
    if (scenarios.has("throughput")) {
      for (const target of targets) results.throughput.push(await measureThroughput(target, trace!, throughputClients));
    }
  } finally {
    await server?.stop();
    if (server) removePersistDir(server.persistDir);
  }
  if (!values.url && scenarios.has("cold-load")) {
    results.coldLoad = [await measureColdLoad({ copies: 1 }), await measureColdLoad({ copies: 10 })];
  }
  report(results);
  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  // One file per run (never overwrite a run kept for the README).
  const file = new URL(`./results/bench-${new Date().toISOString().slice(0, 19).replace(/:/g, "-")}.json`, import.meta.url);
  const seconds = Math.round((Date.now() - started) / 1000);
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), seconds, machine, url: values.url ?? null, ...results }, null, 2)}\n`);
  console.log(`\n${seconds} s; results written to ${file.pathname}`);
}

function report({ latency, throughput, coldLoad, memory }: {
  latency: LatencyResult[];
  throughput: ThroughputResult[];
  coldLoad: ColdLoadResult[];
  memory: MemoryResult[];
}): void {
  if (latency.length > 0) {
    console.log("\nLatency: one writer replays automerge-paper at 200 edits/s (a cursor move every 5 edits); time to each other client");
    const floor = (clients: number) => latency.find((r) => r.target === "relay+sqlite" && r.clients === clients);
    console.table(
      latency.map((r) => ({
        target: r.target,
        clients: r.clients,
        converged: r.converged ? "yes" : "NO",
        "edit p50": ms(r.updates.p50),
        "edit p95": ms(r.updates.p95),
        "edit p99": ms(r.updates.p99),
        "p50 / floor": ratio(r.updates.p50, floor(r.clients)?.updates.p50 ?? 0),
        "p99 / floor": ratio(r.updates.p99, floor(r.clients)?.updates.p99 ?? 0),
        "cursor p50": ms(r.awareness.p50),
        "cursor p99": ms(r.awareness.p99),
      })),
    );
  }
  if (throughput.length > 0) {
    console.log(`\nThroughput with ${throughput[0]!.clients} clients: highest offered rate with p99 < 100 ms, all delivered, all identical`);
    const floor = throughput.find((r) => r.target === "relay+sqlite")?.sustainedRate ?? 0;
    console.table(
      throughput.map((r) => ({
        target: r.target,
        "edits/s in": r.sustainedRate,
        "deliveries/s out": r.deliveriesPerSecond,
        "vs relay+sqlite": ratio(r.sustainedRate, floor),
        steps: r.steps.map((s) => `${s.rate}:${s.p99.toFixed(0)}ms${s.delivered && s.converged ? "" : "!"}`).join(" "),
      })),
    );
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
}

await main();
