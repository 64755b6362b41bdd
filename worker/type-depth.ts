/**
 * How deep shared types nest in a loaded Yjs document, found without recursion: Yjs deletes,
 * garbage-collects and undoes nested types recursing per level, so the room measures nesting
 * before it lets Yjs do any of that (`MAX_YJS_TYPE_DEPTH`, worker/limits.ts).
 */
import * as Y from "yjs";

/**
 * How deep `type` is: 0 for a root type, one more than the type holding it otherwise. Walks up
 * without recursion (a document stored before `MAX_YJS_TYPE_DEPTH` may nest deeper) and
 * remembers every type on the way in `depths`, so each type is walked once.
 */
// `any`: Yjs types its nested types' event parameter invariantly, so no narrower type admits them all.
export function typeDepth(type: Y.AbstractType<any>, depths: WeakMap<Y.AbstractType<any>, number>): number {
  const path: Y.AbstractType<any>[] = [];
  let depth = -1;
  // Each turn goes one type up, so the loop ends at a root type (its `_item` is null).
  for (let current: Y.AbstractType<any> | null = type; current !== null; ) {
    const known = depths.get(current);
    if (known !== undefined) {
      depth = known;
      break;
    }
    path.push(current);
    const holder: unknown = current._item?.parent;
    current = holder instanceof Y.AbstractType ? holder : null;
  }
  for (let i = path.length - 1; i >= 0; i--) depths.set(path[i]!, ++depth);
  return depth;
}

/** The depth of the deepest type `doc` holds (0 when it holds only root types), each type walked once. */
export function deepestTypeDepth(doc: Y.Doc): number {
  const depths = new WeakMap<Y.AbstractType<any>, number>();
  let deepest = 0;
  for (const structs of doc.store.clients.values()) {
    for (const struct of structs) {
      if (struct instanceof Y.Item && struct.content instanceof Y.ContentType) deepest = Math.max(deepest, typeDepth(struct.content.type, depths));
    }
  }
  return deepest;
}
