/**
 * Makes a simulated run a function of its seed alone. Imported first by sim/main.ts, before
 * any Yjs or lib0 module is evaluated, because those capture what they use at load time:
 * lib0/time exports `getUnixTime = Date.now` and lib0/webcrypto binds `getRandomValues` once.
 * So the patches below are installed before that capture, and delegate to whatever the
 * current run has set ({@link useClock}, {@link useRandom}).
 *
 * - Time: `Date.now()` reads the simulated clock while a run is active. The room core is meant
 *   to read time from `host.now()`, but Yjs awareness (client side), log fields and any
 *   leftover `Date.now()` then agree with the simulation instead of the wall clock.
 * - Randomness: `Math.random`, `crypto.getRandomValues` (Yjs clientIDs of the room's own
 *   documents, lib0's uuids) and `crypto.randomUUID` (webhook ids) draw from the run's PRNG.
 * - Order: WebCrypto's HMAC (webhook signatures) runs on Node's thread pool, and its promises
 *   settle in whatever order the threads finish, and at a moment of wall time: two deliveries
 *   of one alarm run (`Promise.all`) then reached their endpoints, and wrote their outcomes, in
 *   either order, and work waiting on a macrotask (sim/sqlite.ts `io`) ran before or after
 *   them. HMAC-SHA-256 keys and signatures are computed here, synchronously (the same bytes),
 *   and their promises are settled at once.
 * - Logs: the room's `logEvent` prints JSON lines with console.log; they are captured per run
 *   (some invariants read them, and 2,000 schedules would print millions of lines).
 * - Outbound HTTP: the core must use `host.fetch`; the global `fetch` is replaced with one that
 *   fails and records the call, so a stray use shows up as a violation and never leaves the machine.
 */
import { createHmac } from "node:crypto";
import { Prng } from "./prng";

const realDateNow = Date.now.bind(Date);
const realRandom = Math.random.bind(Math);
let clock: (() => number) | null = null;
let random = new Prng(0x5eed);

/** One captured console line: JSON log events are parsed, anything else kept as text. */
export interface CapturedLog {
  event: string;
  fields: Record<string, unknown>;
}

let capturing = false;
let captured: CapturedLog[] = [];
let echo: ((line: string) => void) | null = null;
let strayFetches: string[] = [];

/** Sets the clock `Date.now()` reads (null: the wall clock again). */
export function useClock(now: (() => number) | null): void {
  clock = now;
}

/** Sets the generator behind Math.random, crypto.getRandomValues and crypto.randomUUID. */
export function useRandom(prng: Prng): void {
  random = prng;
}

/** Starts capturing console output into a fresh list; `print` also receives each line (--verbose). */
export function captureLogs(print: ((line: string) => void) | null): CapturedLog[] {
  capturing = true;
  captured = [];
  echo = print;
  return captured;
}

/** Stops capturing (console output goes to stderr again) and puts the wall clock back. */
export function releaseRun(): void {
  capturing = false;
  echo = null;
  clock = null;
}

/** Global `fetch` calls made since the last call (each one is a violation: the core must use host.fetch). */
export function takeStrayFetches(): string[] {
  const taken = strayFetches;
  strayFetches = [];
  return taken;
}

/** Real randomness, for choosing a seed when none is given (never inside a run). */
export function wallRandom(): number {
  return realRandom();
}

/** The wall clock, for measuring the simulation itself. */
export function wallNow(): number {
  return realDateNow();
}

function install(): void {
  Date.now = () => (clock === null ? realDateNow() : clock());
  Math.random = () => random.next();
  const webcrypto = globalThis.crypto;
  Object.defineProperty(webcrypto, "getRandomValues", {
    configurable: true,
    writable: true,
    value: <T extends ArrayBufferView | null>(array: T): T => {
      if (array === null) return array;
      random.fill(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
      return array;
    },
  });
  const subtle = webcrypto.subtle;
  const importKey = subtle.importKey.bind(subtle) as (...args: unknown[]) => Promise<unknown>;
  const sign = subtle.sign.bind(subtle) as (...args: unknown[]) => Promise<ArrayBuffer>;
  const hmacKeys = new WeakMap<object, Buffer>();
  Object.defineProperty(subtle, "importKey", {
    configurable: true,
    writable: true,
    value: (...args: unknown[]): Promise<unknown> => {
      const [format, keyData, algorithm, extractable, usages] = args as [string, ArrayBufferView | ArrayBuffer, { name?: string; hash?: string | { name?: string } }, boolean, string[]];
      const hash = typeof algorithm?.hash === "string" ? algorithm.hash : algorithm?.hash?.name;
      if (format !== "raw" || algorithm?.name !== "HMAC" || hash !== "SHA-256") return importKey(...args);
      const key = Object.freeze({ type: "secret", algorithm: { name: "HMAC", hash: { name: "SHA-256" } }, extractable, usages: [...usages] });
      hmacKeys.set(key, Buffer.from(bytesOf(keyData)));
      return Promise.resolve(key);
    },
  });
  Object.defineProperty(subtle, "sign", {
    configurable: true,
    writable: true,
    value: (...args: unknown[]): Promise<ArrayBuffer> => {
      const [algorithm, key, data] = args as [string | { name?: string }, object, ArrayBufferView | ArrayBuffer];
      const raw = hmacKeys.get(key);
      const name = typeof algorithm === "string" ? algorithm : algorithm?.name;
      if (raw === undefined || name !== "HMAC") return sign(...args);
      const digest = createHmac("sha256", raw).update(bytesOf(data)).digest();
      return Promise.resolve(digest.buffer.slice(digest.byteOffset, digest.byteOffset + digest.byteLength) as ArrayBuffer);
    },
  });
  Object.defineProperty(webcrypto, "randomUUID", {
    configurable: true,
    writable: true,
    value: (): string => {
      const bytes = random.fill(new Uint8Array(16));
      bytes[6] = (bytes[6]! & 0x0f) | 0x40;
      bytes[8] = (bytes[8]! & 0x3f) | 0x80;
      const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
      return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
    },
  });
  const record = (level: string) => (...args: unknown[]) => {
    const line = args.map((arg) => (typeof arg === "string" ? arg : String(arg))).join(" ");
    if (!capturing) {
      process.stderr.write(`${line}\n`);
      return;
    }
    captured.push(parseLine(level, line));
    echo?.(line);
  };
  console.log = record("log");
  console.info = record("info");
  console.warn = record("warn");
  console.error = record("error");
  globalThis.fetch = async (input: string | URL | Request) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    strayFetches.push(url);
    throw new TypeError(`simulation: global fetch(${url}) is not allowed; the core must use host.fetch`);
  };
}

function bytesOf(source: ArrayBufferView | ArrayBuffer): Uint8Array {
  return ArrayBuffer.isView(source) ? new Uint8Array(source.buffer, source.byteOffset, source.byteLength) : new Uint8Array(source);
}

function parseLine(level: string, line: string): CapturedLog {
  if (line.startsWith("{")) {
    try {
      const { event, ...fields } = JSON.parse(line) as { event?: unknown } & Record<string, unknown>;
      if (typeof event === "string") return { event, fields };
    } catch {
      // Not JSON after all: kept as text below.
    }
  }
  return { event: `console.${level}`, fields: { text: line } };
}

install();
