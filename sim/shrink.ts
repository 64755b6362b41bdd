/**
 * Shrinking: finds a smaller schedule that still fails the same way (the same invariant), by
 * dropping steps. Delta debugging (ddmin: drop chunks, halving their size when none can go),
 * then single steps from the end, within a time budget. Every candidate is a full, deterministic
 * run, so the result replays exactly.
 */
import type { Schedule } from "./schedule";
import type { Violation } from "./world";

/**
 * What "fails the same way" means: the same invariant and, for a thrown error, the same error
 * (a fault that throws and a missing table that throws are different defects), else the same
 * first words of the message (numbers aside).
 */
export function signature(violation: Violation): string {
  const line = (violation.message.split("\n")[0] ?? "").replace(/\d+/g, "#");
  const error = /Error: (.*)$/.exec(line)?.[1];
  // Otherwise the message's first words: "one event was sent ..." and "# webhook events still undelivered ..." differ.
  return `${violation.invariant}|${error ?? line.split(" ").slice(0, 4).join(" ")}`;
}

export interface ShrinkResult {
  schedule: Schedule;
  violation: Violation;
  runs: number;
}

export async function shrink(
  schedule: Schedule,
  violation: Violation,
  run: (candidate: Schedule) => Promise<Violation | null>,
  budgetMs: number,
  clock: () => number,
): Promise<ShrinkResult> {
  const deadline = clock() + budgetMs;
  let best = { schedule, violation };
  let runs = 0;
  // Steps after the failing one cannot matter: the run stopped there.
  if (violation.step >= 0 && violation.step + 1 < schedule.steps.length) {
    const cut = { ...schedule, steps: schedule.steps.slice(0, violation.step + 1) };
    runs++;
    const found = await run(cut);
    if (found && signature(found) === signature(violation)) best = { schedule: cut, violation: found };
  }
  const tryCandidate = async (steps: Schedule["steps"]): Promise<boolean> => {
    if (clock() > deadline) return false;
    runs++;
    const candidate = { ...best.schedule, steps };
    const found = await run(candidate);
    if (!found || signature(found) !== signature(violation)) return false;
    best = { schedule: candidate, violation: found };
    return true;
  };
  let granularity = 2;
  while (best.schedule.steps.length >= 2 && clock() < deadline) {
    const steps = best.schedule.steps;
    const chunk = Math.ceil(steps.length / granularity);
    let reduced = false;
    for (let start = 0; start < steps.length; start += chunk) {
      if (await tryCandidate([...steps.slice(0, start), ...steps.slice(start + chunk)])) {
        granularity = Math.max(granularity - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (chunk <= 1) break;
      granularity = Math.min(steps.length, granularity * 2);
    }
  }
  // One at a time, from the end (later steps depend on earlier ones more often than not).
  for (let i = best.schedule.steps.length - 1; i >= 0 && clock() < deadline; i--) {
    const steps = best.schedule.steps;
    if (i >= steps.length) continue;
    await tryCandidate([...steps.slice(0, i), ...steps.slice(i + 1)]);
  }
  return { ...best, runs };
}
