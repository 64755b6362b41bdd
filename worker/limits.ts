/**
 * Limits the room enforces itself. Local workerd (`wrangler dev`, tests) does not enforce
 * Cloudflare's production limits, so each one we depend on is named here with its source.
 * https://developers.cloudflare.com/durable-objects/platform/limits/
 */

/** Cloudflare's limit on one WebSocket message received by a Durable Object: 32 MiB. */
export const PLATFORM_WEBSOCKET_MESSAGE_LIMIT = 32 * 1024 * 1024;

/** Largest frame the room accepts; bigger frames close the socket with 1009 before decoding. */
export const MAX_FRAME_BYTES = PLATFORM_WEBSOCKET_MESSAGE_LIMIT;

/**
 * Cloudflare's limit on a hibernatable WebSocket's serialized attachment: 16 KiB.
 * `serializeAttachment` throws past it, so what we keep per socket must stay well below.
 */
export const PLATFORM_ATTACHMENT_LIMIT = 16 * 1024;

/**
 * Budget for the awareness states one socket may hold (they live in its attachment so that
 * presence survives hibernation). Leaves room under {@link PLATFORM_ATTACHMENT_LIMIT} for the
 * attachment's other fields and structured-clone overhead. A cursor-and-name state from
 * y-codemirror.next is about 300 bytes.
 */
export const MAX_PRESENCE_BYTES_PER_SOCKET = 8 * 1024;

/** Overhead we charge per awareness entry on top of its JSON, so many tiny states also count. */
export const PRESENCE_ENTRY_OVERHEAD_BYTES = 32;

/** How many removed awareness clocks the room remembers to refuse stale resurrections. */
export const MAX_PRESENCE_TOMBSTONES = 1024;
