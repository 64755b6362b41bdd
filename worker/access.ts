/**
 * What a socket may do, decided by the Worker (from the token) and handed to the room in
 * request headers. Only the Worker can reach a Durable Object, and it always overwrites these
 * headers, so a client cannot set them itself.
 */
import type { AccessMode } from "./tokens";

export interface AccessGrant {
  mode: AccessMode;
  /** When the token expires (ms since the epoch), or null when the server runs without tokens. */
  expiresAt: number | null;
  /** The user's name from the token, for logs. */
  user?: string;
  /**
   * The token's `sub` claim, for the Worker's per-subject rate limits. It stays in the Worker
   * (not in the headers below): the room has no use for it, and its sockets' attachments are small.
   */
  subject?: string;
  /**
   * Whom the socket's presence IDs belong to (docs/protocol.md, "Claims"): the token's `sub`,
   * else its `name`, else the token itself (a share link is one owner). Unset without tokens.
   */
  owner?: string;
}

const HEADER = {
  mode: "X-Edgedoc-Mode",
  expiresAt: "X-Edgedoc-Expires-At",
  user: "X-Edgedoc-User",
  owner: "X-Edgedoc-Owner",
} as const;

/** A copy of `request` carrying `grant` (and nothing a client sent under the same names). */
export function withGrant(request: Request, grant: AccessGrant): Request {
  const headers = new Headers(request.headers);
  for (const name of Object.values(HEADER)) headers.delete(name);
  headers.set(HEADER.mode, grant.mode);
  if (grant.expiresAt !== null) headers.set(HEADER.expiresAt, String(grant.expiresAt));
  if (grant.user !== undefined) headers.set(HEADER.user, encodeURIComponent(grant.user));
  if (grant.owner !== undefined) headers.set(HEADER.owner, encodeURIComponent(grant.owner));
  return new Request(request, { headers });
}

/** The grant {@link withGrant} put on `request`; anything unrecognised is read-only. */
export function grantFrom(request: Request): AccessGrant {
  const mode = request.headers.get(HEADER.mode);
  const expiresAt = request.headers.get(HEADER.expiresAt);
  const user = request.headers.get(HEADER.user);
  const owner = request.headers.get(HEADER.owner);
  return {
    mode: mode === "write" || mode === "admin" ? mode : "read",
    expiresAt: expiresAt === null ? null : Number(expiresAt),
    ...(user === null ? {} : { user: decodeURIComponent(user) }),
    ...(owner === null ? {} : { owner: decodeURIComponent(owner) }),
  };
}
