/**
 * The worker's modules refer to a global `Env` (worker/env.d.ts declares it for workerd, with
 * Cloudflare's binding types). The simulation builds one from plain variables (sim/config.ts).
 */
interface Env {
  [key: string]: string | undefined;
}
