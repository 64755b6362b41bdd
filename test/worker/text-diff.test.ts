/**
 * The bounded text diff behind `PUT /api/docs/:name/text`: exact for any texts and any budget,
 * minimal for the small edits people make, and bounded in work for texts that share nothing.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { DEFAULT_DIFF_WORK_BUDGET, boundedTextEdits, type TextEdit } from "../../worker/text-diff";

function applyEdits(before: string, edits: TextEdit[]): string {
  let result = "";
  let index = 0;
  for (const edit of edits) {
    if ("retain" in edit) result += before.slice(index, (index += edit.retain));
    else if ("delete" in edit) index += edit.delete;
    else result += edit.insert;
  }
  return result + before.slice(index);
}

function applyToYText(text: Y.Text, edits: TextEdit[]): void {
  text.doc!.transact(() => {
    let index = 0;
    for (const edit of edits) {
      if ("retain" in edit) index += edit.retain;
      else if ("delete" in edit) text.delete(index, edit.delete);
      else {
        text.insert(index, edit.insert);
        index += edit.insert.length;
      }
    }
  });
}

/**
 * JSON, which escapes lone surrogates: compare through it wherever a failure message could hold
 * half a pair, since a raw one crashes the test pool's WebSocket and hides which test failed.
 */
const escaped = (value: unknown) => JSON.stringify(value);

const splitsSurrogatePair = (text: string, index: number) => /[\ud800-\udbff]/.test(text[index - 1] ?? "") && /[\udc00-\udfff]/.test(text[index] ?? "");
const kindOf = (edit: TextEdit) => ("retain" in edit ? "retain" : "delete" in edit ? "delete" : "insert");
const lengthOf = (edit: TextEdit) => ("retain" in edit ? edit.retain : "delete" in edit ? edit.delete : edit.insert.length);

/** Everything the module promises about `edits` for `before` → `after`, besides minimality. */
function expectValidEdits(before: string, after: string, edits: TextEdit[]): void {
  expect(escaped(applyEdits(before, edits))).toBe(escaped(after));
  let oldIndex = 0;
  let newIndex = 0;
  edits.forEach((edit, i) => {
    expect(lengthOf(edit), "no empty edit").toBeGreaterThan(0);
    if (i > 0) expect(kindOf(edit), "no two neighbours of one kind").not.toBe(kindOf(edits[i - 1]!));
    if ("insert" in edit) newIndex += edit.insert.length;
    else oldIndex += lengthOf(edit);
    if ("retain" in edit) newIndex += edit.retain;
    expect(splitsSurrogatePair(before, oldIndex), `old text split at ${oldIndex}`).toBe(false);
    expect(splitsSurrogatePair(after, newIndex), `new text split at ${newIndex}`).toBe(false);
  });
  expect(oldIndex, "the edits cover the whole old text").toBe(before.length);
}

