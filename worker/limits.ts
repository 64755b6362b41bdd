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
 * Deepest nesting of Yjs shared types (a Y.Map in a Y.Array in an XmlElement..., counted from
 * a root type at 0) the room accepts. Yjs deletes and garbage-collects a type by recursing into
 * the types it holds, several frames per level: deleting a chain of nested Y.Maps throws
 * "Maximum call stack size exceeded" from about 1,950 levels in workerd and 1,900 in Node 22
 * (measured with yjs 13.6.33), inside the transaction's cleanup, and every peer that receives
 * the deletion throws too. Real editors stay far below: y-prosemirror nests one XmlElement per
 * block level, rarely past 20.
 */
export const MAX_YJS_TYPE_DEPTH = 256;

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

/**
 * Overhead we charge per awareness entry on top of its JSON (counted in UTF-8 bytes, which
 * bound the attachment's serialized size: V8 stores a string as Latin-1 or UTF-16, never
 * larger than its UTF-8), so many tiny states also count.
 */
export const PRESENCE_ENTRY_OVERHEAD_BYTES = 32;

/**
 * How many presence claims (client ID to token subject) a room keeps, in memory and in storage:
 * a bound on both, not a fairness rule. Past it the oldest claim of the owner holding the most
 * is forgotten, so no owner can push out the claims of one holding fewer.
 */
export const MAX_PRESENCE_CLAIMS = 4_096;

/**
 * How many presence claims one owner keeps; past this its own oldest is forgotten. A stock
 * provider takes a new client ID per page load and keeps it across reconnects, so a claim
 * matters while that page may still reconnect: a person's open tabs, a handful, and a day of
 * reloads fit well within 64; a share link (one owner for everyone holding it) used by a group
 * recycles its oldest claims, those of pages most likely gone. One owner opening sockets and
 * cycling IDs only ever replaces its own claims.
 */
export const MAX_CLAIMS_PER_OWNER = 64;

/**
 * How many client IDs one socket may claim: the first it sets a state for. A stock provider
 * uses one per connection and sends its own state first on open; every other ID it sends is an
 * echo of a state the room relayed (stock providers re-send every presence change they
 * receive), shown but never claimed. With more, an echo of a departed client's state after a
 * wake that forgot its claim (a document never written keeps claims in memory only) claimed
 * its ID for the echoer and locked its owner out (found by the simulation). Without a cap, a
 * socket cycling through new IDs would also make the room write claim rows per frame.
 */
export const MAX_CLAIMS_PER_SOCKET = 1;

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
/**
 * Accepted updates are written to the log together, as one row: one insert per burst instead
 * of one per keystroke (about a fifth of the room's time per edit under load,
 * docs/performance.md). Anything the room sends but the edit itself waits for that write, so a
 * writer is told an edit is saved only once it is on disk. Held updates are written by the
 * first frame that finds them this old...
 */
export const HELD_UPDATES_MAX_MS = 50;
/** ...or as soon as they add up to this many bytes (a large paste is written at once)... */
export const HELD_UPDATES_MAX_BYTES = 64 * 1024;
/**
 * ...and by the alarm this long after the first of them at the latest: far inside the 10 s of
 * idleness after which a Durable Object may hibernate (and forget what it holds while its
 * sockets stay open). Longer than the batch itself so that a room typing steadily moves its
 * alarm once per this interval, not once per keystroke. An object that leaves memory any
 * other way closes its sockets, and every client resyncs what it holds when it reconnects.
 */
export const HELD_UPDATES_ALARM_MS = 2_000;
/** After the last socket leaves, the room compacts this long later (an alarm, so it survives eviction). */
export const IDLE_COMPACTION_DELAY_MS = 5_000;

/**
 * Updates whose dependencies have not arrived wait in memory (never in storage) for at most
 * this long and this many bytes; then they are dropped. Tabs of one browser share edits
 * locally before the server has them, so a short wait is legitimate.
 */
export const PENDING_UPDATE_TTL_MS = 60_000;
export const MAX_PENDING_UPDATE_BYTES = 1024 * 1024;
/**
 * Yjs re-reads every waiting delete set on each later update, so waiting deletions are bounded
 * by ranges, which is what that re-read costs, not by bytes: Yjs's V2 encoding run-length
 * compresses regular ranges, so a few bytes can hold many.
 */
