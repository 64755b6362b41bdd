/** Bindings and vars from wrangler.toml (the `Cloudflare.Env` shape that `wrangler types` and the test pool use). */
declare namespace Cloudflare {
  interface Env {
    ROOM: DurableObjectNamespace<import("./room").Room>;
    /** Maximum stored document size in bytes (see README, "Limits"). */
    MAX_DOCUMENT_BYTES?: string;
  }
}
interface Env extends Cloudflare.Env {}
