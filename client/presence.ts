/**
 * Presence is data: what another client may put in its awareness state, checked before
 * anything on this page renders it.
 *
 * y-codemirror.next writes a peer's `user.color` and `user.colorLight` into the `style`
 * attributes of its caret and selection, and the presence list puts the colour in a CSS
 * variable. Unchecked, a colour like `red;position:fixed;inset:0;background:url(...)` covers
 * every viewer's page or makes every viewer fetch a URL. So a remote state is rebuilt from
 * the fields the app knows, each checked: colours are CSS hex colours, names are bounded
 * plain text, ids are short tokens, cursors are relative positions into the shared text.
 * Anything else is replaced (a colour derived from the client id, a placeholder name) or
 * dropped; a valid state comes out equal to itself, so honest peers are not redrawn for it.
 */
import type { Awareness } from "y-protocols/awareness";

/** The Y.Text the editor is bound to (y-codemirror.next's convention); cursors point into it. */
export const SHARED_TEXT_NAME = "codemirror";
/** Longest name shown, in characters (code points): a pill or a caret label, not a paragraph. */
export const MAX_NAME_LENGTH = 64;
/** Longest `user.id`: ids are random tokens made by client/identity.ts, 24 characters long. */
export const MAX_USER_ID_LENGTH = 64;
/** The name of someone who gave none (or one with nothing printable in it). */
export const FALLBACK_NAME = "Anonymous";
/** Colours handed out to people; a peer with an invalid colour gets one by its client id. */
export const PALETTE = ["#d1495b", "#edae49", "#00798c", "#30638e", "#6a4c93", "#2a9d8f", "#e76f51", "#8ab17d"] as const;

/** The `user` field of a checked state (the field y-codemirror.next reads for carets). */
export interface PresenceUser {
  /** Stable per browser, shared by its tabs (client/identity.ts); absent for other apps. */
  id?: string;
  name: string;
  color: string;
  /** The selection tint. */
  colorLight: string;
}

/** A Yjs relative position (as JSON) into the top-level shared text. */
export interface TextPosition {
  type: null;
  tname: typeof SHARED_TEXT_NAME;
  item: { client: number; clock: number } | null;
  assoc: number;
}

/** A checked awareness state: only the fields the app renders, each valid. */
export interface PresenceState {
  user?: PresenceUser;
  cursor?: { anchor: TextPosition; head: TextPosition } | null;
}

/** `#rgb`, `#rgba`, `#rrggbb` or `#rrggbbaa`: nothing but a colour can be read from it. */
export function isHexColor(value: unknown): value is string {
  return typeof value === "string" && /^#(?:[0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})$/i.test(value);
}

/** A colour for a client that gave no valid one: stable, so its caret keeps its colour. */
export function colorForClient(clientId: number): string {
  return PALETTE[Math.abs(clientId) % PALETTE.length]!;
}

/** The selection tint for `color`: its red, green and blue at 20% opacity. */
export function translucent(color: string): string {
  const digits = color.slice(1);
  const rgb = digits.length <= 4 ? [...digits.slice(0, 3)].map((digit) => digit + digit).join("") : digits.slice(0, 6);
  return `#${rgb}33`;
}

/** A user id as client/identity.ts makes them: a short token, safe as a key anywhere. */
export function isUserId(value: unknown): value is string {
  return typeof value === "string" && value.length <= MAX_USER_ID_LENGTH && /^[A-Za-z0-9_-]+$/.test(value);
}

// Control characters, line and paragraph separators, and the bidirectional embeddings,
// overrides and isolates, which would reorder the text around the name.
const UNPRINTABLE = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]+/gu;

/**
 * A name as plain text: unprintable characters become spaces, runs of whitespace one space,
 * at most {@link MAX_NAME_LENGTH} characters. Empty when nothing printable is left.
 */
export function cleanName(value: string): string {
  const printable = value.replace(UNPRINTABLE, " ").replace(/\s+/g, " ").trim();
  // By code point, so a character outside the BMP is never cut in half.
  return Array.from(printable).slice(0, MAX_NAME_LENGTH).join("").trim();
}

/** The checked copy of a remote awareness state; `clientId` picks the colour when its own is invalid. */
export function sanitizePresenceState(state: unknown, clientId: number): PresenceState {
  if (!isRecord(state)) return {};
  const checked: PresenceState = {};
  if (isRecord(state.user)) checked.user = sanitizeUser(state.user, clientId);
  // A cursor key is kept (as null when invalid) so a state with `cursor: null` stays equal to itself.
  if ("cursor" in state) checked.cursor = sanitizeCursor(state.cursor);
  return checked;
}

