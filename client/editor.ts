/**
 * The CodeMirror editor bound to the document's shared text.
 */
import { basicSetup } from "codemirror";
import { Compartment, EditorState, type Extension } from "@codemirror/state";
import { EditorView, keymap } from "@codemirror/view";
import { yCollab, yUndoManagerKeymap } from "y-codemirror.next";
import type { Awareness } from "y-protocols/awareness";
import * as Y from "yjs";

/**
 * Each language's highlighting, in chunks of their own loaded on first use: Markdown alone brings
 * the HTML, CSS and JavaScript modes, some 210 kB that showing the text need not wait for.
 */
export const LANGUAGES = {
  markdown: async () => (await import("@codemirror/lang-markdown")).markdown(),
  javascript: async () => (await import("@codemirror/lang-javascript")).javascript(),
  typescript: async () => (await import("@codemirror/lang-javascript")).javascript({ typescript: true }),
  plain: async () => [],
} satisfies Record<string, () => Promise<Extension>>;
export type Language = keyof typeof LANGUAGES;

export function isLanguage(value: unknown): value is Language {
  return typeof value === "string" && value in LANGUAGES;
}

export interface Editor {
  view: EditorView;
  /** Highlights the text as `language` once its code has loaded; until then it stays as it was. */
  setLanguage(language: Language): void;
}

/**
 * `text` is the Y.Text named SHARED_TEXT_NAME (client/presence.ts). Undo and redo go
 * through a Y.UndoManager that tracks only this client's edits, so they never undo a
 * collaborator's work. A read-only editor shows the text and cursors but takes no input.
 *
 * The editor starts as plain text, and loads `language` only once it has painted some text (an
 * empty document: its first character). The text arrives from IndexedDB or the server after the
 * editor exists, and the language's download should not delay it.
 */
export function createEditor(parent: HTMLElement, text: Y.Text, awareness: Awareness, language: Language, readOnly: boolean): Editor {
  const languageSlot = new Compartment();
  const undoManager = new Y.UndoManager(text);
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: text.toString(),
      extensions: [
        keymap.of(yUndoManagerKeymap),
        basicSetup,
        EditorView.lineWrapping,
        languageSlot.of([]),
        // A read-only link: the server refuses edits anyway; the editor says so up front.
        EditorState.readOnly.of(readOnly),
        EditorView.editable.of(!readOnly),
        yCollab(text, awareness, { undoManager }),
      ],
    }),
  });
  const setLanguage = languageSetter(view, languageSlot, whenPainted(text));
  setLanguage(language);
  return { view, setLanguage };
}

/**
 * Puts a language's highlighting into `slot` once `ready` has resolved and its code has loaded.
 * Loads may finish out of order; only the latest choice is applied.
 */
function languageSetter(view: EditorView, slot: Compartment, ready: Promise<void>): (language: Language) => void {
  let wanted: Language;
  const highlight = async () => {
    const asked = wanted;
    const extension = await loadLanguage(asked);
    if (asked === wanted) view.dispatch({ effects: slot.reconfigure(extension) });
  };
  return (language) => {
    wanted = language;
    void ready.then(highlight);
  };
}

/** The language's extension, or none when its chunk cannot be fetched (offline, or replaced by a newer deploy). */
async function loadLanguage(language: Language): Promise<Extension> {
  try {
    return await LANGUAGES[language]();
  } catch (error) {
    console.warn(`edgedoc: no ${language} highlighting, its code did not load`, error);
    return [];
  }
}

/**
 * Resolves once `text` has some content and the browser has painted it: the editor shows each
 * change to `text` at once, and the frame after that paints it (a tab in the background waits
 * until it is shown).
 */
function whenPainted(text: Y.Text): Promise<void> {
  return new Promise<void>((resolve) => {
    const resolveOnceNotEmpty = () => {
      if (text.length === 0) return;
      text.unobserve(resolveOnceNotEmpty);
      resolve();
    };
    text.observe(resolveOnceNotEmpty);
    resolveOnceNotEmpty();
  }).then(() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve))));
}
