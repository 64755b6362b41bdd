/**
 * A document's title: the `title` entry of the shared `settings` map (beside `language`), so
 * every editor sees a rename live and it lives and dies with the text. Shared by the app and
 * the Worker's API. The title is remote input: whatever a client put there is cleaned and
 * bounded before anything shows it.
 */
import * as Y from "yjs";

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
  // A title may be as large as the document allows (megabytes): clean only what can show.
  const scanned = raw.slice(0, TITLE_SCAN_UNITS);
  // Control characters, line breaks and the invisible bidi and zero-width marks would let a
  // title disguise itself or break a line; joiners stay, since emoji sequences need them.
  const printable = scanned.replace(INVISIBLE, " ").replace(/\s+/g, " ").trim();
  return Array.from(printable).slice(0, MAX_TITLE_CHARS).join("").trim();
}

/**
 * How much of a stored title is read, in UTF-16 units: enough for {@link MAX_TITLE_CHARS}
 * astral characters among plenty of whitespace and control characters, so that cleaning a
 * hostile multi-megabyte title (on every `GET /api/docs/:name`, every rename seen) costs
 * microseconds. A title whose first visible character comes later than this is untitled.
 */
const TITLE_SCAN_UNITS = 16 * MAX_TITLE_CHARS;

/** Control characters, line and paragraph separators, bidi marks and overrides, zero-width spaces. */
const INVISIBLE = /[\p{Cc}\p{Zl}\p{Zp}\u061C\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF]/gu;

/** The title of `doc`, cleaned, or {@link DEFAULT_TITLE}. Never throws, and changes nothing in `doc`. */
export function documentTitle(doc: Y.Doc): string {
  return cleanTitle(storedTitle(doc)) || DEFAULT_TITLE;
}

/**
 * The raw value of the `title` entry (whatever a client put there), or undefined when there is
 * none or `settings` is not a map.
 */
export function storedTitle(doc: Y.Doc): unknown {
  const item = settingsOf(doc)?._map.get(TITLE_KEY);
  return item && !item.deleted ? item.content.getContent().at(-1) : undefined;
}

/**
 * The `settings` root type when it is a map, read without `doc.getMap`: the document may come
 * from any Yjs app, and `getMap` throws when another app made `settings` a Y.Text or Y.Array,
 * and turns the untyped root a document loaded from updates has (the Worker's) into a map, or
 * creates one, for good. A map keeps its entries in `_map` and holds no sequence (`_start`).
 */
// `any`: Yjs types its nested types' event parameter invariantly, so no narrower type admits them all.
export function settingsOf(doc: Y.Doc): Y.AbstractType<any> | null {
  const settings = doc.share.get(SETTINGS_MAP);
  if (settings === undefined || settings._start !== null) return null;
  return settings instanceof Y.Map || settings.constructor === Y.AbstractType ? settings : null;
}
