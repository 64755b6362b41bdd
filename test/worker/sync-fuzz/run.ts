/**
 * One seeded run of the fuzz (docs/tests.md, "HTTP fallback fuzz"): a room, a few
 * {@link FuzzPeer}s on a {@link FaultyNetwork}, and a schedule of steps drawn from the
 * simulation's PRNG (sim/prng.ts): edits, presence, leaves, rejoins, pauses, restarts of the
 * room (crashes) and deletions of the document. Then the network heals and everyone must agree.
 *
 * The schedule is a function of the seed alone: each step draws the same numbers whatever
 * happened before it (positions are fractions of the text as it then is), and each client's
 * requests draw their faults from their own streams. workerd's timing is not simulated, so a
 * replay runs the same steps and faults, not necessarily the same interleaving.
 */
import { SELF, env, runInDurableObject } from "cloudflare:test";
import * as Y from "yjs";
import { Prng, mixSeed } from "../../../sim/prng";
import { loadAppProvider, type AppProviderClass } from "./app-provider";
import { FuzzLog } from "./log";
import { FaultyNetwork, sleep } from "./network";
import { FuzzPeer } from "./peer";

export interface FuzzOptions {
  steps: number;
  clients: number;
}

const STEP_WEIGHTS = { edit: 40, presence: 12, leave: 5, rejoin: 8, pause: 12, restart: 3, deleteDocument: 1 } as const;

/** How long the healed room may take to agree, and the save tracker to confirm everything. */
const HEAL_MS = 10_000;
/** How long peers get, after a DELETE, to be told (4410). */
const DELETE_NOTICE_MS = 1_500;

const API = "http://edgedoc.test/api/docs";

/** The state vector of the document as the room stores it (read by a room woken from storage, after a restart). */
async function storedStateVector(room: string): Promise<Map<number, number>> {
  const response = await SELF.fetch(`${API}/${room}/update`);
  if (response.status !== 200) throw new Error(`GET update answered ${response.status}`);
  return Y.decodeStateVector(Y.encodeStateVectorFromUpdate(new Uint8Array(await response.arrayBuffer())));
}

async function storedText(room: string): Promise<string> {
  const response = await SELF.fetch(`${API}/${room}/text`);
  if (response.status !== 200) throw new Error(`GET text answered ${response.status}`);
  return response.text();
}

/**
 * The room leaves memory at once, as in a crash or a deploy: `ctx.abort()` inside the object.
 * Not the plugin's `evictDurableObject`: that one is graceful, it waits for requests in flight
 * to drain, and a held poll is one (it keeps the object awake, as docs/protocol.md says), so it
 * would wait out the Worker's 25 s hold.
 */
async function restartRoom(stub: DurableObjectStub): Promise<void> {
  // The abort fails the request that carried it: expected, and the only way the helper reports it.
  await runInDurableObject(stub, (_room, state: DurableObjectState) => state.abort("the fuzz restarts the room")).catch(() => {});
}

/** Polls `check` every 25 ms until it holds or `timeoutMs` passed; whether it held. */
async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(25);
  }
}

class FuzzRun {
  readonly log: FuzzLog;
  private readonly network: FaultyNetwork;
  private readonly room: string;
  private peers: FuzzPeer[] = [];
  private readonly stub: DurableObjectStub;

  constructor(
    readonly seed: number,
    private readonly options: FuzzOptions,
    private readonly Provider: AppProviderClass,
  ) {
    this.log = new FuzzLog(seed);
    this.network = new FaultyNetwork(seed, this.log);
    this.room = `sync-fuzz-${seed}-${crypto.randomUUID().slice(0, 8)}`;
    this.stub = env.ROOM.get(env.ROOM.idFromName(this.room));
  }

  async run(): Promise<void> {
    this.network.install();
    try {
      this.peers = this.freshPeers();
      const schedule = new Prng(mixSeed(this.seed, 0x7363686564));
      for (let step = 1; step <= this.options.steps; step++) {
        this.log.step = step;
        await this.runStep(schedule);
        await sleep(schedule.int(0, 40));
      }
      this.log.step = this.options.steps + 1;
      await this.heal();
    } finally {
      for (const peer of this.peers) peer.destroy();
      await this.network.settle(2_000);
      this.network.uninstall();
    }
  }

  private freshPeers(): FuzzPeer[] {
    return Array.from({ length: this.options.clients }, (_, index) => new FuzzPeer(this.Provider, index, this.room, this.log));
  }

