/**
 * Per-deployment settings from wrangler.toml `[vars]` (or `.dev.vars`), with documented
 * defaults (docs/configuration.md). Invalid values fall back to the default rather than
 * disable a limit.
 */
import {
  DEFAULT_MAX_DOCUMENT_BYTES,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_SOCKETS_PER_ROOM,
  DEFAULT_RATE_BYTES_PER_SECOND,
  DEFAULT_RATE_MESSAGES_PER_SECOND,
  DEFAULT_VERSION_INTERVAL_MINUTES,
  PLATFORM_WEBSOCKET_MESSAGE_LIMIT,
} from "./limits";

export interface RoomLimits {
  maxFrameBytes: number;
  maxDocumentBytes: number;
  rateMessagesPerSecond: number;
  rateBytesPerSecond: number;
  maxSocketsPerRoom: number;
  /** Delete a room's storage after this many days with no connection and no edit; null: never. */
  docTtlDays: number | null;
  /** While sockets edit, an automatic version at most this often (ms). */
  versionIntervalMs: number;
}

export function roomLimits(env: Env): RoomLimits {
  return {
    // Neither can exceed what one frame may carry on Cloudflare: a client sends its whole state in one frame.
    maxFrameBytes: Math.min(positiveInteger(env.MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES), PLATFORM_WEBSOCKET_MESSAGE_LIMIT),
    maxDocumentBytes: Math.min(positiveInteger(env.MAX_DOCUMENT_BYTES, DEFAULT_MAX_DOCUMENT_BYTES), PLATFORM_WEBSOCKET_MESSAGE_LIMIT),
    rateMessagesPerSecond: positiveInteger(env.RATE_MESSAGES_PER_SECOND, DEFAULT_RATE_MESSAGES_PER_SECOND),
    rateBytesPerSecond: positiveInteger(env.RATE_BYTES_PER_SECOND, DEFAULT_RATE_BYTES_PER_SECOND),
    maxSocketsPerRoom: positiveInteger(env.MAX_SOCKETS_PER_ROOM, DEFAULT_MAX_SOCKETS_PER_ROOM),
    // Off by default: deleting documents is a decision for each deployment.
    docTtlDays: env.DOC_TTL_DAYS ? positiveNumber(env.DOC_TTL_DAYS) : null,
    versionIntervalMs: (positiveNumber(env.VERSION_INTERVAL_MINUTES ?? "") ?? DEFAULT_VERSION_INTERVAL_MINUTES) * 60_000,
  };
}

/**
 * Browser origins allowed to open sockets and to call the API from their pages (CORS), or null
 * (ALLOWED_ORIGINS unset): sockets from any origin, and no CORS for the API (worker/cors.ts).
 */
export function allowedOrigins(env: Env): Set<string> | null {
  const list = (env.ALLOWED_ORIGINS ?? "").split(",").map((origin) => origin.trim()).filter(Boolean);
  return list.length > 0 ? new Set(list) : null;
}

function positiveInteger(value: string | undefined, fallback: number): number {
  const parsed = Number(value);
  return value !== undefined && Number.isSafeInteger(parsed) && parsed > 0 ? parsed : fallback;
}

function positiveNumber(value: string): number | null {
  const parsed = Number(value);
  return Number.isFinite(parsed) && parsed > 0 ? parsed : null;
}
