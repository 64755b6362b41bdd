/**
 * The access token a share link carries (`?token=`), and what it allows. The server verifies
 * the token; the app only reads its claims to show a read-only editor or an expired link.
 */
import type { AccessMode } from "../worker/tokens";
import { inLargestUnit } from "./time";

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
    mode: claims?.mode === "read" || claims?.mode === "admin" ? claims.mode : "write",
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

/** What a link grants, in words: the header's access badge and the Copy link button. */
export interface LinkDescription {
  /** "Read-only", "Can edit" or "Admin"; null for a page opened without a token. */
  grant: string | null;
  /** "expires in 3 days", "expired", or null when there is no expiry to tell. */
  expiry: string | null;
  /** The exact expiry, for a tooltip; null when there is none. */
  exactExpiry: string | null;
  /** Copy link's label: "Copy read-only link", "Copy edit link", "Copy admin link", "Copy link". */
  copyLabel: string;
  /** Its tooltip: who may do what with the copied link, until when. */
  copyTitle: string;
  /** What it says for a moment once the link is copied. */
  copied: string;
}

/** Describes `access` as of `now` (ms since the epoch); see {@link LinkDescription}. */
export function describeLink(access: LinkAccess, now: number, format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" })): LinkDescription {
  if (access.token === null) {
    return { grant: null, expiry: null, exactExpiry: null, copyLabel: "Copy link", copyTitle: "Copy this page's link (it carries no access token)", copied: "Link copied" };
  }
  const read = access.mode === "read";
  // The app never mints an admin token, but an operator may open a document with one: copying
  // the page's link then hands out the operator's role, and the button must say so.
  const admin = access.mode === "admin";
  const exact =
    access.expiresAt === null ? null : new Date(access.expiresAt).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  const expired = access.expiresAt !== null && access.expiresAt <= now;
  const grant = read ? "Read-only" : admin ? "Admin" : "Can edit";
  if (expired) {
    return {
      grant,
      expiry: "expired",
      exactExpiry: exact,
      copyLabel: "Copy expired link",
      copyTitle: `This link's token expired on ${exact}: it no longer opens the document`,
      copied: "Expired link copied",
    };
  }
  const until = exact === null ? "" : ` until ${exact}`;
  return {
    grant,
    expiry: access.expiresAt === null ? null : expiresIn(access.expiresAt, now, format),
    exactExpiry: exact,
    copyLabel: read ? "Copy read-only link" : admin ? "Copy admin link" : "Copy edit link",
    copyTitle: read
      ? `Copy this link with its read-only token: whoever opens it can read, not edit${until}`
      : admin
        ? `Copy this link with its admin token: whoever opens it can edit and see the deployment's webhook endpoints${until}`
        : `Copy this link with its edit token: whoever opens it can edit${until}`,
    copied: read ? "Read-only link copied" : admin ? "Admin link copied" : "Edit link copied",
  };
}

/**
 * "expires in 3 days", "expires tomorrow", "expires in 1 hour", "expired". Rounded to whole
 * minutes first, so a link minted for an hour reads "in 1 hour" rather than "in 60 minutes".
 */
export function expiresIn(expiresAt: number, now: number, format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" })): string {
  if (expiresAt <= now) return "expired";
  return `expires ${inLargestUnit(Math.round((expiresAt - now) / 60_000) * 60_000, format, "minute")}`;
}
