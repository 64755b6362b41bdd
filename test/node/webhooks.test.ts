/**
 * Webhooks against a real `wrangler dev` and a receiver on 127.0.0.1 in this process: signed
 * the Standard Webhooks way (verified with the `standardwebhooks` package, an implementation
 * independent of ours), debounced, retried with the same id, delivered after SIGKILL, kept as
 * failed after the last retry. Timings are shortened through the documented vars so the
 * tests take seconds; the defaults are checked in test/worker/pure-modules.test.ts.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { WebsocketProvider } from "y-websocket";
import { SaveTracker } from "../../client/saved";
import { connectProvider, disconnectProvider, waitFor } from "./providers";
import { freePort, newPersistDir, removePersistDir, startDevServer, type DevServer } from "./wrangler";

const SECRET = `whsec_${randomBytes(32).toString("base64")}`;
const QUIET_SECONDS = 1;
const MAX_WAIT_SECONDS = 3;
/** Two retries: three attempts in all. */
const RETRY_SECONDS = "0.5,1";

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
  type: string;
  document: string;
}

/** A webhook receiver: records every request; answers each document's requests from a script of statuses, then 200. */
class Receiver {
  readonly requests: Received[] = [];
  private readonly scripts = new Map<string, number[]>();
  private server: Server | null = null;
  constructor(readonly port: number) {}

  start(): Promise<void> {
    this.server = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => (body += chunk));
      request.on("end", () => {
        const event = JSON.parse(body) as { type: string; data: { document: string } };
        this.requests.push({ headers: request.headers, body, at: Date.now(), type: event.type, document: event.data.document });
        response.statusCode = this.scripts.get(event.data.document)?.shift() ?? 200;
        response.end();
      });
    });
    return new Promise((resolve) => this.server!.listen(this.port, "127.0.0.1", resolve));
  }

  stop(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Answers the next requests about `document` with these statuses. */
  script(document: string, statuses: number[]): void {
    this.scripts.set(document, statuses);
  }

  about(document: string, type?: string): Received[] {
    return this.requests.filter((request) => request.document === document && (type === undefined || request.type === type));
  }
}

let receiver: Receiver;
let server: DevServer;
const providers: WebsocketProvider[] = [];
const extraServers: DevServer[] = [];
const dirs: string[] = [];

function devServer(persistDir?: string, extraVars: Record<string, string> = {}): Promise<DevServer> {
  return startDevServer({
    ...(persistDir ? { persistDir } : {}),
    vars: {
      ...extraVars,
      WEBHOOK_URL: `http://127.0.0.1:${receiver.port}/hook`,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_QUIET_SECONDS: String(QUIET_SECONDS),
      WEBHOOK_MAX_WAIT_SECONDS: String(MAX_WAIT_SECONDS),
      WEBHOOK_RETRY_SECONDS: RETRY_SECONDS,
    },
  });
}

beforeAll(async () => {
  receiver = new Receiver(await freePort());
  await receiver.start();
  server = await devServer();
}, 90_000);

afterAll(async () => {
  await server?.stop("SIGKILL");
  await receiver?.stop();
});

afterEach(async () => {
  for (const provider of providers.splice(0)) disconnectProvider(provider);
  for (const extra of extraServers.splice(0)) await extra.stop("SIGKILL");
  for (const dir of dirs.splice(0)) removePersistDir(dir);
});

async function editor(on: DevServer, room: string): Promise<WebsocketProvider> {
  const provider = connectProvider(on, room);
  providers.push(provider);
  await waitFor(() => provider.synced, "the provider to sync");
  return provider;
}

function type(provider: WebsocketProvider, text: string): void {
  const shared = provider.doc.getText("codemirror");
  shared.insert(shared.length, text);
}

const api = (on: DevServer, path: string, init?: RequestInit) => fetch(`${on.origin}/api/docs/${path}`, { ...init, signal: AbortSignal.timeout(10_000) });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const verify = (request: Received) => new Webhook(SECRET).verify(request.body, request.headers as Record<string, string>) as { type: string; data: Record<string, unknown> };

