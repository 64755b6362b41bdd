/**
 * What the room's HTTP reads cost, and what it remembers of them (docs/limits.md, "HTTP
 * reads"). Reads that encode or build a document (`GET /api/docs/:name`, `/text`, `/update`,
 * `/versions/:id/text`, `/versions/:id/update`) are answered from a bounded cache when they
 * can be, and otherwise charged, before the work, to their caller's budget and to the room's
 * answer budget, which socket answers (sync step 2) draw on too.
 *
 * Costs are in bytes, like the socket answers', estimated before the work from what is recorded
 * about the stored answer, never from the answer itself (the room must refuse before it spends,
 * and reading a stored version is already up to 16 MiB of work): the stored bytes the answer is
 * made from (its content, which bounds what it sends) plus, for every Yjs item the work walks,
 * what walking it costs. Loading a version builds a second document, so it is charged the heap
 * that document takes ({@link YJS_ITEM_HEAP_BYTES} an item), not the text it produces: for a
 * document of one-character items the text is 1 byte an item and the load 245. A cached
 * answer costs only its bytes, which still go out through the room; so does a version's text
 * read from storage, where versions keep it (those taken before it was kept are loaded).
 */
import type { Outcome, ReadBusy } from "./documents";
import {
  READ_CACHE_BYTES,
  READ_CALLER_BURST_BYTES,
  READ_CALLER_BYTES_PER_SECOND,
  READ_ITEM_COST_BYTES,
  ROOM_ANSWER_BURST_BYTES,
  ROOM_ANSWER_BYTES_PER_SECOND,
  MAX_READ_CALLERS,
  YJS_ITEM_HEAP_BYTES,
} from "./limits";
import type { TokenBucket } from "./rate";

/** An answer the room may keep: text, or a binary Yjs update. */
export type ReadAnswer = string | Uint8Array;

/**
 * What a read that missed the cache costs, and how to make its answer once admitted: `cost` is
 * known without reading what the answer is made from; `build` reads it and does the work.
 */
export interface ReadWork<T extends ReadAnswer> {
  cost: number;
  build: () => T;
}

/** What answering from the live document costs: its stored bytes plus a walk over its items. */
export function liveReadCost(storedBytes: number, items: number): number {
  return storedBytes + items * READ_ITEM_COST_BYTES;
}

/** What converting a stored version (Yjs V2) to V1 costs, without loading it: like a live read of it. */
export function versionConvertCost(version: { stateBytes: number; items: number }): number {
  return liveReadCost(version.stateBytes, version.items);
}

/** What loading a version as a second document costs: the heap it builds, and its stored bytes. */
export function versionLoadCost(version: { stateBytes: number; items: number }): number {
  return version.stateBytes + version.items * YJS_ITEM_HEAP_BYTES;
}

/**
 * What a version's text read from storage costs: only its bytes, like a cached answer (nothing
 * is built). Known from its stored UTF-8 bytes, before it is read: the string holds at most two
 * bytes for each (a UTF-16 unit takes at least one UTF-8 byte), as {@link answerBytes} counts it.
 */
export function storedTextCost(utf8Bytes: number): number {
  return 2 * utf8Bytes;
}

/** Bytes an answer holds in memory and sends: a string counted at two bytes a unit (V8 may store it as UTF-16). */
function answerBytes(answer: ReadAnswer): number {
  return typeof answer === "string" ? 2 * answer.length : answer.byteLength;
}

/**
 * A token bucket that admits any one answer when full, however costly, and then waits for its
 * debt to be refilled: the largest answer a document may need (a 250,000-item version is about
 * 60 MB of heap) must remain readable, while a caller's burst stays a few encodes.
 */
class DebtBucket {
  private tokens: number;

  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
    private updatedAt: number,
  ) {
    this.tokens = capacity;
  }

  /** Seconds until `cost` would be admitted (0: now); `cost` undefined asks whether anything could be. */
  wait(now: number, cost?: number): number {
    this.refill(now);
    const needed = cost === undefined ? Number.MIN_VALUE : Math.min(cost, this.capacity);
    return this.tokens >= needed ? 0 : Math.max(1, Math.ceil((needed - this.tokens) / this.perSecond));
  }

  charge(cost: number, now: number): void {
    this.refill(now);
    this.tokens -= cost;
  }

  /** Whether it has refilled completely, and so is no different from a new one. */
  full(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.capacity;
  }

  private refill(now: number): void {
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.updatedAt) / 1000) * this.perSecond);
    this.updatedAt = now;
  }
}

/**
 * A cache of answers bounded in total bytes ({@link READ_CACHE_BYTES}), least recently used
 * dropped first. {@link LIVE_UPDATE} and {@link LIVE_TEXT} are answers from the live document,
 * dropped at every change; `version:` keys are answers from a version, which never changes once taken.
 */
class ReadCache {
  private readonly entries = new Map<string, ReadAnswer>();
  private bytes = 0;

  constructor(private readonly capacity: number) {}

  get(key: string): ReadAnswer | undefined {
    const answer = this.entries.get(key);
    if (answer === undefined) return undefined;
    // Re-inserted, so the Map's order is the order of use.
    this.entries.delete(key);
    this.entries.set(key, answer);
    return answer;
  }

  /** Keeps `answer` unless it alone is over a quarter of the cache: one answer must not flush all the others. */
  set(key: string, answer: ReadAnswer): void {
    const size = answerBytes(answer);
    if (size > this.capacity / 4) return;
    this.delete(key);
    this.entries.set(key, answer);
    this.bytes += size;
    for (const [oldest, old] of this.entries) {
      if (this.bytes <= this.capacity) break;
      this.entries.delete(oldest);
      this.bytes -= answerBytes(old);
    }
  }

