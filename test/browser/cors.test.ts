/**
 * CORS in a real Chromium: pages served from two other origins (loopback HTTP servers on their
 * own ports) call a `wrangler dev` that lists one of them in ALLOWED_ORIGINS. A Bearer token in
 * `fetch()` makes the browser send a preflight first; the listed page reads and writes the
 * document, the other is blocked by its browser before anything is sent. `EdgedocProvider` on
 * the listed page, with WebSockets refused, edits the document over the HTTP fallback.
 */
import { randomUUID } from "node:crypto";
import { build } from "esbuild";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removePersistDir, startDevServer, type DevServer } from "../node/wrangler";
import { browserUnavailableReason, launchChromium } from "./chromium";
import { startPageServer, type PageServer } from "./page-server";
import { mintLink } from "./pages";

const AUTH_SECRET = "browser-cors-secret";
const unavailable = browserUnavailableReason();
/** Every fetch in a page gives up after this long, so a broken test fails instead of hanging. */
const FETCH_TIMEOUT_MS = 10_000;

/** What a page's `fetch()` gave: the answer, or the error it was rejected with. */
type Fetched = { status: number; body: string; challenge: string | null } | { error: string };

/** Runs `fetch(url, init)` in `page`, as that page's own script would. */
function fetchIn(page: Page, url: string, init: { method?: string; token: string; body?: string }): Promise<Fetched> {
  return page.evaluate(
    async ({ url, init, timeoutMs }) => {
      try {
        const response = await fetch(url, {
          method: init.method ?? "GET",
          headers: { Authorization: `Bearer ${init.token}`, ...(init.body === undefined ? {} : { "Content-Type": "text/plain" }) },
          ...(init.body === undefined ? {} : { body: init.body }),
          signal: AbortSignal.timeout(timeoutMs),
        });
        return { status: response.status, body: await response.text(), challenge: response.headers.get("WWW-Authenticate") };
      } catch (error) {
        return { error: `${(error as Error).name}: ${(error as Error).message}` };
      }
    },
    { url, init, timeoutMs: FETCH_TIMEOUT_MS },
  );
}

