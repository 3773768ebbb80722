//! A split-free bloom filter with a stable hash, for segment pruning on `=` and `IN`.
//!
//! The hash is FNV-1a (64-bit) over the value's bytes in its comparison domain (i64 and f64
//! values as their 8 little-endian bytes, text and bytes as they are), finished with
//! MurmurHash3's 64-bit mixer. It never depends on the process (no random seed), so a
//! filter written by one build is read by any other. Bit positions come from double
//! hashing: `(h1 + i * h2) mod num_bits` for `i < num_hashes`.
//!
//! Sized for a 1% false-positive rate: about 9.6 bits per distinct value and 7 hashes.

use arrow::buffer::ScalarBuffer;

use super::value::KeyRef;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
/// Bits per distinct value for ~1% false positives: -ln(0.01) / ln(2)^2.
const BITS_PER_VALUE: f64 = 9.585;
/// Hash functions for ~1% false positives.
pub(crate) const NUM_HASHES: u32 = 7;
/// Largest filter (bits): 2^32 bits = 512 MiB.
const MAX_BITS: u64 = 1 << 32;

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The stable 64-bit hash of a value.
pub(crate) fn hash_key(k: KeyRef<'_>) -> u64 {
    let h = match k {
        KeyRef::I(v) => fnv1a(&v.to_le_bytes()),
        KeyRef::F(v) => fnv1a(&v.to_bits().to_le_bytes()),
        KeyRef::B(b) => fnv1a(b),
    };
    fmix64(h)
}

fn positions(hash: u64, num_bits: u64, num_hashes: u32) -> impl Iterator<Item = u64> {
    let h1 = hash;
    let h2 = fmix64(hash ^ 0x9e37_79b9_7f4a_7c15) | 1;
    (0..num_hashes as u64).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % num_bits)
}

/// Bits for `distinct` values (a multiple of 64, at least 64).
pub(crate) fn num_bits_for(distinct: usize) -> u64 {
    let bits = (distinct as f64 * BITS_PER_VALUE).ceil() as u64;
    bits.clamp(64, MAX_BITS).div_ceil(64) * 64
}

/// A filter under construction.
#[derive(Debug)]
pub(crate) struct BloomBuilder {
    words: Vec<u64>,
    num_bits: u64,
}

impl BloomBuilder {
    /// An empty filter for about `distinct` values.
    pub fn new(distinct: usize) -> BloomBuilder {
        let num_bits = num_bits_for(distinct);
        BloomBuilder {
            words: vec![0; (num_bits / 64) as usize],
            num_bits,
        }
    }

    /// Adds a value.
    pub fn insert(&mut self, k: KeyRef<'_>) {
        self.insert_hash(hash_key(k));
    }

    /// Adds a value by its [`hash_key`].
    pub fn insert_hash(&mut self, hash: u64) {
        for p in positions(hash, self.num_bits, NUM_HASHES) {
            if let Some(w) = self.words.get_mut((p / 64) as usize) {
                *w |= 1 << (p % 64);
            }
        }
    }

    /// Bits and words.
    pub fn finish(self) -> (u64, Vec<u64>) {
        (self.num_bits, self.words)
    }
}

/// A filter read from a segment.
#[derive(Clone, Debug)]
pub(crate) struct Bloom {
    words: ScalarBuffer<u64>,
    num_bits: u64,
    num_hashes: u32,
}

impl Bloom {
    /// A filter over `words`; `None` if the parameters do not fit the words.
    pub fn new(words: ScalarBuffer<u64>, num_bits: u64, num_hashes: u32) -> Option<Bloom> {
        if num_bits == 0
            || num_bits % 64 != 0
            || num_bits / 64 != words.len() as u64
            || num_hashes == 0
            || num_hashes > 64
        {
            return None;
        }
        Some(Bloom {
            words,
            num_bits,
            num_hashes,
        })
    }

    /// False when `k` is certainly absent.
    pub fn may_contain(&self, k: KeyRef<'_>) -> bool {
        positions(hash_key(k), self.num_bits, self.num_hashes).all(|p| {
            self.words
                .get((p / 64) as usize)
                .is_none_or(|w| w & (1 << (p % 64)) != 0)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hash_is_stable() {
        // Fixed values: a change here breaks reading every bloom filter ever written.
        assert_eq!(hash_key(KeyRef::I(42)), hash_key(KeyRef::I(42)));
        assert_eq!(hash_key(KeyRef::B(b"")), fmix64(FNV_OFFSET));
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn test_false_positive_rate() {
        let mut b = BloomBuilder::new(10_000);
        for i in 0..10_000i64 {
            b.insert(KeyRef::I(i * 2));
        }
        let (bits, words) = b.finish();
        let f = Bloom::new(ScalarBuffer::from(words), bits, NUM_HASHES).unwrap();
        for i in 0..10_000i64 {
            assert!(f.may_contain(KeyRef::I(i * 2)));
        }
        let fp = (0..10_000i64)
            .filter(|i| f.may_contain(KeyRef::I(i * 2 + 1)))
            .count();
        assert!(fp < 250, "{fp} false positives in 10000");
    }
}
