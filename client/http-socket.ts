/**
 * A WebSocket look-alike over plain HTTP, for networks that block WebSockets: the y-websocket
 * provider drives it exactly as it drives a socket (`new HttpSocket(url)`, `send`, `close`,
 * `onopen`/`onmessage`/`onclose`/`onerror`), while the frames travel by the server's HTTP
 * fallback (docs/protocol.md, "HTTP fallback"): a `POST` opens a session, long polls bring the
 * room's frames, `POST`s carry ours (one at a time, in order, batched while one is in flight),
 * and a `DELETE` leaves.
 *
 * Closes reach the provider as close events with the room's own codes, so everything that
 * reads them (reconnecting, stopping on 4400-4499, token renewal on 4401) works unchanged. A
 * refusal at the door maps its status to the code a socket would have carried; a request that
 * fails on the network is 1006, as a dropped socket, and the provider joins again.
 */
import { SESSION_HEADER, decodeAnswer, encodeFrames, takeBatch, type SessionClose } from "../worker/room/http-wire";
import { CloseCode } from "../worker/protocol";
import { HeardPresence } from "./heard-presence";
import { WebSocketLike } from "./websocket-like";

/** Abnormal closure (RFC 6455 §7.4.1): the connection failed without a close from the server. */
const ABNORMAL_CLOSURE = 1006;

/** The `/sync/:name` URL for the provider's `/ws/:name` URL (its query, the token, kept). */
function syncUrlFor(socketUrl: string): URL {
  const url = new URL(socketUrl);
  url.protocol = url.protocol === "wss:" ? "https:" : "http:";
  url.pathname = url.pathname.replace(/\/ws\/([^/]*)$/, "/sync/$1");
  return url;
}

/** The close a refused request stands for: what the same refusal of a socket would end with. */
function closeForStatus(status: number, reason: string): SessionClose {
  if (status === 401) return { code: CloseCode.tokenExpired, reason: reason || "token refused" };
  if (status === 400 || status === 403 || status === 404 || status === 413 || status === 415) return { code: 4000 + status, reason };
  if (status === 429 || status === 503) return { code: CloseCode.tryAgainLater, reason };
  return { code: ABNORMAL_CLOSURE, reason: reason || `HTTP ${status}` };
}

type Handler<E> = ((event: E) => void) | null;

export class HttpSocket extends WebSocketLike {

  readyState: number = HttpSocket.CONNECTING;
  binaryType = "arraybuffer";
  onopen: Handler<Event | object> = null;
  onmessage: Handler<{ data: ArrayBuffer }> = null;
  onclose: Handler<{ code: number; reason: string; wasClean: boolean }> = null;
  onerror: Handler<Event | object> = null;

  private readonly base: URL;
  private session: string | null = null;
  private cursor = 0;
  /** Our frames not yet posted, and the number the first of them will carry. */
  private outbox: Uint8Array[] = [];
  private nextSeq = 1;
  private posting = false;
  private readonly aborter = new AbortController();
  /** Presence the room sent: the stock provider's echoes of it are not posted (client/heard-presence.ts). */
  private readonly heard = new HeardPresence();
  /** A tab being closed leaves at once, as its socket's close would tell the room. */
  private readonly leaveOnPageHide = () => this.close(1001, "page closed");

  /**
   * `replaces`: the session this client had before, if any (client/fallback.ts passes it): the
   * room ends it before opening this one, in case its leave never arrived (the network went).
   */
  constructor(
    readonly url: string,
    private readonly replaces: string | null = null,
  ) {
    super();
    this.base = syncUrlFor(url);
    void this.open();
  }

  /** This connection's session id, once open. */
  get sessionId(): string | null {
    return this.session;
  }

  send(data: ArrayBuffer | Uint8Array): void {
    if (this.readyState !== HttpSocket.OPEN) throw new Error("HttpSocket is not open");
    const frame = data instanceof Uint8Array ? data.slice() : new Uint8Array(data.slice(0));
    if (this.heard.isEcho(frame)) return;
    this.outbox.push(frame);
    void this.flush();
  }

