/**
 * The network between the fuzz's clients and the Worker. `HttpSocket` takes no `fetch` of its
 * own (it calls the global one), so for the length of a run `globalThis.fetch` is replaced by
 * {@link FaultyNetwork.fetch}: `/sync/` requests go to the real Worker through `SELF.fetch`,
 * with seeded faults of the kinds a real network has, and everything else goes on to the
 * original `fetch`. Each request is tagged with its client by the query parameter
 * {@link CLIENT_PARAM} (the provider's `params`), which is removed before the Worker sees it.
 *
 * Answers are read whole here (the fuzz's documents are small), so every answer the client
 * receives is checked against the protocol's promises (docs/protocol.md, "HTTP fallback"): no
 * 5xx and no refusal of an honest request, frames numbered on from the poll's cursor with no
 * gap and no repeat, and every close a documented one that an honest client can meet.
 */
import { SELF } from "cloudflare:test";
import { SESSION_HEADER, decodeAnswer, type SessionClose } from "../../../worker/room/http-wire";
import { Prng, mixSeed } from "../../../sim/prng";
import type { FuzzLog } from "./log";

/** The query parameter naming the fuzz client a request is from. */
export const CLIENT_PARAM = "fuzzClient";

/** Closes an honest client may be sent, as [code, reason prefix] (docs/protocol.md, "Closes"). */
const HONEST_CLOSES: readonly (readonly [number, string])[] = [
  [1000, "client left"],
  [1000, "replaced by the client's new session"],
  [1012, "session unknown"],
  // The Worker's answer when the room was reset under a request (a held poll, say).
  [1012, "room restarted"],
  [4410, "document deleted"],
];

/** Every close code docs/protocol.md documents (the socket's table and the fallback's). */
const DOCUMENTED_CODES = new Set([1000, 1002, 1003, 1007, 1008, 1009, 1011, 1012, 1013, 4000, 4001, 4401, 4410, 4413]);

/** Checks a close the room sent an honest client; a violation's text, or null. */
export function closeViolation({ code, reason }: SessionClose): string | null {
  if (!DOCUMENTED_CODES.has(code)) return `undocumented close code ${code} (${reason})`;
  if (!HONEST_CLOSES.some(([honest, prefix]) => code === honest && reason.startsWith(prefix))) {
    return `close ${code} "${reason}": documented, but not one an honest client should get`;
  }
  return null;
}

/** Per-request fault chances (each drawn on every request, so a client's stream of draws does not depend on timing). */
export interface FaultRates {
  /** Lost before it reaches the Worker. */
  loseRequest: number;
  /** Handled by the room, then lost on the way back. */
  loseAnswer: number;
  /** A poll cut by a proxy after {@link maxCutMs} at most. */
  cutPoll: number;
  delayRequest: number;
  delayAnswer: number;
  maxDelayMs: number;
  maxCutMs: number;
}

export const DEFAULT_FAULTS: FaultRates = {
  loseRequest: 0.03,
  loseAnswer: 0.03,
  cutPoll: 0.04,
  delayRequest: 0.15,
  delayAnswer: 0.15,
  maxDelayMs: 120,
  maxCutMs: 400,
};

type RequestKind = "open" | "poll" | "post" | "leave";
const KINDS: readonly RequestKind[] = ["open", "poll", "post", "leave"];

interface Plan {
  delayRequestMs: number;
  loseRequest: boolean;
  cutAfterMs: number | null;
  loseAnswer: boolean;
  delayAnswerMs: number;
}

/** What the network knows of a session: whose it is and the last frame number it delivered. */
interface SessionSeen {
  client: number;
  delivered: number;
}

/** The real `setTimeout`, captured so that no one's timer mock could reach the network's own waits. */
const realSetTimeout = globalThis.setTimeout;

/** Waits `ms`, or rejects as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = realSetTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
}

/** `promise`, or a rejection when `signal` aborts first. */
function unlessAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason));
    promise.then(resolve, reject);
  });
}

const networkError = (what: string) => new TypeError(`network: ${what}`);

