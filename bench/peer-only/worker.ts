/**
 * The peer alone, as a new user of y-partyserver would deploy it: a Worker with nothing but
 * the `YServer` of bench/peer.ts, routed by partyserver's `routePartykitRequest`, under a plain
 * `wrangler dev` of its own (bench/peer-only/wrangler.toml, built by wrangler as usual). The
 * bench measures it beside the bench Worker's peer (`--scenario peer-check`) to show that the
 * peer it compares edgedoc with costs what a standalone y-partyserver costs.
 */
import { routePartykitRequest } from "partyserver";
import type { Peer } from "../peer";

export { Peer } from "../peer";

/** partyserver types its env as the project's (edgedoc's Env); this Worker has only the peer. */
interface PeerOnlyEnv extends Cloudflare.Env {
  PEER: DurableObjectNamespace<Peer>;
}

export default {
  async fetch(request: Request, env: PeerOnlyEnv): Promise<Response> {
    // What the bench's startDevServer waits for.
    if (new URL(request.url).pathname === "/healthz") return new Response("ok");
    return (await routePartykitRequest(request, env)) ?? new Response("Not Found", { status: 404 });
  },
};
