/**
 * A y-websocket client for tests inside workerd: a real Y.Doc and y-protocols Awareness
 * speaking the wire protocol over a real WebSocket to the Worker. It behaves like the stock
 * provider (step 1 on open, answers the server's step 1, sends its edits and its own
 * awareness) and also lets a test send raw frames.
 */
import { SELF, runDurableObjectAlarm } from "cloudflare:test";
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import * as awarenessProtocol from "y-protocols/awareness";
import * as syncProtocol from "y-protocols/sync";
import * as Y from "yjs";
import { MessageType, PONG, QUIET_CLIENT_PARAM, QUIET_PROBE } from "../../worker/protocol";

/** Every wait in these tests gives up after this long, so a broken test fails instead of hanging. */
export const WAIT_MS = 5_000;

export interface Closed {
  code: number;
  reason: string;
}

/** How often {@link waitFor} checks. */
const POLL_MS = 10;

/**
 * Polls `check` until it holds; throws with `what` after `timeoutMs`. The time is counted in
 * polls, not read from `Date`: tests fake `Date` (`vi.setSystemTime`), which then stands still.
 */
export async function waitFor(check: () => boolean, what: string, timeoutMs = WAIT_MS): Promise<void> {
  for (let polls = Math.ceil(timeoutMs / POLL_MS); !check(); polls--) {
    if (polls <= 0) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * Yjs's bytes as the body of `POST /api/docs/:name/update`: a Blob typed
 * `application/octet-stream`, so fetch sends the Content-Type the API requires (it refuses
 * others with 415: docs/api.md#cross-site-writes).
 */
export const asBody = (bytes: Uint8Array): Blob => new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "application/octet-stream" });

/** Runs the room's alarm as soon as one is set (e.g. the idle alarm after the last socket left). */
export async function runAlarmWhenSet(stub: DurableObjectStub, what: string, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await runDurableObjectAlarm(stub))) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for the alarm: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A unique document name per test, so tests never share a room. */
export function roomName(label: string): string {
  return `${label}-${crypto.randomUUID().slice(0, 8)}`;
}

/**
 * How a test client presents itself: a token (as `?token=`), extra headers such as Origin, and
 * whether it is a quiet client (`?presence=socket`, docs/protocol.md "Quiet clients").
 */
export interface ConnectOptions {
  token?: string;
  headers?: Record<string, string>;
  quiet?: boolean;
}

/** The upgrade request a client sends for `room`. */
export function upgradeRequest(room: string, { token, headers = {}, quiet = false }: ConnectOptions = {}): Request {
  const params = new URLSearchParams();
  if (quiet) params.set(QUIET_CLIENT_PARAM.name, QUIET_CLIENT_PARAM.value);
  if (token !== undefined) params.set("token", token);
  const query = params.toString();
  return new Request(`http://edgedoc.test/ws/${room}${query === "" ? "" : `?${query}`}`, { headers: { Upgrade: "websocket", ...headers } });
}

/** Opens a raw WebSocket to `/ws/<room>` through the Worker. */
export async function openSocket(room: string, options: ConnectOptions = {}): Promise<WebSocket> {
  const response = await SELF.fetch(upgradeRequest(room, options));
  const socket = response.webSocket;
  if (!socket) throw new Error(`upgrade refused: ${response.status} ${await response.text()}`);
  socket.accept();
  // workerd delivers binary frames as Blob unless told otherwise (standard WebSocket default).
  socket.binaryType = "arraybuffer";
  return socket;
}

export class TestClient {
  readonly doc = new Y.Doc();
  readonly awareness = new awarenessProtocol.Awareness(this.doc);
  /** Binary frames received, in order. */
  readonly received: Uint8Array[] = [];
  /** Text frames received, in order: the room's `probe` (quiet clients) and the runtime's `pong`. */
  readonly texts: string[] = [];
  closed: Closed | null = null;
  /** Reasons of "permission denied" auth messages received. */
  readonly permissionDenied: string[] = [];
  private serverSynced = false;
  private closing = false;
  /** The newest clock of this client's own presence that the room echoed back. */
  private echoedClock = -1;

  /** `quiet`: as the app's quiet client, without y-protocols' timers (client/quiet-presence.ts stops them on quiet sockets). */
  private constructor(
    readonly socket: WebSocket,
    quiet: boolean,
  ) {
    if (quiet) clearInterval(this.awareness._checkInterval);
    this.awareness.setLocalState(null);
    socket.addEventListener("message", (event) => this.onMessage(event.data));
    socket.addEventListener("close", (event) => {
      this.closed = { code: event.code, reason: event.reason };
      this.awareness.destroy();
    });
    this.doc.on("update", (update: Uint8Array, origin: unknown) => {
      if (origin !== this) this.sendRaw(syncFrame((encoder) => syncProtocol.writeUpdate(encoder, update)));
    });
    this.awareness.on("update", ({ added, updated, removed }: AwarenessChanges, origin: unknown) => {
      const own = [...added, ...updated, ...removed].filter((id) => id === this.doc.clientID);
      if (origin === this || own.length === 0) return;
      this.sendAwareness(awarenessProtocol.encodeAwarenessUpdate(this.awareness, own));
    });
    this.sendRaw(syncFrame((encoder) => syncProtocol.writeSyncStep1(encoder, this.doc)));
  }

