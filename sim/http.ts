/**
 * The HTTP fallback, simulated: clients on client/http-socket.ts's HttpSocket (driven by the
 * same stock-provider model as WebSocket clients, sim/client.ts) against the room's real
 * {@link HttpSessions} and {@link HttpSession} (worker/room/http-sessions.ts), wired to the core
 * as the Durable Object shell wires them (worker/room/index.ts): the same functions, so the same
 * interleavings (a session's end is reported to the core by `reportEnds` once the event that
 * ended it has run its handler, as the shell's `settled` does; with the schedule's `slowIo`,
 * storage resolves a macrotask later, as beside real I/O), and the open sessions listed to
 * the core beside the WebSockets. Session ids come from a counter (never reused, as random ones are not).
 *
 * The client's side, as HttpSocket behaves (and client/fallback.ts around it):
 * - opening is a request (`start`): its answer carries the session id and the first frames;
 *   it names the client's previous session, which the room ends first; the provider's
 *   `onopen` runs, then those frames are read, then the poll loop starts;
 * - one poll at a time, with the cursor of the last frame read: answered at once, or held by
 *   the room until a frame or the close comes, or ended empty by the Worker after
 *   {@link POLL_HOLD_MS} (the client polls again);
 * - frames to the room go in POSTs, one at a time, numbered; frames sent meanwhile wait and go
 *   together in the next one (at most {@link MAX_BATCH_BYTES}); presence the room sent, sent
 *   back unchanged (the stock provider's echo: every entry at the clock it came with), is not
 *   posted at all;
 * - a close in any answer ends it (the provider sees the room's code); a request that fails is
 *   1006, as a dropped socket; `close()` sends a DELETE; after the object restarted, the
 *   room answers an unknown session with 1012 and the provider joins again (a new session, a
 *   new handshake).
 * The Worker in front refuses a request whose token expired (401, the client's 4401).
 *
 * The network, as the schedule drives it: requests reach the room and answers reach the
 * client one by one (`deliver`, in order per link unless an `http` step sends one ahead); a
 * poll's answer can be lost (or a held poll cut), or a POST's after the room handled it: the
 * request fails, and HttpSocket, which never retries, finishes with 1006 (the provider joins
 * again, naming the old session as the one it replaces); a client can change transport (a
 * probe found WebSockets working, or they stopped working).
 *
 * The output gate, as for sockets (sim/host.ts): a frame the core sends a session during an
 * event is recorded with that event, and counts as released only when the event commits (a
 * killed event takes the whole object, and its sessions, with it). An answer computed during
 * an event (a poll answered at once, a held poll woken by a frame, a POST's answer) leaves only
 * when that event commits; each frame in it must be one the room sent that session, in order
 * after the poll's cursor, from a committed event. A frame that would confirm a save is
 * stamped with what storage held when its event committed, as a socket's frame is at release.
 */
import { HeardPresence } from "../client/heard-presence";
import { CloseCode } from "../worker/protocol";
import { HttpSessions, POLL_HOLD_MS, type HttpSession, type HttpSessionRoom } from "../worker/room/http-sessions";
import { decodeAnswer, decodeFrames, encodeFrames, MAX_BATCH_BYTES, takeBatch, type SessionClose } from "../worker/room/http-wire";
import type { AccessGrant } from "../worker/access";
import type { ClientLink, SimClient } from "./client";
import type { SimulatedCore } from "./contract";
import type { FrameToClient } from "./host";
import type { Step } from "./schedule";
import { SimulatedKill } from "./sqlite";
import { describe, describeFrame, type World } from "./world";

/** client/http-socket.ts: one batch of frames stays under this. */
/** client/http-socket.ts: presence clocks remembered for its echo check; past it they start over. */

/**
 * A request on its way to the room. A POST's body is its frames as client/http-socket.ts
 * encodes them; a rogue's text frame is posted as a raw body (its framing broken).
 */
type HttpRequest = { kind: "poll"; cursor: number } | { kind: "post"; seq: number; frames: Uint8Array[]; raw?: Uint8Array } | { kind: "leave" };

