/**
 * client/saved.ts in Node (no Chromium, no server): which awareness echoes count as the
 * server's confirmation. Frames are handed to the provider's message handler the way its
 * WebSocket (fromServer = true) or another tab's BroadcastChannel (false) would.
 */
import * as decoding from "lib0/decoding";
import * as encoding from "lib0/encoding";
import { afterEach, describe, expect, it } from "vitest";
import { WebsocketProvider } from "y-websocket";
import * as Y from "yjs";
import { SaveTracker } from "../../client/saved";
import { encodeAwareness } from "../../worker/protocol";

const providers: WebsocketProvider[] = [];
afterEach(() => providers.splice(0).forEach((provider) => (provider.destroy(), provider.doc.destroy())));

/** A provider that believes it is connected and synced, a tracker on it, and one local edit after which our state was sent. */
function trackerWithOneEdit() {
  const provider = new WebsocketProvider("ws://127.0.0.1:9/ws", "saved", new Y.Doc(), { connect: false, disableBc: true });
  providers.push(provider);
  const tracker = new SaveTracker(provider, () => {});
  provider.wsconnected = true;
  provider.synced = true;
  provider.doc.getText("codemirror").insert(0, "an edit");
  provider.awareness.setLocalStateField("user", { name: "Ada", color: "#abc" });
  const clock = provider.awareness.meta.get(provider.doc.clientID)!.clock;
  const sent = JSON.stringify(provider.awareness.getLocalState());
  /** Hands the provider an awareness frame carrying our client id with `clock` and `state`. */
  const receive = (state: string, echoClock: number, fromServer = true) => {
    const decoder = decoding.createDecoder(encodeAwareness([{ clientId: provider.doc.clientID, clock: echoClock, state }]));
    const messageType = decoding.readVarUint(decoder);
    provider.messageHandlers[messageType]!(encoding.createEncoder(), decoder, provider, fromServer, messageType);
  };
  expect(tracker.unconfirmed).toBe(true);
  return { tracker, clock, sent, receive };
}

describe("the save confirmation", () => {
  it("comes from the server echoing the state we sent, at the clock we sent it", () => {
    const { tracker, clock, sent, receive } = trackerWithOneEdit();
    receive(sent, clock);
    expect(tracker.unconfirmed).toBe(false);
  });

  it("does not come from another state under our clock", () => {
    const { tracker, clock, receive } = trackerWithOneEdit();
    receive(JSON.stringify({ user: { name: "Mallory", color: "#f00" } }), clock);
    expect(tracker.unconfirmed).toBe(true);
  });

  it("does not come from our state under a clock we never sent", () => {
    const { tracker, clock, sent, receive } = trackerWithOneEdit();
    receive(sent, clock + 5);
    expect(tracker.unconfirmed).toBe(true);
  });

  it("does not come from another tab re-broadcasting our state", () => {
    const { tracker, clock, sent, receive } = trackerWithOneEdit();
    receive(sent, clock, false);
    expect(tracker.unconfirmed).toBe(true);
  });
});
