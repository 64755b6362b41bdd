/**
 * A text diff bounded by the work it does, for replacing a Y.Text's content with new text.
 *
 * An unbounded Myers diff (fast-diff) took 31 s on 40 KB of text unrelated to the 40 KB stored,
 * blocking the Durable Object. diff-match-patch bounds itself with a clock deadline, but deployed
 * Workers advance Date.now() only after I/O, so such a deadline never fires. Here we count steps.
 *
 * How: strip the common prefix and suffix; diff the middles line by line; refine each changed
 * block of lines code point by code point. When the budget runs out, a level falls back to
 * replacing the whole block (or the whole middle): the edits stay exact, only less minimal.
 */

/** One step of turning the old text into the new one, in UTF-16 code units (as Y.Text indexes). */
export type TextEdit = { retain: number } | { delete: number } | { insert: string };

/**
 * Default work budget, in Myers steps (a diagonal visited or a matching token followed).
 * Measured in Node 22 on a 2-core AMD EPYC VM: about 70,000 steps per millisecond, so an
 * exhausted budget costs about 60 ms, plus linear passes over the text (about 5 ms for 200 KB).
 * It keeps the diff minimal for up to about 1,000 edits scattered over 200 KB, which take about
 * 2,000,000 steps. Memory is bounded alike: the backtrack keeps one 4-byte number per diagonal
 * visited, so at most 16 MB.
 */
export const DEFAULT_DIFF_WORK_BUDGET = 4_000_000;

/**
 * Edits turning `before` into `after`; applying them in order from index 0 yields `after` exactly.
 * They cover all of `before` (retains and deletes sum to its length), never split a surrogate
 * pair, and never hold an empty edit or two neighbours of the same kind. A small edit yields
 * retains around it, so positions in unchanged text keep their identity; past `workBudget`
 * steps, changed regions are replaced whole instead of diffed.
 */
export function boundedTextEdits(before: string, after: string, workBudget = DEFAULT_DIFF_WORK_BUDGET): TextEdit[] {
  const prefix = commonPrefixLength(before, after);
  const suffix = commonSuffixLength(before, after, Math.min(before.length, after.length) - prefix);
  const out = new EditList();
  out.retain(prefix);
  diffLines(before.slice(prefix, before.length - suffix), after.slice(prefix, after.length - suffix), { remaining: workBudget }, out);
  out.retain(suffix);
  return out.edits;
}

/** Work left; one budget is shared by every level and block of a call, so the call is bounded as a whole. */
interface Budget {
  remaining: number;
}

const isHighSurrogate = (code: number) => code >= 0xd800 && code <= 0xdbff;
const isLowSurrogate = (code: number) => code >= 0xdc00 && code <= 0xdfff;

function commonPrefixLength(a: string, b: string): number {
  const limit = Math.min(a.length, b.length);
  let length = 0;
  while (length < limit && a.charCodeAt(length) === b.charCodeAt(length)) length++;
  // The pair's low halves differ (or one text ends there): keep the pair out of the prefix.
  return length > 0 && isHighSurrogate(a.charCodeAt(length - 1)) ? length - 1 : length;
}

/** Common suffix, at most `limit` long so it never overlaps the prefix. */
function commonSuffixLength(a: string, b: string, limit: number): number {
  let length = 0;
  while (length < limit && a.charCodeAt(a.length - 1 - length) === b.charCodeAt(b.length - 1 - length)) length++;
  // The pair's high halves differ: keep the pair out of the suffix.
  return length > 0 && isLowSurrogate(a.charCodeAt(a.length - length)) ? length - 1 : length;
}

/**
 * A text cut into tokens: token i is `text.slice(starts[i], starts[i + 1])` and equal tokens have
 * equal ids, so the diff compares integers and slices blocks straight out of the text.
 */
interface Tokens {
  text: string;
  ids: Int32Array;
  starts: Int32Array;
}

function diffLines(before: string, after: string, budget: Budget, out: EditList): void {
  // One numbering for both texts, so a line has the same id on either side.
  const lineIds = new Map<string, number>();
  diffTokens(lineTokens(before, lineIds), lineTokens(after, lineIds), budget, out, (oldBlock, newBlock) =>
    diffCodePoints(oldBlock, newBlock, budget, out),
  );
}

/** Lines with their '\n'. */
function lineTokens(text: string, lineIds: Map<string, number>): Tokens {
  const lines = text === "" ? [] : text.split(/(?<=\n)/);
  const ids = new Int32Array(lines.length);
  const starts = new Int32Array(lines.length + 1);
  lines.forEach((line, i) => {
    let id = lineIds.get(line);
    if (id === undefined) lineIds.set(line, (id = lineIds.size));
    ids[i] = id;
    starts[i + 1] = starts[i] + line.length;
  });
  return { text, ids, starts };
}

function diffCodePoints(before: string, after: string, budget: Budget, out: EditList): void {
  diffTokens(codePointTokens(before), codePointTokens(after), budget, out, (oldBlock, newBlock) => out.replace(oldBlock, newBlock));
}