export class FaultyNetwork {
  /** Faults on (the run) or off (healing: everything arrives, promptly). */
  faulty = true;
  private readonly streams = new Map<string, Prng>();
  private readonly sessions = new Map<string, SessionSeen>();
  private paused: Promise<void> | null = null;
  private resumePaused: () => void = () => {};
  private original: typeof fetch | null = null;
  /** Requests on their way, so a run ends only once they are. */
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly seed: number,
    private readonly log: FuzzLog,
    private readonly rates: FaultRates = DEFAULT_FAULTS,
  ) {}

  /** Replaces the global `fetch`; {@link uninstall} puts the original back (call it in `finally`). */
  install(): void {
    if (this.original !== null) throw new Error("network already installed");
    this.original = globalThis.fetch;
    globalThis.fetch = (input, init) => this.fetch(input, init);
  }

  uninstall(): void {
    if (this.original !== null) globalThis.fetch = this.original;
    this.original = null;
  }

  /** Holds every new `/sync/` request until {@link resume}: the clients' network is down. */
  pause(): void {
    this.paused ??= new Promise((resolve) => (this.resumePaused = resolve));
  }

  resume(): void {
    this.resumePaused();
    this.paused = null;
  }

  /** Waits (bounded) until no request is on its way. */
  async settle(timeoutMs: number): Promise<void> {
    await Promise.race([Promise.allSettled([...this.inFlight]), sleep(timeoutMs)]);
  }

  private async fetch(input: RequestInfo | URL, init: RequestInit = {}): Promise<Response> {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (!url.pathname.startsWith("/sync/") || this.original === null) return (this.original ?? fetch)(input, init);
    const client = Number(url.searchParams.get(CLIENT_PARAM));
    url.searchParams.delete(CLIENT_PARAM);
    const request = this.send(client, url, init);
    this.inFlight.add(request);
    void request.finally(() => this.inFlight.delete(request)).catch(() => {});
    return request;
  }

  private async send(client: number, url: URL, init: RequestInit): Promise<Response> {
    const method = init.method ?? "GET";
    const kind = requestKind(method, url);
    const plan = this.plan(client, kind);
    const session = url.searchParams.get("session");
    const label = `c${client} ${method} ${kind}${session === null ? "" : ` ${session.slice(0, 6)}`}${url.searchParams.has("cursor") ? ` cursor=${url.searchParams.get("cursor")}` : ""}${url.searchParams.has("seq") ? ` seq=${url.searchParams.get("seq")}` : ""}`;
    // The client's abort (its HttpSocket closed) and a proxy's cut both end the request.
    const cut = new AbortController();
    const clientSignal = init.signal ?? undefined;
    if (clientSignal) {
      if (clientSignal.aborted) cut.abort(clientSignal.reason);
      else clientSignal.addEventListener("abort", () => cut.abort(clientSignal.reason));
    }
    if (this.paused) await unlessAborted(this.paused, cut.signal);
    if (plan.delayRequestMs > 0) await sleep(plan.delayRequestMs, cut.signal);
    if (plan.loseRequest) {
      this.log.trace(`net ${label}: lost before it arrived`);
      throw networkError("request lost");
    }
    if (kind === "poll" && session !== null) this.checkPollCursor(label, session, Number(url.searchParams.get("cursor")));
    let answered = false;
    if (plan.cutAfterMs !== null) {
      const cutAfterMs = plan.cutAfterMs;
      void sleep(cutAfterMs, cut.signal).then(
        () => {
          if (answered) return;
          this.log.trace(`net ${label}: cut after ${cutAfterMs} ms`);
          cut.abort(networkError("poll cut by a proxy"));
        },
        () => {},
      );
    }
    const pending = SELF.fetch(url.toString(), { method, headers: init.headers, body: init.body, signal: cut.signal });
    // A cut request whose answer comes anyway: nobody reads it, so it is cancelled (as a dropped connection would be).
    cut.signal.addEventListener("abort", () => void pending.then((late) => (answered ? undefined : late.body?.cancel())).catch(() => {}));
    let response: Response;
    let body: Uint8Array;
    try {
      response = await unlessAborted(pending, cut.signal);
      body = new Uint8Array(await unlessAborted(response.arrayBuffer(), cut.signal));
    } catch (error) {
      // Not our fault: the Worker threw, or its answer broke off. A browser sees a 500 (error 1101) or a cut connection.
      if (!cut.signal.aborted) this.log.violation(`${label}: the Worker failed the request instead of answering (${String(error).slice(0, 200)})`);
      throw error;
    }
    answered = true;
    this.check(label, kind, client, url, response, body);
    if (plan.loseAnswer) {
      this.log.trace(`net ${label}: answer ${response.status} lost on the way back`);
      throw networkError("answer lost");
    }
    if (plan.delayAnswerMs > 0) await sleep(plan.delayAnswerMs, clientSignal);
    this.delivered(kind, session, response, body);
    return new Response(response.status === 204 ? null : body, { status: response.status, headers: response.headers });
  }

  /** The faults of one request: the client's stream for this kind of request draws the same count every time. */
  private plan(client: number, kind: RequestKind): Plan {
    const key = `${client}:${kind}`;
    let stream = this.streams.get(key);
    if (stream === undefined) {
      stream = new Prng(mixSeed(this.seed, client, KINDS.indexOf(kind), 0x6e6574));
      this.streams.set(key, stream);
    }
    const { rates } = this;
    const [delayRequest, delayRequestMs, lose, cut, cutMs, loseAnswer, delayAnswer, delayAnswerMs] = Array.from({ length: 8 }, () => stream.next()) as [
      number, number, number, number, number, number, number, number,
    ];
    if (!this.faulty) return { delayRequestMs: 0, loseRequest: false, cutAfterMs: null, loseAnswer: false, delayAnswerMs: 0 };
    return {
      delayRequestMs: delayRequest < rates.delayRequest ? Math.floor(delayRequestMs * rates.maxDelayMs) : 0,
      loseRequest: lose < rates.loseRequest,
      cutAfterMs: kind === "poll" && cut < rates.cutPoll ? Math.floor(cutMs * rates.maxCutMs) : null,
      // A leave's answer is never read (keepalive); losing it is losing nothing.
      loseAnswer: kind !== "leave" && loseAnswer < rates.loseAnswer,
      delayAnswerMs: delayAnswer < rates.delayAnswer ? Math.floor(delayAnswerMs * rates.maxDelayMs) : 0,
    };
  }

  /** HttpSocket polls from the last frame it was given: anything else would ask for frames again or skip some. */
  private checkPollCursor(label: string, session: string, cursor: number): void {
    const seen = this.sessions.get(session);
    if (seen === undefined) return this.log.violation(`${label}: a poll for a session no open answer named`);
    if (cursor !== seen.delivered) this.log.violation(`${label}: the client polls from ${cursor}, but was given frames up to ${seen.delivered}`);
  }

  /** The protocol's promises about one answer, checked whether or not the client then receives it. */
  private check(label: string, kind: RequestKind, client: number, url: URL, response: Response, body: Uint8Array): void {
    const { status } = response;
    if (status >= 500) return this.log.violation(`${label}: ${status} ${new TextDecoder().decode(body).slice(0, 200)}`);
    if (kind === "leave") {
      if (status !== 204) this.log.violation(`${label}: a leave answered ${status}, not 204`);
      return;
    }
    if (status !== 200) return this.log.violation(`${label}: an honest request refused with ${status} ${new TextDecoder().decode(body).slice(0, 200)}`);
    let answer: ReturnType<typeof decodeAnswer>;
    try {
      answer = decodeAnswer(body);
    } catch (error) {
      return this.log.violation(`${label}: unreadable answer (${String(error)})`);
    }
    const summary = `${answer.frames.length} frames, cursor ${answer.cursor}${answer.close ? `, close ${answer.close.code} "${answer.close.reason}"` : ""}`;
    this.log.trace(`net ${label}: ${summary}`);
    if (answer.close !== null) {
      const wrong = closeViolation(answer.close);
      if (wrong !== null) this.log.violation(`${label}: ${wrong}`);
    }
    if (kind === "open") {
      const opened = response.headers.get(SESSION_HEADER);
      if (opened === null) return this.log.violation(`${label}: an open answer without a session`);
      if (answer.cursor !== answer.frames.length) this.log.violation(`${label}: an open answer's frames are not numbered from 1 (${summary})`);
      this.sessions.set(opened, { client, delivered: 0 });
    } else if (kind === "post") {
      if (answer.frames.length > 0 || answer.cursor !== 0) this.log.violation(`${label}: a post's answer carries frames or a cursor (${summary})`);
    } else if (kind === "poll") {
      const cursor = Number(url.searchParams.get("cursor"));
      const first = answer.cursor - answer.frames.length + 1;
      if (answer.frames.length === 0 && answer.close !== null && answer.cursor !== cursor) {
        // docs/protocol.md: "a poll's own cursor when it has none". Harmless (no frame to misnumber), so noted, not failed.
        this.log.trace(`NOTE ${label}: a close-only answer carries cursor ${answer.cursor}, not the poll's ${cursor}`);
      } else if (answer.frames.length === 0 ? answer.cursor !== cursor : first !== cursor + 1) {
        this.log.violation(`${label}: the answer does not follow the poll's cursor ${cursor} (${summary}${answer.frames.length > 0 ? `, first frame ${first}` : ""})`);
      }
    }
  }

  /** Notes what the client now has: an answer it received moves its session's delivered frame number. */
  private delivered(kind: RequestKind, session: string | null, response: Response, body: Uint8Array): void {
    if (response.status !== 200) return;
    const opened = kind === "open" ? response.headers.get(SESSION_HEADER) : session;
    if (opened === null || (kind !== "open" && kind !== "poll")) return;
    const seen = this.sessions.get(opened);
    if (seen === undefined) return;
    try {
      seen.delivered = Math.max(seen.delivered, decodeAnswer(body).cursor);
    } catch {
      // Unreadable: already a violation, and the client closes.
    }
  }
}

function requestKind(method: string, url: URL): RequestKind {
  if (method === "DELETE") return "leave";
  if (method === "GET") return "poll";
  return url.searchParams.has("session") ? "post" : "open";
}
