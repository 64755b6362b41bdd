/**
 * The app's routes: `/` is the home page (the documents this browser has opened), `/new` makes
 * a new document with an unguessable name, `/d/<name>` opens one.
 */
import { isValidDocumentName } from "../worker/names";

/** 16 characters of base-62: about 95 bits, so a name cannot be guessed. */
const NEW_NAME_LENGTH = 16;
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** The path that makes a new document, for the New document button and bookmarks. */
export const NEW_DOCUMENT_PATH = "/new";

export function newDocumentName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(NEW_NAME_LENGTH));
  // 256 % 62 skews a few letters by under 1%: irrelevant for unguessability.
  return Array.from(bytes, (byte) => ALPHABET[byte % ALPHABET.length]).join("");
}

/** Whether `pathname` is the home page; every other path is the document view's to handle. */
export function isHomePath(pathname: string): boolean {
  return pathname === "/";
}

/** The link that opens document `name`, with its token when it has one. */
export function documentPath(name: string, token: string | null): string {
  return `/d/${encodeURIComponent(name)}${token ? `?token=${encodeURIComponent(token)}` : ""}`;
}

/** The document this URL opens, creating a new name (and rewriting the URL) for `/new`. */
export function documentFromLocation(location: Location, history: History): string | null {
  if (location.pathname === NEW_DOCUMENT_PATH) {
    const name = newDocumentName();
    history.replaceState(null, "", `/d/${name}${location.search}`);
    return name;
  }
  const match = /^\/d\/([^/]+)\/?$/.exec(location.pathname);
  const name = match ? decodeURIComponent(match[1]!) : null;
  return name !== null && isValidDocumentName(name) ? name : null;
}
