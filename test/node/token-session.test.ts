/**
 * Sessions that outlive their tokens: a stock y-websocket provider kept connected by
 * client/token-session.ts against a real `wrangler dev` that requires tokens, with tokens
 * that expire every few seconds.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { keepTokenFresh, TOKEN_ATTEMPTS, type SessionEnd } from "../../client/token-session";
import { CloseCode } from "../../worker/protocol";
import { signToken } from "../../worker/tokens";
import { disconnectProvider, textOf, waitFor } from "./providers";
import { removePersistDir, startDevServer, type DevServer } from "./wrangler";

type ProviderOptions = NonNullable<ConstructorParameters<typeof WebsocketProvider>[3]>;

const AUTH_SECRET = "token-session-test-secret";
/** The refreshed editor's tokens live this long. */
const SHORT_TTL_S = 4;
/** The longest an editor may be without a synced socket when a token is swapped or renewed after a close. */
const LONGEST_GAP_MS = 2_000;

let server: DevServer;
const providers: WebsocketProvider[] = [];

beforeAll(async () => {
  server = await startDevServer({ vars: { AUTH_SECRET } });
});

afterAll(async () => {
  for (const provider of providers) disconnectProvider(provider);
  await server?.stop();
  if (server) removePersistDir(server.persistDir);
});

const expiryOf = (token: string) => (JSON.parse(atob(token.split(".")[1]!)) as { exp: number }).exp * 1_000;

/** A backend that hands out `first` until it has expired (as a cache might), then fresh tokens. */
function cachingBackend(room: string, first: string): { getToken: () => Promise<string>; calls: () => number } {
  let calls = 0;
  return {
    getToken: async () => (calls++, Date.now() < expiryOf(first) ? first : mint(room, "ada", 600)),
    calls: () => calls,
  };
}

/** A token for `room` of one person (`sub`, so their presence is theirs across tokens). */
function mint(room: string, sub: string, ttlSeconds: number): Promise<string> {
  return signToken({ doc: room, mode: "write", exp: Math.floor(Date.now() / 1000) + ttlSeconds, sub }, AUTH_SECRET);
}

function open(room: string, params: Record<string, string>, connect = true): WebsocketProvider {
  const provider = new WebsocketProvider(server.wsUrl, room, new Y.Doc(), {
    WebSocketPolyfill: WebSocket as unknown as ProviderOptions["WebSocketPolyfill"],
    // Providers in one process would otherwise sync through a BroadcastChannel, bypassing the server.
    disableBc: true,
    connect,
    params,
  });
  providers.push(provider);
  return provider;
}

/** What the person at `provider` went through: socket attempts and closes, and the longest time without a synced socket. */
function watch(provider: WebsocketProvider) {
  const seen = { attempts: 0, closeCodes: [] as (number | null)[], closedEvents: 0, longestGapMs: 0 };
  let downSince: number | null = null;
  provider.on("status", ({ status }: { status: string }) => {
    if (status === "connecting") seen.attempts++;
    if (status === "disconnected") downSince ??= Date.now();
  });
  provider.on("sync", (synced: boolean) => {
    if (!synced || downSince === null) return;
    seen.longestGapMs = Math.max(seen.longestGapMs, Date.now() - downSince);
    downSince = null;
  });
  // null: closed by the client (the helper's swap); a code: closed by the server.
  provider.on("connection-close", (event: CloseEvent | null) => seen.closeCodes.push(event?.code ?? null));
  provider.on("closed", () => seen.closedEvents++);
  return seen;
}

