/**
 * The room's Yjs document and its durable storage: the one place the room reads or changes
 * document state.
 *
 * Guarantees:
 * - An update is stored before `apply` returns, so the room relays only what is on disk
 *   (the Durable Object output gate then holds outgoing frames until the write is durable).
 * - Only what the document integrated is stored and relayed, never a client's raw bytes.
 * - Updates waiting for missing dependencies stay in memory only, bounded in bytes and time,
 *   and are excluded from everything encoded (sync answers and snapshots alike).
 */
import diff from "fast-diff";
import * as Y from "yjs";
import { COMPACT_LOG_BYTES, COMPACT_LOG_UPDATES, MAX_PENDING_UPDATE_BYTES, PENDING_UPDATE_TTL_MS } from "./limits";
import { CloseCode, ProtocolError } from "./protocol";
import type { DocumentStore, StorageStats } from "./storage";
import { checkUpdateStructure } from "./update-check";

/** What a compaction did, for logs and tests. */
export interface CompactionResult {
  bytesBefore: number;
  bytesAfter: number;
  ms: number;
}

export class RoomDocument {
  private doc: Y.Doc;
  /** When updates first started waiting for missing dependencies, or null when none wait. */
  private pendingSince: number | null = null;

  constructor(
    private readonly store: DocumentStore,
    private readonly maxDocumentBytes: number,
  ) {
    this.doc = loadDocument(store);
  }

  /** The document's state vector, for sync step 1. Pending updates are not part of it. */
  stateVector(): Uint8Array {
    return Y.encodeStateVector(this.doc);
  }

  /** What a peer with `stateVector` lacks, for sync step 2. */
  missingFrom(stateVector: Uint8Array): Uint8Array {
    try {
      return this.withoutPending(() => Y.encodeStateAsUpdate(this.doc, stateVector));
    } catch {
      throw new ProtocolError(CloseCode.invalidPayload, "invalid state vector");
    }
  }

  /** The text the editor shows: the `Y.Text` named "codemirror" (y-codemirror.next's convention). */
  text(): string {
    return this.doc.getText("codemirror").toString();
  }

  /** The document as one V1 update, or only what a peer with `stateVector` lacks. */
  encode(stateVector?: Uint8Array): Uint8Array {
    return stateVector === undefined ? this.withoutPending(() => Y.encodeStateAsUpdate(this.doc)) : this.missingFrom(stateVector);
  }

  /**
   * Applies a client's update and stores what the document integrated. Returns that update
   * (to relay), or null when nothing new was integrated. Throws {@link ProtocolError} when the
   * update is refused; then nothing was stored and the document is as before.
   */
  apply(update: Uint8Array, now: number): Uint8Array | null {
    checkUpdateStructure(update);
    this.refuseIfTooLarge(update.length);
    const integrated = this.commit(now, () => {
      try {
        Y.applyUpdate(this.doc, update);
      } catch {
        // Yjs may have integrated part of the update before failing; the stored document is
        // the truth, so go back to it rather than keep a half-applied state in memory.
        this.reload();
        throw new ProtocolError(CloseCode.invalidPayload, "invalid update: Yjs could not decode it");
      }
    });
    this.boundPending(now);
    return integrated;
  }

  /**
   * Replaces the text with `next` as a minimal edit (a character diff applied in one
   * transaction), so the unchanged parts keep their identity and collaborators' cursors in
   * them stay put. Returns the update to relay, or null when the text was already `next`.
   */
  replaceText(next: string, now: number): Uint8Array | null {
    this.refuseIfTooLarge(next.length * 3);
    const text = this.doc.getText("codemirror");
    return this.commit(now, () =>
      this.doc.transact(() => {
        let index = 0;
        for (const [operation, chunk] of diff(text.toString(), next)) {
          if (operation === diff.DELETE) text.delete(index, chunk.length);
          else if (operation === diff.INSERT) text.insert(index, chunk);
          if (operation !== diff.DELETE) index += chunk.length;
        }
      }),
    );
  }

  /** Runs `change` and stores the update the document emits for it; returns that update or null. */
  private commit(now: number, change: () => void): Uint8Array | null {
    let integrated: Uint8Array | null = null;
    const capture = (emitted: Uint8Array) => {
      integrated = emitted;
    };
    this.doc.on("update", capture);
    try {
      change();
    } finally {
      this.doc.off("update", capture);
    }
    if (integrated !== null) this.store.append(integrated, now);
    return integrated;
  }

  /** Whether `update` adds nothing (a peer with nothing new answers sync step 1 with such an update). */
  static isEmpty(update: Uint8Array): boolean {
    return update.length === 2 && update[0] === 0 && update[1] === 0;
  }

  /** Whether the log has grown enough that it should be folded into the snapshot. */
  needsCompaction(): boolean {
    const { logBytes, logUpdates } = this.store.statistics();
    return logBytes >= COMPACT_LOG_BYTES || logUpdates >= COMPACT_LOG_UPDATES;
  }

  /** Whether anything is in the log (compacting an empty log would only rewrite the snapshot). */
  hasLog(): boolean {
    return this.store.statistics().logUpdates > 0;
  }

  /** Writes the merged document as the snapshot and deletes the log it covers, atomically. */
  compact(): CompactionResult {
    const started = Date.now();
    const bytesBefore = this.store.statistics().storedBytes;
    // V2 is about 45% smaller than V1 on real editing traces (see README, "Storage").
    this.store.replaceWithSnapshot(this.withoutPending(() => Y.encodeStateAsUpdateV2(this.doc)));
    return { bytesBefore, bytesAfter: this.store.statistics().storedBytes, ms: Date.now() - started };
  }

  statistics(): Readonly<StorageStats> {
    return this.store.statistics();
  }

  /** When the document last changed (ms since the epoch), or null if it never did. */
  lastUpdateAt(): number | null {
    return this.store.lastUpdateAt;
  }

  /** When the document last changed or was last left by a socket; null if neither happened. */
  lastActivity(): number | null {
    return this.store.lastActivity();
  }

  /** Records that the last socket just left. */
  markActive(now: number): void {
    this.store.markActive(now);
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

  private refuseIfTooLarge(incomingBytes: number): void {
    if (this.store.statistics().storedBytes + incomingBytes <= this.maxDocumentBytes) return;
    // The log may hold much that a snapshot folds away (deletions, overwritten text).
    if (this.hasLog()) this.compact();
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

  private dropPending(): void {
    // Yjs keeps structs with missing dependencies in `store.pendingStructs` and deletions it
    // cannot apply yet in `store.pendingDs`; clearing them forgets those updates entirely.
    this.doc.store.pendingStructs = null;
    this.doc.store.pendingDs = null;
    this.pendingSince = null;
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

  private reload(): void {
    this.doc.destroy();
    this.doc = loadDocument(this.store);
    this.pendingSince = null;
  }
}

function loadDocument(store: DocumentStore): Y.Doc {
  // Garbage collection stays on: deleted content is dropped, so the document does not grow forever.
  const doc = new Y.Doc({ gc: true });
  const { snapshot, updates } = store.load();
  doc.transact(() => {
    if (snapshot) Y.applyUpdateV2(doc, snapshot);
    for (const update of updates) Y.applyUpdate(doc, update);
  });
  return doc;
}

function pendingBytes(doc: Y.Doc): number {
  return (doc.store.pendingStructs?.update.length ?? 0) + (doc.store.pendingDs?.length ?? 0);
}