/** An answer on its way to the client: to opening, a poll, a POST; the Worker ending a held poll; a request that failed. */
interface HttpAnswer {
  to: "open" | "poll" | "post" | "raw" | "hold" | "fail";
  cursor: number;
  frames: FrameToClient[];
  close: SessionClose | null;
}

/** A frame the room queued for a session, as the core sent it. */
interface QueuedFrame {
  seq: number;
  frame: Uint8Array;
  /** The event it was sent in committed (the output gate released it). */
  committed: boolean;
  /** The recipient's own clock in storage at that commit, when the frame would confirm a save. */
  storedClock?: number;
}

/** A poll the room holds until there is something to answer. */
interface HeldPoll {
  cursor: number;
  since: number;
  release: () => void;
  /** Set when the room answers it (a frame or the close came). */
  answer: Uint8Array | null;
}

/** One HttpSocket: the client's end of one session, and what is in flight both ways. */
export class HttpLink implements ClientLink {
  sessionId = "";
  grant: AccessGrant | null = null;
  /** HttpSocket.cursor: the number of the last frame read. */
  cursor = 0;
  /** Frames waiting for the POST in flight to be answered. */
  private outbox: Uint8Array[] = [];
  private nextSeq = 1;
  /** The POST in flight: sent, handled, or its answer on the way back. */
  posting: { seq: number; frames: Uint8Array[] } | null = null;
  readonly toServer: HttpRequest[] = [];
  held: HeldPoll | null = null;
  readonly toClient: HttpAnswer[] = [];
  /** The HttpSocket finished: nothing it is sent is read any more. */
  clientGone = false;
  /** The room's session object (the world's checks; the client knows only its id). */
  session: HttpSession | null = null;
  /** HttpSocket.heard: presence the room sent, not posted back (client/heard-presence.ts). */
  private readonly heard = new HeardPresence();
  /** What the room queued for the session, in order, until the client has read it. */
  queued: QueuedFrame[] = [];
  serverSeq = 0;

  constructor(
    /** Numbered per world, for traces (h1, h2, ...). */
    readonly id: number,
    readonly client: number,
  ) {}

  get usable(): boolean {
    return !this.clientGone;
  }

  /** HttpSocket.send: posted at once, or queued behind the POST in flight. */
  clientSend(data: ArrayBuffer | string): void {
    if (this.clientGone) return;
    if (typeof data === "string") {
      // HttpSocket sends bytes only: a rogue posts text as a body of its own, beside the client's POSTs.
      this.toServer.push({ kind: "post", seq: this.nextSeq, frames: [], raw: new TextEncoder().encode(data) });
      return;
    }
    const bytes = new Uint8Array(data.slice(0));
    if (this.heard.isEcho(bytes)) return;
    if (this.posting === null) this.post([bytes]);
    else this.outbox.push(bytes);
  }

  /** HttpSocket: a frame the room sent is noted before the provider handles it. */
  noteHeard(frame: Uint8Array): void {
    this.heard.note(frame);
  }

  /** HttpSocket.finish: requests are aborted (a POST already sent may still arrive), nothing more is read. */
  abandon(): void {
    this.clientGone = true;
    this.toClient.length = 0;
    this.outbox = [];
    this.queued = [];
    this.releaseHeld();
    for (let i = this.toServer.length - 1; i >= 0; i--) if (this.toServer[i]!.kind === "poll") this.toServer.splice(i, 1);
  }

  /** HttpSocket.close(): the DELETE (sent with keepalive, whatever else is aborted). */
  clientClose(): void {
    this.toServer.push({ kind: "leave" });
  }

  /** A request failed: HttpSocket finishes with 1006; what was still on its way is lost. */
  clientDrop(): void {
    this.toServer.length = 0;
  }

  answerClose(): void {}

  /** The Worker stopped waiting for the held poll (its client went away or it timed out). */
  releaseHeld(): HeldPoll | null {
    const held = this.held;
    this.held = null;
    held?.release();
    return held;
  }

