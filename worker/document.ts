/**
 * The room's Yjs document and its durable storage: the one place the room reads or changes
 * document state.
 *
 * Guarantees:
 * - An update is handed to `relay` once every check that can refuse it has passed and Yjs has
 *   integrated it, and then to the store, which holds it for a moment to write it with the
 *   next few as one log row. The room writes what is held before it sends anything but a
 *   relayed edit: frames sent before a write are not held by the Durable Object's output gate,
 *   so other clients get the edit without waiting for the disk, while anything sent after it
 *   (the writer's save confirmation among it) waits until the write is durable. When a write
 *   fails, {@link discardUnstored} goes back to what is stored. When Yjs throws while applying
 *   an update, the document goes back to what is stored and held (see {@link reload}).
 * - Only what the document integrated is stored and relayed, never a client's raw bytes.
 * - Updates waiting for missing dependencies stay in memory only, bounded in bytes, delete
 *   ranges and time, and are excluded from everything encoded (sync answers and snapshots alike).
 * - Every input is measured before it is spent on: an update's new items against
 *   {@link MAX_DOCUMENT_ITEMS} and its waiting deletions against
 *   {@link MAX_PENDING_DELETE_RANGES}; its types' nesting against `MAX_YJS_TYPE_DEPTH`
 *   (worker/update-check.ts); a state vector only as far as it names our clients.
 */
import * as decoding from "lib0/decoding";
import * as Y from "yjs";
import {
  COMPACT_LOG_BYTES,
  COMPACT_LOG_UPDATES,
  MAX_DOCUMENT_ITEMS,
  MAX_PENDING_DELETE_RANGES,
  MAX_PENDING_UPDATE_BYTES,
  PENDING_UPDATE_TTL_MS,
} from "./limits";
import { CloseCode, EMPTY_UPDATE, ProtocolError } from "./protocol";
import { restoreUpdate } from "./restore";
import type { DocumentStore } from "./storage";
import { boundedTextEdits } from "./text-diff";
import { documentTitle } from "./title";
import { typeDepth } from "./type-depth";
import { checkUpdateStructure, type DocumentTypes } from "./update-check";

/** What a compaction did, for logs and tests. */
export interface CompactionResult {
  bytesBefore: number;
  bytesAfter: number;
  ms: number;
}

/** What applying an update did. */
export interface Applied {
  /** The update the document integrated and stored (to relay), or null when nothing was new. */
  integrated: Uint8Array | null;
  /** Part of the update waits for dependencies: it is not stored, so its sender is not told it is saved. */
  waits: boolean;
  /** The clients whose structs in the update wait (empty when only deletions wait, or nothing). */
  waitingClients?: number[];
}

/** The `Y.Text` the editor shows (y-codemirror.next's convention). */
const SHARED_TEXT = "codemirror";

/** Receives an integrated update before it is stored (see the guarantees above). */
export type Relay = (integrated: Uint8Array) => void;
const noRelay: Relay = () => {};

export class RoomDocument {
  private doc: Y.Doc;
  /** When updates first started waiting for missing dependencies, or null when none wait. */
  private pendingSince: number | null = null;
  /** At most how many delete ranges wait (the sum over waiting updates; reset when none wait). */
  private pendingDeleteRanges = 0;
  /** Items (structs) the document holds, recounted after every change. */
  private items: number;
  /** The document's types, as {@link checkUpdateStructure} sees them; remade with the document. */
  private types: DocumentTypes;
  /** Set when waiting updates were dropped or the document went back to storage, until {@link takeLostWaiting}. */
  private lostWaiting = false;

  constructor(
    private readonly store: DocumentStore,
    private readonly maxDocumentBytes: number,
  ) {
    this.doc = loadDocument(store, []);
    this.items = countItems(this.doc);
    this.types = documentTypes(this.doc, () => this.items);
  }

  /** The document's state vector, for sync step 1. Pending updates are not part of it. */
  stateVector(): Uint8Array {
    return Y.encodeStateVector(this.doc);
  }

