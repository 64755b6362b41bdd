/**
 * Presence and sessions you can trust, in a real Chromium against a real `wrangler dev`:
 * a hostile peer's presence is drawn as data, one browser's tabs are one person, and the
 * app's pages carry their Content-Security-Policy.
 */
import { randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import * as Y from "yjs";
import { cleanName, colorForClient, SHARED_TEXT_NAME, translucent } from "../../client/presence";
import { connectProvider, disconnectProvider, waitFor } from "../node/providers";
import type { DevServer } from "../node/wrangler";
import { browserUnavailableReason, withServerAndBrowser } from "./chromium";
import { connectionState, cspViolations, cursorLabels, editorText, eventually, openPerson, presenceNames, typeAtEnd } from "./pages";

const unavailable = browserUnavailableReason();

const EXPECTED_CSP =
  "default-src 'self'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
  "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * A style attribute made only of colour declarations whose value is a hex colour, or the
 * rgb()/rgba() Chromium rewrites one into when CodeMirror sets it through the CSSOM.
 */
const COLOR_ONLY_STYLE = /^\s*(?:(?:background-color|border-color|--person-color):\s*(?:#[0-9a-f]{3,8}|rgba?\(\d+, \d+, \d+(?:, [\d.]+)?\))\s*(?:;\s*|$))+$/i;

/** `#rrggbbaa` as Chromium serialises it. */
function rgba(hex: string): string {
  const [r, g, b, a] = [1, 3, 5, 7].map((at) => parseInt(hex.slice(at, at + 2), 16));
  return `rgba(${r}, ${g}, ${b}, ${Math.round((a! / 255) * 100) / 100})`;
}

/** Counts every request it gets: a page that fetches from it leaked. */
async function startTracker(): Promise<{ server: Server; url: string; hits: string[] }> {
  const hits: string[] = [];
  const server = createServer((request, response) => {
    hits.push(request.url ?? "");
    response.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits };
}

/** Dialogs the page opened (dismissed at once): a hostile peer should open none. */
function recordDialogs(page: Page): string[] {
  const dialogs: string[] = [];
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  return dialogs;
}

/** What sits where: the editor's box, and what the page's centre shows. */
function layout(page: Page): Promise<{ editor: DOMRect; centre: string }> {
  return page.evaluate(() => {
    const centre = document.elementFromPoint(innerWidth / 2, innerHeight / 2);
    return {
      editor: document.querySelector(".cm-editor")!.getBoundingClientRect().toJSON() as DOMRect,
      centre: centre ? `${centre.tagName}.${[...centre.classList].join(".")}` : "nothing",
    };
  });
}

/** Every style attribute in the editor's text and the presence list. */
function presenceStyles(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll('.cm-content [style], [data-testid="presence"] [style]')].map((element) => element.getAttribute("style")!),
  );
}

describe.skipIf(unavailable !== null)("presence you can trust, in Chromium", () => {
  let server: DevServer;
  let browser: Browser;

  withServerAndBrowser({}, (started, launched) => ([server, browser] = [started, launched]), () => ({ server, browser }));

  it("a hostile peer's colour and name change no layout, fetch nothing, run nothing", async () => {
    // The hostile colour would make Mallory's caret and selection cover the page and fetch from the tracker.
    const tracker = await startTracker();
    const room = `hostile-${randomUUID().slice(0, 8)}`;
    const ada = await openPerson(browser, `${server.origin}/d/${room}`, "Ada");
    const dialogs = recordDialogs(ada);
    await typeAtEnd(ada, "Hello, hostile world.");
    await eventually(() => connectionState(ada), (state) => state === "saved", "the server to confirm");

    const mallory = connectProvider(server, room);
    try {
      await waitFor(() => mallory.synced && mallory.doc.getText(SHARED_TEXT_NAME).toString() === "Hello, hostile world.", "Mallory to sync");
      const text = mallory.doc.getText(SHARED_TEXT_NAME);
      // A selection over "hostile", inside the visible text.
      const cursor = { anchor: Y.createRelativePositionFromTypeIndex(text, 7), head: Y.createRelativePositionFromTypeIndex(text, 14) };
      const name = `<img src=x onerror=alert(1)>\u0007\u202e${"y".repeat(100)}`;
      const shownName = cleanName(name);
      const color = colorForClient(mallory.doc.clientID);

      // First as an honest peer with the name as it will be shown: the layout with her pill and caret.
      mallory.awareness.setLocalState({ user: { name: shownName, color: "#123456" }, cursor });
      await eventually(() => presenceStyles(ada), (styles) => styles.some((style) => style.includes("#123456")), "Mallory's honest caret at Ada");
      const before = await layout(ada);

      const hostile = (path: string) => `red;position:fixed;inset:0;z-index:9999;background:url(${tracker.url}${path})`;
      mallory.awareness.setLocalState({ user: { name, color: hostile("/caret"), colorLight: hostile("/selection") }, cursor });
      const caretStyle = `background-color: ${color}; border-color: ${color}`;
      await eventually(() => presenceStyles(ada), (styles) => styles.includes(caretStyle), "Mallory's hostile caret at Ada");
      expect(await cursorLabels(ada)).toContain(shownName);
      expect(await presenceNames(ada)).toContain(shownName);
      await ada.waitForTimeout(500); // time for any fetch a style could start

      expect(await layout(ada)).toEqual(before);
      expect(tracker.hits).toEqual([]);
      expect(dialogs).toEqual([]);
      expect(await cspViolations(ada)).toEqual([]); // nothing even tried: the CSP had nothing to block
      expect(await ada.locator("img:not(.cm-widgetBuffer)").count()).toBe(0);
      expect(await editorText(ada)).toBe("Hello, hostile world.");

      const styles = await presenceStyles(ada);
      expect(styles.length).toBeGreaterThanOrEqual(3); // Mallory's caret and selection, and the pills
      for (const style of styles) expect(style).toMatch(COLOR_ONLY_STYLE);
      expect(styles).toContain(`background-color: ${rgba(translucent(color))};`);
      expect(shownName.startsWith("<img src=x onerror=alert(1)> yyy")).toBe(true);
    } finally {
      disconnectProvider(mallory);
      tracker.server.close();
    }
  });

  it("a peer's malformed cursor does not stop the other carets being drawn", async () => {
    const room = `cursor-${randomUUID().slice(0, 8)}`;
    const ada = await openPerson(browser, `${server.origin}/d/${room}`, "Ada");
    await typeAtEnd(ada, "carets");
    const broken = connectProvider(server, room);
    const bo = await openPerson(browser, `${server.origin}/d/${room}`, "Bo");
    try {
      await waitFor(() => broken.synced, "the broken peer to sync");
      // Y.createAbsolutePositionFromRelativePosition throws on this, in the plugin that draws every caret.
      broken.awareness.setLocalState({ user: { name: "Broken", color: "#abc" }, cursor: { anchor: {}, head: {} } });
      await eventually(() => presenceNames(ada), (names) => names.includes("Broken"), "the broken peer at Ada");
      await typeAtEnd(bo, "!");
      await eventually(() => cursorLabels(ada), (labels) => labels.includes("Bo"), "Bo's caret at Ada");
    } finally {
      disconnectProvider(broken);
    }
  });

  it("three tabs of one browser are one person with three tabs, each with its caret", async () => {
    const url = `${server.origin}/d/tabs-${randomUUID().slice(0, 8)}`;
    const firstTab = await openPerson(browser, url, "Ada");
    await typeAtEnd(firstTab, "one two three four");
    const tabs = [firstTab];
    for (let i = 0; i < 2; i++) {
      const tab = await firstTab.context().newPage();
      await tab.goto(url);
      await tab.waitForSelector(".cm-content");
      tabs.push(tab);
    }
    const bo = await openPerson(browser, url, "Bo");
    // Each tab puts its caret somewhere else: before "one", before "two", at the end.
    for (const [tab, keys] of [
      [tabs[0]!, ["Control+Home"]],
      [tabs[1]!, ["Control+Home", ..."one ".split("").map(() => "ArrowRight")]],
      [tabs[2]!, ["Control+End"]],
    ] as const) {
      await tab.click(".cm-content");
      for (const key of keys) await tab.keyboard.press(key);
    }

    await eventually(() => presenceNames(bo), (names) => names.join("|") === "Bo (you)|Ada · 3 tabs", "Ada once, with 3 tabs, at Bo");
    await eventually(() => presenceNames(tabs[1]!), (names) => names.join("|") === "Ada (you) · 3 tabs|Bo", "Ada's own tabs as one");
    const carets = bo.locator(".cm-ySelectionCaret", { hasText: "Ada" });
    await eventually(() => carets.count(), (count) => count === 3, "three carets of Ada at Bo");
    const lefts = await Promise.all([0, 1, 2].map(async (i) => (await carets.nth(i).boundingBox())!.x));
    expect(new Set(lefts).size).toBe(3);
  });

  it("serves the app's pages with the Content-Security-Policy, which the app runs under without a violation", async () => {
    for (const path of ["/", `/d/csp-${randomUUID().slice(0, 8)}`]) {
      const response = await fetch(`${server.origin}${path}`);
      expect(response.headers.get("content-security-policy")).toBe(EXPECTED_CSP);
      expect(response.headers.get("referrer-policy")).toBe("no-referrer");
    }

    const tracker = await startTracker();
    try {
      const room = `csp-${randomUUID().slice(0, 8)}`;
      const ada = await openPerson(browser, `${server.origin}/d/${room}`, "Ada");
      const bo = await openPerson(browser, `${server.origin}/d/${room}`, "Bo");
      // Same-origin ws: is allowed by connect-src 'self': the edit syncs and is confirmed.
      await typeAtEnd(ada, "under a policy");
      await eventually(() => editorText(bo), (text) => text === "under a policy", "the edit at Bo");
      await eventually(() => connectionState(ada), (state) => state === "saved", "the server to confirm");
      await ada.click('[data-testid="info"]');
      await eventually(() => ada.locator('[data-testid="info-panel"]').innerText(), (text) => /Connections\s+2/.test(text), "the stats");
      expect(await cspViolations(ada)).toEqual([]);

      // And the policy holds: the page cannot reach another origin.
      const outcome = await ada.evaluate((url) => fetch(url).then(() => "fetched", () => "blocked"), `${tracker.url}/exfiltrate`);
      expect(outcome).toBe("blocked");
      expect(tracker.hits).toEqual([]);
      expect(await cspViolations(ada)).toEqual([`connect-src ${tracker.url}/exfiltrate`]);
    } finally {
      tracker.server.close();
    }
  });
});
