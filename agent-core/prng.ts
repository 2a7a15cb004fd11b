// A seeded 32-bit xorshift generator: the same seed gives the same sequence on every run. For
// reproducible test content, fuzz mutations and the demo disk's files — never for anything secret.
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
