/**
 * Share links with tokens, minted by `npm run token`, in a real Chromium against a
 * `wrangler dev` that requires them.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import type { DevServer } from "../node/wrangler";
import { browserUnavailableReason, withServerAndBrowser } from "./chromium";
import { connectionState, editorText, eventually, mintLink, openPerson, typeAtEnd } from "./pages";

const AUTH_SECRET = "browser-test-secret";
const unavailable = browserUnavailableReason();


describe.skipIf(unavailable !== null)("share links with tokens", () => {
  let server: DevServer;
  let browser: Browser;

  withServerAndBrowser({ vars: { AUTH_SECRET } }, (started, launched) => ([server, browser] = [started, launched]), () => ({ server, browser }));

  it("a write link edits; a read-only link shows the text live but cannot change it", async () => {
    const doc = `shared-${randomUUID().slice(0, 8)}`;
    const writer = await openPerson(browser, mintLink(server, AUTH_SECRET, doc, "write"), "Wren");
    const reader = await openPerson(browser, mintLink(server, AUTH_SECRET, doc, "read"), "Reed");
    await typeAtEnd(writer, "only the writer writes");
    await eventually(() => editorText(reader), (text) => text === "only the writer writes", "the writer's text at the reader");
    expect(await connectionState(reader)).toBe("read-only");

    await typeAtEnd(reader, " nope");
    await typeAtEnd(writer, ".");
    await eventually(() => editorText(reader), (text) => text === "only the writer writes.", "the writer's next edit at the reader");
    expect(await editorText(writer)).toBe("only the writer writes.");
  });

  it("a link without a token, or with an expired one, does not open the document", async () => {
    const doc = `closed-${randomUUID().slice(0, 8)}`;
    const expiredLink = mintLink(server, AUTH_SECRET, doc, "write", { ttl: "1s" });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const stranger = await openPerson(browser, `${server.origin}/d/${doc}`, "Stranger");
    const late = await openPerson(browser, expiredLink, "Late");
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await connectionState(stranger)).not.toBe("saved");
    expect(await connectionState(late)).toBe("stopped");
    expect(await late.textContent('[data-testid="status"]')).toMatch(/expired/);
  });
});