  /** What a peer with `stateVector` lacks, for sync step 2. */
  missingFrom(stateVector: Uint8Array): Uint8Array {
    const known = Y.encodeStateVector(this.knownPartOf(stateVector));
    return this.withoutPending(() => Y.encodeStateAsUpdate(this.doc, known));
  }

  /**
   * The entries of an encoded state vector for clients this document has; the others cannot
   * change the answer. Read one at a time, so a vector listing millions of clients costs time
   * linear in its size and memory bounded by the document (Yjs would decode it whole).
   */
  private knownPartOf(stateVector: Uint8Array): Map<number, number> {
    const known = new Map<number, number>();
    try {
      const decoder = decoding.createDecoder(stateVector);
      const count = decoding.readVarUint(decoder);
      // Each entry takes at least two bytes.
      if (count > stateVector.length / 2) throw new RangeError("count exceeds the state vector");
      for (let i = 0; i < count; i++) {
        const client = decoding.readVarUint(decoder);
        const clock = decoding.readVarUint(decoder);
        if (this.doc.store.clients.has(client)) known.set(client, clock);
      }
      if (decoding.hasContent(decoder)) throw new RangeError("trailing bytes");
    } catch {
      throw new ProtocolError(CloseCode.invalidPayload, "invalid state vector");
    }
    return known;
  }

  /** The text the editor shows: the `Y.Text` named "codemirror" (y-codemirror.next's convention). */
  text(): string {
    return this.doc.getText(SHARED_TEXT).toString();
  }

  /** The document's title, cleaned and bounded (worker/title.ts), or "Untitled". */
  title(): string {
    return documentTitle(this.doc);
  }

  /** The document as one V1 update, or only what a peer with `stateVector` lacks. */
  encode(stateVector?: Uint8Array): Uint8Array {
    return stateVector === undefined ? this.withoutPending(() => Y.encodeStateAsUpdate(this.doc)) : this.missingFrom(stateVector);
  }

  /** How many items (structs) the document holds; see {@link MAX_DOCUMENT_ITEMS}. */
  itemCount(): number {
    return this.items;
  }

  /**
   * Applies a client's update and hands what the document integrated to the store. Throws
   * {@link ProtocolError} when the update is refused; then nothing was relayed or stored and
   * the document is as before.
   */
  apply(update: Uint8Array, now: number, relay: Relay = noRelay): Applied {
    const shape = checkUpdateStructure(update, this.types);
    this.refuseIfTooLarge(update.length, shape.newStructs);
    if (this.pendingDeleteRanges + shape.waitingDeleteRanges > MAX_PENDING_DELETE_RANGES) {
      throw new ProtocolError(
        CloseCode.policyViolation,
        `updates with missing dependencies over ${MAX_PENDING_DELETE_RANGES} delete ranges`,
      );
    }
    const { pendingStructs, pendingDs } = this.doc.store;
    const integrated = this.commit(now, relay, (integratedSoFar) => {
      try {
        Y.applyUpdate(this.doc, update);
      } catch {
        this.recoverFromYjs(integratedSoFar(), pendingStructs, pendingDs);
        throw new ProtocolError(CloseCode.invalidPayload, "invalid update: Yjs could not decode it");
      }
    });
    this.pendingDeleteRanges = this.doc.store.pendingDs === null ? 0 : this.pendingDeleteRanges + shape.waitingDeleteRanges;
    this.boundPending(now);
    const waitingClients = [...shape.reach].filter(([client, clock]) => Y.getState(this.doc.store, client) < clock).map(([client]) => client);
    const deletesWait = shape.waitingDeleteRanges > 0 && this.doc.store.pendingDs !== null;
    return { integrated, waits: waitingClients.length > 0 || deletesWait, waitingClients };
  }

  /** Bytes of updates waiting for dependencies (at most {@link MAX_PENDING_UPDATE_BYTES}). */
  waitingBytes(): number {
    return pendingBytes(this.doc);
  }

