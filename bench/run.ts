/**
 * `npm run bench`: runs the benchmark scenarios against a real `wrangler dev` on loopback,
 * prints a table and writes the results as JSON under bench/results/.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { measureColdLoad } from "./cold-load.ts";

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

async function main(): Promise<void> {
  const machine = { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  const coldLoad = [await measureColdLoad({ copies: 1 }), await measureColdLoad({ copies: 10 })];

  console.log("\nCold load and storage (automerge-paper trace, stock y-websocket provider, wrangler dev)\n");
  console.table(
    coldLoad.map((r) => ({
      document: r.copies === 1 ? r.document : `${r.document} x${r.copies}`,
      keystrokes: r.keystrokes,
      "V1 state": kib(r.encodedV1Bytes),
      "V2 state": kib(r.encodedV2Bytes),
      "stored (log)": kib(r.storedBytesAfterUpload),
      "stored (compacted)": kib(r.storedBytesAfterCompaction),
      "stored / V1": (r.storedBytesAfterCompaction / r.encodedV1Bytes).toFixed(2),
      "cold load median": `${median(r.coldLoadMs).toFixed(0)} ms`,
      "cold load runs": r.coldLoadMs.map((ms) => ms.toFixed(0)).join(", "),
    })),
  );

  mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
  const file = new URL(`./results/cold-load-${new Date().toISOString().slice(0, 10)}.json`, import.meta.url);
  writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), machine, coldLoad }, null, 2)}\n`);
  console.log(`\nresults written to ${file.pathname}`);
}

await main();
