/** Bindings from wrangler.toml (the `Cloudflare.Env` shape that `wrangler types` and the test pool use). */
declare namespace Cloudflare {
  interface Env {
    ROOM: DurableObjectNamespace<import("./room").Room>;
  }
}
interface Env extends Cloudflare.Env {}
