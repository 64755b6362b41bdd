/** Bindings, vars and secrets (the `Cloudflare.Env` shape that `wrangler types` and the test pool use). */
declare namespace Cloudflare {
  interface Env {
    ROOM: DurableObjectNamespace<import("./room").Room>;
    /**
     * Rate limits at the door (worker/rate-limit.ts; numbers in wrangler.toml `[[ratelimits]]`):
     * WebSocket upgrades (and HTTP fallback opens), API calls, and the HTTP fallback's requests of
     * open sessions (polls, posts, leaves), per client address and per token subject. Unbound
     * (a config without them, like the benchmark's): not counted.
     */
    UPGRADE_ADDRESS_LIMITER?: RateLimit;
    UPGRADE_SUBJECT_LIMITER?: RateLimit;
    API_ADDRESS_LIMITER?: RateLimit;
    API_SUBJECT_LIMITER?: RateLimit;
    SYNC_ADDRESS_LIMITER?: RateLimit;
    SYNC_SUBJECT_LIMITER?: RateLimit;
    /** HMAC secret for access tokens (a wrangler secret; `.dev.vars` locally). Unset: the server is open. */
    AUTH_SECRET?: string;
    /**
     * Comma-separated browser origins allowed to open sockets and to call the API (CORS, cors.ts).
     * Unset: sockets from any origin, and no CORS, so only same-origin pages call the API.
     */
    ALLOWED_ORIGINS?: string;
    MAX_FRAME_BYTES?: string;
    MAX_DOCUMENT_BYTES?: string;
    RATE_MESSAGES_PER_SECOND?: string;
    RATE_BYTES_PER_SECOND?: string;
    MAX_SOCKETS_PER_ROOM?: string;
    /** Days without connection or edit after which a room deletes its storage. Unset: never. */
    DOC_TTL_DAYS?: string;
    /** While editing goes on, an automatic version at most every this many minutes (default 10). */
    VERSION_INTERVAL_MINUTES?: string;
    /** Comma-separated webhook endpoints (https, or http://127.0.0.1 in development). Unset: no webhooks. */
    WEBHOOK_URL?: string;
    /** The Standard Webhooks signing secret, `whsec_` + base64 (a wrangler secret). */
    WEBHOOK_SECRET?: string;
    /** `document.updated` once the document is quiet this long (default 10). */
    WEBHOOK_QUIET_SECONDS?: string;
    /** ...and at least this often while editing goes on (default 60). */
    WEBHOOK_MAX_WAIT_SECONDS?: string;
    /** Delays before each retry, comma-separated seconds (default 5,30,120,600,3600, then 6 h x 12). */
    WEBHOOK_RETRY_SECONDS?: string;
  }
}
interface Env extends Cloudflare.Env {}
