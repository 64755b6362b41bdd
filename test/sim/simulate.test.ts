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

function simulate(args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile("npm", ["run", "--silent", "simulate", "--", ...args], { maxBuffer: 64 * 1024 * 1024, timeout: 540_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, output: `${stdout}${stderr}` }),
    );
  });
}

test(`simulation: ${schedules} schedules of seed ${seed}, no violations`, async () => {
  const { code, output } = await simulate(["--schedules", String(schedules), "--seed", String(seed), "--shrink-seconds", "60"]);
  const summary = output.trim().split("\n").at(-1) ?? "";
  expect(summary, output).toMatch(new RegExp(`^simulate: ${schedules} schedules, \\d+ steps, 0 violations \\(seed ${seed}\\)$`));
  expect(code, output).toBe(0);
}, 600_000);

// The harness itself: save confirmations that reach clients on the HTTP fallback are checked
// against storage. The lossy stub confirms edits it never writes; with every client on HTTP,
// one of the first schedules must be caught (each is replayed traced: nothing is written to sim/failures/).
test("simulation: a core that confirms unsaved edits is caught over the HTTP fallback", async () => {
  const outputs: string[] = [];
  for (let index = 0; index < 10; index++) {
    const { code, output } = await simulate(["--seed", "1", "--schedule", String(index), "--core", "stub-lossy", "--transport", "http"]);
    if (code === 1 && /violation at step -?\d+: \[confirmed-stored\]/.test(output)) return;
    outputs.push(output.trim().split("\n").slice(-3).join("\n"));
  }
  expect.fail(`no schedule caught the lossy core:\n${outputs.join("\n")}`);
}, 120_000);
