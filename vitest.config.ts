import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Two tiers (see README, "Tests"): inside workerd with real sockets and storage, and in Node
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
