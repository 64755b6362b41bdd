/**
 * Real editing traces (see bench/data/README.md): loading, and replaying into a Y.Doc.
 */
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import * as Y from "yjs";

export interface Trace {
  endContent: string;
  txns: { patches: [position: number, deleteCount: number, insert: string][] }[];
}

export function loadTrace(name: string): Trace {
  const path = new URL(`./data/${name}.json.gz`, import.meta.url);
  return JSON.parse(gunzipSync(readFileSync(path)).toString("utf8")) as Trace;
}

/** Replays every patch as its own transaction (a keystroke each), into `text`. */
export function replay(trace: Trace, text: Y.Text): void {
  for (const { patches } of trace.txns) {
    for (const [position, deleteCount, insert] of patches) {
      text.doc!.transact(() => {
        if (deleteCount > 0) text.delete(position, deleteCount);
        if (insert) text.insert(position, insert);
      });
    }
  }
}

/** A document holding the trace's final state, built keystroke by keystroke, checked against the trace. */
export function replayIntoDoc(trace: Trace, copies = 1): Y.Doc {
  const doc = new Y.Doc();
  for (let copy = 0; copy < copies; copy++) {
    const text = doc.getText(copy === 0 ? "codemirror" : `codemirror-copy-${copy}`);
    replay(trace, text);
    if (text.toString() !== trace.endContent) throw new Error(`replay of copy ${copy} does not match the trace's endContent`);
  }
  return doc;
}
