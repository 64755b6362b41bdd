/**
 * A guarded room holds three sockets (vitest.config.ts). Sockets that take a place without
 * using it must not keep people out for good.
 */
import { env, runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { JOIN_TIMEOUT_MS } from "../../worker/limits";
import { CloseCode } from "../../worker/protocol";
import { signToken } from "../../worker/tokens";
import { TestClient, openSocket, roomName, waitFor, type Closed } from "../worker/client";

const writeToken = (room: string) =>
  signToken({ doc: room, mode: "write", exp: Math.floor(Date.now() / 1000) + 3_600, name: "Tess" }, env.AUTH_SECRET!);

afterEach(() => {
  vi.useRealTimers();
});

describe("silent sockets do not hold a room", () => {
  it("three sockets that never send a frame fill the room until the join timeout closes them with 4001", async () => {
    const room = roomName("silent-three");
    const token = await writeToken(room);
    const closes: (Closed | null)[] = [null, null, null];
    for (let i = 0; i < 3; i++) {
      const socket = await openSocket(room, { token });
      socket.addEventListener("close", (event) => (closes[i] = { code: event.code, reason: event.reason }));
    }
    const refused = await TestClient.open(room, { token });
    expect((await refused.waitForClose()).code).toBe(CloseCode.tryAgainLater);

    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + JOIN_TIMEOUT_MS + 1_000);
    expect(await runDurableObjectAlarm(env.ROOM.get(env.ROOM.idFromName(room)))).toBe(true);
    await waitFor(() => closes.every((closed) => closed !== null), "the silent sockets to be closed");
    for (const closed of closes) expect(closed).toMatchObject({ code: CloseCode.joinTimeout, reason: expect.stringMatching(/join timed out/) });

    // Closed sockets no longer count, even while the runtime may still list them.
    const admitted = await TestClient.connect(room, { token });
    admitted.insert(0, "in at last");
    const second = await TestClient.connect(room, { token });
    expect(second.text).toBe("in at last");
    expect(admitted.closed).toBeNull();
  });
});