  /** Opens a client on `room` without waiting for anything. */
  static async open(room: string, options: ConnectOptions = {}): Promise<TestClient> {
    return new TestClient(await openSocket(room, options), options.quiet === true);
  }

  /** Connects to `room` and waits until the server's document has been received. */
  static async connect(room: string, options: ConnectOptions = {}): Promise<TestClient> {
    const client = await TestClient.open(room, options);
    await waitFor(() => client.serverSynced, "initial sync");
    return client;
  }

  /** Connects `count` clients to `room` at once. */
  static connectMany(room: string, count: number): Promise<TestClient[]> {
    return Promise.all(Array.from({ length: count }, () => TestClient.connect(room)));
  }

  get text(): string {
    return this.doc.getText("codemirror").toString();
  }

  insert(index: number, text: string): void {
    this.doc.getText("codemirror").insert(index, text);
  }

  setPresence(state: Record<string, unknown>): void {
    this.awareness.setLocalState(state);
  }

  /** Awareness states this client currently sees, by client ID (its own included). */
  presence(): Map<number, Record<string, unknown>> {
    return this.awareness.getStates() as Map<number, Record<string, unknown>>;
  }

  /**
   * Resolves once the room has stored every edit this client sent, as an app learns it: it
   * changes its presence and waits for the room's echo of it, which the room sends only after
   * writing what it holds (docs/storage.md).
   */
  async saved(): Promise<void> {
    this.setPresence({ ...this.awareness.getLocalState(), savedMark: Math.random() });
    const clock = this.awareness.meta.get(this.doc.clientID)!.clock;
    await waitFor(() => this.echoedClock >= clock, "the room to confirm the edits are stored");
  }

  sendRaw(frame: Uint8Array | string): void {
    if (this.closed || this.closing) return;
    try {
      this.socket.send(frame);
    } catch {
      // The server closed the socket and its close event has not arrived yet: nothing to send to.
    }
  }

  sendAwareness(update: Uint8Array): void {
    const encoder = encoding.createEncoder();
    encoding.writeVarUint(encoder, MessageType.awareness);
    encoding.writeVarUint8Array(encoder, update);
    this.sendRaw(encoding.toUint8Array(encoder));
  }

  async waitForClose(): Promise<Closed> {
    await waitFor(() => this.closed !== null, "the server to close the socket");
    return this.closed!;
  }

  close(): void {
    this.closing = true;
    this.socket.close(1000, "test done");
    this.awareness.destroy();
  }

  /** Records the clock of this client's own state in an awareness update from the room. */
  private noteOwnEcho(update: Uint8Array): void {
    const decoder = decoding.createDecoder(update);
    for (let entries = decoding.readVarUint(decoder); entries > 0; entries--) {
      const clientId = decoding.readVarUint(decoder);
      const clock = decoding.readVarUint(decoder);
      decoding.readVarString(decoder);
      if (clientId === this.doc.clientID) this.echoedClock = Math.max(this.echoedClock, clock);
    }
  }

  private onMessage(data: unknown): void {
    if (typeof data === "string") {
      // The only text frames a client hears (docs/protocol.md): the room's probe of a quiet client, the runtime's answer to `ping`.
      if (data !== QUIET_PROBE && data !== PONG) throw new Error(`unexpected text frame: ${data}`);
      this.texts.push(data);
      return;
    }
    if (!(data instanceof ArrayBuffer)) throw new Error(`unexpected frame: ${String(data)}`);
    const frame = new Uint8Array(data);
    this.received.push(frame);
    const decoder = decoding.createDecoder(frame);
    const type = decoding.readVarUint(decoder);
    if (type === MessageType.sync) {
      const reply = encoding.createEncoder();
      encoding.writeVarUint(reply, MessageType.sync);
      const syncType = syncProtocol.readSyncMessage(decoder, reply, this.doc, this);
      if (syncType === syncProtocol.messageYjsSyncStep2) this.serverSynced = true;
      if (encoding.length(reply) > 1) this.sendRaw(encoding.toUint8Array(reply));
    } else if (type === MessageType.awareness) {
      const update = decoding.readVarUint8Array(decoder);
      this.noteOwnEcho(update);
      awarenessProtocol.applyAwarenessUpdate(this.awareness, update, this);
    } else if (type === MessageType.auth) {
      decoding.readVarUint(decoder);
      this.permissionDenied.push(decoding.readVarString(decoder));
    }
  }
}

interface AwarenessChanges {
  added: number[];
  updated: number[];
  removed: number[];
}

/** A sync frame: the sync message type, then what `write` adds. */
export function syncFrame(write: (encoder: encoding.Encoder) => void): Uint8Array {
  const encoder = encoding.createEncoder();
  encoding.writeVarUint(encoder, MessageType.sync);
  write(encoder);
  return encoding.toUint8Array(encoder);
}

/**
 * Two updates of one client, `text` each: `second` depends on `first`, so a room that gets
 * `second` alone must keep it waiting until `first` arrives.
 */
export function updatesWithMissingDependency(clientId: number, text: string): { first: Uint8Array; second: Uint8Array } {
  const doc = new Y.Doc();
  doc.clientID = clientId;
  const ytext = doc.getText("codemirror");
  ytext.insert(0, text);
  const first = Y.encodeStateAsUpdate(doc);
  const stateAfterFirst = Y.encodeStateVector(doc);
  ytext.insert(ytext.length, text);
  return { first, second: Y.encodeStateAsUpdate(doc, stateAfterFirst) };
}
