/**
 * A Chromium whose tabs can be hidden as a person's are: a tab with another one in front of it
 * in the same window has `document.visibilityState === "hidden"`, its timers throttled as Chrome
 * throttles a background tab's.
 *
 * Playwright's own browsers cannot do this: it turns on focus emulation
 * (`Emulation.setFocusEmulationEnabled`) for every page it creates, which makes Chromium keep
 * the page visible whatever is in front of it, and its launch flags switch background
 * throttling off. So this Chromium is started by hand with a DevTools port, and Playwright
 * attaches over CDP with `noDefaults`, which leaves the default context's pages as Chromium
 * made them.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { CHROMIUM_ARGS, CHROMIUM_PATH } from "./chromium";

const STARTUP_TIMEOUT_MS = 30_000;

export interface TabbedChromium {
  /** The browser's one window: its first page is open already, each new page opens as a tab in front. */
  context: BrowserContext;
  close: () => Promise<void>;
}

export async function launchTabbedChromium(): Promise<TabbedChromium> {
  const profile = mkdtempSync(join(tmpdir(), "edgedoc-tabs-"));
  const child = spawn(
    CHROMIUM_PATH,
    [
      ...CHROMIUM_ARGS,
      "--remote-debugging-address=127.0.0.1",
      "--remote-debugging-port=0",
      `--user-data-dir=${profile}`,
      "about:blank",
    ],
    // Its own process group, so that stopping it stops its renderers and helpers too.
    { stdio: ["ignore", "ignore", "pipe"], detached: true },
  );
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      process.kill(-child.pid!, "SIGKILL");
      await exited;
    }
    // Chromium's helpers may still be writing to the profile for a moment after it exited.
    rmSync(profile, { recursive: true, force: true, maxRetries: 10 });
  };
  try {
    const endpoint = await devToolsEndpoint(child.stderr!);
    const browser = await chromium.connectOverCDP(endpoint, { noDefaults: true });
    return {
      context: browser.contexts()[0]!,
      close: async () => {
        await browser.close();
        await stop();
      },
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The `ws://` address Chromium prints once its DevTools port listens. */
function devToolsEndpoint(stderr: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let printed: string | null = "";
    const timer = setTimeout(() => reject(new Error(`Chromium printed no DevTools address within ${STARTUP_TIMEOUT_MS} ms:\n${printed}`)), STARTUP_TIMEOUT_MS);
    // Read to the end, also once the address is known: a full pipe would stall Chromium.
    stderr.on("data", (chunk) => {
      if (printed === null) return;
      printed += chunk;
      const address = /DevTools listening on (ws:\/\/\S+)/.exec(printed)?.[1];
      if (address === undefined) return;
      printed = null;
      clearTimeout(timer);
      resolve(address);
    });
  });
}

/** Whether the page is hidden, as the page itself sees it. */
export function visibility(page: Page): Promise<DocumentVisibilityState> {
  return page.evaluate(() => document.visibilityState);
}
