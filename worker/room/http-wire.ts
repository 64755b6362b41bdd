/**
 * The HTTP fallback on the wire (docs/protocol.md, "HTTP fallback"): what a client's request
 * body and the room's answer body hold, session ids and the headers, shared by the room
 * (worker/room/http-sessions.ts), the Worker's door (worker/sync-route.ts) and the client
 * (client/http-socket.ts). lib0 encoding, as the y-websocket frames themselves.
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";

/**
 * The most a client posts in one request, its frames' length prefixes included, unless one
 * frame alone is larger (it then goes alone): typing sends a few bytes a request; a batch
 * gathers what was typed while the previous request was on its way. The door takes bodies up
 * to the larger of this and one framed frame of the frame limit (worker/room/body-frames.ts),
 * so a deployment with small frames still takes a batch, however many frames it holds.
 */
export const MAX_BATCH_BYTES = 1024 * 1024;

/** Session ids: 128 random bits, hex. Whoever holds one may act as that session, like a socket. */
const SESSION_ID = /^[0-9a-f]{32}$/;

export const isSessionId = (id: string): boolean => SESSION_ID.test(id);

/** The headers of every answer body: binary, and never cached (each poll's answer is new). */
export const ANSWER_HEADERS = { "Content-Type": "application/octet-stream", "Cache-Control": "no-store" } as const;

/** The header of an open answer that names the new session. */
export const SESSION_HEADER = "Edgedoc-Session";

/** Record kinds in an answer body, after its cursor. */
const Record = { frame: 0, close: 1 } as const;

/** What ends a session: the same code and reason a WebSocket would be closed with. */
export interface SessionClose {
  code: number;
  reason: string;
}

/**
 * An answer body: the cursor (the number of its last frame), then each frame, then the close
 * if the session ended. lib0 encoding, as the frames themselves (docs/protocol.md).
 */
export function encodeAnswer(cursor: number, frames: readonly Uint8Array[], close: SessionClose | null): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, cursor);
  for (const frame of frames) {
    encoding.writeVarUint(encoder, Record.frame);
    encoding.writeVarUint8Array(encoder, frame);
  }
  if (close !== null) {
    encoding.writeVarUint(encoder, Record.close);
    encoding.writeVarUint(encoder, close.code);
    encoding.writeVarString(encoder, close.reason);
  }
  return encoding.toUint8Array(encoder);
}

/** An answer body, decoded; throws on anything malformed. */
export function decodeAnswer(body: Uint8Array): { cursor: number; frames: Uint8Array[]; close: SessionClose | null } {
  const decoder = decoding.createDecoder(body);
  const cursor = decoding.readVarUint(decoder);
  const frames: Uint8Array[] = [];
  let close: SessionClose | null = null;
  while (decoding.hasContent(decoder) && close === null) {
    const kind = decoding.readVarUint(decoder);
    if (kind === Record.frame) frames.push(decoding.readVarUint8Array(decoder));
    else if (kind === Record.close) close = { code: decoding.readVarUint(decoder), reason: decoding.readVarString(decoder) };
    else throw new Error(`unknown record kind ${kind}`);
  }
  if (decoding.hasContent(decoder)) throw new Error("bytes after the close");
  return { cursor, frames, close };
}

/**
 * A request body of client frames (each as lib0's length-prefixed bytes, back to back), read
 * one at a time as the room handles them: a body of millions of tiny frames is never turned
 * into millions of objects, since the session's rate closes it after a few hundred. Throws at
 * a malformed frame.
 */
export function* decodeFrames(body: Uint8Array): Generator<Uint8Array> {
  const decoder = decoding.createDecoder(body);
  while (decoding.hasContent(decoder)) yield decoding.readVarUint8Array(decoder);
}

/**
 * Takes frames off the front of `queue` whose body ({@link encodeFrames}) stays within
 * {@link MAX_BATCH_BYTES}, always at least one: each frame counts with its length prefix, up
 * to 5 bytes of a 32 MiB frame's, so a batch of many small frames is not refused at the door.
 */
export function takeBatch(queue: Uint8Array[]): Uint8Array[] {
  let bytes = 0;
  let count = 0;
  while (count < queue.length && (count === 0 || bytes + framedBytes(queue[count]!.byteLength) <= MAX_BATCH_BYTES)) {
    bytes += framedBytes(queue[count++]!.byteLength);
  }
  return queue.splice(0, count);
}

/** What a frame of `length` bytes takes in a request body: the bytes and lib0's varUint prefix (7 bits a byte). */
export function framedBytes(length: number): number {
  let prefix = 1;
  for (let rest = Math.floor(length / 128); rest > 0; rest = Math.floor(rest / 128)) prefix += 1;
  return prefix + length;
}

export function encodeFrames(frames: readonly Uint8Array[]): Uint8Array {
  const encoder = encoding.createEncoder();
  for (const frame of frames) encoding.writeVarUint8Array(encoder, frame);
  return encoding.toUint8Array(encoder);
}
