/**
 * The room takes each transport only on its own path: a WebSocket on `/ws/:name`, the HTTP
 * fallback on `/sync/:name`. Each path passed its own door in the Worker (upgrades are counted
 * as upgrades, session requests as requests), so a socket forwarded from `/sync` would escape
 * the upgrade limits and MAX_SOCKETS_PER_ROOM's share of them.
 */
import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { roomName, upgradeRequest } from "./client";

const roomStub = (room: string) => env.ROOM.get(env.ROOM.idFromName(room));

describe("the room's paths", () => {
  it("an upgrade on /sync is refused 400 by the Worker and by the room itself; on /ws it opens", async () => {
    const room = roomName("paths");
    const atTheDoor = await SELF.fetch(`http://edgedoc.test/sync/${room}`, { headers: { Upgrade: "websocket" } });
    expect(atTheDoor.status).toBe(400);
    expect(atTheDoor.webSocket).toBeNull();
    expect(await atTheDoor.text()).toBe("this endpoint speaks plain HTTP: open WebSockets on /ws/:name");

    const inTheRoom = await roomStub(room).fetch(`http://edgedoc.test/sync/${room}`, { headers: { Upgrade: "websocket" } });
    expect(inTheRoom.status).toBe(400);
    expect(inTheRoom.webSocket).toBeNull();
    await inTheRoom.body?.cancel();

    const socket = await SELF.fetch(upgradeRequest(room));
    expect(socket.status).toBe(101);
    socket.webSocket!.accept();
    socket.webSocket!.close(1000, "test done");
  });
});
