/**
 * Who you are to the others in a document: an id, a name and a colour, remembered in this
 * browser. Every tab of the browser reads the same entry, so its tabs are one person.
 */
import { cleanName, isHexColor, isUserId, PALETTE, translucent, type PresenceUser } from "./presence";

const STORAGE_KEY = "edgedoc:identity";

const ANIMALS = ["Otter", "Heron", "Lynx", "Marten", "Puffin", "Ibex", "Gecko", "Wren", "Bison", "Koala"];

export interface Identity {
  /** Random, made once per browser; tells the others which tabs are one person. */
  id: string;
  name: string;
  color: string;
}

/**
 * This browser's identity. What is missing or invalid in the stored entry (an entry from
 * before ids existed, a hand-edited one) is made anew and stored; the rest is kept.
 */
export function loadIdentity(storage: Storage): Identity {
  const saved = readSaved(storage);
  const identity: Identity = {
    id: isUserId(saved.id) ? saved.id : newUserId(),
    name: (typeof saved.name === "string" && cleanName(saved.name)) || `Anonymous ${pick(ANIMALS)}`,
    color: isHexColor(saved.color) ? saved.color : pick(PALETTE),
  };
  saveIdentity(storage, identity);
  return identity;
}

export function saveIdentity(storage: Storage, identity: Identity): void {
  storage.setItem(STORAGE_KEY, JSON.stringify(identity));
}

/** Calls `onChange` when another tab of this browser changes the identity (renames, recolours). */
export function watchIdentity(target: Window, storage: Storage, onChange: (identity: Identity) => void): void {
  target.addEventListener("storage", (event) => {
    // A cleared entry is not followed: each tab would make a different new id at once.
    if (event.storageArea === storage && event.key === STORAGE_KEY && event.newValue !== null) onChange(loadIdentity(storage));
  });
}

/** The awareness `user` field: what y-codemirror.next shows on your caret and the others list. */
export function awarenessUser({ id, name, color }: Identity): PresenceUser {
  return { id, name, color, colorLight: translucent(color) };
}

function readSaved(storage: Storage): Record<string, unknown> {
  try {
    const saved: unknown = JSON.parse(storage.getItem(STORAGE_KEY) ?? "null");
    return typeof saved === "object" && saved !== null ? (saved as Record<string, unknown>) : {};
  } catch {
    return {}; // a corrupt entry is replaced
  }
}

/** 96 random bits as 24 hex digits (getRandomValues works outside secure contexts too, unlike randomUUID). */
function newUserId(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(12)), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}
