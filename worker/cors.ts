/**
 * CORS for the documents API and the HTTP fallback, so that browser pages on the origins in
 * `ALLOWED_ORIGINS` may call the API with a Bearer token and run `EdgedocProvider` on
 * `/sync/:name` (hono's `cors` middleware; docs/api.md#cors). It goes in front of everything
 * else on `/api/*` and `/sync/*`: a preflight is answered here, with no token, no rate-limit
 * count and no room.
 *
 * The API sends no CORS headers at all while `ALLOWED_ORIGINS` is unset, stricter than the
 * socket's "any origin" then: the app calls the API from its own origin and servers send no
 * Origin, so neither needs CORS, and a page elsewhere reading documents is a decision a
 * deployment writes down by listing that page's origin.
 */
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { allowedOrigins } from "./config";
import { SESSION_HEADER } from "./room/http-wire";

/**
 * How long a browser may reuse a preflight's answer: two hours, the most Chromium honours. A
 * preflight grants nothing by itself (the request after it still passes the origin check and
 * the token), so an answer kept after an origin is removed from the list opens nothing.
 */
export const CORS_MAX_AGE_SECONDS = 7200;

/** What the API's browser callers send and read, beyond what CORS allows without listing. */
export const CORS_POLICY = {
  allowMethods: ["GET", "POST", "PUT", "DELETE"],
  // Authorization carries the Bearer token; Content-Type, because binary and JSON bodies are not form types.
  allowHeaders: ["Authorization", "Content-Type"],
  // Why a 401 was refused, and how long a 429 should wait (Content-Type and -Length are always readable).
  exposeHeaders: ["WWW-Authenticate", "Retry-After"],
  maxAge: CORS_MAX_AGE_SECONDS,
};

/**
 * What `EdgedocProvider` (client/http-socket.ts) sends and reads on `/sync/:name`: its binary
 * bodies need Content-Type listed, and the open's answer names the session in a header the page
 * must read, or the provider never opens a session and retries forever. The token travels in
 * the query, as the socket's does.
 */
export const SYNC_CORS_POLICY = {
  ...CORS_POLICY,
  allowMethods: ["GET", "POST", "DELETE"],
  exposeHeaders: [...CORS_POLICY.exposeHeaders, SESSION_HEADER],
};

/**
 * Middleware that answers preflights and marks answers readable for the allowed origins. An
 * origin not in the list gets no `Access-Control-Allow-Origin`, so its browser blocks the call.
 * No credentials: tokens travel in a header or query the page sets itself, never in cookies.
 */
function allowedOriginsCors(policy: typeof CORS_POLICY): MiddlewareHandler<{ Bindings: Env }> {
  const corsFor = cors({
    ...policy,
    origin: (origin, c) => (allowedOrigins(c.env as Env)?.has(origin) ? origin : null),
  });
  return async function allowedOriginsCors(c, next) {
    if (allowedOrigins(c.env) === null) return next();
    return corsFor(c, next);
  };
}

/** CORS for `/api/*`. */
export const apiCors = () => allowedOriginsCors(CORS_POLICY);

/** CORS for `/sync/*`. */
export const syncCors = () => allowedOriginsCors(SYNC_CORS_POLICY);
