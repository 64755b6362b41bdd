/**
 * The History panel in a real Chromium against `wrangler dev`: saving a named version, its
 * preview against the current text, a restore that reaches every editor live, what a read-only
 * link may do, and errors shown in the panel.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import type { DevServer } from "../node/wrangler";
import { browserUnavailableReason, withServerAndBrowser } from "./chromium";
import { connectionState, cspViolations, editorText, eventually, mintLink, openPerson, typeAtEnd } from "./pages";

const AUTH_SECRET = "history-test-secret";
/** Playwright's own waits (clicks, selectors), bounded like every other wait here. */
const WAIT = { timeout: 15_000 };
const unavailable = browserUnavailableReason();


const version = (page: Page, text: string) => page.locator('[data-testid="version"]', { hasText: text });
const message = (page: Page) => page.textContent('[data-testid="history-message"]');

async function openHistory(page: Page): Promise<void> {
  await page.click('[data-testid="history"]', WAIT);
  await page.locator('[data-testid="history-panel"]').waitFor({ state: "visible", ...WAIT });
}

async function closeHistory(page: Page): Promise<void> {
  await page.click('[data-testid="history-close"]', WAIT);
  await page.locator('[data-testid="history-panel"]').waitFor({ state: "hidden", ...WAIT });
}

/** Saves a named version through the panel's inline name field (the panel is open). */
async function saveVersion(page: Page, name: string): Promise<void> {
  await page.click('[data-testid="save-version"]', WAIT);
  await page.fill('[data-testid="version-name"]', name, WAIT);
  await page.press('[data-testid="version-name"]', "Enter", WAIT);
  await version(page, name).waitFor(WAIT);
}

describe.skipIf(unavailable !== null)("the History panel in Chromium", () => {
  let server: DevServer;
  let browser: Browser;

  withServerAndBrowser({ vars: { AUTH_SECRET } }, (started, launched) => ([server, browser] = [started, launched]), () => ({ server, browser }));

  it("saves a named version, previews its differences, and restores it for everyone live", async () => {
    const doc = `history-${randomUUID().slice(0, 8)}`;
    const ada = await openPerson(browser, mintLink(server, AUTH_SECRET, doc, "write", { name: "Ada" }), "Ada");
    const bo = await openPerson(browser, mintLink(server, AUTH_SECRET, doc, "write", { name: "Bo" }), "Bo");
    await typeAtEnd(ada, "First draft.");
    await openHistory(ada);
    await saveVersion(ada, "Draft one");
    expect(await message(ada)).toBe("Saved “Draft one”.");
    const saved = version(ada, "Draft one");
    expect(await saved.textContent()).toMatch(/now|second|minute/);
    expect(await saved.textContent()).toContain("by Ada");
    await closeHistory(ada);

    await typeAtEnd(ada, " Second thoughts.");
    await eventually(() => editorText(bo), (text) => text === "First draft. Second thoughts.", "Ada's edit at Bo");
    await eventually(() => connectionState(ada), (state) => state === "saved", "Ada's edit to be saved");
    await openHistory(ada);
    await version(ada, "Draft one").click(WAIT);
    // @codemirror/merge marks what the current text added since the version.
    const diff = ada.locator('[data-testid="version-diff"]');
    await diff.locator(".cm-changedText", { hasText: "Second thoughts." }).first().waitFor(WAIT);
    expect(await diff.locator(".cm-deletedChunk").allTextContents()).toEqual(["First draft."]);
    expect(await ada.textContent('[data-testid="history-title"]')).toBe("Draft one");

    // A collaborator's edit shows in the open preview: it always compares with the current text.
    await typeAtEnd(bo, " Bo was here.");
    await diff.locator(".cm-changedText", { hasText: "Bo was here." }).first().waitFor(WAIT);

    await ada.click('[data-testid="restore"]', WAIT);
    await eventually(() => editorText(ada), (text) => text === "First draft.", "the restored text at Ada");
    await eventually(() => editorText(bo), (text) => text === "First draft.", "the restored text at Bo");
    await diff.waitFor({ state: "hidden", ...WAIT });
    expect(await ada.getAttribute('[data-testid="history-panel"]', "data-view")).toBe("list");
    await version(ada, "Before restore").first().waitFor(WAIT);
    expect(await message(ada)).toMatch(/^Restored “Draft one”/);
    expect(await cspViolations(ada)).toEqual([]);
  });

  it("a read-only link lists and previews versions, but offers neither Restore nor Save version", async () => {
    const doc = `history-read-${randomUUID().slice(0, 8)}`;
    const writer = await openPerson(browser, mintLink(server, AUTH_SECRET, doc, "write", { name: "Wren" }), "Wren");
    await typeAtEnd(writer, "Kept in a version.");
    await openHistory(writer);
    await saveVersion(writer, "Milestone");
    await typeAtEnd(writer, " Added later.");

    const reader = await openPerson(browser, mintLink(server, AUTH_SECRET, doc, "read"), "Reed");
    await eventually(() => editorText(reader), (text) => text === "Kept in a version. Added later.", "the text at the reader");
    await openHistory(reader);
    await version(reader, "Milestone").waitFor(WAIT);
    expect(await reader.isVisible('[data-testid="save-version"]')).toBe(false);
    await version(reader, "Milestone").click(WAIT);
    await reader.locator('[data-testid="version-diff"] .cm-changedText', { hasText: "Added later." }).first().waitFor(WAIT);
    expect(await reader.isVisible('[data-testid="restore"]')).toBe(false);
    expect(await reader.isVisible('[data-testid="history-back"]')).toBe(true);

    await reader.click('[data-testid="history-back"]', WAIT);
    await version(reader, "Milestone").waitFor(WAIT);
    expect(await reader.isVisible('[data-testid="save-version"]')).toBe(false);
  });

  it("shows errors in the panel instead of throwing: offline, and a refused name", async () => {
    const doc = `history-errors-${randomUUID().slice(0, 8)}`;
    const ada = await openPerson(browser, mintLink(server, AUTH_SECRET, doc, "write"), "Ada");
    const errors: string[] = [];
    ada.on("pageerror", (error) => errors.push(error.message));
    await typeAtEnd(ada, "Some text.");
    await openHistory(ada);
    await closeHistory(ada);

    await ada.context().setOffline(true);
    await openHistory(ada);
    await eventually(() => message(ada), (text) => /cannot be reached/.test(text ?? ""), "the offline message");
    await ada.context().setOffline(false);

    // Only blanks: the panel asks for a name and sends nothing.
    await ada.click('[data-testid="save-version"]', WAIT);
    await ada.fill('[data-testid="version-name"]', "   ", WAIT);
    await ada.click('[data-testid="save-version-confirm"]', WAIT);
    await eventually(() => message(ada), (text) => text === "Give the version a name.", "the name prompt");
    expect(await ada.locator('[data-testid="version"]').count()).toBe(0);
    expect(errors).toEqual([]);
  });
});
