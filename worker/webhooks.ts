/**
 * Webhooks: events about one document, signed the Standard Webhooks way and delivered from an
 * outbox in the room's own SQLite storage (docs/webhooks.md).
 *
 * - An event is written to the outbox in the same event as the change that causes it, so it
 *   is as durable as the change; the room's alarm delivers it and retries on a schedule.
 * - `document.updated` costs no write per keystroke: the first change after a quiet period
 *   opens a burst (one row per endpoint); later changes only move its close in memory, and the
 *   row is rewritten only when the alarm finds the window moved (at most once per quiet period).
 * - Nothing is written for a document that is never changed.
 *
 * Table `edgedoc_webhooks` (created by the first event): one row per event and endpoint.
 * `state` is `collecting` (a `document.updated` burst still open; `due_at` is when it closes),
 * `pending` (`due_at` is the next attempt) or `failed` (retries exhausted; kept to be listed).
 * Delivered rows are deleted. An event keeps its id and body across all its attempts.
 */
import {
  DEFAULT_WEBHOOK_MAX_WAIT_SECONDS,
  DEFAULT_WEBHOOK_QUIET_SECONDS,
  DEFAULT_WEBHOOK_RETRY_SECONDS,
  MAX_FAILED_WEBHOOKS,
  MAX_UNDELIVERED_WEBHOOKS,
  WEBHOOK_FAILED_RETENTION_MS,
  WEBHOOK_REQUEST_TIMEOUT_MS,
  MAX_WEBHOOK_DELIVERIES_PER_ALARM,
} from "./limits";
import { logEvent } from "./log";
import type { SqlPort, SqlValue } from "./room/ports";

export type WebhookEventType = "document.updated" | "document.deleted" | "document.expired" | "version.created";

export interface WebhookSettings {
  endpoints: string[];
  /** The HMAC key: the bytes the `whsec_` secret encodes. */
  key: Uint8Array;
  quietMs: number;
  maxWaitMs: number;
  /** Delay before each retry; an event fails after the last. */
  retryDelaysMs: number[];
}

/**
 * One event for one endpoint, as `GET /api/docs/:name/webhooks` lists it to an admin token
 * (others see {@link withEndpointOrigins}).
 */
export interface WebhookEventInfo {
  id: string;
  type: WebhookEventType;
  endpoint: string;
  state: "collecting" | "pending" | "failed";
  createdAt: string;
  attempts: number;
  /** When the next attempt (or, while collecting, the burst's close) is due; null once failed. */
  nextAttemptAt: string | null;
  lastStatus: number | null;
  lastError: string | null;
}

/**
 * The listing as anyone but an operator sees it: each endpoint cut to its origin
 * (scheme://host[:port]), in `lastError` too. Endpoint URLs often carry a capability (a
 * `?key=`, a secret path), and they belong to the deployment, not to a document's editors.
 */
export function withEndpointOrigins(events: WebhookEventInfo[]): WebhookEventInfo[] {
  return events.map((event) => {
    const origin = endpointOrigin(event.endpoint);
    const lastError = event.lastError && [event.endpoint, normalized(event.endpoint)].reduce((error, url) => error.replaceAll(url, origin), event.lastError);
    return { ...event, endpoint: origin, lastError };
  });
}

/** `url`'s origin; a URL that does not parse (never configured: {@link webhookSettings} refuses those) shows nothing. */
function endpointOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return "";
  }
}

/** `url` as the URL parser writes it (a fetch error may quote that form). */
function normalized(url: string): string {
  try {
    return new URL(url).href;
  } catch {
    return url;
  }
}

/** Standard Webhooks secrets: `whsec_` and base64 of at least this many bytes (as Svix issues them). */
const MIN_SECRET_BYTES = 24;

/**
 * The webhook settings of a deployment, or null when webhooks are off (`WEBHOOK_URL` unset).
 * A configuration that cannot work (a bad URL or secret) is logged once and turns them off
 * rather than sign with a weak key or post to an unintended address.
 */
