/**
 * A token bucket: `capacity` tokens, refilled at `perSecond`. Pure; the room keeps one per
 * socket for messages and one for bytes.
 */
export class TokenBucket {
  private tokens: number;
  private updatedAt: number;

  /** Starts full, or with `initial` tokens when a fresh bucket should not grant a whole burst yet. */
  constructor(
    private readonly capacity: number,
    private readonly perSecond: number,
    now: number,
    initial = capacity,
  ) {
    this.tokens = Math.min(initial, capacity);
    this.updatedAt = now;
  }

  /** Takes `cost` tokens if there are enough; returns whether it could. */
  take(cost: number, now: number): boolean {
    if (cost > this.available(now)) return false;
    this.tokens -= cost;
    return true;
  }

  /** The tokens there are now, taking none: what could be spent before spending on it. */
  available(now: number): number {
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.updatedAt) / 1000) * this.perSecond);
    this.updatedAt = now;
    return this.tokens;
  }
}
