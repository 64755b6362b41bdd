/**
 * A structural check of a Yjs V1 update before Yjs sees it.
 *
 * Yjs trusts the counts and lengths an update declares. A few bytes can declare billions of
 * structs, clocks past where JS numbers stay exact, or content nested deep enough to overflow
 * the stack in Yjs's recursive decoder (yjs issues #479, #498, #687). This walks the update
 * once, in time linear in its size and without building anything, and refuses it unless:
 * every count fits in the bytes that remain, every clock and length stays within
 * {@link MAX_YJS_CLOCK}, content types are ones Yjs knows, nesting stays within
 * {@link MAX_YJS_CONTENT_DEPTH}, and nothing trails the update.
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
import { MAX_YJS_CLOCK, MAX_YJS_CONTENT_DEPTH } from "./limits";
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
 * Throws {@link ProtocolError} (1007) unless `update` is a well-formed, bounded Yjs V1 update;
 * returns its {@link UpdateShape} against a document whose clock for each client is `knownClock`.
 */
export function checkUpdateStructure(update: Uint8Array, knownClock: (client: number) => number = () => 0): UpdateShape {
  const decoder = decoding.createDecoder(update);
  const shape: UpdateShape = { newStructs: 0, waitingDeleteRanges: 0, reach: new Map() };
  try {
    const clients = readCount(decoder);
    for (let i = 0; i < clients; i++) readClientStructs(decoder, knownClock, shape);
    readDeleteSet(decoder, (client) => Math.max(knownClock(client), shape.reach.get(client) ?? 0), shape);
  } catch (error) {
    if (error instanceof ProtocolError) throw error;
    throw invalid("truncated");
  }
  if (decoding.hasContent(decoder)) throw invalid("trailing bytes");
  return shape;
}

function readClientStructs(decoder: decoding.Decoder, knownClock: (client: number) => number, shape: UpdateShape): void {
  const structs = readCount(decoder);
  const client = decoding.readVarUint(decoder);
  const known = knownClock(client);
  let clock = readClock(decoder);
  for (let i = 0; i < structs; i++) {
    const info = decoding.readUint8(decoder);
    const ref = info & CONTENT_REF_MASK;
    const length = ref === GC || ref === SKIP ? readClock(decoder) : readItem(decoder, info, ref);
    clock += length;
    if (clock > MAX_YJS_CLOCK) throw invalid("clock out of range");
    if (clock > known && ref !== SKIP) shape.newStructs++;
  }
  shape.reach.set(client, Math.max(shape.reach.get(client) ?? 0, clock));
}

/** Reads an item's origins, parent and content; returns its length in clock units. */
function readItem(decoder: decoding.Decoder, info: number, ref: number): number {
  if (info & BIT8) readId(decoder);
  if (info & BIT7) readId(decoder);
  if ((info & (BIT7 | BIT8)) === 0) {
    if (decoding.readVarUint(decoder) === 1) decoding.readVarString(decoder);
    else readId(decoder);
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

function invalid(detail: string): ProtocolError {
  return new ProtocolError(CloseCode.invalidPayload, `invalid update: ${detail}`);
}