export function webhookSettings(env: Env): WebhookSettings | null {
  const urls = (env.WEBHOOK_URL ?? "").split(",").map((url) => url.trim()).filter(Boolean);
  if (urls.length === 0) return null;
  const problem = urls.map(endpointProblem).find((reason) => reason !== null) ?? secretProblem(env.WEBHOOK_SECRET);
  if (problem) {
    logOnce(`webhook_config_invalid:${problem}`, () => logEvent("webhook_config_invalid", { detail: problem }));
    return null;
  }
  return {
    endpoints: urls,
    key: decodeSecret(env.WEBHOOK_SECRET!),
    quietMs: seconds(env.WEBHOOK_QUIET_SECONDS, DEFAULT_WEBHOOK_QUIET_SECONDS) * 1000,
    maxWaitMs: seconds(env.WEBHOOK_MAX_WAIT_SECONDS, DEFAULT_WEBHOOK_MAX_WAIT_SECONDS) * 1000,
    retryDelaysMs: retrySchedule(env.WEBHOOK_RETRY_SECONDS).map((delay) => delay * 1000),
  };
}

/** Only https, but for a receiver on this machine during development. */
function endpointProblem(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `WEBHOOK_URL is not a URL: ${url.slice(0, 100)}`;
  }
  if (parsed.protocol === "https:") return null;
  if (parsed.protocol === "http:" && ["127.0.0.1", "localhost", "[::1]"].includes(parsed.hostname)) return null;
  return `WEBHOOK_URL must be https (or http://127.0.0.1 for development): ${parsed.origin}`;
}

function secretProblem(secret: string | undefined): string | null {
  if (!secret?.startsWith("whsec_")) return "WEBHOOK_SECRET must be set, as whsec_ followed by base64";
  try {
    if (decodeSecret(secret).length >= MIN_SECRET_BYTES) return null;
  } catch {
    return "WEBHOOK_SECRET is not valid base64 after whsec_";
  }
  return `WEBHOOK_SECRET must encode at least ${MIN_SECRET_BYTES} random bytes`;
}

function decodeSecret(secret: string): Uint8Array {
  return Uint8Array.from(atob(secret.slice("whsec_".length)), (char) => char.charCodeAt(0));
}

function seconds(value: string | undefined, fallback: number): number {
  const parsed = Number(value);
  return value !== undefined && Number.isFinite(parsed) && parsed > 0 ? parsed : fallback;
}

/** `WEBHOOK_RETRY_SECONDS` (comma-separated delays), or the default schedule when unset or invalid. */
function retrySchedule(value: string | undefined): number[] {
  const delays = (value ?? "").split(",").filter((part) => part.trim() !== "").map(Number);
  return delays.length > 0 && delays.every((delay) => Number.isFinite(delay) && delay > 0) ? delays : DEFAULT_WEBHOOK_RETRY_SECONDS;
}

const loggedOnce = new Set<string>();
function logOnce(key: string, log: () => void): void {
  if (loggedOnce.has(key)) return;
  loggedOnce.add(key);
  log();
}

/**
 * The `webhook-signature` header: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`
 * (Standard Webhooks), computed with WebCrypto.
 */
export async function signWebhook(key: Uint8Array, id: string, timestampSeconds: number, body: string): Promise<string> {
  const cryptoKey = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const signature = await crypto.subtle.sign("HMAC", cryptoKey, new TextEncoder().encode(`${id}.${timestampSeconds}.${body}`));
  return `v1,${btoa(String.fromCharCode(...new Uint8Array(signature)))}`;
}

interface OutboxRow extends Record<string, SqlValue> {
  seq: number;
  id: string;
  type: WebhookEventType;
  endpoint: string;
  body: string | null;
  state: "collecting" | "pending" | "failed";
  created_at: number;
  due_at: number;
  burst_started_at: number | null;
  attempts: number;
  last_status: number | null;
  last_error: string | null;
}

