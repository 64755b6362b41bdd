/**
 * Times as people read them, for the History panel and the home page.
 */

const UNITS: readonly [Intl.RelativeTimeFormatUnit, number][] = [
  ["year", 365 * 86_400_000],
  ["month", 30 * 86_400_000],
  ["week", 7 * 86_400_000],
  ["day", 86_400_000],
  ["hour", 3_600_000],
  ["minute", 60_000],
];

/**
 * "5 minutes ago", "yesterday", "now" (under a minute: a count of seconds would be stale at
 * once). A time ahead of ours reads as now: the server's clock and this machine's may differ.
 */
export function relativeTime(then: number, now: number, format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" })): string {
  return inLargestUnit(Math.min(0, then - now), format, "second");
}

/** `ms` from now (negative: ago) in the largest unit it fills, or "0 `zeroUnit`s" under a minute. */
export function inLargestUnit(ms: number, format: Intl.RelativeTimeFormat, zeroUnit: Intl.RelativeTimeFormatUnit): string {
  for (const [unit, size] of UNITS) if (Math.abs(ms) >= size) return format.format(Math.round(ms / size), unit);
  return format.format(0, zeroUnit);
}
