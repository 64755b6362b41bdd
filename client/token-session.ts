/**
 * Keeps a stock y-websocket provider connected across access-token expiry (docs/sessions.md).
 *
 * The provider builds its URL from `provider.params` at every connect, synchronously, so a
 * token must be in place before a socket opens: there is no hook to fetch one then. A
 * reconnect with an expired token is refused with HTTP 401, which browsers report only as
 * close 1006, so the provider would retry it forever. And the room closes a socket whose token
 * expired with 4401, after which the provider stops for good. This helper:
 * - renews the token ahead of its `exp` and reconnects with it while the old one still holds
 *   (edits made meanwhile stay in the Y.Doc and the sync handshake delivers them);
 * - when the room closes the socket for expiry (4401), or a socket closes after the token
 *   expired (the refused reconnect), fetches a token and connects again, without the
 *   provider's `closed` event;
 * - stops, disconnects the provider and calls `onExpired` once when `getToken` keeps failing
 *   or hands back an expired token (a share link cannot be renewed).
 */
import type { WebsocketProvider } from "y-websocket";
import { CloseCode } from "../worker/protocol";
import { readClaims } from "./access";

/** A token is renewed this long before its `exp`... */
export const RENEW_MARGIN_MS = 30_000;
/** ...or, if it lives shorter than four margins, once this share of its remaining life is left. */
const SHORT_TOKEN_MARGIN = 0.25;
/** Never renew sooner than this after installing a token, whatever lifetimes `getToken` hands out. */
const MIN_RENEW_DELAY_MS = 1_000;
/** `getToken` calls before giving up, one second apart and doubling (1 s, 2 s, 4 s). */
export const TOKEN_ATTEMPTS = 4;
const RETRY_BASE_MS = 1_000;
/** A `getToken` call that has not settled by then counts as failed, so giving up stays bounded. */
export const TOKEN_TIMEOUT_MS = 10_000;
/** setTimeout's longest delay; a longer wait is re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Why the session ended: `getToken` handed back an expired token, or kept failing. */
export type SessionEnd = { kind: "expired" } | { kind: "failed"; error: unknown };

export interface TokenSessionOptions {
  /** A token for the provider's document, e.g. fetched from your backend. Called again before each expiry. */
  getToken: () => Promise<string>;
  /** Called once when no usable token can be had; the provider is disconnected by then. */
  onExpired: (end: SessionEnd) => void;
}

export interface TokenSession {
  /** Stops renewing and restores the provider's `shouldReconnect`; leaves the provider as it is. */
  destroy(): void;
}

/**
 * Keeps `provider` connected with fresh tokens from `getToken`, sent as `?token=`. A provider
 * without a valid token (build it with `connect: false`) is connected once one is in.
 *
 * @example
 * const provider = new WebsocketProvider("wss://docs.example/ws", name, doc, { connect: false });
 * keepTokenFresh(provider, {
 *   getToken: async () => (await fetch(`/my-backend/edgedoc-token?doc=${name}`)).text(),
 *   onExpired: () => showBanner("Your session has ended. Reload to continue."),
 * });
 */
