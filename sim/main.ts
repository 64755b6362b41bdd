/**
 * The simulation's command line (run through scripts/simulate.ts, which bundles this file):
 *
 *   npm run simulate -- --schedules N [--seed S] [--steps 60] [--jobs 2] [--verbose]
 *   npm run simulate -- --seed S --schedule K [--steps 60]     one schedule, traced
 *   npm run simulate -- --replay sim/failures/<file>.json       a saved (shrunk) schedule, traced
 *
 * Schedule K of seed S is a pure function of (S, K, steps, --transport): the explorer's PRNG, the runtime's
 * randomness and the clock all derive from it (sim/determinism.ts). Schedules are split across
 * worker threads; on a violation the first failing schedule is shrunk, written to
 * sim/failures/ and printed with the commands that replay it. The last line is always
 * `simulate: N schedules, M steps, V violations (seed S)`.
 */
import "./determinism";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { simConfig } from "./config";
import { CORES } from "./cores";
import { wallNow, wallRandom } from "./determinism";
import { DEFAULT_STEPS, generateSchedule, TRANSPORTS, type Transports } from "./explorer";
import { PINNED } from "./pinned";
import { runSchedule, type RunResult } from "./run";
import { formatStep, type Schedule } from "./schedule";
import { shrink } from "./shrink";
import type { Violation } from "./world";

interface Options {
  schedules: number;
  seed: number;
  seedGiven: boolean;
  steps: number;
  verbose: boolean;
  jobs: number;
  core: string;
  /** Which clients start on the HTTP fallback: the seeded mix, or all of them on one transport (sim/explorer.ts). */
  transport: Transports;
  shrinkSeconds: number;
  pinned: boolean;
  checkDeterminism: boolean;
  ignore: string[];
}

/** What a worker reports per schedule. */
interface ScheduleReport {
  index: number;
  steps: number;
  events: number;
  trace: number;
  violation: Violation | null;
}

interface WorkerTask {
  edgedocSim: true;
  options: Options;
  indices: number[];
}

const usage = `usage: npm run simulate -- [--schedules N] [--seed S] [--steps N] [--jobs N] [--verbose]
       npm run simulate -- --seed S --schedule K [--steps N] [--shrink]
       npm run simulate -- --replay sim/failures/<file>.json
       npm run simulate -- --known        replay every saved failure, say which still fail
options: --core room|stub|stub-lossy  --transport mixed|ws|http  --shrink-seconds N  --no-pinned  --check-determinism
         --ignore inv1,inv2   set known invariant violations aside while looking for others (triage)`;

export async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        schedules: { type: "string" },
        seed: { type: "string" },
        steps: { type: "string" },
        schedule: { type: "string" },
        replay: { type: "string" },
        jobs: { type: "string" },
        core: { type: "string" },
        transport: { type: "string" },
        verbose: { type: "boolean", short: "v" },
        "shrink-seconds": { type: "string" },
        "no-pinned": { type: "boolean" },
        "check-determinism": { type: "boolean" },
        shrink: { type: "boolean" },
        known: { type: "boolean" },
        ignore: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (error) {
    out(`${String(error instanceof Error ? error.message : error)}\n${usage}`);
    return 2;
  }
  if (parsed.help) {
    out(usage);
    return 0;
  }
  const seedGiven = parsed.seed !== undefined;
  const options: Options = {
    schedules: integer(parsed.schedules, 100, "--schedules"),
    seed: seedGiven ? integer(parsed.seed, 0, "--seed") : Math.floor(wallRandom() * 2 ** 32),
    seedGiven,
    steps: integer(parsed.steps, DEFAULT_STEPS, "--steps"),
    verbose: parsed.verbose ?? false,
    jobs: Math.max(1, integer(parsed.jobs, Math.min(2, availableParallelism()), "--jobs")),
    core: parsed.core ?? "room",
    transport: (parsed.transport ?? "mixed") as Transports,
    shrinkSeconds: integer(parsed["shrink-seconds"], 60, "--shrink-seconds"),
    pinned: !(parsed["no-pinned"] ?? false),
    checkDeterminism: parsed["check-determinism"] ?? false,
    ignore: (parsed.ignore ?? "").split(",").map((name) => name.trim()).filter(Boolean),
  };
  if (!TRANSPORTS.includes(options.transport)) {
    out(`unknown transport ${options.transport}; one of ${TRANSPORTS.join(", ")}`);
    return 2;
  }
  if (CORES[options.core] === undefined) {
    out(`unknown core ${options.core}; one of ${Object.keys(CORES).join(", ")}`);
    return 2;
  }
  if (parsed.replay !== undefined) return replay(parsed.replay, options);
  if (parsed.known) return known(options);
  if (parsed.schedule !== undefined) {
    const index = integer(parsed.schedule, 0, "--schedule");
    if (parsed.shrink) {
      // Shrink this one schedule (no trace): the smallest failing schedule and its replay file.
      const result = await run(generateSchedule(options.seed, index, options.steps, options.transport), options, null);
      const violation = result.violations[0];
      if (violation) await reportFailure({ index, steps: result.steps, events: result.events, trace: result.trace, violation }, options, options.shrinkSeconds * 1000);
      out(summary(1, result.steps, violation ? 1 : 0, options.seed));
      return violation ? 1 : 0;
    }
    return traced(generateSchedule(options.seed, index, options.steps, options.transport), options);
  }
  return explore(options);
}

