/**
 * Document titles and what a link grants, in a real Chromium against a `wrangler dev` that
 * requires tokens: a rename reaches another browser's header and tab live, a hostile title is
 * shown as bounded text, and a link says what it grants, until when, and what Copy link copies.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Browser, Page } from "playwright-core";
import * as Y from "yjs";
import { DEFAULT_TITLE, MAX_TITLE_CHARS, SETTINGS_MAP, TITLE_KEY } from "../../worker/title";
import type { DocumentInfo } from "../../worker/documents";
import type { DevServer } from "../node/wrangler";
import { browserUnavailableReason, withServerAndBrowser } from "./chromium";
import { cspViolations, eventually, mintLink, openPerson } from "./pages";

const AUTH_SECRET = "titles-test-secret";
/** Playwright's own waits (fills, presses, clicks), bounded like every other wait here. */
const WAIT = { timeout: 15_000 };
const TITLE = '[data-testid="doc-title"]';
const ACCESS = '[data-testid="access"]';
const COPY_LINK = '[data-testid="copy-link"]';
const unavailable = browserUnavailableReason();

const titleField = (page: Page) => page.inputValue(TITLE, WAIT);
const tabTitle = (page: Page) => page.evaluate(() => document.title);

async function rename(page: Page, title: string): Promise<void> {
  await page.fill(TITLE, title, WAIT);
  await page.press(TITLE, "Enter", WAIT);
}

/** The token of a share link, and its expiry in ms since the epoch (from its claims). */
function tokenOf(link: string): { token: string; expiresAt: number } {
  const token = new URL(link).searchParams.get("token")!;
  const claims = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString()) as { exp: number };
  return { token, expiresAt: claims.exp * 1000 };
}

