/**
 * A raw client of the HTTP fallback (`/sync/:name`) for tests inside workerd: it opens a
 * session, posts frames and polls, and hands back what each answer carried (frames, cursor,
 * the close record) so tests can assert on the wire itself.
 */
import { SELF } from "cloudflare:test";
import { SESSION_HEADER, decodeAnswer, encodeFrames, type SessionClose } from "../../worker/room/http-wire";

export interface Answer {
  status: number;
  /** The refusal's text when `status` is not 200. */
  text: string;
  frames: Uint8Array[];
  cursor: number;
  close: SessionClose | null;
}

export interface HttpClientOptions {
  token?: string;
  headers?: Record<string, string>;
}

const BINARY = { "Content-Type": "application/octet-stream" };

async function readAnswer(response: Response): Promise<Answer> {
  if (response.status !== 200) return { status: response.status, text: await response.text(), frames: [], cursor: 0, close: null };
  return { status: 200, text: "", ...decodeAnswer(new Uint8Array(await response.arrayBuffer())) };
}

export class HttpTestClient {
  private nextSeq = 1;
  cursor = 0;

  private constructor(
    readonly room: string,
    readonly session: string | null,
    private readonly options: HttpClientOptions,
  ) {}

  /** `POST /sync/:room`: the open answer and a client bound to the session it opened (null when refused). */
  static async open(room: string, options: HttpClientOptions = {}): Promise<{ client: HttpTestClient; answer: Answer }> {
    const response = await SELF.fetch(HttpTestClient.url(room, options, {}), { method: "POST", headers: { ...BINARY, ...options.headers } });
    const client = new HttpTestClient(room, response.headers.get(SESSION_HEADER), options);
    const answer = await readAnswer(response);
    client.cursor = answer.cursor;
    return { client, answer };
  }

  /** Posts `frames` as the next numbered batch (or from `seq`, to replay one), with this client's token unless `options` say otherwise. */
  async send(frames: Uint8Array[], seq = this.nextSeq, options: HttpClientOptions = this.options): Promise<Answer> {
    const body = new Blob([encodeFrames(frames) as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" });
    const response = await SELF.fetch(HttpTestClient.url(this.room, options, { session: this.session!, seq: String(seq) }), {
      method: "POST",
      headers: options.headers,
      body,
    });
    // Numbers the room took: a request refused at the door (or for another token) used none.
    if (response.status === 200 && options === this.options) this.nextSeq = Math.max(this.nextSeq, seq + frames.length);
    return readAnswer(response);
  }

  /** Polls from the client's cursor (moving it), with another token or cursor if given. */
  async poll(cursor = this.cursor, options: HttpClientOptions = this.options): Promise<Answer> {
    const response = await SELF.fetch(HttpTestClient.url(this.room, options, { session: this.session!, cursor: String(cursor) }), { headers: options.headers });
    const answer = await readAnswer(response);
    if (answer.status === 200) this.cursor = Math.max(this.cursor, answer.cursor);
    return answer;
  }

  async leave(): Promise<number> {
    const response = await SELF.fetch(HttpTestClient.url(this.room, this.options, { session: this.session! }), { method: "DELETE", headers: this.options.headers });
    await response.body?.cancel();
    return response.status;
  }

  private static url(room: string, { token }: HttpClientOptions, query: Record<string, string>): string {
    const url = new URL(`http://edgedoc.test/sync/${room}`);
    if (token !== undefined) url.searchParams.set("token", token);
    for (const [name, value] of Object.entries(query)) url.searchParams.set(name, value);
    return url.toString();
  }
}
