/**
 * The simulation's only source of randomness: a small seeded generator (sfc32, seeded through
 * splitmix32), so that a seed names one run exactly. Every choice the explorer makes and every
 * random number the code under test asks for (Math.random, crypto.getRandomValues, webhook ids)
 * comes from one of these; see sim/determinism.ts.
 */

/** splitmix32: spreads a 32-bit seed into well-mixed words (seeding sfc32 with raw small seeds is weak). */
function splitmix32(state: number): () => number {
  return () => {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}

/** Mixes several numbers into one 32-bit seed (for "schedule K of seed S", "client C of schedule K"). */
export function mixSeed(...parts: number[]): number {
  let hash = 0x811c9dc5;
  for (const part of parts) {
    const mix = splitmix32(hash ^ (part >>> 0));
    hash = mix() ^ Math.imul(Math.floor(part / 2 ** 32) | 0, 0x27d4eb2d);
  }
  return hash >>> 0;
}

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    const mix = splitmix32(seed >>> 0);
    this.a = mix();
    this.b = mix();
    this.c = mix();
    this.d = mix();
  }

  /** A uniform 32-bit unsigned integer (sfc32). */
  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** A float in [0, 1), like Math.random. */
  next(): number {
    return this.uint32() / 2 ** 32;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** Picks a key by weight: the explorer's step mix. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as [K, number][];
    const total = entries.reduce((sum, [, weight]) => sum + weight, 0);
    let roll = this.next() * total;
    for (const [key, weight] of entries) {
      roll -= weight;
      if (roll < 0) return key;
    }
    return entries[entries.length - 1]![0];
  }

  /** Fills `bytes` with random bytes (for crypto.getRandomValues and malformed frames). */
  fill(bytes: Uint8Array): Uint8Array {
    for (let i = 0; i < bytes.length; i += 4) {
      const word = this.uint32();
      for (let j = 0; j < 4 && i + j < bytes.length; j++) bytes[i + j] = (word >>> (8 * j)) & 0xff;
    }
    return bytes;
  }

  /** Short printable text for edits and presence (ASCII and a few multi-byte characters). */
  text(maxLength: number): string {
    const alphabet = "abcdefghijklmnopqrstuvwxyz     \nαβ€😀";
    const chars = Array.from(alphabet);
    let out = "";
    const length = this.int(1, maxLength);
    for (let i = 0; i < length; i++) out += this.pick(chars);
    return out;
  }
}
