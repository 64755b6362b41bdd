/**
 * CPU profiles of the server under test, through wrangler's DevTools port (workerd's V8
 * inspector): `npm run bench -- --profile <dir>` wraps each live run in one. Each profile is
 * written as `<dir>/<name>.cpuprofile` (open it in Chrome's DevTools, Performance tab) and
 * summarised as the functions with the most self time, so that a change is chosen by where
 * the time goes, not by guess.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { WebSocket } from "ws";

/** V8's default sampling interval is 1 ms; 100 µs resolves a ~0.2 ms edit. */
const SAMPLING_INTERVAL_US = 100;
const INSPECTOR_TIMEOUT_MS = 10_000;
/**
 * workerd's profiler takes no samples while the isolate waits for I/O and charges the whole
 * gap to the next sample (5 s to an alarm handler that merely ran after the window): a sample
 * counts for at most this long.
 */
const MAX_SAMPLE_US = 4 * SAMPLING_INTERVAL_US;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One function's share of a profile. */
export interface HotFunction {
  name: string;
  selfMs: number;
  share: number;
}

export interface ProfileSummary {
  file: string;
  /** Sampled time in JavaScript (idle and GC excluded), ms. */
  busyMs: number;
  top: HotFunction[];
}

/** A DevTools protocol session with the runtime's first target. */
class Inspector {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  private constructor(private readonly socket: WebSocket) {
    socket.on("message", (data: Buffer) => {
      const message = JSON.parse(data.toString()) as { id?: number; result?: unknown; error?: { message: string } };
      const pending = message.id === undefined ? undefined : this.waiting.get(message.id);
      if (!pending) return;
      this.waiting.delete(message.id!);
      if (message.error) pending.reject(new Error(message.error.message));
      else pending.resolve(message.result);
    });
  }

  static async open(port: number): Promise<Inspector> {
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json`, { signal: AbortSignal.timeout(INSPECTOR_TIMEOUT_MS) })).json()) as { webSocketDebuggerUrl: string }[];
    if (!targets[0]) throw new Error(`no inspector target on port ${port}`);
    const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("inspector did not open")), INSPECTOR_TIMEOUT_MS);
      socket.once("open", () => (clearTimeout(timer), resolve()));
      socket.once("error", (error) => (clearTimeout(timer), reject(error)));
    });
    return new Inspector(socket);
  }

  call<T>(method: string, params: object = {}): Promise<T> {
    const id = this.next++;
    this.socket.send(JSON.stringify({ id, method, params }));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => (this.waiting.delete(id), reject(new Error(`${method}: no answer`))), INSPECTOR_TIMEOUT_MS);
      this.waiting.set(id, { resolve: (value) => (clearTimeout(timer), resolve(value as T)), reject: (error) => (clearTimeout(timer), reject(error)) });
    });
  }

  close(): void {
    this.socket.close();
  }
}

/** Runs `body` with the runtime's CPU profiler on, and writes and summarises the profile. */
export async function profiled<R>(inspectorPort: number, dir: string, name: string, body: () => Promise<R>): Promise<R & { profile: ProfileSummary }> {
  const inspector = await Inspector.open(inspectorPort);
  try {
    await inspector.call("Profiler.enable");
    await inspector.call("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
    await inspector.call("Profiler.start");
    const result = await body();
    const { profile } = await inspector.call<{ profile: CpuProfile }>("Profiler.stop");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${name}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    return { ...result, profile: { file, ...summarise(profile) } };
  } finally {
    inspector.close();
  }
}

/** Self time per function (name and line, so that two anonymous functions stay apart), idle, GC and the program root left out. */
function summarise(profile: CpuProfile, count = 25): { busyMs: number; top: HotFunction[] } {
  const byNode = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<string, number>();
  let busyUs = 0;
  profile.samples.forEach((id, index) => {
    const frame = byNode.get(id)!.callFrame;
    if (["(idle)", "(program)", "(garbage collector)", "(root)"].includes(frame.functionName)) return;
    const delta = Math.min(profile.timeDeltas[index] ?? 0, MAX_SAMPLE_US);
    const key = `${frame.functionName || "(anonymous)"} ${frame.url.split("/").pop()}:${frame.lineNumber + 1}`;
    selfUs.set(key, (selfUs.get(key) ?? 0) + delta);
    busyUs += delta;
  });
  const top = [...selfUs]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, us]) => ({ name, selfMs: us / 1000, share: busyUs > 0 ? us / busyUs : 0 }));
  return { busyMs: busyUs / 1000, top };
}
