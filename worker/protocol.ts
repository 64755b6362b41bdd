/**
 * The y-websocket wire protocol, as the stock `y-websocket` provider speaks it.
 *
 * Every frame is one binary WebSocket message that carries one protocol message;
 * the document name is not in the frame (the URL names the room). Grammar, with
 * `varUint` and `varByteArray`/`varString` as lib0 encodes them:
 *
 *   message        := varUint(messageType) • payload
 *   sync           := varUint(0) • (syncStep1 | syncStep2 | syncUpdate)
 *   syncStep1      := varUint(0) • varByteArray(stateVector)
 *   syncStep2      := varUint(1) • varByteArray(update)       -- what the receiver lacks
 *   syncUpdate     := varUint(2) • varByteArray(update)       -- a live edit
 *   awareness      := varUint(1) • varByteArray(awarenessUpdate)
 *   awarenessUpdate:= varUint(count) • (varUint(clientID) • varUint(clock) • varString(stateJSON))^count
 *   auth           := varUint(2) • varUint(0 = permission denied) • varString(reason)   -- server to client only
 *   queryAwareness := varUint(3)
 *
 * This module has no runtime imports (only lib0), so the worker, the client and the
 * tests share it. Decoding is strict: a frame must be exactly one well-formed message.
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";

/** Top-level message types (the first varUint of every frame). */
export const MessageType = {
  sync: 0,
  awareness: 1,
  auth: 2,
  queryAwareness: 3,
} as const;

/** Sub-types of a sync message (y-protocols/sync). */
export const SyncMessageType = {
  step1: 0,
  step2: 1,
  update: 2,
} as const;

/**
 * WebSocket close codes the room sends, with the reason text as the client sees it.
 * Standard codes (RFC 6455 §7.4.1) where one fits; 4000-4999 are ours.
 */