  private async runStep(schedule: Prng): Promise<void> {
    const kind = schedule.weighted(STEP_WEIGHTS);
    const peer = this.peers[schedule.int(0, this.peers.length - 1)]!;
    const where = schedule.next();
    const size = schedule.int(1, 8);
    const content = schedule.text(8);
    const pauseMs = schedule.int(20, 300);
    const remove = schedule.chance(0.3);
    switch (kind) {
      case "edit":
        this.log.trace(`step: c${peer.index} ${remove ? `deletes ${size} at ${where.toFixed(2)}` : `inserts ${JSON.stringify(content)} at ${where.toFixed(2)}`}`);
        if (remove) peer.delete(where, size);
        else peer.insert(where, content);
        return;
      case "presence":
        this.log.trace(`step: c${peer.index} moves its cursor`);
        return peer.setPresence(Math.floor(where * (peer.text.length + 1)));
      case "leave":
        this.log.trace(`step: c${peer.index} leaves`);
        return peer.leave();
      case "rejoin":
        this.log.trace(`step: c${peer.index} rejoins`);
        return peer.rejoin();
      case "pause":
        this.log.trace(`step: pause ${pauseMs} ms`);
        return sleep(pauseMs);
      case "restart":
        return this.restart();
      case "deleteDocument":
        return this.deleteDocument();
    }
  }

  /**
   * The room leaves memory (a crash, a deploy). The clients' network is held meanwhile, so the first
   * request after it is ours: the stored document must hold every edit a client was told is
   * saved. Then the clients' next requests are answered 1012 and they join again.
   */
  private async restart(): Promise<void> {
    this.log.trace("step: the room restarts");
    this.network.pause();
    try {
      await restartRoom(this.stub);
      await this.checkSaved("after a restart");
    } finally {
      this.network.resume();
    }
  }

  private async checkSaved(when: string): Promise<void> {
    const stored = await storedStateVector(this.room);
    for (const peer of this.peers) {
      const has = stored.get(peer.doc.clientID) ?? 0;
      if (has < peer.savedClock) this.log.violation(`${when}: c${peer.index} was told its edits up to clock ${peer.savedClock} are saved, storage has ${has}`);
    }
  }

  /** `DELETE /api/docs/:name`: everyone connected is closed 4410; the people start over with new documents. */
  private async deleteDocument(): Promise<void> {
    this.log.trace("step: the document is deleted through the API");
    const response = await SELF.fetch(`${API}/${this.room}`, { method: "DELETE" });
    await response.body?.cancel();
    if (response.status !== 204) this.log.violation(`DELETE /api/docs answered ${response.status}`);
    const connected = this.peers.filter((peer) => peer.connected);
    await eventually(() => connected.every((peer) => !peer.joining), DELETE_NOTICE_MS);
    const told = connected.filter((peer) => !peer.joining).map((peer) => `c${peer.index}`);
    this.log.trace(`deleted: ${told.length} of ${connected.length} connected peers were closed for good (${told.join(" ")})`);
    for (const peer of this.peers) peer.destroy();
    this.peers = this.freshPeers();
  }

  /** Faults stop, everyone joins: every text must be the same, the stored one too, and every save confirmed and kept across a restart. */
  private async heal(): Promise<void> {
    this.log.trace("heal: faults off, everyone joins");
    this.network.faulty = false;
    for (const peer of this.peers) peer.rejoin();
    const texts = () => this.peers.map((peer) => peer.text.toString());
    const agreed = await eventually(() => this.peers.every((peer) => peer.connected) && new Set(texts()).size === 1, HEAL_MS);
    if (!agreed) {
      const states = this.peers.map((peer) => `c${peer.index} ${peer.connected ? "synced" : "not synced"} ${JSON.stringify(peer.text.toString())}`);
      return this.log.violation(`the healed room does not agree within ${HEAL_MS} ms: ${states.join("; ")}`);
    }
    const text = texts()[0]!;
    if (!(await eventually(async () => (await storedText(this.room)) === text, HEAL_MS))) {
      this.log.violation(`the stored text ${JSON.stringify(await storedText(this.room))} is not the clients' ${JSON.stringify(text)}`);
    }
    if (!(await eventually(() => this.peers.every((peer) => !peer.unconfirmed), HEAL_MS))) {
      this.log.violation(`edits never confirmed saved: ${this.peers.filter((peer) => peer.unconfirmed).map((peer) => `c${peer.index}`).join(" ")}`);
    }
    this.log.step = this.options.steps + 2;
    await this.restart();
    const afterRestart = await storedText(this.room);
    if (afterRestart !== text) this.log.violation(`after a last restart the stored text is ${JSON.stringify(afterRestart)}, not ${JSON.stringify(text)}`);
  }
}

/** Runs `seed`; its log holds the violations (none: the run passed). */
export async function runSeed(seed: number, options: FuzzOptions): Promise<FuzzLog> {
  const run = new FuzzRun(seed, options, await loadAppProvider());
  await run.run();
  return run.log;
}