  /** Whether any update waits for dependencies. */
  hasPending(): boolean {
    return this.pendingSince !== null;
  }

  /**
   * Replaces the text with `next` as a small edit (a diff bounded by the work it may do,
   * applied in one transaction), so the unchanged parts keep their identity and collaborators'
   * cursors in them stay put. Returns the update to relay, or null when the text was already `next`.
   */
  replaceText(next: string, now: number, relay: Relay = noRelay): Uint8Array | null {
    const text = this.doc.getText(SHARED_TEXT);
    const edits = boundedTextEdits(text.toString(), next);
    // Each insert is one new item; inserts and deletes may each split existing items.
    this.refuseIfTooLarge(next.length * 3, edits.length);
    return this.commit(now, relay, () =>
      this.doc.transact(() => {
        let index = 0;
        for (const edit of edits) {
          if ("retain" in edit) {
            index += edit.retain;
          } else if ("delete" in edit) {
            text.delete(index, edit.delete);
          } else {
            text.insert(index, edit.insert);
            index += edit.insert.length;
          }
        }
      }),
    );
  }

  /**
   * Puts the document back to a whole state after Yjs threw applying an update (readers never
   * get here, their updates are not applied). What the update integrated was neither relayed
   * nor held. Yjs finishes its transaction in a `finally`, emitting what it integrated, unless
   * it throws inside that cleanup (where it garbage-collects deleted types, recursing per
   * level): then the transaction stays open for good (`_transactionCleanups` keeps it) and the
   * document applies every later update without emitting it, so no edit would reach anyone
   * again. Part integrated, or a transaction left open: only a fresh copy of what is stored and
   * held is known to be whole. Otherwise the document is as before but for what was set
   * waiting, which is put back at no cost (reloading a large document per refused update would
   * cost its size in memory each time).
   */
  private recoverFromYjs(integrated: boolean, pendingStructs: Y.Doc["store"]["pendingStructs"], pendingDs: Uint8Array | null): void {
    if (integrated || this.doc._transaction !== null || this.doc._transactionCleanups.length > 0) {
      this.reload();
    } else {
      this.doc.store.pendingStructs = pendingStructs;
      this.doc.store.pendingDs = pendingDs;
    }
  }

  /**
   * Runs `change`, hands the update the document emits for it to `relay` and to the store;
   * returns that update or null. `change` may ask whether anything was integrated so far (to
   * recover from a failure).
   */
  private commit(now: number, relay: Relay, change: (integratedSoFar: () => boolean) => void): Uint8Array | null {
    let integrated: Uint8Array | null = null;
    const capture = (emitted: Uint8Array) => {
      integrated = emitted;
    };
    // The document this change runs on: a failed change may replace `this.doc` (reload).
    const doc = this.doc;
    doc.on("update", capture);
    try {
      change(() => integrated !== null);
    } finally {
      doc.off("update", capture);
    }
    if (integrated === null) return null;
    relay(integrated);
    try {
      this.store.hold(integrated, now);
    } catch (error) {
      // The first update is written at once, and that write failed: go back to what is stored.
      this.reload();
      throw error;
    }
    this.items = countItems(this.doc);
    return integrated;
  }

  /** Whether `update` adds nothing (a peer with nothing new answers sync step 1 with such an update). */
  static isEmpty(update: Uint8Array): boolean {
    return update.length === EMPTY_UPDATE.length && update.every((byte, i) => byte === EMPTY_UPDATE[i]);
  }

  /** Whether the log has grown enough that it should be folded into the snapshot. */
  needsCompaction(): boolean {
    const { logBytes, logUpdates } = this.store.statistics();
    return logBytes >= COMPACT_LOG_BYTES || logUpdates >= COMPACT_LOG_UPDATES;
  }

