/**
 * Limits the room enforces itself. Local workerd (`wrangler dev`, tests) does not enforce
 * Cloudflare's production limits, so each one we depend on is named here with its source.
 * https://developers.cloudflare.com/durable-objects/platform/limits/
 */

/** Cloudflare's limit on one WebSocket message received by a Durable Object: 32 MiB. */
export const PLATFORM_WEBSOCKET_MESSAGE_LIMIT = 32 * 1024 * 1024;

/** Default largest frame (`MAX_FRAME_BYTES`); bigger frames close the socket with 1009 before decoding. */
export const DEFAULT_MAX_FRAME_BYTES = PLATFORM_WEBSOCKET_MESSAGE_LIMIT;

/** Default per-socket message rate (`RATE_MESSAGES_PER_SECOND`); bursts of twice that pass. */
export const DEFAULT_RATE_MESSAGES_PER_SECOND = 200;

/** Default per-socket byte rate (`RATE_BYTES_PER_SECOND`); a burst of one maximum frame always passes. */
export const DEFAULT_RATE_BYTES_PER_SECOND = 1024 * 1024;

/**
 * Default cap on sockets in one room (`MAX_SOCKETS_PER_ROOM`); further ones are closed with 1013.
 * Cloudflare allows far more per object; this bounds what one document's fan-out costs.
 */
export const DEFAULT_MAX_SOCKETS_PER_ROOM = 1_000;

/**
 * Largest Yjs clock (per client) and struct length the room accepts. A person would have to
 * type two billion characters to get there; beyond it JS numbers lose precision in Yjs's clock
 * arithmetic, which a forged update could exploit.
 */
export const MAX_YJS_CLOCK = 2 ** 31 - 1;

/** Deepest nesting of JSON-like content (Yjs "any") the room accepts; Yjs decodes it recursively. */
export const MAX_YJS_CONTENT_DEPTH = 64;

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

/** Cloudflare's limit on one SQLite row or BLOB in a Durable Object: 2 MB. */
export const PLATFORM_SQLITE_ROW_LIMIT = 2_000_000;

/** Largest piece of an update or snapshot stored in one row: well under {@link PLATFORM_SQLITE_ROW_LIMIT}. */
export const SQLITE_CHUNK_BYTES = 1024 * 1024;

/**
 * Default maximum document size (stored bytes), overridable with the `MAX_DOCUMENT_BYTES` var.
 * A new client receives the whole document in one sync step 2, and a client re-sends its whole
 * state in one frame after a reconnect, so a document must fit in one frame.
 */
export const DEFAULT_MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/** The update log is compacted into a snapshot once it holds this many bytes... */
export const COMPACT_LOG_BYTES = 1024 * 1024;
/** ...or this many updates (a keystroke is one update of about 20-30 bytes). */
export const COMPACT_LOG_UPDATES = 1_000;
/** After the last socket leaves, the room compacts this long later (an alarm, so it survives eviction). */
export const IDLE_COMPACTION_DELAY_MS = 5_000;

/**
 * Updates whose dependencies have not arrived wait in memory (never in storage) for at most
 * this long and this many bytes; then they are dropped. Tabs of one browser share edits
 * locally before the server has them, so a short wait is legitimate.
 */
export const PENDING_UPDATE_TTL_MS = 60_000;
export const MAX_PENDING_UPDATE_BYTES = 1024 * 1024;

export const DAY_MS = 24 * 60 * 60 * 1000;
