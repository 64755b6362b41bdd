/**
 * The edit that turns a document back into an earlier version of itself, for every shared
 * type at once (docs/history.md, "Restore").
 *
 * How: a second document is loaded from the version, brought up to the current state under a
 * `Y.UndoManager` scoped to the whole document, and the undo is what restoring means: it deletes
 * what was inserted since the version and re-inserts what was deleted, in one transaction. The
 * edit sent back to the live document is what that undo added. This works for any root type a
 * Yjs app uses (Text, Map, Array, XmlFragment), without knowing which.
 *
 * Identity: items that exist in both the version and now are untouched, so the keystrokes of
 * someone typing in unchanged text survive a restore and cursors there keep their place. What
 * the restore brings back is new items with the old content (Yjs cannot revive a deleted
 * item): cursors anchored in deleted text do not move into the restored copy, and a map key
 * the restore resets is a new entry. No text is diffed, so no diff budget applies here.
 *
 * The title is the exception: restoring a version does not rename the document. After the undo,
 * the title entry is set back to what it is now, in the same edit.
 *
 * Nesting: Yjs deletes, collects and undoes nested types recursing per level, and so does the
 * comparison below. Types nest within {@link MAX_YJS_TYPE_DEPTH} in every update the room
 * accepts; a version stored before that limit may nest deeper, so it is measured once loaded
 * (loading does not recurse), before the undo, and the comparison refuses anything deeper
 * rather than recurse on.
 */
import * as Y from "yjs";
import { MAX_YJS_TYPE_DEPTH } from "./limits";
import { CloseCode, ProtocolError } from "./protocol";
import { SETTINGS_MAP, settingsOf, storedTitle, TITLE_KEY } from "./title";
import { deepestTypeDepth } from "./type-depth";

/**
 * The update that makes `current` equal to `versionState` (a V2 update of a past state of the
 * same document), or null when nothing changed since. `current` is read, not changed.
 */
export function restoreUpdate(current: Y.Doc, versionState: Uint8Array): Uint8Array | null {
  const past = new Y.Doc({ gc: true });
  try {
    // Loading nests without recursion; the undo below would recurse per level, so a version
    // stored before MAX_YJS_TYPE_DEPTH that nests deeper is refused (1007) first.
    Y.applyUpdateV2(past, versionState);
    if (deepestTypeDepth(past) > MAX_YJS_TYPE_DEPTH) throw tooDeep();
    // Scoped to the whole document, the undo manager covers every root type, including types
    // added since the version; it tracks only transactions with an origin it was given.
    const catchUp = {};
    const undo = new Y.UndoManager(past, { captureTimeout: 0, trackedOrigins: new Set([catchUp]) });
    try {
      Y.applyUpdate(past, Y.encodeStateAsUpdate(current, Y.encodeStateVector(past)), catchUp);
      if (undo.undo() === null) return null;
      keepTitle(past, storedTitle(current));
      // Content equal to now (the version was restored before, as new items): nothing to do,
      // and replacing text with the same text would move collaborators' cursors for nothing.
      if (sameContent(past, current)) return null;
      // The undo's inserts are past's new clocks; its deletions travel in the delete set. Items
      // of the version that the document lacks altogether (a version taken while an edit was
      // held, before a kill lost it) are older clocks: sent too, or the restore comes out short.
      return Y.encodeStateAsUpdate(past, Y.encodeStateVector(current));
    } finally {
      undo.destroy();
    }
  } finally {
    past.destroy();
  }
}

/**
 * Sets `past`'s title entry back to `title` (the document's title now, raw; undefined when it
 * has none) when the undo changed it. A title that is a shared type, not a value, cannot be
 * copied across documents; no app shows one as a title, so the undo's result stands.
 */
function keepTitle(past: Y.Doc, title: unknown): void {
  const settings = settingsOf(past);
  if (settings === null || title instanceof Y.AbstractType || title instanceof Y.Doc) return;
  const restored = storedTitle(past);
  if (restored === title || (restored !== undefined && JSON.stringify(restored) === JSON.stringify(title))) return;
  // A map root of a document loaded from updates is untyped: make it the map it is. `past` is
  // this restore's own copy, so retyping it touches nothing else.
  const map = past.getMap(SETTINGS_MAP);
  if (title === undefined) map.delete(TITLE_KEY);
  else map.set(TITLE_KEY, title);
}

/** Whether two documents hold the same content in every root type, whatever the items' identity. */
function sameContent(a: Y.Doc, b: Y.Doc): boolean {
  const names = new Set([...a.share.keys(), ...b.share.keys()]);
  for (const name of names) {
    const left = a.share.get(name);
    const right = b.share.get(name);
    if (JSON.stringify(left && contentOf(left, 0)) !== JSON.stringify(right && contentOf(right, 0))) return false;
  }
  return true;
}

/**
 * A type's visible content, read from its items without knowing its kind (root types of a
 * document loaded from updates are untyped): the sequence, with adjacent text joined, the map
 * entries, and an XML element's name. Formatting marks are not content here. `depth` is how
 * deep `type` is (0 for a root type); past {@link MAX_YJS_TYPE_DEPTH} this throws (1007).
 */
// `any`: Yjs types its nested types' event parameter invariantly, so no narrower type admits them all.
function contentOf(type: Y.AbstractType<any>, depth: number): unknown {
  if (depth > MAX_YJS_TYPE_DEPTH) throw tooDeep();
  const sequence: unknown[] = [];
  for (let item = type._start; item !== null; item = item.right) {
    if (item.deleted) continue;
    if (item.content instanceof Y.ContentString) {
      const last = sequence.length - 1;
      if (typeof sequence[last] === "string") sequence[last] += item.content.str;
      else sequence.push(item.content.str);
    } else {
      sequence.push(...item.content.getContent().map((value) => valueOf(value, depth + 1)));
    }
  }
  const entries: Record<string, unknown> = {};
  for (const [key, item] of [...type._map].sort(([x], [y]) => (x < y ? -1 : 1))) {
    if (!item.deleted) entries[key] = valueOf(item.content.getContent().at(-1), depth + 1);
  }
  return { sequence, entries, name: (type as { nodeName?: unknown }).nodeName ?? null };
}

/** `value` as content: a nested type's ({@link contentOf} at `depth`), or the value itself. */
function valueOf(value: unknown, depth: number): unknown {
  return value instanceof Y.AbstractType ? contentOf(value, depth) : value;
}

function tooDeep(): ProtocolError {
  return new ProtocolError(CloseCode.invalidPayload, "invalid update: types nested too deeply");
}
