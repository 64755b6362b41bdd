/**
 * Idle app tabs let their room sleep (issue 31; docs/protocol.md, "Quiet clients"), in a real
 * Chromium against a real `wrangler dev`, as the people in the room see it: idle tabs send
 * nothing but the odd `ping` and still list each other; a hidden tab stays; a stock provider
 * keeps seeing app users past its 30 s timeout; a tab that vanished without a close leaves
 * everyone's list after the room's next check; reloads and offline spells stay honest.
 *
 * The tests wait out real timers (tens of seconds each), so they run concurrently, each in a
 * room of its own.
 */
import { randomUUID } from "node:crypto";
import type { Browser, Page } from "playwright-core";
import { describe, it } from "vitest";
import { outdatedTimeout } from "y-protocols/awareness";
import { HELD_UPDATES_ALARM_MS, JOIN_TIMEOUT_MS, QUIET_CHECK_IN_USE_MS, QUIET_PROBE_AFTER_MS, QUIET_PROBE_GRACE_MS } from "../../worker/limits";
import { PING, PONG, QUIET_PING_AFTER_MS } from "../../worker/protocol";
import { connectProvider, disconnectProvider, textOf, waitFor } from "../node/providers";
import type { DevServer } from "../node/wrangler";
import { launchTabbedChromium, visibility } from "./background-tabs";
import { browserUnavailableReason, withServerAndBrowser } from "./chromium";
import { startCuttableNetwork } from "./cuttable-network";
import { connectionState, editorText, eventually, presenceNames, setName, typeAtEnd } from "./pages";
import { framesSince, openRecordedPerson, recordWebSockets, socketLog } from "./socket-log";

const unavailable = browserUnavailableReason();

/** How long the idle tabs are left alone: past y-protocols' 15 s renewal and 30 s timeout, and past the app's first ping. */
const IDLE_MS = 40_000;
/** A tab pings after QUIET_PING_AFTER_MS of sending nothing: so many fit in the idle window at most. */
const MAX_PINGS_WHILE_IDLE = Math.ceil(IDLE_MS / QUIET_PING_AFTER_MS);
/** How long a stock provider watches idle app tabs: past its 30 s `outdatedTimeout`, by a renewal interval. */
const STOCK_WATCH_MS = outdatedTimeout + 15_000;
/** A removal the room sends at once (a close) is seen within this. */
const PROMPTLY_MS = 5_000;
/** Each test's bound: its waits plus opening and settling its tabs. */
const TEST_TIMEOUT_MS = 150_000;

const roomUrl = (server: DevServer, prefix: string) => `${server.origin}/d/${prefix}-${randomUUID().slice(0, 8)}`;

/** The presence list with yourself first, the others sorted: what a person reads, in a stable order. */
async function listed(page: Page): Promise<string> {
  const [self, ...others] = await presenceNames(page);
  return [self, ...others.sort()].join("|");
}