  /** The poll loop's next poll. */
  poll(): void {
    if (!this.clientGone) this.toServer.push({ kind: "poll", cursor: this.cursor });
  }

  /** The POST's answer was read: the flush loop posts what queued meanwhile. */
  posted(): void {
    this.posting = null;
    if (this.outbox.length > 0) this.post(takeBatch(this.outbox));
  }

  private post(frames: Uint8Array[]): void {
    this.posting = { seq: this.nextSeq, frames };
    this.nextSeq += frames.length;
    this.toServer.push({ kind: "post", seq: this.posting.seq, frames });
  }

  get inFlight(): number {
    return (this.clientGone ? 0 : this.toClient.length) + this.toServer.length;
  }
}



/** The world's side of the HTTP fallback: the object's sessions, the links, the gate, the network. */
export class HttpFallback {
  /** The current object's sessions (in memory: gone with a kill or an eviction). */
  private registry: HttpSessions | null = null;
  private readonly links: HttpLink[] = [];
  private linkCount = 0;
  /** Session ids handed out, across restarts (never reused). */
  private idCount = 0;
  /** Each client's latest HttpSocket (client/fallback.ts `current`): the next one names its session as the one it replaces. */
  private readonly latest = new Map<number, HttpLink>();
  /** Answers computed during the current event, released at its commit. */
  private gated: { link: HttpLink; bytes: Uint8Array; to: HttpAnswer["to"]; cursor: number }[] = [];
  /** Links whose sessions were sent frames during the current event. */
  private readonly touched = new Set<HttpLink>();
  /** The link whose session is being opened (start → connect). */
  private connecting: HttpLink | null = null;

  constructor(
    private readonly world: World,
    /** Whether any client of the schedule is on HTTP (nothing here runs otherwise). */
    readonly active: boolean,
  ) {
    if (active) world.host.httpSessions = () => this.registry?.listed() ?? [];
  }

  // --- The object ----------------------------------------------------------------------------

  /** A new object: its sessions, made before the core as the shell does, calling the core `coreOf` gives once made. */
  open(coreOf: () => SimulatedCore): void {
    if (!this.active) return;
    const room: HttpSessionRoom = {
      connect: (session, grant) => {
        this.watch(session);
        return coreOf().connect(session, grant);
      },
      message: (session, frame) => {
        this.world.lastClientFrameAt = this.world.now;
        return session.ended === null ? coreOf().message(session, frame) : this.messageAfterEnd(coreOf(), session, frame);
      },
      closed: (session, end) => coreOf().closed(session, end),
      admitRequest: (session) => coreOf().admitRequest?.(session) ?? true,
      chargeResend: (session, bytes) => coreOf().chargeResend?.(session, bytes) ?? null,
      now: () => this.world.now,
    };
    this.registry = new HttpSessions(room, () => (++this.idCount).toString(16).padStart(32, "0"));
  }

  /** The process died: the sessions went with it; held polls fail (1006), answers not yet released never leave. */
  kill(): void {
    if (!this.active) return;
    this.registry = null;
    this.gated = [];
    this.touched.clear();
    for (const link of this.links) if (link.held !== null) this.fail(link);
  }

  /** Hibernation: the sessions lived in memory (the world never evicts with a poll held). */
  evict(): void {
    if (!this.active) return;
    this.registry = null;
    for (const link of this.links) if (link.held !== null) this.fail(link);
  }

  get holdsPolls(): boolean {
    return this.links.some((link) => link.held !== null);
  }

  /** The sessions open now (for the DELETE check). */
  openSessions(): HttpSession[] {
    return this.registry?.listed() ?? [];
  }

  /**
   * Inside every event, after its handler: lets what the event set going finish in it (the
   * sessions' ends reported to the core, held polls answered), then gates the answers.
   */
  async settle(): Promise<void> {
    if (!this.active || this.registry === null) return;
    try {
      await this.registry.reportEnds();
    } catch (error) {
      if (!(error instanceof SimulatedKill)) this.world.violate("no-throw", `closed() threw for an HTTP session (HttpSessions' reported ends): ${describe(error)}`);
    }
    // What the reports set going (held polls answered) finishes within the event.
    await new Promise((resolve) => setImmediate(resolve));
    for (const link of this.links) {
      const held = link.held;
      if (held === null || held.answer === null) continue;
      link.held = null;
      this.gate(link, held.answer, "poll", held.cursor);
    }
  }

