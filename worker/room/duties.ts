/**
 * The room's timed work as duties. Each says when it is next due and does its work when run;
 * one alarm serves them all (Durable Objects have one alarm each, and JS timers would keep
 * the object awake). A duty that throws is logged and retried with backoff while the others
 * still run, and the alarm is always re-armed for whatever is still due.
 */
import { DUTY_RETRY_FIRST_MS, DUTY_RETRY_MAX_MS } from "../limits";
import { logEvent } from "../log";
import type { StoragePort } from "./ports";

export interface Duty {
  /** For logs: `duty_failed` names it. */
  readonly name: string;
  /** When the duty must next run, or null when it has nothing to do. A time in the past means now. */
  nextDue(now: number): number | null;
  run(now: number): void | Promise<void>;
}

/** Failures in a row of one duty, and when it may be tried again. */
interface Backoff {
  failures: number;
  retryAt: number;
}

export class Duties {
  private readonly backoff = new Map<string, Backoff>();

  constructor(
    private readonly duties: readonly Duty[],
    private readonly room: string | undefined,
  ) {}

  /**
   * Runs, in order, every duty due by `dueBy`, each in isolation. `dueBy` is the later of now
   * and the time the alarm was set for: an alarm that fires early (the runtime may, and tests
   * do) still does the work it was set for; each duty checks its own conditions against `now`.
   */
  async runDue(now: number, dueBy: number): Promise<void> {
    for (const duty of this.duties) {
      const due = this.dueOf(duty, now);
      if (due === null || due > dueBy) continue;
      try {
        await duty.run(now);
        this.backoff.delete(duty.name);
      } catch (error) {
        this.failed(duty, now, error);
      }
    }
  }

  /** When the alarm must next fire: the earliest due time of any duty, or null when none has work. */
  nextDue(now: number): number | null {
    let next: number | null = null;
    for (const duty of this.duties) {
      const due = this.dueOf(duty, now);
      if (due !== null && (next === null || due < next)) next = due;
    }
    return next;
  }

  /** Forgets every failure (the storage they were about was deleted). */
  reset(): void {
    this.backoff.clear();
  }

  /**
   * Records a failure of `duty` (its work, or the question when it is due) and returns when it
   * is retried: 30 s later, doubling with each failure in a row. A question that throws again
   * while the duty backs off keeps the retry time it has.
   */
  private failed(duty: Duty, now: number, error: unknown): number {
    const before = this.backoff.get(duty.name);
    if (before !== undefined && before.retryAt > now) return before.retryAt;
    const failures = (before?.failures ?? 0) + 1;
    const delay = Math.min(DUTY_RETRY_MAX_MS, DUTY_RETRY_FIRST_MS * 2 ** (failures - 1));
    this.backoff.set(duty.name, { failures, retryAt: now + delay });
    logEvent("duty_failed", { room: this.room, duty: duty.name, error: String(error), failures, retryInMs: delay });
    return now + delay;
  }

  /** A duty's due time, pushed back while it backs off; a duty whose question throws is due at its retry. */
  private dueOf(duty: Duty, now: number): number | null {
    const retryAt = this.backoff.get(duty.name)?.retryAt ?? null;
    try {
      const due = duty.nextDue(now);
      return due === null ? null : retryAt === null ? due : Math.max(due, retryAt);
    } catch (error) {
      return this.failed(duty, now, error);
    }
  }
}

/**
 * The one alarm the duties share: when it is set for (read from storage once after a wake),
 * moved earlier whenever a duty is due sooner, and later only when asked, since a move costs a
 * storage write and events would otherwise move it on every frame.
 */
export class DutyAlarm {
  /** When the alarm is set for: a time, null for none, undefined when not yet read after a wake. */
  private at: number | null | undefined = undefined;

  constructor(
    private readonly duties: Duties,
    private readonly storage: Pick<StoragePort, "getAlarm" | "setAlarm">,
    private readonly now: () => number,
  ) {}

  /** The alarm fired: returns the time it was set for (an early alarm still does that work); it is unset now. */
  fired(): number {
    const now = this.now();
    const dueBy = Math.max(now, this.at ?? now);
    this.at = null;
    return dueBy;
  }

  /** The alarm was deleted with the storage. */
  cleared(): void {
    this.at = null;
  }

  /**
   * Makes sure the alarm fires by the earliest time any duty is due; `mayMoveLater` also moves
   * a set alarm later. Otherwise an earlier alarm is kept: it fires, finds less to do, and the
   * alarm is then set exactly.
   */
  async schedule(mayMoveLater: boolean): Promise<void> {
    const due = this.duties.nextDue(this.now());
    if (due === null) return;
    if (this.at === undefined) this.at = await this.storage.getAlarm();
    if (this.at === due || (this.at !== null && this.at < due && !mayMoveLater)) return;
    await this.storage.setAlarm(due);
    this.at = due;
  }
}
