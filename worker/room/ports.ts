/**
 * What the room's core needs from the runtime, as small interfaces. The Durable Object shell
 * (worker/room/index.ts) implements them with `ctx.storage` and hibernatable WebSockets; the
 * simulation (sim/) implements them with Node's SQLite, a simulated clock, simulated sockets
 * and a simulated alarm. Nothing in the core imports `cloudflare:workers`.
 */

/** A value SQLite stores or returns; blobs come back as `ArrayBuffer`, as Durable Objects give them. */
export type SqlValue = ArrayBuffer | string | number | null;

/** A query's rows, as Durable Objects' `SqlStorageCursor` gives them. */
export interface SqlCursor<Row extends Record<string, SqlValue>> extends Iterable<Row> {
  toArray(): Row[];
  /** The one row; throws unless there is exactly one. */
  one(): Row;
}

/**
 * SQL on the room's database: `ctx.storage.sql` in a Durable Object. Every statement of one
 * event (a socket message, an RPC call, the alarm) commits together once the event ends, and
 * nothing the event sends leaves before that commit (the output gate).
 */
export interface SqlPort {
  exec<Row extends Record<string, SqlValue>>(query: string, ...bindings: (SqlValue | Uint8Array)[]): SqlCursor<Row>;
}

/** The room's storage: SQL, explicit transactions, the alarm, and deleting everything. */
export interface StoragePort {
  readonly sql: SqlPort;
  /** Runs `body` in a transaction: a throw rolls back what it wrote (`ctx.storage.transactionSync`). */
  transaction<T>(body: () => T): T;
  getAlarm(): Promise<number | null>;
  setAlarm(at: number): Promise<void>;
  deleteAlarm(): Promise<void>;
  /** Deletes every table and row (`ctx.storage.deleteAll`). */
  deleteAll(): Promise<void>;
}

/**
 * One client connection as the room sees it: a hibernatable WebSocket. The attachment survives
 * hibernation (at most 16 KiB, Cloudflare's limit).
 */
export interface RoomSocket {
  send(frame: Uint8Array): void;
  close(code: number, reason: string): void;
  serializeAttachment(value: unknown): void;
  deserializeAttachment(): unknown;
}

/** The runtime around the room: its sockets, its clock, and outbound HTTP (webhooks). */
export interface RoomHost<Socket extends RoomSocket = RoomSocket> {
  readonly storage: StoragePort;
  /** Every socket the runtime lists for the room (`ctx.getWebSockets()`), those closing included. */
  sockets(): Socket[];
  now(): number;
  /** Outbound HTTP, for webhook deliveries (the global `fetch` in a Worker). */
  fetch(url: string, init: RequestInit): Promise<Response>;
  /** The document name, for logs and webhook events. */
  readonly name: string | undefined;
  /**
   * When the runtime last answered `socket`'s `ping` without waking the room
   * (`getWebSocketAutoResponseTimestamp`), or null: never, or not a WebSocket.
   */
  lastPingAt(socket: Socket): number | null;
  /** Sends a quiet client's socket the text frame `probe` (docs/protocol.md, "Quiet clients"). */
  probe(socket: Socket): void;
}
