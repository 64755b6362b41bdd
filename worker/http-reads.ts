/**
 * The room's HTTP reads that encode or build a document: `GET /api/docs/:name` (its encoded
 * size), `/text`, `/update`, and a version's `/text` and `/update`. Each is answered from the
 * read cache or charged, before the work, to its caller and to the room's answer budget
 * (worker/read-budget.ts, docs/limits.md "HTTP reads"); the room delegates to this.
 */
import { versionText, type RoomDocument } from "./document";
import type { Outcome } from "./documents";
import type { History } from "./history";
import { MAX_DOCUMENT_ITEMS } from "./limits";
import { flatten, noSuchVersion, outcomeOf } from "./outcome";
import { CloseCode, ProtocolError } from "./protocol";
import type { TokenBucket } from "./rate";
import {
  LIVE_TEXT,
  LIVE_UPDATE,
  liveReadCost,
  RoomReads,
  storedTextCost,
  versionConvertCost,
  versionLoadCost,
  type ReadWork,
} from "./read-budget";
import type { DocumentStore } from "./storage";
import * as Y from "yjs";

/** What the reads are made from. Functions: the room loads its document lazily and replaces its storage on DELETE. */
export interface ReadSource {
  /** The live document, loaded if it was not. */
  document(): RoomDocument;
  /** Items of the live document if it is loaded, else 0 (a version's preview loads beside it). */
  loadedItems(): number;
  store(): DocumentStore;
  history(): History;
  /** Writes what the store holds, so that what a read answers (and the cache keeps) is stored. */
  writeHeldUpdates(): void;
  now(): number;
}

export class HttpReads {
  private readonly reads: RoomReads;

  /** `roomAnswers` is the room's answer budget, shared with the sockets' sync answers. */
  constructor(
    roomAnswers: TokenBucket,
    private readonly source: ReadSource,
  ) {
    this.reads = new RoomReads(roomAnswers);
  }

  /** The live document changed: its kept answers are stale. */
  documentChanged(): void {
    this.reads.documentChanged();
  }

  /** The document's size as one V1 update, for `GET /api/docs/:name`: one encode per change, shared with {@link update}. */
  encodedSize(caller: string): Outcome<number> {
    return this.live().encodedSize(caller, this.source.now(), () => this.liveWork((document) => document.encode()));
  }

  /** `GET /api/docs/:name/text`: kept until the next change. */
  text(caller: string): Outcome<string> {
    return this.live().read(caller, LIVE_TEXT, this.source.now(), () => this.liveWork((document) => document.text()));
  }

  /** `GET /api/docs/:name/update`: the document (kept until the next change), or what a peer with `stateVector` lacks (made for each call). */
  update(caller: string, stateVector?: Uint8Array): Outcome<Uint8Array> {
    const key = stateVector === undefined ? LIVE_UPDATE : null;
    return flatten(outcomeOf(() => this.live().read(caller, key, this.source.now(), () => this.liveWork((document) => document.encode(stateVector)))));
  }

  /**
   * `GET /api/docs/:name/versions/:id/text`: the text stored with the version, charged only its
   * bytes. A version taken before texts were stored is loaded as a second document instead,
   * refused (4413) when it and the live one, if loaded, would hold over {@link MAX_DOCUMENT_ITEMS} items.
   */
  versionText(caller: string, id: number): Outcome<string> {
    const history = this.source.history();
    // Versions never change, so their answers are kept; the row says whether it still exists,
    // and how large it is: a read is charged before any of it is read.
    const size = history.size(id);
    if (!size) return noSuchVersion(id);
    const reads = this.reads.within(history);
    const textBytes = size.textBytes;
    if (textBytes !== null) {
      // Not kept: reading it again is as cheap as keeping it, and the cache is for answers that cost work.
      return reads.read(caller, null, this.source.now(), () => ({ cost: storedTextCost(textBytes), build: () => history.text(id)! }));
    }
    const load = () =>
      reads.read(caller, `version:${id}:text`, this.source.now(), () => {
        if (this.source.loadedItems() + size.items > MAX_DOCUMENT_ITEMS) {
          throw new ProtocolError(CloseCode.documentTooLarge, `too large to preview in memory: over ${MAX_DOCUMENT_ITEMS} items in both copies`);
        }
        return { cost: versionLoadCost(size), build: () => versionText(history.load(id)!.state) };
      });
    return flatten(outcomeOf(load));
  }

  /** `GET /api/docs/:name/versions/:id/update`: the version as one V1 update, converted without loading it, and kept. */
  versionUpdate(caller: string, id: number): Outcome<Uint8Array> {
    const history = this.source.history();
    const size = history.size(id);
    if (!size) return noSuchVersion(id);
    return this.reads.within(history).read(caller, `version:${id}:update`, this.source.now(), () => ({
      cost: versionConvertCost(size),
      build: () => Y.convertUpdateFormatV2ToV1(history.load(id)!.state),
    }));
  }

  /**
   * The reads, ready to answer from the live document: what the cache holds is always stored
   * (so a failed write, which goes back to what is stored, cannot leave it ahead), and it is
   * forgotten when the document was deleted.
   */
  private live(): RoomReads {
    this.source.writeHeldUpdates();
    return this.reads.within(this.source.history());
  }

  /** A read of the live document: it walks every item of it, and sends what it is made of. */
  private liveWork<T extends string | Uint8Array>(build: (document: RoomDocument) => T): ReadWork<T> {
    const document = this.source.document();
    return { cost: liveReadCost(this.source.store().statistics().storedBytes, document.itemCount()), build: () => build(document) };
  }
}
