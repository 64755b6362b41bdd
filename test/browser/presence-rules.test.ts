/**
 * client/presence.ts in Node (no Chromium): what a remote awareness state may carry, and
 * that the guard replaces states before later listeners see them.
 */
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate } from "y-protocols/awareness";
import * as Y from "yjs";
import { awarenessUser } from "../../client/identity";
import {
  FALLBACK_NAME,
  MAX_NAME_LENGTH,
  SHARED_TEXT_NAME,
  cleanName,
  colorForClient,
  isHexColor,
  isUserId,
  peopleIn,
  sanitizePresenceState,
  sanitizeRemoteStates,
  translucent,
} from "../../client/presence";
import { personLabel } from "../../client/view";

const HOSTILE_COLOR = "red;position:fixed;inset:0;z-index:9999;background:url(http://127.0.0.1:9/track)";
const UNPRINTABLE = /[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/** A state as an edgedoc tab sends it: its user, and a cursor made by Yjs itself. */
function honestState(): Record<string, unknown> {
  const text = new Y.Doc().getText(SHARED_TEXT_NAME);
  text.insert(0, "hello world");
  const position = (index: number) => JSON.parse(JSON.stringify(Y.createRelativePositionFromTypeIndex(text, index))) as unknown;
  return {
    user: awarenessUser({ id: "0123456789abcdef01234567", name: "Ada", color: "#30638e" }),
    cursor: { anchor: position(2), head: position(11) },
  };
}

describe("colours", () => {
  it("accepts CSS hex colours with 3, 4, 6 or 8 digits, nothing else", () => {
    for (const color of ["#abc", "#ABCD", "#a1b2c3", "#a1b2c3d4"]) expect(isHexColor(color)).toBe(true);
    const refused = [HOSTILE_COLOR, "red", "#ab", "#abcde", "#abcdefg", "#ggg", " #abc", "#abc\n", "#abc;", "url(x)", "rgb(0,0,0)", 0xabc, null];
    for (const value of refused) expect(isHexColor(value)).toBe(false);
  });

  it("replaces an invalid colour by one derived from the client id, and tints selections from it", () => {
    const { user } = sanitizePresenceState({ user: { name: "Eve", color: HOSTILE_COLOR, colorLight: HOSTILE_COLOR } }, 12345);
    expect(user).toEqual({ name: "Eve", color: colorForClient(12345), colorLight: translucent(colorForClient(12345)) });
    expect(colorForClient(12345)).toBe(colorForClient(12345));
  });

  it("keeps a valid colour, and derives the tint when only the tint is invalid", () => {
    expect(sanitizePresenceState({ user: { name: "Bo", color: "#abc", colorLight: "url(x)" } }, 1).user).toMatchObject({ color: "#abc", colorLight: "#aabbcc33" });
    expect([translucent("#abcd"), translucent("#a1b2c3"), translucent("#a1b2c3d4")]).toEqual(["#aabbcc33", "#a1b2c333", "#a1b2c333"]);
  });
});

describe("names", () => {
  it("are plain text: markup stays literal text, unprintable characters go", () => {
    expect(cleanName("<img src=x onerror=alert(1)>")).toBe("<img src=x onerror=alert(1)>");
    expect(cleanName("Ada\u0000\u0007\nLove\u202eace\u2066 \t ")).toBe("Ada Love ace");
  });

  it(`are at most ${MAX_NAME_LENGTH} characters, never cutting a character in half`, () => {
    const name = cleanName("😀".repeat(200));
    expect(Array.from(name)).toHaveLength(MAX_NAME_LENGTH);
    expect(name).toBe("😀".repeat(MAX_NAME_LENGTH));
  });

  it(`are "${FALLBACK_NAME}" when missing, not text, or nothing printable`, () => {
    for (const name of [undefined, 42, { html: "<b>" }, "\u0000\u202e  "]) {
      expect(sanitizePresenceState({ user: { name, color: "#abc" } }, 1).user?.name).toBe(FALLBACK_NAME);
    }
  });
});

describe("states", () => {
  it("keep an honest edgedoc state exactly as it is, so honest peers are never redrawn for it", () => {
    const state = honestState();
    expect(sanitizePresenceState(state, 7)).toEqual(state);
  });

  it("keep only short token ids", () => {
    expect(isUserId("0123456789abcdef01234567")).toBe(true);
    for (const id of ["", "x".repeat(65), "a b", "<id>", 17, null]) {
      expect(isUserId(id)).toBe(false);
      expect(sanitizePresenceState({ user: { id, name: "Bo", color: "#abc" } }, 1).user).not.toHaveProperty("id");
    }
  });

  it("drop cursors that are not positions into the shared text (Yjs would throw on them or make types)", () => {
    const { cursor } = honestState() as { cursor: { anchor: Record<string, unknown>; head: unknown } };
    const broken = [
      {},
      { anchor: {}, head: {} },
      { anchor: { ...cursor.anchor, tname: "other" }, head: cursor.head },
      { anchor: { ...cursor.anchor, type: { client: 1, clock: 2 } }, head: cursor.head },
      { anchor: { ...cursor.anchor, item: { client: -1, clock: 0 } }, head: cursor.head },
      { anchor: { ...cursor.anchor, item: { client: "1", clock: 0 } }, head: cursor.head },
      { anchor: { ...cursor.anchor, assoc: 0.5 }, head: cursor.head },
      "cursor",
    ];
    for (const value of broken) expect(sanitizePresenceState({ cursor: value }, 1)).toEqual({ cursor: null });
    expect(sanitizePresenceState({}, 1)).toEqual({});
  });

  it("keep only the fields the app knows, and make anything that is not an object empty", () => {
    expect(sanitizePresenceState({ user: { name: "Bo", color: "#abc", colorLight: "#abc3", style: "x" }, script: "<script>" }, 1)).toEqual({
      user: { name: "Bo", color: "#abc", colorLight: "#abc3" },
    });
    for (const state of [null, 5, "user", [1, 2], true]) expect(sanitizePresenceState(state, 1)).toEqual({});
  });

  it("come out valid and unchanged by a second pass, whatever came in", () => {
    const anything = fc.oneof(fc.jsonValue(), fc.string(), fc.constantFrom(HOSTILE_COLOR, "#abc", "#a1b2c3d4", null));
    const state = fc.oneof(
      fc.jsonValue(),
      fc.record(
        {
          user: fc.oneof(anything, fc.record({ id: anything, name: fc.oneof(anything, fc.string({ unit: "binary" })), color: anything, colorLight: anything }, { requiredKeys: [] })),
          cursor: anything,
        },
        { requiredKeys: [] },
      ),
    );
    fc.assert(
      fc.property(state, fc.nat({ max: 0xffffffff }), (raw, clientId) => {
        const checked = sanitizePresenceState(raw, clientId);
        expect(sanitizePresenceState(checked, clientId)).toEqual(checked);
        if (checked.user) {
          expect(isHexColor(checked.user.color) && isHexColor(checked.user.colorLight)).toBe(true);
          expect(Array.from(checked.user.name).length).toBeLessThanOrEqual(MAX_NAME_LENGTH);
          expect(checked.user.name).not.toMatch(UNPRINTABLE);
        }
      }),
      { numRuns: 1_000 },
    );
  });
});

describe("the guard on an Awareness", () => {
  const awarenesses: Awareness[] = [];
  const newAwareness = () => {
    const awareness = new Awareness(new Y.Doc());
    awarenesses.push(awareness);
    return awareness;
  };
  afterEach(() => awarenesses.splice(0).forEach((awareness) => awareness.destroy()));

  /** Sends `remote`'s current state to `local`, as a provider would. */
  const deliver = (remote: Awareness, local: Awareness) => applyAwarenessUpdate(local, encodeAwarenessUpdate(remote, [remote.clientID]), "remote");

  it("replaces a remote state before any later listener, or getStates(), sees it", () => {
    const [local, remote] = [newAwareness(), newAwareness()];
    sanitizeRemoteStates(local);
    const seen: unknown[] = [];
    // Like y-codemirror.next: reads getStates() when told of a change, and like the provider: on update.
    local.on("change", () => seen.push(local.getStates().get(remote.clientID)));
    local.on("update", () => seen.push(local.getStates().get(remote.clientID)));
    remote.setLocalState({ user: { name: "<b>Eve</b>\u0007", color: HOSTILE_COLOR }, extra: "x" });
    deliver(remote, local);

    const expected = { user: { name: "<b>Eve</b>", color: colorForClient(remote.clientID), colorLight: translucent(colorForClient(remote.clientID)) } };
    expect(seen).toEqual([expected, expected]);
    expect(local.getStates().get(remote.clientID)).toEqual(expected);
  });

  it("leaves the local state alone, and an honest peer's renewal changes nothing", () => {
    const [local, remote] = [newAwareness(), newAwareness()];
    sanitizeRemoteStates(local);
    const ours = { user: { name: "not checked here", color: "#abc" }, mine: true };
    local.setLocalState(ours);
    const honest = honestState();
    remote.setLocalState(honest);
    deliver(remote, local);
    let changes = 0;
    local.on("change", () => (changes += 1));
    remote.setLocalState(remote.getLocalState()); // the 15-second renewal: a new clock, the same state
    deliver(remote, local);
    expect(changes).toBe(0);
    expect(local.getLocalState()).toBe(ours);
    expect(local.getStates().get(remote.clientID)).toEqual(honest);
  });
});

describe("who is here", () => {
  const user = (id: string | undefined, name: string, color = "#abc") => ({ user: { id, name, color } });

  it("is one entry per person: tabs sharing an id, name and colour count as one, yourself first", () => {
    const states = new Map<number, unknown>([
      [30, user("ada", "Ada")],
      [10, user("bo", "Bo")],
      [20, user("ada", "Ada")],
      [40, user(undefined, "Cy")],
      [50, user(undefined, "Cy")],
      [60, user("bo", "Bo")],
      [5, {}],
    ]);
    const people = peopleIn(states, 20);
    expect(people).toEqual([
      { name: "Ada", color: "#abc", self: true, tabs: 2 },
      { name: "Bo", color: "#abc", self: false, tabs: 2 },
      { name: "Cy", color: "#abc", self: false, tabs: 1 },
      { name: "Cy", color: "#abc", self: false, tabs: 1 },
    ]);
    expect(people.map(personLabel)).toEqual(["Ada (you) · 2 tabs", "Bo · 2 tabs", "Cy", "Cy"]);
  });

  it("does not let someone hide inside your entry by claiming your id under another name or colour", () => {
    const states = new Map<number, unknown>([
      [1, user("ada", "Ada")],
      [2, user("ada", "Mallory")],
      [3, user("ada", "Ada", "#f00")],
    ]);
    expect(peopleIn(states, 1).map(personLabel)).toEqual(["Ada (you)", "Mallory", "Ada"]);
  });

  it("checks states itself: a raw hostile state is listed with a checked name and colour", () => {
    const states = new Map<number, unknown>([[9, { user: { name: "<img src=x onerror=alert(1)>", color: HOSTILE_COLOR } }]]);
    expect(peopleIn(states, 1)).toEqual([{ name: "<img src=x onerror=alert(1)>", color: colorForClient(9), self: false, tabs: 1 }]);
  });
});