/** Waits until every page lists exactly everyone in `names` (its own entry as "(you)"), and says saved. */
async function everyoneListedAndSaved(pages: readonly Page[], names: readonly string[]): Promise<void> {
  await Promise.all(
    pages.map(async (page, i) => {
      const expected = [`${names[i]} (you)`, ...names.filter((_, j) => j !== i).sort()].join("|");
      await eventually(() => listed(page), (list) => list === expected, `${names[i]}'s list to be ${expected}`);
      await eventually(() => connectionState(page), (state) => state === "saved", `${names[i]}'s edits saved`);
    }),
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.skipIf(unavailable !== null)("idle app tabs, in Chromium", () => {
  let server: DevServer;
  let browser: Browser;

  withServerAndBrowser({}, (started, launched) => ([server, browser] = [started, launched]), () => ({ server, browser }));

  it.concurrent(
    "three idle tabs send nothing but pings, hear nothing but pongs, and still list each other, saved",
    async ({ expect }) => {
      const url = roomUrl(server, "idle");
      const names = ["Ada", "Bo", "Cy"];
      const pages = await Promise.all(names.map((name) => openRecordedPerson(browser, url, name)));
      for (const [i, page] of pages.entries()) {
        await typeAtEnd(page, `${names[i]} was here. `);
        // Each types once the last one's text arrived, so that the texts do not interleave.
        await eventually(() => Promise.all(pages.map(editorText)), (texts) => texts.every((text) => text.endsWith(`${names[i]} was here. `)), `${names[i]}'s text everywhere`);
      }
      await everyoneListedAndSaved(pages, names);

      const marks = await Promise.all(pages.map(socketLog));
      await sleep(IDLE_MS);
      const logs = await Promise.all(pages.map(socketLog));

      for (const [i, page] of pages.entries()) {
        const idle = framesSince(logs[i]!, marks[i]!);
        // One socket all along, never closed: no reconnect (each would wake the room).
        expect(logs[i]!.closed, `${names[i]}'s closes`).toEqual([]);
        expect(logs[i]!.opened.length, `${names[i]}'s sockets`).toBe(1);
        // No presence renewal, no echo of what was heard, no update: only the keep-alive.
        expect(idle.sent.filter((frame) => frame !== `text:${PING}`), `${names[i]} sent`).toEqual([]);
        expect(idle.sent.length, `${names[i]}'s pings`).toBeLessThanOrEqual(MAX_PINGS_WHILE_IDLE);
        // Nothing relayed from the others either: the room had nothing to send, and the runtime answered the pings.
        expect(idle.received.filter((frame) => frame !== `text:${PONG}`), `${names[i]} received`).toEqual([]);
        expect(await listed(page)).toBe([`${names[i]} (you)`, ...names.filter((_, j) => j !== i).sort()].join("|"));
        expect(await connectionState(page)).toBe("saved");
      }
    },
    TEST_TIMEOUT_MS,
  );

  it.concurrent(
    "a hidden tab stays connected and listed, and its edits arrive once it is shown and typed in",
    async ({ expect }) => {
      const url = roomUrl(server, "hidden");
      const ada = await openRecordedPerson(browser, url, "Ada");
      const tabbed = await launchTabbedChromium();
      try {
        await recordWebSockets(tabbed.context);
        const hal = tabbed.context.pages()[0]!;
        await hal.goto(url);
        await hal.waitForSelector(".cm-content");
        await setName(hal, "Hal");
        await typeAtEnd(hal, "Hal was here.");
        await everyoneListedAndSaved([ada, hal], ["Ada", "Hal"]);

        // Another tab in front of it, in the same window: Hal's tab is hidden, as a background tab is.
        const cover = await tabbed.context.newPage();
        await eventually(() => visibility(hal), (state) => state === "hidden", "Hal's tab to be hidden");
        const hiddenFrom = await socketLog(hal);
        const hiddenUntil = Date.now() + IDLE_MS;
        while (Date.now() < hiddenUntil) {
          expect(await presenceNames(ada), `Ada's list; Hal's socket closes: ${(await socketLog(hal)).closed}`).toContain("Hal");
          await sleep(2_000);
        }
        // Hidden and idle, it costs the room nothing either: no renewal, only the keep-alive.
        expect(framesSince(await socketLog(hal), hiddenFrom).sent.filter((frame) => frame !== `text:${PING}`)).toEqual([]);
        await typeAtEnd(ada, " Ada meanwhile.");
        await eventually(() => editorText(hal), (text) => text === "Hal was here. Ada meanwhile.", "Ada's edit in the hidden tab");
        expect(await visibility(hal)).toBe("hidden");

        await hal.bringToFront();
        await eventually(() => visibility(hal), (state) => state === "visible", "Hal's tab to be shown");
        await typeAtEnd(hal, " Hal is back.");
        await eventually(() => editorText(ada), (text) => text === "Hal was here. Ada meanwhile. Hal is back.", "Hal's edit at Ada");
        await everyoneListedAndSaved([ada, hal], ["Ada", "Hal"]);
        // One socket all along: the hidden tab never reconnected.
        const halSockets = await socketLog(hal);
        expect(halSockets.closed).toEqual([]);
        expect(halSockets.opened.filter((opened) => opened.includes("/ws/"))).toHaveLength(1);
        await cover.close();
      } finally {
        await tabbed.close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  it.concurrent(
    "a stock provider sees idle app users and their cursors past its 30 s timeout; they list it until it leaves",
    async ({ expect }) => {
      const url = roomUrl(server, "mixed");
      const names = ["Ada", "Bo"];
      const pages = await Promise.all(names.map((name) => openRecordedPerson(browser, url, name)));
      for (const [i, page] of pages.entries()) await typeAtEnd(page, `${names[i]} was here. `);
      await everyoneListedAndSaved(pages, names);

      const stock = connectProvider(server, new URL(url).pathname.slice("/d/".length));
      let stockLeft = false;
      try {
        stock.awareness.setLocalStateField("user", { name: "Stocky", color: "#30bced" });
        await waitFor(() => stock.synced, "the stock provider to sync");
        /** The app users the stock provider sees, each with whether it sees their cursor. */
        const seenByStock = () =>
          [...stock.awareness.getStates().values()]
            .map((state) => state as { user?: { name?: string }; cursor?: unknown })
            .filter((state) => state.user?.name !== "Stocky")
            .map((state) => `${state.user?.name}${state.cursor ? " with cursor" : ""}`)
            .sort()
            .join("|");
        const everyAppUser = "Ada with cursor|Bo with cursor";
        await eventually(async () => seenByStock(), (seen) => seen === everyAppUser, "the app users at the stock provider");
        for (const page of pages) await eventually(() => presenceNames(page), (list) => list.includes("Stocky"), "Stocky in the app's list");

        await sleep(STOCK_WATCH_MS);
        expect(seenByStock()).toBe(everyAppUser);
        for (const page of pages) expect(await presenceNames(page)).toContain("Stocky");

        // Typing in the mixed room is still confirmed: Ada's own clocks come back to her socket.
        await typeAtEnd(pages[0]!, "Ada again.");
        await waitFor(() => textOf(stock).endsWith("Ada again."), "Ada's edit at the stock provider");
        await eventually(() => connectionState(pages[0]!), (state) => state === "saved", "Ada's edit saved");

        disconnectProvider(stock);
        stockLeft = true;
        for (const page of pages) {
          await eventually(() => presenceNames(page), (list) => !list.includes("Stocky"), "Stocky to leave the app's list", PROMPTLY_MS);
        }
      } finally {
        if (!stockLeft) disconnectProvider(stock);
      }
    },
    TEST_TIMEOUT_MS,
  );

  it.concurrent(
    "a tab that vanished without a close leaves the others' lists within a probe's grace of the room's next check",
    async ({ expect }) => {
      const url = roomUrl(server, "vanished");
      const network = await startCuttableNetwork(server.origin);
      try {
        const [ada, bo] = await Promise.all(["Ada", "Bo"].map((name) => openRecordedPerson(browser, url, name)));
        // Cy reaches the server through the relay, whose cable the test pulls out.
        const cy = await openRecordedPerson(browser, `${network.origin}${new URL(url).pathname}`, "Cy");
        const joinedAt = Date.now();
        for (const [page, name] of [[ada, "Ada"], [bo, "Bo"], [cy, "Cy"]] as const) await typeAtEnd(page, `${name} was here. `);
        await everyoneListedAndSaved([ada, bo, cy], ["Ada", "Bo", "Cy"]);

        // Let the room's own work after the joins and edits pass (the join deadline, held writes),
        // so that nothing reaches the room between the cut and Ada's next frame.
        await sleep(Math.max(0, joinedAt + JOIN_TIMEOUT_MS + HELD_UPDATES_ALARM_MS - Date.now()));
        network.cut();

        // The room checks quiet sockets at the first frame QUIET_CHECK_IN_USE_MS after its last
        // check (which was before the cut), and probes those silent QUIET_PROBE_AFTER_MS (less):
        // until then a quiet tab is held while its socket lives, even a vanished one.
        await sleep(Math.max(QUIET_CHECK_IN_USE_MS, QUIET_PROBE_AFTER_MS) + 1_000);
        for (const page of [ada, bo]) expect(await presenceNames(page), `a list; Cy's socket closes: ${(await socketLog(cy)).closed}`).toContain("Cy");
        await typeAtEnd(ada, "Ada again.");
        await eventually(() => editorText(bo), (text) => text.endsWith("Ada again."), "Ada's edit at Bo");
        for (const page of [ada, bo]) {
          await eventually(() => presenceNames(page), (list) => !list.includes("Cy"), "Cy to leave the list", QUIET_PROBE_GRACE_MS + PROMPTLY_MS);
        }
        expect(await listed(ada)).toBe("Ada (you)|Bo");
      } finally {
        await network.close();
      }
    },
    TEST_TIMEOUT_MS,
  );

  it.concurrent(
    "a reloaded tab comes back listed once; a tab offline says so, and its offline edits arrive and are saved once back",
    async ({ expect }) => {
      const url = roomUrl(server, "reload");
      const names = ["Ada", "Bo"];
      const [ada, bo] = await Promise.all(names.map((name) => openRecordedPerson(browser, url, name)));
      await typeAtEnd(ada, "Ada was here.");
      await everyoneListedAndSaved([ada, bo], names);

      await bo.reload();
      await bo.waitForSelector(".cm-content");
      // Not "Bo · 2 tabs": the room removed the state of the page that unloaded.
      await everyoneListedAndSaved([ada, bo], names);
      await sleep(2_000);
      expect(await listed(ada)).toBe("Ada (you)|Bo");

      await bo.context().setOffline(true);
      await eventually(() => connectionState(bo), (state) => state === "offline", "Bo to show offline");
      await typeAtEnd(bo, " Bo offline.");
      expect(await bo.textContent('[data-testid="status"]')).toMatch(/unsaved changes/);
      await sleep(1_000);
      expect(await editorText(ada)).toBe("Ada was here.");

      await bo.context().setOffline(false);
      await eventually(() => editorText(ada), (text) => text === "Ada was here. Bo offline.", "Bo's offline edit at Ada");
      await everyoneListedAndSaved([ada, bo], names);
    },
    TEST_TIMEOUT_MS,
  );
});
