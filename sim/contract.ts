/**
 * The room core as the simulation drives it: the contract of worker/room/core.ts (RoomCore),
 * written down here so the simulation states exactly what it relies on. sim/main.ts passes the
 * real class; `satisfies CoreFactory` there checks that it still fits.
 */
import type { AccessGrant } from "../worker/access";
import type { RoomLimits } from "../worker/config";
import type { Outcome } from "../worker/documents";
import type { WebhookSettings } from "../worker/webhooks";
import type { HttpSession } from "../worker/room/http-sessions";
import type { RoomHost } from "../worker/room/ports";
import type { SimSocket } from "./host";

/** A socket as the core sees it: a simulated WebSocket, or a session of the HTTP fallback (the real class, sim/http.ts). */
export type SimRoomSocket = SimSocket | HttpSession;

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

/** The room's view of quiet clients (worker/room/quiet-clients.ts) and of its duties, for the quiet-client invariants. */
export interface QuietFigures {
  /** When quiet sockets were last checked, or null (not since the object woke). */
  checkedAt: number | null;
  /** Each duty's due time as the alarm sees it (worker/room/room-duties.ts), by name. */
  duties: Record<string, number | null>;
  /** The sockets the room holds open, as it sees them. */
  sockets: { socket: SimRoomSocket; quiet: boolean; joined: boolean; probedAt: number | null }[];
  /** Presence held from quiet sockets: client ID → the socket holding it. */
  quietPresence: Map<number, SimRoomSocket>;
}

export interface SimulatedCore {
  /** Right after construction, in the same event (the shell's blockConcurrencyWhile). */
  wake(): Promise<void>;
  /** `quiet`: a quiet client (`?presence=socket`, docs/protocol.md). */
  connect(socket: SimRoomSocket, grant: AccessGrant, quiet?: boolean): Promise<void>;
  message(socket: SimRoomSocket, message: ArrayBuffer | string): Promise<void>;
  closed(socket: SimRoomSocket, end: SocketEnd): Promise<void>;
  /** Charges one request of the HTTP fallback to its session's message rate (worker/room/index.ts passes it to HttpSessions); absent: always admitted. */
  admitRequest?(socket: SimRoomSocket): boolean;
  /** Charges frames an HTTP session is sent again to its answer budgets (worker/room/index.ts passes it to HttpSessions); absent: always admitted. */
  chargeResend?(socket: SimRoomSocket, bytes: number): { code: number; reason: string } | null;
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
  /** What the quiet-client invariants read (sim/world.ts), between events; absent: they are not checked. */
  quiet?(): QuietFigures;
  /** Diagnostics only, for violation messages: each duty's due time (never used to decide anything). */
  dutyReport?(): string;
  /** Diagnostics only: the object behind the adapter, for ad-hoc debugging of a replay. */
  raw?: unknown;
}

export type CoreFactory = (host: RoomHost<SimRoomSocket>, config: RoomConfig) => SimulatedCore;