/** What a delivery attempt got back. */
export type AttemptResult = { status: number; error?: undefined } | { status?: undefined; error: string };

/** What to put in an event's `data` besides the document name. */
export type EventData = Record<string, unknown>;

export class Outbox {
  /** When the open `document.updated` burst started and when it closes, or null with none open. */
  private burst: { startedAt: number; closesAt: number } | null = null;
  /** When the document last changed (memory only: a restart closes the burst at its stored time). */
  private lastChangeAt = 0;
  private created: boolean;
  /** {@link nextDue}, kept until the table changes: the room asks on every presence frame. */
  private cachedNextDue: number | null | undefined = undefined;

  constructor(
    private readonly sql: SqlPort,
    readonly settings: WebhookSettings,
    private readonly document: string,
    /** Runs `body` in a transaction (a throw rolls it back): an event is all its endpoints' rows or none. */
    private readonly transaction: <T>(body: () => T) => T,
  ) {
    this.created = sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'edgedoc_webhooks'").toArray().length > 0;
    if (!this.created) return;
    const open = sql.exec<{ started: number | null; due: number | null }>(
      "SELECT MIN(burst_started_at) AS started, MIN(due_at) AS due FROM edgedoc_webhooks WHERE state = 'collecting'",
    ).one();
    if (open.started !== null && open.due !== null) this.burst = { startedAt: open.started, closesAt: open.due };
  }

  /**
   * A change to the document. Opens a `document.updated` burst (one row per endpoint) when none
   * is open, and returns true then: the caller makes sure the alarm fires by {@link nextDue}.
   * Otherwise it only notes the time, in memory.
   */
  noteChange(now: number): boolean {
    this.lastChangeAt = now;
    if (this.burst !== null) return false;
    const closesAt = now + this.settings.quietMs;
    this.insert("document.updated", null, "collecting", now, closesAt);
    this.burst = { startedAt: now, closesAt };
    return true;
  }

  /** Queues an event to send now; `data` is merged into `{ document }`. */
  enqueue(type: WebhookEventType, data: EventData, now: number): void {
    this.insert(type, eventBody(type, now, { document: this.document, ...data }), "pending", now, now);
  }

  /**
   * The alarm's bookkeeping for the open burst: it closes once the document has been quiet for
   * the quiet period, or the burst has lasted the maximum wait; otherwise its close moves (one
   * row update). A closed burst becomes a pending event with `data()` as it is now. It
   * supersedes a `document.updated` never attempted (no receiver has seen its id), logged; one
   * already attempted keeps its id and body until delivered or failed (a receiver that processed
   * it would drop a refreshed body as a duplicate), and the new one waits behind it ({@link WAITING}).
   */
  closeBurst(now: number, data: () => EventData): void {
    if (this.burst === null || now < this.burst.closesAt) return;
    const limit = this.burst.startedAt + this.settings.maxWaitMs;
    const quietAt = Math.min(this.lastChangeAt + this.settings.quietMs, limit);
    if (quietAt > now) {
      this.burst.closesAt = quietAt;
      this.change("UPDATE edgedoc_webhooks SET due_at = ? WHERE state = 'collecting'", quietAt);
      return;
    }
    const body = eventBody("document.updated", now, { document: this.document, ...data() });
    // One transaction, and the burst forgotten only once it is written: a fault leaves it open, to close at the next alarm.
    const superseded = this.transaction(() => {
      // Bursts close between delivery runs (the room's alarm closes, then delivers): no row with 0 attempts is in flight.
      const rows = this.change<{ id: string; endpoint: string }>(
        "DELETE FROM edgedoc_webhooks WHERE type = 'document.updated' AND state = 'pending' AND attempts = 0 RETURNING id, endpoint",
      );
      this.change("UPDATE edgedoc_webhooks SET state = 'pending', body = ?, due_at = ? WHERE state = 'collecting'", body, now);
      return rows;
    });
    this.burst = null;
    this.logDropped(superseded, "superseded");
  }

