/**
 * What a page's WebSockets did, recorded from before the app's first script: every socket it
 * opened and every frame it sent and received. For tests of what idle tabs cost a room
 * (docs/protocol.md, "Quiet clients"); it only watches, every frame still goes as the app sent it.
 */
import type { Browser, BrowserContext, Page } from "playwright-core";
import { setName, VIEWPORT } from "./pages";

/** A frame as the test reads it: a text frame by its text, a binary one by its y-websocket message type. */
export type FrameKind = `text:${string}` | `binary:${number}`;

export interface SocketLog {
  /** The URL of each WebSocket the page constructed, in order. */
  opened: string[];
  sent: FrameKind[];
  received: FrameKind[];
  /** Each close the page's sockets heard, as "code reason". */
  closed: string[];
}

/** Records into `window.socketLog` on every page of `context`, from before any script of the page runs. */
export async function recordWebSockets(context: BrowserContext): Promise<void> {
  await context.addInitScript(() => {
    const log: SocketLog = { opened: [], sent: [], received: [], closed: [] };
    Object.assign(window, { socketLog: log });
    const kindOf = (data: unknown): FrameKind => {
      if (typeof data === "string") return `text:${data}`;
      const bytes = ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data as ArrayBuffer);
      return `binary:${bytes[0] ?? -1}`;
    };
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (this: WebSocket, data: Parameters<WebSocket["send"]>[0]) {
      log.sent.push(kindOf(data));
      send.call(this, data);
    };
    // A Proxy keeps the constructor's identity (statics, prototype, instanceof) as the app sees it.
    window.WebSocket = new Proxy(WebSocket, {
      construct(Native, args: ConstructorParameters<typeof WebSocket>) {
        const socket = new Native(...args);
        log.opened.push(String(args[0]));
        socket.addEventListener("message", (event) => log.received.push(kindOf(event.data)));
        socket.addEventListener("close", (event) => log.closed.push(`${event.code} ${event.reason}`));
        return socket;
      },
    });
  });
}

export function socketLog(page: Page): Promise<SocketLog> {
  return page.evaluate(() => (window as unknown as { socketLog: SocketLog }).socketLog);
}

/** The frames of `log` after `mark` (an earlier reading of the same page's log). */
export function framesSince(log: SocketLog, mark: SocketLog): Pick<SocketLog, "sent" | "received"> {
  return { sent: log.sent.slice(mark.sent.length), received: log.received.slice(mark.received.length) };
}

/** Opens `url` as a new person (a browser context of its own) whose WebSockets are recorded, and waits for the editor. */
export async function openRecordedPerson(browser: Browser, url: string, name: string): Promise<Page> {
  const context = await browser.newContext({ viewport: VIEWPORT });
  await recordWebSockets(context);
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForSelector(".cm-content");
  await setName(page, name);
  return page;
}
