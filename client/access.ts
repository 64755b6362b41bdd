/**
 * The access token a share link carries (`?token=`), and what it allows. The server verifies
 * the token; the app only reads its claims to show a read-only editor or an expired link.
 */
import type { AccessMode } from "../worker/tokens";

export interface LinkAccess {
  token: string | null;
  mode: AccessMode;
  /** Expiry in ms since the epoch, or null without a token. */
  expiresAt: number | null;
}

export function accessFromLocation(location: Location): LinkAccess {
  const token = new URLSearchParams(location.search).get("token");
  if (!token) return { token: null, mode: "write", expiresAt: null };
  const claims = readClaims(token);
  return {
    token,
    mode: claims?.mode === "read" ? "read" : "write",
    expiresAt: typeof claims?.exp === "number" ? claims.exp * 1000 : null,
  };
}

/** The claims of a token, unverified (the server judges it), or null if it is not a JWT. */
export function readClaims(token: string): { mode?: unknown; exp?: unknown } | null {
  try {
    const payload = token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)) as { mode?: unknown; exp?: unknown };
  } catch {
    return null; // not ours to judge: the server answers a malformed token with 401
  }
}
