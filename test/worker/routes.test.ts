import { SELF, env, listDurableObjectIds } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { roomName } from "./client";

describe("worker routes", () => {
  it("answers the health check", async () => {
    const response = await SELF.fetch("http://edgedoc.test/healthz");
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("ok");
  });

  it("refuses a WebSocket route without the upgrade header with 426 and a reason", async () => {
    const response = await SELF.fetch(`http://edgedoc.test/ws/${roomName("plain")}`);
    expect(response.status).toBe(426);
    expect(await response.text()).toMatch(/Upgrade: websocket/);
  });

  it.each(["bad%20name", "has%2Fslash", "-leading-dash", ".hidden", "x".repeat(129), "caf%C3%A9"])(
    "refuses the document name %s with 400 before any room is woken",
    async (name) => {
      const before = await listDurableObjectIds(env.ROOM);
      const response = await SELF.fetch(`http://edgedoc.test/ws/${name}`, { headers: { Upgrade: "websocket" } });
      expect(response.status).toBe(400);
      expect(await response.text()).toMatch(/invalid document name/);
      expect(await listDurableObjectIds(env.ROOM)).toHaveLength(before.length);
    },
  );

  it("accepts a 128-character name made of every allowed character", async () => {
    const name = `Aa0._-${"z".repeat(122)}`;
    const response = await SELF.fetch(`http://edgedoc.test/ws/${name}`, { headers: { Upgrade: "websocket" } });
    expect(response.status).toBe(101);
    response.webSocket?.accept();
    response.webSocket?.close(1000, "done");
  });

  it("answers unknown routes with 404", async () => {
    const response = await SELF.fetch("http://edgedoc.test/nothing-here");
    expect(response.status).toBe(404);
  });
});
