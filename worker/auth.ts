/**
 * Who may open a document, decided in the Worker so that refusals never wake a room:
 * - `ALLOWED_ORIGINS`: a browser request from another origin gets 403 (cross-site WebSocket
 *   hijacking); requests without an Origin header (servers, CLIs) are not browsers and pass.
 * - `AUTH_SECRET`: every request needs a token for the document, as `?token=` (browsers cannot
 *   set headers on a WebSocket) or `Authorization: Bearer`. Missing, malformed, forged or
 *   expired tokens get 401; a token for another document 403. Without a secret the server
 *   is open (every socket may write), which it logs once.
 */
import type { AccessGrant } from "./access";
import { allowedOrigins } from "./config";
import { logEvent } from "./log";
import { TokenRefused, verifyToken } from "./tokens";

let openModeLogged = false;

/** The grant for `request` on document `doc`, or the refusal (status and reason) to answer with. */
export async function authorize(request: Request, env: Env, doc: string): Promise<AccessGrant | TokenRefused> {
  const origins = allowedOrigins(env);
  const origin = request.headers.get("Origin");
  if (origins && origin !== null && !origins.has(origin)) return new TokenRefused(403, "origin not allowed");

  if (!env.AUTH_SECRET) {
    if (!openModeLogged) {
      openModeLogged = true;
      logEvent("auth_disabled", { detail: "AUTH_SECRET is not set: every client may read and write every document" });
    }
    return { mode: "write", expiresAt: null };
  }
  const token = tokenOf(request);
  if (token === null) return new TokenRefused(401, "token required: pass ?token= or Authorization: Bearer", true);
  try {
    const claims = await verifyToken(token, env.AUTH_SECRET, doc);
    return {
      mode: claims.mode,
      expiresAt: claims.exp * 1000,
      ...(claims.name === undefined ? {} : { user: claims.name }),
      ...(claims.sub === undefined ? {} : { subject: claims.sub }),
      owner: claims.sub ?? claims.name ?? `link:${await digest(token)}`,
    };
  } catch (error) {
    if (error instanceof TokenRefused) return error;
    throw error;
  }
}

/** A short, stable name for a token that names nobody: the first 16 hex digits of its SHA-256. */
async function digest(token: string): Promise<string> {
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token)));
  return Array.from(hash.subarray(0, 8), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** The token from `?token=`, or from `Authorization: Bearer` (the scheme is case-insensitive, RFC 7235 §2.1). */
function tokenOf(request: Request): string | null {
  const fromQuery = new URL(request.url).searchParams.get("token");
  if (fromQuery) return fromQuery;
  const bearer = /^bearer +(\S+) *$/i.exec(request.headers.get("Authorization") ?? "");
  return bearer ? bearer[1]! : null;
}
