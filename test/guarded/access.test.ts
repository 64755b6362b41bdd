/**
 * A guarded deployment (see vitest.config.ts): AUTH_SECRET, ALLOWED_ORIGINS, MAX_SOCKETS_PER_ROOM=3.
 */
import { SELF, env, listDurableObjectIds } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CloseCode } from "../../worker/protocol";
import { signToken, type AccessMode } from "../../worker/tokens";
import { TestClient, roomName, upgradeRequest, waitFor } from "../worker/client";

const roomStub = (room: string) => env.ROOM.get(env.ROOM.idFromName(room));

function token(doc: string, mode: AccessMode = "write", { ttlSeconds = 600, secret = env.AUTH_SECRET! } = {}): Promise<string> {
  return signToken({ doc, mode, exp: Math.floor(Date.now() / 1000) + ttlSeconds, name: "Tess" }, secret);
}

async function writer(room: string): Promise<TestClient> {
  return TestClient.connect(room, { token: await token(room) });
}

describe("tokens and origins: refused upgrades never wake a room", () => {
  const refusals: { name: string; request: (room: string) => Promise<Request>; status: number; reason: RegExp }[] = [
    { name: "no token", request: async (room) => upgradeRequest(room), status: 401, reason: /token required/ },
    { name: "a malformed token", request: async (room) => upgradeRequest(room, { token: "not.a.jwt" }), status: 401, reason: /token malformed/ },
    {
      name: "a token signed with another secret",
      request: async (room) => upgradeRequest(room, { token: await token(room, "write", { secret: "someone-else" }) }),
      status: 401,
      reason: /signature invalid/,
    },
    {
      name: "an expired token",
      request: async (room) => upgradeRequest(room, { token: await token(room, "write", { ttlSeconds: -60 }) }),
      status: 401,
      reason: /token expired/,
    },
    {
      name: "a token for another document",
      request: async (room) => upgradeRequest(room, { token: await token(`${room}-other`) }),
      status: 403,
      reason: /another document/,
    },
    {
      name: "a foreign browser origin",
      request: async (room) => upgradeRequest(room, { token: await token(room), headers: { Origin: "https://evil.example" } }),
      status: 403,
      reason: /origin not allowed/,
    },
  ];

  it.each(refusals)("$name gets $status", async ({ request, status, reason }) => {
    const room = roomName("refused");
    const before = (await listDurableObjectIds(env.ROOM)).length;
    const response = await SELF.fetch(await request(room));
    expect(response.status).toBe(status);
    expect(await response.text()).toMatch(reason);
    expect(response.webSocket).toBeNull();
    expect(await listDurableObjectIds(env.ROOM)).toHaveLength(before);
  });

  it("accepts a token by query or by Bearer header, from an allowed origin or no origin", async () => {
    const room = roomName("accepted");
    const viaQuery = await TestClient.connect(room, { token: await token(room), headers: { Origin: "https://edgedoc.example" } });
    const response = await SELF.fetch(
      new Request(`http://edgedoc.test/ws/${room}`, { headers: { Upgrade: "websocket", Authorization: `Bearer ${await token(room)}` } }),
    );
    expect(response.status).toBe(101);
    response.webSocket!.accept();
    response.webSocket!.close(1000, "done");
    viaQuery.insert(0, "ok");
    expect(viaQuery.closed).toBeNull();
  });

  it("honours a prefix pattern: doc claim team-* opens team-anything and nothing else", async () => {
    const teamToken = await signToken({ doc: "team-*", mode: "write", exp: Math.floor(Date.now() / 1000) + 600 }, env.AUTH_SECRET!);
    const inside = await TestClient.connect(`team-${roomName("notes")}`, { token: teamToken });
    expect(inside.closed).toBeNull();
    const outside = await SELF.fetch(upgradeRequest(roomName("notes"), { token: teamToken }));
    expect(outside.status).toBe(403);
  });
});

describe("read-only sockets", () => {
  it("sync and show presence, but their edits are denied, not stored and not relayed", async () => {
    const room = roomName("readonly");
    const alice = await writer(room);
    alice.insert(0, "written by alice");
    const reader = await TestClient.connect(room, { token: await token(room, "read") });
    expect(reader.text).toBe("written by alice");
    reader.setPresence({ name: "reader" });
    await waitFor(() => alice.presence().get(reader.doc.clientID)?.name === "reader", "the reader's presence");
    const before = await roomStub(room).stats();

    reader.insert(0, "vandalism ");
    await waitFor(() => reader.permissionDenied.length === 1, "the permission-denied message");
    expect(reader.permissionDenied[0]).toMatch(/read-only/);
    alice.insert(alice.text.length, "!");
    await waitFor(() => reader.text.endsWith("!"), "alice's next edit to reach the reader");
    expect(alice.text).toBe("written by alice!");
    expect(reader.closed).toBeNull();
    const late = await writer(room);
    expect(late.text).toBe("written by alice!");
    expect((await roomStub(room).stats()).logUpdates).toBe(before.logUpdates + 1);
  });
});

