/**
 * The deployment the simulation runs: RoomLimits and webhook settings made by the worker's own
 * parsers (worker/config.ts roomLimits, worker/webhooks.ts webhookSettings) from variables, so a
 * default changed there is the default here. Small numbers where they make more happen in a
 * short schedule: a one-day idle expiry, one-minute interval versions, a room of five, frames
 * and documents small enough that a paste can reach the bounds.
 */
import { roomLimits } from "../worker/config";
import { webhookSettings } from "../worker/webhooks";
import type { RoomConfig } from "./contract";

export const ENDPOINT_URLS = ["https://hooks-a.example/edgedoc", "https://hooks-b.example/edgedoc"] as const;

/** A fixed signing secret (32 bytes, base64): deliveries are signed for real, with a key nobody uses. */
const WEBHOOK_SECRET = `whsec_${btoa(String.fromCharCode(...Array.from({ length: 32 }, (_, i) => (i * 37 + 11) % 256)))}`;

export const SIM_VARS: Readonly<Record<string, string>> = {
  MAX_SOCKETS_PER_ROOM: "5",
  MAX_FRAME_BYTES: String(256 * 1024),
  MAX_DOCUMENT_BYTES: String(128 * 1024),
  DOC_TTL_DAYS: "1",
  VERSION_INTERVAL_MINUTES: "1",
  WEBHOOK_SECRET,
  // Five retries (about 73 minutes in all): long outages end in `failed` within a schedule's days.
  WEBHOOK_RETRY_SECONDS: "5,30,120,600,3600",
};

export function simConfig(endpoints: number): RoomConfig {
  const env: Env = { ...SIM_VARS, ...(endpoints > 0 ? { WEBHOOK_URL: ENDPOINT_URLS.slice(0, endpoints).join(",") } : {}) };
  const webhooks = webhookSettings(env);
  if (endpoints > 0 && webhooks === null) throw new Error("simulation: the webhook settings were refused");
  return { limits: roomLimits(env), webhooks };
}