export const CloseCode = {
  /** The client left (HTTP fallback: its `DELETE`); a WebSocket's own close is reported by the runtime. */
  normal: 1000,
  /** Malformed frame: garbage, truncated, unknown message type, trailing bytes. */
  protocolError: 1002,
  /** A text frame (other than the "ping" keep-alive, which is answered with "pong"). */
  unsupportedData: 1003,
  /** A well-formed frame whose Yjs update, state vector or awareness JSON does not decode. */
  invalidPayload: 1007,
  /**
   * Over the per-socket rate limit, over the socket's answer budget (it asked for more than it
   * may be sent), or too many updates waiting for dependencies.
   */
  policyViolation: 1008,
  /** A frame over the size limit, or awareness state over the per-socket budget. */
  messageTooBig: 1009,
  /** The room failed while handling the frame; the document is unchanged. */
  internalError: 1011,
  /**
   * HTTP fallback only: the room does not know the session (it restarted, or the session ended
   * long ago) or its cursor; the client joins again and the sync handshake catches it up.
   */
  serviceRestart: 1012,
  /**
   * The room is full, or busy sending (its answer or relay budget is spent): reconnect later,
   * and the sync handshake brings the client up to date.
   */
  tryAgainLater: 1013,
  /** No frame (other than `ping`) for {@link AWARENESS_TIMEOUT_MS}: the client is presumed gone. */
  presenceTimeout: 4000,
  /** The socket did not complete the sync handshake (send its sync step 2) in time. */
  joinTimeout: 4001,
  /** The access token expired during the session; reconnect with a fresh one. */
  tokenExpired: 4401,
  /** The document was deleted (HTTP API). */
  documentDeleted: 4410,
  /** The update would make the stored document larger than the configured maximum. */
  documentTooLarge: 4413,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * Quiet clients (docs/protocol.md, "Quiet clients"): a WebSocket opened with this query
 * parameter (`?presence=socket`) sends nothing while nothing changes. Its presence lives as
 * long as its socket, it keeps the socket alive with {@link PING}, and it answers the room's
 * {@link QUIET_PROBE} with one.
 */
export const QUIET_CLIENT_PARAM = { name: "presence", value: "socket" } as const;

/** The keep-alive text frame: the runtime answers it with {@link PONG} without waking the room (`setWebSocketAutoResponse`). */
export const PING = "ping";
export const PONG = "pong";

/** The text frame the room sends a quiet client it has not heard from for a while; the client answers with {@link PING}. */
export const QUIET_PROBE = "probe";

/** A quiet client sends a {@link PING} after this long without sending anything (the room probes sockets silent 45 s: worker/limits.ts). */
export const QUIET_PING_AFTER_MS = 30_000;
/** A ping with no answer (any message) for this long: the connection is gone, and the client reconnects. */
export const QUIET_PING_TIMEOUT_MS = 10_000;
/** How often a quiet client runs its keep-alive rule (a background tab runs it about once a minute). */
export const QUIET_TICK_MS = 5_000;

/**
 * A client whose awareness state is not renewed for this long is considered offline.
 * Matches y-protocols' `outdatedTimeout`; providers renew every 15 s.
 */
export const AWARENESS_TIMEOUT_MS = 30_000;

/** One client's entry in an awareness update. `state` is JSON text; `null` means "gone". */
export interface AwarenessEntry {
  clientId: number;
  clock: number;
  state: string | null;
}

/**
 * An awareness entry as it arrived: `state` is still the UTF-8 bytes of its JSON (a view into
 * the frame), so the receiver can skip or refuse it by size before decoding anything.
 */
export interface WireAwarenessEntry {
  clientId: number;
  clock: number;
  state: Uint8Array;
}

/** A decoded frame from a client. */
export type ClientMessage =
  | { type: "sync-step1"; stateVector: Uint8Array }
  | { type: "sync-step2"; update: Uint8Array }
  | { type: "sync-update"; update: Uint8Array }
  | { type: "awareness"; update: Uint8Array }
  | { type: "query-awareness" };

/** A frame the room refuses; the socket that sent it is closed with `closeCode` and the message as reason. */
export class ProtocolError extends Error {
  constructor(
    readonly closeCode: CloseCode,
    message: string,
  ) {
    super(message);
    this.name = "ProtocolError";
  }
}

/**
 * Decodes one client frame. Throws {@link ProtocolError} for anything that is not exactly
 * one well-formed message; Yjs payloads are only framed here, their content is checked
 * where they are applied.
 */
export function decodeClientMessage(frame: Uint8Array): ClientMessage {
  const decoder = decoding.createDecoder(frame);
  const message = readMessage(decoder);
  if (decoding.hasContent(decoder)) {
    throw new ProtocolError(CloseCode.protocolError, "malformed frame: trailing bytes after the message");
  }
  return message;
}

function readMessage(decoder: decoding.Decoder): ClientMessage {
  const messageType = readOrThrow(() => decoding.readVarUint(decoder), "empty frame");
  switch (messageType) {
    case MessageType.sync:
      return readSyncMessage(decoder);
    case MessageType.awareness:
      // Entries are read one at a time where they are applied (see readAwarenessEntries), so a
      // frame of millions of entries is never held decoded.
      return { type: "awareness", update: readOrThrow(() => decoding.readVarUint8Array(decoder), "truncated awareness message") };
    case MessageType.queryAwareness:
      return { type: "query-awareness" };
    default:
      throw new ProtocolError(CloseCode.protocolError, `malformed frame: unknown message type ${messageType}`);
  }
}

function readSyncMessage(decoder: decoding.Decoder): ClientMessage {
  const syncType = readOrThrow(() => decoding.readVarUint(decoder), "truncated sync message");
  const payload = readOrThrow(() => decoding.readVarUint8Array(decoder), "truncated sync message");
  switch (syncType) {
    case SyncMessageType.step1:
      return { type: "sync-step1", stateVector: payload };
    case SyncMessageType.step2:
      return { type: "sync-step2", update: payload };
    case SyncMessageType.update:
      return { type: "sync-update", update: payload };
    default:
      throw new ProtocolError(CloseCode.protocolError, `malformed frame: unknown sync message type ${syncType}`);
  }
}

/**
 * Reads an awareness update one entry at a time, without copying or decoding states. Throws
 * {@link ProtocolError} at the first malformed byte, so a consumer applies entries only after
 * the generator finished (the presence registry does).
 */
export function* readAwarenessEntries(update: Uint8Array): Generator<WireAwarenessEntry> {
  const decoder = decoding.createDecoder(update);
  const count = readOrThrow(() => decoding.readVarUint(decoder), "truncated awareness update");
  // Each entry takes at least three bytes, so a count beyond that is a lie; checking it
  // first keeps a tiny frame from making us loop over a huge declared count.
  if (count > update.length / 3) {
    throw new ProtocolError(CloseCode.protocolError, "malformed frame: awareness count exceeds the payload");
  }
  for (let i = 0; i < count; i++) {
    const clientId = readOrThrow(() => decoding.readVarUint(decoder), "truncated awareness update");
    const clock = readOrThrow(() => decoding.readVarUint(decoder), "truncated awareness update");
    const state = readOrThrow(() => decoding.readVarUint8Array(decoder), "truncated awareness update");
    yield { clientId, clock, state };
  }
  if (decoding.hasContent(decoder)) {
    throw new ProtocolError(CloseCode.protocolError, "malformed frame: trailing bytes in awareness update");
  }
}

/** Decodes an awareness state's JSON; `null` means the client left. y-protocols JSON-encodes states. */
export function decodeAwarenessState(state: Uint8Array): string | null {
  try {
    const json = utf8.decode(state);
    return JSON.parse(json) === null ? null : json;
  } catch {
    throw new ProtocolError(CloseCode.invalidPayload, "invalid awareness state: not JSON");
  }
}

/** Decodes a whole awareness update (for clients, whose frames come from the room and are small). */
export function decodeAwarenessUpdate(update: Uint8Array): AwarenessEntry[] {
  return Array.from(readAwarenessEntries(update), ({ clientId, clock, state }) => ({ clientId, clock, state: decodeAwarenessState(state) }));
}

// Fatal: a state that is not valid UTF-8 is refused rather than silently mended.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

function readOrThrow<T>(read: () => T, what: string): T {
  try {
    return read();
  } catch {
    throw new ProtocolError(CloseCode.protocolError, `malformed frame: ${what}`);
  }
}

function frame(write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  write(encoder);
  return encoding.toUint8Array(encoder);
}

function encodeSync(syncType: number, payload: Uint8Array): Uint8Array {
  return frame((encoder) => {
    encoding.writeVarUint(encoder, MessageType.sync);
    encoding.writeVarUint(encoder, syncType);
    encoding.writeVarUint8Array(encoder, payload);
  });
}

/** A Yjs update that adds nothing: what a peer with nothing new answers a sync step 1 with. */
export const EMPTY_UPDATE = new Uint8Array([0, 0]);
/** A state vector that knows nothing: the answer to it is the whole document. */
export const EMPTY_STATE_VECTOR = new Uint8Array([0]);

/** Sync step 1: "here is my state vector, send me what I lack". */
export const encodeSyncStep1 = (stateVector: Uint8Array): Uint8Array => encodeSync(SyncMessageType.step1, stateVector);
/** Sync step 2: the update the peer lacks, answering its step 1. */
export const encodeSyncStep2 = (update: Uint8Array): Uint8Array => encodeSync(SyncMessageType.step2, update);
/** A live document update. */
export const encodeSyncUpdate = (update: Uint8Array): Uint8Array => encodeSync(SyncMessageType.update, update);

/** Whether a frame is a live document update (both type numbers are one-byte varUints). */
export const isSyncUpdate = (frame: Uint8Array): boolean => frame[0] === MessageType.sync && frame[1] === SyncMessageType.update;

/** y-protocols auth message "permission denied": the socket may read but not write. */
export function encodePermissionDenied(reason: string): Uint8Array {
  return frame((encoder) => {
    encoding.writeVarUint(encoder, MessageType.auth);
    encoding.writeVarUint(encoder, 0);
    encoding.writeVarString(encoder, reason);
  });
}

/** An awareness message carrying the given entries. */
export function encodeAwareness(entries: readonly AwarenessEntry[]): Uint8Array {
  const update = frame((encoder) => {
    encoding.writeVarUint(encoder, entries.length);
    for (const { clientId, clock, state } of entries) {
      encoding.writeVarUint(encoder, clientId);
      encoding.writeVarUint(encoder, clock);
      encoding.writeVarString(encoder, state ?? "null");
    }
  });
  return frame((encoder) => {
    encoding.writeVarUint(encoder, MessageType.awareness);
    encoding.writeVarUint8Array(encoder, update);
  });
}