function sanitizeUser(user: Record<string, unknown>, clientId: number): PresenceUser {
  const color = isHexColor(user.color) ? user.color : colorForClient(clientId);
  const checked: PresenceUser = {
    name: (typeof user.name === "string" && cleanName(user.name)) || FALLBACK_NAME,
    color,
    colorLight: isHexColor(user.colorLight) ? user.colorLight : translucent(color),
  };
  if (isUserId(user.id)) checked.id = user.id;
  return checked;
}

/**
 * y-codemirror.next resolves a peer's cursor with Y.createAbsolutePositionFromRelativePosition,
 * which throws on a missing `item` (and the editor then drops the plugin that draws every
 * caret), and creates a top-level type for any `tname`. So only positions into the shared
 * text pass, in the shape Yjs itself serialises.
 */
function sanitizeCursor(cursor: unknown): PresenceState["cursor"] {
  if (!isRecord(cursor)) return null;
  const anchor = sanitizePosition(cursor.anchor);
  const head = sanitizePosition(cursor.head);
  return anchor && head ? { anchor, head } : null;
}

function sanitizePosition(position: unknown): TextPosition | null {
  if (!isRecord(position) || position.tname !== SHARED_TEXT_NAME || (position.type ?? null) !== null) return null;
  const item = position.item ?? null;
  const assoc = position.assoc ?? 0;
  if (!isInteger(assoc)) return null;
  if (item === null) return { type: null, tname: SHARED_TEXT_NAME, item: null, assoc };
  if (!isRecord(item) || !isCount(item.client) || !isCount(item.clock)) return null;
  return { type: null, tname: SHARED_TEXT_NAME, item: { client: item.client, clock: item.clock }, assoc };
}

const isInteger = (value: unknown): value is number => Number.isSafeInteger(value);
const isCount = (value: unknown): value is number => isInteger(value) && value >= 0;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Replaces every remote state in `awareness` by its checked copy as soon as it arrives.
 *
 * Call it before anything else listens to `awareness` (before the provider gets it, before
 * yCollab): lib0 observables call listeners in the order they were registered, and
 * y-protocols emits `change` (when a state differs) and then `update` (always) right after
 * storing a state, so every later listener, and y-codemirror.next reading `getStates()` when
 * it redraws, sees only checked states. Checking on `change` runs before every `change`
 * listener (the editor, the presence list); checking on `update` too covers a state that
 * equals the last one (no `change`), before the provider re-broadcasts it. The local state
 * is ours (client/identity.ts checks it) and is left alone: it is what the provider sends and
 * what client/saved.ts compares echoes with.
 */
export function sanitizeRemoteStates(awareness: Awareness): void {
  const sanitize = ({ added, updated }: { added: number[]; updated: number[] }) => {
    for (const clientId of [...added, ...updated]) {
      const state = awareness.states.get(clientId);
      if (clientId !== awareness.clientID && state !== undefined) awareness.states.set(clientId, sanitizePresenceState(state, clientId));
    }
  };
  awareness.on("change", sanitize);
  awareness.on("update", sanitize);
}

/** One person in the presence list: all tabs of one browser (one `user.id`), or one client. */
export interface Person {
  name: string;
  color: string;
  /** This browser's own entry. */
  self: boolean;
  /** How many clients (tabs) this person has here. */
  tabs: number;
}

/**
 * Who is here, one entry per person: yourself first, then by client id (a stable order).
 * States are checked again here (cheap, and idempotent), so the list never depends on the
 * guard having run. A person is one `user.id` with one name and colour: the id is public, so
 * anyone could claim yours, but they can only join your entry by also showing your name and
 * colour, which they could copy anyway; they cannot hide inside it under a name of their own.
 */
export function peopleIn(states: ReadonlyMap<number, unknown>, selfId: number): Person[] {
  const people = new Map<string, Person>();
  const byArrival = [...states.keys()].sort((a, b) => (a === selfId ? -1 : b === selfId ? 1 : a - b));
  for (const clientId of byArrival) {
    const { user } = sanitizePresenceState(states.get(clientId), clientId);
    if (!user) continue; // a client without a user (a script, another app) is not a person
    const key = user.id === undefined ? `client ${clientId}` : JSON.stringify([user.id, user.name, user.color]);
    const person = people.get(key);
    if (person) person.tabs += 1;
    else people.set(key, { name: user.name, color: user.color, self: clientId === selfId, tabs: 1 });
  }
  return [...people.values()];
}