  /** Events due for an attempt, oldest first, at most {@link MAX_WEBHOOK_DELIVERIES_PER_ALARM}. */
  due(now: number): OutboxRow[] {
    if (!this.created) return [];
    return this.sql
      .exec<OutboxRow>(`SELECT * FROM edgedoc_webhooks AS w WHERE state = 'pending' AND due_at <= ? AND NOT ${WAITING} ORDER BY due_at, seq LIMIT ?`, now, MAX_WEBHOOK_DELIVERIES_PER_ALARM)
      .toArray();
  }

  /**
   * Records an attempt: delivered (2xx) deletes the row; otherwise the next attempt is
   * scheduled with jitter, or, after the last retry, the event is kept as failed.
   */
  recordAttempt(row: OutboxRow, result: AttemptResult, now: number, ms: number): void {
    const attempt = row.attempts + 1;
    const fields = { room: this.document, type: row.type, id: row.id, endpoint: row.endpoint, attempt, ms };
    if (result.status !== undefined && result.status >= 200 && result.status < 300) {
      this.change("DELETE FROM edgedoc_webhooks WHERE seq = ?", row.seq);
      logEvent("webhook_delivered", { ...fields, status: result.status });
      return;
    }
    const delay = this.settings.retryDelaysMs[row.attempts];
    const status = result.status ?? null;
    const error = result.error ?? null;
    if (delay === undefined) {
      this.change("UPDATE edgedoc_webhooks SET state = 'failed', attempts = ?, last_status = ?, last_error = ?, due_at = ? WHERE seq = ?", attempt, status, error, now, row.seq);
      logEvent("webhook_failed", { ...fields, status, error });
      return;
    }
    // Jitter (±20%) spreads the retries of many rooms that failed together.
    const dueAt = now + Math.round(delay * (0.8 + 0.4 * Math.random()));
    this.change("UPDATE edgedoc_webhooks SET attempts = ?, last_status = ?, last_error = ?, due_at = ? WHERE seq = ?", attempt, status, error, dueAt, row.seq);
    logEvent("webhook_retry", { ...fields, status, error, nextAttemptAt: new Date(dueAt).toISOString() });
  }

  /** When the alarm must next run for the outbox, or null when nothing waits. */
  nextDue(): number | null {
    if (!this.created) return null;
    if (this.cachedNextDue !== undefined) return this.cachedNextDue;
    this.cachedNextDue = this.queryNextDue();
    return this.cachedNextDue;
  }

  private queryNextDue(): number | null {
    const { due } = this.sql.exec<{ due: number | null }>(`SELECT MIN(due_at) AS due FROM edgedoc_webhooks AS w WHERE state != 'failed' AND NOT ${WAITING}`).one();
    if (due !== null) return due;
    const { oldest } = this.sql.exec<{ oldest: number | null }>("SELECT MIN(due_at) AS oldest FROM edgedoc_webhooks").one();
    return oldest === null ? null : oldest + WEBHOOK_FAILED_RETENTION_MS;
  }

  /**
   * Forgets failed events past {@link WEBHOOK_FAILED_RETENTION_MS} or beyond the newest
   * {@link MAX_FAILED_WEBHOOKS}, and drops the table once it is empty and `keepTable` is false
   * (a deleted document then leaves nothing behind).
   */
  tidy(now: number, keepTable: boolean): void {
    if (!this.created) return;
    this.change("DELETE FROM edgedoc_webhooks WHERE state = 'failed' AND due_at <= ?", now - WEBHOOK_FAILED_RETENTION_MS);
    this.change("DELETE FROM edgedoc_webhooks WHERE seq IN (SELECT seq FROM edgedoc_webhooks WHERE state = 'failed' ORDER BY seq DESC LIMIT -1 OFFSET ?)", MAX_FAILED_WEBHOOKS);
    if (keepTable) return;
    const { rows } = this.sql.exec<{ rows: number }>("SELECT COUNT(*) AS rows FROM edgedoc_webhooks").one();
    if (rows > 0) return;
    this.change("DROP TABLE edgedoc_webhooks");
    this.created = false;
  }