describe.skipIf(unavailable !== null)("the API from pages on other origins", () => {
  let server: DevServer;
  let browser: Browser;
  let allowed: PageServer;
  let elsewhere: PageServer;

  beforeAll(async () => {
    [allowed, elsewhere] = await Promise.all([startPageServer(), startPageServer()]);
    // The list names the page's origin and one more, so the test also reads a list.
    const vars = { AUTH_SECRET, ALLOWED_ORIGINS: `https://edgedoc.example, ${allowed.origin}` };
    [server, browser] = await Promise.all([startDevServer({ vars }), launchChromium()]);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (server) removePersistDir(server.persistDir);
    await Promise.all([allowed?.close(), elsewhere?.close()]);
  });

  /** A token for `doc`, from the share link `npm run token` prints. */
  const tokenFor = (doc: string, mode: "read" | "write") => new URL(mintLink(server, AUTH_SECRET, doc, mode)).searchParams.get("token")!;

  /** The document's text as a server reads it (no Origin, so no CORS). */
  async function serverReads(doc: string): Promise<string> {
    const response = await fetch(`${server.origin}/api/docs/${doc}/text`, {
      headers: { Authorization: `Bearer ${tokenFor(doc, "read")}` },
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    expect(response.status).toBe(200);
    return response.text();
  }

  async function openPage(origin: string): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${origin}/`, { timeout: FETCH_TIMEOUT_MS });
    return page;
  }

  it("a page on an allowed origin reads and writes a document with a Bearer token; refusals are readable", async () => {
    const doc = `cors-${randomUUID().slice(0, 8)}`;
    const page = await openPage(allowed.origin);
    const text = `${server.origin}/api/docs/${doc}/text`;

    const written = await fetchIn(page, text, { method: "PUT", token: tokenFor(doc, "write"), body: "written from another origin" });
    expect(written).toMatchObject({ status: 200 });
    expect(JSON.parse((written as { body: string }).body)).toMatchObject({ changed: true });
    expect(await serverReads(doc)).toBe("written from another origin");
    expect(await fetchIn(page, text, { token: tokenFor(doc, "read") })).toEqual({ status: 200, body: "written from another origin", challenge: null });

    const refused = await fetchIn(page, text, { token: "not.a.token" });
    expect(refused).toMatchObject({ status: 401, challenge: expect.stringMatching(/^Bearer realm="edgedoc", error="invalid_token"/) });
    await page.context().close();
  });

  it("a page on an origin not in the list cannot read or write: its fetch is rejected and nothing changes", async () => {
    const doc = `cors-${randomUUID().slice(0, 8)}`;
    const owner = await openPage(allowed.origin);
    expect(await fetchIn(owner, `${server.origin}/api/docs/${doc}/text`, { method: "PUT", token: tokenFor(doc, "write"), body: "kept" })).toMatchObject({ status: 200 });

    const page = await openPage(elsewhere.origin);
    const text = `${server.origin}/api/docs/${doc}/text`;
    expect(await fetchIn(page, text, { token: tokenFor(doc, "read") })).toEqual({ error: expect.stringMatching(/^TypeError: /) });
    expect(await fetchIn(page, text, { method: "PUT", token: tokenFor(doc, "write"), body: "overwritten" })).toEqual({ error: expect.stringMatching(/^TypeError: /) });
    expect(await serverReads(doc)).toBe("kept");
    await Promise.all([owner.context().close(), page.context().close()]);
  });

  it("EdgedocProvider on a page of an allowed origin, with WebSockets refused, opens an HTTP session and syncs both ways", async () => {
    const doc = `cors-sync-${randomUUID().slice(0, 8)}`;
    // The provider as an embedding app ships it, bundled for the page.
    const bundled = await build({
      stdin: { contents: 'export { EdgedocProvider } from "./client/fallback.ts"; export * as Y from "yjs";', resolveDir: process.cwd(), loader: "ts" },
      bundle: true,
      format: "iife",
      globalName: "Edgedoc",
      write: false,
    });
    const context = await browser.newContext();
    await context.routeWebSocket(/\/ws\//, (socket) => socket.close({ code: 1006, reason: "blocked by the network" }));
    const page = await context.newPage();
    await page.goto(`${allowed.origin}/`, { timeout: FETCH_TIMEOUT_MS });
    await page.addScriptTag({ content: bundled.outputFiles[0]!.text });
    await page.evaluate(
      ({ serverUrl, doc, token }) => {
        const { EdgedocProvider, Y } = (window as unknown as { Edgedoc: typeof import("../../client/fallback") & { Y: typeof import("yjs") } }).Edgedoc;
        const ydoc = new Y.Doc();
        const provider = new EdgedocProvider(serverUrl, doc, ydoc, { params: { token } });
        Object.assign(window, { provider, ydoc });
        provider.on("sync", (synced: boolean) => synced && ydoc.getText("codemirror").insert(0, "typed on another origin. "));
      },
      { serverUrl: server.wsUrl, doc, token: tokenFor(doc, "write") },
    );
    const pageText = () => page.evaluate(() => (window as unknown as { ydoc: import("yjs").Doc }).ydoc.getText("codemirror").toString());
    const deadline = Date.now() + 20_000;
    while (!(await serverReads(doc)).includes("typed on another origin.") && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await serverReads(doc)).toBe("typed on another origin. ");
    expect(await page.evaluate(() => (window as unknown as { provider: { transport: string } }).provider.transport)).toBe("http");

    const written = await fetch(`${server.origin}/api/docs/${doc}/text`, {
      method: "PUT",
      headers: { Authorization: `Bearer ${tokenFor(doc, "write")}`, "Content-Type": "text/plain" },
      body: "written by a server",
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    expect(written.status).toBe(200);
    for (let until = Date.now() + 10_000; (await pageText()) !== "written by a server" && Date.now() < until; ) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await pageText()).toBe("written by a server");
    await context.close();
  });
});
