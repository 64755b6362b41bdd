/**
 * The room's small pure modules, tested directly: the token bucket behind every rate, row-sized
 * chunks, the deployment settings with their fallbacks, and the history retention policy.
 */
import { describe, expect, it } from "vitest";
import { joinChunks, splitIntoChunks } from "../../worker/chunks";
import { allowedOrigins, roomLimits } from "../../worker/config";
import { DAY_MS, DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_RATE_MESSAGES_PER_SECOND, PLATFORM_WEBSOCKET_MESSAGE_LIMIT } from "../../worker/limits";
import { TokenBucket } from "../../worker/rate";
import { versionsToDrop, type RetainedVersion } from "../../worker/retention";

describe("TokenBucket", () => {
  it("admits a full burst, refuses past it, and refills with time, never above its capacity", () => {
    const bucket = new TokenBucket(4, 2, 0);
    for (let i = 0; i < 4; i++) expect(bucket.take(1, 0)).toBe(true);
    expect(bucket.take(1, 0)).toBe(false);
    expect(bucket.take(1, 499)).toBe(false);
    expect(bucket.take(1, 500)).toBe(true);
    // A long pause refills to the capacity, not beyond it.
    expect(bucket.take(4, 60_000)).toBe(true);
    expect(bucket.take(1, 60_000)).toBe(false);
  });

  it("refuses a cost larger than what is left without spending anything", () => {
    const bucket = new TokenBucket(10, 1, 0);
    expect(bucket.take(11, 0)).toBe(false);
    expect(bucket.take(10, 0)).toBe(true);
  });
});

describe("chunks", () => {
  it("splits into parts of at most the chunk size and joins them back byte for byte", () => {
    const bytes = Uint8Array.from({ length: 10_001 }, (_, i) => i % 251);
    const parts = splitIntoChunks(bytes, 1_000);
    expect(parts.map((part) => part.length)).toEqual([...Array<number>(10).fill(1_000), 1]);
    expect(joinChunks(parts)).toEqual(bytes);
  });

  it("keeps an empty update as one empty part, so it is stored as a row", () => {
    expect(splitIntoChunks(new Uint8Array(0), 1_000)).toEqual([new Uint8Array(0)]);
    expect(joinChunks([new Uint8Array(0)])).toEqual(new Uint8Array(0));
  });
});

describe("configuration", () => {
  const env = (vars: Partial<Env>) => ({ ...vars }) as Env;

  it("uses the documented defaults when a variable is unset, and falls back rather than switch a limit off", () => {
    const defaults = roomLimits(env({}));
    expect(defaults.maxDocumentBytes).toBe(DEFAULT_MAX_DOCUMENT_BYTES);
    expect(defaults.rateMessagesPerSecond).toBe(DEFAULT_RATE_MESSAGES_PER_SECOND);
    expect(defaults.docTtlDays).toBeNull();
    for (const bad of ["0", "-5", "lots", "1.5", ""]) {
      expect(roomLimits(env({ RATE_MESSAGES_PER_SECOND: bad })).rateMessagesPerSecond).toBe(DEFAULT_RATE_MESSAGES_PER_SECOND);
    }
    expect(roomLimits(env({ RATE_MESSAGES_PER_SECOND: "50", DOC_TTL_DAYS: "0.5" }))).toMatchObject({ rateMessagesPerSecond: 50, docTtlDays: 0.5 });
  });

  it("caps frame and document sizes at Cloudflare's 32 MiB message limit", () => {
    const limits = roomLimits(env({ MAX_FRAME_BYTES: String(2 ** 30), MAX_DOCUMENT_BYTES: String(2 ** 30) }));
    expect(limits.maxFrameBytes).toBe(PLATFORM_WEBSOCKET_MESSAGE_LIMIT);
    expect(limits.maxDocumentBytes).toBe(PLATFORM_WEBSOCKET_MESSAGE_LIMIT);
  });

  it("reads allowed origins as a trimmed list, or none to allow any", () => {
    expect(allowedOrigins(env({}))).toBeNull();
    expect(allowedOrigins(env({ ALLOWED_ORIGINS: " , " }))).toBeNull();
    expect(allowedOrigins(env({ ALLOWED_ORIGINS: "https://a.example, https://b.example" }))).toEqual(new Set(["https://a.example", "https://b.example"]));
  });
});

describe("history retention", () => {
  const version = (id: number, createdAt: number, bytes = 100, named = false): RetainedVersion => ({ id, createdAt, named, bytes });
  /** Runs the policy as the room does, after every new version, over `times`; returns what is kept. */
  function simulate(times: number[], limits?: { maxBytes: number; maxVersions: number }, bytes = 100): RetainedVersion[] {
    let kept: RetainedVersion[] = [];
    times.forEach((at, i) => {
      kept.push(version(i + 1, at, bytes));
      const drop = new Set(versionsToDrop(kept, at, limits));
      kept = kept.filter((candidate) => !drop.has(candidate.id));
    });
    return kept;
  }

  it("thins a session every 10 minutes for 100 days to the day, the hours of the week, and the days of 90 days", () => {
    const start = Date.UTC(2026, 0, 1);
    const times = Array.from({ length: 100 * 144 }, (_, i) => start + i * 10 * 60_000);
    const now = times.at(-1)!;
    const kept = simulate(times);
    const age = (candidate: RetainedVersion) => now - candidate.createdAt;
    expect(kept.filter((candidate) => age(candidate) < DAY_MS)).toHaveLength(144);
    // Hourly from 1 to 7 days: 6 days of 24 hours.
    expect(kept.filter((candidate) => age(candidate) >= DAY_MS && age(candidate) < 7 * DAY_MS)).toHaveLength(6 * 24);
    // Daily from 7 to 90 days: 83 days (the buckets are calendar days, so one more may straddle).
    const daily = kept.filter((candidate) => age(candidate) >= 7 * DAY_MS);
    expect(daily.length).toBeGreaterThanOrEqual(83);
    expect(daily.length).toBeLessThanOrEqual(84);
    expect(Math.max(...daily.map(age))).toBeLessThan(90 * DAY_MS);
  });

  it("drops the oldest automatic versions past the byte budget and the count, never named ones or the newest", () => {
    const times = Array.from({ length: 50 }, (_, i) => 1_000_000 + i * 60_000);
    expect(simulate(times, { maxBytes: 1_000, maxVersions: 100 }).map((kept) => kept.id)).toEqual([41, 42, 43, 44, 45, 46, 47, 48, 49, 50]);
    expect(simulate(times, { maxBytes: 1e9, maxVersions: 5 }).map((kept) => kept.id)).toEqual([46, 47, 48, 49, 50]);
    const named = [version(1, 0, 900, true), version(2, 1, 900, true), version(3, 2, 500), version(4, 3, 500)];
    expect(versionsToDrop(named, 10, { maxBytes: 1_000, maxVersions: 100 }).sort()).toEqual([3]);
  });
});