/** Code points, whose ids are themselves, so no edit boundary falls inside a surrogate pair. */
function codePointTokens(text: string): Tokens {
  const ids = new Int32Array(text.length);
  const starts = new Int32Array(text.length + 1);
  let count = 0;
  for (let index = 0; index < text.length; count++) {
    const codePoint = text.codePointAt(index)!;
    ids[count] = codePoint;
    index += codePoint > 0xffff ? 2 : 1;
    starts[count + 1] = index;
  }
  return { text, ids: ids.subarray(0, count), starts: starts.subarray(0, count + 1) };
}

/**
 * Retains the runs common to both texts and hands each changed block (the old and new text
 * between two runs) to `diffBlock`; replaces everything when the budget runs out.
 */
function diffTokens(before: Tokens, after: Tokens, budget: Budget, out: EditList, diffBlock: (oldBlock: string, newBlock: string) => void): void {
  const runs = commonRuns(before.ids, after.ids, budget);
  if (runs === null) return out.replace(before.text, after.text);
  let oldIndex = 0;
  let newIndex = 0;
  // A zero-length run at the end flushes the last changed block.
  for (const run of [...runs, { oldStart: before.ids.length, newStart: after.ids.length, length: 0 }]) {
    const oldBlock = before.text.slice(before.starts[oldIndex], before.starts[run.oldStart]);
    const newBlock = after.text.slice(after.starts[newIndex], after.starts[run.newStart]);
    if (oldBlock !== "" && newBlock !== "") diffBlock(oldBlock, newBlock);
    else out.replace(oldBlock, newBlock);
    oldIndex = run.oldStart + run.length;
    newIndex = run.newStart + run.length;
    out.retain(before.starts[oldIndex] - before.starts[run.oldStart]);
  }
}

/** Equal tokens: a[oldStart + i] === b[newStart + i] for i < length. */
interface CommonRun {
  oldStart: number;
  newStart: number;
  length: number;
}

/**
 * Whether the furthest path onto diagonal `i` of round `d` arrives by a step down (an insertion,
 * from diagonal i of the previous round) rather than right (a deletion, from diagonal i - 1).
 */
const stepsDown = (previous: Int32Array, i: number, d: number) => i === 0 || (i < d && previous[i - 1] < previous[i]);

/**
 * Myers' greedy O(ND) diff ("An O(ND) Difference Algorithm and Its Variations", 1986): the
 * common runs of a shortest edit script, in order, or null once its steps exceed the budget.
 * Round d keeps, for each diagonal k = x - y in -d, -d+2, ..., d (index i = (k + d) / 2), the
 * furthest x a path with d edits reaches; the rounds are kept for the backtrack.
 */
function commonRuns(a: Int32Array, b: Int32Array, budget: Budget): CommonRun[] | null {
  // Nothing in common, and the search would take (a.length + b.length)² / 2 steps to say so.
  if (a.length === 0 || b.length === 0) return [];
  const rounds: Int32Array[] = [];
  let previous = Int32Array.of(0); // as if round -1 reached x = 0, so round 0 starts at (0, 0)
  for (let d = 0; ; d++) {
    const round = new Int32Array(d + 1);
    rounds.push(round);
    for (let i = 0; i <= d; i++) {
      let x = stepsDown(previous, i, d) ? previous[i] : previous[i - 1] + 1;
      let y = x - (2 * i - d);
      const start = x;
      while (x < a.length && y < b.length && a[x] === b[y]) {
        x++;
        y++;
      }
      round[i] = x;
      if (x === a.length && y === b.length) return backtrack(rounds, x, y);
      budget.remaining -= 1 + x - start;
      if (budget.remaining < 0) return null;
    }
    previous = round;
  }
}

/** Walks the rounds back from the end (x, y) to (0, 0), collecting the runs of equal tokens. */
function backtrack(rounds: Int32Array[], x: number, y: number): CommonRun[] {
  const runs: CommonRun[] = [];
  for (let d = rounds.length - 1; d > 0; d--) {
    const previous = rounds[d - 1];
    const k = x - y;
    const i = (k + d) / 2;
    const down = stepsDown(previous, i, d);
    const previousX = down ? previous[i] : previous[i - 1];
    const runStart = down ? previousX : previousX + 1;
    if (x > runStart) runs.push({ oldStart: runStart, newStart: runStart - k, length: x - runStart });
    y = previousX - (down ? k + 1 : k - 1);
    x = previousX;
  }
  if (x > 0) runs.push({ oldStart: 0, newStart: 0, length: x });
  return runs.reverse();
}

/** Collects edits, dropping empty ones and joining neighbours of the same kind. */
class EditList {
  readonly edits: TextEdit[] = [];

  retain(length: number): void {
    const last = this.edits.at(-1);
    if (length === 0) return;
    if (last !== undefined && "retain" in last) last.retain += length;
    else this.edits.push({ retain: length });
  }

  delete(length: number): void {
    const last = this.edits.at(-1);
    if (length === 0) return;
    if (last !== undefined && "delete" in last) last.delete += length;
    else this.edits.push({ delete: length });
  }

  insert(text: string): void {
    const last = this.edits.at(-1);
    if (text === "") return;
    if (last !== undefined && "insert" in last) last.insert += text;
    else this.edits.push({ insert: text });
  }

  replace(oldText: string, newText: string): void {
    this.delete(oldText.length);
    this.insert(newText);
  }
}
