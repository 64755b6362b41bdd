/**
 * What a fuzz run saw: a trace of its steps and of every request (the last lines go in a
 * failure's message) and the violations, each named by the step it happened in, so that a
 * failing seed can be replayed and read.
 */

/** Trace lines kept for the report: enough to see the steps before a violation. */
const TRACE_KEPT = 120;

export interface Violation {
  step: number;
  what: string;
}

export class FuzzLog {
  /** The step being run (0 before the first, then 1...; the heal and final checks have their own labels). */
  step = 0;
  readonly violations: Violation[] = [];
  private readonly lines: string[] = [];
  /** The trace up to the first violation, kept whole once it happens. */
  private traceAtFirstViolation: string[] | null = null;

  constructor(readonly seed: number) {}

  trace(line: string): void {
    this.lines.push(`[${this.step}] ${line}`);
    if (this.lines.length > TRACE_KEPT) this.lines.shift();
  }

  violation(what: string): void {
    this.trace(`VIOLATION ${what}`);
    this.violations.push({ step: this.step, what });
    this.traceAtFirstViolation ??= [...this.lines];
  }

  /** The failure message: seed, steps, what broke, how to replay, and the trace before the first violation. */
  report(): string {
    const listed = this.violations.slice(0, 10).map(({ step, what }) => `  seed ${this.seed}, step ${step}: ${what}`);
    return [
      `sync fuzz: ${this.violations.length} violation(s) with seed ${this.seed}`,
      ...listed,
      `replay: SYNC_FUZZ_SEED=${this.seed} npm exec -- vitest run --project workerd test/worker/sync-fuzz.test.ts`,
      "trace before the first violation:",
      ...(this.traceAtFirstViolation ?? this.lines).map((line) => `  ${line}`),
    ].join("\n");
  }
}
