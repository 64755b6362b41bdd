/**
 * What a room costs for a month on Cloudflare's Workers Paid plan, from the idle scenario's
 * figures (bench/idle.ts) for a stated day ({@link ROOM_DAY}).
 *
 * Durable Objects prices, https://developers.cloudflare.com/durable-objects/platform/pricing
 * (read December 2026), and the 20:1 rule from the Durable Objects changelog of 2024-04-01:
 * - requests: $0.15 per million beyond the 1 million a month the plan includes; WebSocket
 *   upgrades, alarm invocations and incoming WebSocket messages count, the messages 20 to 1;
 * - duration: $12.50 per million GB-s beyond the 400,000 GB-s included, billed at 128 MB per
 *   object while it is awake, that is not hibernated (the pricing page's own example counts
 *   128 MB as 0.128 GB). An object with standard (non-hibernatable) sockets open never is.
 * - The plan's $5 a month and its inclusions are per account, shared by every room, so they are
 *   left out: the figures are what one more room adds once the inclusions are used up.
 * Outgoing frames and CPU time are not billed for Durable Objects; the Worker in front of a
 * room only sees the upgrades ($0.30 per million Worker requests), a few a day, left out.
 */

export const PRICES = {
  usdPerMillionRequests: 0.15,
  incomingMessagesPerRequest: 20,
  usdPerMillionGbSeconds: 12.5,
  gbPerAwakeObject: 0.128,
} as const;

/** The day the room lives, every day of a 30-day month. */
export const ROOM_DAY = {
  people: 5,
  /** Every tab stays open around the clock. */
  hoursOpen: 24,
  /** The five type together this long a day: the object is awake throughout. */
  typingHours: 2,
  /** Keys a minute each person types in those hours, pauses included (an assumption, not measured). */
  keysPerMinute: 60,
  days: 30,
} as const;

/** What one server's clients cost while idle and while typing, measured by the idle scenario. */
export interface RoomFigures {
  name: string;
  /** Frames each client sends per idle minute (reaching the object: text `ping` apart). */
  idleFramesPerClientMinute: number;
  /** Connects and alarms at the object per idle minute, each a whole request. */
  idleRequestsPerMinute: number;
  /** Share of idle time the object is awake (1 for standard sockets: never hibernates). */
  idleAwakeShare: number;
  /** Frames each client sends per key typed (the edit, its cursor, the echoes it causes). */
  framesPerKey: number;
}

export interface RoomMonth {
  name: string;
  requests: number;
  gbSeconds: number;
  requestsUsd: number;
  durationUsd: number;
  totalUsd: number;
}

/** The room-month of {@link ROOM_DAY} at {@link PRICES} for `figures`. */
export function roomMonth(figures: RoomFigures, day = ROOM_DAY): RoomMonth {
  const idleMinutes = (day.hoursOpen - day.typingHours) * 60;
  const typingMinutes = day.typingHours * 60;
  const incomingPerDay = day.people * (figures.idleFramesPerClientMinute * idleMinutes + day.keysPerMinute * figures.framesPerKey * typingMinutes);
  const requestsPerDay = incomingPerDay / PRICES.incomingMessagesPerRequest + figures.idleRequestsPerMinute * idleMinutes;
  const awakeSecondsPerDay = (typingMinutes + idleMinutes * figures.idleAwakeShare) * 60;
  const requests = requestsPerDay * day.days;
  const gbSeconds = awakeSecondsPerDay * day.days * PRICES.gbPerAwakeObject;
  const requestsUsd = (requests / 1e6) * PRICES.usdPerMillionRequests;
  const durationUsd = (gbSeconds / 1e6) * PRICES.usdPerMillionGbSeconds;
  return { name: figures.name, requests, gbSeconds, requestsUsd, durationUsd, totalUsd: requestsUsd + durationUsd };
}

/** The assumptions a cost table states beside its figures. */
export function describeRoomDay(day = ROOM_DAY): string {
  return (
    `${day.people} people, tabs open ${day.hoursOpen} h a day, typing together ${day.typingHours} h a day at ${day.keysPerMinute} keys a minute each` +
    ` (object awake throughout), idle the rest at the measured rates; ${day.days} days; Workers Paid: $${PRICES.usdPerMillionRequests} per million requests` +
    ` (incoming WebSocket messages ${PRICES.incomingMessagesPerRequest}:1, connects and alarms 1:1), $${PRICES.usdPerMillionGbSeconds} per million GB-s at` +
    ` ${PRICES.gbPerAwakeObject * 1000} MB while awake; the plan's inclusions (1 M requests, 400,000 GB-s a month per account) not subtracted`
  );
}
