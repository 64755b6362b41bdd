/**
 * Reads the body of a client's post (docs/protocol.md, "HTTP fallback") as it arrives and stops
 * at what one request may carry, the way the runtime stops a WebSocket message: each frame's
 * length prefix is checked against the frame limit before its bytes are read, and the body as
 * a whole against {@link maxBodyBytes}. Whatever follows is never read, so a body of 16 MiB
 * costs the room at most the bound, not 16 MiB of isolate memory (128 MB, shared by every
 * socket of the room), nor past what the session may still send by its byte rate (the frames
 * would close it 1008 once handled; reading them first would spend what the rate is there to
 * bound). The frames before the stop are handled; the session then ends with 1009, the code a
 * socket gets for a message over the limit, or 1008 for the rate.
 */
import { CloseCode } from "../protocol";
import { MAX_BATCH_BYTES, framedBytes, type SessionClose } from "./http-wire";

/** The most one request body may carry: one frame of the frame limit with its prefix, or one client batch (framing included), whichever is larger. */
export function maxBodyBytes(maxFrameBytes: number): number {
  return Math.max(framedBytes(maxFrameBytes), MAX_BATCH_BYTES);
}

export interface BodyRead {
  /** The body up to where reading stopped: whole frames then (a body that simply ends inside a frame keeps its broken tail, which the session answers with 1002). */
  bytes: Uint8Array;
  /** Why reading stopped before the end, as the close to end the session with; null when the whole body was read. */
  close: SessionClose | null;
}

/** What one post of a session may carry: the frame limit, and the bytes its session may still send. */
export interface BodyBounds {
  maxFrameBytes: number;
  /** The session's byte rate budget now: frames past it would close the session anyway (1008), so they are not read. */
  bytesAllowed: number;
}

/** Reads `body`'s frames up to the bounds above; see the module comment. */
export async function readBodyFrames(body: ReadableStream<Uint8Array> | null, { maxFrameBytes, bytesAllowed }: BodyBounds): Promise<BodyRead> {
  const limit = maxBodyBytes(maxFrameBytes);
  const chunks: Uint8Array[] = [];
  /** Bytes read so far; where the last whole frame ends; bytes of the current frame still to come. */
  let position = 0;
  let wholeFramesEnd = 0;
  let payloadLeft = 0;
  /** The length prefix being read (lib0 varUint: 7 bits a byte, least significant first, high bit set on all but the last). */
  let declared = 0;
  let scale = 1;
  if (body === null) return { bytes: new Uint8Array(0), close: null };
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { bytes: concat(chunks, position), close: null };
    chunks.push(value);
    for (let offset = 0; offset < value.length; ) {
      if (payloadLeft > 0) {
        const skipped = Math.min(payloadLeft, value.length - offset);
        payloadLeft -= skipped;
        offset += skipped;
        position += skipped;
        if (payloadLeft === 0) wholeFramesEnd = position;
        continue;
      }
      const byte = value[offset++]!;
      position += 1;
      declared += (byte & 0x7f) * scale;
      scale *= 128;
      // Checked on every prefix byte, so an endless prefix stops as soon as it names too much.
      const close =
        declared > maxFrameBytes
          ? { code: CloseCode.messageTooBig, reason: `frame too large: over ${maxFrameBytes} bytes` }
          : position + (byte & 0x80 ? 0 : declared) > limit
            ? { code: CloseCode.messageTooBig, reason: `request too large: over ${limit} bytes of frames in one request` }
            : position + (byte & 0x80 ? 0 : declared) > bytesAllowed
              ? { code: CloseCode.policyViolation, reason: "rate limit exceeded: more bytes than this session may send now" }
              : null;
      if (close !== null) {
        await reader.cancel().catch(() => {});
        return { bytes: concat(chunks, wholeFramesEnd), close };
      }
      if (byte & 0x80) continue;
      payloadLeft = declared;
      [declared, scale] = [0, 1];
      if (payloadLeft === 0) wholeFramesEnd = position;
    }
  }
}

/** The first `length` bytes of `chunks`, as one array. */
function concat(chunks: readonly Uint8Array[], length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    if (at >= length) break;
    const part = chunk.subarray(0, length - at);
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}
