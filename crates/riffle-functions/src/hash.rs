//! Pinot's hash functions (`HashFunctions`), on BYTES or on text (its UTF-8 bytes).
//!
//! | Function | Result | Meaning (Pinot's) |
//! | --- | --- | --- |
//! | `SHA(b)`, `SHA256(b)`, `SHA512(b)` | STRING | SHA-1, SHA-256, SHA-512 digest as lowercase hex (Pinot's names: DataFusion's `sha256` answers bytes) |
//! | `MURMURHASH2(b)`, `MURMUR2(b)`, `MURMURHASH2UTF8(s)` | INT | 32-bit MurmurHash2 as Kafka's partitioner computes it (seed 0x9747b28c) |
//! | `MURMURHASH3BIT32(b, seed)`, `MURMUR3_32(b)` | INT | 32-bit MurmurHash3 (x86), seed 0 for the short name |
//! | `FNV1HASH32`, `FNV1AHASH32`, `FNV1HASH64`, `FNV1AHASH64` (and `...UTF8`, `FNV1_32`, `FNV1A_32`, `FNV1_64`, `FNV1A_64`) | INT / LONG | FNV-1 / FNV-1a |
//! | `ADLER32(b)`, `CRC32(b)` | INT | the checksums, as Java's signed int |
//!
//! Pinot converts a STRING argument of a BYTES parameter from hex; here text is hashed as
//! its UTF-8 bytes, which is what a caller of `SHA256('abc')` means (write
//! `SHA256(FROMBASE64(...))` or a BYTES column for raw bytes).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int32Builder, Int64Builder, StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use sha2::Digest;

/// Which hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    Sha1,
    Sha256,
    Sha512,
    Murmur2,
    Murmur3,
    Fnv1_32,
    Fnv1a32,
    Fnv1_64,
    Fnv1a64,
    Adler32,
    Crc32,
}

/// One hash function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct HashFn {
    name: &'static str,
    op: Op,
    /// Takes a seed (second argument).
    seeded: bool,
    signature: Signature,
}

/// Every hash function.
pub fn functions() -> Vec<ScalarUDF> {
    [
        ("sha", Op::Sha1, false),
        ("sha256", Op::Sha256, false),
        ("sha512", Op::Sha512, false),
        ("murmurhash2", Op::Murmur2, false),
        ("murmur2", Op::Murmur2, false),
        ("murmurhash2utf8", Op::Murmur2, false),
        ("murmurhash3bit32", Op::Murmur3, true),
        ("murmur3_32", Op::Murmur3, false),
        ("fnv1hash32", Op::Fnv1_32, false),
        ("fnv1hash32utf8", Op::Fnv1_32, false),
        ("fnv1_32", Op::Fnv1_32, false),
        ("fnv1ahash32", Op::Fnv1a32, false),
        ("fnv1ahash32utf8", Op::Fnv1a32, false),
        ("fnv1a_32", Op::Fnv1a32, false),
        ("fnv1hash64", Op::Fnv1_64, false),
        ("fnv1hash64utf8", Op::Fnv1_64, false),
        ("fnv1_64", Op::Fnv1_64, false),
        ("fnv1ahash64", Op::Fnv1a64, false),
        ("fnv1ahash64utf8", Op::Fnv1a64, false),
        ("fnv1a_64", Op::Fnv1a64, false),
        ("adler32", Op::Adler32, false),
        ("crc32", Op::Crc32, false),
    ]
    .into_iter()
    .map(|(name, op, seeded)| {
        ScalarUDF::new_from_impl(HashFn {
            name,
            op,
            seeded,
            signature: Signature::variadic_any(Volatility::Immutable),
        })
    })
    .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-1 (FIPS 180-4).
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [
        0x6745_2301,
        0xEFCD_AB89,
        0x98BA_DCFE,
        0x1032_5476,
        0xC3D2_E1F0,
    ];
    let mut msg = data.to_vec();
    let bits = (data.len() as u64).wrapping_mul(8);
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&bits.to_be_bytes());
    for chunk in msg.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in chunk.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (i, x) in h.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Kafka's 32-bit MurmurHash2.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        for (i, b) in tail.iter().enumerate().rev() {
            h ^= u32::from(*b) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// MurmurHash3, x86, 32 bits.
pub fn murmur3_32(data: &[u8], seed: u32) -> i32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut k = 0u32;
        for (i, b) in tail.iter().enumerate() {
            k |= u32::from(*b) << (8 * i);
        }
        h ^= k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^= h >> 16;
    h as i32
}

fn fnv32(data: &[u8], a: bool) -> i32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        if a {
            h ^= u32::from(*b);
            h = h.wrapping_mul(0x0100_0193);
        } else {
            h = h.wrapping_mul(0x0100_0193);
            h ^= u32::from(*b);
        }
    }
    h as i32
}

