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
  const elapsed = Math.min(0, then - now);
  for (const [unit, ms] of UNITS) if (-elapsed >= ms) return format.format(Math.round(elapsed / ms), unit);
  return format.format(0, "second");
}