/** Writes a line to stdout (console.* is captured while schedules run: sim/determinism.ts). */
function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function integer(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) throw new Error(`${name} must be a non-negative integer, not ${value}`);
  return parsed;
}

async function run(schedule: Schedule, options: Options, trace: ((line: string) => void) | null): Promise<RunResult> {
  return runSchedule(schedule, { factory: CORES[options.core]!, config: simConfig(schedule.endpoints), trace, ignore: options.ignore });
}

/** Runs one schedule with its full trace (--schedule, --replay). */
async function traced(schedule: Schedule, options: Options, expected?: Violation): Promise<number> {
  printHeader(schedule);
  const result = await run(schedule, options, (line) => process.stdout.write(`${line}\n`));
  if (options.checkDeterminism) {
    const again = await run(schedule, options, null);
    out(again.trace === result.trace ? "determinism: the second run was identical" : `determinism: the second run differed (trace ${result.trace} vs ${again.trace})`);
  }
  out(`trace ${result.trace.toString(16)}: ${result.steps} steps, ${result.events} events`);
  for (const violation of result.violations) out(`violation at step ${violation.step}: [${violation.invariant}] ${violation.message}`);
  if (expected && result.violations.length === 0) out(`(the saved failure was: [${expected.invariant}] ${expected.message})`);
  out(summary(1, result.steps, result.violations.length > 0 ? 1 : 0, schedule.seed));
  return result.violations.length > 0 ? 1 : 0;
}

/** A replay file (sim/failures/): the shrunk schedule, what it failed with, and the --ignore it was shrunk under. */
interface SavedFailure {
  schedule: Schedule;
  violation?: Violation;
  core?: string;
  ignore?: string[];
  original?: string;
}

function readFailure(file: string): SavedFailure {
  return JSON.parse(readFileSync(file, "utf8")) as SavedFailure;
}

async function replay(file: string, options: Options): Promise<number> {
  const saved = readFailure(file);
  return traced(saved.schedule, { ...options, core: saved.core ?? options.core, ignore: [...options.ignore, ...(saved.ignore ?? [])] }, saved.violation);
}

/** --known: replays every file in sim/failures/ and says which still fail the way they did. */
async function known(options: Options): Promise<number> {
  const directory = join(process.cwd(), "sim", "failures");
  const files = readdirSync(directory).filter((name) => name.endsWith(".json")).sort();
  let failing = 0;
  let steps = 0;
  for (const name of files) {
    const saved = readFailure(join(directory, name));
    const result = await run(saved.schedule, { ...options, core: saved.core ?? options.core, ignore: [...options.ignore, ...(saved.ignore ?? [])] }, null);
    steps += result.steps;
    const violation = result.violations[0];
    if (violation) failing++;
    out(`${violation ? "FAILS " : "passes"} ${name}${violation ? `: [${violation.invariant}] ${violation.message.split("\n")[0]!.slice(0, 160)}` : saved.violation ? ` (was [${saved.violation.invariant}])` : ""}`);
  }
  out(summary(files.length, steps, failing, 0));
  return failing > 0 ? 1 : 0;
}