  /** Every event not yet delivered, newest first. */
  list(): WebhookEventInfo[] {
    if (!this.created) return [];
    const rows = this.sql.exec<OutboxRow>("SELECT * FROM edgedoc_webhooks ORDER BY seq DESC").toArray();
    // Per endpoint, the oldest pending document.updated: any newer one waits for it ({@link WAITING}).
    const ahead = new Map<string, OutboxRow>();
    for (const row of rows) if (row.state === "pending" && row.type === "document.updated") ahead.set(row.endpoint, row);
    return rows.map((row) => {
      const first = ahead.get(row.endpoint);
      const waitsFor = row.state === "pending" && row.type === "document.updated" && first !== undefined && first.seq < row.seq ? first.due_at : 0;
      return {
        id: row.id,
        type: row.type,
        endpoint: row.endpoint,
        state: row.state,
        createdAt: new Date(row.created_at).toISOString(),
        attempts: row.attempts,
        nextAttemptAt: row.state === "failed" ? null : new Date(Math.max(row.due_at, waitsFor)).toISOString(),
        lastStatus: row.last_status,
        lastError: row.last_error,
      };
    });
  }

  /**
   * The events to keep across a deletion of the document's storage: all but `document.updated`
   * (the deletion supersedes it). Read before the wipe, put back with {@link restore}.
   */
  carryOver(): OutboxRow[] {
    if (!this.created) return [];
    const rows = this.sql.exec<OutboxRow>("SELECT * FROM edgedoc_webhooks ORDER BY seq").toArray();
    this.logDropped(rows.filter((row) => row.type === "document.updated"), "deleted");
    return rows.filter((row) => row.type !== "document.updated");
  }

  /** Writes back events carried over a wipe ({@link carryOver}); the caller's transaction makes the two one change. */
  restore(rows: OutboxRow[]): void {
    if (rows.length === 0) return;
    this.transaction(() => {
      this.createTable();
      for (const row of rows) {
        this.change("INSERT INTO edgedoc_webhooks (id, type, endpoint, body, state, created_at, due_at, burst_started_at, attempts, last_status, last_error) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
          row.id, row.type, row.endpoint, row.body, row.state, row.created_at, row.due_at, row.attempts, row.last_status, row.last_error,
        );
      }
    });
    this.created = true;
  }

  private insert(type: WebhookEventType, body: string | null, state: "collecting" | "pending", now: number, dueAt: number): void {
    // One id per event, the same for every endpoint and every attempt: receivers drop duplicates by it.
    const id = `msg_${crypto.randomUUID().replaceAll("-", "")}`;
    this.transaction(() => {
      this.createTable();
      for (const endpoint of this.settings.endpoints) {
        this.change("INSERT INTO edgedoc_webhooks (id, type, endpoint, body, state, created_at, due_at, burst_started_at, attempts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
          id, type, endpoint, body, state, now, dueAt, state === "collecting" ? now : null,
        );
      }
      this.dropPastBound();
    });
    this.created = true;
  }

  /**
   * Keeps at most {@link MAX_UNDELIVERED_WEBHOOKS} undelivered events per endpoint, dropping the
   * oldest pending ones (logged): a write token could otherwise create and delete named versions
   * at the API's rate while an endpoint is down, and every event would wait 3 days in storage.
   */
  private dropPastBound(): void {
    for (const endpoint of this.settings.endpoints) {
      const { rows } = this.sql.exec<{ rows: number }>("SELECT COUNT(*) AS rows FROM edgedoc_webhooks WHERE endpoint = ? AND state = 'pending'", endpoint).one();
      if (rows <= MAX_UNDELIVERED_WEBHOOKS) continue;
      const dropped = this.change<{ id: string; endpoint: string }>(
        "DELETE FROM edgedoc_webhooks WHERE seq IN (SELECT seq FROM edgedoc_webhooks WHERE endpoint = ? AND state = 'pending' ORDER BY seq LIMIT ?) RETURNING id, endpoint",
        endpoint, rows - MAX_UNDELIVERED_WEBHOOKS,
      );
      this.logDropped(dropped, "bound");
    }
  }