  delete(key: string): void {
    const answer = this.entries.get(key);
    if (answer === undefined) return;
    this.entries.delete(key);
    this.bytes -= answerBytes(answer);
  }

  /** Drops every answer made from the live document: called on every edit, so two lookups, no scan. */
  dropLive(): void {
    this.delete(LIVE_UPDATE);
    this.delete(LIVE_TEXT);
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}

/** The key of the live document's whole state as one V1 update. */
export const LIVE_UPDATE = "live:update";
/** The key of the live document's text. */
export const LIVE_TEXT = "live:text";

/**
 * One room's HTTP reads: the cache, and the budgets of the callers that read (at most
 * {@link MAX_READ_CALLERS} remembered), charged together with the room's answer budget.
 */
export class RoomReads {
  private readonly cache = new ReadCache(READ_CACHE_BYTES);
  private readonly callers = new Map<string, DebtBucket>();
  /** Size of the live document as one V1 update, known since the last change, or null. */
  private liveEncodedBytes: number | null = null;
  /** The storage the cached version answers came from: a deleted document's version ids start over. */
  private storage: object | null = null;

  /** `roomAnswers` is the room's answer budget, shared with the sockets' sync answers. */
  constructor(private readonly roomAnswers: TokenBucket) {}

  /** Forgets every answer when `storage` is not the one they were made from (the document was deleted since). */
  within(storage: object): this {
    if (this.storage !== storage) {
      this.cache.clear();
      this.liveEncodedBytes = null;
      this.storage = storage;
    }
    return this;
  }

  /** The live document changed: its cached answers are stale. */
  documentChanged(): void {
    this.cache.dropLive();
    this.liveEncodedBytes = null;
  }

  /**
   * Answers a read: from the cache under `key` (charged its bytes), or by building `work()`'s
   * answer once its cost is admitted. A caller whose budget cannot pay the estimate is refused
   * before anything is read: `work` only estimates (and runs only for a caller with budget left,
   * as it may load the live document), and may throw a refusal of its own; `build` reads.
   */
  read<T extends ReadAnswer>(caller: string, key: string | null, now: number, work: () => ReadWork<T>): Outcome<T> {
    const cached = key === null ? undefined : (this.cache.get(key) as T | undefined);
    if (cached !== undefined) return this.charge(caller, answerBytes(cached), now) ?? { ok: true, value: cached };
    const waitFor = this.callerBucket(caller, now).wait(now);
    if (waitFor > 0) return callerBusy(waitFor);
    const { cost, build } = work();
    const refused = this.charge(caller, cost, now);
    if (refused) return refused;
    const answer = build();
    if (key !== null) this.cache.set(key, answer);
    if (key === LIVE_UPDATE) this.liveEncodedBytes = answerBytes(answer);
    return { ok: true, value: answer };
  }

  /**
   * The live document's size as one V1 update (`GET /api/docs/:name`), encoded once per change:
   * while it is known, the answer is a few hundred bytes of JSON and charged nothing.
   */
  encodedSize(caller: string, now: number, work: () => ReadWork<Uint8Array>): Outcome<number> {
    if (this.liveEncodedBytes !== null) return this.charge(caller, 0, now) ?? { ok: true, value: this.liveEncodedBytes };
    const encoded = this.read(caller, LIVE_UPDATE, now, work);
    return encoded.ok ? { ok: true, value: encoded.value.byteLength } : encoded;
  }

  /** Charges `cost` to the caller and the room, or says who cannot pay it now. */
  private charge(caller: string, cost: number, now: number): Outcome<never> | null {
    const bucket = this.callerBucket(caller, now);
    const waitFor = bucket.wait(now, cost);
    if (waitFor > 0) return callerBusy(waitFor);
    // The room's bucket cannot go into debt: an answer over its burst is charged the burst.
    const roomCost = Math.min(cost, ROOM_ANSWER_BURST_BYTES);
    if (!this.roomAnswers.take(roomCost, now)) {
      return busy("room", Math.max(1, Math.ceil(roomCost / ROOM_ANSWER_BYTES_PER_SECOND)), "room busy: too much read at once; retry later");
    }
    bucket.charge(cost, now);
    return null;
  }

  /**
   * `caller`'s bucket, made when it first reads. Past {@link MAX_READ_CALLERS}, buckets that
   * refilled (no different from new ones) are forgotten first, then the least recently used.
   */
  private callerBucket(caller: string, now: number): DebtBucket {
    let bucket = this.callers.get(caller);
    if (bucket) {
      this.callers.delete(caller);
    } else {
      bucket = new DebtBucket(READ_CALLER_BURST_BYTES, READ_CALLER_BYTES_PER_SECOND, now);
      if (this.callers.size >= MAX_READ_CALLERS) {
        for (const [name, other] of this.callers) if (other.full(now)) this.callers.delete(name);
        if (this.callers.size >= MAX_READ_CALLERS) this.callers.delete(this.callers.keys().next().value!);
      }
    }
    this.callers.set(caller, bucket);
    return bucket;
  }
}

function busy(who: ReadBusy, retryAfterSeconds: number, reason: string): Outcome<never> {
  return { ok: false, busy: who, retryAfterSeconds, reason };
}

function callerBusy(retryAfterSeconds: number): Outcome<never> {
  return busy("caller", retryAfterSeconds, `read budget exceeded: ${READ_CALLER_BYTES_PER_SECOND} bytes of reads per second; retry after ${retryAfterSeconds} s`);
}
