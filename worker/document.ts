/**
 * The room's Yjs document: the one place the room reads or changes document state.
 * Storage plugs in here (see the durable storage work), so the room never touches Y.Doc directly.
 */
import * as Y from "yjs";
import { CloseCode, ProtocolError } from "./protocol";

export class RoomDocument {
  // Garbage collection stays on: deleted content is dropped, so the document does not grow forever.
  private readonly doc = new Y.Doc({ gc: true });

  /** The document's state vector, for sync step 1. */
  stateVector(): Uint8Array {
    return Y.encodeStateVector(this.doc);
  }

  /** What a peer with `stateVector` lacks, for sync step 2. */
  missingFrom(stateVector: Uint8Array): Uint8Array {
    try {
      return Y.encodeStateAsUpdate(this.doc, stateVector);
    } catch {
      throw new ProtocolError(CloseCode.invalidPayload, "invalid state vector");
    }
  }

  /**
   * Applies a client's update. Returns the update the document actually integrated (what
   * its transaction emitted), which is what must be relayed: it never contains bytes the
   * document did not accept. Returns null when the update added nothing.
   */
  apply(update: Uint8Array): Uint8Array | null {
    let integrated: Uint8Array | null = null;
    const capture = (emitted: Uint8Array) => {
      integrated = emitted;
    };
    this.doc.on("update", capture);
    try {
      Y.applyUpdate(this.doc, update);
    } catch {
      throw new ProtocolError(CloseCode.invalidPayload, "invalid update: Yjs could not decode it");
    } finally {
      this.doc.off("update", capture);
    }
    return integrated;
  }
}