fn fnv64(data: &[u8], a: bool) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        if a {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        } else {
            h = h.wrapping_mul(0x0100_0000_01b3);
            h ^= u64::from(*b);
        }
    }
    h as i64
}

fn adler32(data: &[u8]) -> i32 {
    let (mut a, mut b) = (1u32, 0u32);
    for x in data {
        a = (a + u32::from(*x)) % 65_521;
        b = (b + a) % 65_521;
    }
    ((b << 16) | a) as i32
}

impl ScalarUDFImpl for HashFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let want = if self.seeded { 2 } else { 1 };
        if arg_types.len() != want {
            return exec_err!(
                "{} takes {want} argument(s), got {}",
                self.name,
                arg_types.len()
            );
        }
        Ok(match self.op {
            Op::Sha1 | Op::Sha256 | Op::Sha512 => DataType::Utf8,
            Op::Fnv1_64 | Op::Fnv1a64 => DataType::Int64,
            _ => DataType::Int32,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let input = &arrays[0];
        let bytes: ArrayRef = match input.data_type() {
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
                cast(input, &DataType::Binary)?
            }
            t if t.is_null()
                || matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) =>
            {
                cast(&cast(input, &DataType::Utf8)?, &DataType::Binary)?
            }
            t => return exec_err!("{} takes BYTES or text, got {t}", self.name),
        };
        let bytes = bytes.as_binary::<i32>();
        let seeds = match arrays.get(1) {
            Some(s) => Some(cast(s, &DataType::Int64)?),
            None => None,
        };
        let seeds = seeds.as_ref().map(|s| s.as_primitive::<Int64Type>());
        let out: ArrayRef = match self.op {
            Op::Sha1 | Op::Sha256 | Op::Sha512 => {
                let mut b = StringBuilder::with_capacity(rows, rows * 64);
                for i in 0..rows {
                    if bytes.is_null(i) {
                        b.append_null();
                        continue;
                    }
                    let v = bytes.value(i);
                    b.append_value(match self.op {
                        Op::Sha1 => hex(&sha1(v)),
                        Op::Sha256 => hex(&sha2::Sha256::digest(v)),
                        _ => hex(&sha2::Sha512::digest(v)),
                    });
                }
                Arc::new(b.finish())
            }
            Op::Fnv1_64 | Op::Fnv1a64 => {
                let mut b = Int64Builder::with_capacity(rows);
                for i in 0..rows {
                    if bytes.is_null(i) {
                        b.append_null();
                    } else {
                        b.append_value(fnv64(bytes.value(i), self.op == Op::Fnv1a64));
                    }
                }
                Arc::new(b.finish())
            }
            _ => {
                let mut b = Int32Builder::with_capacity(rows);
                for i in 0..rows {
                    if bytes.is_null(i) || seeds.is_some_and(|s| s.is_null(i)) {
                        b.append_null();
                        continue;
                    }
                    let v = bytes.value(i);
                    b.append_value(match self.op {
                        Op::Murmur2 => murmur2(v),
                        Op::Murmur3 => murmur3_32(v, seeds.map_or(0, |s| s.value(i) as u32)),
                        Op::Fnv1_32 => fnv32(v, false),
                        Op::Fnv1a32 => fnv32(v, true),
                        Op::Adler32 => adler32(v),
                        _ => crc32fast::hash(v) as i32,
                    });
                }
                Arc::new(b.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_their_published_vectors() {
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        // Two blocks of padding.
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        // Kafka's own test of its partitioner hash.
        assert_eq!(murmur2(b"21"), -973_932_308);
        assert_eq!(murmur2(b"foobar"), -790_332_482);
        assert_eq!(murmur3_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(murmur3_32(b"", 1), 0x514e_28b7);
        assert_eq!(fnv32(b"a", true) as u32, 0xe40c_292c);
        assert_eq!(fnv32(b"a", false) as u32, 0x050c_5d7e);
        assert_eq!(fnv64(b"a", true) as u64, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv64(b"a", false) as u64, 0xaf63_bd4c_8601_b7be);
        assert_eq!(adler32(b"Wikipedia") as u32, 0x11e6_0398);
        assert_eq!(crc32fast::hash(b"abc"), 0x3524_41c2);
    }
}

#[cfg(test)]
mod sql_tests {
    use crate::sql_test::first_row;

    #[tokio::test]
    async fn pinot_names_win_over_datafusion_ones() {
        let got = first_row(
            "SELECT sha('abc'), sha256(toutf8('abc')), murmur2('21'), \
             murmurhash3bit32('hello', 0), fnv1a_32('a'), crc32('abc')",
        )
        .await;
        assert_eq!(
            got,
            [
                "a9993e364706816aba3e25717850c26c9cd0d89d",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
                "-973932308",
                "613153351",
                "-468965076",
                "891568578"
            ]
        );
    }
}
