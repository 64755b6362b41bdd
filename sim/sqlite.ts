/**
 * The room's storage as a Durable Object gives it, over Node 22's `node:sqlite` (in memory).
 *
 * Semantics kept from Durable Objects (SQLite-backed):
 * - `sql.exec(query, ...bindings)` runs at once and returns a cursor (`toArray`, `one`,
 *   iteration). Several statements separated by `;` are allowed only without bindings (the
 *   rows are the last statement's). A binding count that does not match the placeholders
 *   throws, as workerd does ('Wrong number of parameter bindings'): node:sqlite would bind
 *   missing ones as NULL and silently ignore a second statement, hiding exactly the bugs a
 *   simulation is for. BLOBs come back as `ArrayBuffer` (copied out of Node's Uint8Array);
 *   `ArrayBuffer` and `Uint8Array` bindings are stored as BLOBs.
 * - Writes commit where workerd commits them (test/worker/runtime-model.test.ts): at the end of
 *   the event ({@link endEvent}) and whenever the event waits for the event loop, which in the
 *   core's ports is only an outbound `fetch` ({@link checkpoint}); awaiting an alarm call or a
 *   microtask commits nothing. {@link killEvent} (the process dying) loses only what was
 *   written since the last commit. `transaction(body)` (`transactionSync`) nests with savepoints.
 * - {@link holdsOutput}: whether the event has written since its last commit. workerd's output
 *   gate holds a frame only for writes made before it, so a frame sent while nothing is
 *   uncommitted leaves at once (sim/host.ts).
 * - The alarm is kept beside the database and committed and lost with it.
 * - `deleteAll()` wipes every table and the alarm (compatibility flag `delete_all_deletes_alarm`,
 *   on from 2026-02-24; wrangler.toml's date is later) and cannot be undone: a kill after it
 *   loses only what follows it. Inside `transactionSync` it throws, as in workerd.
 *
 * Fault injection: {@link failStatement} makes the k-th statement of the next event throw
 * `Error("simulated storage fault")` (reads included; the statement has no effect).
 * {@link killAtStatement} makes every statement from the k-th on throw, and the host then
 * kills the event: the process died there.
 */
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite";
import type { SqlCursor, SqlPort, SqlValue, StoragePort } from "../worker/room/ports";

/** Thrown by a statement once the process is (simulated to be) dead; never seen by a live core. */
export class SimulatedKill extends Error {
  constructor() {
    super("simulated process kill");
    this.name = "SimulatedKill";
  }
}

export const STORAGE_FAULT_MESSAGE = "simulated storage fault";

/** A statement's shape, computed once per SQL text: its parts and how many placeholders each takes. */
interface ParsedQuery {
  statements: { sql: string; parameters: number }[];
  /** Whether it only reads (SELECT / read-only PRAGMA), for the commit generation. */
  readOnly: boolean;
}

/** What happened in the last event, for the invariants. */
export interface EventReport {
  statements: number;
  faultFired: boolean;
  killFired: boolean;
  wrote: boolean;
}

export class SimStorage implements StoragePort {
  readonly sql: SqlPort;
  /** SQL for checks, outside events: no statement counting, no faults (see {@link peek}). */
  readonly checkSql: SqlPort;
  private readonly db = new DatabaseSync(":memory:");
  private readonly prepared = new Map<string, StatementSync>();
  private readonly parsed = new Map<string, ParsedQuery>();
  private alarmAt: number | null = null;
  /** The alarm as last committed: what a kill goes back to. */
  private alarmCommitted: number | null = null;
  private inEvent = false;
  /** The event wrote (SQL, the alarm, a wipe) since its last commit. */
  private uncommitted = false;
  /** Inside {@link read}: the core's own SQL runs on the committed state and is rolled back. */
  private reading = false;
  private readWrote = false;
  private savepoints = 0;
  private statements = 0;
  private armedFault: number | null = null;
  private armedKill: number | null = null;
  private fault: number | null = null;
  private kill: number | null = null;
  private faultFired = false;
  private killFired = false;
  private wrote = false;
  /** Told when an armed kill is reached: the process is dead from here on, whatever the core still runs. */
  onKill: (() => void) | null = null;
  /** Sees every statement of an event (--verbose traces), with its number and whether it was the injected fault. */
  onStatement: ((n: number, sql: string, note: string) => void) | null = null;
  /** Bumped by every committed event that wrote: lets checks cache what they load from storage. */
  generation = 0;
  /**
   * The wait of an asynchronous call (the alarm, `deleteAll`) after its effect, which happens at
   * the call, in order with the SQL around it. Null: it resolves at once. A run that has other
   * work in flight inside an event (an HTTP session's end reported to the core, sim/http.ts)
   * may wait a macrotask instead, so that work runs while the caller waits, as it would
   * beside real I/O.
   */
  io: (() => Promise<void>) | null = null;

