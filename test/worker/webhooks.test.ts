/**
 * Webhook settings, signatures and the outbox on a room's real SQLite storage. Delivery itself
 * (a receiver, retries, SIGKILL) is tested against wrangler dev in test/node/webhooks.test.ts.
 */
import { env, runInDurableObject } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import {
  DEFAULT_WEBHOOK_MAX_WAIT_SECONDS,
  DEFAULT_WEBHOOK_QUIET_SECONDS,
  DEFAULT_WEBHOOK_RETRY_SECONDS,
  MAX_UNDELIVERED_WEBHOOKS,
} from "../../worker/limits";
import type { Room } from "../../worker/room";
import { Outbox, signWebhook, webhookSettings, type WebhookSettings } from "../../worker/webhooks";
import { roomName } from "./client";

const SECRET = `whsec_${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;
const settingsFrom = (vars: Partial<Env>) => webhookSettings({ ...env, ...vars } as Env);

describe("webhook settings", () => {
  it("are off without WEBHOOK_URL, and use the documented defaults otherwise", () => {
    expect(settingsFrom({ WEBHOOK_URL: undefined })).toBeNull();
    const settings = settingsFrom({ WEBHOOK_URL: "https://hooks.example/a, https://hooks.example/b", WEBHOOK_SECRET: SECRET })!;
    expect(settings.endpoints).toEqual(["https://hooks.example/a", "https://hooks.example/b"]);
    expect(settings.quietMs).toBe(DEFAULT_WEBHOOK_QUIET_SECONDS * 1000);
    expect(settings.maxWaitMs).toBe(DEFAULT_WEBHOOK_MAX_WAIT_SECONDS * 1000);
    expect(settings.retryDelaysMs).toEqual(DEFAULT_WEBHOOK_RETRY_SECONDS.map((delay) => delay * 1000));
    // 5 s, 30 s, 2 min, 10 min, 1 h, then every 6 h for 3 days.
    expect(DEFAULT_WEBHOOK_RETRY_SECONDS.reduce((sum, delay) => sum + delay, 0)).toBe(5 + 30 + 120 + 600 + 3600 + 3 * 24 * 3600);
  });

  it("refuse endpoints that are not https (but for this machine) and weak or malformed secrets", () => {
    expect(settingsFrom({ WEBHOOK_URL: "http://127.0.0.1:9000/hook", WEBHOOK_SECRET: SECRET })).not.toBeNull();
    expect(settingsFrom({ WEBHOOK_URL: "http://hooks.example/hook", WEBHOOK_SECRET: SECRET })).toBeNull();
    expect(settingsFrom({ WEBHOOK_URL: "not a url", WEBHOOK_SECRET: SECRET })).toBeNull();
    expect(settingsFrom({ WEBHOOK_URL: "https://hooks.example", WEBHOOK_SECRET: undefined })).toBeNull();
    expect(settingsFrom({ WEBHOOK_URL: "https://hooks.example", WEBHOOK_SECRET: `whsec_${btoa("sixteen bytes!!!")}` })).toBeNull();
    expect(settingsFrom({ WEBHOOK_URL: "https://hooks.example", WEBHOOK_SECRET: "whsec_%%%" })).toBeNull();
  });
});

describe("webhook signatures", () => {
  it("verify with the standardwebhooks package, and a retry signed afresh verifies an hour after the event", async () => {
    const key = settingsFrom({ WEBHOOK_URL: "https://hooks.example", WEBHOOK_SECRET: SECRET })!.key;
    const body = JSON.stringify({ type: "document.updated", timestamp: new Date(Date.now() - 3_600_000).toISOString(), data: { document: "d" } });
    const id = "msg_test";
    const headers = async (at: number) => ({
      "webhook-id": id,
      "webhook-timestamp": String(at),
      "webhook-signature": await signWebhook(key, id, at, body),
    });
    const now = Math.floor(Date.now() / 1000);
    const fresh = await headers(now);
    expect(new Webhook(SECRET).verify(body, fresh)).toMatchObject({ type: "document.updated" });
    // Signed when the event happened, an hour ago: a receiver rejects it as a possible replay.
    const stale = await headers(now - 3600);
    expect(() => new Webhook(SECRET).verify(body, stale)).toThrow();
    // Any change to the body breaks the signature.
    expect(() => new Webhook(SECRET).verify(body.replace('"d"', '"e"'), fresh)).toThrow();
  });
});

describe("the outbox", () => {
  const settings = (): WebhookSettings => ({ ...settingsFrom({ WEBHOOK_URL: "https://a.example,https://b.example", WEBHOOK_SECRET: SECRET })!, quietMs: 10_000, maxWaitMs: 60_000 });

  it("writes one row per endpoint for a burst of 1,000 edits, not one per edit, and closes it after the quiet period or the maximum wait", async () => {
    const stub = env.ROOM.get(env.ROOM.idFromName(roomName("outbox")));
    await runInDurableObject(stub, (_room: Room, state) => {
      const outbox = new Outbox(state.storage.sql, settings(), "doc");
      const rows = () => state.storage.sql.exec<{ state: string; due_at: number }>("SELECT state, due_at FROM edgedoc_webhooks").toArray();
      const t0 = 1_000_000;
      let opened = 0;
      // One keystroke every 50 ms for 50 s.
      for (let i = 0; i < 1000; i++) if (outbox.noteChange(t0 + i * 50)) opened++;
      expect(opened).toBe(1);
      expect(rows()).toEqual([{ state: "collecting", due_at: t0 + 10_000 }, { state: "collecting", due_at: t0 + 10_000 }]);
      // At its first close the document is still changing: the close moves to 10 s after the last change.
      outbox.closeBurst(t0 + 10_000, () => ({}));
      expect(rows().map((row) => row.due_at)).toEqual([t0 + 49_950 + 10_000, t0 + 49_950 + 10_000]);
      // Typing on past the maximum wait: the burst closes at 60 s after it opened however busy the document is.
      for (let i = 1000; i < 1300; i++) outbox.noteChange(t0 + i * 50);
      outbox.closeBurst(t0 + 59_950, () => ({}));
      expect(rows().every((row) => row.state === "collecting" && row.due_at === t0 + 60_000)).toBe(true);
      outbox.closeBurst(t0 + 60_000, () => ({ storedBytes: 42 }));
      expect(rows().map((row) => row.state)).toEqual(["pending", "pending"]);
      expect(outbox.due(t0 + 60_000)).toHaveLength(2);
      // The next change opens the next burst; a pending document.updated is replaced by the newer one when that closes.
      expect(outbox.noteChange(t0 + 61_000)).toBe(true);
      outbox.closeBurst(t0 + 71_000, () => ({ storedBytes: 43 }));
      const pending = outbox.due(t0 + 71_000);
      expect(pending).toHaveLength(2);
      expect(pending.every((row) => JSON.parse(row.body!).data.storedBytes === 43)).toBe(true);
      state.storage.sql.exec("DROP TABLE edgedoc_webhooks");
    });
  });

  it(`keeps at most ${MAX_UNDELIVERED_WEBHOOKS} undelivered events per endpoint, dropping the oldest`, async () => {
    const stub = env.ROOM.get(env.ROOM.idFromName(roomName("outbox-bound")));
    await runInDurableObject(stub, (_room: Room, state) => {
      const outbox = new Outbox(state.storage.sql, settings(), "doc");
      // A token cycling named versions while the endpoints are down.
      for (let id = 1; id <= MAX_UNDELIVERED_WEBHOOKS + 5; id++) outbox.enqueue("version.created", { version: { id } }, 1_000_000 + id);
      const kept = state.storage.sql
        .exec<{ endpoint: string; rows: number; oldest: number; bytes: number }>(
          "SELECT endpoint, COUNT(*) AS rows, MIN(json_extract(body, '$.data.version.id')) AS oldest, SUM(LENGTH(body)) AS bytes FROM edgedoc_webhooks GROUP BY endpoint ORDER BY endpoint",
        )
        .toArray();
      expect(kept.map(({ endpoint, rows, oldest }) => ({ endpoint, rows, oldest }))).toEqual([
        { endpoint: "https://a.example", rows: MAX_UNDELIVERED_WEBHOOKS, oldest: 6 },
        { endpoint: "https://b.example", rows: MAX_UNDELIVERED_WEBHOOKS, oldest: 6 },
      ]);
      // What the bound costs in storage at most, per endpoint (bodies; rows add their ids and times).
      expect(kept[0]!.bytes).toBeLessThan(200 * MAX_UNDELIVERED_WEBHOOKS);
      state.storage.sql.exec("DROP TABLE edgedoc_webhooks");
    });
  });

  it("with webhooks off, a room that is edited and deleted creates no outbox", async () => {
    const name = roomName("no-hooks");
    const stub = env.ROOM.get(env.ROOM.idFromName(name));
    await stub.replaceText("edited");
    expect(await stub.webhookEvents()).toEqual([]);
    await runInDurableObject(stub, (_room: Room, state) => {
      expect(state.storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'edgedoc_webhooks'").toArray()).toEqual([]);
    });
  });
});