  /** Leaves the room (the server removes our presence at once) and reports the close, as a socket does. */
  close(code = 1000, reason = ""): void {
    if (this.readyState >= HttpSocket.CLOSING) return;
    if (this.session !== null) {
      // keepalive: the leave is sent even when the page is being unloaded.
      void fetch(this.address({ session: this.session }), { method: "DELETE", keepalive: true }).catch(() => {});
    }
    this.finish({ code, reason }, true);
  }

  private async open(): Promise<void> {
    const response = await this.request(this.address(this.replaces === null ? {} : { replaces: this.replaces }), { method: "POST", headers: { "Content-Type": "application/octet-stream" } });
    if (response === null) return;
    const session = response.headers.get(SESSION_HEADER);
    if (session === null) return this.finish({ code: ABNORMAL_CLOSURE, reason: "no session in the answer" }, false);
    this.session = session;
    this.readyState = HttpSocket.OPEN;
    globalThis.addEventListener?.("pagehide", this.leaveOnPageHide);
    this.onopen?.({});
    if (this.readyState !== HttpSocket.OPEN) return;
    await this.deliver(response);
    void this.pollLoop();
  }

  /** Polls until the session ends; each answer (or an empty one after the server's hold) brings the next poll. */
  private async pollLoop(): Promise<void> {
    while (this.readyState === HttpSocket.OPEN) {
      const response = await this.request(this.address({ session: this.session!, cursor: String(this.cursor) }), { method: "GET" });
      if (response === null) return;
      await this.deliver(response);
    }
  }

  /** Posts what is queued, one request at a time so the room handles our frames in order. */
  private async flush(): Promise<void> {
    if (this.posting) return;
    this.posting = true;
    try {
      while (this.outbox.length > 0 && this.readyState === HttpSocket.OPEN) {
        const batch = takeBatch(this.outbox);
        const seq = this.nextSeq;
        this.nextSeq += batch.length;
        const response = await this.request(this.address({ session: this.session!, seq: String(seq) }), {
          method: "POST",
          headers: { "Content-Type": "application/octet-stream" },
          body: encodeFrames(batch) as Uint8Array<ArrayBuffer>,
        });
        if (response === null) return;
        await this.deliver(response);
      }
    } finally {
      this.posting = false;
    }
  }

  /** Hands an answer's frames to the provider, then its close if it has one. */
  private async deliver(response: Response): Promise<void> {
    let answer: ReturnType<typeof decodeAnswer>;
    try {
      answer = decodeAnswer(new Uint8Array(await response.arrayBuffer()));
    } catch (error) {
      return this.finish({ code: ABNORMAL_CLOSURE, reason: `unreadable answer: ${String(error)}` }, false);
    }
    if (this.readyState !== HttpSocket.OPEN) return;
    // Only polls move the cursor; a POST's answer carries none (0).
    this.cursor = Math.max(this.cursor, answer.cursor);
    for (const frame of answer.frames) {
      if (this.readyState !== HttpSocket.OPEN) return;
      this.heard.note(frame);
      this.onmessage?.({ data: frame.slice().buffer });
    }
    if (answer.close !== null) this.finish(answer.close, true);
  }

  /** A request of this session; null when it failed or was refused (the socket is closed then). */
  private async request(url: URL, init: RequestInit): Promise<Response | null> {
    try {
      const response = await fetch(url, { ...init, cache: "no-store", signal: this.aborter.signal });
      if (response.ok) return response;
      const reason = (await response.text().catch(() => "")).slice(0, 123);
      this.finish(closeForStatus(response.status, reason), true);
    } catch (error) {
      if (this.readyState < HttpSocket.CLOSING) this.onerror?.({ error });
      this.finish({ code: ABNORMAL_CLOSURE, reason: "" }, false);
    }
    return null;
  }

  private address(query: Record<string, string>): URL {
    const url = new URL(this.base);
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    return url;
  }

  /** Closes once: stops every request and tells the provider, after the current call returns (as a socket's close event comes). */
  private finish(close: SessionClose, wasClean: boolean): void {
    if (this.readyState === HttpSocket.CLOSED) return;
    this.readyState = HttpSocket.CLOSED;
    this.outbox = [];
    this.aborter.abort();
    globalThis.removeEventListener?.("pagehide", this.leaveOnPageHide);
    queueMicrotask(() => this.onclose?.({ ...close, wasClean }));
  }
}
