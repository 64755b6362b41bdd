/**
 * The app in a real Chromium against a real `wrangler dev`.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import { connectProvider, disconnectProvider, textOf, waitFor } from "../node/providers";
import { startDevServer, type DevServer } from "../node/wrangler";
import { browserUnavailableReason, withServerAndBrowser } from "./chromium";
import { connectionState, cursorLabels, editorText, eventually, locallyStoredUpdates, openPerson, presenceNames, typeAtEnd } from "./pages";

const unavailable = browserUnavailableReason();
if (unavailable) console.warn(unavailable);

describe.skipIf(unavailable !== null)("the editor in Chromium", () => {
  let server: DevServer;
  let browser: Browser;

  withServerAndBrowser({}, (started, launched) => ([server, browser] = [started, launched]), () => ({ server, browser }));

  it("/new creates a new document with an unguessable name", async () => {
    const ada = await openPerson(browser, `${server.origin}/new`, "Ada");
    const first = new URL(ada.url()).pathname;
    expect(first).toMatch(/^\/d\/[A-Za-z0-9]{16}$/);
    await ada.goto(`${server.origin}/new`);
    await ada.waitForSelector(".cm-content");
    expect(new URL(ada.url()).pathname).toMatch(/^\/d\/[A-Za-z0-9]{16}$/);
    expect(new URL(ada.url()).pathname).not.toBe(first);
  });

  it("two people edit together: text, presence and cursor labels", async () => {
    const url = `${server.origin}/d/pair-${randomUUID().slice(0, 8)}`;
    const [ada, bo] = [await openPerson(browser, url, "Ada"), await openPerson(browser, url, "Bo")];
    await typeAtEnd(ada, "Hello from Ada.");
    await eventually(() => editorText(bo), (text) => text.includes("Hello from Ada."), "Ada's text at Bo");
    await typeAtEnd(bo, " And Bo.");
    await eventually(() => editorText(ada), (text) => text.includes("Hello from Ada. And Bo."), "Bo's text at Ada");
    await eventually(() => presenceNames(ada), (names) => names.includes("Ada (you)") && names.includes("Bo"), "Ada's presence list");
    await eventually(() => presenceNames(bo), (names) => names.includes("Bo (you)") && names.includes("Ada"), "Bo's presence list");
    await eventually(() => cursorLabels(ada), (labels) => labels.includes("Bo"), "Bo's cursor at Ada");
    await eventually(() => cursorLabels(bo), (labels) => labels.includes("Ada"), "Ada's cursor at Bo");
    expect(await connectionState(ada)).toBe("saved");

    await bo.context().close();
    await eventually(() => presenceNames(ada), (names) => !names.includes("Bo"), "Bo to leave Ada's list");
  });

  it("tabs of one browser stay in sync, and a reload shows the content", async () => {
    const url = `${server.origin}/d/tabs-${randomUUID().slice(0, 8)}`;
    const first = await openPerson(browser, url, "Cy");
    const second = await first.context().newPage();
    await second.goto(url);
    await typeAtEnd(first, "typed in the first tab");
    await eventually(() => editorText(second), (text) => text === "typed in the first tab", "the second tab");
    await eventually(() => connectionState(first), (state) => state === "saved", "the server to confirm");
    await second.reload();
    await second.waitForSelector(".cm-content");
    await eventually(() => editorText(second), (text) => text === "typed in the first tab", "the content after a reload");
  });

  it("offline edits are kept and merge when the connection returns", async () => {
    const room = `offline-${randomUUID().slice(0, 8)}`;
    const url = `${server.origin}/d/${room}`;
    const [ada, bo] = [await openPerson(browser, url, "Ada"), await openPerson(browser, url, "Bo")];
    await typeAtEnd(ada, "start.");
    await eventually(() => editorText(bo), (text) => text === "start.", "the first edit at Bo");

    await bo.context().setOffline(true);
    await eventually(() => connectionState(bo), (state) => state === "offline", "Bo to show offline");
    const storedBefore = await locallyStoredUpdates(bo, room);
    await typeAtEnd(bo, " bo-offline.");
    await typeAtEnd(ada, " ada-online.");
    await eventually(() => editorText(ada), (text) => text.includes("ada-online."), "Ada's own edit");
    // While Bo is offline, neither sees the other's new edit.
    expect(await editorText(ada)).not.toContain("bo-offline");
    expect(await editorText(bo)).not.toContain("ada-online");
    expect(await bo.textContent('[data-testid="status"]')).toMatch(/unsaved changes/);

    // Every keystroke is an update y-indexeddb writes asynchronously; wait until all are on disk.
    await eventually(() => locallyStoredUpdates(bo, room), (count) => count >= storedBefore + " bo-offline.".length, "Bo's edits in IndexedDB");
    // The offline edit is in IndexedDB: it survives a reload that cannot reach the server
    // (the page's WebSocket is routed to nowhere, since a reload needs the network for the page).
    await bo.routeWebSocket(/\/ws\//, () => {});
    await bo.context().setOffline(false);
    await bo.reload();
    await bo.waitForSelector(".cm-content");
    // What matters here is that the offline edit survived the reload. (Ada's edit may already be
    // there too: a frame the server relayed as Bo went offline can reach IndexedDB before the reload.)
    await eventually(() => editorText(bo), (text) => text.startsWith("start.") && text.endsWith(" bo-offline."), "Bo's offline edit after a reload");

    // A tab that can reach the server brings both edits together.
    const boAgain = await bo.context().newPage();
    await boAgain.goto(bo.url());
    await bo.close();
    const merged = await eventually(
      () => Promise.all([editorText(ada), editorText(boAgain)]),
      ([a, b]) => a === b && a.includes("bo-offline.") && a.includes("ada-online."),
      "convergence after Bo is back",
    );
    expect(merged[0]).toContain("start.");
    await eventually(() => connectionState(boAgain), (state) => state === "saved", "Bo's edits confirmed");
  });

  it("the stock y-websocket provider in Node and the browser edit the same document", async () => {
    const room = `mixed-${randomUUID().slice(0, 8)}`;
    const page: Page = await openPerson(browser, `${server.origin}/d/${room}`, "Dee");
    const provider = connectProvider(server, room);
    try {
      await waitFor(() => provider.synced, "the provider to sync");
      provider.doc.getText("codemirror").insert(0, "from node. ");
      await eventually(() => editorText(page), (text) => text === "from node. ", "the provider's edit in the page");
      await typeAtEnd(page, "from the browser.");
      await waitFor(() => textOf(provider) === "from node. from the browser.", "the page's edit at the provider");
      expect(await editorText(page)).toBe(textOf(provider));
    } finally {
      disconnectProvider(provider);
    }
  });

  it("shows the document's stats and downloads it as a file named for its language", async () => {
    const room = `info-${randomUUID().slice(0, 8)}`;
    const ada = await openPerson(browser, `${server.origin}/d/${room}`, "Ada");
    await typeAtEnd(ada, "# Notes worth keeping");
    await eventually(() => connectionState(ada), (state) => state === "saved", "the server to confirm");
    await ada.click('[data-testid="info"]');
    const panel = ada.locator('[data-testid="info-panel"]');
    await eventually(() => panel.innerText(), (text) => /Connections\s+1/.test(text), "the stats");
    expect(await panel.innerText()).toMatch(/Your edits\s+saved/);
    expect(await panel.innerText()).toMatch(/Size\s+\d+ B/);

    const [download] = await Promise.all([ada.waitForEvent("download"), ada.click('[data-testid="download"]')]);
    expect(download.suggestedFilename()).toBe(`${room}.md`);
    expect(readFileSync((await download.path())!, "utf8")).toBe("# Notes worth keeping");
  });

  it("keeps the document across a restart of wrangler dev", async () => {
    const url = `${server.origin}/d/restart-${randomUUID().slice(0, 8)}`;
    const ada = await openPerson(browser, url, "Ada");
    await typeAtEnd(ada, "survives restarts");
    await eventually(() => connectionState(ada), (state) => state === "saved", "the server to confirm");
    await ada.context().close();
    await server.stop();
    server = await startDevServer({ persistDir: server.persistDir });
    // A new browser context has no IndexedDB copy: the text can only come from the server.
    const bo = await openPerson(browser, url.replace(/:\d+\//, `:${new URL(server.origin).port}/`), "Bo");
    await eventually(() => editorText(bo), (text) => text === "survives restarts", "the text after the restart");
  });
});
