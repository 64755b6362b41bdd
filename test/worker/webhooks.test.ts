/**
 * Webhook settings, signatures and the outbox on a room's real SQLite storage. Delivery itself
 * (a receiver, retries, SIGKILL) is tested against wrangler dev in test/node/webhooks.test.ts.
 */
import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  DAY_MS,
  DEFAULT_WEBHOOK_MAX_WAIT_SECONDS,
  DEFAULT_WEBHOOK_QUIET_SECONDS,
  DEFAULT_WEBHOOK_RETRY_SECONDS,
  MAX_FAILED_WEBHOOKS,
  MAX_UNDELIVERED_WEBHOOKS,
  WEBHOOK_FAILED_RETENTION_MS,
} from "../../worker/limits";
import type { Room } from "../../worker/room";
import type { RoomCore } from "../../worker/room/core";
import { Outbox, attemptDelivery, signWebhook, webhookSettings, type OutboxRow, type WebhookSettings } from "../../worker/webhooks";
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
      const outbox = new Outbox(state.storage.sql, settings(), "doc", (body) => state.storage.transactionSync(body));
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
      const outbox = new Outbox(state.storage.sql, settings(), "doc", (body) => state.storage.transactionSync(body));
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

describe("a document.updated being retried", () => {
  // Retries a minute apart, so that the next bursts close while one is pending.
  const settings = (): WebhookSettings => ({
    ...settingsFrom({ WEBHOOK_URL: "https://a.example,https://b.example", WEBHOOK_SECRET: SECRET })!,
    quietMs: 10_000,
    maxWaitMs: 60_000,
    retryDelaysMs: [60_000],
  });

  it("keeps its id and body; the next burst waits behind it, and supersedes only an event no receiver has seen", async () => {
    const stub = env.ROOM.get(env.ROOM.idFromName(roomName("outbox-retrying")));
    await runInDurableObject(stub, (_room: Room, state) => {
      const outbox = new Outbox(state.storage.sql, settings(), "doc", (body) => state.storage.transactionSync(body));
      const t0 = 1_000_000;
      const close = (at: number, storedBytes: number) => {
        outbox.noteChange(at - 10_000);
        outbox.closeBurst(at, () => ({ storedBytes }));
      };
      close(t0, 1);
      const [a, b] = outbox.due(t0);
      // Endpoint a answered 500 (a retry in a minute); endpoint b took it.
      outbox.recordAttempt(a!, { status: 500 }, t0, 1);
      outbox.recordAttempt(b!, { status: 200 }, t0, 1);
      const first = a!.id;

      // The next burst closes while a's retry is pending: its own event, sent to b now, waiting at a.
      close(t0 + 20_000, 2);
      const rows = () => outbox.list().map(({ id, endpoint, attempts, nextAttemptAt }) => ({ id, endpoint, attempts, nextAttemptAt }));
      const second = rows()[0]!.id;
      expect(second).not.toBe(first);
      expect(outbox.due(t0 + 20_000).map((row) => [row.id, row.endpoint])).toEqual([[second, "https://b.example"]]);
      // Listed as due when the retry it waits for is; the alarm is not asked to run for it before.
      const retryAt = rows().find((row) => row.id === first)!.nextAttemptAt;
      expect(rows().find((row) => row.id === second && row.endpoint === "https://a.example")!.nextAttemptAt).toBe(retryAt);
      expect(outbox.nextDue()).toBe(t0 + 20_000);
      outbox.recordAttempt(outbox.due(t0 + 20_000)[0]!, { status: 200 }, t0 + 20_000, 1);
      expect(outbox.nextDue()).toBe(Date.parse(retryAt!));

      // A third burst supersedes the second at a (never attempted there), not the first.
      close(t0 + 30_000, 3);
      const third = rows()[0]!.id;
      expect(rows()).toEqual([
        { id: third, endpoint: "https://b.example", attempts: 0, nextAttemptAt: new Date(t0 + 30_000).toISOString() },
        { id: third, endpoint: "https://a.example", attempts: 0, nextAttemptAt: retryAt },
        { id: first, endpoint: "https://a.example", attempts: 1, nextAttemptAt: retryAt },
      ]);
      // The retry carries the first event's id and body; once it is delivered the third follows.
      const retry = outbox.due(Date.parse(retryAt!)).find((row) => row.endpoint === "https://a.example")!;
      expect([retry.id, JSON.parse(retry.body!).data.storedBytes]).toEqual([first, 1]);
      outbox.recordAttempt(retry, { status: 200 }, Date.parse(retryAt!), 1);
      const next = outbox.due(Date.parse(retryAt!)).map((row) => [row.id, row.endpoint, JSON.parse(row.body!).data.storedBytes]);
      expect(next).toEqual([
        [third, "https://a.example", 3],
        [third, "https://b.example", 3],
      ]);
      state.storage.sql.exec("DROP TABLE edgedoc_webhooks");
    });
  });
});

