/**
 * `npm run screenshot`: two people editing one document, side by side, for the README
 * (docs/two-editors.png). Starts its own wrangler dev and Chromium, like the browser tests.
 */
import { removePersistDir, startDevServer } from "../node/wrangler.ts";
import { launchChromium } from "./chromium.ts";
import type { Page } from "playwright-core";
import { VIEWPORT, openPerson } from "./pages.ts";

/** Pastes text at the end (typing would trigger Markdown's list continuation). */
async function pasteAtEnd(page: Page, text: string): Promise<void> {
  await page.click(".cm-content");
  await page.keyboard.press("Control+End");
  await page.keyboard.insertText(text);
}

async function setColor(page: Page, color: string): Promise<void> {
  await page.fill('[data-testid="my-color"]', color);
}

const server = await startDevServer();
const browser = await launchChromium();
try {
  const url = `${server.origin}/d/meeting-notes`;
  const ada = await openPerson(browser, url, "Ada");
  await setColor(ada, "#d1495b");
  await pasteAtEnd(ada, "# Meeting notes\n\n- Ship the editor on Friday\n- Bo: write the release post\n");
  const bo = await openPerson(browser, url, "Bo");
  await setColor(bo, "#30638e");
  await bo.waitForFunction(() => document.querySelector(".cm-content")?.textContent?.includes("release post"));
  await pasteAtEnd(bo, "- Ada: check the offline mode");
  await bo.keyboard.press("Shift+Home");
  await ada.click(".cm-line >> nth=2");
  await ada.keyboard.press("End");
  await ada.waitForTimeout(500);
  const [left, right] = await Promise.all([ada.screenshot(), bo.screenshot()]);
  const sheet = await (await browser.newContext({ viewport: { width: VIEWPORT.width * 2 + 24, height: VIEWPORT.height + 16 } })).newPage();
  const img = (png: Buffer) => `<img src="data:image/png;base64,${png.toString("base64")}" style="border:1px solid #ccc">`;
  await sheet.setContent(`<body style="margin:8px;display:flex;gap:8px;background:#e9e9e4">${img(left)}${img(right)}</body>`);
  await sheet.screenshot({ path: "docs/two-editors.png" });
  console.log("wrote docs/two-editors.png");
} finally {
  await browser.close();
  await server.stop();
  removePersistDir(server.persistDir);
}
