/**
 * Runs one schedule: each step against a {@link World}, then the end-of-schedule checks.
 * Stops at the first violation (what follows it would only be noise, and shrinking wants the
 * first failure).
 */
import * as Y from "yjs";
import type { CoreFactory, RoomConfig } from "./contract";
import { releaseRun, takeStrayFetches } from "./determinism";
import { healAndCheck } from "./invariants";
import { formatStep, type Schedule, type Step } from "./schedule";
import { describe, World, type Violation } from "./world";

export interface RunResult {
  violations: Violation[];
  /** Steps run (all of them unless a violation stopped the schedule). */
  steps: number;
  events: number;
  /** A hash of everything that happened: equal for equal runs. */
  trace: number;
}

export interface RunOptions {
  factory: CoreFactory;
  config: RoomConfig;
  trace: ((line: string) => void) | null;
  /** Invariants not to report (triage of known causes). */
  ignore?: readonly string[];
}

let unhandled: unknown[] = [];
process.on("unhandledRejection", (reason) => {
  unhandled.push(reason);
});

export async function runSchedule(schedule: Schedule, options: RunOptions): Promise<RunResult> {
  unhandled = [];
  takeStrayFetches();
  const world = new World({ schedule, factory: options.factory, config: options.config, trace: options.trace, ignore: options.ignore ?? [] });
  let steps = 0;
  try {
    for (const [index, step] of schedule.steps.entries()) {
      world.step = index;
      options.trace?.(formatStep(step, index));
      try {
        await runStep(world, step);
      } catch (error) {
        // A bug in the simulation or an exception the core let escape through a path the world does not guard.
        world.violate("harness", `step threw: ${describe(error)}${error instanceof Error && error.stack ? `\n${error.stack.split("\n").slice(1, 6).join("\n")}` : ""}`);
      }
      steps++;
      collectStray(world);
      if (world.violations.length > 0) break;
    }
    if (world.violations.length === 0) {
      options.trace?.("end: heal and check");
      await healAndCheck(world);
      collectStray(world);
    }
  } finally {
    for (const client of world.clients) client.destroy();
    releaseRun();
  }
  return { violations: world.violations, steps, events: world.events, trace: world.trace };
}

function collectStray(world: World): void {
  for (const url of takeStrayFetches()) world.violate("host-only", `the core called the global fetch(${url}) instead of host.fetch`);
  for (const reason of unhandled.splice(0)) world.violate("no-throw", `unhandled promise rejection: ${describe(reason)}`);
}

async function runStep(world: World, step: Step): Promise<void> {
  const client = "c" in step ? world.clients[step.c] : undefined;
  switch (step.k) {
    case "connect":
      if (client && client.stopped === null) {
        client.connect(world.now);
        await world.connect(client);
      }
      return;
    case "disconnect":
      if (!client) return;
      if (step.how === "clean") client.disconnect(world.now);
      else if (step.how === "vanish") world.vanish(client);
      else client.dropConnection(world.now, step.how === "error");
      return;
    case "edit":
      client?.edit(step.at, step.remove, step.insert);
      return;
    case "presence":
      client?.setCursor(step.cursor);
      return;
    case "share": {
      const from = world.clients[step.from];
      const to = world.clients[step.to];
      if (from && to && from !== to) to.receiveFromTab(Y.encodeStateAsUpdate(from.doc));
      return;
    }
    case "deliver":
      return world.deliver(step);
    case "deliverAll":
      await world.deliverAll();
      return;
    case "advance":
      return world.advance(step.ms, step.alarms);
    case "idle":
      return world.idle(step.ms);
    case "alarm":
      if (step.how === "early") return world.fireAlarm("early");
      if (step.how === "due") {
        const alarm = world.storage.alarm;
        if (alarm !== null && alarm <= world.now) await world.fireAlarm("due");
        return;
      }
      // Twice: the runtime delivers the alarm again right after (at-least-once).
      await world.fireAlarm(world.storage.alarm !== null && world.storage.alarm <= world.now ? "due" : "early");
      await world.fireAlarm("early");
      return;
    case "evict":
      return world.evict();
    case "kill":
      if (step.at === null) world.killProcess();
      else world.storage.killAtStatement(step.at);
      return;
    case "fault":
      world.storage.failStatement(step.at);
      return;
    case "api":
      return world.api(step.call);
    case "endpoint": {
      const url = world.endpoints.urls[step.e];
      if (url !== undefined) world.endpoints.set(url, { up: step.up, failure: step.failure });
      return;
    }
    case "attack":
      if (client) world.attack(client, step.attack);
      return;
    case "reopen":
      if (client && client.stopped !== null) client.connect(world.now);
      return;
    case "http":
      if (client) await world.http.step(client, step.act);
      return;
  }
}
