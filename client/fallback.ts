/**
 * WebSockets first, plain HTTP when they are blocked (docs/protocol.md, "HTTP fallback").
 *
 * `EdgedocProvider` is the stock y-websocket provider (same options, events, `status`,
 * `synced`, `awareness`, `connect`/`disconnect`) whose connection attempts go through a
 * chooser instead of `WebSocket`: each attempt is a WebSocket until {@link WEBSOCKET_ATTEMPTS}
 * in a row never opened (refused, cut, or silent for {@link OPEN_TIMEOUT_MS}); from then on an
 * {@link HttpSocket}. A socket that opened and later dropped says nothing about the network,
 * so it does not count. While on HTTP a probe WebSocket (no session, it joins no room) is
 * tried every {@link PROBE_INTERVAL_MS}; when one opens, the HTTP session is ended and the
 * next attempt is a WebSocket again. One connection at a time, always: the provider holds one
 * attempt, and a probe is not a connection to the room.
 */
import { WebsocketProvider } from "y-websocket";
import type * as Y from "yjs";
import { QUIET_CLIENT_PARAM } from "../worker/protocol";
import { HttpSocket } from "./http-socket";
import { followRoomRemovals, keepStockTimersOnlyWhen } from "./quiet-presence";
import { QuietSocket } from "./quiet-socket";

/** Attempts that never opened before falling back: a refusal takes milliseconds, so three cost the provider's first backoffs (~1 s). */
export const WEBSOCKET_ATTEMPTS = 3;
/** A WebSocket that has not opened by then counts as never opened (a proxy may hold the upgrade without answering). */
export const OPEN_TIMEOUT_MS = 10_000;
/** How often a client on HTTP tries whether WebSockets work again. */
export const PROBE_INTERVAL_MS = 5 * 60_000;

export type Transport = "websocket" | "http";

/** The socket surface the provider uses, implemented by {@link QuietSocket} (over a `WebSocket`) and {@link HttpSocket}. */
type ProviderSocket = QuietSocket | HttpSocket;

/** Overrides for tests and embedders with their own numbers. */
export interface FallbackOptions {
  attempts?: number;
  openTimeoutMs?: number;
  probeIntervalMs?: number;
  /** The WebSocket implementation (Node's `ws` outside browsers). */
  WebSocketImpl?: typeof WebSocket;
}

/** The `/ws/:name` URL of a quiet client: the provider's, with `?presence=socket` (docs/protocol.md, "Quiet clients"). */
function quietUrl(url: string): string {
  const quiet = new URL(url);
  quiet.searchParams.set(QUIET_CLIENT_PARAM.name, QUIET_CLIENT_PARAM.value);
  return quiet.toString();
}

/** Chooses the transport of each connection attempt; see the module comment. */
export class TransportChooser {
  transport: Transport = "websocket";
  private neverOpened = 0;
  private probeTimer: ReturnType<typeof setTimeout> | null = null;
  /** The provider's latest HTTP connection: ended when a probe finds WebSockets working, and replaced by the next one. */
  private current: HttpSocket | null = null;
  private stopped = false;
  private readonly listeners = new Set<(transport: Transport) => void>();
  private readonly attempts: number;
  private readonly openTimeoutMs: number;
  private readonly probeIntervalMs: number;
  private readonly WebSocketImpl: typeof WebSocket;

  /** `clientId`: the provider's awareness ID, the only presence its sockets send (client/quiet-socket.ts). */
  constructor(
    private readonly clientId: () => number,
    options: FallbackOptions = {},
  ) {
    this.attempts = options.attempts ?? WEBSOCKET_ATTEMPTS;
    this.openTimeoutMs = options.openTimeoutMs ?? OPEN_TIMEOUT_MS;
    this.probeIntervalMs = options.probeIntervalMs ?? PROBE_INTERVAL_MS;
    this.WebSocketImpl = options.WebSocketImpl ?? WebSocket;
  }

  /** A class the provider instantiates per attempt (`WebSocketPolyfill`). */
  socketClass(): new (url: string, protocols?: string | string[]) => ProviderSocket {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const chooser = this;
    return function ChosenSocket(url: string, protocols?: string | string[]): ProviderSocket {
      return chooser.open(url, protocols);
    } as unknown as new (url: string, protocols?: string | string[]) => ProviderSocket;
  }