  constructor() {
    this.sql = { exec: (query, ...bindings) => this.exec(query, bindings, true) };
    this.checkSql = { exec: (query, ...bindings) => this.exec(query, bindings, false) };
  }

  // --- The event's transaction -------------------------------------------------------------

  beginEvent(): void {
    if (this.inEvent) throw new Error("simulation: an event is already open");
    this.db.exec("BEGIN");
    this.inEvent = true;
    this.statements = 0;
    this.savepoints = 0;
    this.fault = this.armedFault;
    this.kill = this.armedKill;
    this.armedFault = null;
    this.armedKill = null;
    this.faultFired = false;
    this.killFired = false;
    this.wrote = false;
    this.uncommitted = false;
    this.alarmCommitted = this.alarmAt;
  }

  /** Commits the event (or, if a kill was armed and reached, the caller must call {@link killEvent} instead). */
  endEvent(): EventReport {
    const report = this.report();
    this.db.exec("COMMIT");
    this.inEvent = false;
    if (this.uncommitted) this.generation++;
    this.uncommitted = false;
    return report;
  }

  /**
   * The event waits for the event loop (an outbound `fetch`): workerd commits what it wrote so
   * far, so a later kill only loses what follows, and the output gate opens for what was sent
   * before. The event's statement count goes on.
   */
  checkpoint(): void {
    if (!this.inEvent) return;
    if (this.savepoints > 0) throw new Error("simulation: outbound request inside transactionSync");
    this.commitSoFar();
  }

  /** Whether a frame sent now waits for a commit (the event wrote since its last one). */
  get holdsOutput(): boolean {
    return this.inEvent && this.uncommitted;
  }

  private commitSoFar(): void {
    this.db.exec("COMMIT");
    if (this.uncommitted) this.generation++;
    this.uncommitted = false;
    this.db.exec("BEGIN");
    this.alarmCommitted = this.alarmAt;
  }

  /**
   * Another event starts while this one awaits its outbound fetch (sim/world.ts). workerd keeps
   * one implicit transaction per object, not per event: the two write into the same one, and
   * the other event's end (a turn of the event loop) commits both. Faults and kills armed for
   * "the next event" belong to the waiting one; the other runs without. Returns its end.
   */
  beginNestedEvent(): () => void {
    if (!this.inEvent) throw new Error("simulation: a nested event outside an event");
    const saved = { statements: this.statements, fault: this.fault, kill: this.kill, faultFired: this.faultFired, killFired: this.killFired, wrote: this.wrote };
    this.fault = this.kill = null;
    this.statements = 0;
    this.faultFired = this.killFired = this.wrote = false;
    return () => {
      if (!this.inEvent) return;
      if (this.savepoints > 0) throw new Error("simulation: a nested event ended inside transactionSync");
      this.commitSoFar();
      ({ statements: this.statements, fault: this.fault, kill: this.kill, faultFired: this.faultFired, killFired: this.killFired, wrote: this.wrote } = saved);
    };
  }

