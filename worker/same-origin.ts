/**
 * No cross-site writes (docs/api.md#cross-site-writes). CORS only decides whether a page may
 * read an answer; a "simple" request (POST with a form or `text/plain` body, no custom
 * headers) is sent by the browser without asking first, and with `AUTH_SECRET` unset nothing
 * else stops it. So the API refuses state-changing requests from pages on other sites itself:
 *
 * - {@link sameOriginWrites}: `POST`, `PUT`, `PATCH` and `DELETE` whose `Origin` is present and
 *   is neither the request's own origin nor listed in `ALLOWED_ORIGINS` get 403. Browsers send
 *   `Origin` on every such request, same-origin ones included; servers send none and pass.
 * - {@link bodyTypes}: a body route takes only its documented media types (415 otherwise). The
 *   binary and JSON types are not ones a form or a simple `fetch` can send, so a page elsewhere
 *   needs a preflight first, which a deployment without CORS for it never answers.
 *
 * hono's `csrf` middleware (hono/csrf) does not fit: it checks only requests with form or text
 * content types (a missing one counts as `text/plain`) and refuses those that carry neither
 * `Origin` nor `Sec-Fetch-Site`, which is what servers send: `curl -X DELETE` or a bodiless
 * `POST .../restore` from a backup script would get 403. It also lets a foreign origin's JSON
 * or binary body through (leaving the refusal to the browser's preflight alone), and answers
 * with a plain-text "Forbidden" rather than the API's JSON error.
 */
import type { Context, MiddlewareHandler } from "hono";
import { allowedOrigins } from "./config";
import { AccessRefused } from "./document-access";

/** Methods that change something; the others (GET, HEAD, OPTIONS) only read. */
const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/**
 * Refuses a state-changing request from a browser page on another origin (403 `forbidden`,
 * rendered by the API's `onError`). `Origin: null` (a sandboxed iframe, a `file://` page, a
 * cross-site redirect) names no site and is refused too.
 */
export function sameOriginWrites(): MiddlewareHandler<{ Bindings: Env }> {
  return async function sameOriginWrites(c, next) {
    const origin = c.req.header("Origin");
    if (origin !== undefined && STATE_CHANGING.has(c.req.method) && origin !== new URL(c.req.url).origin && !allowedOrigins(c.env)?.has(origin)) {
      throw new AccessRefused(403, "forbidden", `cross-site write refused: origin ${origin} is not this site's and not in ALLOWED_ORIGINS`);
    }
    await next();
  };
}

/** One accepted media type: exact (`application/json`) or a whole top-level type (`text/*`). */
export type MediaRange = `${string}/${string}`;

/**
 * Middleware for a route with a body: 415 (by `refuse`, with a reason naming `accepted`) unless
 * the `Content-Type` is one of `accepted`. Parameters are ignored but a `charset` other than
 * UTF-8, the only encoding the API decodes.
 */
export function bodyTypes<E extends { Bindings: Env }>(
  accepted: readonly MediaRange[],
  refuse: (c: Context<E>, detail: string) => Response,
): MiddlewareHandler<E> {
  const expected = accepted.join(" or ");
  return async function bodyTypes(c, next) {
    const [type = "", ...parameters] = (c.req.header("Content-Type") ?? "").split(";").map((part) => part.trim().toLowerCase());
    const charset = parameters.find((parameter) => parameter.startsWith("charset="))?.slice("charset=".length).replace(/^"|"$/g, "");
    const matches = accepted.some((range) => (range.endsWith("/*") ? type.startsWith(range.slice(0, -1)) : type === range));
    if (!matches) return refuse(c, `send the body as Content-Type: ${expected} (got ${type === "" ? "none" : type})`);
    if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") return refuse(c, `send the body as UTF-8 (got charset=${charset})`);
    await next();
  };
}
