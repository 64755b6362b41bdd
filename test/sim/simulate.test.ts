/**
 * The deterministic simulation of the room core (sim/, `npm run simulate`), as a CI gate: a
 * fixed budget of schedules of a fixed seed, so that a change lands or not on its own merits
 * (exploring new seeds is `npm run simulate` without `--seed`, before committing), and the
 * pinned schedules of sim/pinned.ts, replayed by the run itself. A failure prints the
 * simulator's report: the smallest failing schedule and the command that replays it.
 *
 * SIM_SCHEDULES (default 6,000: about a minute on two idle cores, longer beside the other tiers) and SIM_SEED override the budget and the seed.
 */
import { execFile } from "node:child_process";
import { expect, test } from "vitest";

const schedules = Number(process.env["SIM_SCHEDULES"] ?? 6_000);
const seed = Number(process.env["SIM_SEED"] ?? 20261206);

test(`simulation: ${schedules} schedules of seed ${seed}, no violations`, async () => {
  const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
    execFile(
      "npm",
      ["run", "--silent", "simulate", "--", "--schedules", String(schedules), "--seed", String(seed), "--shrink-seconds", "60"],
      { maxBuffer: 64 * 1024 * 1024, timeout: 540_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
  const summary = output.trim().split("\n").at(-1) ?? "";
  expect(summary, output).toMatch(new RegExp(`^simulate: ${schedules} schedules, \\d+ steps, 0 violations \\(seed ${seed}\\)$`));
  expect(code, output).toBe(0);
}, 600_000);
