/**
 * The CodeMirror editor bound to the document's shared text.
 */
import { basicSetup } from "codemirror";
import { javascript } from "@codemirror/lang-javascript";
import { markdown } from "@codemirror/lang-markdown";
import { Compartment, EditorState, type Extension } from "@codemirror/state";
import { EditorView, keymap } from "@codemirror/view";
import { yCollab, yUndoManagerKeymap } from "y-codemirror.next";
import type { Awareness } from "y-protocols/awareness";
import * as Y from "yjs";

export const LANGUAGES = {
  markdown: () => markdown(),
  javascript: () => javascript(),
  typescript: () => javascript({ typescript: true }),
  plain: () => [],
} satisfies Record<string, () => Extension>;
export type Language = keyof typeof LANGUAGES;

export function isLanguage(value: unknown): value is Language {
  return typeof value === "string" && value in LANGUAGES;
}

export interface Editor {
  view: EditorView;
  setLanguage(language: Language): void;
}

/**
 * `text` is the Y.Text named SHARED_TEXT_NAME (client/presence.ts). Undo and redo go
 * through a Y.UndoManager that tracks only this client's edits, so they never undo a
 * collaborator's work. A read-only editor shows the text and cursors but takes no input.
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
        languageSlot.of(LANGUAGES[language]()),
        // A read-only link: the server refuses edits anyway; the editor says so up front.
        EditorState.readOnly.of(readOnly),
        EditorView.editable.of(!readOnly),
        yCollab(text, awareness, { undoManager }),
      ],
    }),
  });
  return {
    view,
    setLanguage: (next) => view.dispatch({ effects: languageSlot.reconfigure(LANGUAGES[next]()) }),
  };
}
