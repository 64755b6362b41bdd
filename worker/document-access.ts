/**
 * Document access as hono middleware, the one way into a document for `/ws/:name` and
 * `/api/docs/:name/*` alike (built the way hono's own `jwt` middleware is): it checks the
 * name, the origin and the token, then puts the grant and the room's stub in typed context
 * variables. Refusals are thrown as {@link AccessRefused}; each app's `onError` renders them
 * (text for `/ws`, JSON for the API). No room is woken for a refusal.
 */
import type { MiddlewareHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AccessGrant } from "./access";
import { authorize } from "./auth";
import { DOCUMENT_NAME_RULE, isValidDocumentName } from "./names";
import type { Room } from "./room";
import { TokenRefused } from "./tokens";

/** Routes behind document access: the grant and the room are set once access is decided. */
export type DocumentEnv = { Bindings: Env; Variables: { grant: AccessGrant; room: DurableObjectStub<Room> } };

/** Why a request may not have the document, as a status, a short code for the API, and a reason. */
export class AccessRefused extends HTTPException {
  constructor(
    status: ContentfulStatusCode,
    readonly code: "invalid_name" | "unauthorized" | "forbidden",
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(status, { message, res: new Response(null, { status, headers }) });
  }

  /** The refusal's headers (WWW-Authenticate, Retry-After), to copy onto the rendered answer. */
  get headers(): Headers {
    return this.getResponse().headers;
  }
}

/** Checks access to the document named by the `:name` route parameter. */
export function documentAccess(): MiddlewareHandler<DocumentEnv> {
  return async function documentAccess(c, next) {
    const name = c.req.param("name") ?? "";
    if (!isValidDocumentName(name)) throw new AccessRefused(400, "invalid_name", `invalid document name: use ${DOCUMENT_NAME_RULE}`);
    const grant = await authorize(c.req.raw, c.env, name);
    if (grant instanceof TokenRefused) {
      if (grant.status === 403) throw new AccessRefused(403, "forbidden", grant.message);
      // RFC 6750 §3: every 401 names the scheme; an error code only when a token was sent.
      const challenge = grant.tokenMissing
        ? 'Bearer realm="edgedoc"'
        : `Bearer realm="edgedoc", error="invalid_token", error_description="${grant.message}"`;
      throw new AccessRefused(401, "unauthorized", grant.message, { "WWW-Authenticate": challenge });
    }
    c.set("grant", grant);
    c.set("room", c.env.ROOM.get(c.env.ROOM.idFromName(name)));
    await next();
  };
}