  /**
   * The whole document as one Yjs V2 update, as snapshots and versions store it (V2 is about
   * 45% smaller than V1 on real editing traces, see docs/storage.md).
   */
  stateV2(): Uint8Array {
    return this.withoutPending(() => Y.encodeStateAsUpdateV2(this.doc));
  }

  /** Writes the merged document (`state`, when already encoded) as the snapshot and deletes the log it covers, atomically. */
  compact(state = this.stateV2()): CompactionResult {
    const started = Date.now();
    const bytesBefore = this.store.statistics().storedBytes;
    this.store.replaceWithSnapshot(state);
    return { bytesBefore, bytesAfter: this.store.statistics().storedBytes, ms: Date.now() - started };
  }

  /**
   * The update that turns the document back into `version` (worker/restore.ts), or null when
   * it already is. The restore loads a second copy holding both the version's items and the
   * document's, so it is refused (4413) unless the two copies together stay within
   * {@link MAX_DOCUMENT_ITEMS}, the heap bound of one document.
   */
  restoreUpdate(version: { state: Uint8Array; items: number }): Uint8Array | null {
    if (2 * this.items + version.items > MAX_DOCUMENT_ITEMS) {
      throw new ProtocolError(CloseCode.documentTooLarge, `too large to restore in memory: over ${MAX_DOCUMENT_ITEMS} items in both copies`);
    }
    return this.withoutPending(() => restoreUpdate(this.doc, version.state));
  }

  /** When waiting updates will be dropped, or null when none wait. */
  pendingExpiry(): number | null {
    return this.pendingSince === null ? null : this.pendingSince + PENDING_UPDATE_TTL_MS;
  }

  /** Drops waiting updates older than the TTL; returns whether any were dropped. */
  expirePending(now: number): boolean {
    const expiry = this.pendingExpiry();
    if (expiry === null || now < expiry) return false;
    this.dropPending();
    return true;
  }

  /**
   * Refuses (4413) a change of `incomingBytes` adding `newItems` items that could take the
   * document past its byte or item limit. Each new item may split up to two existing ones.
   */
  private refuseIfTooLarge(incomingBytes: number, newItems: number): void {
    if (this.items + 3 * newItems > MAX_DOCUMENT_ITEMS) {
      throw new ProtocolError(CloseCode.documentTooLarge, `document too large: over ${MAX_DOCUMENT_ITEMS} items`);
    }
    if (this.store.statistics().storedBytes + incomingBytes <= this.maxDocumentBytes) return;
    // The log may hold much that a snapshot folds away (deletions, overwritten text).
    if (this.store.hasLog()) this.compact();
    if (this.store.statistics().storedBytes + incomingBytes > this.maxDocumentBytes) {
      throw new ProtocolError(CloseCode.documentTooLarge, `document too large: over ${this.maxDocumentBytes} bytes`);
    }
  }

  private boundPending(now: number): void {
    const waitingBytes = pendingBytes(this.doc);
    if (waitingBytes === 0) {
      this.pendingSince = null;
      return;
    }
    this.pendingSince ??= now;
    if (waitingBytes > MAX_PENDING_UPDATE_BYTES) {
      this.dropPending();
      throw new ProtocolError(
        CloseCode.policyViolation,
        `updates with missing dependencies over ${MAX_PENDING_UPDATE_BYTES} bytes`,
      );
    }
  }

  /**
   * Whether waiting updates were dropped (TTL, the pending bound) or the document was reloaded
   * (which forgets them) since the last call: their writers must be asked to send them again
   * (worker/room/updates.ts).
   */
  takeLostWaiting(): boolean {
    const lost = this.lostWaiting;
    this.lostWaiting = false;
    return lost;
  }

  private dropPending(): void {
    this.lostWaiting = true;
    // Yjs keeps structs with missing dependencies in `store.pendingStructs` and deletions it
    // cannot apply yet in `store.pendingDs`; clearing them forgets those updates entirely.
    this.doc.store.pendingStructs = null;
    this.doc.store.pendingDs = null;
    this.pendingSince = null;
    this.pendingDeleteRanges = 0;
  }