describe("limits in a guarded room", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("closes a socket whose token expires with 4401 when it next sends, and when it is next relayed to", async () => {
    const room = roomName("expiry");
    const [alice, sender, listener] = [await writer(room), await writer(room), await writer(room)];
    alice.insert(0, "before");
    await waitFor(() => sender.text === "before" && listener.text === "before", "the first edit");
    // Alice renews her token by reconnecting; the others keep theirs, which now expire.
    alice.close();
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 20 * 60_000);
    const renewed = await writer(room);
    sender.insert(0, "too late ");
    const senderClosed = await sender.waitForClose();
    expect(senderClosed.code).toBe(CloseCode.tokenExpired);
    expect(senderClosed.reason).toMatch(/token expired/);
    renewed.insert(renewed.text.length, " after");
    const listenerClosed = await listener.waitForClose();
    expect(listenerClosed.code).toBe(CloseCode.tokenExpired);
    expect(renewed.text).toBe("before after");
  });

  it("closes a socket over the message rate with 1008; the room and its document are unaffected", async () => {
    const room = roomName("flood");
    const [alice, flooder] = [await writer(room), await writer(room)];
    alice.insert(0, "steady");
    await waitFor(() => flooder.text === "steady", "the first edit");
    const before = await roomStub(room).stats();
    for (let i = 0; i < 1_000 && !flooder.closed; i++) flooder.sendRaw(new Uint8Array([3])); // query-awareness
    const closed = await flooder.waitForClose();
    expect(closed.code).toBe(CloseCode.policyViolation);
    expect(closed.reason).toMatch(/rate limit exceeded/);
    expect(await roomStub(room).stats()).toEqual(before);
    alice.insert(6, "!");
    const late = await writer(room);
    expect(late.text).toBe("steady!");
  });

  it("applies no frame that arrives after the room closed a socket for its rate", async () => {
    const room = roomName("after-rate");
    const [alice, flooder] = [await writer(room), await writer(room)];
    alice.insert(0, "steady");
    await waitFor(() => flooder.text === "steady", "the first edit");
    // Past the burst in one go, then edits: they arrive after the close, and must not count.
    for (let i = 0; i < 1_000; i++) flooder.sendRaw(new Uint8Array([3]));
    for (let i = 0; i < 20; i++) flooder.insert(0, "late ");
    expect((await flooder.waitForClose()).code).toBe(CloseCode.policyViolation);
    alice.insert(6, "!");
    const late = await writer(room);
    expect(late.text).toBe("steady!");
  });

  it("closes a socket that sends a frame over MAX_FRAME_BYTES with 1009 before decoding it", async () => {
    const room = roomName("bigframe");
    const [alice, sender] = [await writer(room), await writer(room)];
    alice.insert(0, "small");
    await waitFor(() => sender.text === "small", "the first edit");
    const before = await roomStub(room).stats();
    sender.insert(0, "x".repeat(70 * 1024));
    const closed = await sender.waitForClose();
    expect(closed.code).toBe(CloseCode.messageTooBig);
    expect(closed.reason).toMatch(/frame too large: over 65536 bytes/);
    expect(await roomStub(room).stats()).toEqual(before);
    alice.insert(5, "!");
    expect((await writer(room)).text).toBe("small!");
  });

  it("refuses sockets past the room's maximum with 1013, and admits again when one leaves", async () => {
    const room = roomName("full");
    const members = [await writer(room), await writer(room), await writer(room)];
    members[0]!.insert(0, "three is a crowd");
    const fourth = await TestClient.open(room, { token: await token(room) });
    const closed = await fourth.waitForClose();
    expect(closed.code).toBe(CloseCode.tryAgainLater);
    expect(closed.reason).toMatch(/room full/);
    await waitFor(() => members.every((member) => member.text === "three is a crowd"), "the members to stay in sync");
    members[2]!.close();
    await waitFor(() => members[2]!.closed !== null, "a member to leave");
    const next = await writer(room);
    expect(next.text).toBe("three is a crowd");
  });
});
