/**
 * The room's side of the HTTP fallback (docs/protocol.md, "HTTP fallback"): turns the requests
 * the Worker forwards from `/sync/:name` into calls on the room's HTTP sessions
 * (worker/room/http-sessions.ts) and their answers into responses. A poll with nothing to
 * answer is a streamed body written when a frame comes; the Worker stops waiting for it after
 * `POLL_HOLD_MS` and cancels the stream, which releases the wait here (the room keeps no timer).
 */
import { grantFrom } from "../access";
import { SESSION_HEADER, decodeFrames, type HttpSessions } from "./http-sessions";

const ANSWER_HEADERS = { "Content-Type": "application/octet-stream", "Cache-Control": "no-store" };

/**
 * `durable`: resolves once the room's writes so far are on disk (`ctx.storage.sync()`). A
 * returned response waits for them by the output gate; a held poll's body is written later,
 * from a promise, so it waits for them itself: an answer may carry a save confirmation.
 */
export async function answerHttpFallback(sessions: HttpSessions, request: Request, durable: () => Promise<void>): Promise<Response> {
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
      const frames = decodeFrames(new Uint8Array(await request.arrayBuffer()));
      return new Response(await sessions.receive(id, owner, seq, frames), { headers: ANSWER_HEADERS });
    }
    case "DELETE":
      await sessions.leave(id, owner);
      return new Response(null, { status: 204 });
    default:
      return new Response("method not allowed", { status: 405 });
  }
}