describe("webhooks", () => {
  it("an edit sends one signed document.updated, after editing pauses, that standardwebhooks verifies", async () => {
    const room = `hook-one-${randomUUID().slice(0, 8)}`;
    const writer = await editor(server, room);
    const edited = Date.now();
    type(writer, "secret plans");
    await waitFor(() => receiver.about(room).length === 1, "document.updated", 15_000);
    const [event] = receiver.about(room);
    // Sent once the document was quiet for the quiet period, not at the keystroke.
    expect(event!.at - edited).toBeGreaterThanOrEqual(QUIET_SECONDS * 1000 - 100);
    const payload = verify(event!);
    expect(payload.type).toBe("document.updated");
    expect(payload.data).toMatchObject({ document: room, storedBytes: expect.any(Number) });
    expect(Date.parse(payload.data.updatedAt as string)).toBeGreaterThanOrEqual(edited - 1000);
    // Never document content.
    expect(event!.body).not.toContain("secret plans");
    // A forged signature does not verify.
    expect(() => new Webhook(`whsec_${randomBytes(32).toString("base64")}`).verify(event!.body, event!.headers as Record<string, string>)).toThrow();
    await sleep(QUIET_SECONDS * 2000);
    expect(receiver.about(room)).toHaveLength(1);
  }, 60_000);

  it("a burst of edits is one event; long editing sends one at least every max wait", async () => {
    const room = `hook-burst-${randomUUID().slice(0, 8)}`;
    const writer = await editor(server, room);
    for (let i = 0; i < 30; i++) {
      type(writer, `${i} `);
      await sleep(10);
    }
    await waitFor(() => receiver.about(room).length === 1, "one event for the burst", 15_000);
    await sleep(QUIET_SECONDS * 1500);
    expect(receiver.about(room)).toHaveLength(1);

    // Typing every 200 ms never pauses for the quiet period. It goes on until two events came
    // (about two max-wait periods; on a loaded machine alarms run late), six periods at most.
    const started = Date.now();
    const sentWhileTyping = () => receiver.about(room).filter((request) => request.at > started);
    while (sentWhileTyping().length < 2 && Date.now() - started < 6 * MAX_WAIT_SECONDS * 1000) {
      type(writer, "x");
      await sleep(200);
    }
    const during = sentWhileTyping();
    expect(during.length).toBeGreaterThanOrEqual(2);
    const times = [started, ...during.map((request) => request.at)];
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeLessThanOrEqual((MAX_WAIT_SECONDS + QUIET_SECONDS) * 1000 + 1500);
  }, 60_000);

  it("a receiver answering 500 twice gets the event on the third attempt with the same webhook-id, each attempt signed afresh", async () => {
    const room = `hook-retry-${randomUUID().slice(0, 8)}`;
    receiver.script(room, [500, 500]);
    type(await editor(server, room), "hello");
    await waitFor(() => receiver.about(room).length === 3, "three attempts", 20_000);
    const attempts = receiver.about(room);
    expect(new Set(attempts.map((attempt) => attempt.headers["webhook-id"])).size).toBe(1);
    for (const attempt of attempts) expect(verify(attempt).type).toBe("document.updated");
    // Retries wait: at least most of each delay (jitter is ±20%).
    expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(0.8 * 500 - 50);
    expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(0.8 * 1000 - 50);
    await waitFor(() => server.output().includes(`"event":"webhook_delivered","room":"${room}"`), "the delivery log line");
    expect(await (await api(server, `${room}/webhooks`)).json()).toEqual([]);
  }, 60_000);

  it("an event being retried keeps its webhook-id when the document changes again; the change is its own event, sent after it, and the alarm keeps running", async () => {
    const room = `hook-retry-edit-${randomUUID().slice(0, 8)}`;
    receiver.script(room, [500, 500]);
    const writer = await editor(server, room);
    type(writer, "hello");
    const updates = () => receiver.about(room, "document.updated");
    await waitFor(() => updates().length === 1, "the first, failed attempt", 15_000);
    // Edited again while the event waits for its retry: the next burst closes before it is delivered.
    type(writer, " again");
    await waitFor(() => updates().length === 4, "three attempts of the first event and the second event", 20_000);
    const [first, second, third, newer] = updates();
    const id = first!.headers["webhook-id"];
    expect([second, third].map((attempt) => attempt!.headers["webhook-id"])).toEqual([id, id]);
    expect([second!.body, third!.body]).toEqual([first!.body, first!.body]);
    // wrangler prints the room's log line a moment after the receiver answered: waited for, bounded.
    const delivered = new RegExp(`"event":"webhook_delivered","room":"${room}","type":"document.updated","id":"${id}"[^\n]*"attempt":3`);
    await waitFor(() => delivered.test(server.output()), "the log of the first event delivered on its third attempt", 10_000);
    // Retried on the event's own schedule (0.5 s, then 1 s, ±20%), not on the runtime's backoff for a failing alarm (2 s, 4 s, ...).
    expect(second!.at - first!.at).toBeLessThan(2_000);
    // The newer change is an event of its own, with its own id, delivered once after the first.
    expect(newer!.headers["webhook-id"]).not.toBe(id);
    expect(Date.parse(verify(newer!).data.updatedAt as string)).toBeGreaterThan(Date.parse(verify(first!).data.updatedAt as string));
    expect(newer!.at).toBeGreaterThanOrEqual(third!.at);

    // The alarm keeps running: a later edit is delivered too, and nothing is sent twice.
    type(writer, " and again");
    await waitFor(() => updates().length === 5, "a later event", 15_000);
    expect(new Set(updates().map((update) => update.headers["webhook-id"])).size).toBe(3);
    await sleep(QUIET_SECONDS * 1500);
    expect(updates()).toHaveLength(5);
    expect(await (await api(server, `${room}/webhooks`)).json()).toEqual([]);
    expect(server.output()).not.toContain("Wrong number of parameter bindings");
    expect(server.output()).not.toContain(`"event":"duty_failed","room":"${room}"`);
  }, 60_000);

  it("after the last retry the event is kept as failed, listed and logged", async () => {
    const room = `hook-failed-${randomUUID().slice(0, 8)}`;
    receiver.script(room, [503, 503, 503]);
    type(await editor(server, room), "hello");
    await waitFor(() => server.output().includes(`"event":"webhook_failed","room":"${room}"`), "webhook_failed", 20_000);
    expect(receiver.about(room)).toHaveLength(3);
    const listed = (await (await api(server, `${room}/webhooks`)).json()) as Record<string, unknown>[];
    // Without AUTH_SECRET nobody is an operator: the endpoint shows as its origin (docs/webhooks.md#inspecting).
    expect(listed).toMatchObject([{ type: "document.updated", endpoint: `http://127.0.0.1:${receiver.port}`, state: "failed", attempts: 3, lastStatus: 503, nextAttemptAt: null }]);
    expect(listed[0]!.id).toBe(receiver.about(room)[0]!.headers["webhook-id"]);
  }, 60_000);

  it("named versions send version.created; DELETE sends document.deleted and leaves nothing; a name never written sends nothing", async () => {
    const room = `hook-delete-${randomUUID().slice(0, 8)}`;
    expect((await api(server, `${room}/text`, { method: "PUT", body: "draft" })).status).toBe(200);
    expect((await api(server, `${room}/versions`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ name: "first draft" }) })).status).toBe(201);
    await waitFor(() => receiver.about(room, "version.created").length === 1, "version.created");
    expect(verify(receiver.about(room, "version.created")[0]!).data).toMatchObject({ document: room, version: { id: 1, name: "first draft", reason: "named" } });

    expect((await api(server, room, { method: "DELETE" })).status).toBe(204);
    await waitFor(() => receiver.about(room, "document.deleted").length === 1, "document.deleted");
    expect(verify(receiver.about(room, "document.deleted")[0]!).data).toMatchObject({ document: room });
    // The pending document.updated was superseded by the deletion.
    await sleep(QUIET_SECONDS * 1500);
    expect(receiver.about(room, "document.updated")).toHaveLength(0);
    expect(await (await api(server, `${room}/webhooks`)).json()).toEqual([]);
    expect(await (await api(server, room)).json()).toMatchObject({ exists: false, storedBytes: 0 });

    const never = `hook-never-${randomUUID().slice(0, 8)}`;
    expect((await api(server, never)).status).toBe(200);
    expect((await api(server, never, { method: "DELETE" })).status).toBe(204);
    await sleep(QUIET_SECONDS * 1500);
    expect(receiver.about(never)).toHaveLength(0);
  }, 60_000);

  it("an event not yet delivered when wrangler dev is killed with SIGKILL is delivered after the restart", async () => {
    const persistDir = newPersistDir();
    dirs.push(persistDir);
    const room = `hook-kill-${randomUUID().slice(0, 8)}`;
    // The first attempt fails; the kill comes before the retry.
    receiver.script(room, [500]);
    let crashing = await devServer(persistDir);
    extraServers.push(crashing);
    type(await editor(crashing, room), "written before the crash");
    await waitFor(() => receiver.about(room).length === 1, "the first, failed attempt", 15_000);
    await crashing.stop("SIGKILL");
    for (const provider of providers.splice(0)) disconnectProvider(provider);
    await sleep(1500);
    expect(receiver.about(room, "document.updated")).toHaveLength(1);

    const restarted = await devServer(persistDir);
    extraServers.push(restarted);
    // The room's alarm is stored with it; a request wakes the object in case nothing else does.
    await api(restarted, room);
    const updates = () => receiver.about(room, "document.updated");
    await waitFor(() => updates().length === 2, "delivery after the restart", 20_000);
    const [first, second] = updates();
    expect(second!.headers["webhook-id"]).toBe(first!.headers["webhook-id"]);
    expect(verify(second!).type).toBe("document.updated");
  }, 120_000);

  it("an edit saved just before SIGKILL, its burst still open, still sends document.updated after the restart", async () => {
    const persistDir = newPersistDir();
    dirs.push(persistDir);
    const room = `hook-open-${randomUUID().slice(0, 8)}`;
    const crashing = await devServer(persistDir);
    extraServers.push(crashing);
    const writer = await editor(crashing, room);
    let unconfirmed = false;
    new SaveTracker(writer, (now) => (unconfirmed = now));
    writer.awareness.setLocalStateField("user", { name: "writer" });
    type(writer, "saved, then the server dies");
    await waitFor(() => unconfirmed, "the edit to be pending");
    await waitFor(() => !unconfirmed, "the edit to be confirmed saved");
    await crashing.stop("SIGKILL");
    expect(receiver.about(room)).toHaveLength(0);
    for (const provider of providers.splice(0)) disconnectProvider(provider);

    const restarted = await devServer(persistDir);
    extraServers.push(restarted);
    await api(restarted, room);
    await waitFor(() => receiver.about(room, "document.updated").length === 1, "document.updated after the restart", 20_000);
    expect(verify(receiver.about(room, "document.updated")[0]!).data).toMatchObject({ document: room });
  }, 120_000);

  it("a document deleted by DOC_TTL_DAYS sends document.expired", async () => {
    // 0.00005 days is about 4.3 s without a connection or an edit.
    const expiring = await devServer(undefined, { DOC_TTL_DAYS: "0.00005" });
    extraServers.push(expiring);
    const room = `hook-expire-${randomUUID().slice(0, 8)}`;
    expect((await api(expiring, `${room}/text`, { method: "PUT", body: "short-lived" })).status).toBe(200);
    await waitFor(() => receiver.about(room, "document.expired").length === 1, "document.expired", 30_000);
    expect(verify(receiver.about(room, "document.expired")[0]!).data).toMatchObject({ document: room, storedBytes: expect.any(Number) });
    expect(await (await api(expiring, room)).json()).toMatchObject({ exists: false });
    await waitFor(() => expiring.output().includes(`"event":"document_expired","room":"${room}"`), "the log of the expiry", 10_000);
  }, 90_000);
});
