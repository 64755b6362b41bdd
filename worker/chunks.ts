/**
 * Splitting byte arrays into pieces that fit one SQLite row, and joining them back.
 * Pure; the storage module decides the size (see SQLITE_CHUNK_BYTES).
 */

export function splitIntoChunks(bytes: Uint8Array, chunkBytes: number): Uint8Array[] {
  // One empty part, freshly made: an empty array from TextEncoder has no backing store, which a
  // SQLite binding may read as NULL (node:sqlite does, found by the simulation) and a BLOB NOT NULL
  // column refuses.
  if (bytes.length === 0) return [new Uint8Array(0)];
  const chunks: Uint8Array[] = [];
  for (let offset = 0; offset < bytes.length; offset += chunkBytes) {
    chunks.push(bytes.subarray(offset, offset + chunkBytes));
  }
  return chunks;
}

export function joinChunks(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const joined = new Uint8Array(chunks.reduce((sum, chunk) => sum + chunk.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}
