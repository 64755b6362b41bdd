/**
 * The room's side of the HTTP fallback (docs/protocol.md, "HTTP fallback"): turns the requests
 * the Worker forwards from `/sync/:name` into calls on the room's HTTP sessions
 * (worker/room/http-sessions.ts) and their answers into responses. A poll with nothing to
 * answer is a streamed body written when a frame comes; the Worker stops waiting for it after
 * `POLL_HOLD_MS` and cancels the stream, which releases the wait here (the room keeps no timer).
 *
 * A post's body is read only once its session is known to be open and this token's, one post
 * of a session at a time (as a socket delivers one message at a time), and only as far as one
 * request may carry (worker/room/body-frames.ts): bodies for unknown or ended sessions are
 * answered unread, so they cost the room nothing however large.
 */
import { grantFrom } from "../access";
import { readBodyFrames } from "./body-frames";
import { HttpSession, type HttpSessions } from "./http-sessions";
import { ANSWER_HEADERS, SESSION_HEADER, decodeFrames, encodeAnswer } from "./http-wire";


/** What the room's side needs of the room besides its sessions. */
export interface FallbackRoom {
  /**
   * Resolves once the room's writes so far are on disk (`ctx.storage.sync()`). A returned
   * response waits for them by the output gate; a held poll's body is written later, from a
   * promise, so it waits for them itself: an answer may carry a save confirmation.
   */
  durable: () => Promise<void>;
  /** `MAX_FRAME_BYTES` as the room applies it: no frame of a post is read past it. */
  maxFrameBytes: number;
  /** What the session may still send (its byte rate, as the core charges each frame): no more of a body is read. */
  bytesAllowed: (session: HttpSession) => number;
}

/** Each session's post being read: the next post of the session waits for it, so one body at a time is in memory. */
const postsBeingRead = new WeakMap<HttpSession, Promise<unknown>>();

export async function answerHttpFallback(sessions: HttpSessions, request: Request, { durable, maxFrameBytes, bytesAllowed }: FallbackRoom): Promise<Response> {
  const url = new URL(request.url);
  const id = url.searchParams.get("session");
  const grant = grantFrom(request);
  const { owner } = grant;
  if (id === null) {
    if (request.method !== "POST") return new Response("open a session with POST first", { status: 400 });
    const { id: opened, answer } = await sessions.start(grant, url.searchParams.get("replaces"));
    return new Response(answer, { headers: { ...ANSWER_HEADERS, [SESSION_HEADER]: opened } });
  }
  switch (request.method) {
    case "GET": {
      const cursor = Number(url.searchParams.get("cursor") ?? "0");
      const polled = sessions.poll(id, owner, cursor);
      if (polled instanceof Uint8Array) return new Response(polled, { headers: ANSWER_HEADERS });
      const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
      const writer = writable.getWriter();
      // The Worker cancelling the stream (it stopped holding the poll) errors the writer.
      writer.closed.catch(polled.release);
      void polled.held.then(async (answer) => {
        await durable();
        await writer.write(answer);
        await writer.close();
      }).catch(polled.release);
      return new Response(readable, { headers: ANSWER_HEADERS });
    }
    case "POST": {
      const seq = Number(url.searchParams.get("seq") ?? "NaN");
      if (!Number.isSafeInteger(seq) || seq < 1) return new Response("seq must be a positive integer", { status: 400 });
      const session = sessions.find(id, owner);
      if (!(session instanceof HttpSession)) return answerUnread(request, session);
      const previous = postsBeingRead.get(session) ?? Promise.resolve();
      const answered = previous.then(async () => {
        // The previous post may have ended the session: this body is not read either.
        if (session.ended) return answerUnread(request, encodeAnswer(0, [], session.ended));
        const { bytes, close } = await readBodyFrames(request.body, { maxFrameBytes, bytesAllowed: bytesAllowed(session) });
        const answer = await sessions.receive(id, owner, seq, decodeFrames(bytes));
        if (close === null || session.ended) return new Response(answer, { headers: ANSWER_HEADERS });
        session.end(close);
        return new Response(encodeAnswer(0, [], close), { headers: ANSWER_HEADERS });
      });
      postsBeingRead.set(session, answered.catch(() => {}));
      return answered;
    }
    case "DELETE":
      await sessions.leave(id, owner);
      return new Response(null, { status: 204 });
    default:
      return new Response("method not allowed", { status: 405 });
  }
}

/** Answers a post with `answer` without reading its body: the runtime drops what the client still sends. */
async function answerUnread(request: Request, answer: Uint8Array): Promise<Response> {
  await request.body?.cancel().catch(() => {});
  return new Response(answer, { headers: ANSWER_HEADERS });
}