export const MAX_PENDING_DELETE_RANGES = 10_000;

/**
 * Heap one Yjs item takes once loaded: 210-245 bytes, measured in Node 22 with yjs 13.6
 * (unmergeable one-character items, live and deleted). A byte limit alone does not bound
 * memory: such an item costs about one byte in a V2 snapshot.
 */
export const YJS_ITEM_HEAP_BYTES = 245;

/**
 * Heap the largest document may take once loaded. Cloudflare gives an isolate 128 MB for
 * everything. Version preview and restore load a second copy beside the live one; together
 * they stay within this too (see `RoomDocument.restore` and {@link MAX_DOCUMENT_ITEMS}).
 */
export const MAX_DOCUMENT_HEAP_BYTES = 64 * 1024 * 1024;

/**
 * Most Yjs items (structs) a document may hold: {@link MAX_DOCUMENT_HEAP_BYTES} at
 * {@link YJS_ITEM_HEAP_BYTES} each, rounded down. Real documents stay far below: the
 * automerge-paper trace (259,778 keystrokes) loads as 10,971 items. An update is refused (4413)
 * when it could take the document past this; each new item may split up to two existing ones.
 */
export const MAX_DOCUMENT_ITEMS = 250_000;

/**
 * What the room may send in answer to one socket's requests (sync step 2, query-awareness
 * replies): a full bucket always admits one maximum frame, refilled at the socket's inbound
 * byte rate. A Durable Object cannot see a socket's unsent backlog (no `bufferedAmount`, and
 * workerd queues sends without bound), so a socket that asks for the document again and again
 * without reading is closed (1008) once this runs out, before its backlog can grow further.
 */
export const SOCKET_ANSWER_BURST_BYTES = PLATFORM_WEBSOCKET_MESSAGE_LIMIT;

/**
 * A socket's answer budget starts at twice its first answer (its sync, usually the whole
 * document) plus this, rather than a full {@link SOCKET_ANSWER_BURST_BYTES}: enough for its
 * sync and resyncs, while a socket that asks for the whole document again and again is
 * refused after a couple of encodes.
 */
export const ANSWER_SLACK_BYTES = 1024 * 1024;

/** What the whole room may send in answers in a burst, and per second: joiners past it get 1013. */
export const ROOM_ANSWER_BURST_BYTES = 64 * 1024 * 1024;
export const ROOM_ANSWER_BYTES_PER_SECOND = 32 * 1024 * 1024;

/**
 * HTTP reads that encode or build a document (worker/read-budget.ts) are charged, besides the
 * room's answer budget above, to their caller (the token's owner, else the address): this
 * much a second. Past it, 429. Encoding costs 30-110 ns a byte of V1 in Node 22 and about
 * twice that under `wrangler dev` (100,000 one-character items: 1.2 MB charged, 100-200 ms);
 * at 1 MiB/s one caller at the door's 20 calls a second still took honest relay from p50 5 ms
 * to 32 ms (`npm run bench -- --scenario hostile --attacks 11r`), at this rate it keeps the
 * room busy a few percent of the time. A backup or indexer reading a 1 MB document after each
 * change (webhooks come at most every 10 s) stays within it.
 */
export const READ_CALLER_BYTES_PER_SECOND = 256 * 1024;
/**
 * A caller's burst. A full budget admits any one read however costly (then the caller waits
 * until it is paid back), so every version stays readable, even the 60 MB load of a
 * 250,000-item one; kept small so that reads of a large document are spaced out by their
 * cost, never back to back, and each stall of the room stands alone.
 */
export const READ_CALLER_BURST_BYTES = 1024 * 1024;
/**
 * What a read is charged per Yjs item it walks (encoding, converting, reading the text), on
 * top of the stored bytes it is made from: a one-character item encodes as about 11 bytes of
 * V1 (100,000 of them: 1.08 MB) and costs about as much to walk as to write. Loading a version
 * (one taken before versions kept their text) is charged {@link YJS_ITEM_HEAP_BYTES} per item
 * instead, the heap the second copy takes.
 */
