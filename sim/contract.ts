/**
 * The room core as the simulation drives it: the contract of worker/room/core.ts (RoomCore),
 * written down here so the simulation states exactly what it relies on. sim/main.ts passes the
 * real class; `satisfies CoreFactory` there checks that it still fits.
 */
import type { AccessGrant } from "../worker/access";
import type { RoomLimits } from "../worker/config";
import type { Outcome } from "../worker/documents";
import type { WebhookSettings } from "../worker/webhooks";
import type { RoomHost } from "../worker/room/ports";
import type { SimSocket } from "./host";

export type SocketEnd = { code: number; reason: string; wasClean: boolean } | { error: unknown };

export interface RoomConfig {
  limits: RoomLimits;
  webhooks: WebhookSettings | null;
}

/** What inspect() reports, for the invariants. */
export interface CoreFigures {
  /** Null when the document is not loaded. */
  stateVector: Uint8Array | null;
  pendingBytes: number;
  heldBytes: number;
  openSessions: number;
  /** The earliest time any duty is due, or null. */
  nextDue: number | null;
}

export interface SimulatedCore {
  /** Right after construction, in the same event (the shell's blockConcurrencyWhile). */
  wake(): Promise<void>;
  connect(socket: SimSocket, grant: AccessGrant): Promise<void>;
  message(socket: SimSocket, message: ArrayBuffer | string): Promise<void>;
  closed(socket: SimSocket, end: SocketEnd): Promise<void>;
  alarm(): Promise<void>;
  applyUpdate(update: Uint8Array, author?: string): Promise<Outcome<{ changed: boolean; pending?: true }>>;
  replaceText(text: string, author?: string): Promise<Outcome<{ changed: boolean }>>;
  saveVersion(name: string): Promise<Outcome<{ id: number }>>;
  restoreVersion(id: number, author?: string): Promise<Outcome<{ changed: boolean }>>;
  deleteVersion(id: number): Promise<Outcome<null>>;
  versions(): Promise<{ id: number; name: string | null }[]>;
  destroy(): Promise<unknown>;
  webhookEvents(): Promise<{ id: string; type: string; endpoint: string; state: string }[]>;
  text(caller: string): Promise<Outcome<string>>;
  encodeUpdate(caller: string, stateVector?: Uint8Array): Promise<Outcome<Uint8Array>>;
  stats(): Promise<unknown>;
  inspect(): CoreFigures;
  /** Diagnostics only, for violation messages: each duty's due time (never used to decide anything). */
  dutyReport?(): string;
  /** Diagnostics only: the object behind the adapter, for ad-hoc debugging of a replay. */
  raw?: unknown;
}

export type CoreFactory = (host: RoomHost<SimSocket>, config: RoomConfig) => SimulatedCore;
