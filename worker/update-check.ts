/**
 * A structural check of a Yjs V1 update before Yjs sees it.
 *
 * Yjs trusts the counts and lengths an update declares. A few bytes can declare billions of
 * structs, clocks past where JS numbers stay exact, or content nested deep enough to overflow
 * the stack in Yjs's recursive decoder (yjs issues #479, #498, #687). This walks the update
 * once, in time linear in its size and without building anything, and refuses it unless:
 * every count fits in the bytes that remain, every clock and length stays within
 * {@link MAX_YJS_CLOCK}, content types are ones Yjs knows, nesting stays within
 * {@link MAX_YJS_CONTENT_DEPTH}, shared types nest no deeper than {@link MAX_YJS_TYPE_DEPTH}
 * (counted with the document's types they land in), and nothing trails the update.
 *
 * The same walk measures what applying the update will cost, so the room can refuse it first:
 * how many structs are new to the document, and how many delete ranges name content that
 * neither the document nor the update has (Yjs keeps those waiting and re-reads them on every
 * later update).
 *
 * Layout (Yjs's UpdateEncoderV1):
 *   update   := varUint(n) • clientStructs^n • deleteSet
 *   clientStructs := varUint(count) • varUint(client) • varUint(clock) • struct^count
 *   struct   := uint8(info) • (GC: varUint(len) | Skip: varUint(len) | item)
 *   deleteSet:= varUint(n) • (varUint(client) • varUint(m) • (varUint(clock) • varUint(len))^m)^n
 */
import * as decoding from "lib0/decoding";
import { MAX_DOCUMENT_ITEMS, MAX_YJS_CLOCK, MAX_YJS_CONTENT_DEPTH, MAX_YJS_TYPE_DEPTH } from "./limits";
import { CloseCode, ProtocolError } from "./protocol";

const GC = 0;
const SKIP = 10;
const BIT6 = 0b0010_0000;
const BIT7 = 0b0100_0000;
const BIT8 = 0b1000_0000;
const CONTENT_REF_MASK = 0b0001_1111;
/** Yjs type refs: Array, Map, Text, XmlElement, XmlFragment, XmlHook, XmlText. */
const MAX_TYPE_REF = 6;
const TYPE_REFS_WITH_KEY = new Set([3, 5]);

/** The document an update is checked against. */
export interface DocumentTypes {
  /** The document's clock for `client`: structs below it are the document's, not the update's. */
  knownClock(client: number): number;
  /** How many new structs the document has room for: past it the update is refused (4413) as the walk reaches it. */
  newStructsAllowed(): number;
  /** Depth of the type holding the document's struct at (client, clock), 0 for a root type. */
  depthAt(client: number, clock: number): number;
  /**
   * Structs waiting for dependencies, as one V1 update, and the clock each one waits for per
   * client; null when none wait. Yjs retries them within an update that reaches one of those
   * clocks, so they are checked with it then.
   */
  waiting(): { missing: ReadonlyMap<number, number>; update: () => Uint8Array } | null;
}

/** An empty document: nothing known, nothing waiting. */
const EMPTY_DOCUMENT: DocumentTypes = { knownClock: () => 0, newStructsAllowed: () => MAX_DOCUMENT_ITEMS, depthAt: () => 0, waiting: () => null };

/** What applying an update will add, measured against the document it is applied to. */
export interface UpdateShape {
  /** Structs past what the document already has: each becomes an item (or GC range). */
  newStructs: number;
  /** Delete ranges past what the document and the update itself hold: they will wait. */
  waitingDeleteRanges: number;
  /** Each client's clock once the update's structs are applied (if none of them waits). */
  reach: Map<number, number>;
}

/**
 * Throws {@link ProtocolError} (1007) unless `update` is a well-formed, bounded Yjs V1 update
 * whose types, once in `document`, nest within {@link MAX_YJS_TYPE_DEPTH}; returns its
 * {@link UpdateShape} against `document`.
 */