  /**
   * A check between events runs while an event waits for its fetch: what that event's other
   * branches wrote since is committed first, as the event loop turning between events does.
   */
  private commitBesideFetch(): void {
    if (!this.inEvent || !this.uncommitted) return;
    if (this.savepoints > 0) throw new Error("simulation: a check inside transactionSync");
    this.commitSoFar();
  }

  /**
   * Runs `body` (the core's inspect(), say) between events on the committed state, in a
   * transaction rolled back afterwards; reports whether it tried to write.
   */
  read<T>(body: () => T): { value: T; wrote: boolean } {
    // Beside an event awaiting its fetch, its transaction is open, with nothing uncommitted.
    const nested = this.inEvent;
    this.commitBesideFetch();
    const alarm = this.alarmAt;
    this.db.exec(nested ? "SAVEPOINT sim_read" : "BEGIN");
    this.reading = true;
    this.readWrote = false;
    try {
      return { value: body(), wrote: this.readWrote || this.alarmAt !== alarm };
    } finally {
      this.reading = false;
      this.alarmAt = alarm;
      this.db.exec(nested ? "ROLLBACK TO sim_read" : "ROLLBACK");
      if (nested) this.db.exec("RELEASE sim_read");
    }
  }

  /** The process died: what the event wrote since its last commit (SQL and the alarm) is lost. */
  killEvent(): EventReport {
    const report = this.report();
    if (this.inEvent) {
      this.db.exec("ROLLBACK");
      this.alarmAt = this.alarmCommitted;
    }
    this.inEvent = false;
    this.uncommitted = false;
    return report;
  }

  /** Whether an injected storage fault fired in the current (or just ended) event. */
  get lastFault(): boolean {
    return this.faultFired;
  }

  /** Whether a kill armed for this event was reached (the host then kills instead of committing). */
  get killReached(): boolean {
    return this.killFired;
  }

  /** Whether the kill armed for this event is still to come: then it happens at the event's end. */
  get killPending(): boolean {
    return this.kill !== null && !this.killFired;
  }

  private report(): EventReport {
    return { statements: this.statements, faultFired: this.faultFired, killFired: this.killFired, wrote: this.wrote };
  }

  /** The k-th statement (1-based) of the next event throws a storage fault. */
  failStatement(k: number): void {
    this.armedFault = k;
  }

  /** From the k-th statement (1-based) of the next event on, every statement throws: the process dies there. */
  killAtStatement(k: number): void {
    this.armedKill = k;
  }

  /** Forgets armed faults (the schedule heals). */
  disarm(): void {
    this.armedFault = null;
    this.armedKill = null;
  }

  /**
   * Runs `read` on the committed state, between events: inside a transaction that is rolled
   * back, so nothing a check does (a DocumentStore's `CREATE TABLE IF NOT EXISTS`) can change
   * what the core will find.
   */
  peek<T>(read: (sql: SqlPort) => T): T {
    if (this.inEvent) {
      // A frame leaving mid-event is measured against committed storage: which is what the
      // open transaction holds while it has nothing uncommitted (sim/host.ts).
      this.commitBesideFetch();
      this.db.exec("SAVEPOINT sim_peek");
      try {
        return read(this.checkSql);
      } finally {
        this.db.exec("ROLLBACK TO sim_peek");
        this.db.exec("RELEASE sim_peek");
      }
    }
    this.db.exec("BEGIN");
    try {
      return read(this.checkSql);
    } finally {
      this.db.exec("ROLLBACK");
    }
  }

  // --- StoragePort ---------------------------------------------------------------------------

  transaction<T>(body: () => T): T {
    const name = `sim_sp_${++this.savepoints}`;
    this.db.exec(`SAVEPOINT ${name}`);
    try {
      const result = body();
      if (result instanceof Promise) throw new Error("transactionSync: the callback must not be async");
      this.db.exec(`RELEASE ${name}`);
      return result;
    } catch (error) {
      this.db.exec(`ROLLBACK TO ${name}`);
      this.db.exec(`RELEASE ${name}`);
      throw error;
    } finally {
      this.savepoints--;
    }
  }