/** Whether `observer` shows `person` by name, and the longest time it did not since watching began. */
function watchPresence(observer: WebsocketProvider, person: WebsocketProvider, name: string) {
  const shown = () => (observer.awareness.getStates().get(person.doc.clientID) as { user?: { name?: string } } | undefined)?.user?.name === name;
  const seen = { shown, longestAbsenceMs: 0 };
  let absentSince: number | null = null;
  observer.awareness.on("change", () => {
    if (!shown()) absentSince ??= Date.now();
    else if (absentSince !== null) {
      seen.longestAbsenceMs = Math.max(seen.longestAbsenceMs, Date.now() - absentSince);
      absentSince = null;
    }
  });
  return seen;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Appends a word every `everyMs` (within the room's message rate) for `ms`, or until `done()`; returns the words. */
async function typeFor(text: Y.Text, ms: number, everyMs: number, done: () => boolean = () => false): Promise<string[]> {
  const words: string[] = [];
  for (const until = Date.now() + ms; Date.now() < until && !done(); await sleep(everyMs)) {
    const word = `w${words.length} `;
    text.insert(text.length, word);
    words.push(word);
  }
  return words;
}

const missingAt = (provider: WebsocketProvider, words: string[]) => words.filter((word) => !textOf(provider).includes(word));

describe("a session that outlives its tokens (client/token-session.ts)", () => {
  it("an editor with 4 s tokens keeps editing across several expiries: nothing is lost, the socket is never down for long", async () => {
    const room = `renew-${randomUUID().slice(0, 8)}`;
    let minted = 0;
    const ends: SessionEnd[] = [];
    const ada = open(room, {}, false);
    const seen = watch(ada);
    const session = keepTokenFresh(ada, {
      getToken: () => (minted++, mint(room, "ada", SHORT_TTL_S)),
      onExpired: (end) => ends.push(end),
    });
    const bo = open(room, { token: await mint(room, "bo", 600) });
    await waitFor(() => ada.synced && bo.synced, "both to sync");
    ada.awareness.setLocalStateField("user", { name: "Ada", color: "#c03" });
    const adaAtBo = watchPresence(bo, ada, "Ada");
    await waitFor(adaAtBo.shown, "Bo to see Ada");
    const text = ada.doc.getText("codemirror");
    // Edits at the moment the helper has taken the old socket down and the new one is not up.
    const duringSwaps: string[] = [];
    ada.on("status", ({ status }: { status: string }) => {
      if (status !== "disconnected") return;
      const word = `swap${duringSwaps.length} `;
      text.insert(text.length, word);
      duringSwaps.push(word);
    });

    const typed = await typeFor(text, 2.5 * SHORT_TTL_S * 1_000, 50);

    await waitFor(() => missingAt(bo, [...typed, ...duringSwaps]).length === 0, "Bo to see all of Ada's edits");
    expect(textOf(bo)).toBe(textOf(ada));
    // At least two expiries passed, each renewed before the room had to close the socket.
    expect(minted).toBeGreaterThanOrEqual(3);
    expect(duringSwaps.length).toBeGreaterThanOrEqual(2);
    expect(seen.closeCodes.filter((code) => code !== null)).toEqual([]);
    expect(seen.closedEvents).toBe(0);
    expect(seen.longestGapMs).toBeLessThan(LONGEST_GAP_MS);
    expect(ends).toEqual([]);
    // Bo saw Ada all along, but for moments at each swap; a newcomer gets the whole text from the server.
    expect(adaAtBo.shown()).toBe(true);
    expect(adaAtBo.longestAbsenceMs).toBeLessThan(LONGEST_GAP_MS);
    const late = open(room, { token: await mint(room, "cy", 600) });
    await waitFor(() => late.synced && textOf(late) === textOf(ada), "a newcomer to get the whole text");
    session.destroy();
  });

  it("a socket the room closed for expiry (4401) comes back with a fresh token, and every edit around the close arrives", async () => {
    const room = `closed-${randomUUID().slice(0, 8)}`;
    const first = await mint(room, "ada", SHORT_TTL_S);
    const backend = cachingBackend(room, first);
    const ends: SessionEnd[] = [];
    const ada = open(room, { token: first });
    const seen = watch(ada);
    const session = keepTokenFresh(ada, { getToken: backend.getToken, onExpired: (end) => ends.push(end) });
    const bo = open(room, { token: await mint(room, "bo", 600) });
    await waitFor(() => ada.synced && bo.synced, "both to sync");
    ada.awareness.setLocalStateField("user", { name: "Ada", color: "#c03" });
    const adaAtBo = watchPresence(bo, ada, "Ada");
    await waitFor(adaAtBo.shown, "Bo to see Ada");

    const typed = await typeFor(ada.doc.getText("codemirror"), (SHORT_TTL_S + 2) * 1_000, 100);

    await waitFor(() => missingAt(bo, typed).length === 0, "Bo to see all of Ada's edits");
    expect(seen.closeCodes).toContain(CloseCode.tokenExpired);
    expect(seen.closedEvents).toBe(0); // the provider never stopped: an app listening to `closed` shows nothing
    expect(seen.longestGapMs).toBeLessThan(LONGEST_GAP_MS);
    expect(ada.wsconnected && ada.synced).toBe(true);
    await waitFor(adaAtBo.shown, "Bo to see Ada again", LONGEST_GAP_MS);
    expect(adaAtBo.longestAbsenceMs).toBeLessThan(LONGEST_GAP_MS);
    expect(ends).toEqual([]);
    session.destroy();
  });

  it("an editor offline past the token's expiry reconnects with a fresh token instead of retrying the refused one", async () => {
    const room = `offline-${randomUUID().slice(0, 8)}`;
    // Long enough that the helper's look ahead (a quarter before expiry) comes well before it.
    const first = await mint(room, "ada", 3);
    const backend = cachingBackend(room, first);
    const ends: SessionEnd[] = [];
    const ada = open(room, { token: first });
    const session = keepTokenFresh(ada, { getToken: backend.getToken, onExpired: (end) => ends.push(end) });
    const bo = open(room, { token: await mint(room, "bo", 600) });
    await waitFor(() => ada.synced && bo.synced, "both to sync");
    ada.disconnect();
    await waitFor(() => Date.now() > expiryOf(first) + 200, "the token to expire", 6_000);
    ada.doc.getText("codemirror").insert(0, "written offline");
    const seen = watch(ada);

    ada.connect(); // with the expired token: refused with 401, which the helper answers with a fresh one

    await waitFor(() => ada.synced && textOf(bo) === "written offline", "Ada back online and her edit at Bo", LONGEST_GAP_MS + 1_000);
    // One refused attempt with the old token, then the fresh one: no retrying of the refused token.
    expect(seen.attempts).toBe(2);
    expect(backend.calls()).toBeLessThanOrEqual(3);
    expect(ends).toEqual([]);
    session.destroy();
  });

  it("a share link's token (the same one back): the helper reports it expired and stops", async () => {
    const room = `link-${randomUUID().slice(0, 8)}`;
    const link = await mint(room, "link", 2);
    let calls = 0;
    const ends: SessionEnd[] = [];
    const ada = open(room, { token: link });
    const seen = watch(ada);
    keepTokenFresh(ada, { getToken: async () => (calls++, link), onExpired: (end) => ends.push(end) });
    await waitFor(() => ada.synced, "Ada to sync");

    // Typing makes the room close the socket as soon as the token expired.
    await typeFor(ada.doc.getText("codemirror"), 6_000, 100, () => ends.length > 0);

    expect(ends).toEqual([{ kind: "expired" }]);
    expect(seen.closeCodes).toContain(CloseCode.tokenExpired);
    const [attempts, callsAtEnd] = [seen.attempts, calls];
    await sleep(3_000);
    expect([seen.attempts, calls, ada.wsconnected, ada.shouldConnect]).toEqual([attempts, callsAtEnd, false, false]);
  });

  it("a getToken that starts failing: the helper retries a bounded number of times, reports it once and stops", async () => {
    const room = `failing-${randomUUID().slice(0, 8)}`;
    let calls = 0;
    const getToken = async () => {
      if (++calls > 1) throw new Error("backend unavailable");
      return mint(room, "ada", SHORT_TTL_S);
    };
    const ends: SessionEnd[] = [];
    const ada = open(room, {}, false);
    const seen = watch(ada);
    keepTokenFresh(ada, { getToken, onExpired: (end) => ends.push(end) });
    await waitFor(() => ada.synced, "Ada to sync");

    // Typing makes the room close the socket as soon as the token expired.
    await typeFor(ada.doc.getText("codemirror"), 20_000, 100, () => ends.length > 0);

    expect(ends.map((end) => (end.kind === "failed" ? `failed: ${String(end.error)}` : end.kind))).toEqual(["failed: Error: backend unavailable"]);
    expect(calls).toBeLessThanOrEqual(1 + 2 * TOKEN_ATTEMPTS);
    const [attempts, callsAtEnd] = [seen.attempts, calls];
    await sleep(3_000);
    expect([seen.attempts, calls, ada.wsconnected, ada.shouldConnect, ends.length]).toEqual([attempts, callsAtEnd, false, false, 1]);
  });
});
