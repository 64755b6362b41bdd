/**
 * Quiet clients (docs/protocol.md, "Quiet clients"; issue 31): a WebSocket opened with
 * `?presence=socket` keeps its presence while it lives, is judged by probes instead of by its
 * silence, is shown to stock providers under renewed clocks, and lets a room of idle people
 * sleep. Stock providers keep every old rule; those rules have their own tests, which these do
 * not repeat: 4000 after 30 s without a frame and the 30 s presence sweep
 * (presence.test.ts "sweeps a client that stopped renewing...", budgets.test.ts "closes a joined
 * socket that sends nothing..."), 4001 without a join in 10 s (budgets.test.ts,
 * test/guarded/silent-sockets.test.ts). Here a stock socket stands beside quiet ones to show
 * that the rules stay apart.
 *
 * The room's clock is moved with vitest's fake `Date` (which the object shares). The runtime's
 * own clock is not faked: the time it answered a `ping` (`getWebSocketAutoResponseTimestamp`)
 * is real, so a test of a `ping` as a sign of life puts the join in the past rather than the
 * check in the future.
 */
import { env, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import * as decoding from "lib0/decoding";
import * as awarenessProtocol from "y-protocols/awareness";
import * as Y from "yjs";
import { afterEach, describe, expect, it, vi } from "vitest";
import { QUIET_CHECK_INTERVAL_MS, QUIET_PROBE_AFTER_MS, QUIET_PROBE_GRACE_MS, QUIET_RENEWAL_INTERVAL_MS } from "../../worker/limits";
import { AWARENESS_TIMEOUT_MS, CloseCode, MessageType, PING, PONG, QUIET_PROBE, readAwarenessEntries } from "../../worker/protocol";
import { TestClient, openSocket, roomName, waitFor, type Closed } from "./client";

afterEach(() => {
  vi.useRealTimers();
});

const stub = (room: string) => env.ROOM.get(env.ROOM.idFromName(room));

/** Stops the room's clock (and ours) at `at`: every time the room records is then known to the test. */
function stopClockAt(at = Date.now()): number {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(at);
  return at;
}

/** When the room's alarm is set for, or null. */
const alarmOf = (room: string) => runInDurableObject(stub(room), (_instance, state) => state.storage.getAlarm());

/** Lets frames in flight arrive (there is no event to wait for when a frame must NOT come). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 300));

const sees = (observer: TestClient, client: TestClient, name: string) => observer.presence().get(client.doc.clientID)?.name === name;
/** The clock of an awareness's own state: what it last sent. */
const ownClock = (awareness: awarenessProtocol.Awareness) => awareness.meta.get(awareness.clientID)!.clock;

/** The clocks of `subject`'s presence in every awareness frame `client` heard, in order. */
function clocksHeard(client: TestClient, subject: TestClient): number[] {
  const clocks: number[] = [];
  for (const frame of client.received) {
    const decoder = decoding.createDecoder(frame);
    if (decoding.readVarUint(decoder) !== MessageType.awareness) continue;
    for (const { clientId, clock } of readAwarenessEntries(decoding.readVarUint8Array(decoder))) {
      if (clientId === subject.doc.clientID) clocks.push(clock);
    }
  }
  return clocks;
}

const lastClockHeard = (client: TestClient, subject: TestClient) => clocksHeard(client, subject).at(-1);

/** Quinn, a quiet client with a state the room has stored, and the clock it sent it under. */
async function quinnPresentAndSaved(room: string): Promise<{ quinn: TestClient; sent: number }> {
  const quinn = await TestClient.connect(room, { quiet: true });
  quinn.setPresence({ name: "quinn" });
  await quinn.saved();
  return { quinn, sent: ownClock(quinn.awareness) };
}

describe("a quiet client's presence lives as long as its socket", () => {
  it("outlives the 30 s sweep and 5 minutes of silence, where a stock socket as silent is closed 4000 and removed, and a quiet socket that never joined is closed 4001", async () => {
    const room = roomName("quiet-outlives");
    const start = stopClockAt();
    const quinn = await TestClient.connect(room, { quiet: true });
    quinn.setPresence({ name: "quinn" });
    const stan = await TestClient.connect(room);
    stan.setPresence({ name: "stan" });
    const olive = await TestClient.connect(room, { quiet: true });
    await waitFor(() => sees(olive, quinn, "quinn") && sees(olive, stan, "stan"), "olive to see quinn and stan");
    let neverJoined: Closed | null = null;
    const silentSocket = await openSocket(room, { quiet: true });
    silentSocket.addEventListener("close", (event) => (neverJoined = { code: event.code, reason: event.reason }));

    vi.setSystemTime(start + QUIET_CHECK_INTERVAL_MS + 1_000);
    expect(await runDurableObjectAlarm(stub(room))).toBe(true);

    expect(await stan.waitForClose()).toMatchObject({ code: CloseCode.presenceTimeout, reason: expect.stringMatching(/^presence timed out: no frame/) });
    expect(stan.texts).not.toContain(QUIET_PROBE);
    await waitFor(() => !olive.presence().has(stan.doc.clientID), "stan's presence removed for olive");
    await waitFor(() => neverJoined !== null, "the socket that never joined to be closed");
    expect(neverJoined).toMatchObject({ code: CloseCode.joinTimeout });
    await settle();
    expect(quinn.closed).toBeNull();
    expect(olive.closed).toBeNull();
    expect(sees(olive, quinn, "quinn")).toBe(true);
    // Someone opening the document now finds quinn there, and stan gone.
    const newcomer = await TestClient.connect(room);
    await waitFor(() => sees(newcomer, quinn, "quinn"), "the newcomer to see quinn");
    expect(newcomer.presence().has(stan.doc.clientID)).toBe(false);
  });
});

describe("a silent quiet client is probed", () => {
  it("after 45 s without a sign of life: one that answers with `ping` stays, one that does not is closed 4000 within 10 s (across hibernation) and leaves everyone's list, one that pinged is not probed", async () => {
    const room = roomName("quiet-probed");
    // They join (their last frames) 46 s in the past; from then on the clock is real, as the
    // runtime's time of a `ping` answer is.
    const joinedAt = stopClockAt(Date.now() - QUIET_PROBE_AFTER_MS - 1_000);
    const answering = await TestClient.connect(room, { quiet: true });
    const vanished = await TestClient.connect(room, { quiet: true });
    const pinging = await TestClient.connect(room, { quiet: true });
    answering.setPresence({ name: "answering" });
    vanished.setPresence({ name: "vanished" });
    pinging.setPresence({ name: "pinging" });
    await waitFor(() => sees(answering, vanished, "vanished") && sees(pinging, vanished, "vanished") && sees(answering, pinging, "pinging"), "everyone present");
    // The join deadline's alarm (in the past: the runtime may fire it itself) leaves the periodic check.
    await runDurableObjectAlarm(stub(room));
    expect(await alarmOf(room)).toBe(joinedAt + QUIET_CHECK_INTERVAL_MS);

    vi.useRealTimers();
    pinging.sendRaw(PING);
    await waitFor(() => pinging.texts.includes(PONG), "the runtime's pong");
    const checkedAt = Date.now();
    expect(await runDurableObjectAlarm(stub(room))).toBe(true);
    await waitFor(() => answering.texts.includes(QUIET_PROBE) && vanished.texts.includes(QUIET_PROBE), "the probes");
    answering.sendRaw(PING);
    await waitFor(() => answering.texts.includes(PONG), "the runtime's pong to the answer");
    await settle();
    expect(pinging.texts).not.toContain(QUIET_PROBE);
    // An outstanding probe is the one early wake: its deadline.
    const deadline = (await alarmOf(room))!;
    expect(deadline).toBeGreaterThanOrEqual(checkedAt + QUIET_PROBE_GRACE_MS);
    expect(deadline).toBeLessThanOrEqual(Date.now() + QUIET_PROBE_GRACE_MS);

    // The room sleeps meanwhile: the probe's time rides in the socket's attachment, the answer's in the runtime.
    await evictDurableObject(stub(room));
    stopClockAt(deadline);
    expect(await runDurableObjectAlarm(stub(room))).toBe(true);
    expect(await vanished.waitForClose()).toMatchObject({ code: CloseCode.presenceTimeout, reason: expect.stringMatching(/^presence timed out: no answer to a probe/) });
    await waitFor(() => !answering.presence().has(vanished.doc.clientID) && !pinging.presence().has(vanished.doc.clientID), "vanished removed for the others");
    await settle();
    expect(answering.closed).toBeNull();
    expect(pinging.closed).toBeNull();
    expect(sees(pinging, answering, "answering") && sees(answering, pinging, "pinging")).toBe(true);
    // Both showed a sign of life: no probe outstanding, so the next wake is the periodic check.
    expect(await alarmOf(room)).toBe(deadline + QUIET_CHECK_INTERVAL_MS);
  });
});

describe("stock providers see quiet clients (renewals)", () => {
  it("renews a quiet client's state towards each stock socket on that socket's own frames, at most every 10 s, one clock higher per 10 s since the room first held it; the quiet client's next change is shown above it, and it hears its own clocks only", async () => {
    const room = roomName("quiet-renewed");
    const start = stopClockAt();
    const { quinn, sent } = await quinnPresentAndSaved(room);
    const olive = await TestClient.connect(room, { quiet: true });
    const stan = await TestClient.connect(room);
    const sid = await TestClient.connect(room);
    await waitFor(() => lastClockHeard(stan, quinn) === sent && lastClockHeard(sid, quinn) === sent, "stan and sid to see quinn");
    expect(sees(stan, quinn, "quinn")).toBe(true);

    vi.setSystemTime(start + QUIET_RENEWAL_INTERVAL_MS - 1);
    stan.setPresence({ name: "stan" });
    await stan.saved();
    await settle();
    expect(lastClockHeard(stan, quinn)).toBe(sent);

    vi.setSystemTime(start + QUIET_RENEWAL_INTERVAL_MS);
    await stan.saved();
    await waitFor(() => lastClockHeard(stan, quinn) === sent + 1, "quinn renewed for stan");
    expect(stan.awareness.meta.get(quinn.doc.clientID)?.clock).toBe(sent + 1);
    // Stan's frame renewed stan only: sid is renewed on its own frames.
    await settle();
    expect(lastClockHeard(sid, quinn)).toBe(sent);
    await sid.saved();
    await waitFor(() => lastClockHeard(sid, quinn) === sent + 1, "quinn renewed for sid");

    // Quinn moves under its own next clock, which is not above what stan was shown: stan must still take it.
    quinn.setPresence({ name: "quinn moved" });
    const moved = ownClock(quinn.awareness);
    await waitFor(() => sees(stan, quinn, "quinn moved"), "stan to see quinn move");
    expect(lastClockHeard(stan, quinn)).toBe(moved + 1);
    await waitFor(() => sees(olive, quinn, "quinn moved"), "olive to see quinn move");
    // Quinn's echo (its save confirmation) carries the clock it sent; no renewal of its own state reaches it.
    await waitFor(() => lastClockHeard(quinn, quinn) === moved, "quinn's echo");
    expect(clocksHeard(quinn, quinn).every((clock) => clock <= moved)).toBe(true);
    expect(quinn.presence().get(quinn.doc.clientID)).toEqual({ name: "quinn moved" });
    // Renewals go to renewing sockets only: olive, quiet too, heard quinn's states under the clocks quinn sent.
    expect(clocksHeard(olive, quinn)).toEqual([sent, moved]);
  });

  it("keeps raising the clock through hibernation: a change after the wake is still shown above the last renewal", async () => {
    const room = roomName("quiet-renewed-evicted");
    const start = stopClockAt();
    const { quinn, sent } = await quinnPresentAndSaved(room);
    const stan = await TestClient.connect(room);
    await waitFor(() => lastClockHeard(stan, quinn) === sent, "stan to see quinn");
    vi.setSystemTime(start + 2 * QUIET_RENEWAL_INTERVAL_MS);
    await stan.saved();
    await waitFor(() => lastClockHeard(stan, quinn) === sent + 2, "quinn renewed for stan");
    await evictDurableObject(stub(room));
    quinn.setPresence({ name: "quinn after the wake" });
    await waitFor(() => sees(stan, quinn, "quinn after the wake"), "stan to see quinn's change after the wake");
    expect(lastClockHeard(stan, quinn)).toBe(ownClock(quinn.awareness) + 2);
  });

  it(
    "keeps the quiet client in a real y-protocols Awareness beyond its 30 s timeout while renewals come",
    async () => {
      const room = roomName("quiet-renewed-awareness");
      // y-protocols times states out by the real clock (lib0 keeps the real Date.now), so this test
      // waits for real; only the room's clock is moved, one renewal interval per beat.
      const start = stopClockAt();
      const { quinn, sent } = await quinnPresentAndSaved(room);
      const stan = await TestClient.connect(room);
      await waitFor(() => sees(stan, quinn, "quinn"), "stan to see quinn");
      // The same state without renewals, in an Awareness of its own: it must time out meanwhile.
      const unrenewed = new awarenessProtocol.Awareness(new Y.Doc());
      unrenewed.setLocalState(null);
      awarenessProtocol.applyAwarenessUpdate(unrenewed, awarenessProtocol.encodeAwarenessUpdate(stan.awareness, [quinn.doc.clientID]), "room");
      try {
        const beats = 2;
        for (let beat = 1; beat <= beats; beat++) {
          await new Promise((resolve) => setTimeout(resolve, AWARENESS_TIMEOUT_MS / (beats + 1)));
          vi.setSystemTime(start + beat * QUIET_RENEWAL_INTERVAL_MS);
          stan.setPresence({ name: "stan", beat });
          await waitFor(() => lastClockHeard(stan, quinn) === sent + beat, `renewal ${beat}`);
        }
        await waitFor(() => !unrenewed.getStates().has(quinn.doc.clientID), "y-protocols to time out the unrenewed state", AWARENESS_TIMEOUT_MS);
        expect(sees(stan, quinn, "quinn")).toBe(true);
      } finally {
        unrenewed.destroy();
      }
    },
    AWARENESS_TIMEOUT_MS * 2,
  );
});

describe("a room of idle quiet clients sets no early wake", () => {
  it("sets its alarm 5 minutes out with only quiet clients, also after hibernation, and within 30 s once a stock socket is in", async () => {
    const room = roomName("quiet-alarm");
    const start = stopClockAt();
    const quinn = await TestClient.connect(room, { quiet: true });
    const olive = await TestClient.connect(room, { quiet: true });
    quinn.setPresence({ name: "quinn" });
    olive.setPresence({ name: "olive" });
    await waitFor(() => sees(olive, quinn, "quinn") && sees(quinn, olive, "olive"), "both present");
    // The join deadline passes; what is left is the periodic check of quiet sockets.
    expect(await runDurableObjectAlarm(stub(room))).toBe(true);
    expect(await alarmOf(room)).toBe(start + QUIET_CHECK_INTERVAL_MS);

    await evictDurableObject(stub(room));
    // Waking checks the quiet sockets (at the same stopped time) and sets the next check 5 minutes on.
    expect(await alarmOf(room)).toBe(start + QUIET_CHECK_INTERVAL_MS);
    quinn.setPresence({ name: "quinn moved" });
    await waitFor(() => sees(olive, quinn, "quinn moved"), "quinn's move after the wake");
    expect(await alarmOf(room)).toBe(start + QUIET_CHECK_INTERVAL_MS);

    const stan = await TestClient.connect(room);
    stan.setPresence({ name: "stan" });
    await waitFor(() => sees(quinn, stan, "stan"), "stan present");
    expect(await runDurableObjectAlarm(stub(room))).toBe(true);
    expect((await alarmOf(room))! - start).toBeLessThanOrEqual(AWARENESS_TIMEOUT_MS);
  });
});

describe("a quiet tab that reconnects", () => {
  // The room greets a joiner before it knows the joiner's client ID. Were a quiet tab, whose dead
  // socket the room still holds, greeted with its own state under the clock shown to stock
  // providers (above its own), y-protocols would replace its local state with that stale copy:
  // quiet clients are shown every state under the clocks their senders sent.
  it("keeps its own newer presence when the room, still holding its old socket, sends it the state it renewed", async () => {
    const room = roomName("quiet-reconnect-raised");
    const start = stopClockAt();
    const quinn = await TestClient.connect(room, { quiet: true });
    quinn.setPresence({ name: "quinn", cursor: 1 });
    await quinn.saved();
    const sent = ownClock(quinn.awareness);
    const stan = await TestClient.connect(room);
    vi.setSystemTime(start + 2 * QUIET_RENEWAL_INTERVAL_MS);
    await stan.saved();
    await waitFor(() => lastClockHeard(stan, quinn) === sent + 2, "quinn renewed for stan, two intervals on");

    // Quinn's connection dies without a close reaching the room; its cursor moves once meanwhile,
    // and the tab reconnects on a new socket with the same awareness (same client ID and clock).
    const tabDoc = new Y.Doc();
    tabDoc.clientID = quinn.doc.clientID;
    const tab = new awarenessProtocol.Awareness(tabDoc);
    clearInterval(tab._checkInterval);
    for (let steps = sent; ownClock(tab) < sent && steps > 0; steps--) tab.setLocalState({ name: "quinn", cursor: 1 });
    tab.setLocalState({ name: "quinn", cursor: 2 });
    const socket = await openSocket(room, { quiet: true });
    const heard: Uint8Array[] = [];
    socket.addEventListener("message", (event) => {
      if (event.data instanceof ArrayBuffer) heard.push(new Uint8Array(event.data));
    });
    await waitFor(() => heard.some((frame) => frame[0] === MessageType.awareness), "the room's presence for the joiner");
    for (const frame of heard) {
      const decoder = decoding.createDecoder(frame);
      if (decoding.readVarUint(decoder) === MessageType.awareness) awarenessProtocol.applyAwarenessUpdate(tab, decoding.readVarUint8Array(decoder), "room");
    }
    try {
      expect(tab.getLocalState()).toEqual({ name: "quinn", cursor: 2 });
    } finally {
      tab.destroy();
      socket.close(1000, "test done");
    }
  });
});
