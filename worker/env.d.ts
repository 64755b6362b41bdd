/** Bindings, vars and secrets (the `Cloudflare.Env` shape that `wrangler types` and the test pool use). */
declare namespace Cloudflare {
  interface Env {
    ROOM: DurableObjectNamespace<import("./room").Room>;
    /**
     * Rate limits at the door (worker/rate-limit.ts; numbers in wrangler.toml `[[ratelimits]]`):
     * WebSocket upgrades and API calls, per client address and per token subject. Unbound
     * (a config without them, like the benchmark's): not counted.
     */
    UPGRADE_ADDRESS_LIMITER?: RateLimit;
    UPGRADE_SUBJECT_LIMITER?: RateLimit;
    API_ADDRESS_LIMITER?: RateLimit;
    API_SUBJECT_LIMITER?: RateLimit;
    /** HMAC secret for access tokens (a wrangler secret; `.dev.vars` locally). Unset: the server is open. */
    AUTH_SECRET?: string;
    /** Comma-separated browser origins allowed to connect. Unset: any. */
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
  }
}
interface Env extends Cloudflare.Env {}
