/**
 * `npm run screenshot`: two people editing one document, side by side, for the README
 * (docs/two-editors.png), the History panel beside one version's preview (docs/history.png),
 * and the home page (docs/home.png).
 * Starts its own wrangler dev and Chromium, like the browser tests.
 */
import { removePersistDir, startDevServer, type DevServer } from "../node/wrangler.ts";
import { launchChromium } from "./chromium.ts";
import type { Browser, Page } from "playwright-core";
import { VIEWPORT, connectionState, eventually, openPerson } from "./pages.ts";

const WAIT = { timeout: 15_000 };

/** Pastes text at the end (typing would trigger Markdown's list continuation). */
async function pasteAtEnd(page: Page, text: string): Promise<void> {
  await page.click(".cm-content");
  await page.keyboard.press("Control+End");
  await page.keyboard.insertText(text);
}

async function setColor(page: Page, color: string): Promise<void> {
  await page.fill('[data-testid="my-color"]', color);
}

/** Writes `pngs` side by side on a grey sheet to `path`. */
async function sideBySide(browser: Browser, pngs: Buffer[], path: string): Promise<void> {
  const width = pngs.length * (VIEWPORT.width + 8) + 8;
  const sheet = await (await browser.newContext({ viewport: { width, height: VIEWPORT.height + 16 } })).newPage();
  const img = (png: Buffer) => `<img src="data:image/png;base64,${png.toString("base64")}" style="border:1px solid #ccc">`;
  await sheet.setContent(`<body style="margin:8px;display:flex;gap:8px;background:#e9e9e4">${pngs.map(img).join("")}</body>`);
  await sheet.screenshot({ path });
  console.log(`wrote ${path}`);
}

/**
 * A document with some history: Ada's first draft (an autosave once she leaves), a version she
 * names with Bo, and their edits since. Shows the list, and the named version's preview.
 */
async function historyScreenshot(server: DevServer, browser: Browser): Promise<void> {
  const url = `${server.origin}/d/release-plan`;
  const first = await openPerson(browser, url, "Ada");
  await pasteAtEnd(first, "# Release plan\n\n- Freeze on Wednesday\n- Ship on Friday\n");
  await eventually(() => connectionState(first), (state) => state === "saved", "the first draft to be saved");
  await first.context().close();
  // The server takes the session-end version a few seconds after the last editor leaves.
  const versions = async () => ((await (await fetch(`${server.origin}/api/docs/release-plan/versions`)).json()) as unknown[]).length;
  await eventually(versions, (count) => count > 0, "the session-end version", 30_000);

  const ada = await openPerson(browser, url, "Ada");
  await setColor(ada, "#d1495b");
  const bo = await openPerson(browser, url, "Bo");
  await setColor(bo, "#30638e");
  await pasteAtEnd(bo, "- Bo: release notes\n");
  await ada.waitForFunction(() => document.querySelector(".cm-content")?.textContent?.includes("release notes"), undefined, WAIT);
  await ada.click('[data-testid="history"]', WAIT);
  await ada.click('[data-testid="save-version"]', WAIT);
  await ada.fill('[data-testid="version-name"]', "Plan agreed with Bo", WAIT);
  await ada.press('[data-testid="version-name"]', "Enter", WAIT);
  await ada.locator('[data-testid="version"]', { hasText: "Plan agreed" }).waitFor(WAIT);
  await ada.click('[data-testid="history-close"]', WAIT);

  // Since then: Friday slipped, and a line more.
  await ada.click(".cm-line >> nth=3", WAIT);
  await ada.keyboard.press("End");
  await ada.keyboard.press("Shift+Home");
  await ada.keyboard.insertText("- Ship on Monday (after the holiday)");
  await pasteAtEnd(ada, "- Ada: check the offline mode\n");
  await ada.click('[data-testid="history"]', WAIT);
  await ada.locator('[data-testid="version"]', { hasText: "Plan agreed" }).waitFor(WAIT);
  await ada.waitForTimeout(300);
  const list = await ada.screenshot();
  await ada.locator('[data-testid="version"]', { hasText: "Plan agreed" }).click(WAIT);
  await ada.locator('[data-testid="version-diff"] .cm-deletedChunk').first().waitFor(WAIT);
  await ada.waitForTimeout(300);
  await sideBySide(browser, [list, await ada.screenshot()], "docs/history.png");
}

/** The home page of someone who has opened and titled a few documents (docs/home.png). */
async function homeScreenshot(server: DevServer, browser: Browser): Promise<void> {
  const page = await (await browser.newContext({ viewport: VIEWPORT })).newPage();
  const documents = [
    ["onboarding-guide", "Onboarding guide", "# Onboarding guide\n\nWelcome aboard.\n"],
    ["release-plan", "Release plan", ""],
    ["meeting-notes", "Meeting notes, week 48", ""],
  ];
  for (const [name, title, text] of documents) {
    await page.goto(`${server.origin}/d/${name}`);
    await page.waitForSelector(".cm-content", WAIT);
    await page.fill('[data-testid="doc-title"]', title!, WAIT);
    await page.press('[data-testid="doc-title"]', "Enter", WAIT);
    if (text) await pasteAtEnd(page, text);
    await eventually(() => connectionState(page), (state) => state === "saved", `${title} to be saved`);
  }
  await page.goto(`${server.origin}/`);
  await eventually(() => page.locator('[data-testid="recent-edited"]', { hasText: "edited" }).count(), (count) => count === documents.length, "the last edits");
  await page.screenshot({ path: "docs/home.png" });
  console.log("wrote docs/home.png");
}

const server = await startDevServer();
const browser = await launchChromium();
try {
  const url = `${server.origin}/d/meeting-notes`;
  const ada = await openPerson(browser, url, "Ada");
  await setColor(ada, "#d1495b");
  await ada.fill('[data-testid="doc-title"]', "Weekly sync: release plan", WAIT);
  await ada.press('[data-testid="doc-title"]', "Enter", WAIT);
  await pasteAtEnd(ada, "# Meeting notes\n\n- Ship the editor on Friday\n- Bo: write the release post\n");
  const bo = await openPerson(browser, url, "Bo");
  await setColor(bo, "#30638e");
  await bo.waitForFunction(() => document.querySelector(".cm-content")?.textContent?.includes("release post"));
  await pasteAtEnd(bo, "- Ada: check the offline mode");
  await bo.keyboard.press("Shift+Home");
  await ada.click(".cm-line >> nth=2");
  await ada.keyboard.press("End");
  await ada.waitForTimeout(500);
  await sideBySide(browser, await Promise.all([ada.screenshot(), bo.screenshot()]), "docs/two-editors.png");
  await historyScreenshot(server, browser);
  await homeScreenshot(server, browser);
} finally {
  await browser.close();
  await server.stop();
  removePersistDir(server.persistDir);
}
