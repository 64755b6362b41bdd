/**
 * Presence that cannot be hidden: stock y-websocket providers against a real `wrangler dev`
 * that requires tokens, with a reader forging awareness for a writer's client ID while the
 * writer reconnects (issue 21, row 5). Observers must show the writer's real state again
 * within a second of its reconnect.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { encodeAwareness } from "../../worker/protocol";
import { signToken } from "../../worker/tokens";
import { disconnectProvider, waitFor } from "./providers";
import { removePersistDir, startDevServer, type DevServer } from "./wrangler";

type ProviderOptions = NonNullable<ConstructorParameters<typeof WebsocketProvider>[3]>;

const AUTH_SECRET = "presence-hiding-test-secret";
/** How soon after its reconnect observers must show the writer: well under the 15 s renewal. */
const SHOWN_WITHIN_MS = 1_000;
/** How far above the writer's clock the forger goes: 100 renewals, 25 minutes of hiding. */
const FORGED_CLOCK_AHEAD = 100;

let server: DevServer;
const providers: WebsocketProvider[] = [];
const sockets: WebSocket[] = [];

beforeAll(async () => {
  server = await startDevServer({ vars: { AUTH_SECRET } });
});

afterAll(async () => {
  for (const socket of sockets) socket.close();
  for (const provider of providers) disconnectProvider(provider);
  await server?.stop();
  if (server) removePersistDir(server.persistDir);
});

function mint(room: string, sub: string, mode: "read" | "write"): Promise<string> {
  return signToken({ doc: room, mode, exp: Math.floor(Date.now() / 1000) + 600, sub, name: sub }, AUTH_SECRET);
}

/** A stock provider with `token`, as an app would open it. */
function open(room: string, token: string): WebsocketProvider {
  const provider = new WebsocketProvider(server.wsUrl, room, new Y.Doc(), {
    WebSocketPolyfill: WebSocket as unknown as ProviderOptions["WebSocketPolyfill"],
    // Providers in one process would otherwise sync through a BroadcastChannel, bypassing the server.
    disableBc: true,
    params: { token },
  });
  providers.push(provider);
  return provider;
}

/** A hand-made socket, to send what no stock provider would. */
async function openSocket(room: string, token: string): Promise<WebSocket> {
  const socket = new WebSocket(`${server.wsUrl}/${room}?token=${token}`);
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  return socket;
}

const nameSeen = (observer: WebsocketProvider, clientId: number) =>
  (observer.awareness.getStates().get(clientId) as { user?: { name?: string } } | undefined)?.user?.name;

/** Both ways a stock provider reconnects: told to (a token swap), and after its socket dropped. */
const reconnects: [string, (writer: WebsocketProvider) => void][] = [
  ["disconnect and connect", (writer) => (writer.disconnect(), writer.connect())],
  // `terminate` drops the TCP connection without a closing handshake, as a network loss does.
  ["its connection dropped", (writer) => (writer.ws as unknown as WebSocket).terminate()],
];

describe("presence that cannot be hidden", () => {
  it.each(reconnects)("observers show a reconnecting writer within 1 s, its real state, whatever a reader forged for its ID (%s)", async (_how, reconnect) => {
    const room = `hiding-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const observer = open(room, await mint(room, "olga", "write"));
    const writer = open(room, await mint(room, "ada", "write"));
    writer.awareness.setLocalStateField("user", { name: "Ada" });
    const writerId = writer.doc.clientID;
    await waitFor(() => nameSeen(observer, writerId) === "Ada", "the writer at the observer");
    const reader = await openSocket(room, await mint(room, "mallory", "read"));
    const forge = (state: string | null) => {
      const clock = writer.awareness.meta.get(writerId)!.clock + FORGED_CLOCK_AHEAD;
      reader.send(encodeAwareness([{ clientId: writerId, clock, state }]));
    };
    let forgedShown = false;
    let removalSeen = false;
    observer.awareness.on("change", ({ removed }: { removed: number[] }) => {
      forgedShown ||= nameSeen(observer, writerId) === "Mallory";
      removalSeen ||= removed.includes(writerId);
    });

    forge(JSON.stringify({ user: { name: "Mallory" } }));
    reconnect(writer);
    await waitFor(() => !writer.wsconnected, "the writer's socket to close");
    // While the writer is away: the forged state, and a forged removal.
    forge(JSON.stringify({ user: { name: "Mallory" } }));
    forge(null);
    await waitFor(() => writer.wsconnected, "the writer to reconnect");
    const reconnectedAt = Date.now();
    forge(JSON.stringify({ user: { name: "Mallory" } }));
    // The observer saw the writer leave (and so its clock); from then on it ignores a state
    // re-sent under that clock. Shown within 1 s, and still shown then (the removal and the
    // return race, so being shown early alone proves nothing).
    await waitFor(() => removalSeen && nameSeen(observer, writerId) === "Ada", "the writer at the observer after its reconnect", SHOWN_WITHIN_MS);
    await new Promise((resolve) => setTimeout(resolve, reconnectedAt + SHOWN_WITHIN_MS - Date.now()));
    expect(nameSeen(observer, writerId)).toBe("Ada");
    expect(forgedShown).toBe(false);
    expect(writer.awareness.getLocalState()).toEqual({ user: { name: "Ada" } });
  });
});
