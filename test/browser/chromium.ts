/**
 * Debian's Chromium driven by playwright-core (Playwright cannot download its own browser here).
 */
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll } from "vitest";
import { removePersistDir, startDevServer, type DevServer, type DevServerOptions } from "../node/wrangler.ts";

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** Why browser tests cannot run here, or null when they can. CI installs Chromium, so there it is never skipped. */
export function browserUnavailableReason(): string | null {
  if (existsSync(CHROMIUM_PATH)) return null;
  const reason = `browser tests skipped: no Chromium at ${CHROMIUM_PATH} (apt-get install -y chromium, or set CHROMIUM_PATH)`;
  if (process.env.CI) throw new Error(`${reason}; CI requires them`);
  return reason;
}

/** No sandbox as root; the network flags stop Chromium phoning home on a closed network. */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

/**
 * For a file's tests: starts `wrangler dev` (with `options`) and Chromium before them, hands
 * both to `started`, and after them closes the browser and stops whichever server `current`
 * returns then (a test may have restarted it), deleting its storage.
 */
export function withServerAndBrowser(
  options: DevServerOptions,
  started: (server: DevServer, browser: Browser) => void,
  current: () => { server?: DevServer; browser?: Browser },
): void {
  beforeAll(async () => {
    const [server, browser] = await Promise.all([startDevServer(options), launchChromium()]);
    started(server, browser);
  });
  afterAll(async () => {
    const { server, browser } = current();
    await browser?.close();
    await server?.stop();
    if (server) removePersistDir(server.persistDir);
  });
}
