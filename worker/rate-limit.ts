/**
 * Rate limits at the door: the Worker counts WebSocket upgrades and API calls per client
 * address and, for tokens with a `sub` claim, per subject, with Cloudflare's Rate Limiting
 * bindings (`[[ratelimits]]` in wrangler.toml holds the numbers). A request past a limit gets
 * 429 before any room is woken. (Per-socket message rates inside a room are rate.ts.)
 *
 * Cloudflare keeps these counts per location and approximately: they stop floods, they do
 * not meter.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { AccessGrant } from "./access";
import { logEvent } from "./log";

/** The names of the `[[ratelimits]]` bindings (declared in env.d.ts). */
export type LimiterName = { [K in keyof Env]-?: NonNullable<Env[K]> extends RateLimit ? K : never }[keyof Env];

/** Routes behind the door: the grant is set once the token is verified. */
export type DoorEnv = { Bindings: Env; Variables: { grant: AccessGrant } };

/**
 * What Retry-After says. The binding does not tell how much of its window is left; 10 s is the
 * shorter period it allows, so with the shipped limits the count has started over by then
 * (under a 60 s period a client may be told to wait again).
 */
export const RETRY_AFTER_SECONDS = 10;

/**
 * The address key of requests without CF-Connecting-IP. Cloudflare sets that header on every
 * request from the internet, and `wrangler dev` on every local one, so only internal callers
 * lack it: tests, and Workers calling through a service binding. They share this one bucket
 * rather than go uncounted, so a caller that drops the header is slowed, not let through.
 */
export const UNKNOWN_ADDRESS = "unknown";

export interface RateLimitOptions<E extends DoorEnv> {
  /** The `[[ratelimits]]` binding that holds this limit. */
  limiter: LimiterName;
  /**
   * Whom a request counts against: its client address, or its token's subject. A subject limit
   * must come after the token is verified; grants without a subject (share links, open
   * servers) are not counted by it.
   */
  per: "address" | "subject";
  /** Answers a refused request with status 429 (Retry-After is already set) and `detail`. */
  refuse: (c: Context<E>, detail: string) => Response;
}

/** Middleware that refuses requests past the `limiter`'s limit for their address or subject. */
export function rateLimiter<E extends DoorEnv>({ limiter, per, refuse }: RateLimitOptions<E>): MiddlewareHandler<E> {
  const detail = `rate limited: too many requests ${per === "address" ? "from this address" : "for this token's subject"}; retry after ${RETRY_AFTER_SECONDS} s`;
  return async function rateLimit(c, next) {
    const binding = c.env[limiter];
    if (binding === undefined) {
      logUnboundOnce(limiter);
      return next();
    }
    const key = per === "address" ? addressKey(c.req.header("CF-Connecting-IP")) : c.var.grant.subject;
    if (key === undefined || (await admitted(binding, limiter, key))) return next();
    c.header("Retry-After", String(RETRY_AFTER_SECONDS));
    return refuse(c, detail);
  };
}

/**
 * The bucket of a client address: an IPv4 address as it is; an IPv6 address by its /64, the
 * block a provider hands one subscriber (or office), within which a client may take any address.
 */
export function addressKey(address: string | undefined): string {
  if (!address) return UNKNOWN_ADDRESS;
  // IPv4, or IPv6 ending in one (::ffff:192.0.2.1): the IPv4 address is the client's.
  const ipv4 = address.slice(address.lastIndexOf(":") + 1);
  if (ipv4.includes(".")) return ipv4;
  const [head = "", tail] = address.split("::");
  const groups = head ? head.split(":") : [];
  if (tail !== undefined) {
    const rest = tail ? tail.split(":") : [];
    groups.push(...Array<string>(Math.max(0, 8 - groups.length - rest.length)).fill("0"), ...rest);
  }
  return `${groups.slice(0, 4).map((group) => parseInt(group, 16).toString(16)).join(":")}::/64`;
}

async function admitted(binding: RateLimit, limiter: LimiterName, key: string): Promise<boolean> {
  try {
    return (await binding.limit({ key })).success;
  } catch (error) {
    // A limiter outage must not take documents down with it; the rooms' own limits still hold.
    logEvent("rate_limit_error", { limiter, error: String(error) });
    return true;
  }
}

const unboundLogged = new Set<LimiterName>();

function logUnboundOnce(limiter: LimiterName): void {
  if (unboundLogged.has(limiter)) return;
  unboundLogged.add(limiter);
  logEvent("rate_limit_unbound", { limiter, detail: "no [[ratelimits]] binding of this name: these requests are not counted" });
}