function summary(schedules: number, steps: number, violations: number, seed: number): string {
  return `simulate: ${schedules} schedules, ${steps} steps, ${violations} violations (seed ${seed})`;
}

function printHeader(schedule: Schedule): void {
  out(`schedule ${schedule.index} of seed ${schedule.seed}: ${schedule.steps.length} steps, ${schedule.endpoints} webhook endpoints, runtime seed ${schedule.runtimeSeed}${schedule.slowIo ? ", slow storage calls" : ""}${schedule.duringFetch === undefined ? "" : `, events while a fetch is out (${schedule.duringFetch})`}`);
  for (const [index, client] of schedule.clients.entries()) {
    out(`  client ${index}: ${client.kind} ${client.mode}, id ${client.clientId}${client.owner ? `, owner ${client.owner}` : ""}${client.tokenTtlMs ? `, token ${client.tokenTtlMs} ms` : ""}${client.transport === "http" ? ", on the HTTP fallback" : ""}${client.quiet ? `, quiet (${client.quiet} tab)` : ""}`);
  }
}

/** Runs `indices` in this thread. */
async function runShare(options: Options, indices: number[], report: (result: ScheduleReport) => void): Promise<void> {
  for (const index of indices) {
    const schedule = generateSchedule(options.seed, index, options.steps, options.transport);
    const result = await run(schedule, options, null);
    if (options.checkDeterminism) {
      const again = await run(schedule, options, null);
      if (again.trace !== result.trace) {
        result.violations.push({ step: -1, invariant: "determinism", message: `schedule ${index} ran differently the second time (trace ${result.trace} vs ${again.trace})` });
      }
    }
    report({ index, steps: result.steps, events: result.events, trace: result.trace, violation: result.violations[0] ?? null });
  }
}

async function explore(options: Options): Promise<number> {
  const started = wallNow();
  const reports: ScheduleReport[] = [];
  const onReport = (report: ScheduleReport) => {
    reports.push(report);
    if (options.verbose) {
      out(`schedule ${report.index}: ${report.steps} steps, ${report.events} events, trace ${report.trace.toString(16)}${report.violation ? `, VIOLATION [${report.violation.invariant}] ${report.violation.message}` : ""}`);
    }
  };
  const all = Array.from({ length: options.schedules }, (_, i) => i);
  const jobs = Math.min(options.jobs, Math.max(1, options.schedules));
  if (jobs <= 1) {
    await runShare(options, all, onReport);
  } else {
    // Interleaved shares: schedules vary in cost, so neighbours are spread across workers.
    await Promise.all(
      Array.from({ length: jobs }, (_, job) => {
        const task: WorkerTask = { edgedocSim: true, options, indices: all.filter((i) => i % jobs === job) };
        return new Promise<void>((resolve, reject) => {
          const worker = new Worker(new URL(import.meta.url), { workerData: task });
          worker.on("message", (report: ScheduleReport) => onReport(report));
          worker.on("error", reject);
          worker.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`simulation worker exited with ${code}`))));
        });
      }),
    );
  }
  reports.sort((a, b) => a.index - b.index);
  const seconds = (wallNow() - started) / 1000;
  const steps = reports.reduce((sum, report) => sum + report.steps, 0);
  const events = reports.reduce((sum, report) => sum + report.events, 0);
  const failures = reports.filter((report) => report.violation !== null);
  out(
    `ran ${reports.length} schedules in ${seconds.toFixed(1)} s with ${jobs} job(s): ${(reports.length / seconds).toFixed(1)} schedules/s, ${Math.round(steps / seconds)} steps/s, ${Math.round(events / seconds)} events/s`,
  );
  let pinnedFailures = 0;
  if (options.pinned && PINNED.length > 0) {
    for (const pinned of PINNED) {
      const saved = "file" in pinned ? readFailure(join(process.cwd(), "sim", "failures", pinned.file)) : null;
      const schedule = saved?.schedule ?? ("seed" in pinned ? generateSchedule(pinned.seed, pinned.schedule, pinned.steps ?? DEFAULT_STEPS) : null)!;
      const result = await run(schedule, options, null);
      const violation = result.violations[0];
      if (violation) {
        pinnedFailures++;
        out(`pinned ${"file" in pinned ? pinned.file : `seed ${pinned.seed} schedule ${pinned.schedule}`} (${pinned.note}) fails again: [${violation.invariant}] ${violation.message}`);
        out(
          `  replay: npm run simulate -- ${"file" in pinned ? `--replay sim/failures/${pinned.file}` : `--seed ${pinned.seed} --schedule ${pinned.schedule}${pinned.steps ? ` --steps ${pinned.steps}` : ""}`}`,
        );
      }
    }
    out(`pinned: ${PINNED.length} schedules replayed, ${pinnedFailures} violations`);
  }
  if (failures.length > 0) {
    const byInvariant = new Map<string, number>();
    for (const failure of failures) byInvariant.set(failure.violation!.invariant, (byInvariant.get(failure.violation!.invariant) ?? 0) + 1);
    out(`violations by invariant: ${[...byInvariant].map(([name, count]) => `${name} ${count}`).join(", ")}`);
    for (const failure of failures.slice(0, 10)) {
      out(`  schedule ${failure.index}, step ${failure.violation!.step}: [${failure.violation!.invariant}] ${failure.violation!.message.split("\n")[0]}`);
    }
    if (failures.length > 10) out(`  ... and ${failures.length - 10} more`);
    // Shrink one failure per invariant (the first of each), so different defects each get a replay.
    const firstOfEach = [...new Map(failures.map((failure) => [failure.violation!.invariant, failure])).values()];
    for (const failure of firstOfEach) await reportFailure(failure, options, options.shrinkSeconds * 1000 / firstOfEach.length);
  }
  if (!options.seedGiven) out(`(no --seed given: chose ${options.seed})`);
  out(summary(reports.length, steps, failures.length + pinnedFailures, options.seed));
  return failures.length + pinnedFailures > 0 ? 1 : 0;
}

