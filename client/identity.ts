/**
 * Who you are to the others in a document: a name and a colour, remembered in this browser.
 */
const STORAGE_KEY = "edgedoc:identity";

const COLOURS = ["#d1495b", "#edae49", "#00798c", "#30638e", "#6a4c93", "#2a9d8f", "#e76f51", "#8ab17d"];
const ANIMALS = ["Otter", "Heron", "Lynx", "Marten", "Puffin", "Ibex", "Gecko", "Wren", "Bison", "Koala"];

export interface Identity {
  name: string;
  color: string;
}

export function loadIdentity(storage: Storage): Identity {
  try {
    const saved = JSON.parse(storage.getItem(STORAGE_KEY) ?? "null") as Partial<Identity> | null;
    if (saved && typeof saved.name === "string" && typeof saved.color === "string") return { name: saved.name, color: saved.color };
  } catch {
    // A corrupt entry is replaced below.
  }
  const identity = { name: `Anonymous ${pick(ANIMALS)}`, color: pick(COLOURS) };
  saveIdentity(storage, identity);
  return identity;
}

export function saveIdentity(storage: Storage, identity: Identity): void {
  storage.setItem(STORAGE_KEY, JSON.stringify(identity));
}

/** The awareness `user` field y-codemirror.next reads for remote cursors (colorLight: the selection tint). */
export function awarenessUser({ name, color }: Identity): { name: string; color: string; colorLight: string } {
  return { name, color, colorLight: `${color}33` };
}

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}
