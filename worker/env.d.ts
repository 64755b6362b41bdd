/** Bindings from wrangler.toml. */
interface Env {
  ROOM: DurableObjectNamespace<import("./room").Room>;
}