/** A seeded random number generator (mulberry32), so the large texts are the same on every run. */
function seededRandom(seed: number): () => number {
  return () => {
    let t = (seed = (seed + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** About `length` code units of lowercase words on lines, every line ending in '\n'. */
function randomLines(length: number, seed: number): string {
  const random = seededRandom(seed);
  const word = () => Array.from({ length: 2 + Math.floor(random() * 8) }, () => String.fromCharCode(97 + Math.floor(random() * 26))).join("");
  const lines: string[] = [];
  for (let total = 0; total < length; total += lines.at(-1)!.length) {
    lines.push(Array.from({ length: 3 + Math.floor(random() * 8) }, word).join(" ") + "\n");
  }
  return lines.join("");
}

const KB = 1024;

describe("boundedTextEdits", () => {
  // Pieces chosen to collide: pairs sharing a high surrogate, lone halves that pair up, newlines.
  const wellFormedPieces = ["a", "b", "ab", " ", "\n", "\n\n", "é", "😀", "😁", "👍🏽"];
  const anyPieces = [...wellFormedPieces, "\ud83d", "\ude00"];
  /** Two texts: unrelated, or one an edited copy of the other, piece by piece, so they share most content. */
  const textPairs = (pieces: string[]) => {
    const piece = fc.constantFrom(...pieces);
    const text = fc.array(piece, { maxLength: 40 }).map((chosen) => chosen.join(""));
    const edit = fc.record({ at: fc.nat(), remove: fc.nat({ max: 4 }), add: fc.array(piece, { maxLength: 4 }) });
    const related = fc.tuple(fc.array(piece, { maxLength: 60 }), fc.array(edit, { maxLength: 6 })).map(([original, edits]) => {
      const edited = [...original];
      for (const { at, remove, add } of edits) edited.splice(at % (edited.length + 1), remove, ...add);
      return [original.join(""), edited.join("")] as const;
    });
    return fc.oneof(related, fc.tuple(text, text));
  };
  // Tiny budgets run out at every level and block, so they exercise each fallback.
  const budget = fc.oneof(fc.constant(DEFAULT_DIFF_WORK_BUDGET), fc.nat({ max: 300 }));

  it("turns any text into any other, under any budget, without splitting a surrogate pair", () => {
    fc.assert(
      fc.property(textPairs(anyPieces), budget, ([before, after], workBudget) => {
        expectValidEdits(before, after, boundedTextEdits(before, after, workBudget));
      }),
      { numRuns: 2_000 },
    );
  });

  it("gives a Y.Text exactly the new text", () => {
    fc.assert(
      fc.property(textPairs(wellFormedPieces), budget, ([before, after], workBudget) => {
        const doc = new Y.Doc();
        const ytext = doc.getText("codemirror");
        ytext.insert(0, before);
        applyToYText(ytext, boundedTextEdits(before, after, workBudget));
        expect(escaped(ytext.toString())).toBe(escaped(after));
      }),
      { numRuns: 300 },
    );
  });

  it("handles equal and empty texts", () => {
    expect(boundedTextEdits("", "")).toEqual([]);
    expect(boundedTextEdits("same 😀", "same 😀")).toEqual([{ retain: 7 }]);
    expect(boundedTextEdits("", "new")).toEqual([{ insert: "new" }]);
    expect(boundedTextEdits("old", "")).toEqual([{ delete: 3 }]);
  });

  it("keeps a changed emoji whole", () => {
    // "😀" and "😁" share their high surrogate; the edit must not keep it and swap only the low one.
    expect(escaped(boundedTextEdits("a😀b", "a😁b"))).toBe(escaped([{ retain: 1 }, { delete: 2 }, { insert: "😁" }, { retain: 1 }]));
    expect(escaped(boundedTextEdits("😀", "😀😀"))).toBe(escaped([{ retain: 2 }, { insert: "😀" }]));
    expect(escaped(boundedTextEdits("x😀", "x😁😀"))).toBe(escaped([{ retain: 1 }, { insert: "😁" }, { retain: 2 }]));
  });

  describe("in a 200 KB text", () => {
    const head = randomLines(100 * KB, 1);
    const tail = randomLines(100 * KB, 2);
    const before = `${head}The quick brown fox.\n${tail}`;
    const sentence = head.length;

    it("inserting a word touches only that word", () => {
      const after = `${head}NEW WORD The quick brown fox.\n${tail}`;
      expect(boundedTextEdits(before, after)).toEqual([{ retain: sentence }, { insert: "NEW WORD " }, { retain: before.length - sentence }]);
    });

    it("deleting a word touches only that word", () => {
      const after = `${head}The quick fox.\n${tail}`;
      expect(boundedTextEdits(before, after)).toEqual([{ retain: sentence + 10 }, { delete: 6 }, { retain: before.length - sentence - 16 }]);
    });

    it("replacing a word touches only that word", () => {
      const after = `${head}The quick pale fox.\n${tail}`;
      expect(boundedTextEdits(before, after)).toEqual([{ retain: sentence + 10 }, { delete: 5 }, { insert: "pale" }, { retain: before.length - sentence - 15 }]);
    });

    it("words replaced on distant lines are diffed character by character, not line by line", () => {
      const many = [randomLines(50 * KB, 3), randomLines(50 * KB, 4), randomLines(50 * KB, 5), randomLines(50 * KB, 6)].join("The quick brown fox.\n");
      const after = many.replaceAll("brown", "pale");
      const words = [...many.matchAll(/brown/g)].map((match) => match.index);
      const expected: TextEdit[] = [];
      let retained = 0;
      for (const word of words) {
        expected.push({ retain: word - retained }, { delete: 5 }, { insert: "pale" });
        retained = word + 5;
      }
      expected.push({ retain: many.length - retained });
      expect(boundedTextEdits(many, after)).toEqual(expected);
    });

    it("1,000 scattered character replacements stay minimal under the default budget", () => {
      const random = seededRandom(7);
      const characters = before.split("");
      const positions = new Set<number>();
      while (positions.size < 1_000) positions.add(Math.floor(random() * characters.length));
      for (const position of positions) characters[position] = "#"; // '#' is nowhere in the text
      const after = characters.join("");
      const edits = boundedTextEdits(before, after);
      expectValidEdits(before, after, edits);
      const deleted = edits.reduce((sum, edit) => sum + ("delete" in edit ? edit.delete : 0), 0);
      const inserted = edits.flatMap((edit) => ("insert" in edit ? [edit.insert] : [])).join("");
      expect(deleted).toBe(1_000);
      expect(inserted).toBe("#".repeat(1_000));
    });
  });

  it.each([40, 200])("replaces %i KB with unrelated text quickly, whole, once the budget runs out", (kilobytes) => {
    const before = randomLines(kilobytes * KB, 10);
    const after = randomLines(kilobytes * KB, 11);
    const started = performance.now();
    const edits = boundedTextEdits(before, after);
    const elapsed = performance.now() - started;
    // Generous: an unbounded diff takes tens of seconds here; the budget is about 60 ms in Node.
    expect(elapsed).toBeLessThan(2_000);
    expectValidEdits(before, after, edits);
    // The lines share nothing, so only a run-out budget explains a whole replacement after a
    // common prefix and suffix of at most a few characters.
    expect(edits.filter((edit) => !("retain" in edit))).toEqual([{ delete: expect.any(Number) }, { insert: expect.any(String) }]);
    expect(edits.reduce((sum, edit) => sum + ("delete" in edit ? edit.delete : 0), 0)).toBeGreaterThan(before.length - 20);
  });

  it("falls back from characters to lines to the whole middle as the budget shrinks, block by block", () => {
    const before = "1 one\nsame\n2 two\n";
    const after = "1 ONE\nsame\n2 TWO\n";
    const wholeMiddle = [{ retain: 2 }, { delete: 14 }, { insert: "ONE\nsame\n2 TWO" }, { retain: 1 }];
    const lines = [{ retain: 2 }, { delete: 4 }, { insert: "ONE\n" }, { retain: 5 }, { delete: 5 }, { insert: "2 TWO" }, { retain: 1 }];
    const firstLineRefined = [{ retain: 2 }, { delete: 3 }, { insert: "ONE" }, { retain: 6 }, { delete: 5 }, { insert: "2 TWO" }, { retain: 1 }];
    const characters = [{ retain: 2 }, { delete: 3 }, { insert: "ONE" }, { retain: 8 }, { delete: 3 }, { insert: "TWO" }, { retain: 1 }];
    const distinct: TextEdit[][] = [];
    for (let workBudget = 0; workBudget <= 200; workBudget++) {
      const edits = boundedTextEdits(before, after, workBudget);
      if (JSON.stringify(edits) !== JSON.stringify(distinct.at(-1))) distinct.push(edits);
    }
    expect(distinct).toEqual([wholeMiddle, lines, firstLineRefined, characters]);
  });

  it("keeps collaborators' positions in unchanged text when applied to a Y.Text", () => {
    const before = randomLines(200 * KB, 20);
    const at = before.indexOf("\n", 100 * KB) + 1;
    const after = `${before.slice(0, at)}NEW WORD ${before.slice(at)}`;
    const doc = new Y.Doc();
    const text = doc.getText("codemirror");
    text.insert(0, before);
    const positionBefore = Y.createRelativePositionFromTypeIndex(text, 1_000);
    const positionAfter = Y.createRelativePositionFromTypeIndex(text, 150 * KB);
    const updates: Uint8Array[] = [];
    doc.on("update", (update: Uint8Array) => updates.push(update));

    applyToYText(text, boundedTextEdits(before, after));

    expect(text.toString()).toBe(after);
    const absoluteOffset = (position: Y.RelativePosition) => Y.createAbsolutePositionFromRelativePosition(position, doc)?.index;
    expect(absoluteOffset(positionBefore)).toBe(1_000);
    expect(absoluteOffset(positionAfter)).toBe(150 * KB + "NEW WORD ".length);
    // One small insertion, not 200 KB deleted and inserted again.
    expect(updates).toHaveLength(1);
    expect(updates[0]!.length).toBeLessThan(100);
  });
});
