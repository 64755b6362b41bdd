import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// The door's rate limits, lifted: these projects' tests open hundreds of sockets through
// SELF.fetch, which sends no CF-Connecting-IP, so all of them share one address bucket. The
// limits themselves are tested in workerd-door, against wrangler.toml's numbers.
const unlimited = { limit: 1_000_000_000, period: 10 } as const;
const doorLimitsLifted = {
  UPGRADE_ADDRESS_LIMITER: { namespace_id: "1001", simple: unlimited },
  UPGRADE_SUBJECT_LIMITER: { namespace_id: "1002", simple: unlimited },
  API_ADDRESS_LIMITER: { namespace_id: "1003", simple: unlimited },
  API_SUBJECT_LIMITER: { namespace_id: "1004", simple: unlimited },
  SYNC_ADDRESS_LIMITER: { namespace_id: "1005", simple: unlimited },
  SYNC_SUBJECT_LIMITER: { namespace_id: "1006", simple: unlimited },
};

// Two tiers (see docs/tests.md): inside workerd with real sockets and storage, and in Node
// against a real `wrangler dev` that the tests start on a free loopback port.
export default defineConfig({
  test: {
    // Rooms log a JSON line per event; show them only for failing tests.
    silent: "passed-only",
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                // A 12 MiB cap lets one room hold the 10 MB test document and refuse more.
                MAX_DOCUMENT_BYTES: String(12 * 1024 * 1024),
                // Test clients fire thousands of edits at machine speed; rate limits are tested apart.
                RATE_MESSAGES_PER_SECOND: "1000000",
                // Idle expiry on, so its alarm can be tested (tests move the clock, never wait).
                DOC_TTL_DAYS: "1",
              },
              ratelimits: doorLimitsLifted,
            },
          }),
        ],
        test: {
          name: "workerd",
          include: ["test/worker/**/*.test.ts"],
          testTimeout: 20_000,
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            // A guarded deployment: tokens required, one allowed origin, small rooms and frames, default rates.
            miniflare: {
              bindings: {
                AUTH_SECRET: "test-secret-for-guarded-rooms",
                ALLOWED_ORIGINS: "https://edgedoc.example",
                MAX_SOCKETS_PER_ROOM: "3",
                MAX_FRAME_BYTES: String(64 * 1024),
              },
              ratelimits: doorLimitsLifted,
            },
          }),
        ],
        test: {
          name: "workerd-guarded",
          include: ["test/guarded/**/*.test.ts"],
          testTimeout: 20_000,
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            // The shipped rate limits, with tokens (so that they can carry subjects).
            miniflare: { bindings: { AUTH_SECRET: "test-secret-for-the-door" } },
          }),
        ],
        test: {
          name: "workerd-door",
          include: ["test/door/**/*.test.ts"],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          // The seeded simulation of the room core (sim/, docs/architecture.md), a fixed budget.
          name: "simulation",
          include: ["test/sim/**/*.test.ts"],
          environment: "node",
          testTimeout: 600_000,
        },
      },
      {
        test: {
          name: "node",
          include: ["test/node/**/*.test.ts", "test/browser/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 90_000,
          // Each file starts its own wrangler dev; two cores do not run several at once well.
          fileParallelism: false,
        },
      },
    ],
  },
});