/** Shrinks a failing schedule, writes it to sim/failures/ and prints it with the replay commands. */
async function reportFailure(failure: ScheduleReport, options: Options, budgetMs: number): Promise<void> {
  const original = generateSchedule(options.seed, failure.index, options.steps, options.transport);
  const violation = failure.violation!;
  const started = wallNow();
  const shrunk = await shrink(
    original,
    violation,
    async (candidate) => (await run(candidate, options, null)).violations[0] ?? null,
    budgetMs,
    wallNow,
  );
  const directory = join(process.cwd(), "sim", "failures");
  mkdirSync(directory, { recursive: true });
  const file = join(directory, `${options.seed}-${failure.index}-${violation.invariant.replaceAll(":", "-")}.json`);
  const stepsFlag = options.steps === DEFAULT_STEPS ? "" : ` --steps ${options.steps}`;
  const coreFlag = `${options.core === "room" ? "" : ` --core ${options.core}`}${options.transport === "mixed" ? "" : ` --transport ${options.transport}`}`;
  writeFileSync(
    file,
    `${JSON.stringify({ violation: shrunk.violation, core: options.core, ignore: options.ignore, original: `npm run simulate -- --seed ${options.seed} --schedule ${failure.index}${stepsFlag}${coreFlag}`, schedule: shrunk.schedule }, null, 2)}\n`,
  );
  out("");
  out(`[${violation.invariant}] schedule ${failure.index} of seed ${options.seed}: ${violation.message}`);
  out(`smallest failing schedule found: ${shrunk.schedule.steps.length} of ${original.steps.length} steps (${shrunk.runs} runs, ${((wallNow() - started) / 1000).toFixed(1)} s)`);
  printHeader(shrunk.schedule);
  for (const [index, step] of shrunk.schedule.steps.entries()) out(formatStep(step, index));
  out(`fails at step ${shrunk.violation.step}: [${shrunk.violation.invariant}] ${shrunk.violation.message}`);
  out(`replay (shrunk):   npm run simulate -- --replay ${relative(process.cwd(), file)}`);
  out(`replay (original): npm run simulate -- --seed ${options.seed} --schedule ${failure.index}${stepsFlag}${coreFlag}`);
}

// A worker thread of this same bundle: run its share and report each schedule.
if (!isMainThread && (workerData as WorkerTask | undefined)?.edgedocSim) {
  const task = workerData as WorkerTask;
  await runShare(task.options, task.indices, (report) => parentPort!.postMessage(report));
}