describe("attemptDelivery", () => {
  it("posts through the fetch it is given, signed so that standardwebhooks verifies it", async () => {
    const key = settingsFrom({ WEBHOOK_URL: "https://hooks.example", WEBHOOK_SECRET: SECRET })!.key;
    const body = JSON.stringify({ type: "version.created", timestamp: new Date().toISOString(), data: { document: "d" } });
    const row = { seq: 1, id: "msg_given", type: "version.created", endpoint: "https://hooks.example/in", body, state: "pending" } as OutboxRow;
    const seen: { url: string; init: RequestInit }[] = [];
    const result = await attemptDelivery(row, key, async (url, init) => {
      seen.push({ url, init });
      return new Response(null, { status: 204 });
    });
    expect(result).toEqual({ status: 204 });
    expect(seen.map(({ url }) => url)).toEqual(["https://hooks.example/in"]);
    expect(new Webhook(SECRET).verify(seen[0]!.init.body as string, seen[0]!.init.headers as Record<string, string>)).toMatchObject({ type: "version.created" });
    expect(await attemptDelivery(row, key, () => Promise.reject(new Error("refused")))).toEqual({ error: "Error: refused" });
  });
});

/**
 * The room's own alarm on its real storage, with webhooks on. This project sets no
 * WEBHOOK_URL, so the test gives the room's core the settings its constructor would have
 * read; deliveries go through the global fetch (the room shares the test's isolate), stubbed
 * as a receiver; the clock is moved with `vi.setSystemTime`.
 */