  async getAlarm(): Promise<number | null> {
    const at = this.alarmAt;
    if (this.io !== null) await this.io();
    return at;
  }

  async setAlarm(at: number): Promise<void> {
    if (!Number.isFinite(at)) throw new TypeError(`setAlarm: not a time: ${at}`);
    this.alarmAt = at;
    this.noteAlarmWrite();
    if (this.io !== null) await this.io();
  }

  async deleteAlarm(): Promise<void> {
    this.alarmAt = null;
    this.noteAlarmWrite();
    if (this.io !== null) await this.io();
  }

  /** The alarm is stored with the database: changing it is a write of the event (outside {@link read}'s rollback). */
  private noteAlarmWrite(): void {
    if (this.inEvent && !this.reading) this.uncommitted = true;
  }

  /**
   * workerd rolls back the event's uncommitted writes, deletes the database and the alarm, and
   * commits that at once (a kill cannot undo it); what the event writes next is a new
   * transaction. The output gate holds what is sent after it until the next commit.
   */
  async deleteAll(): Promise<void> {
    if (this.reading) throw new Error("simulation: deleteAll outside an event");
    if (this.savepoints > 0) throw new Error("Cannot call deleteAll() within a transaction");
    this.countStatement();
    this.wrote = true;
    const tables = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[];
    for (const { name } of tables) this.db.exec(`DROP TABLE "${name.replaceAll('"', '""')}"`);
    // Dropped tables invalidate prepared statements on them.
    this.prepared.clear();
    this.alarmAt = null;
    if (this.inEvent) {
      this.uncommitted = true;
      this.commitSoFar();
      this.uncommitted = true;
    }
    if (this.io !== null) await this.io();
  }

  /** The alarm as committed storage holds it (between events). */
  get alarm(): number | null {
    return this.alarmAt;
  }

  /** The runtime clears the alarm as it fires it (the handler may set it again). */
  clearAlarmForRun(): void {
    this.alarmAt = null;
  }

  /** Puts an alarm back: the runtime retries an alarm whose handler failed. */
  restoreAlarm(at: number | null): void {
    this.alarmAt = at;
  }

  // --- SQL -----------------------------------------------------------------------------------

  private countStatement(sql = "deleteAll()"): void {
    if (!this.inEvent) return;
    this.statements++;
    if (this.kill !== null && this.statements >= this.kill) {
      if (!this.killFired) this.onKill?.();
      this.killFired = true;
      this.onStatement?.(this.statements, sql, "KILLED");
      throw new SimulatedKill();
    }
    if (this.fault !== null && this.statements === this.fault) {
      this.faultFired = true;
      this.onStatement?.(this.statements, sql, "FAULT");
      throw new Error(STORAGE_FAULT_MESSAGE);
    }
    this.onStatement?.(this.statements, sql, "");
  }

  private exec<Row extends Record<string, SqlValue>>(query: string, bindings: (SqlValue | Uint8Array)[], counted: boolean): SqlCursor<Row> {
    if (counted && !this.reading) {
      if (!this.inEvent) throw new Error("simulation: SQL outside an event (the runtime runs every statement in one)");
      this.countStatement(query);
    }
    const shape = this.parse(query);
    if (shape.statements.length > 1 && bindings.length > 0) {
      throw new Error("A SQL prepared statement must contain only one statement when it has bindings.");
    }
    const last = shape.statements[shape.statements.length - 1];
    if (last === undefined) return cursor<Row>([]);
    if (bindings.length !== last.parameters) {
      throw new Error(`Wrong number of parameter bindings for SQL query. Expected ${last.parameters}, got ${bindings.length}.`);
    }
    if (!shape.readOnly && counted) {
      if (this.reading) this.readWrote = true;
      else this.wrote = this.uncommitted = true;
    }
    for (const statement of shape.statements.slice(0, -1)) this.db.exec(statement.sql);
    const rows = this.statement(last.sql).all(...bindings.map(toSqlite)) as Record<string, unknown>[];
    return cursor<Row>(rows.map(fromSqlite<Row>));
  }