  /** The output gate opens: frames sent during the event count as released, then the event's answers leave. */
  release(): void {
    if (!this.active) return;
    for (const link of this.touched) {
      const client = this.world.clients[link.client];
      for (const entry of link.queued) {
        if (entry.committed) continue;
        entry.committed = true;
        if (client?.wouldConfirm(entry.frame)) entry.storedClock = this.world.stored.clock(client.spec.clientId);
      }
    }
    this.touched.clear();
    const gated = this.gated;
    this.gated = [];
    for (const item of gated) this.releaseAnswer(item.link, item.bytes, item.to, item.cursor);
  }

  // --- Requests ------------------------------------------------------------------------------

  /** The client opens a session (HttpSocket's first POST). */
  async connect(client: SimClient): Promise<void> {
    const link = new HttpLink(++this.linkCount, client.index);
    const grant = client.grant;
    // client/fallback.ts: `new HttpSocket(url, this.current?.sessionId ?? null)`.
    const replaces = this.latest.get(client.index)?.sessionId || null;
    this.latest.set(client.index, link);
    let opened: { id: string; answer: Uint8Array } | null = null;
    const result = await this.world.event(`connect c${client.index} h${link.id} (http)${replaces ? ` replacing ${shortId(replaces)}` : ""}`, "connect", async () => {
      this.connecting = link;
      try {
        opened = await this.registry!.start(grant, replaces);
      } finally {
        this.connecting = null;
      }
      this.gate(link, opened.answer, "open", 0);
    });
    const started = opened as { id: string; answer: Uint8Array } | null;
    if (result.killed || result.threw || started === null) {
      // The open answered 500 or never: the client's HttpSocket closes 1006 before it opened.
      // (A session the room made before its connect threw stays until its join timeout.)
      link.abandon();
      client.openFailed(this.world.now);
      return;
    }
    link.sessionId = started.id;
    link.grant = grant;
    this.links.push(link);
    client.open(link, this.world.now);
  }

  /** Delivers the next request on `link` to the room. */
  async deliverRequest(link: HttpLink, index = 0): Promise<void> {
    const [request] = link.toServer.splice(index, 1);
    if (request === undefined) return;
    const grant = link.grant!;
    if (grant.expiresAt !== null && this.world.now >= grant.expiresAt) {
      // The Worker's door checks the token of every request: 401, which the client reads as 4401.
      this.world.note("http401");
      this.world.print?.(`    h${link.id} ${request.kind} refused at the door: token expired`);
      const to = request.kind === "post" && request.raw ? "raw" : request.kind;
      if (to !== "leave" && !link.clientGone) link.toClient.push({ to, cursor: 0, frames: [], close: { code: CloseCode.tokenExpired, reason: "token expired" } });
      return;
    }
    const owner = grant.owner;
    const label = `c${link.client} h${link.id}`;
    switch (request.kind) {
      case "poll": {
        const { cursor } = request;
        const result = await this.world.event(`poll ${label} cursor ${cursor}`, "socket", async () => {
          const polled = this.registry!.poll(link.sessionId, owner, cursor);
          if (polled instanceof Uint8Array) return this.gate(link, polled, "poll", cursor);
          if (link.held !== null) this.world.violate("harness", `h${link.id} polled while a poll of it was held`);
          const held: HeldPoll = { cursor, since: this.world.now, release: polled.release, answer: null };
          void polled.held.then((bytes) => (held.answer = bytes));
          link.held = held;
        });
        if (result.killed || result.threw) this.fail(link);
        return;
      }
      case "post": {
        const { seq, frames, raw } = request;
        const body = raw ?? encodeFrames(frames);
        const what = raw ? `a raw body of ${raw.byteLength} B` : frames.map((frame) => describeFrame(frame.slice().buffer)).join(" ");
        const result = await this.world.event(`post ${label} seq ${seq}: ${what}`, "socket", async () => {
          // The room reads the body as worker/room/http-fallback.ts does: frame by frame, as it handles them.
          this.gate(link, await this.registry!.receive(link.sessionId, owner, seq, decodeFrames(body)), raw ? "raw" : "post", 0);
        });
        if (result.killed || result.threw) this.fail(link);
        return;
      }
      case "leave":
        await this.world.event(`leave ${label}`, "socket", () => this.registry!.leave(link.sessionId, owner));
        return;
    }
  }

