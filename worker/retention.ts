/**
 * Which versions a document's history keeps (docs/history.md). Pure, so the policy is tested
 * over simulated months without storage, and the benchmark replays it on real traces.
 *
 * Named versions stay until someone deletes them. Automatic versions are thinned by age:
 * every one from the last day, the newest of each hour for a week, the newest of each day for
 * 90 days, none older. Then, oldest automatic first, they are dropped while the history is
 * over its byte budget or its count; the newest version is always kept, so the
 * `before-restore` version that undoes a restore survives a history full of named versions.
 */
// With its extension, unlike the other worker modules: the benchmark runs this one in Node too.
import { DAY_MS, HOUR_MS, MAX_HISTORY_BYTES, MAX_VERSIONS } from "./limits.ts";

export interface RetainedVersion {
  id: number;
  /** When it was taken, ms since the epoch. */
  createdAt: number;
  named: boolean;
  bytes: number;
}

/** Age tiers of automatic versions: younger than `maxAge`, keep one per `bucket` (0: keep all). */
const TIERS: readonly { maxAge: number; bucket: number }[] = [
  { maxAge: DAY_MS, bucket: 0 },
  { maxAge: 7 * DAY_MS, bucket: HOUR_MS },
  { maxAge: 90 * DAY_MS, bucket: DAY_MS },
];

/** The ids of `versions` that the policy drops at `now`. */
export function versionsToDrop(
  versions: readonly RetainedVersion[],
  now: number,
  limits: { maxBytes: number; maxVersions: number } = { maxBytes: MAX_HISTORY_BYTES, maxVersions: MAX_VERSIONS },
): number[] {
  const newestFirst = [...versions].sort((a, b) => b.createdAt - a.createdAt || b.id - a.id);
  const newestId = newestFirst[0]?.id;
  const drop = new Set<number>();
  // Buckets are fixed slices of time (not relative to `now`), so the version kept for an
  // hour stays the one kept for that hour as it ages, and thinning never churns.
  const seenBuckets = new Set<string>();
  for (const version of newestFirst) {
    if (version.named || version.id === newestId) continue;
    const age = now - version.createdAt;
    const tier = TIERS.findIndex((candidate) => age < candidate.maxAge);
    if (tier === -1) {
      drop.add(version.id);
      continue;
    }
    const { bucket } = TIERS[tier]!;
    if (bucket === 0) continue;
    const key = `${tier}:${Math.floor(version.createdAt / bucket)}`;
    if (seenBuckets.has(key)) drop.add(version.id);
    else seenBuckets.add(key);
  }
  let bytes = 0;
  let count = 0;
  for (const version of newestFirst) {
    if (drop.has(version.id)) continue;
    bytes += version.bytes;
    count += 1;
  }
  // Over budget: the oldest automatic versions go first.
  for (let i = newestFirst.length - 1; i >= 0 && (bytes > limits.maxBytes || count > limits.maxVersions); i--) {
    const version = newestFirst[i]!;
    if (version.named || version.id === newestId || drop.has(version.id)) continue;
    drop.add(version.id);
    bytes -= version.bytes;
    count -= 1;
  }
  return [...drop];
}
