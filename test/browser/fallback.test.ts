/**
 * The HTTP fallback in a real Chromium against a real `wrangler dev`: people whose network
 * refuses every WebSocket to `/ws/*` (Playwright's `routeWebSocket` closes each before it
 * opens, as a proxy that strips `Upgrade` does) edit with someone on WebSockets and a stock
 * y-websocket provider, with presence, offline spells, reloads and an honest save indicator.
 */
import { randomUUID } from "node:crypto";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { WebsocketProvider } from "y-websocket";
import { connectProvider, disconnectProvider, textOf, waitFor } from "../node/providers";
import type { DevServer } from "../node/wrangler";
import { browserUnavailableReason, withServerAndBrowser } from "./chromium";
import { VIEWPORT, connectionState, editorText, eventually, presenceNames, setName, typeAtEnd } from "./pages";

const unavailable = browserUnavailableReason();

const status = (page: Page) => page.locator('[data-testid="status"]');

/** A person whose network refuses WebSockets: every one is closed before it opens. */
async function openBlockedPerson(browser: Browser, url: string, name: string): Promise<{ page: Page; context: BrowserContext; attempts: () => number }> {
  const context = await browser.newContext({ viewport: VIEWPORT });
  let attempts = 0;
  await context.routeWebSocket(/\/ws\//, async (socket) => {
    attempts += 1;
    await socket.close({ code: 1006, reason: "blocked by the network" });
  });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector(".cm-content");
  await setName(page, name);
  return { page, context, attempts: () => attempts };
}

async function serverText(server: DevServer, room: string): Promise<string> {
  const response = await fetch(`${server.origin}/api/docs/${room}/text`);
  return response.text();
}

describe.skipIf(unavailable !== null)("with WebSockets refused, the HTTP fallback in Chromium", () => {
  let server: DevServer;
  let browser: Browser;
  const providers: WebsocketProvider[] = [];

  withServerAndBrowser({}, (started, launched) => ([server, browser] = [started, launched]), () => ({ server, browser }));
  afterAll(() => providers.splice(0).forEach(disconnectProvider));

  let room: string;
  let ada: Awaited<ReturnType<typeof openBlockedPerson>>;
  let bea: Awaited<ReturnType<typeof openBlockedPerson>>;
  let stock: WebsocketProvider;

  beforeAll(async () => {
    room = `fallback-${randomUUID().slice(0, 8)}`;
    stock = connectProvider(server, room);
    providers.push(stock);
    stock.awareness.setLocalStateField("user", { name: "Stock", color: "#336699" });
    ada = await openBlockedPerson(browser, `${server.origin}/d/${room}`, "Ada");
    bea = await openBlockedPerson(browser, `${server.origin}/d/${room}`, "Bea");
  });

  it("loads, says it is on HTTP, and tried WebSockets about three times first", async () => {
    for (const person of [ada, bea]) {
      await eventually(() => connectionState(person.page), (state) => state === "saved", "the fallback to connect and sync");
      expect(await status(person.page).getAttribute("data-transport")).toBe("http");
      expect(await status(person.page).textContent()).toMatch(/over HTTP/);
      expect(person.attempts()).toBeGreaterThanOrEqual(3);
      expect(person.attempts()).toBeLessThanOrEqual(4);
    }
  });

  it("two people on the fallback, a WebSocket user and a stock provider see each other's typing and presence", async () => {
    await typeAtEnd(ada.page, "Ada over HTTP. ");
    await eventually(() => editorText(bea.page), (text) => text.includes("Ada over HTTP."), "Bea to see Ada's typing");
    await waitFor(() => textOf(stock).includes("Ada over HTTP."), "the stock provider to see Ada's typing");
    await typeAtEnd(bea.page, "Bea too. ");
    await eventually(() => editorText(ada.page), (text) => text.includes("Bea too."), "Ada to see Bea's typing");
    stock.doc.getText("codemirror").insert(0, "Stock on a WebSocket. ");
    for (const person of [ada, bea]) {
      await eventually(() => editorText(person.page), (text) => text.startsWith("Stock on a WebSocket."), "the stock provider's typing over HTTP");
    }
    for (const person of [ada, bea]) {
      await eventually(() => presenceNames(person.page), (names) => ["Ada", "Bea", "Stock"].every((name) => names.some((shown) => shown.startsWith(name))), "everyone's presence");
    }
    const stockSees = () => [...stock.awareness.getStates().values()].map((state) => (state as { user?: { name?: string } }).user?.name);
    await waitFor(() => stockSees().includes("Ada") && stockSees().includes("Bea"), "the stock provider to see both people on HTTP");
    expect(textOf(stock)).toBe(await editorText(ada.page));
  });

  it("says saved only once the server has the edit", async () => {
    await typeAtEnd(ada.page, "Saved for sure. ");
    await eventually(() => connectionState(ada.page), (state) => state === "saved", "Ada's edit to be confirmed");
    expect(await serverText(server, room)).toContain("Saved for sure.");
  });

  it("offline keeps edits unsaved and says so; back online they reach everyone and are saved", async () => {
    await ada.context.setOffline(true);
    await eventually(() => connectionState(ada.page), (state) => state === "offline", "Ada to show offline");
    await typeAtEnd(ada.page, "Typed offline. ");
    expect(await status(ada.page).textContent()).toMatch(/unsaved changes/);
    expect(textOf(stock)).not.toContain("Typed offline.");
    await ada.context.setOffline(false);
    await eventually(() => connectionState(ada.page), (state) => state === "saved", "Ada's offline edit to be saved once back");
    expect(await status(ada.page).getAttribute("data-transport")).toBe("http");
    await waitFor(() => textOf(stock).includes("Typed offline."), "the offline edit to reach the stock provider");
    expect(await serverText(server, room)).toContain("Typed offline.");
  });

  it("a reload comes back on the fallback with the document and presence", async () => {
    await bea.page.reload();
    await bea.page.waitForSelector(".cm-content");
    await eventually(() => connectionState(bea.page), (state) => state === "saved", "Bea to reconnect after the reload");
    expect(await status(bea.page).getAttribute("data-transport")).toBe("http");
    expect(await editorText(bea.page)).toBe(textOf(stock));
    await eventually(() => presenceNames(ada.page), (names) => names.some((name) => name.startsWith("Bea")), "Bea's presence back for Ada");
    await typeAtEnd(bea.page, "After the reload. ");
    await waitFor(() => textOf(stock).includes("After the reload."), "Bea's typing after the reload");
  });

  it("someone leaving is gone from the others' presence at once, not after a timeout", async () => {
    // A closing tab sends its leave with `keepalive` (client/http-socket.ts), as a closing socket's close frame.
    await bea.page.close({ runBeforeUnload: true });
    const stockSees = () => [...stock.awareness.getStates().values()].map((state) => (state as { user?: { name?: string } }).user?.name);
    // The awareness timeout would take 30 s; leaving takes one request.
    await waitFor(() => !stockSees().includes("Bea"), "Bea's presence to go", 10_000);
    await eventually(() => presenceNames(ada.page), (names) => !names.some((name) => name.startsWith("Bea")), "Bea gone for Ada", 10_000);
    await bea.context.close();
  });
});