  private logDropped(rows: { id: string; endpoint: string }[], reason: DropReason): void {
    logDroppedEvents(this.document, rows, reason);
  }

  /** Runs a statement that changes the table; returns what it returns (`RETURNING`). */
  private change<Row extends Record<string, SqlValue> = Record<string, SqlValue>>(query: string, ...bindings: SqlValue[]): Row[] {
    this.cachedNextDue = undefined;
    return this.sql.exec<Row>(query, ...bindings).toArray();
  }

  /** Creates the table inside the caller's transaction; the caller notes it {@link created} once that commits. */
  private createTable(): void {
    if (this.created) return;
    this.sql.exec(`CREATE TABLE IF NOT EXISTS edgedoc_webhooks (
      seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL, endpoint TEXT NOT NULL, body TEXT,
      state TEXT NOT NULL, created_at INTEGER NOT NULL, due_at INTEGER NOT NULL, burst_started_at INTEGER,
      attempts INTEGER NOT NULL, last_status INTEGER, last_error TEXT
    )`);
  }
}

/**
 * A `document.updated` waiting behind an older one still being retried for the same endpoint
 * (`w` is the row): it is not attempted until that one is delivered or failed, so no receiver
 * sees it meanwhile and the next burst may supersede it. An endpoint that is down thus holds at
 * most one retrying, one waiting and one collecting `document.updated`, however long it edits.
 */
const WAITING = `(w.state = 'pending' AND w.type = 'document.updated' AND EXISTS (SELECT 1 FROM edgedoc_webhooks AS older
  WHERE older.endpoint = w.endpoint AND older.type = 'document.updated' AND older.state = 'pending' AND older.seq < w.seq))`;

/** Why events will not be sent: past the bound, superseded unseen, their document deleted, or lost to a storage fault. */
export type DropReason = "bound" | "superseded" | "deleted";

/**
 * `webhook_dropped`, one line per endpoint, with the ids: every event is delivered, kept as
 * failed, or accounted for here.
 */
function logDroppedEvents(document: string, rows: readonly { id: string; endpoint: string }[], reason: DropReason): void {
  const ids = new Map<string, string[]>();
  for (const row of rows) ids.set(row.endpoint, (ids.get(row.endpoint) ?? []).concat(row.id));
  for (const [endpoint, dropped] of ids) logEvent("webhook_dropped", { room: document, endpoint, dropped: dropped.length, reason, ids: dropped });
}

/** The JSON body: small, never document content (receivers fetch that through the HTTP API). */
function eventBody(type: WebhookEventType, now: number, data: EventData): string {
  return JSON.stringify({ type, timestamp: new Date(now).toISOString(), data });
}

/**
 * One attempt to deliver `row` with `fetcher` (the host's outbound HTTP), signed afresh
 * (receivers reject timestamps more than a few minutes old, so a retry an hour later must
 * carry its own). Never throws.
 */
export async function attemptDelivery(
  row: OutboxRow,
  key: Uint8Array,
  fetcher: (url: string, init: RequestInit) => Promise<Response>,
): Promise<AttemptResult> {
  try {
    const timestamp = Math.floor(Date.now() / 1000);
    const body = row.body ?? "";
    const response = await fetcher(row.endpoint, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "User-Agent": "edgedoc-webhooks",
        "webhook-id": row.id,
        "webhook-timestamp": String(timestamp),
        "webhook-signature": await signWebhook(key, row.id, timestamp, body),
      },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(WEBHOOK_REQUEST_TIMEOUT_MS),
    });
    // The body is not read: only the status counts, and an unread body must not hold the connection.
    await response.body?.cancel();
    return { status: response.status };
  } catch (error) {
    return { error: String(error).slice(0, 200) };
  }
}

export type { OutboxRow };
