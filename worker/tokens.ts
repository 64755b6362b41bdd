/**
 * Access tokens: HMAC-SHA256 JWTs signed with `AUTH_SECRET`, shared by the Worker (verify)
 * and the minting script (sign). Claims:
 *
 *   { doc: "<name>" | "<prefix>*", mode: "read" | "write" | "admin", exp: <unix seconds>, name?: "<user>", sub?: "<subject>" }
 *
 * `doc` names one document exactly, or every document starting with a prefix when it ends in `*`.
 * `exp` is required: tokens are meant to be short-lived. `sub` says whom the token was issued
 * to (a user id): the Worker's rate limits count such tokens per subject as well as per
 * address. A share link, used by whoever holds it, has none. `admin` is the operator's mode:
 * everything `write` may do, and it sees what concerns the deployment rather than the document
 * (webhook endpoint URLs); only `npm run token -- --mode admin` or an operator's own backend
 * mints it, never the app.
 */
import { Jwt } from "hono/utils/jwt";
import { JwtTokenExpired, JwtTokenSignatureMismatched } from "hono/utils/jwt/types";

/** What a token allows: `read`; `write` (edit too); `admin` (write, and see the deployment's webhook endpoints). */
export type AccessMode = "read" | "write" | "admin";

/** Whether `mode` may change documents (write and admin tokens). */
export const canWrite = (mode: AccessMode): boolean => mode !== "read";

export interface TokenClaims {
  doc: string;
  mode: AccessMode;
  /** Expiry, seconds since the epoch. */
  exp: number;
  /** The user's name, for logs. */
  name?: string;
  /** Whom the token was issued to (a user id), for per-subject rate limits. */
  sub?: string;
}

/** Why a token was refused, as the HTTP status and reason the client gets. */
export class TokenRefused extends Error {
  constructor(
    readonly status: 401 | 403,
    message: string,
    /** No token was sent at all (RFC 6750 then wants no error code in the challenge). */
    readonly tokenMissing = false,
  ) {
    super(message);
    this.name = "TokenRefused";
  }
}

export function signToken(claims: TokenClaims, secret: string): Promise<string> {
  return Jwt.sign({ ...claims }, secret, "HS256");
}

/** Verifies `token` for document `doc`; throws {@link TokenRefused} with the reason otherwise. */
export async function verifyToken(token: string, secret: string, doc: string): Promise<TokenClaims> {
  let payload: Record<string, unknown>;
  try {
    payload = await Jwt.verify(token, secret, "HS256");
  } catch (error) {
    if (error instanceof JwtTokenExpired) throw new TokenRefused(401, "token expired");
    if (error instanceof JwtTokenSignatureMismatched) throw new TokenRefused(401, "token signature invalid");
    throw new TokenRefused(401, "token malformed");
  }
  const claims = parseClaims(payload);
  if (!documentMatches(claims.doc, doc)) throw new TokenRefused(403, "token is for another document");
  return claims;
}

/** Whether the `doc` claim covers document `name` (exact, or prefix when the claim ends in `*`). */
export function documentMatches(claim: string, name: string): boolean {
  return claim.endsWith("*") ? name.startsWith(claim.slice(0, -1)) : claim === name;
}

/**
 * Longest `name` or `sub`: both ride in every socket's attachment, which Cloudflare caps at
 * 16 KiB (a JWT itself has no length limit).
 */
export const MAX_CLAIM_CHARS = 256;

function parseClaims(payload: Record<string, unknown>): TokenClaims {
  const { doc, mode, exp, name, sub } = payload;
  if (typeof doc !== "string" || doc.length === 0) throw new TokenRefused(401, "token malformed: no doc claim");
  if (mode !== "read" && mode !== "write" && mode !== "admin") throw new TokenRefused(401, "token malformed: mode must be read, write or admin");
  if (typeof exp !== "number") throw new TokenRefused(401, "token malformed: no exp claim");
  if (name !== undefined && (typeof name !== "string" || name.length > MAX_CLAIM_CHARS)) {
    throw new TokenRefused(401, `token malformed: name must be a string of at most ${MAX_CLAIM_CHARS} characters`);
  }
  // An empty subject would put every such token in one shared rate-limit bucket.
  if (sub !== undefined && (typeof sub !== "string" || sub.length === 0 || sub.length > MAX_CLAIM_CHARS)) {
    throw new TokenRefused(401, `token malformed: sub must be a non-empty string of at most ${MAX_CLAIM_CHARS} characters`);
  }
  return { doc, mode, exp, ...(name === undefined ? {} : { name }), ...(sub === undefined ? {} : { sub }) };
}
