/**
 * Schedules that once failed, replayed on every run (after the random ones) so that a fixed
 * bug stays fixed. Pin one when its defect is fixed: either a saved, shrunk schedule from
 * sim/failures/ (`file`, the better regression test: it does not depend on how the explorer
 * generates schedules) or a seed and schedule number from a failure report (and `steps` if the
 * run used a non-default --steps), each with one line saying what it caught.
 *
 * sim/failures/ holds the shrunk replays of the defects found so far; `npm run simulate --
 * --known` replays them all and says which still fail.
 */
export type PinnedSchedule =
  | { file: string; note: string }
  | { seed: number; schedule: number; steps?: number; note: string };

export const PINNED: readonly PinnedSchedule[] = [];
