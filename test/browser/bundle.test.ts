/**
 * What the app downloads, in a real Chromium against `wrangler dev`: a document's text paints
 * before the code that highlights its language is asked for, and the home page loads none of
 * the editor's code.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import type { DevServer } from "../node/wrangler";
import { browserUnavailableReason, withServerAndBrowser } from "./chromium";
import { eventually, openPerson, VIEWPORT } from "./pages";

const unavailable = browserUnavailableReason();

/** A script the page fetched, from its Resource Timing entry (times in the page's performance.now()). */
interface ScriptLoad {
  path: string;
  startTime: number;
  responseEnd: number;
  transferSize: number;
  encodedBodySize: number;
  decodedBodySize: number;
}

/**
 * Whether `path` is a language's highlighting: the chunks vite.config.ts names after the
 * CodeMirror language package they hold (`assets/lang-markdown-<hash>.js`, ...).
 */
function isLanguageChunk(path: string): boolean {
  return /^\/assets\/lang-[a-z]+-[\w-]+\.js$/.test(path);
}

/**
 * Whether the built script at `path` holds CodeMirror's view (its class names) or Yjs (the
 * warning it prints when loaded twice): the editor's code, which the home page must not load.
 */
function holdsEditorCode(path: string): boolean {
  const code = readFileSync(`dist/client${path}`, "utf8");
  return code.includes("cm-content") || code.includes("Yjs was already imported");
}

async function putText(server: DevServer, name: string, text: string): Promise<void> {
  const response = await fetch(`${server.origin}/api/docs/${name}/text`, { method: "PUT", body: text });
  expect(response.status).toBe(200);
}

/**
 * Opens `url` in a fresh context (empty cache and IndexedDB) that notes, as window.textShownAt,
 * when `.cm-content` first contains `marker`.
 */
async function openRecordingTextShown(browser: Browser, url: string, marker: string): Promise<Page> {
  const context = await browser.newContext({ viewport: VIEWPORT });
  await context.addInitScript((marker) => {
    new MutationObserver((_, observer) => {
      if (!document.querySelector(".cm-content")?.textContent?.includes(marker)) return;
      Object.assign(window, { textShownAt: performance.now() });
      observer.disconnect();
    }).observe(document, { subtree: true, childList: true, characterData: true });
  }, marker);
  const page = await context.newPage();
  await page.goto(url);
  return page;
}

function scriptLoads(page: Page): Promise<ScriptLoad[]> {
  return page.evaluate(() =>
    (performance.getEntriesByType("resource") as PerformanceResourceTiming[])
      .filter((entry) => new URL(entry.name).pathname.endsWith(".js"))
      .map((entry) => ({
        path: new URL(entry.name).pathname,
        startTime: entry.startTime,
        responseEnd: entry.responseEnd,
        transferSize: entry.transferSize,
        encodedBodySize: entry.encodedBodySize,
        decodedBodySize: entry.decodedBodySize,
      })),
  );
}

/** Syntax-highlighted spans in the editor; remote cursors (.cm-y*) are spans too but not highlighting. */
function highlightedSpans(page: Page): Promise<number> {
  return page.evaluate(() => [...document.querySelectorAll(".cm-line span")].filter((span) => !/\bcm-y/.test(span.className)).length);
}

/** Bytes of `scripts`: on the wire with headers, bodies as sent (wrangler dev gzips them), and unpacked. */
function byteTotals(scripts: ScriptLoad[]) {
  const sum = (bytes: (script: ScriptLoad) => number) => scripts.reduce((total, script) => total + bytes(script), 0);
  return {
    scripts: scripts.length,
    transferred: sum((script) => script.transferSize),
    encoded: sum((script) => script.encodedBodySize),
    decoded: sum((script) => script.decodedBodySize),
  };
}

describe.skipIf(unavailable !== null)("loading the app in Chromium", () => {
  let server: DevServer;
  let browser: Browser;

  withServerAndBrowser({}, (started, launched) => ([server, browser] = [started, launched]), () => ({ server, browser }));

  it("shows a Markdown document's text before it asks for the Markdown code, then highlights it", async () => {
    const name = `lazy-${randomUUID().slice(0, 8)}`;
    const marker = "Notes that load first";
    await putText(server, name, `# ${marker}\n\nThe text shows *before* its highlighting.\n`);
    const page = await openRecordingTextShown(browser, `${server.origin}/d/${name}`, marker);
    await eventually(() => highlightedSpans(page), (spans) => spans > 0, "Markdown highlighting");

    const textShownAt = await page.evaluate(() => (window as unknown as { textShownAt: number }).textShownAt);
    const scripts = await scriptLoads(page);
    const languageCode = scripts.filter((script) => isLanguageChunk(script.path));
    console.info("JS before the text showed:", byteTotals(scripts.filter((script) => script.responseEnd <= textShownAt)));
    console.info("JS once highlighted:", byteTotals(scripts));
    expect(languageCode.length, "highlighting comes in chunks of its own").toBeGreaterThan(0);
    for (const script of languageCode) expect(script.startTime, `${script.path} asked for after the text showed`).toBeGreaterThan(textShownAt);
  });

  it("the home page loads none of the editor's code", async () => {
    const context = await browser.newContext({ viewport: VIEWPORT });
    const page = await context.newPage();
    await page.goto(`${server.origin}/`);
    await page.waitForSelector('[data-testid="home"]');
    const home = await scriptLoads(page);
    console.info("JS of the home page:", byteTotals(home));
    for (const script of home) expect(holdsEditorCode(script.path), `${script.path} on the home page`).toBe(false);

    // The check can tell: the document view's scripts do hold the editor.
    await page.click('[data-testid="new-document"]');
    await page.waitForSelector(".cm-content");
    const view = await scriptLoads(page);
    console.info("JS of the document view:", byteTotals(view));
    expect(view.some((script) => holdsEditorCode(script.path))).toBe(true);
    await context.close();
  });

  it("a language picked by one person highlights everyone's editor", async () => {
    const name = `switch-${randomUUID().slice(0, 8)}`;
    // A Markdown paragraph, so nothing is highlighted until it is read as code.
    await putText(server, name, "const answer = 42;\n");
    const url = `${server.origin}/d/${name}`;
    const [ada, bo] = [await openPerson(browser, url, "Ada"), await openPerson(browser, url, "Bo")];
    await eventually(() => ada.textContent(".cm-content"), (text) => text === "const answer = 42;", "the text at Ada");
    expect(await highlightedSpans(bo)).toBe(0);

    await ada.selectOption('[data-testid="language"]', "javascript");
    await eventually(() => bo.inputValue('[data-testid="language"]'), (value) => value === "javascript", "Bo's language picker");
    await eventually(() => highlightedSpans(bo), (spans) => spans > 0, "JavaScript highlighting at Bo");

    await bo.selectOption('[data-testid="language"]', "plain");
    await eventually(() => highlightedSpans(ada), (spans) => spans === 0, "plain text at Ada");
  });
});