describe.skipIf(unavailable !== null)("document titles and link access in Chromium", () => {
  let server: DevServer;
  let browser: Browser;

  withServerAndBrowser({ vars: { AUTH_SECRET } }, (started, launched) => ([server, browser] = [started, launched]), () => ({ server, browser }));

  const apiInfo = async (doc: string, token: string) =>
    (await (await fetch(`${server.origin}/api/docs/${doc}?token=${encodeURIComponent(token)}`)).json()) as DocumentInfo;

  it("a rename in one browser shows live in another's header and tab title, and survives a reload", async () => {
    const doc = `titled-${randomUUID().slice(0, 8)}`;
    const ada = await openPerson(browser, mintLink(server, AUTH_SECRET, doc, "write"), "Ada");
    const bo = await openPerson(browser, mintLink(server, AUTH_SECRET, doc, "write"), "Bo");
    for (const page of [ada, bo]) {
      expect(await titleField(page)).toBe("");
      expect(await page.getAttribute(TITLE, "placeholder", WAIT)).toBe(DEFAULT_TITLE);
      await eventually(() => tabTitle(page), (title) => title === `${DEFAULT_TITLE} · edgedoc`, "the untitled tab title");
    }

    await rename(ada, "  Launch   plan ");
    // Ada's own field shows what was stored: the cleaned title.
    expect(await titleField(ada)).toBe("Launch plan");
    await eventually(() => titleField(bo), (title) => title === "Launch plan", "Ada's rename in Bo's header");
    await eventually(() => tabTitle(bo), (title) => title === "Launch plan · edgedoc", "Ada's rename in Bo's tab");
    expect(await tabTitle(ada)).toBe("Launch plan · edgedoc");

    // Bo is typing a title when Ada renames again: what he typed stays until he commits or
    // gives up on it (Escape), while his tab already shows Ada's.
    await bo.click(TITLE, WAIT);
    await bo.keyboard.press("End");
    await bo.keyboard.type(" (dra");
    await rename(ada, "Launch plan v2");
    await eventually(() => tabTitle(bo), (title) => title === "Launch plan v2 · edgedoc", "the second rename in Bo's tab");
    expect(await titleField(bo)).toBe("Launch plan (dra");
    await bo.press(TITLE, "Escape", WAIT);
    expect(await titleField(bo)).toBe("Launch plan v2");

    await rename(bo, "Launch plan, final");
    await eventually(() => titleField(ada), (title) => title === "Launch plan, final", "Bo's rename in Ada's header");
    await eventually(() => tabTitle(ada), (title) => title === "Launch plan, final · edgedoc", "Bo's rename in Ada's tab");
    expect((await apiInfo(doc, tokenOf(ada.url()).token)).title).toBe("Launch plan, final");

    await bo.reload();
    await bo.waitForSelector(".cm-content", WAIT);
    await eventually(() => titleField(bo), (title) => title === "Launch plan, final", "the title after a reload");
    await eventually(() => tabTitle(bo), (title) => title === "Launch plan, final · edgedoc", "the tab title after a reload");

    // Clearing the title makes the document untitled again for everyone.
    await rename(ada, "");
    await eventually(() => tabTitle(bo), (title) => title === `${DEFAULT_TITLE} · edgedoc`, "the cleared title in Bo's tab");
    expect(await titleField(bo)).toBe("");
  });

  it("a hostile title renders as bounded text: no element, no request, no script", async () => {
    const doc = `hostile-title-${randomUUID().slice(0, 8)}`;
    const link = mintLink(server, AUTH_SECRET, doc, "write");
    const hostile = `<img src=x onerror="window.pwned=1;alert(1)"><script>window.pwned=2</script>\u0000\u202e${"W".repeat(10_000)}`;
    // One person has the document open when the title arrives; the other opens it afterwards.
    const early = await openPerson(browser, link, "Early");
    const watched = watch(early);

    // Another app (or a modified client) writes it straight into the document, past any app-side cleaning.
    const writer = new Y.Doc();
    writer.getMap(SETTINGS_MAP).set(TITLE_KEY, hostile);
    const posted = await fetch(`${server.origin}/api/docs/${doc}/update?token=${encodeURIComponent(tokenOf(link).token)}`, {
      method: "POST",
      headers: { "Content-Type": "application/octet-stream" },
      body: Y.encodeStateAsUpdate(writer) as Uint8Array<ArrayBuffer>,
    });
    expect(posted.status).toBe(200);
    const late = await openPerson(browser, link, "Late");
    const watchedLate = watch(late);

    for (const page of [early, late]) {
      const shown = await eventually(() => titleField(page), (title) => title.startsWith("<img"), "the hostile title in the header");
      expect(shown.startsWith('<img src=x onerror="window.pwned=1;alert(1)"><script>window.pwned=2</script> W')).toBe(true);
      expect(Array.from(shown).length).toBeLessThanOrEqual(MAX_TITLE_CHARS);
      expect(await tabTitle(page)).toBe(`${shown} · edgedoc`);
      expect(Array.from((await page.getAttribute(TITLE, "title", WAIT)) ?? "").length).toBeLessThanOrEqual(MAX_TITLE_CHARS);
      const damage = await page.evaluate(() => ({
        images: document.images.length,
        inHeader: document.querySelector("header")!.querySelectorAll("img, script").length,
        pwned: (window as unknown as { pwned?: unknown }).pwned ?? null,
      }));
      expect(damage).toEqual({ images: 0, inHeader: 0, pwned: null });
      expect(await cspViolations(page)).toEqual([]);
    }
    // The header is the same set of elements in both: the title added none.
    const [earlyHeader, lateHeader] = await Promise.all(
      [early, late].map((page) => page.evaluate(() => document.querySelector("header")!.querySelectorAll("*").length)),
    );
    expect(earlyHeader).toBe(lateHeader);
    for (const { dialogs, requests } of [watched, watchedLate]) {
      expect(dialogs).toEqual([]);
      expect(requests.filter((url) => new URL(url).pathname === "/x" || !url.startsWith(server.origin))).toEqual([]);
    }
    expect((await apiInfo(doc, tokenOf(link).token)).title).toBe(await titleField(late));
  });

  it("a read-only link shows its access and expiry, and cannot edit the title", async () => {
    const doc = `read-title-${randomUUID().slice(0, 8)}`;
    const writeLink = mintLink(server, AUTH_SECRET, doc, "write", { ttl: "1h" });
    const readLink = mintLink(server, AUTH_SECRET, doc, "read", { ttl: "3d" });
    const writer = await openPerson(browser, writeLink, "Wren");
    await rename(writer, "Shared notes");
    const reader = await openPerson(browser, readLink, "Reed");
    await eventually(() => titleField(reader), (title) => title === "Shared notes", "the title at the reader");

    expect(await reader.textContent(ACCESS, WAIT)).toBe("Read-only · expires in 3 days");
    expect(await reader.getAttribute(ACCESS, "data-mode", WAIT)).toBe("read");
    // The exact expiry: machine-readable on the <time>, and in words on hover.
    const { expiresAt } = tokenOf(readLink);
    expect(await reader.getAttribute(`${ACCESS} time`, "datetime", WAIT)).toBe(new Date(expiresAt).toISOString());
    expect(await reader.getAttribute(ACCESS, "title", WAIT)).toMatch(new RegExp(`^Read-only, expires .*${new Date(expiresAt).getFullYear()}`));
    expect(await writer.textContent(ACCESS, WAIT)).toBe("Can edit · expires in 1 hour");
    expect(await writer.getAttribute(ACCESS, "data-mode", WAIT)).toBe("write");

    // The reader's title field cannot be changed, by typing or otherwise.
    expect(await reader.locator(TITLE).isEditable(WAIT)).toBe(false);
    await reader.click(TITLE, WAIT);
    await reader.keyboard.type(" hijacked");
    await reader.keyboard.press("Enter");
    expect(await titleField(reader)).toBe("Shared notes");
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await titleField(writer)).toBe("Shared notes");
    expect((await apiInfo(doc, tokenOf(writeLink).token)).title).toBe("Shared notes");
  });

  it("Copy link says what it copies: a read-only link, an edit link, an expired one, or a plain link", async () => {
    const doc = `copy-link-${randomUUID().slice(0, 8)}`;
    const writer = await openPerson(browser, mintLink(server, AUTH_SECRET, doc, "write", { ttl: "2h" }), "Wren");
    const reader = await openPerson(browser, mintLink(server, AUTH_SECRET, doc, "read", { ttl: "7d" }), "Reed");
    const expiredLink = mintLink(server, AUTH_SECRET, doc, "read", { ttl: "1s" });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const late = await openPerson(browser, expiredLink, "Late");
    const plain = await openPerson(browser, `${server.origin}/d/${doc}`, "Plain");

    expect(await reader.textContent(COPY_LINK, WAIT)).toBe("Copy read-only link");
    expect(await reader.getAttribute(COPY_LINK, "title", WAIT)).toMatch(/read-only token: whoever opens it can read, not edit until /);
    expect(await writer.textContent(COPY_LINK, WAIT)).toBe("Copy edit link");
    expect(await writer.getAttribute(COPY_LINK, "title", WAIT)).toMatch(/edit token: whoever opens it can edit until /);
    expect(await late.textContent(COPY_LINK, WAIT)).toBe("Copy expired link");
    expect(await late.textContent(ACCESS, WAIT)).toBe("Read-only · expired");
    expect(await late.getAttribute(ACCESS, "data-expired", WAIT)).toBe("");
    expect(await plain.textContent(COPY_LINK, WAIT)).toBe("Copy link");
    expect(await plain.locator(ACCESS).isHidden(WAIT)).toBe(true);

    // Copying puts the page's link, token and all, on the clipboard, and says which link it was.
    await writer.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.origin });
    await writer.bringToFront();
    await writer.click(COPY_LINK, WAIT);
    await eventually(() => writer.textContent(COPY_LINK), (text) => text === "Edit link copied", "the copied confirmation");
    expect(await writer.evaluate(() => navigator.clipboard.readText())).toBe(writer.url());
    expect(new URL(writer.url()).searchParams.get("token")).not.toBeNull();
    await eventually(() => writer.textContent(COPY_LINK), (text) => text === "Copy edit link", "the label to come back", 5_000);
  });
});

/** Dialogs the page opened (dismissed at once) and every URL it requested, from now on. */
function watch(page: Page): { dialogs: string[]; requests: string[] } {
  const dialogs: string[] = [];
  const requests: string[] = [];
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on("request", (request) => requests.push(request.url()));
  return { dialogs, requests };
}