export function checkUpdateStructure(update: Uint8Array, document: DocumentTypes = EMPTY_DOCUMENT): UpdateShape {
  const shape: UpdateShape = { newStructs: 0, waitingDeleteRanges: 0, reach: new Map() };
  const nesting = new TypeNesting();
  readUpdate(update, document, shape, nesting);
  const waiting = document.waiting();
  if (waiting !== null && retriesWaiting(waiting.missing, document, shape)) {
    // Built by Yjs from updates that passed this check: only its structs' links matter here.
    readUpdate(waiting.update(), document, { newStructs: 0, waitingDeleteRanges: 0, reach: new Map() }, nesting);
  }
  nesting.check(document);
  return shape;
}

/** Walks one V1 update into `shape` and `nesting`. */
function readUpdate(update: Uint8Array, document: DocumentTypes, shape: UpdateShape, nesting: TypeNesting): void {
  const decoder = decoding.createDecoder(update);
  try {
    const clients = readCount(decoder);
    const allowed = document.newStructsAllowed();
    for (let i = 0; i < clients; i++) readClientStructs(decoder, document, shape, nesting, allowed);
    readDeleteSet(decoder, (client) => Math.max(document.knownClock(client), shape.reach.get(client) ?? 0), shape);
  } catch (error) {
    if (error instanceof ProtocolError) throw error;
    throw invalid("truncated");
  }
  if (decoding.hasContent(decoder)) throw invalid("trailing bytes");
}

/** Whether Yjs will retry the waiting structs with this update: it reaches a clock one of them waits for. */
function retriesWaiting(missing: ReadonlyMap<number, number>, document: DocumentTypes, shape: UpdateShape): boolean {
  for (const [client, clock] of missing) {
    if (clock < Math.max(document.knownClock(client), shape.reach.get(client) ?? 0)) return true;
  }
  return false;
}

function readClientStructs(decoder: decoding.Decoder, document: DocumentTypes, shape: UpdateShape, nesting: TypeNesting, allowed: number): void {
  const structs = readCount(decoder);
  const client = decoding.readVarUint(decoder);
  const known = document.knownClock(client);
  let clock = readClock(decoder);
  for (let i = 0; i < structs; i++) {
    const info = decoding.readUint8(decoder);
    const ref = info & CONTENT_REF_MASK;
    const struct: Struct = { clock, end: clock, link: NO_PARENT, client: 0, target: 0, holdsType: ref === 7, depth: UNRESOLVED };
    const length = ref === GC || ref === SKIP ? readClock(decoder) : readItem(decoder, info, ref, struct);
    clock += length;
    if (clock > MAX_YJS_CLOCK) throw invalid("clock out of range");
    if (clock > known && ref !== SKIP) {
      shape.newStructs++;
      // The document would refuse this many anyway (4413, see RoomDocument): stop before
      // keeping more. Each kept struct costs about 170 bytes of heap (measured in Node 22:
      // 240,000 of them, 40 MiB), so the refusal comes before the room spends what it refuses.
      if (shape.newStructs > allowed) {
        throw new ProtocolError(CloseCode.documentTooLarge, `document too large: over ${MAX_DOCUMENT_ITEMS} items`);
      }
      struct.end = clock;
      nesting.add(client, struct);
    }
  }
  shape.reach.set(client, Math.max(shape.reach.get(client) ?? 0, clock));
}

/**
 * Reads an item's origins, parent and content into `struct` (where its parent is found);
 * returns its length in clock units.
 */