  /**
   * Runs `encode` with pending updates hidden. Yjs's encoders append pending structs to their
   * output; those must never reach storage or other clients before their dependencies do.
   */
  private withoutPending<T>(encode: () => T): T {
    const { pendingStructs, pendingDs } = this.doc.store;
    this.doc.store.pendingStructs = null;
    this.doc.store.pendingDs = null;
    try {
      return encode();
    } finally {
      this.doc.store.pendingStructs = pendingStructs;
      this.doc.store.pendingDs = pendingDs;
    }
  }

  /** After a failed write: forgets the held updates and goes back to the stored document. */
  discardUnstored(): void {
    this.store.discardHeld();
    this.reload();
  }

  /**
   * Replaces the document with a fresh copy of what is stored plus what the store holds, not
   * yet written: those updates were relayed and their writers will be told they are saved, so
   * the room keeps serving them. Updates waiting for dependencies are forgotten (their
   * senders were never told they are saved, and send them again when they reconnect).
   */
  private reload(): void {
    this.lostWaiting = true;
    this.doc.destroy();
    this.doc = loadDocument(this.store, this.store.heldUpdates());
    this.types = documentTypes(this.doc, () => this.items);
    this.pendingSince = null;
    this.pendingDeleteRanges = 0;
    this.items = countItems(this.doc);
  }
}

/**
 * The editor's text in a stored version (a V2 update of the whole document). Loads it as a
 * second document: the caller checks that it fits beside the live one.
 */
export function versionText(state: Uint8Array): string {
  const doc = new Y.Doc({ gc: true });
  try {
    Y.applyUpdateV2(doc, state);
    return doc.getText(SHARED_TEXT).toString();
  } finally {
    doc.destroy();
  }
}

/** The stored document, then `held` (updates the store holds, not yet written) on top. */
function loadDocument(store: DocumentStore, held: readonly Uint8Array[]): Y.Doc {
  // Garbage collection stays on: deleted content is dropped, so the document does not grow forever.
  const doc = new Y.Doc({ gc: true });
  const { snapshot, updates } = store.load();
  doc.transact(() => {
    if (snapshot) Y.applyUpdateV2(doc, snapshot);
    for (const update of [...updates, ...held]) Y.applyUpdate(doc, update);
  });
  return doc;
}

/**
 * `doc`'s types for {@link checkUpdateStructure}: its clocks, the depth of the type each struct
 * is in, and the structs waiting for dependencies (as V1, which the check reads).
 */
function documentTypes(doc: Y.Doc, items: () => number): DocumentTypes {
  // A type never moves to another parent, so its depth is computed once.
  const depths = new WeakMap<Y.AbstractType<any>, number>();
  return {
    knownClock: (client) => Y.getState(doc.store, client),
    // As RoomDocument.refuseIfTooLarge counts: each new struct may split two existing ones.
    newStructsAllowed: () => Math.floor((MAX_DOCUMENT_ITEMS - items()) / 3),
    depthAt: (client, clock) => {
      const structs = doc.store.clients.get(client);
      const struct = structs?.[Y.findIndexSS(structs, clock)];
      // A GC range has no parent: Yjs collects what names it as origin, too.
      return struct instanceof Y.Item && struct.parent instanceof Y.AbstractType ? typeDepth(struct.parent, depths) : 0;
    },
    waiting: () => {
      const pending = doc.store.pendingStructs;
      return pending && { missing: pending.missing, update: () => Y.convertUpdateFormatV2ToV1(pending.update) };
    },
  };
}

function countItems(doc: Y.Doc): number {
  let items = 0;
  for (const structs of doc.store.clients.values()) items += structs.length;
  return items;
}

function pendingBytes(doc: Y.Doc): number {
  return (doc.store.pendingStructs?.update.length ?? 0) + (doc.store.pendingDs?.length ?? 0);
}
