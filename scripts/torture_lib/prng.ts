/**
 * A small seeded PRNG (mulberry32): the same seed gives the same workload and fault plan,
 * independent of Math.random and of the runtime.
 */
export class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)];
  }

  /** A shuffled copy (Fisher-Yates). */
  shuffle<T>(items: readonly T[]): T[] {
    const a = [...items];
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }

  /** Pick by weight: `[[weight, value], ...]`. */
  weighted<T>(items: readonly (readonly [number, T])[]): T {
    const total = items.reduce((s, [w]) => s + w, 0);
    let r = this.next() * total;
    for (const [w, v] of items) {
      if ((r -= w) < 0) return v;
    }
    return items[items.length - 1][1];
  }

  /** `n` lowercase hex digits. */
  hex(n: number): string {
    let s = "";
    while (s.length < n) s += ((this.next() * 4294967296) >>> 0).toString(16).padStart(8, "0");
    return s.slice(0, n);
  }

  /** Incompressible-ish text of `n` characters (so PostgreSQL stores it out of line). */
  text(n: number): string {
    const words = ["alpha", "beta", "gamma", "délta", "ε", "zeta", "eta", "日本", "x/y", "%20"];
    let s = "";
    while (s.length < n) {
      s += (this.chance(0.5) ? this.hex(this.int(4, 16)) : this.pick(words)) + " ";
    }
    return s.slice(0, n);
  }

  /** A child generator: its own stream, so adding draws here does not shift the parent's. */
  fork(salt: number): Rng {
    return new Rng(Math.imul(this.int(0, 0x7fffffff) ^ salt, 2654435761) >>> 0);
  }
}

/** A UUID made of the generator's bits. */
export function uuidOf(r: Rng): string {
  const h = r.hex(32);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${
    h.slice(20)
  }`;
}
