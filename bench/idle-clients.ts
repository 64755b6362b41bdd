/**
 * The idle scenario's clients (bench/idle.ts), each counting the frames it sends and able to
 * type a key and see others' keys arrive, on the wall clock (`Date.now()`) that the app's pages,
 * this process and the objects' log lines share:
 *
 * - {@link AppClient}: a page of the real app in Debian's Chromium (playwright-core, as the
 *   browser tests drive it), its own browser context, so its own person with its own name.
 *   `WebSocket.prototype.send` is wrapped before the app loads, counting text `ping` apart.
 * - {@link StockClient}: a stock y-websocket provider in this process (bench/typing.ts
 *   `Typist`: `ws`, a presence with a user name and colour), with a cursor in its presence as
 *   the app's has (y-codemirror.next's anchor and head), set again with each key as the app sends one per key.
 */
import { existsSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { WebSocket } from "ws";
import * as Y from "yjs";
import { editorText, presenceNames, setName, VIEWPORT } from "../test/browser/pages.ts";
import { typeLetterAt } from "./crowd-client.ts";
import { Typist } from "./typing.ts";

export interface IdleClient {
  readonly kind: "app" | "stock";
  /** Frames sent so far, text `ping` apart. */
  framesSent(): Promise<number>;
  pingsSent(): Promise<number>;
  /** Types `count` lower-case letters at its caret, `delayMs` apart. */
  typeKeys(count: number, delayMs: number): Promise<void>;
  /** Types `key` where the caret is; returns when the key went down. */
  typeMarker(key: string): Promise<number>;
  /** When `key` first shows in this client's text (started before the key is typed), or null after `timeoutMs`. */
  arrivalOf(key: string, timeoutMs: number): Promise<number | null>;
  text(): Promise<string>;
  close(): Promise<void>;
}

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SYNC_TIMEOUT_MS = 15_000;
const EDITOR_TIMEOUT_MS = 30_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Debian's Chromium as test/browser/chromium.ts launches it, or null (the app's rooms are then not measured). */
export async function launchBrowser(): Promise<Browser | null> {
  if (!existsSync(CHROMIUM_PATH)) return null;
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    // No sandbox as root; the network flags stop Chromium phoning home on a closed network.
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** What the page keeps for the driver (set up by {@link countSends}). */
interface BenchWindow {
  benchSends: { frames: number; pings: number };
  benchKeyAt: number;
}

/**
 * Runs in the page before the app: counts every frame any WebSocket sends (text `ping`, which
 * the runtime's auto-response answers without waking the object, on its own), and notes when
 * a key last went down.
 */
function countSends(): void {
  const bench = window as unknown as BenchWindow;
  bench.benchSends = { frames: 0, pings: 0 };
  bench.benchKeyAt = 0;
  // The page's WebSocket (this function runs there, serialised): not the `ws` one of this module.
  const { prototype } = window.WebSocket;
  const send = prototype.send;
  prototype.send = function (this: globalThis.WebSocket, data: Parameters<globalThis.WebSocket["send"]>[0]) {
    if (data === "ping") bench.benchSends.pings++;
    else bench.benchSends.frames++;
    return send.call(this, data);
  };
  window.addEventListener("keydown", () => (bench.benchKeyAt = Date.now()), true);
}

export class AppClient implements IdleClient {
  readonly kind = "app";

  private constructor(
    readonly name: string,
    private readonly context: BrowserContext,
    private readonly page: Page,
  ) {}

  static async open(browser: Browser, url: string, name: string): Promise<AppClient> {
    const context = await browser.newContext({ viewport: VIEWPORT });
    await context.addInitScript(countSends);
    const page = await context.newPage();
    await page.goto(url, { timeout: EDITOR_TIMEOUT_MS });
    await page.waitForSelector(".cm-content", { timeout: EDITOR_TIMEOUT_MS });
    await setName(page, name);
    return new AppClient(name, context, page);
  }

  framesSent(): Promise<number> {
    return this.page.evaluate(() => (window as unknown as BenchWindow).benchSends.frames);
  }

  pingsSent(): Promise<number> {
    return this.page.evaluate(() => (window as unknown as BenchWindow).benchSends.pings);
  }

  async typeKeys(count: number, delayMs: number): Promise<void> {
    await this.page.click(".cm-content");
    await this.page.keyboard.press("Control+End");
    await this.page.keyboard.type("abcdefghijklmnopqrstuvwxyz".slice(0, count), { delay: delayMs });
  }

  async typeMarker(key: string): Promise<number> {
    await this.page.keyboard.type(key);
    return this.page.evaluate(() => (window as unknown as BenchWindow).benchKeyAt);
  }

  arrivalOf(key: string, timeoutMs: number): Promise<number | null> {
    return this.page.evaluate(
      ([wanted, timeout]) =>
        new Promise<number | null>((resolve) => {
          const content = document.querySelector(".cm-content")!;
          // The text without the remote carets' name labels, as pages.ts `editorText` reads it.
          const holds = () =>
            [...content.querySelectorAll(".cm-line")].some((line) => {
              const copy = line.cloneNode(true) as HTMLElement;
              copy.querySelectorAll(".cm-ySelectionCaret").forEach((caret) => caret.remove());
              return (copy.textContent ?? "").includes(wanted);
            });
          const observer = new MutationObserver(() => {
            if (!holds()) return;
            observer.disconnect();
            resolve(Date.now());
          });
          observer.observe(content, { subtree: true, childList: true, characterData: true });
          setTimeout(() => {
            observer.disconnect();
            resolve(null);
          }, timeout);
        }),
      [key, timeoutMs] as const,
    );
  }

  text(): Promise<string> {
    return editorText(this.page);
  }

  /** The names in the page's "who is here" list. */
  listedNames(): Promise<string[]> {
    return presenceNames(this.page);
  }

  close(): Promise<void> {
    return this.context.close();
  }
}

export class StockClient implements IdleClient {
  readonly kind = "stock";

  private constructor(private readonly typist: Typist) {}

  /** A provider in room `doc` of `serverUrl`, once synced (bounded). */
  static async open(serverUrl: string, doc: string, index: number): Promise<StockClient> {
    const typist = new Typist(index, `${serverUrl}/${doc}`, WebSocket);
    const deadline = performance.now() + SYNC_TIMEOUT_MS;
    while (!typist.provider.synced) {
      if (performance.now() > deadline) {
        typist.close();
        throw new Error(`stock provider ${index} in ${doc} not synced after ${SYNC_TIMEOUT_MS} ms`);
      }
      await sleep(50);
    }
    return new StockClient(typist);
  }

  async framesSent(): Promise<number> {
    return this.typist.framesOut;
  }

  async pingsSent(): Promise<number> {
    return 0;
  }

  async typeKeys(count: number, delayMs: number): Promise<void> {
    for (let key = 0; key < count; key++) {
      this.typist.typeKey(0);
      this.moveCursorToEnd();
      await sleep(delayMs);
    }
  }

  async typeMarker(key: string): Promise<number> {
    const at = Date.now();
    typeLetterAt(this.typist.text, null, this.typist.text.length, key);
    return at;
  }

  arrivalOf(key: string, timeoutMs: number): Promise<number | null> {
    const { doc, text } = this.typist;
    return new Promise((resolve) => {
      const check = () => {
        if (!text.toString().includes(key)) return;
        finish(Date.now());
      };
      const finish = (at: number | null) => {
        doc.off("update", check);
        clearTimeout(timer);
        resolve(at);
      };
      const timer = setTimeout(() => finish(null), timeoutMs);
      doc.on("update", check);
    });
  }

  async text(): Promise<string> {
    return this.typist.text.toString();
  }

  /** Names of the others whose presence has a user name and a cursor (anchor and head). */
  peopleWithCursors(): string[] {
    const names: string[] = [];
    this.typist.awareness.getStates().forEach((state, clientId) => {
      const { user, cursor } = state as { user?: { name?: unknown }; cursor?: { anchor?: unknown; head?: unknown } | null };
      if (clientId !== this.typist.doc.clientID && typeof user?.name === "string" && cursor?.anchor && cursor.head) names.push(user.name);
    });
    return names;
  }

  async close(): Promise<void> {
    this.typist.close();
  }

  /** A cursor at the end of the text, shaped as y-codemirror.next's (relative positions as JSON). */
  private moveCursorToEnd(): void {
    const { text, awareness } = this.typist;
    const at = Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(text, text.length));
    awareness.setLocalStateField("cursor", { anchor: at, head: at });
  }
}