export const READ_ITEM_COST_BYTES = 11;
/**
 * Answers a room keeps (the live document's update and text until the next change, versions'
 * texts and updates, which never change), least recently used dropped first. Small beside the
 * isolate's 128 MB, of which the document and a second copy may take {@link MAX_DOCUMENT_HEAP_BYTES}
 * and one frame in flight 32 MiB; an answer over a quarter of it is not kept.
 */
export const READ_CACHE_BYTES = 4 * 1024 * 1024;
/**
 * Callers whose read budget a room remembers. Past it, callers whose budget has refilled (no
 * different from a new caller) are forgotten first, then the least recently seen: forgetting
 * a debt takes this many other callers, each counted at the door.
 */
export const MAX_READ_CALLERS = 1_000;

/**
 * Most bytes one relay may queue across the room (frame size times recipients). workerd copies
 * a frame for every socket it is sent to, so a 16 MiB update relayed to 1,000 sockets would
 * queue 16 GB. Sockets past this are closed with 1013 instead and catch up when they
 * reconnect (their sync answer is charged to the answer budgets above). Half of the 64 MiB a
 * single frame may cost, since the frame itself and the document it grows take the rest.
 */
export const MAX_RELAY_BYTES = 32 * 1024 * 1024;

/**
 * Stock y-websocket providers re-send every presence change they receive (their update handler
 * ignores the origin), so in a busy room a socket's inbound frames grow with everyone else's
 * activity. Such echoes change nothing and are paid from a credit the room grants as it sends
 * awareness: this many bytes per byte sent (a re-encoded state may come back a little longer),
 * up to the limit. An echo cannot exceed what it echoes; a frame that changes the socket's own
 * presence always pays from its message rate.
 */
export const ECHO_CREDIT_PER_BYTE_SENT = 2;
export const ECHO_CREDIT_LIMIT_BYTES = 1024 * 1024;

/** A socket must complete the sync handshake (send its sync step 2) within this, or is closed with 4001. */
export const JOIN_TIMEOUT_MS = 10_000;

/**
 * Quiet clients (docs/protocol.md) are judged by probes, not by their silence: one that showed no
 * sign of life (a frame, or a `ping` the runtime answered) for this long is sent a probe when the
 * room checks. The app's client pings after 30 s of sending nothing (client/quiet-socket.ts), so
 * a visible tab is never probed; a background tab, whose timers Chrome runs about once a
 * minute, sometimes is, and answers at once (socket messages are not throttled).
 */
export const QUIET_PROBE_AFTER_MS = 45_000;

/** A quiet client that shows no sign of life this long after a probe is gone: closed with 4000, its presence removed. */
export const QUIET_PROBE_GRACE_MS = 10_000;

/**
 * While quiet clients are open the room wakes itself this often to check them (the issue's
 * bound for a periodic wake: at most every 5 minutes); it also checks whenever it wakes for
 * another reason, so a vanished tab leaves everyone's list within
 * {@link QUIET_PROBE_GRACE_MS} of the room's next wake (docs/sessions.md).
 */
export const QUIET_CHECK_INTERVAL_MS = 5 * 60_000;

/** While the room is in use (frames arrive), quiet clients are checked at the first event this long after the last check. */
export const QUIET_CHECK_IN_USE_MS = 60_000;

/**
 * Stock providers drop a remote state that no newer clock renewed for 30 s (y-protocols'
 * `outdatedTimeout`), and quiet clients do not renew theirs: a renewing socket whose frame
 * reaches the room is sent quiet clients' states renewed when its last renewal is this old, and
 * renewing sockets are shown those states under their clock raised by one per this interval
 * since the room first held them (worker/awareness.ts `shownClock`). Under y-protocols' 15 s
 * renewal interval, so that a stock provider renewing its own every 15 s is renewed at each.
 */
export const QUIET_RENEWAL_INTERVAL_MS = 10_000;

/**
 * A socket's last-frame time is written to its attachment (so it survives hibernation) at most
 * this often: a write per frame would serialize the attachment on every keystroke.
 */
export const ACTIVITY_STAMP_INTERVAL_MS = 10_000;

