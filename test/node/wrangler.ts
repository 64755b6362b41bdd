/**
 * Starts a real `wrangler dev` on free loopback ports for Node-side tests, and stops it.
 * Storage goes to a persist dir the caller may reuse across restarts.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const STARTUP_TIMEOUT_MS = 60_000;

export interface DevServer {
  /** http://127.0.0.1:PORT */
  origin: string;
  /** The wrangler process (its process group holds workerd). */
  pid: number;
  /** ws://127.0.0.1:PORT/ws, the serverUrl for y-websocket's WebsocketProvider. */
  wsUrl: string;
  persistDir: string;
  /** wrangler's DevTools port (the runtime's inspector): the benchmark's --profile takes CPU profiles through it. */
  inspectorPort: number;
  /** Everything wrangler printed, for assertions on logs and for failure messages. */
  output: () => string;
  /** Stops wrangler and its workerd: SIGTERM by default, SIGKILL to simulate a crash. */
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export function newPersistDir(): string {
  return mkdtempSync(join(tmpdir(), "edgedoc-test-"));
}

export function removePersistDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export interface DevServerOptions {
  /** Storage directory; reuse one to restart a server with its data. Default: a new temporary one. */
  persistDir?: string;
  /** Overrides for wrangler.toml vars and secrets (e.g. AUTH_SECRET). */
  vars?: Record<string, string>;
  /** Another wrangler config (the benchmark's adds relay objects). Default: wrangler.toml. */
  config?: string;
}

/** Tries to start wrangler dev this many times when a port it was given is taken meanwhile. */
const PORT_ATTEMPTS = 3;

/**
 * Starts `wrangler dev` and waits until it answers /healthz. A free port can be taken by
 * another test's server between {@link freePort} and wrangler binding it: then it starts again
 * on other ports.
 */
export async function startDevServer(options: DevServerOptions = {}): Promise<DevServer> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnFreePorts(options);
    } catch (error) {
      if (attempt >= PORT_ATTEMPTS || !String(error).includes("Address already in use")) throw error;
    }
  }
}

async function startOnFreePorts({ persistDir = newPersistDir(), vars = {}, config }: DevServerOptions): Promise<DevServer> {
  const [port, inspectorPort] = [await freePort(), await freePort()];
  const args = [
    "node_modules/wrangler/bin/wrangler.js",
    "dev",
    "--ip=127.0.0.1",
    `--port=${port}`,
    `--inspector-port=${inspectorPort}`,
    `--persist-to=${persistDir}`,
    "--show-interactive-dev-session=false",
    "--log-level=log",
    ...Object.entries(vars).map(([name, value]) => `--var=${name}:${value}`),
    ...(config ? [`--config=${config}`] : []),
  ];
  // process.execPath is the Node 22 from node_modules/.bin that npm scripts run on.
  // Its own process group, so that stopping it also stops the workerd it spawns: a SIGKILL
  // to wrangler alone would leave workerd running and still serving the old sockets.
  const child = spawn(process.execPath, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, CI: "true" },
    detached: true,
  });
  let output = "";
  child.stdout!.on("data", (chunk) => (output += chunk));
  child.stderr!.on("data", (chunk) => (output += chunk));
  const origin = `http://127.0.0.1:${port}`;
  await waitUntilHealthy(origin, child, () => output);
  return {
    origin,
    pid: child.pid!,
    wsUrl: `ws://127.0.0.1:${port}/ws`,
    persistDir,
    inspectorPort,
    output: () => output,
    stop: (signal = "SIGTERM") => stopProcess(child, signal),
  };
}

async function waitUntilHealthy(origin: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}:\n${output()}`);
    try {
      // A Worker that failed to build leaves the proxy accepting connections and never answering.
      const response = await fetch(`${origin}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await stopProcess(child, "SIGKILL");
  throw new Error(`wrangler dev did not become healthy within ${STARTUP_TIMEOUT_MS} ms:\n${output()}`);
}

async function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  killGroup(child, signal);
  const forced = setTimeout(() => killGroup(child, "SIGKILL"), 10_000);
  await exited;
  clearTimeout(forced);
  // wrangler may exit before workerd does; make sure nothing of the group survives.
  killGroup(child, "SIGKILL");
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // The group is already gone.
  }
}