function readItem(decoder: decoding.Decoder, info: number, ref: number, struct: Struct): number {
  // With an origin, the encoding names no parent: Yjs takes the left origin's, else the right's.
  if (info & BIT8) linkTo(struct, ORIGIN, decoder);
  if (info & BIT7) {
    if (struct.link === NO_PARENT) linkTo(struct, ORIGIN, decoder);
    else readId(decoder);
  }
  if ((info & (BIT7 | BIT8)) === 0) {
    if (decoding.readVarUint(decoder) === 1) {
      decoding.readVarString(decoder);
      struct.link = ROOT;
    } else {
      linkTo(struct, PARENT, decoder);
    }
    if (info & BIT6) decoding.readVarString(decoder);
  }
  switch (ref) {
    case 1: // deleted
      return readClock(decoder);
    case 2: // JSON: count, then that many JSON strings
      return repeat(decoder, () => decoding.readVarString(decoder));
    case 3: // binary
      decoding.readVarUint8Array(decoder);
      return 1;
    case 4: // string: its length is in UTF-16 code units, as Yjs counts
      return decoding.readVarString(decoder).length;
    case 5: // embed
      decoding.readVarString(decoder);
      return 1;
    case 6: // format: key and value
      decoding.readVarString(decoder);
      decoding.readVarString(decoder);
      return 1;
    case 7: {
      const typeRef = decoding.readVarUint(decoder);
      if (typeRef > MAX_TYPE_REF) throw invalid("unknown type");
      if (TYPE_REFS_WITH_KEY.has(typeRef)) decoding.readVarString(decoder);
      return 1;
    }
    case 8: // any: count, then that many values
      return repeat(decoder, () => skipAny(decoder, 0));
    case 9: // subdocument: guid and options
      decoding.readVarString(decoder);
      skipAny(decoder, 0);
      return 1;
    default:
      throw invalid("unknown content type");
  }
}

function readDeleteSet(decoder: decoding.Decoder, reachOf: (client: number) => number, shape: UpdateShape): void {
  const clients = readCount(decoder);
  for (let i = 0; i < clients; i++) {
    const reach = reachOf(decoding.readVarUint(decoder));
    const ranges = readCount(decoder);
    for (let j = 0; j < ranges; j++) {
      const end = readClock(decoder) + readClock(decoder);
      if (end > MAX_YJS_CLOCK) throw invalid("delete range out of range");
      if (end > reach) shape.waitingDeleteRanges++;
    }
  }
}

/** Skips one lib0 "any" value (lib0/encoding writeAny), refusing deep nesting. */
function skipAny(decoder: decoding.Decoder, depth: number): void {
  if (depth > MAX_YJS_CONTENT_DEPTH) throw invalid("content nested too deeply");
  const type = decoding.readUint8(decoder);
  switch (type) {
    case 127: // undefined
    case 126: // null
    case 121: // false
    case 120: // true
      return;
    case 125:
      decoding.readVarInt(decoder);
      return;
    case 124:
      decoding.readFloat32(decoder);
      return;
    case 123:
      decoding.readFloat64(decoder);
      return;
    case 122:
      decoding.readBigInt64(decoder);
      return;
    case 119:
      decoding.readVarString(decoder);
      return;
    case 118: // object: count, then key and value pairs
      repeat(decoder, () => {
        decoding.readVarString(decoder);
        skipAny(decoder, depth + 1);
      });
      return;
    case 117: // array
      repeat(decoder, () => skipAny(decoder, depth + 1));
      return;
    case 116:
      decoding.readVarUint8Array(decoder);
      return;
    default:
      throw invalid("unknown value type");
  }
}

/** Reads a count and runs `readOne` that many times; returns the count. */
function repeat(decoder: decoding.Decoder, readOne: () => void): number {
  const count = readCount(decoder);
  for (let i = 0; i < count; i++) readOne();
  return count;
}

/** A count of things that each take at least one byte, so it cannot exceed the bytes left. */
function readCount(decoder: decoding.Decoder): number {
  const count = decoding.readVarUint(decoder);
  if (count > decoder.arr.length - decoder.pos) throw invalid("count exceeds the update");
  return count;
}

function readClock(decoder: decoding.Decoder): number {
  const value = decoding.readVarUint(decoder);
  if (value > MAX_YJS_CLOCK) throw invalid("clock out of range");
  return value;
}

function readId(decoder: decoding.Decoder): void {
  decoding.readVarUint(decoder);
  readClock(decoder);
}

/** Reads an ID into `struct` as its link of `kind`. */
function linkTo(struct: Struct, kind: Link, decoder: decoding.Decoder): void {
  struct.link = kind;
  struct.client = decoding.readVarUint(decoder);
  struct.target = readClock(decoder);
}

