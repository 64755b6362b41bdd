/**
 * A document's title: the `title` entry of the shared `settings` map (beside `language`), so
 * every editor sees a rename live and it lives and dies with the text. Shared by the app and
 * the Worker's API. The title is remote input: whatever a client put there is cleaned and
 * bounded before anything shows it.
 */
import type * as Y from "yjs";

/** The shared map the app keeps per-document settings in. */
export const SETTINGS_MAP = "settings";
/** Its key for the title. */
export const TITLE_KEY = "title";
/** What a document without a title is called. */
export const DEFAULT_TITLE = "Untitled";
/** Longest title shown anywhere (header, browser tab, home page, API), in characters (code points). */
export const MAX_TITLE_CHARS = 120;

/**
 * `raw` as a title: one line of printable text, whitespace collapsed, at most
 * {@link MAX_TITLE_CHARS} characters; empty when nothing printable is left.
 */
export function cleanTitle(raw: unknown): string {
  if (typeof raw !== "string") return "";
  // Control and format characters (bidi overrides among them) would let a title disguise itself.
  const printable = raw.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, " ").replace(/\s+/g, " ").trim();
  return Array.from(printable).slice(0, MAX_TITLE_CHARS).join("").trim();
}

/** The title of `doc`, cleaned, or {@link DEFAULT_TITLE}. */
export function documentTitle(doc: Y.Doc): string {
  return cleanTitle(doc.getMap(SETTINGS_MAP).get(TITLE_KEY)) || DEFAULT_TITLE;
}