  private statement(sql: string): StatementSync {
    let statement = this.prepared.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      // DDL changes what other statements see; only cache plain reads and writes.
      if (!/^\s*(CREATE|DROP|ALTER)\b/i.test(sql)) this.prepared.set(sql, statement);
    }
    return statement;
  }

  private parse(query: string): ParsedQuery {
    let shape = this.parsed.get(query);
    if (shape === undefined) {
      const statements = splitStatements(query);
      shape = { statements, readOnly: statements.every((s) => /^\s*(SELECT|PRAGMA\s+\w+\s*$)/i.test(s.sql)) };
      this.parsed.set(query, shape);
    }
    return shape;
  }
}

function toSqlite(value: SqlValue | Uint8Array): SQLInputValue {
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (value instanceof Uint8Array) return value;
  if (value === null || typeof value === "string") return value;
  if (typeof value === "number") {
    // workerd refuses what SQLite cannot store exactly as a number column would; NaN is the one to catch.
    if (Number.isNaN(value)) throw new TypeError("SQL binding is NaN");
    return value;
  }
  throw new TypeError(`Unsupported SQL binding type: ${typeof value}`);
}

function fromSqlite<Row>(row: Record<string, unknown>): Row {
  const out: Record<string, SqlValue> = {};
  for (const [key, value] of Object.entries(row)) {
    if (value instanceof Uint8Array) out[key] = value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength) as ArrayBuffer;
    else if (typeof value === "bigint") out[key] = Number(value);
    else out[key] = value as SqlValue;
  }
  return out as Row;
}

function cursor<Row extends Record<string, SqlValue>>(rows: Row[]): SqlCursor<Row> {
  return {
    toArray: () => rows,
    one: () => {
      if (rows.length !== 1) {
        throw new Error(`Expected exactly one result from SQL query, but got ${rows.length === 0 ? "no results" : "multiple results"}.`);
      }
      return rows[0]!;
    },
    [Symbol.iterator]: () => rows[Symbol.iterator](),
  };
}

/**
 * Splits SQL text into statements at top-level `;` and counts each one's placeholders (`?`,
 * or `?NNN` counted as its number), skipping string literals, quoted identifiers and comments.
 */
export function splitStatements(query: string): { sql: string; parameters: number }[] {
  const statements: { sql: string; parameters: number }[] = [];
  let start = 0;
  let parameters = 0;
  let i = 0;
  const push = (end: number) => {
    const sql = query.slice(start, end);
    if (sql.replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, "").trim() !== "") statements.push({ sql, parameters });
    parameters = 0;
  };
  while (i < query.length) {
    const char = query[i]!;
    if (char === "'" || char === '"' || char === "`") {
      const close = query.indexOf(char, i + 1);
      i = close === -1 ? query.length : close + 1;
      // '' inside a literal is an escaped quote: the loop sees it as a new literal, which is harmless.
    } else if (char === "[") {
      const close = query.indexOf("]", i + 1);
      i = close === -1 ? query.length : close + 1;
    } else if (char === "-" && query[i + 1] === "-") {
      const close = query.indexOf("\n", i);
      i = close === -1 ? query.length : close + 1;
    } else if (char === "/" && query[i + 1] === "*") {
      const close = query.indexOf("*/", i + 2);
      i = close === -1 ? query.length : close + 2;
    } else if (char === "?") {
      const digits = /^\d+/.exec(query.slice(i + 1))?.[0];
      parameters = digits === undefined ? parameters + 1 : Math.max(parameters, Number(digits));
      i += 1 + (digits?.length ?? 0);
    } else if (char === ";") {
      push(i);
      start = i + 1;
      i++;
    } else {
      i++;
    }
  }
  push(query.length);
  return statements;
}