  /** Calls `listener` whenever the transport of the next connection changes. */
  onTransport(listener: (transport: Transport) => void): void {
    this.listeners.add(listener);
  }

  /** Stops probing (the provider was destroyed). */
  stop(): void {
    this.stopped = true;
    if (this.probeTimer !== null) clearTimeout(this.probeTimer);
    this.probeTimer = null;
  }

  private open(url: string, protocols?: string | string[]): ProviderSocket {
    if (this.transport === "http") {
      const socket = new HttpSocket(url, this.current?.sessionId ?? null);
      this.current = socket;
      this.scheduleProbe(url);
      return socket;
    }
    const socket = new QuietSocket(new this.WebSocketImpl(quietUrl(url), protocols), this.clientId);
    let opened = false;
    const timeout = setTimeout(() => {
      // Closing reports the close to the provider, which counts it and tries again.
      if (!opened) socket.close();
    }, this.openTimeoutMs);
    socket.addEventListener("open", () => {
      opened = true;
      this.neverOpened = 0;
      clearTimeout(timeout);
    });
    socket.addEventListener("close", () => {
      clearTimeout(timeout);
      if (opened || ++this.neverOpened < this.attempts) return;
      this.switchTo("http");
    });
    return socket;
  }

  private switchTo(transport: Transport): void {
    if (this.transport === transport) return;
    this.transport = transport;
    this.neverOpened = 0;
    for (const listener of this.listeners) listener(transport);
  }

  /** While on HTTP, tries a probe WebSocket now and then; one that opens brings the next connection back to WebSockets. */
  private scheduleProbe(url: string): void {
    if (this.probeTimer !== null || this.stopped) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      if (this.transport !== "http" || this.stopped) return;
      const probeUrl = new URL(url);
      probeUrl.search = "probe=1";
      const probe = new this.WebSocketImpl(probeUrl.toString());
      const giveUp = setTimeout(() => probe.close(), this.openTimeoutMs);
      probe.addEventListener("open", () => {
        clearTimeout(giveUp);
        probe.close();
        this.switchTo("websocket");
        // Ends the HTTP session as a dropped socket would: the provider reconnects, by WebSocket now.
        this.current?.close(1000, "websockets work again");
      });
      probe.addEventListener("close", () => {
        clearTimeout(giveUp);
        if (this.transport === "http") this.scheduleProbe(url);
      });
    }, this.probeIntervalMs);
  }
}

/**
 * The stock y-websocket provider with the HTTP fallback: use it as `WebsocketProvider`
 * (`new EdgedocProvider("wss://docs.example/ws", name, doc, { params: { token } })`).
 * `transport` says how the next connection goes; {@link onTransport} tells when it changes.
 */
export class EdgedocProvider extends WebsocketProvider {
  readonly chooser: TransportChooser;

  constructor(
    serverUrl: string,
    roomname: string,
    doc: Y.Doc,
    options: ConstructorParameters<typeof WebsocketProvider>[3] & { fallback?: FallbackOptions } = {},
  ) {
    const { fallback, ...rest } = options;
    // Read once the provider exists: its awareness's ID is ours.
    let provider: EdgedocProvider | null = null;
    const chooser = new TransportChooser(() => provider?.awareness.clientID ?? doc.clientID, fallback);
    super(serverUrl, roomname, doc, { ...rest, WebSocketPolyfill: chooser.socketClass() as unknown as typeof WebSocket });
    provider = this;
    this.chooser = chooser;
    // Quiet sockets keep presence without timers; the HTTP fallback keeps the stock ones.
    this.stopTimers = keepStockTimersOnlyWhen(this, () => this.ws instanceof HttpSocket);
    followRoomRemovals(this, () => this.ws instanceof QuietSocket);
  }

  private readonly stopTimers: () => void;

  /** Calls `listener` whenever the transport of the next connection changes. */
  onTransport(listener: (transport: Transport) => void): void {
    this.chooser.onTransport(listener);
  }

  get transport(): Transport {
    return this.chooser.transport;
  }

  override destroy(): void {
    this.chooser.stop();
    this.stopTimers();
    super.destroy();
  }
}