/** How a struct finds the type it is in. */
type Link = typeof NO_PARENT | typeof ROOT | typeof PARENT | typeof ORIGIN;
/** A GC range: Yjs gives it (and items whose origin it is) no parent. */
const NO_PARENT = 0;
/** A root type, by name: depth 0. */
const ROOT = 1;
/** The type held by the item at the ID: one deeper than that item. */
const PARENT = 2;
/** The origin's type: as deep as the item at the ID. */
const ORIGIN = 3;

const UNRESOLVED = -1;
const VISITING = -2;

/** A struct new to the document, with what decides how deep its type is. */
interface Struct {
  clock: number;
  end: number;
  link: Link;
  /** The ID the link names: client and clock. */
  client: number;
  target: number;
  /** Whether it holds a shared type (content ref 7). */
  holdsType: boolean;
  /** Depth of the type it is in, once resolved; {@link UNRESOLVED} or {@link VISITING} before. */
  depth: number;
}

/**
 * The nesting of the types an update adds. Structs may name parents and origins anywhere in the
 * update (clients come in any order) or in the document, so depths are resolved once the
 * update is read: each struct once, following links iteratively (Yjs's own recursion per level
 * is what this guards against), in time linear in the structs kept.
 */
class TypeNesting {
  private readonly byClient = new Map<number, Struct[]>();
  private readonly types: Struct[] = [];

  add(client: number, struct: Struct): void {
    let structs = this.byClient.get(client);
    if (structs === undefined) this.byClient.set(client, (structs = []));
    structs.push(struct);
    if (struct.holdsType) this.types.push(struct);
  }

  /** Throws {@link ProtocolError} (1007) when a type added would nest past {@link MAX_YJS_TYPE_DEPTH}. */
  check(document: DocumentTypes): void {
    if (this.types.length === 0) return;
    // A client may appear more than once in a forged update: order its structs for lookups.
    for (const structs of this.byClient.values()) structs.sort((a, b) => a.clock - b.clock);
    for (const type of this.types) {
      if (this.depthOf(type, document) + 1 > MAX_YJS_TYPE_DEPTH) throw invalid("types nested too deeply");
    }
  }

  /** Depth of the type `start` is in, resolving and recording it for every struct on its way. */
  private depthOf(start: Struct, document: DocumentTypes): number {
    const path: Struct[] = [];
    let struct = start;
    let depth: number;
    // Each turn marks one unresolved struct, so the loop ends within the number of structs.
    for (;;) {
      if (struct.depth >= 0) return struct.depth;
      path.push(struct);
      struct.depth = VISITING;
      const next = this.linked(struct, document);
      if (typeof next === "number") {
        depth = next;
        break;
      }
      if (next.depth !== UNRESOLVED) {
        // A cycle of links never integrates (each waits for the other): count from 0.
        depth = Math.max(next.depth, 0) + step(struct);
        break;
      }
      struct = next;
    }
    path[path.length - 1]!.depth = depth;
    for (let i = path.length - 2; i >= 0; i--) path[i]!.depth = path[i + 1]!.depth + step(path[i]!);
    return start.depth;
  }

  /**
   * The struct in this update that `struct` links to, or, when there is none, the depth of the
   * type `struct` is in. A link to what neither has waits for it: counted from 0, so that what
   * the update itself nests is bounded now; the rest is checked when it is retried.
   */
  private linked(struct: Struct, document: DocumentTypes): Struct | number {
    if (struct.link === NO_PARENT || struct.link === ROOT) return 0;
    if (struct.target < document.knownClock(struct.client)) return document.depthAt(struct.client, struct.target) + step(struct);
    return this.find(struct.client, struct.target) ?? step(struct);
  }

  private find(client: number, clock: number): Struct | null {
    const structs = this.byClient.get(client);
    if (structs === undefined) return null;
    let low = 0;
    let high = structs.length - 1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      const struct = structs[middle]!;
      if (clock < struct.clock) high = middle - 1;
      else if (clock >= struct.end) low = middle + 1;
      else return struct;
    }
    return null;
  }
}

/** How much deeper a struct's type is than the one its link names: one for a parent. */
function step(struct: Struct): number {
  return struct.link === PARENT ? 1 : 0;
}

function invalid(detail: string): ProtocolError {
  return new ProtocolError(CloseCode.invalidPayload, `invalid update: ${detail}`);
}
