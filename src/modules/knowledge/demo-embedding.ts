/**
 * A deterministic stand-in for an embedding model, for seeds, tests and the benchmark: it needs no model, no
 * network and no dependency, and gives the same vector for the same text on every machine.
 *
 * This is NOT a language model and knows nothing of meaning: "car" and "automobile" are as far apart as any two
 * words. It is feature hashing (the "hashing trick"): each lower-cased word, and with half the weight each pair
 * of neighbouring words, adds ±1 to one of `dimensions` buckets, the bucket chosen by one hash and the sign by
 * another (so collisions cancel out on average instead of piling up), and the sum is scaled to unit length.
 * Texts that share words therefore have a high cosine similarity, and word order counts a little (through the
 * pairs) — enough for retrieval tests to have a right answer.
 */

/** Weight of a pair of neighbouring words against a single word's 1: order matters, but less than the words. */
const BIGRAM_WEIGHT = 0.5;

/** Two independent-enough 32-bit hashes of a string: FNV-1a from two offset bases, each through murmur3's finaliser. */
function hash(text: string, basis: number): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // FNV-1a alone spreads short, similar keys poorly over small moduli; the finaliser avalanches every bit.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

const BUCKET_BASIS = 0x811c9dc5;
const SIGN_BASIS = 0x5bd1e995;

/** Words as the demo sees them: runs of letters and digits, lower-cased, in any script. */
function words(text: string): string[] {
  return text.normalize("NFKC").toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

function add(vector: number[], feature: string, weight: number): void {
  const bucket = hash(feature, BUCKET_BASIS) % vector.length;
  vector[bucket] += hash(feature, SIGN_BASIS) & 1 ? weight : -weight;
}

/**
 * A unit vector of `dimensions` numbers for `text` (see above). A text without words (empty, punctuation only)
 * gets a fixed unit vector rather than zeros, which have no direction and which pgvector's cosine distance and
 * checkEmbedding refuse.
 */
export function demoEmbedding(text: string, dimensions: number): number[] {
  if (!Number.isInteger(dimensions) || dimensions < 1) throw new RangeError(`dimensions must be a positive integer, got ${dimensions}`);
  const vector = new Array<number>(dimensions).fill(0);
  const tokens = words(text);
  for (let i = 0; i < tokens.length; i++) {
    add(vector, tokens[i], 1);
    // A separator no word contains, so that the pair "ab c" is not the word "abc" or the pair "a bc".
    if (i > 0) add(vector, `${tokens[i - 1]} ${tokens[i]}`, BIGRAM_WEIGHT);
  }
  const norm = Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
  // Colliding features can cancel exactly (two words of opposite sign in one bucket): no direction either.
  if (norm === 0) return new Array<number>(dimensions).fill(1 / Math.sqrt(dimensions));
  return vector.map((x) => x / norm);
}
