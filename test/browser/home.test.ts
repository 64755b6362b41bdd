/**
 * The home page in a real Chromium against `wrangler dev`: documents created and titled from it
 * are listed newest first and reopen from it; removing one from the list keeps the document; the
 * list is filtered and asks the API for last edits lazily; and with the network off, a document
 * this browser has opened loads from the service worker and IndexedDB, takes edits, and they
 * reach the server once the network is back.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import type { DevServer } from "../node/wrangler";
import { browserUnavailableReason, withServerAndBrowser } from "./chromium";
import { connectionState, editorText, eventually, typeAtEnd, VIEWPORT } from "./pages";

const unavailable = browserUnavailableReason();

const HOME = '[data-testid="home"]';
const RECENT = '[data-testid="recent"]';

describe.skipIf(unavailable !== null)("the home page in Chromium", () => {
  let server: DevServer;
  let browser: Browser;

  withServerAndBrowser({}, (started, launched) => ([server, browser] = [started, launched]), () => ({ server, browser }));

  /** A new browser context (a person with an empty list) on the home page. */
  async function openHome(): Promise<Page> {
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    await goHome(page);
    return page;
  }

  async function goHome(page: Page): Promise<void> {
    await page.goto(`${server.origin}/`);
    await page.waitForSelector(HOME, { timeout: 15_000 });
  }

  /**
   * Clicks New document on the home page, titles the new document in the header and types
   * `text`; returns its name once the server has confirmed the text.
   */
  async function createFromHome(page: Page, title: string, text: string): Promise<string> {
    await page.click('[data-testid="new-document"]');
    await page.waitForURL(/\/d\/[A-Za-z0-9]{16}$/, { timeout: 15_000 });
    await page.waitForSelector(".cm-content", { timeout: 15_000 });
    await page.fill('[data-testid="doc-title"]', title);
    await page.press('[data-testid="doc-title"]', "Enter");
    await typeAtEnd(page, text);
    await eventually(() => connectionState(page), (state) => state === "saved", "the server to confirm the text");
    return new URL(page.url()).pathname.slice("/d/".length);
  }

  function listed(page: Page): Promise<{ name: string; title: string }[]> {
    return page.$$eval(RECENT, (items) =>
      items.map((item) => ({
        name: (item as HTMLElement).dataset.name!,
        title: item.querySelector('[data-testid="recent-title"]')!.textContent!,
      })),
    );
  }

  const entry = (page: Page, name: string) => page.locator(`${RECENT}[data-name="${name}"]`);

  async function serverText(name: string): Promise<string> {
    const response = await fetch(`${server.origin}/api/docs/${name}/text`, { signal: AbortSignal.timeout(10_000) });
    expect(response.status).toBe(200);
    return response.text();
  }

  /** Puts entries straight into the list's storage (client/recent.ts), as if this browser had opened them. */
  async function seedList(page: Page, entries: { name: string; title: string; openedAt: number }[]): Promise<void> {
    await page.evaluate((entries) => {
      for (const { name, ...stored } of entries) localStorage.setItem(`edgedoc:recent:${name}`, JSON.stringify({ ...stored, token: null, unconfirmed: false }));
    }, entries);
  }

  it("lists documents created and titled from the home page, newest first, and opens each", async () => {
    const page = await openHome();
    expect(await page.locator(RECENT).count()).toBe(0);
    expect(await page.textContent('[data-testid="recent-message"]')).toMatch(/No documents yet/);

    const groceries = await createFromHome(page, "Groceries", "milk, bread");
    await goHome(page);
    await eventually(() => listed(page), (items) => items.length === 1, "the first document in the list");
    const plan = await createFromHome(page, "Release plan", "ship on Friday");
    await goHome(page);

    await eventually(
      () => listed(page),
      (items) => JSON.stringify(items) === JSON.stringify([{ name: plan, title: "Release plan" }, { name: groceries, title: "Groceries" }]),
      "both documents, newest first, with their titles",
    );
    // Each entry's last edit comes from the API once it is on screen.
    for (const name of [plan, groceries]) {
      await eventually(() => entry(page, name).locator('[data-testid="recent-edited"]').textContent(), (text) => /edited/.test(text ?? ""), `${name}'s last edit`);
    }

    for (const [name, title, text] of [
      [plan, "Release plan", "ship on Friday"],
      [groceries, "Groceries", "milk, bread"],
    ] as const) {
      await entry(page, name).locator("a").click();
      await page.waitForURL(`${server.origin}/d/${name}`, { timeout: 15_000 });
      await page.waitForSelector(".cm-content", { timeout: 15_000 });
      await eventually(() => editorText(page), (shown) => shown === text, `${title}'s text`);
      await eventually(() => page.inputValue('[data-testid="doc-title"]'), (shown) => shown === title, `${title}'s title`);
      await goHome(page);
    }
    // Opened last, Groceries is first again.
    await eventually(() => listed(page), (items) => items.map((item) => item.name).join() === [groceries, plan].join(), "the order of the last openings");
    await page.context().close();
  });

  it("removing a document from the list keeps the document", async () => {
    const page = await openHome();
    const name = await createFromHome(page, "Keep me", "still here");
    await goHome(page);
    await eventually(() => listed(page), (items) => items.some((item) => item.name === name), "the document in the list");

    await entry(page, name).locator('[data-testid="remove-recent"]').click();
    await eventually(() => entry(page, name).count(), (count) => count === 0, "the entry to go");
    await goHome(page);
    expect(await entry(page, name).count()).toBe(0);

    expect(await serverText(name)).toBe("still here");
    await page.goto(`${server.origin}/d/${name}`);
    await page.waitForSelector(".cm-content", { timeout: 15_000 });
    await eventually(() => editorText(page), (text) => text === "still here", "the text by its link");
    await eventually(() => page.inputValue('[data-testid="doc-title"]'), (title) => title === "Keep me", "its title");
    await page.context().close();
  });

  it("filters a long list by title, shows titles as text, and asks for at most 20 last edits, for entries on screen", async () => {
    const page = await openHome();
    const lookups: string[] = [];
    page.on("request", (request) => {
      if (new URL(request.url()).pathname.startsWith("/api/docs/")) lookups.push(request.url());
    });
    const now = Date.now();
    const prefix = `seed-${randomUUID().slice(0, 8)}`;
    const seeded = Array.from({ length: 30 }, (_, i) => ({ name: `${prefix}-${i}`, title: `Notes ${i}`, openedAt: now - i * 60_000 }));
    seeded[29]!.title = '<img src="/x" onerror="window.injected = true">Quarterly report';
    await seedList(page, seeded);
    await page.reload();
    await page.waitForSelector(HOME, { timeout: 15_000 });

    expect((await listed(page)).map((item) => item.name)).toEqual(seeded.map((item) => item.name));
    // Only the entries on screen are asked about: the viewport holds a few of the 30.
    await eventually(async () => lookups.length, (count) => count > 0, "the first lookups");
    expect(lookups.length).toBeLessThan(15);
    for (let i = 0; i < seeded.length; i++) await page.locator(RECENT).nth(i).scrollIntoViewIfNeeded({ timeout: 5_000 });
    await eventually(async () => lookups.length, (count) => count >= 20, "20 lookups");
    await page.waitForTimeout(500);
    expect(lookups.length).toBe(20);

    // The markup in a title is text, never elements.
    const hostile = entry(page, seeded[29]!.name);
    expect(await hostile.locator('[data-testid="recent-title"]').textContent()).toBe(seeded[29]!.title);
    expect(await page.locator(`${HOME} img`).count()).toBe(0);
    expect(await page.evaluate(() => "injected" in window)).toBe(false);

    await page.fill('[data-testid="recent-filter"]', "quarterly");
    await eventually(() => listed(page), (items) => items.length === 1 && items[0]!.name === seeded[29]!.name, "the filtered list");
    await page.fill('[data-testid="recent-filter"]', "no such title");
    await eventually(() => page.textContent('[data-testid="recent-message"]'), (text) => /No document title contains/.test(text ?? ""), "the no-match message");
    await page.context().close();
  });

  it("with the network off, a document opened before loads from the service worker and IndexedDB and takes edits, which reach the server later", async () => {
    const context: BrowserContext = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    await page.goto(`${server.origin}/new`);
    await page.waitForSelector(".cm-content", { timeout: 15_000 });
    const name = new URL(page.url()).pathname.slice("/d/".length);
    await typeAtEnd(page, "written online.");
    await eventually(() => connectionState(page), (state) => state === "saved", "the server to confirm");
    // The service worker has installed (it keeps the whole app before it activates) and controls the page.
    await eventually(() => page.evaluate(() => navigator.serviceWorker.controller !== null), (controlled) => controlled, "the service worker", 30_000);

    await context.setOffline(true);
    await eventually(() => connectionState(page), (state) => state === "offline", "the page to show offline");
    const reloaded = await page.reload();
    expect(reloaded?.fromServiceWorker(), "the page came from the service worker").toBe(true);
    expect(await page.evaluate(() => fetch("/healthz").then(() => "reached", () => "failed")), "the network is off").toBe("failed");
    await page.waitForSelector(".cm-content", { timeout: 15_000 });
    await eventually(() => editorText(page), (text) => text === "written online.", "the text from IndexedDB");
    await typeAtEnd(page, " written offline.");
    await eventually(() => editorText(page), (text) => text === "written online. written offline.", "the offline edit");

    // The home page loads offline too, and marks the document's edits as not yet saved.
    const home = await context.newPage();
    const homeResponse = await home.goto(`${server.origin}/`);
    expect(homeResponse?.fromServiceWorker()).toBe(true);
    await home.waitForSelector(HOME, { timeout: 15_000 });
    await eventually(() => entry(home, name).locator('[data-testid="recent-note"]').allTextContents(), (notes) => notes.includes("Unsaved edits"), "the unsaved mark");
    expect(await serverText(name)).toBe("written online.");

    await context.setOffline(false);
    await eventually(() => serverText(name), (text) => text === "written online. written offline.", "the offline edit at the server", 30_000);
    await eventually(() => connectionState(page), (state) => state === "saved", "the page's edits confirmed", 30_000);
    await eventually(() => entry(home, name).locator('[data-testid="recent-note"]').allTextContents(), (notes) => !notes.includes("Unsaved edits"), "the unsaved mark to go");
    await context.close();
  });
});