  /** Delivers the next answer on `link` to its client: HttpSocket.deliver, then the next poll or POST. */
  deliverAnswer(link: HttpLink): void {
    const answer = link.toClient.shift();
    if (answer === undefined || link.clientGone) return;
    const client = this.world.clients[link.client];
    if (client === undefined || client.socket !== link) return;
    this.world.note(`rx${answer.to}${answer.frames.length}`);
    this.world.print?.(`    c${client.index} h${link.id} <- ${answer.to} answer, cursor ${answer.cursor}, ${answer.frames.length} frames${answer.close ? `, close ${answer.close.code} ${answer.close.reason}` : ""}`);
    link.cursor = Math.max(link.cursor, answer.cursor);
    for (const frame of answer.frames) {
      if (client.socket !== link) return;
      link.noteHeard(frame.frame);
      client.receive(frame, this.world.now);
    }
    if (client.socket !== link) return;
    if (answer.close !== null) {
      client.receive({ close: answer.close }, this.world.now);
      return;
    }
    link.queued = link.queued.filter((entry) => entry.seq > link.cursor);
    if (answer.to === "post") link.posted();
    else if (answer.to !== "raw") link.poll();
  }

  /** A request of `link` failed (the object died under it, or it answered 500): HttpSocket closes with 1006. */
  private fail(link: HttpLink): void {
    link.releaseHeld();
    if (link.clientGone || link.toClient.at(-1)?.to === "fail") return;
    this.world.note("httpfail");
    link.toClient.push({ to: "fail", cursor: 0, frames: [], close: { code: 1006, reason: "" } });
  }

  // --- The network ---------------------------------------------------------------------------

  /** Links with something in flight (of client `c`), oldest first. */
  busy(c?: number): HttpLink[] {
    return this.links.filter((link) => (c === undefined || link.client === c) && link.inFlight > 0);
  }

  get inFlight(): number {
    return this.links.reduce((sum, link) => sum + link.inFlight, 0);
  }

  /** A `deliver` step on one of a client's links: up to `n` requests and answers, as on a socket. */
  async deliver(link: HttpLink, step: Extract<Step, { k: "deliver" }>): Promise<void> {
    for (let i = 0; i < step.n; i++) {
      const out = step.dir === "out" || (step.dir === "both" && i % 2 === 0);
      if (out && link.toClient.length > 0 && !link.clientGone) this.deliverAnswer(link);
      else if (link.toServer.length > 0) await this.deliverRequest(link);
      else if (step.dir === "both" && link.toClient.length > 0 && !link.clientGone) this.deliverAnswer(link);
      else break;
    }
  }

  /** One round of deliverAll: an item each way on every link with something in flight. Returns how many links moved. */
  async deliverRound(stop: () => boolean): Promise<number> {
    const links = this.busy();
    for (const link of links) {
      if (stop()) return links.length;
      if (!link.clientGone && link.toClient.length > 0) this.deliverAnswer(link);
      if (link.toServer.length > 0) await this.deliverRequest(link);
    }
    this.prune();
    return links.length;
  }