/**
 * Sockets the room has closed but the runtime still lists (the peer has not completed the close
 * handshake). They do not count against `MAX_SOCKETS_PER_ROOM`, but past this many new
 * sockets are refused with 1013, so peers that never finish closing cannot pile up.
 */
export const MAX_CLOSING_SOCKETS = 1_000;

export const HOUR_MS = 60 * 60 * 1000;
export const DAY_MS = 24 * HOUR_MS;

/** Default for `VERSION_INTERVAL_MINUTES`: while editing goes on, an automatic version at most this often. */
export const DEFAULT_VERSION_INTERVAL_MINUTES = 10;

/**
 * Bytes of versions one document keeps (docs/history.md). Oldest automatic versions are
 * dropped past it; a named version that would not fit beside the named ones is refused. The
 * newest version is always kept, so history may exceed this by one version (at most one
 * document, `MAX_DOCUMENT_BYTES`). At Cloudflare's storage price this is about a cent a month.
 */
export const MAX_HISTORY_BYTES = 64 * 1024 * 1024;

/**
 * A duty of the alarm that failed (worker/room/duties.ts: a storage fault, a version encode
 * that threw, a bug) is retried this long later, doubling with each failure in a row up to
 * {@link DUTY_RETRY_MAX_MS}: its due time is otherwise in the past, and every alarm would fire
 * at once and redo the failing work (encode the whole document for a version, say).
 */
export const DUTY_RETRY_FIRST_MS = 30_000;
export const DUTY_RETRY_MAX_MS = 10 * 60_000;

/** Versions one document keeps, whatever their size: listing them stays one small JSON answer. */
export const MAX_VERSIONS = 1_000;

/** Named versions one document may hold; saving more is refused until some are deleted. */
export const MAX_NAMED_VERSIONS = 200;

/** Longest version name, in characters. */
export const MAX_VERSION_NAME_CHARS = 100;

/**
 * Authors recorded per version, and the longest name kept of each. Names come from tokens or
 * from presence (remote input), so both are bounded before they are stored.
 */
export const MAX_VERSION_AUTHORS = 20;
export const MAX_AUTHOR_NAME_CHARS = 64;

/**
 * Webhooks (docs/webhooks.md). `document.updated` is sent once the document has been quiet
 * this long (`WEBHOOK_QUIET_SECONDS`)...
 */
export const DEFAULT_WEBHOOK_QUIET_SECONDS = 10;
/** ...and at least this often while editing goes on (`WEBHOOK_MAX_WAIT_SECONDS`). */
export const DEFAULT_WEBHOOK_MAX_WAIT_SECONDS = 60;
/**
 * Delays before each retry of a failed delivery (`WEBHOOK_RETRY_SECONDS`, comma-separated):
 * 5 s, 30 s, 2 min, 10 min, 1 h, then every 6 h for 3 days; each with ±20% jitter. After the
 * last, the event is kept as failed.
 */
export const DEFAULT_WEBHOOK_RETRY_SECONDS = [5, 30, 120, 600, 3600, ...Array<number>(12).fill(6 * 3600)];
/**
 * One delivery attempt may take this long. An alarm may run for 15 minutes of wall time on
 * Cloudflare; a few attempts in parallel stay far inside it.
 */
export const WEBHOOK_REQUEST_TIMEOUT_MS = 10_000;
/** Attempts one alarm run makes; more wait for the next run, a moment later. */
export const MAX_WEBHOOK_DELIVERIES_PER_ALARM = 10;
/**
 * Undelivered events kept per endpoint and document; past it the oldest pending ones are
 * dropped (`webhook_dropped`). A document makes at most one `document.updated` per quiet period
 * and a version per editing session or name, so only an endpoint down for days, or a token
 * cycling named versions, reaches it: about 0.5 MB of rows.
 */
export const MAX_UNDELIVERED_WEBHOOKS = 1_000;
/** Failed events stay listed (`GET /api/docs/:name/webhooks`) this long... */
export const WEBHOOK_FAILED_RETENTION_MS = 7 * 24 * HOUR_MS;
/** ...and at most this many per document, newest kept. */
export const MAX_FAILED_WEBHOOKS = 100;
