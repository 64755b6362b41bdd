/**
 * What a person does and sees in the app, for browser tests and the README screenshot.
 */
import type { Browser, Page } from "playwright-core";
import { execFileSync } from "node:child_process";
import type { DevServer } from "../node/wrangler.ts";

export const VIEWPORT = { width: 760, height: 480 };

/**
 * Opens `url` in a new browser context (a separate "person") and waits for the editor. Its
 * pages record Content-Security-Policy violations from their first script on ({@link cspViolations}).
 */
export async function openPerson(browser: Browser, url: string, name: string): Promise<Page> {
  const context = await browser.newContext({ viewport: VIEWPORT });
  await context.addInitScript(() => {
    const violations: string[] = [];
    Object.assign(window, { cspViolations: violations });
    document.addEventListener("securitypolicyviolation", (event) => violations.push(`${event.violatedDirective} ${event.blockedURI}`));
  });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector(".cm-content");
  await setName(page, name);
  return page;
}

export async function setName(page: Page, name: string): Promise<void> {
  await page.fill('[data-testid="my-name"]', name);
  await page.press('[data-testid="my-name"]', "Enter");
  await page.dispatchEvent('[data-testid="my-name"]', "change");
}

/** Types at the end of the document, as a person clicking into the editor would. */
export async function typeAtEnd(page: Page, text: string): Promise<void> {
  await page.click(".cm-content");
  await page.keyboard.press("Control+End");
  await page.keyboard.type(text);
}

/** The editor's text as the person sees it, without the remote-cursor name labels. */
export function editorText(page: Page): Promise<string> {
  return page.evaluate(() =>
    [...document.querySelectorAll(".cm-line")]
      .map((line) => {
        const copy = line.cloneNode(true) as HTMLElement;
        copy.querySelectorAll(".cm-ySelectionCaret").forEach((caret) => caret.remove());
        return (copy.textContent ?? "").replace(/\u2060/g, "");
      })
      .join("\n"),
  );
}

/** Names in the "who is here" list. */
export function presenceNames(page: Page): Promise<string[]> {
  return page.locator('[data-testid="presence"] li').allTextContents();
}

/** Names on remote cursors in the editor. */
export function cursorLabels(page: Page): Promise<string[]> {
  return page.locator(".cm-ySelectionInfo").allTextContents();
}

/** How many updates y-indexeddb holds for document `name` in this page's browser context. */
export function locallyStoredUpdates(page: Page, name: string): Promise<number> {
  return page.evaluate(
    (dbName) =>
      new Promise<number>((resolve, reject) => {
        const open = indexedDB.open(dbName);
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains("updates")) return resolve(0);
          const count = db.transaction("updates").objectStore("updates").count();
          count.onsuccess = () => resolve(count.result);
          count.onerror = () => reject(count.error);
        };
      }),
    `edgedoc:${name}`,
  );
}

/** What the page's Content-Security-Policy blocked so far, as "directive blocked-URL". */
export function cspViolations(page: Page): Promise<string[]> {
  return page.evaluate(() => (window as unknown as { cspViolations: string[] }).cspViolations);
}

export function connectionState(page: Page): Promise<string | null> {
  return page.getAttribute('[data-testid="status"]', "data-state");
}

/** Polls an async check in the page (every wait is bounded so a broken test fails, not hangs). */
export async function eventually<T>(read: () => Promise<T>, accept: (value: T) => boolean, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Runs the minting script as a user would (`npm run token`, with `secret` as AUTH_SECRET) and
 * returns the share link it prints; `name` becomes the token's user name.
 */
export function mintLink(
  server: DevServer,
  secret: string,
  doc: string,
  mode: "read" | "write",
  { ttl = "1h", name }: { ttl?: string; name?: string } = {},
): string {
  const output = execFileSync(
    process.execPath,
    [
      "--experimental-transform-types",
      "--disable-warning=ExperimentalWarning",
      "scripts/token.ts",
      ...["--doc", doc, "--mode", mode, "--ttl", ttl, "--url", server.origin],
      ...(name ? ["--name", name] : []),
    ],
    { env: { ...process.env, AUTH_SECRET: secret }, encoding: "utf8" },
  );
  return output.trim().split("\n")[1]!;
}