  /** An `http` step: the network around client `c`'s current link. */
  async step(client: SimClient, act: Extract<Step, { k: "http" }>["act"]): Promise<void> {
    const link = client.socket;
    if (act === "switch") return this.switchTransport(client);
    if (!(link instanceof HttpLink)) return;
    switch (act) {
      case "poll":
      case "post": {
        // This request reaches the room ahead of the others in flight.
        const index = link.toServer.findIndex((request) => request.kind === act);
        if (index >= 0) await this.deliverRequest(link, index);
        return;
      }
      case "losePoll": {
        // A poll still on its way reaches the room first, then its answer is lost (or the held
        // poll is cut): HttpSocket's fetch fails, and it never polls again (no retry): it
        // finishes with 1006 and the provider joins again with a new session.
        const index = link.toServer.findIndex((request) => request.kind === "poll");
        if (index >= 0) await this.deliverRequest(link, index);
        if (client.socket !== link) return;
        const held = link.releaseHeld();
        const answer = link.toClient.findIndex((item) => item.to === "poll" || item.to === "hold");
        if (held === null && answer < 0) return;
        this.loseAnswer(link, answer, held ? "held poll was cut" : "poll's answer was lost");
        return;
      }
      case "losePost": {
        // The room handles the POST and its answer is lost: as for a poll, the request failed
        // and HttpSocket finishes with 1006 (the provider's next session sends its state again).
        const index = link.toServer.findIndex((request) => request.kind === "post" && request.raw === undefined);
        if (index >= 0) await this.deliverRequest(link, index);
        if (client.socket !== link) return;
        const answer = link.toClient.findIndex((item) => item.to === "post");
        if (answer < 0) return;
        this.loseAnswer(link, answer, "POST's answer was lost");
        return;
      }
    }
  }

  /** A request's answer never comes (`answer`: its place among those on the way, or -1 for a held poll cut): the fetch fails where it would have arrived. */
  private loseAnswer(link: HttpLink, answer: number, what: string): void {
    this.world.note("loseanswer");
    this.world.print?.(`    h${link.id}: the ${what}; the request fails (1006)`);
    const failed: HttpAnswer = { to: "fail", cursor: 0, frames: [], close: { code: 1006, reason: "" } };
    if (answer >= 0) link.toClient.splice(answer, 1, failed);
    else link.toClient.push(failed);
  }

  /**
   * client/fallback.ts changes transport. On HTTP a probe WebSocket opened: the chooser closes
   * the HTTP connection (`close(1000, …)`: its DELETE, and the provider's close event, after
   * which it reconnects, by WebSocket). On a WebSocket, they stopped working (the network
   * changed): the socket drops, and the attempts that follow go over HTTP.
   */
  private switchTransport(client: SimClient): void {
    if (!this.active) return;
    const link = client.socket;
    client.transport = client.transport === "http" ? "ws" : "http";
    this.world.note(`switch${client.transport}`);
    this.world.print?.(`    c${client.index}: the next connection goes by ${client.transport === "http" ? "HTTP" : "WebSocket"}`);
    if (link instanceof HttpLink) {
      client.receive({ close: { code: 1000, reason: "websockets work again" } }, this.world.now);
      link.clientClose();
    } else if (link !== null) {
      client.dropConnection(this.world.now, false);
    }
  }

  /** When the Worker next ends a held poll (Infinity: none held). */
  nextHoldEnd(): number {
    let next = Infinity;
    for (const link of this.links) if (link.held !== null) next = Math.min(next, link.held.since + POLL_HOLD_MS);
    return next;
  }

  /** The Worker ends the polls held for {@link POLL_HOLD_MS}: an empty answer, the same cursor; the client polls again. */
  endHolds(now: number): void {
    for (const link of this.links) {
      const held = link.held;
      if (held === null || held.since + POLL_HOLD_MS > now) continue;
      if (held.answer !== null) this.world.violate("harness", `h${link.id}'s held poll was answered outside an event`);
      link.releaseHeld();
      this.world.note("hold");
      if (!link.clientGone) link.toClient.push({ to: "hold", cursor: held.cursor, frames: [], close: null });
    }
  }