describe("the room's alarm with webhooks on", () => {
  const hook = "https://hooks.example/edgedoc";
  const roomSettings = (retryDelaysMs: number[]): WebhookSettings => ({
    ...settingsFrom({ WEBHOOK_URL: hook, WEBHOOK_SECRET: SECRET })!,
    quietMs: 10_000,
    maxWaitMs: 60_000,
    retryDelaysMs,
  });

  async function withWebhooks(name: string, settings: WebhookSettings): Promise<DurableObjectStub<Room>> {
    const stub = env.ROOM.get(env.ROOM.idFromName(name));
    await runInDurableObject(stub, (room: Room) => {
      const core = (room as unknown as { core: RoomCore }).core;
      core.config.webhooks = settings;
      // The core opens its storage handles (the outbox among them) again at their next use.
      (core as unknown as { opened: null }).opened = null;
    });
    return stub;
  }

  /** A receiver: answers each request with the next status scripted for its event type (then 200), and records it. */
  function receiver(scripts: Record<string, number[]>): { type: string; id: string; body: string }[] {
    const requests: { type: string; id: string; body: string }[] = [];
    vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
      expect(url).toBe(hook);
      const body = init.body as string;
      const { type } = JSON.parse(body) as { type: string };
      requests.push({ type, id: (init.headers as Record<string, string>)["webhook-id"]!, body });
      return new Response(null, { status: scripts[type]?.shift() ?? 200 });
    });
    return requests;
  }

  /** What the room logged that says something went wrong. */
  function failures(): string[] {
    const lines: string[] = [];
    const log = console.log;
    vi.spyOn(console, "log").mockImplementation((...args: unknown[]) => {
      const line = args.map(String).join(" ");
      if (/"event":"(duty_failed|room_error)"/.test(line)) lines.push(line);
      log(...args);
    });
    return lines;
  }

  const alarmAt = (stub: DurableObjectStub<Room>) => runInDurableObject(stub, (_room: Room, state) => state.storage.getAlarm());
  const tableExists = (stub: DurableObjectStub<Room>) =>
    runInDurableObject(stub, (_room: Room, state) => state.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'edgedoc_webhooks'").toArray().length > 0);
  const at = (time: number) => vi.setSystemTime(time);

  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
  });

  it("retries an event with one webhook-id at its own times, re-arming after every run, queues the next change behind it, and keeps expiry armed", async () => {
    const room = roomName("hooks-alarm");
    const stub = await withWebhooks(room, roomSettings([5_000, 30_000, 120_000]));
    const requests = receiver({ "document.updated": [500, 500] });
    const errors = failures();
    // An hour ahead of the real clock: the runtime never fires these alarms on its own during the test.
    const t0 = Date.now() + 3_600_000;
    vi.useFakeTimers({ toFake: ["Date"] });
    at(t0);
    expect((await stub.replaceText("first")).ok).toBe(true);
    const updates = () => requests.filter((request) => request.type === "document.updated");
    const retryAt = async () => Date.parse((await stub.webhookEvents()).find((event) => event.attempts > 0)!.nextAttemptAt!);

    // The burst closes: the first attempt fails, and the alarm is re-armed for the retry (5 s ±20%).
    at(t0 + 11_000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(updates().length).toBe(1);
    const retry = await retryAt();
    expect(retry - (t0 + 11_000)).toBeGreaterThanOrEqual(4_000);
    expect(retry - (t0 + 11_000)).toBeLessThanOrEqual(6_000);
    expect(await alarmAt(stub)).toBe(retry);

    // The document changes again meanwhile; its burst closes after the second attempt failed.
    expect((await stub.replaceText("second")).ok).toBe(true);
    at(t0 + 22_000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(updates().length).toBe(2);
    const events = await stub.webhookEvents();
    expect(events.map(({ type, state, attempts }) => ({ type, state, attempts }))).toEqual([
      { type: "document.updated", state: "pending", attempts: 0 },
      { type: "document.updated", state: "pending", attempts: 2 },
    ]);
    // The newer one waits for the retry (30 s ±20%): the alarm is not spent on it before.
    const secondRetry = await retryAt();
    expect(events[0]!.nextAttemptAt).toBe(new Date(secondRetry).toISOString());
    expect(await alarmAt(stub)).toBe(secondRetry);

    // The third attempt is delivered; the newer event goes at the next run.
    at(t0 + 60_000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(updates().length).toBe(3);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const [first, second, third, newer] = updates();
    expect(new Set([first!.id, second!.id, third!.id]).size).toBe(1);
    expect([first!.body, second!.body]).toEqual([third!.body, third!.body]);
    expect(newer!.id).not.toBe(first!.id);
    expect(updates()).toHaveLength(4);
    expect(await stub.webhookEvents()).toEqual([]);

    // Nothing left to send: the alarm stays armed for the document's expiry (DOC_TTL_DAYS=1 in this project).
    const expiry = await alarmAt(stub);
    expect(expiry).not.toBeNull();
    expect(expiry!).toBeGreaterThan(t0 + DAY_MS - 60_000);
    expect(errors).toEqual([]);
  });

  it(`keeps the newest ${MAX_FAILED_WEBHOOKS} failed events; once the document expired and they aged out, the table is dropped`, async () => {
    const room = roomName("hooks-tidy");
    // No retries: each event fails at its first attempt.
    const stub = await withWebhooks(room, roomSettings([]));
    const extra = 5;
    // The receiver is down for the versions and the document.updated (the session-end version is one more), up for document.expired.
    const requests = receiver({ "version.created": Array<number>(MAX_FAILED_WEBHOOKS + extra + 1).fill(503), "document.updated": [503] });
    const errors = failures();
    const t0 = Date.now() + 3_600_000;
    vi.useFakeTimers({ toFake: ["Date"] });
    at(t0);
    await runInDurableObject(stub, (room: Room) => {
      const { outbox } = (room as unknown as { core: RoomCore }).core;
      for (let i = 0; i < MAX_FAILED_WEBHOOKS + extra; i++) outbox!.enqueue("version.created", { version: { id: 1000 + i } }, t0);
    });
    expect((await stub.replaceText("kept for a day")).ok).toBe(true);

    // Ten attempts a run; each run re-arms the alarm while events are due.
    at(t0 + 11_000);
    for (let run = 0; run < 20 && (await stub.webhookEvents()).some((event) => event.state !== "failed"); run++) {
      expect(await runDurableObjectAlarm(stub)).toBe(true);
    }
    const failed = await stub.webhookEvents();
    expect(failed.every((event) => event.state === "failed")).toBe(true);
    // Every event was attempted (the extra versions, a session-end version and the document.updated) ...
    expect(requests.length).toBe(MAX_FAILED_WEBHOOKS + extra + 2);
    // ... and only the newest are kept.
    expect(failed).toHaveLength(MAX_FAILED_WEBHOOKS);
    const oldestKept = await runInDurableObject(stub, (_room: Room, state) =>
      state.storage.sql.exec<{ id: number }>("SELECT MIN(json_extract(body, '$.data.version.id')) AS id FROM edgedoc_webhooks WHERE json_extract(body, '$.data.version.id') >= 1000").one().id,
    );
    expect(oldestKept).toBe(1000 + extra + 2);

    // A day later, with the document idle, it expires: its failed events are kept, document.expired is sent.
    expect(await alarmAt(stub)).toBeLessThanOrEqual(t0 + 11_000 + DAY_MS);
    at(t0 + DAY_MS + 60_000);
    for (let run = 0; run < 3 && requests.at(-1)!.type !== "document.expired"; run++) expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(requests.at(-1)!.type).toBe("document.expired");
    expect(await stub.info("test")).toMatchObject({ ok: true, value: { exists: false } });
    const listed = await stub.webhookEvents();
    expect(listed.length).toBeGreaterThan(0);
    expect(listed.every((event) => event.state === "failed")).toBe(true);
    expect(await tableExists(stub)).toBe(true);

    // Once the failed events are past their retention, the alarm forgets them and drops the table: nothing is left.
    // (An alarm set for the document.expired just sent may fire once more first.)
    const forget = t0 + 11_000 + WEBHOOK_FAILED_RETENTION_MS;
    for (let run = 0; run < 3 && (await alarmAt(stub)) !== forget; run++) expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await alarmAt(stub)).toBe(forget);
    expect(await tableExists(stub)).toBe(true);
    at(forget + 1);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await tableExists(stub)).toBe(false);
    expect(await stub.webhookEvents()).toEqual([]);
    expect(await alarmAt(stub)).toBeNull();
    expect(errors).toEqual([]);
  });
});
