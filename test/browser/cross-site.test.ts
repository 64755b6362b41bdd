/**
 * No cross-site writes, in a real Chromium against an open `wrangler dev` (no AUTH_SECRET, no
 * ALLOWED_ORIGINS: the deployment issue 21 found open). A page on another origin tries what a
 * malicious site would: simple POSTs (no preflight), a form posted to the API, and PUT and
 * DELETE. The document does not change, while the app on the server's own origin still saves a
 * version and restores it.
 */
import { randomUUID } from "node:crypto";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as Y from "yjs";
import { removePersistDir, startDevServer, type DevServer } from "../node/wrangler";
import { browserUnavailableReason, launchChromium } from "./chromium";
import { startPageServer, type PageServer } from "./page-server";
import { connectionState, editorText, eventually, openPerson, typeAtEnd } from "./pages";

const unavailable = browserUnavailableReason();
/** Playwright's own waits and every fetch, bounded so a broken test fails instead of hanging. */
const WAIT = { timeout: 15_000 };
const FETCH_TIMEOUT_MS = 10_000;

type VersionListed = { id: number; name: string | null };

describe.skipIf(unavailable !== null)("writes from a page on another site", () => {
  let server: DevServer;
  let browser: Browser;
  let elsewhere: PageServer;

  beforeAll(async () => {
    [server, browser, elsewhere] = await Promise.all([startDevServer(), launchChromium(), startPageServer()]);
  });

  afterAll(async () => {
    await browser?.close();
    await server?.stop();
    if (server) removePersistDir(server.persistDir);
    await elsewhere?.close();
  });

  /** A call as a server makes it: no Origin. */
  const serverCall = (path: string) => fetch(`${server.origin}/api/docs/${path}`, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  const versions = async (doc: string) => (await (await serverCall(`${doc}/versions`)).json()) as VersionListed[];

  /** An update that would append `text` to the stored document. */
  async function appendingUpdate(doc: string, text: string): Promise<number[]> {
    const copy = new Y.Doc();
    Y.applyUpdate(copy, new Uint8Array(await (await serverCall(`${doc}/update`)).arrayBuffer()));
    const before = Y.encodeStateVector(copy);
    copy.getText("codemirror").insert(copy.getText("codemirror").length, text);
    return Array.from(Y.encodeStateAsUpdate(copy, before));
  }

  /**
   * What the foreign page's script gets from each attempt: a simple request (`mode: "no-cors"`)
   * resolves to an opaque answer whatever the server did; a PUT or DELETE needs a preflight,
   * which an open deployment does not answer, so its fetch is rejected.
   */
  function attack(page: Page, api: string, versionId: number, update: number[]): Promise<Record<string, string>> {
    return page.evaluate(
      async ({ api, versionId, update, timeoutMs }) => {
        const attempt = (path: string, init: RequestInit) =>
          fetch(`${api}${path}`, { ...init, signal: AbortSignal.timeout(timeoutMs) }).then(
            (response) => response.type,
            (error: Error) => `${error.name}`,
          );
        const simple = { mode: "no-cors", headers: { "Content-Type": "text/plain" } } as const;
        return {
          update: await attempt("/update", { ...simple, method: "POST", body: new Uint8Array(update) }),
          save: await attempt("/versions", { ...simple, method: "POST", body: JSON.stringify({ name: "planted" }) }),
          restore: await attempt(`/versions/${versionId}/restore`, { ...simple, method: "POST", body: "" }),
          replace: await attempt("/text", { method: "PUT", headers: { "Content-Type": "text/plain" }, body: "replaced from elsewhere" }),
          deleteVersion: await attempt(`/versions/${versionId}`, { method: "DELETE" }),
          deleteDocument: await attempt("", { method: "DELETE" }),
        };
      },
      { api, versionId, update, timeoutMs: FETCH_TIMEOUT_MS },
    );
  }

  it("cannot change the document by any route; the app itself still saves a version and restores it", async () => {
    const doc = `cross-site-${randomUUID().slice(0, 8)}`;
    const ada = await openPerson(browser, `${server.origin}/d/${doc}`, "Ada");
    await typeAtEnd(ada, "Our text.");
    await eventually(() => connectionState(ada), (state) => state === "saved", "Ada's edit to be saved");

    // The app saves a version from its own origin (its POST carries that Origin).
    await ada.click('[data-testid="history"]', WAIT);
    await ada.click('[data-testid="save-version"]', WAIT);
    await ada.fill('[data-testid="version-name"]', "Ours", WAIT);
    await ada.press('[data-testid="version-name"]', "Enter", WAIT);
    await ada.locator('[data-testid="version"]', { hasText: "Ours" }).waitFor(WAIT);
    const [ours] = await versions(doc);
    expect(ours).toMatchObject({ name: "Ours" });
    await ada.click('[data-testid="history-close"]', WAIT);
    await typeAtEnd(ada, " Later.");
    await eventually(() => connectionState(ada), (state) => state === "saved", "Ada's second edit to be saved");

    const evil = await (await browser.newContext()).newPage();
    await evil.goto(`${elsewhere.origin}/`, WAIT);
    const outcomes = await attack(evil, `${server.origin}/api/docs/${doc}`, ours!.id, await appendingUpdate(doc, " PLANTED"));
    expect(outcomes).toEqual({
      update: "opaque",
      save: "opaque",
      restore: "opaque",
      replace: "TypeError",
      deleteVersion: "TypeError",
      deleteDocument: "TypeError",
    });
    // The simple requests did reach the Worker, and were refused there (wrangler prints the
    // Worker's log lines a moment after the responses: the check waits for them, bounded).
    for (const path of ["update", "versions", `versions/${ours!.id}/restore`]) {
      const line = `"event":"api","method":"POST","room":"${doc}","path":"/api/docs/${doc}/${path}","status":403`;
      await eventually(async () => server.output().includes(line), (logged) => logged, `the Worker's log of the refused POST to ${path}`);
    }

    // A form posted to the API: the page it lands on is the refusal.
    await evil.evaluate((action) => {
      const form = Object.assign(document.createElement("form"), { method: "post", action, enctype: "text/plain" });
      document.body.append(form);
      form.submit();
    }, `${server.origin}/api/docs/${doc}/versions/${ours!.id}/restore`);
    await evil.waitForURL(/\/restore$/, WAIT);
    expect(JSON.parse((await evil.textContent("body", WAIT))!)).toMatchObject({ error: "forbidden" });

    expect(await (await serverCall(`${doc}/text`)).text()).toBe("Our text. Later.");
    expect(await versions(doc)).toEqual([ours]);
    expect(await editorText(ada)).toBe("Our text. Later.");

    // The app restores from its own origin.
    await ada.click('[data-testid="history"]', WAIT);
    await ada.locator('[data-testid="version"]', { hasText: "Ours" }).click(WAIT);
    await ada.click('[data-testid="restore"]', WAIT);
    await eventually(() => editorText(ada), (text) => text === "Our text.", "the restored text in the app");
    expect(await ada.textContent('[data-testid="history-message"]')).toMatch(/^Restored “Ours”/);
    expect(await (await serverCall(`${doc}/text`)).text()).toBe("Our text.");
    await Promise.all([ada.context().close(), evil.context().close()]);
  });
});