  /** Forgets links nothing more can happen on. */
  prune(): void {
    for (let i = this.links.length - 1; i >= 0; i--) {
      const link = this.links[i]!;
      if (link.clientGone && link.toServer.length === 0 && link.held === null) this.links.splice(i, 1);
    }
  }

  // --- The room's side -----------------------------------------------------------------------

  /** Records what the core sends the session being opened (its frames, to check and stamp answers). */
  private watch(session: HttpSession): void {
    const link = this.connecting;
    if (link === null) {
      this.world.violate("harness", "an HTTP session was connected outside a connect request");
      return;
    }
    link.session = session;
    const send = session.send.bind(session);
    session.send = (frame: Uint8Array) => {
      const ended = session.ended;
      send(frame);
      // Dropped after the end, or the end itself (the queue bound): nothing was queued.
      if (ended !== null || session.ended !== null) return;
      link.serverSeq++;
      if (link.clientGone) return;
      link.queued.push({ seq: link.serverSeq, frame: frame.slice(), committed: false });
      this.touched.add(link);
    };
  }

  /** A frame handed to the core for a session already ended: like a frame from a closed socket, it must change nothing. */
  private async messageAfterEnd(core: SimulatedCore, session: HttpSession, frame: ArrayBuffer): Promise<void> {
    const before = this.world.documentState();
    await core.message(session, frame);
    const after = this.world.documentState();
    if (after !== before) this.world.violate("closed-means-closed", `a frame of an HTTP session that had ended (${session.ended?.code}) changed the document: ${before} -> ${after}`);
  }

  private gate(link: HttpLink, bytes: Uint8Array, to: HttpAnswer["to"], cursor: number): void {
    this.gated.push({ link, bytes, to, cursor });
  }

  /** An answer leaves the object: checked against what the room sent the session, then on its way to the client. */
  private releaseAnswer(link: HttpLink, bytes: Uint8Array, to: HttpAnswer["to"], asked: number): void {
    let decoded: ReturnType<typeof decodeAnswer>;
    try {
      decoded = decodeAnswer(bytes);
    } catch (error) {
      this.world.violate("http-order", `h${link.id}: the room's answer could not be decoded: ${describe(error)}`);
      return;
    }
    const frames: FrameToClient[] = [];
    const count = decoded.frames.length;
    if (count > 0 && !link.clientGone) {
      const first = decoded.cursor - count + 1;
      if (to === "post" || to === "raw") this.world.violate("http-order", `h${link.id}: the answer to a POST carried ${count} frames`);
      else if (first !== asked + 1) this.world.violate("http-order", `h${link.id}: the answer to a poll at cursor ${asked} starts at frame ${first} (cursor ${decoded.cursor}, ${count} frames)`);
      const base = link.queued[0]?.seq ?? 0;
      for (const [i, frame] of decoded.frames.entries()) {
        const entry = link.queued[first + i - base];
        if (entry === undefined || entry.seq !== first + i || !sameBytes(entry.frame, frame)) {
          this.world.violate("http-order", `h${link.id}: frame ${first + i} of an answer is not the frame the room sent the session as number ${first + i}`);
          return;
        }
        if (!entry.committed) this.world.violate("http-gate", `h${link.id}: frame ${entry.seq} left in an answer before the event that sent it committed`);
        frames.push({ frame, releasedAt: this.world.now, ...(entry.storedClock === undefined ? {} : { storedClock: entry.storedClock }) });
      }
    }
    this.world.note(`answer${to}${count}${decoded.close ? `close${decoded.close.code}` : ""}`);
    this.world.print?.(
      `      -> h${link.id} ${to} answer, cursor ${decoded.cursor}: ${decoded.frames.map((frame) => describeFrame(frame.slice().buffer)).join(" ") || "no frames"}${decoded.close ? `, close ${decoded.close.code} ${decoded.close.reason}` : ""}${link.clientGone ? " (nobody reads it)" : ""}`,
    );
    if (link.clientGone) return;
    link.toClient.push({ to, cursor: decoded.cursor, frames, close: decoded.close });
  }
}

function shortId(id: string): string {
  return `#${id.replace(/^0+/, "")}`;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