export function keepTokenFresh(provider: WebsocketProvider, { getToken, onExpired }: TokenSessionOptions): TokenSession {
  const appShouldReconnect = provider.shouldReconnect;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let renewTimer: ReturnType<typeof setTimeout> | undefined;
  let pending: Promise<string | { error: unknown }> | null = null;
  let done = false;
  // Fresh tokens the server keeps refusing (its clock far ahead of the issuer's) must not make a loop.
  let recoveriesSinceSync = 0;
  const onSync = (synced: boolean): void => {
    if (synced) recoveriesSinceSync = 0;
  };

  const currentToken = (): string | undefined => provider.params.token;

  const later = (ms: number, run: () => void): ReturnType<typeof setTimeout> => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      run();
    }, ms);
    timers.add(timer);
    return timer;
  };
  const cancel = (timer: ReturnType<typeof setTimeout> | undefined): void => {
    clearTimeout(timer);
    if (timer !== undefined) timers.delete(timer);
  };

  /** One `getToken` round with bounded retries, shared by whoever needs a token meanwhile. */
  function nextToken(): Promise<string | { error: unknown }> {
    pending ??= fetchToken().finally(() => (pending = null));
    return pending;
  }

  async function fetchToken(): Promise<string | { error: unknown }> {
    let error: unknown;
    for (let attempt = 0; attempt < TOKEN_ATTEMPTS && !done; attempt++) {
      if (attempt > 0) await new Promise<void>((resolve) => later(RETRY_BASE_MS * 2 ** (attempt - 1), resolve));
      try {
        return await withTimeout(getToken());
      } catch (caught) {
        error = caught;
      }
    }
    return { error };
  }

  function withTimeout(token: Promise<string>): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = later(TOKEN_TIMEOUT_MS, () => reject(new Error(`getToken did not answer within ${TOKEN_TIMEOUT_MS} ms`)));
    });
    return Promise.race([token, timeout]).finally(() => cancel(timer));
  }

  function install(token: string): void {
    if (token !== currentToken()) provider.params = { ...provider.params, token };
    cancel(renewTimer);
    const expiresAt = expiryOf(token);
    if (expiresAt === null) return; // nothing to renew ahead; a close for expiry still recovers
    const renewAt = expiresAt - Math.min(RENEW_MARGIN_MS, (expiresAt - Date.now()) * SHORT_TOKEN_MARGIN);
    const arm = (): void => {
      const delay = renewAt - Date.now();
      renewTimer = delay > MAX_TIMER_MS ? later(MAX_TIMER_MS, arm) : later(Math.max(delay, MIN_RENEW_DELAY_MS), () => void renewAhead());
    };
    arm();
  }

  /** While the token still holds: get a later one and move the live socket onto it. */
  async function renewAhead(): Promise<void> {
    const next = await nextToken();
    // If that failed, or nothing later is to be had (a share link), the socket lives on until the
    // room closes it for expiry: recover() tries again then, and reports it if it cannot.
    if (done || typeof next !== "string" || !outlives(next, currentToken())) return;
    install(next);
    // A socket keeps the token it opened with, so open another. Edits made in between stay in
    // the Y.Doc and go out in the new socket's sync handshake. A provider the app disconnected
    // (ws null) or that is between attempts picks the token up on its next connect.
    if (provider.ws !== null) {
      provider.disconnect();
      reconnect();
    }
  }

  /** The token was refused or is gone: hold the provider, get a new token, connect with it. */
  async function recover(refused: string | undefined): Promise<void> {
    // The provider's own retry would send the refused token again (401, seen as 1006, forever).
    if (provider.ws !== null) provider.disconnect();
    else provider.shouldConnect = false;
    const next = await nextToken();
    if (done) return;
    if (typeof next !== "string") return stop({ kind: "failed", error: next.error });
    if (next === refused || isExpired(next)) return stop({ kind: "expired" });
    if (++recoveriesSinceSync > TOKEN_ATTEMPTS) {
      return stop({ kind: "failed", error: new Error(`the server refused ${TOKEN_ATTEMPTS} fresh tokens in a row`) });
    }
    install(next);
    reconnect();
  }

  /**
   * Connects with our presence renewed first (as y-protocols renews it every 15 s): the old
   * socket's close removed it everywhere at its current clock, and peers ignore a state re-sent
   * with that same clock, so without a newer one we would be missing from their lists until
   * the next renewal.
   */
  function reconnect(): void {
    const presence = provider.awareness.getLocalState();
    if (presence !== null) provider.awareness.setLocalState(presence);
    provider.connect();
  }

  function shouldReconnect(event: CloseEvent, closed: WebsocketProvider): boolean {
    const token = currentToken();
    if (event.code !== CloseCode.tokenExpired && (token === undefined || !isExpired(token))) return appShouldReconnect(event, closed);
    void recover(token);
    // recover() has paused the provider, so its scheduled retry does nothing and no `closed` is emitted.
    return true;
  }

  function detach(): void {
    done = true;
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    provider.off("sync", onSync);
    if (provider.shouldReconnect === shouldReconnect) provider.shouldReconnect = appShouldReconnect;
  }

  function stop(end: SessionEnd): void {
    if (done) return;
    detach();
    provider.disconnect();
    onExpired(end);
  }

  provider.shouldReconnect = shouldReconnect;
  provider.on("sync", onSync);
  const initial = currentToken();
  if (initial !== undefined && !isExpired(initial)) install(initial);
  else void recover(initial);
  return { destroy: detach };
}

/** The token's `exp` in ms since the epoch, or null if it has none (the server judges the token itself). */
function expiryOf(token: string): number | null {
  const exp = readClaims(token)?.exp;
  return typeof exp === "number" ? exp * 1000 : null;
}

function isExpired(token: string): boolean {
  const expiresAt = expiryOf(token);
  return expiresAt !== null && expiresAt <= Date.now();
}

/** Whether `next` is another token that expires later than `current`. */
function outlives(next: string, current: string | undefined): boolean {
  if (current === undefined) return true;
  return next !== current && (expiryOf(next) ?? Infinity) > (expiryOf(current) ?? Infinity);
}
